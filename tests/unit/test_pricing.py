"""The price table: bundled lookups, dated snapshots (priced by their own entry
or by a family that says its snapshots share its price, never guessed),
prefixed names, aliases, overrides from mappings and files, malformed
overrides, cost arithmetic."""

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
from otel_ml.pricing import SAME_PRICE, Price, PriceTable, PricingError
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


def test_bundled_cache_prices_are_consistent(bundled_document: dict[str, Any]) -> None:
    """A cache read is a discount and a cache write a surcharge on the input price;
    the other way round is a typo in the table."""
    writes = 0
    for name, entry in bundled_document["models"].items():
        if "cached_input" in entry:
            assert 0 <= entry["cached_input"] <= entry["input"], name
        if "cache_write_input" in entry:
            assert entry["cache_write_input"] >= entry["input"], name
            writes += 1
        if name.startswith(("gpt-", "o1", "o3", "o4", "text-embedding", "gemini-")):
            assert "cache_write_input" not in entry, (
                f"{name}: the provider has no cache-write price"
            )
    assert writes >= 10


@pytest.mark.parametrize(
    ("model", "cache_write"),
    [
        ("claude-sonnet-4", 3.75),
        ("claude-opus-4-1", 18.75),
        ("claude-3-5-haiku", 1.0),
        ("claude-3-haiku", 0.30),  # Anthropic's list price, not 1.25 x $0.25
        ("claude-haiku-4-5", 1.25),
    ],
)
def test_anthropic_cache_write_is_the_listed_five_minute_price(
    model: str, cache_write: float
) -> None:
    price = PriceTable.load().lookup(model)
    assert price is not None
    assert price.cache_write_input == cache_write


def test_bundled_snapshot_lists_name_snapshots_of_their_entry(
    table: PriceTable, bundled_document: dict[str, Any]
) -> None:
    listed = 0
    for name, entry in bundled_document["models"].items():
        snapshots = entry.get("snapshots")
        if snapshots is None or snapshots == SAME_PRICE:
            continue
        for snapshot in snapshots:
            assert snapshot.startswith(name + "-"), (name, snapshot)
            assert snapshot not in bundled_document["models"], f"{snapshot} is listed twice"
            price = table.lookup(snapshot)
            assert price is not None and price.model == name, snapshot
            listed += 1
    assert listed >= 20


def test_bundled_lookups_return_the_listed_prices(
    table: PriceTable, bundled_document: dict[str, Any]
) -> None:
    assert len(table) == len(bundled_document["models"])
    for name, entry in bundled_document["models"].items():
        price = table.lookup(name)
        assert price is not None, name
        assert (price.input, price.output) == (entry["input"], entry["output"]), name
        assert price.cached_input == entry.get("cached_input"), name
        assert price.cache_write_input == entry.get("cache_write_input"), name
        assert price.as_of == str(entry["as_of"])
        assert price.source == entry["source"]


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),  # not gpt-4o-mini, not gpt-4
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("mistral-large-2411", "mistral-large"),
        ("ministral-3b-2410", "ministral-3b"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
        ("  gpt-4o  ", "gpt-4o"),
        ("GPT-4o-2024-08-06", "gpt-4o"),
    ],
)
def test_listed_snapshots_resolve_to_their_family(table: PriceTable, name: str, base: str) -> None:
    price = table.lookup(name)
    assert price is not None
    assert price.model == base
    assert table.snapshot_family(name) is None


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("claude-3-5-sonnet-20240620", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),  # not claude-opus-4
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-3-opus-20240229", "claude-3-opus"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),  # Anthropic's alias
        ("claude-3-5-sonnet@20241022", "claude-3-5-sonnet"),  # Vertex AI
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),  # Vertex AI
        ("claude-opus-4-1@20250805", "claude-opus-4-1"),  # Vertex AI
        ("claude-sonnet-4-20990101", "claude-sonnet-4"),  # a future snapshot
    ],
)
def test_dated_names_of_a_same_price_family_resolve(
    table: PriceTable, name: str, base: str
) -> None:
    """Anthropic prices the model, not the snapshot: every dated id, alias and
    cloud id of one model costs the same, so the family entry says same-price."""
    price = table.lookup(name)
    assert price is not None
    assert price.model == base
    assert price.snapshots == SAME_PRICE


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        # (measured: priced $2.50/$10 by stripping the date; list price $5/$15)
        ("gpt-4o-2024-05-13", (5.0, 15.0)),
        # (measured: priced as gpt-4, $30/$60)
        ("gpt-4-1106-preview", (10.0, 30.0)),
        ("gpt-4-0125-preview", (10.0, 30.0)),
        ("gpt-4-turbo-preview", (10.0, 30.0)),  # OpenAI's alias of gpt-4-0125-preview
        # (measured: priced as gpt-3.5-turbo, $0.50/$1.50)
        ("gpt-3.5-turbo-1106", (1.0, 2.0)),
        ("gpt-3.5-turbo-0613", (1.5, 2.0)),
        ("gpt-3.5-turbo-0125", (0.5, 1.5)),
        ("gpt-4o-2024-08-06", (2.5, 10.0)),
        ("gpt-4o-2024-11-20", (2.5, 10.0)),
        ("gpt-4o-mini-2024-07-18", (0.15, 0.6)),
        ("gpt-4-turbo-2024-04-09", (10.0, 30.0)),
        ("openai/gpt-4o-2024-05-13", (5.0, 15.0)),
        ("gpt-35-turbo-1106", (1.0, 2.0)),  # Azure's spelling of gpt-3.5-turbo-1106
    ],
)
def test_snapshots_cost_their_own_list_price(
    table: PriceTable, name: str, listed: tuple[float, float]
) -> None:
    price = table.lookup(name)
    assert price is not None
    assert (price.input, price.output) == listed


