"""Enrichment of other GenAI instrumentations' spans: tenant, cost, otel-ml's
metrics per tenant, and each call counted once however it is nested.

The peer spans are made by a real SDK tracer under each peer's instrumentation
scope, with the attribute names each peer sets (checked in their source, see
the enrichment section of otel_ml/semconv.py)."""

from __future__ import annotations

import atexit
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context, metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util._once import Once

import otel_ml
from otel_ml import semconv
from otel_ml import telemetry as telemetry_module
from otel_ml.instrumentation._enrich import EnrichingSpanProcessor
from otel_ml.instrumentation._enrich._lineage import Lineage
from otel_ml.pricing import PriceTable
from otel_ml.telemetry import Telemetry, set_current

MODEL = "acme-llm"
# USD per 1M tokens; cache-write dearer than input, as Anthropic prices it.
PRICES = {
    "models": {MODEL: {"input": 2.0, "output": 8.0, "cached_input": 0.5, "cache_write_input": 2.5}}
}
# 1000 input tokens of which 400 cache reads, 200 output tokens:
# (600 * 2.0 + 400 * 0.5 + 200 * 8.0) / 1e6
COST = 0.003
USAGE = {"input": 1000, "output": 200, "cache_read": 400}


class Rig:
    """A Telemetry on providers of the test's own, with the enrichment
    processor in front of an in-memory exporter: the documented recipe for
    apps that bring their providers."""

    def __init__(self, max_tenants: int = 100) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        meter_provider = MeterProvider(
            metric_readers=[self.reader], views=Telemetry.enrichment_views()
        )
        self.telemetry = Telemetry(
            self.tracer_provider,
            meter_provider,
            owns_providers=True,
            prices=PriceTable.load(PRICES),
            max_tenants=max_tenants,
        )
        self.tracer_provider.add_span_processor(
            self.telemetry.enrichment_processor(SimpleSpanProcessor(self.exporter))
        )

    def tracer(self, scope: str) -> Tracer:
        return self.tracer_provider.get_tracer(scope)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        found = [span for span in self.spans() if span.name == name]
        assert len(found) == 1, [span.name for span in self.spans()]
        return found[0]

    def metric_sum(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        total = 0.0
        for point in self._points(name, attributes):
            total += point.sum if isinstance(point, HistogramDataPoint) else point.value
        return total

    def metric_count(self, name: str, attributes: Mapping[str, Any] | None = None) -> int:
        return sum(
            point.count if isinstance(point, HistogramDataPoint) else 1
            for point in self._points(name, attributes)
        )

    def _points(self, name: str, attributes: Mapping[str, Any] | None) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        have = point.attributes or {}
                        if all(have.get(k) == v for k, v in (attributes or {}).items()):
                            found.append(point)
        return found


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = Rig()
    previous = set_current(made.telemetry)
    try:
        yield made
    finally:
        set_current(previous)
        made.telemetry.shutdown()


# --- the peers' spans, attribute for attribute ----------------------------------------------


def official_call(tracer: Tracer, model: str = MODEL, **usage: int) -> None:
    """opentelemetry-instrumentation-genai-openai 1.3b0 (through opentelemetry-util-genai)."""
    with tracer.start_as_current_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes={
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: semconv.PROVIDER_OPENAI,
            semconv.GEN_AI_REQUEST_MODEL: model,
        },
    ) as span:
        span.set_attributes(_conventions_usage(**{**USAGE, **usage}))


def openinference_call(tracer: Tracer, model: str = MODEL, **usage: int) -> None:
    """openinference-instrumentation-openai 0.1.66: the span kind at start, the
    model and the token counts from the response."""
    counts = {**USAGE, **usage}
    with tracer.start_as_current_span(
        "ChatCompletion",
        attributes={
            semconv.OI_SPAN_KIND: semconv.OI_SPAN_KIND_LLM,
            semconv.OI_LLM_PROVIDER: semconv.PROVIDER_OPENAI,
            semconv.OI_LLM_SYSTEM: semconv.PROVIDER_OPENAI,
        },
    ) as span:
        span.set_attributes(
            {
                semconv.OI_LLM_MODEL_NAME: model,
                semconv.OI_TOKEN_COUNT_PROMPT: counts["input"],
                semconv.OI_TOKEN_COUNT_COMPLETION: counts["output"],
                semconv.OI_TOKEN_COUNT_CACHE_READ: counts["cache_read"],
            }
        )


