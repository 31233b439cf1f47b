"""The price table: bundled lookups, versioned and prefixed names, aliases,
overrides from mappings and files, malformed overrides, cost arithmetic."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otel_ml
from otel_ml import semconv
from otel_ml.pricing import Price, PriceTable, PricingError
from otel_ml.testing import Capture


@pytest.fixture(scope="module")
def bundled_document() -> dict[str, Any]:
    """The bundled JSON, read independently of otel_ml's parser."""
    text = (resources.files("otel_ml") / "data" / "prices.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


# --- the bundled table ---------------------------------------------------------------------------


def test_bundled_table_covers_the_four_providers(bundled_document: dict[str, Any]) -> None:
    models = bundled_document["models"]
    assert bundled_document["currency"] == "USD"
    for family in ("gpt-4o-mini", "claude-3-5-sonnet", "gemini-2.5-pro", "mistral-large"):
        assert family in models


def test_every_bundled_price_has_a_date_and_a_source(bundled_document: dict[str, Any]) -> None:
    for name, entry in bundled_document["models"].items():
        assert str(entry["as_of"])[:2] == "20", name
        assert str(entry["source"]).startswith("https://"), name
        assert entry["input"] >= 0 and entry["output"] >= 0, name


def test_bundled_lookups_return_the_listed_prices(
    table: PriceTable, bundled_document: dict[str, Any]
) -> None:
    assert len(table) == len(bundled_document["models"])
    for name, entry in bundled_document["models"].items():
        price = table.lookup(name)
        assert price is not None, name
        assert (price.input, price.output) == (entry["input"], entry["output"]), name
        assert price.cached_input == entry.get("cached_input"), name
        assert price.as_of == str(entry["as_of"])
        assert price.source == entry["source"]


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),  # not gpt-4o-mini, not gpt-4
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-sonnet@20241022", "claude-3-5-sonnet"),  # Vertex AI
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),  # Vertex AI
        ("gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gemini-2.0-flash-exp", "gemini-2.0-flash"),
        ("mistral-large-2411", "mistral-large"),
        ("mistral-large-latest", "mistral-large"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
        ("  gpt-4o  ", "gpt-4o"),
    ],
)
def test_versioned_names_resolve_to_their_base_entry(
    table: PriceTable, name: str, base: str
) -> None:
    price = table.lookup(name)
    assert price is not None
    assert price.model == base


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("models/gemini-2.0-flash", "gemini-2.0-flash"),  # Gemini API resource name
        ("publishers/google/models/gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("azure/gpt-35-turbo", "gpt-3.5-turbo"),
    ],
)
def test_provider_prefixes_are_ignored(table: PriceTable, name: str, base: str) -> None:
    price = table.lookup(name)
    assert price is not None
    assert price.model == base


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
    ],
)
def test_bedrock_model_ids_resolve(table: PriceTable, name: str, base: str) -> None:
    """Bedrock ids put the provider before a dot (and a region before that)."""
    price = table.lookup(name)
    assert price is not None
    assert price.model == base


@pytest.mark.parametrize(
    "name", ["acme-llm-7b", "gpt-4o-mini-turbo-ultra", "claude", "", "2024-07-18", "/"]
)
def test_unknown_names_have_no_price(table: PriceTable, name: str) -> None:
    assert table.lookup(name) is None


# --- cost arithmetic -----------------------------------------------------------------------------


def test_cost_arithmetic() -> None:
    price = Price(model="m", input=2.0, output=8.0, cached_input=0.5)
    assert price.cost(1_000_000, 0) == pytest.approx(2.0)
    assert price.cost(0, 1_000_000) == pytest.approx(8.0)
    # 600k uncached at 2.0, 400k cached at 0.5, 100k output at 8.0
    assert price.cost(1_000_000, 100_000, 400_000) == pytest.approx(1.2 + 0.2 + 0.8)
    assert price.cost(0, 0) == 0.0


def test_cached_tokens_bill_at_the_input_price_without_a_cached_price() -> None:
    price = Price(model="m", input=3.0, output=15.0)
    assert price.cost(1_000, 0, 400) == pytest.approx(price.cost(1_000, 0))


def test_cached_tokens_are_capped_by_input_tokens() -> None:
    price = Price(model="m", input=2.0, output=8.0, cached_input=0.5)
    assert price.cost(100, 0, 1_000) == pytest.approx(100 * 0.5 / 1e6)
    assert price.cost(100, 0, -50) == pytest.approx(100 * 2.0 / 1e6)