def test_gpt_4o_snapshots_have_their_cached_input_price(table: PriceTable) -> None:
    """Prompt caching came with gpt-4o-2024-08-06; the 2024-05-13 snapshot has no cached price."""
    for name in ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20"):
        price = table.lookup(name)
        assert price is not None and price.cached_input == 1.25, name
    old = table.lookup("gpt-4o-2024-05-13")
    assert old is not None and old.cached_input is None
    assert old.cost(1_000_000, 1_000_000, 500_000) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-2099-01-01", "gpt-4o"),  # an unknown snapshot of a family priced per snapshot
        ("gpt-4o-mini-2099-01-01", "gpt-4o-mini"),
        ("gpt-4-0301", "gpt-4"),
        ("gpt-3.5-turbo-0301", "gpt-3.5-turbo"),
        ("o3-2099-01-01", "o3"),
        ("mistral-large-2512", "mistral-large"),  # $0.50/$1.50, not mistral-large's $2/$6
        ("ministral-3b-2512", "ministral-3b"),  # $0.10, not ministral-3b-2410's $0.04
        ("mistral-large-latest", "mistral-large"),  # -latest moves to the newest snapshot
        ("gpt-4o-latest", "gpt-4o"),
        ("azure/gpt-35-turbo-0301", "gpt-3.5-turbo"),
    ],
)
def test_unknown_snapshots_of_a_family_priced_per_snapshot_are_unpriced(
    table: PriceTable, name: str, family: str
) -> None:
    assert table.lookup(name) is None
    refused = table.snapshot_family(name)
    assert refused is not None and refused.model == family