def openllmetry_call(tracer: Tracer, model: str = MODEL) -> None:
    """opentelemetry-instrumentation-openai 0.62.4."""
    with tracer.start_as_current_span(
        "openai.chat",
        kind=SpanKind.CLIENT,
        attributes={semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT},
    ) as span:
        span.set_attributes(
            {
                semconv.GEN_AI_PROVIDER_NAME: semconv.PROVIDER_OPENAI,
                semconv.GEN_AI_REQUEST_MODEL: model,
                semconv.GEN_AI_RESPONSE_MODEL: model,
                **_conventions_usage(**USAGE),
            }
        )


def _conventions_usage(input: int, output: int, cache_read: int) -> dict[str, int]:
    return {
        semconv.GEN_AI_USAGE_INPUT_TOKENS: input,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: output,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
    }


def _own_generation(model: str = MODEL) -> None:
    with otel_ml.generation(model=model, provider=semconv.PROVIDER_OPENAI) as g:
        g.usage(input_tokens=USAGE["input"], output_tokens=USAGE["output"])


# Without cache-read pricing otel-ml's generation() bills all 1000 input tokens at 2.0.
OWN_COST = (1000 * 2.0 + 200 * 8.0) / 1e6

PEERS = {
    "official": (semconv.PEER_SCOPE_GENAI_OPENAI, official_call, f"chat {MODEL}"),
    "openinference": (
        semconv.PEER_SCOPE_OPENINFERENCE_OPENAI,
        openinference_call,
        "ChatCompletion",
    ),
    "openllmetry": (semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V1, openllmetry_call, "openai.chat"),
}


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# --- one peer call -----------------------------------------------------------------------------


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_a_peer_call_gets_tenant_cost_and_metrics_per_tenant(rig: Rig, peer: str) -> None:
    scope, call, name = PEERS[peer]
    with otel_ml.tenant("acme"):
        call(rig.tracer(scope))

    attributes = _attributes(rig.span(name))
    assert attributes[semconv.TENANT_ID] == "acme"
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(COST, abs=1e-9)
    assert attributes[semconv.GEN_AI_USAGE_COST_CURRENCY] == "USD"

    series = {
        semconv.TENANT_ID: "acme",
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
        semconv.GEN_AI_PROVIDER_NAME: semconv.PROVIDER_OPENAI,
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
    }
    assert rig.metric_sum(semconv.METRIC_COST, series) == pytest.approx(COST, abs=1e-9)
    assert (
        rig.metric_sum(semconv.METRIC_TOKEN_USAGE, {**series, semconv.GEN_AI_TOKEN_TYPE: "input"})
        == 1000
    )
    assert (
        rig.metric_sum(semconv.METRIC_TOKEN_USAGE, {**series, semconv.GEN_AI_TOKEN_TYPE: "output"})
        == 200
    )
    assert rig.metric_count(semconv.METRIC_TOKEN_USAGE) == 2


def test_earlier_openllmetry_names_are_read_too(rig: Rig) -> None:
    with (
        otel_ml.tenant("acme"),
        rig.tracer(semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V0).start_as_current_span(
            "openai.chat",
            attributes={
                semconv.LEGACY_LLM_REQUEST_TYPE: "chat",
                semconv.LEGACY_GEN_AI_SYSTEM: "openai",
            },
        ) as span,
    ):
        span.set_attributes(
            {
                semconv.GEN_AI_REQUEST_MODEL: MODEL,
                semconv.LEGACY_GEN_AI_USAGE_PROMPT_TOKENS: 1000,
                semconv.LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS: 200,
                semconv.LEGACY_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 400,
            }
        )
    assert _attributes(rig.span("openai.chat"))[semconv.GEN_AI_USAGE_COST_AMOUNT] == (
        pytest.approx(COST, abs=1e-9)
    )
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.GEN_AI_PROVIDER_NAME: "openai"}) == (
        pytest.approx(COST, abs=1e-9)
    )