def test_bundled_cost_for_a_real_request(table: PriceTable) -> None:
    price = table.lookup("claude-3-5-sonnet-20241022")
    assert price is not None and price.cached_input is not None
    expected = (1_500 * price.input + 500 * price.cached_input + 300 * price.output) / 1e6
    assert price.cost(2_000, 300, 500) == pytest.approx(expected)
    assert expected > 0


# --- overrides -----------------------------------------------------------------------------------


OVERRIDE = {
    "models": {
        "gpt-4o-mini": {"input": 0.1, "output": 0.4, "cached_input": 0.05},  # a negotiated price
        "acme-llm-7b": {"input": 0.02, "output": 0.02, "as_of": "2025-01-01", "source": "contract"},
    },
    "aliases": {"prod-chat-eu": "gpt-4o", "acme-deploy": "acme-llm-7b"},
}


def _check_override(table: PriceTable) -> None:
    overridden = table.lookup("gpt-4o-mini-2024-07-18")
    assert overridden is not None
    assert (overridden.input, overridden.output, overridden.cached_input) == (0.1, 0.4, 0.05)
    added = table.lookup("acme-llm-7b")
    assert added is not None
    assert (added.input, added.as_of, added.source) == (0.02, "2025-01-01", "contract")
    alias = table.lookup("prod-chat-eu")
    assert alias is not None and alias.model == "gpt-4o"
    untouched = table.lookup("claude-3-haiku")
    assert untouched is not None and untouched == PriceTable.load().lookup("claude-3-haiku")


def test_override_from_a_mapping() -> None:
    _check_override(PriceTable.load(OVERRIDE))


def test_override_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(OVERRIDE), encoding="utf-8")
    _check_override(PriceTable.load(path))
    _check_override(PriceTable.load(str(path)))


def test_override_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(OVERRIDE), encoding="utf-8")
    _check_override(PriceTable.load(path))


@pytest.mark.parametrize(
    "name",
    ["prod-chat-eu", "PROD-CHAT-EU", "azure/prod-chat-eu", "prod-chat-eu-2024-08-06"],
)
def test_azure_deployment_aliases(name: str) -> None:
    table = PriceTable.load(OVERRIDE)
    price = table.lookup(name)
    assert price is not None
    assert price == table.lookup("gpt-4o")


def test_aliases_only_override() -> None:
    table = PriceTable.load({"aliases": {"my-deployment": "claude-3-haiku"}})
    assert table.lookup("my-deployment") == table.lookup("claude-3-haiku")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"currency": "EUR", "models": {}}, "only USD"),
        ({"models": ["gpt-4o"]}, "must be mappings"),
        ({"aliases": "x"}, "must be mappings"),
        ({"models": {"m": 1.5}}, "'m' must map to"),
        ({"models": {"m": {"input": 1.0}}}, "'m' lacks 'output'"),
        ({"models": {"m": {"output": 1.0}}}, "'m' lacks 'input'"),
        ({"models": {"m": {"input": "cheap", "output": 1}}}, "'m' has a non-numeric price"),
        ({"models": {"m": {"input": None, "output": 1}}}, "'m' has a non-numeric price"),
        ({"models": {"m": {"input": -1, "output": 1}}}, "'m' has a negative price"),
        ({"models": {"m": {"input": 1, "output": 1, "cached_input": -0.1}}}, "negative"),
    ],
)
def test_malformed_mapping_raises_a_clear_pricing_error(document: Any, message: str) -> None:
    with pytest.raises(PricingError, match=message) as raised:
        PriceTable.load(document)
    assert "pricing mapping" in str(raised.value)


@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf"])
def test_non_finite_prices_are_rejected(tmp_path: Path, bad: str) -> None:
    """A NaN price would make every cost NaN, and a NaN added to the llm.cost
    counter poisons that series for the life of the process."""
    path = tmp_path / "prices.yaml"
    path.write_text(f"models:\n  m: {{input: {bad}, output: 1.0}}\n", encoding="utf-8")
    with pytest.raises(PricingError, match="'m'"):
        PriceTable.load(path)