@pytest.mark.parametrize(
    "name",
    [
        "gemini-2.5-flash-preview-05-20",  # $0.15/$0.60, not gemini-2.5-flash's $0.30/$2.50
        "gemini-2.0-flash-exp",  # experimental models are free
        "o1-preview",
        "gpt-4-32k-0613",  # gpt-4-32k is not in the table: never gpt-4's price
        "ft:gpt-4o-mini-2024-07-18:acme::abc123",  # fine-tuned models cost more
        "claude-opus-4-6",  # a newer model, not a snapshot of claude-opus-4
    ],
)
def test_previews_and_other_models_are_not_snapshots(table: PriceTable, name: str) -> None:
    assert table.lookup(name) is None
    assert table.snapshot_family(name) is None


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("openai/gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
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
        ("eu.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
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


def test_a_dated_deployment_name_costs_its_snapshot() -> None:
    """An Azure deployment named after its model version prices that version:
    its own entry if it has one, the family only if the family covers it."""
    table = PriceTable.load(OVERRIDE)
    dated = table.lookup("prod-chat-eu-2024-05-13")
    assert dated is not None and (dated.model, dated.input, dated.output) == (
        "gpt-4o-2024-05-13",
        5.0,
        15.0,
    )
    assert table.lookup("prod-chat-eu-2023-01-01") is None
    family = table.snapshot_family("prod-chat-eu-2023-01-01")
    assert family is not None and family.model == "gpt-4o"


def test_an_override_says_whether_its_snapshots_share_its_price() -> None:
    table = PriceTable.load(
        {
            "models": {
                "acme-llm": {"input": 1.0, "output": 2.0, "snapshots": "same-price"},
                "acme-pinned": {"input": 1.0, "output": 2.0, "snapshots": ["acme-pinned-2501"]},
                "acme-plain": {"input": 1.0, "output": 2.0},
            }
        }
    )
    for name, family in [("acme-llm-2025-01-01", "acme-llm"), ("acme-pinned-2501", "acme-pinned")]:
        price = table.lookup(name)
        assert price is not None and price.model == family, name
    for name, family in [("acme-pinned-2502", "acme-pinned"), ("acme-plain-2501", "acme-plain")]:
        assert table.lookup(name) is None, name
        refused = table.snapshot_family(name)
        assert refused is not None and refused.model == family, name


def test_an_override_keeps_the_bundled_snapshots_unless_it_states_its_own() -> None:
    negotiated = PriceTable.load({"models": {"gpt-4o": {"input": 2.0, "output": 8.0}}})
    covered = negotiated.lookup("gpt-4o-2024-08-06")
    assert covered is not None and (covered.input, covered.output) == (2.0, 8.0)
    own = negotiated.lookup("gpt-4o-2024-05-13")  # a different model with its own entry
    assert own is not None and (own.input, own.output) == (5.0, 15.0)

    none_shared = PriceTable.load(
        {"models": {"gpt-4o": {"input": 2.0, "output": 8.0, "snapshots": []}}}
    )
    assert none_shared.lookup("gpt-4o-2024-08-06") is None
    base = none_shared.lookup("gpt-4o")
    assert base is not None and base.input == 2.0


def test_an_override_sets_the_cache_write_price(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  claude-sonnet-4:\n"
        "    {input: 2.4, output: 12.0, cached_input: 0.24, cache_write_input: 3.0}\n",
        encoding="utf-8",
    )
    price = PriceTable.load(path).lookup("claude-sonnet-4-20250514")
    assert price is not None
    assert (price.input, price.cache_write_input, price.snapshots) == (2.4, 3.0, SAME_PRICE)
    # 1,000 uncached at 2.4, 2,000 written at 3.0, 3,000 read at 0.24, 100 out at 12.0
    assert price.cost(6_000, 100, 3_000, 2_000) == pytest.approx(
        (1_000 * 2.4 + 2_000 * 3.0 + 3_000 * 0.24 + 100 * 12.0) / 1e6
    )


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
        (
            {"models": {"m": {"input": 1, "output": 1, "cache_write_input": -1}}},
            "'m' has a negative",
        ),
        (
            {"models": {"m": {"input": 1, "output": 1, "cache_write_input": "1.25x"}}},
            "'m' has a non-numeric price",
        ),
        (
            {"models": {"m": {"input": 1, "output": 1, "snapshots": "yes"}}},
            "'m' has 'snapshots' 'yes': expected 'same-price' or a list of its dated names",
        ),
        ({"models": {"m": {"input": 1, "output": 1, "snapshots": True}}}, "'m' has 'snapshots'"),
        (
            {"models": {"m": {"input": 1, "output": 1, "snapshots": ["m-2501", 2502]}}},
            "'snapshots'",
        ),
        (
            {"models": {"m": {"input": 1, "output": 1, "snapshots": ["other-2501"]}}},
            "'m' lists snapshot 'other-2501', which is not 'm' followed by a date",
        ),
        (
            {"models": {"m": {"input": 1, "output": 1, "snapshots": ["m-preview"]}}},
            "'m' lists snapshot 'm-preview'",
        ),
    ],
)
def test_malformed_mapping_raises_a_clear_pricing_error(document: Any, message: str) -> None:
    with pytest.raises(PricingError, match=message) as raised:
        PriceTable.load(document)
    assert "pricing mapping" in str(raised.value)


@pytest.mark.parametrize("field", ["input", "cache_write_input"])
@pytest.mark.parametrize("bad", [".nan", ".inf", "-.inf"])
def test_non_finite_prices_are_rejected(tmp_path: Path, bad: str, field: str) -> None:
    """A NaN price would make every cost NaN, and a NaN added to the llm.cost
    counter poisons that series for the life of the process."""
    path = tmp_path / "prices.yaml"
    entry = {"input": "1.0", "output": "1.0", field: bad}
    fields = ", ".join(f"{key}: {value}" for key, value in entry.items())
    path.write_text(f"models:\n  m: {{{fields}}}\n", encoding="utf-8")
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


def test_a_generation_with_a_dated_snapshot_costs_its_own_price(otel_capture: Capture) -> None:
    with otel_ml.tenant("acme"), otel_ml.generation("gpt-4o-2024-05-13", "openai") as g:
        g.usage(input_tokens=200_000, output_tokens=40_000)

    (span,) = otel_capture.spans()
    assert span.attributes is not None
    expected = 0.2 * 5.0 + 0.04 * 15.0  # $1.60 at the list price; $0.90 at gpt-4o's
    assert span.attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected)
    attributes = {semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-2024-05-13", semconv.TENANT_ID: "acme"}
    assert otel_capture.metric_sum(semconv.METRIC_COST, attributes) == pytest.approx(expected)
    assert otel_capture.points(semconv.METRIC_COST_UNPRICED) == []


def test_a_generation_with_an_unknown_snapshot_is_unpriced(otel_capture: Capture) -> None:
    """The family (gpt-4o) is known, but its snapshots are priced apart: no guess."""
    for _ in range(2):
        with otel_ml.tenant("acme"), otel_ml.generation("gpt-4o-2099-01-01", "openai") as g:
            g.usage(input_tokens=1_000, output_tokens=100)

    for span in otel_capture.spans():
        assert span.attributes is not None
        assert semconv.GEN_AI_USAGE_COST_AMOUNT not in span.attributes
    assert otel_capture.points(semconv.METRIC_COST) == []
    attributes = {semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-2099-01-01", semconv.TENANT_ID: "acme"}
    assert otel_capture.metric_sum(semconv.METRIC_COST_UNPRICED, attributes) == 2


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