def test_cache_write_tokens_are_billed_at_the_cache_write_price(rig: Rig) -> None:
    with rig.tracer("opentelemetry.instrumentation.genai.anthropic").start_as_current_span(
        "chat acme-llm", attributes={semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT}
    ) as span:
        span.set_attributes(
            {
                semconv.GEN_AI_REQUEST_MODEL: MODEL,
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 1000,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
                semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 600,
            }
        )
    # 400 plain input at 2.0 and 600 cache writes at 2.5 (a scope otel-ml does not
    # list: the gen_ai.operation.name at start marks it as a GenAI call).
    expected = (400 * 2.0 + 600 * 2.5) / 1e6
    assert rig.metric_sum(semconv.METRIC_COST) == pytest.approx(expected, abs=1e-9)


def test_an_unpriced_model_is_counted_not_guessed(rig: Rig) -> None:
    with otel_ml.tenant("acme"):
        official_call(rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI), model="no-such-model")
    attributes = _attributes(rig.span("chat no-such-model"))
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in attributes
    assert rig.metric_sum(semconv.METRIC_COST_UNPRICED, {semconv.TENANT_ID: "acme"}) == 1
    assert rig.metric_sum(semconv.METRIC_COST) == 0


def test_tenants_beyond_the_cap_fold_on_metrics_but_not_on_spans() -> None:
    rig = Rig(max_tenants=2)
    tracer = rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI)
    for tenant_id in ("acme", "globex", "initech", "umbrella"):
        with otel_ml.tenant(tenant_id):
            official_call(tracer)

    assert sorted(_attributes(span)[semconv.TENANT_ID] for span in rig.spans()) == [
        "acme",
        "globex",
        "initech",
        "umbrella",
    ]
    for tenant_id in ("acme", "globex"):
        assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: tenant_id}) == (
            pytest.approx(COST, abs=1e-9)
        )
    assert rig.metric_sum(
        semconv.METRIC_COST, {semconv.TENANT_ID: semconv.TENANT_OVERFLOW}
    ) == pytest.approx(2 * COST, abs=1e-9)
    tenants = {
        point.attributes[semconv.TENANT_ID] for point in rig._points(semconv.METRIC_COST, None)
    }
    assert tenants == {"acme", "globex", semconv.TENANT_OVERFLOW}
    rig.telemetry.shutdown()


def test_the_tenant_is_the_one_the_span_started_under(rig: Rig) -> None:
    """A stream's span often ends in another context: the tenant of its start counts."""
    tracer = rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI)
    with otel_ml.tenant("acme"):
        span = tracer.start_span(
            "chat acme-llm",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_REQUEST_MODEL: MODEL,
            },
        )
    with otel_ml.tenant("globex"):
        span.set_attributes(_conventions_usage(**USAGE))
        span.end()
    assert _attributes(rig.span("chat acme-llm"))[semconv.TENANT_ID] == "acme"
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}) == pytest.approx(
        COST, abs=1e-9
    )
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "globex"}) == 0


def test_spans_that_are_not_genai_calls_pass_through_untouched(rig: Rig) -> None:
    with otel_ml.tenant("acme"):
        with rig.tracer("opentelemetry.instrumentation.httpx").start_as_current_span(
            "POST", kind=SpanKind.CLIENT
        ) as span:
            # Usage-looking attributes on a span that never said it is a GenAI call.
            span.set_attributes(_conventions_usage(**USAGE))
        with rig.tracer(semconv.PEER_SCOPE_OPENINFERENCE_OPENAI).start_as_current_span(
            "chain", attributes={semconv.OI_SPAN_KIND: "CHAIN"}
        ):
            pass
    post = _attributes(rig.span("POST"))
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in post
    assert semconv.TENANT_ID not in post  # no BaggageSpanProcessor on this provider
    assert _attributes(rig.span("chain")) == {
        semconv.OI_SPAN_KIND: "CHAIN",
        semconv.TENANT_ID: "acme",
    }
    assert rig.metric_sum(semconv.METRIC_COST) == 0
    assert rig.metric_count(semconv.METRIC_TOKEN_USAGE) == 0