def test_file_without_a_mapping_is_a_pricing_error(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('["gpt-4o", 2.5, 10.0]', encoding="utf-8")
    with pytest.raises(PricingError, match="expected a mapping") as raised:
        PriceTable.load(path)
    assert str(path) in str(raised.value)


def test_missing_file_is_a_pricing_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PricingError, match="cannot read pricing file"):
        PriceTable.load(missing)


@pytest.mark.parametrize(
    ("filename", "text"),
    [("prices.yaml", "models: {gpt-4o: [unclosed"), ("prices.json", '{"models": ')],
)
def test_unparsable_file_is_a_pricing_error(tmp_path: Path, filename: str, text: str) -> None:
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PricingError, match=r"not valid (YAML|JSON)") as raised:
        PriceTable.load(path)
    assert str(path) in str(raised.value)


def test_configure_falls_back_to_the_bundled_table_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  m: {input: 1.0}\n", encoding="utf-8")
    tracer_provider, meter_provider = TracerProvider(), MeterProvider()
    caplog.set_level(logging.ERROR, logger="otel_ml")

    telemetry = otel_ml.configure(
        service_name="pricing-test",
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        pricing=path,
    )
    try:
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert str(path) in errors[0].getMessage()
        assert "'m' lacks 'output'" in errors[0].getMessage()
        assert len(telemetry.prices) == len(PriceTable.load())
        assert telemetry.prices.lookup("m") is None
    finally:
        telemetry.shutdown()


@pytest.mark.parametrize("pricing", [123, 4.5, ["models"], object()])
def test_configure_with_a_pricing_value_of_the_wrong_type_falls_back(
    caplog: pytest.LogCaptureFixture, pricing: Any
) -> None:
    caplog.set_level(logging.ERROR, logger="otel_ml")
    telemetry = otel_ml.configure(
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        pricing=pricing,
    )
    try:
        assert len(telemetry.prices) == len(PriceTable.load())
        assert [r for r in caplog.records if r.levelno == logging.ERROR]
    finally:
        telemetry.shutdown()


# --- pricing on generation spans -----------------------------------------------------------------


def test_override_prices_generation_spans(otel_capture_factory: Callable[..., Capture]) -> None:
    capture = otel_capture_factory(pricing=OVERRIDE)
    with capture.telemetry.generation("acme-deploy", "self-hosted") as g:
        g.usage(input_tokens=1_000_000, output_tokens=500_000)

    span = capture.span("chat acme-deploy")
    assert span.attributes is not None
    expected = 0.02 + 0.5 * 0.02
    assert span.attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected)
    assert capture.metric_sum(semconv.METRIC_COST) == pytest.approx(expected)
    assert capture.points(semconv.METRIC_COST_UNPRICED) == []


def test_unpriced_model_never_reports_zero_dollars(otel_capture: Capture) -> None:
    for _ in range(3):
        with otel_ml.tenant("acme"), otel_ml.generation(model="acme-llm-7b", provider="x") as g:
            g.usage(input_tokens=10, output_tokens=10)

    for span in otel_capture.spans():
        assert span.attributes is not None
        assert semconv.GEN_AI_USAGE_COST_AMOUNT not in span.attributes
    assert otel_capture.points(semconv.METRIC_COST) == []
    attributes = {semconv.GEN_AI_REQUEST_MODEL: "acme-llm-7b", semconv.TENANT_ID: "acme"}
    assert otel_capture.metric_sum(semconv.METRIC_COST_UNPRICED, attributes) == 3


def test_free_model_reports_zero_cost_not_unpriced(
    otel_capture_factory: Callable[..., Capture],
) -> None:
    """$0 is reported only when the table says the model is free."""
    capture = otel_capture_factory(pricing={"models": {"local-llm": {"input": 0, "output": 0}}})
    with capture.telemetry.generation("local-llm", "ollama") as g:
        g.usage(input_tokens=10, output_tokens=10)

    span = capture.span("chat local-llm")
    assert span.attributes is not None
    assert span.attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == 0.0
    assert capture.points(semconv.METRIC_COST_UNPRICED) == []


def test_lookup_cache_stays_bounded(table: PriceTable) -> None:
    """Model names can come from user input; the lookup cache must not grow with them."""
    for i in range(5_000):
        assert table.lookup(f"random-model-{i}") is None
    assert len(table._cache) <= 1024
    assert table.lookup("gpt-4o-mini") is not None