# --- otel-ml's own spans, and calls seen twice ---------------------------------------------------


def test_otel_ml_spans_are_never_enriched_nor_counted_again(rig: Rig) -> None:
    with otel_ml.tenant("acme"):
        _own_generation()
    attributes = _attributes(rig.span(f"chat {MODEL}"))
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(OWN_COST, abs=1e-9)
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}) == pytest.approx(
        OWN_COST, abs=1e-9
    )
    assert rig.metric_count(semconv.METRIC_TOKEN_USAGE) == 2  # input and output, once


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_a_peer_span_inside_an_otel_ml_generation_is_counted_once(rig: Rig, peer: str) -> None:
    scope, call, _ = PEERS[peer]
    with otel_ml.tenant("acme"), otel_ml.generation(model=MODEL, provider="openai") as g:
        call(rig.tracer(scope))
        g.usage(input_tokens=1000, output_tokens=200)

    assert len(rig.spans()) == 2
    peer_span = next(span for span in rig.spans() if span.instrumentation_scope.name == scope)
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in _attributes(peer_span)
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}) == pytest.approx(
        OWN_COST, abs=1e-9
    )
    assert rig.metric_sum(semconv.METRIC_TOKEN_USAGE, {semconv.GEN_AI_TOKEN_TYPE: "input"}) == 1000


def test_a_peer_span_deeper_inside_an_otel_ml_generation_is_counted_once(rig: Rig) -> None:
    with (
        otel_ml.generation(model=MODEL, provider="openai") as g,
        rig.tracer("langchain").start_as_current_span("RunnableSequence"),
    ):
        openinference_call(rig.tracer(semconv.PEER_SCOPE_OPENINFERENCE_OPENAI))
        g.usage(input_tokens=1000, output_tokens=200)
    assert rig.metric_sum(semconv.METRIC_COST) == pytest.approx(OWN_COST, abs=1e-9)


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_an_otel_ml_generation_inside_a_peer_span_is_counted_once(rig: Rig, peer: str) -> None:
    scope, _, _ = PEERS[peer]
    with (
        otel_ml.tenant("acme"),
        rig.tracer(scope).start_as_current_span(
            "outer",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.OI_SPAN_KIND: semconv.OI_SPAN_KIND_LLM,
            },
        ) as outer,
    ):
        _own_generation()
        outer.set_attributes({semconv.GEN_AI_REQUEST_MODEL: MODEL, **_conventions_usage(**USAGE)})

    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in _attributes(rig.span("outer"))
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}) == pytest.approx(
        OWN_COST, abs=1e-9
    )
    assert rig.metric_count(semconv.METRIC_TOKEN_USAGE) == 2


def test_a_peer_ending_before_the_otel_ml_generation_inside_it_is_not_counted(rig: Rig) -> None:
    """Streams can end their spans in any order: otel-ml claims the call at its start."""
    tracer = rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI)
    outer = tracer.start_span(
        "chat acme-llm",
        attributes={
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
            semconv.GEN_AI_REQUEST_MODEL: MODEL,
        },
    )
    token = context.attach(trace.set_span_in_context(outer))
    try:
        with otel_ml.generation(model=MODEL, provider="openai") as generation:
            outer.set_attributes(_conventions_usage(**USAGE))
            outer.end()  # the peer's span ends first
            generation.usage(input_tokens=1000, output_tokens=200)
    finally:
        context.detach(token)
    assert rig.metric_sum(semconv.METRIC_COST) == pytest.approx(OWN_COST, abs=1e-9)


def test_two_peers_on_one_call_count_it_once_on_the_inner_span(rig: Rig) -> None:
    with (
        otel_ml.tenant("acme"),
        rig.tracer(semconv.PEER_SCOPE_OPENINFERENCE_OPENAI).start_as_current_span(
            "ChatCompletion", attributes={semconv.OI_SPAN_KIND: semconv.OI_SPAN_KIND_LLM}
        ) as outer,
    ):
        official_call(rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI))
        outer.set_attributes(
            {
                semconv.OI_LLM_MODEL_NAME: MODEL,
                semconv.OI_TOKEN_COUNT_PROMPT: 1000,
                semconv.OI_TOKEN_COUNT_COMPLETION: 200,
            }
        )

    assert len(rig.spans()) == 2
    assert _attributes(rig.span(f"chat {MODEL}"))[semconv.GEN_AI_USAGE_COST_AMOUNT] == (
        pytest.approx(COST, abs=1e-9)
    )
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in _attributes(rig.span("ChatCompletion"))
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}) == pytest.approx(
        COST, abs=1e-9
    )
    assert rig.metric_count(semconv.METRIC_TOKEN_USAGE) == 2


def test_the_inner_span_takes_the_request_model_and_provider_of_the_call_above(
    rig: Rig,
) -> None:
    """OpenInference inside the official instrumentation: OpenInference names only
    the response's model; the series is the request model's, as otel-ml's own."""
    with (
        otel_ml.tenant("acme"),
        rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI).start_as_current_span(
            f"chat {MODEL}",
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_PROVIDER_NAME: semconv.PROVIDER_OPENAI,
                semconv.GEN_AI_REQUEST_MODEL: MODEL,
            },
        ),
    ):
        openinference_call(rig.tracer(semconv.PEER_SCOPE_OPENINFERENCE_OPENAI), model="dated-x")
    series = {
        semconv.TENANT_ID: "acme",
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
        semconv.GEN_AI_PROVIDER_NAME: semconv.PROVIDER_OPENAI,
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
    }
    assert rig.metric_sum(semconv.METRIC_COST, series) == pytest.approx(COST, abs=1e-9)
    assert rig.metric_sum(semconv.METRIC_COST) == pytest.approx(COST, abs=1e-9)


def test_an_outer_span_summing_two_calls_counts_the_calls(rig: Rig) -> None:
    """A framework's LLM span over two client calls reports their sum: the
    calls are counted, the sum is not counted again."""
    tracer = rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI)
    with rig.tracer("agent").start_as_current_span(
        "invoke_agent", attributes={semconv.GEN_AI_OPERATION_NAME: "invoke_agent"}
    ) as agent:
        official_call(tracer)
        official_call(tracer, input=500, output=100, cache_read=0)
        agent.set_attributes(_conventions_usage(input=1500, output=300, cache_read=400))
    second = (500 * 2.0 + 100 * 8.0) / 1e6
    assert rig.metric_sum(semconv.METRIC_COST) == pytest.approx(COST + second, abs=1e-9)
    assert rig.metric_sum(semconv.METRIC_TOKEN_USAGE, {semconv.GEN_AI_TOKEN_TYPE: "input"}) == 1500


def test_sibling_calls_are_each_counted(rig: Rig) -> None:
    tracer = rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI)
    with otel_ml.tenant("acme"), rig.tracer("app").start_as_current_span("request"):
        for _ in range(3):
            official_call(tracer)
    assert rig.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}) == pytest.approx(
        3 * COST, abs=1e-9
    )


# --- metrics the peers record themselves ----------------------------------------------------


def test_the_peers_tenantless_token_histogram_is_dropped_ours_kept(rig: Rig) -> None:
    meter_provider = rig.telemetry.meter_provider
    for scope in (semconv.PEER_SCOPE_GENAI_OPENAI, semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V1):
        histogram = meter_provider.get_meter(scope).create_histogram(semconv.METRIC_TOKEN_USAGE)
        histogram.record(1000, {semconv.GEN_AI_TOKEN_TYPE: "input"})
        duration = meter_provider.get_meter(scope).create_histogram(
            semconv.METRIC_OPERATION_DURATION
        )
        duration.record(0.5, {semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT})
    with otel_ml.tenant("acme"):
        official_call(rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI))

    assert rig.metric_sum(semconv.METRIC_TOKEN_USAGE, {semconv.GEN_AI_TOKEN_TYPE: "input"}) == 1000
    assert rig.metric_count(semconv.METRIC_TOKEN_USAGE, {semconv.TENANT_ID: "acme"}) == 2
    # The peers' duration stays theirs: otel-ml records none for their calls.
    assert rig.metric_count(semconv.METRIC_OPERATION_DURATION) == 2


# --- never breaks the app, bounded memory -------------------------------------------------------


def test_a_fault_in_enrichment_is_logged_once_and_spans_still_export(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: PriceTable, model: str) -> None:
        raise RuntimeError("price table exploded")

    monkeypatch.setattr(PriceTable, "lookup", broken)
    tracer = rig.tracer(semconv.PEER_SCOPE_GENAI_OPENAI)
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        official_call(tracer)
        official_call(tracer)
    assert [span.name for span in rig.spans()] == [f"chat {MODEL}"] * 2
    faults = [r for r in caplog.records if "enrichment on_end" in r.getMessage()]
    assert len(faults) == 1


def test_live_span_bookkeeping_empties_and_is_capped() -> None:
    lineage = Lineage(max_live=10)
    call = lineage.start(1, None, genai=True, own=False, tenant="acme")
    assert call is not None
    for span_id in range(2, 40):  # children of the call that never end
        lineage.start(span_id, 1, genai=False, own=False, tenant=None)
    assert len(lineage) == 10

    lineage = Lineage()
    lineage.start(1, None, genai=True, own=False, tenant=None)
    lineage.start(2, 1, genai=False, own=False, tenant=None)
    lineage.start(3, None, genai=False, own=False, tenant=None)  # outside any call: not kept
    assert len(lineage) == 2
    lineage.end(2)
    lineage.end(1)
    lineage.end(3)
    assert len(lineage) == 0


def test_processor_without_a_recorder_passes_spans_through() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        EnrichingSpanProcessor("otel_ml").wrap(SimpleSpanProcessor(exporter))
    )
    official_call(provider.get_tracer(semconv.PEER_SCOPE_GENAI_OPENAI))
    (span,) = exporter.get_finished_spans()
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in (span.attributes or {})
    provider.shutdown()


# --- configure() installs it -----------------------------------------------------------------


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Unset OTel globals and otel-ml registry, restored after the test."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(telemetry_module, "_configured", {})
    monkeypatch.setattr(telemetry_module, "_default", None)
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_ML_DATA_DIR", str(tmp_path))
    return tmp_path


def _file_spans(folder: Path) -> dict[str, dict[str, Any]]:
    """Span name -> attributes, from the embedded default's OTLP JSON lines."""
    found: dict[str, dict[str, Any]] = {}
    for path in folder.glob("traces-*.jsonl"):
        for line in path.read_text().splitlines():
            for resource_spans in json.loads(line)["resourceSpans"]:
                for scope_spans in resource_spans["scopeSpans"]:
                    for span in scope_spans["spans"]:
                        found[span["name"]] = {
                            item["key"]: next(iter(item["value"].values()))
                            for item in span.get("attributes", [])
                        }
    return found


@pytest.mark.parametrize("enrich", [True, False])
def test_configure_enriches_peer_spans_on_the_providers_it_builds(
    data_dir: Path, enrich: bool
) -> None:
    telemetry = otel_ml.configure(service_name="rag-api", pricing=PRICES, enrich=enrich)
    try:
        with otel_ml.tenant("acme"):
            official_call(trace.get_tracer(semconv.PEER_SCOPE_GENAI_OPENAI))
        assert metrics.get_meter_provider() is telemetry.meter_provider
    finally:
        telemetry.shutdown()
        atexit.unregister(telemetry.shutdown)
    attributes = _file_spans(data_dir)[f"chat {MODEL}"]
    assert attributes[semconv.TENANT_ID] == "acme"  # the BaggageSpanProcessor's, either way
    if enrich:
        assert float(attributes[semconv.GEN_AI_USAGE_COST_AMOUNT]) == pytest.approx(COST, abs=1e-9)
    else:
        assert semconv.GEN_AI_USAGE_COST_AMOUNT not in attributes
