"""Other GenAI instrumentations, for real, with otel-ml's enrichment on.

The official ``opentelemetry-instrumentation-genai-openai`` 1.3b0 runs together
with OpenInference (``openinference-instrumentation-openai`` 0.1.66) or OpenLLMetry
(``opentelemetry-instrumentation-openai`` 0.62.4), all of them patching the real
``openai`` 3.x client, which talks to a canned OpenAI server through
``httpx2.MockTransport``. The per-tenant ``llm.cost.usd`` and token usage they give
through the enrichment must equal what ``otel_ml.instrument_openai()`` gives for
the same calls, each call counted once, and no span added or lost. The peers
patch openai globally: each test uninstruments them before it ends.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx2
import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as Official
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ml
from otel_ml import semconv
from otel_ml.pricing import PriceTable
from otel_ml.telemetry import Telemetry, set_current

MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
# Explicit prices, so the expected cost is written out below (USD per 1M tokens).
PRICES = {
    "models": {
        MODEL: {"input": 0.15, "output": 0.6, "cached_input": 0.075, "snapshots": [RESPONSE_MODEL]}
    }
}
INPUT, OUTPUT, CACHED = 1000, 200, 400
# 600 uncached input tokens, 400 cached, 200 output.
CALL_COST = (600 * 0.15 + 400 * 0.075 + 200 * 0.6) / 1e6  # 0.00024
USAGE = {
    "prompt_tokens": INPUT,
    "completion_tokens": OUTPUT,
    "total_tokens": INPUT + OUTPUT,
    "prompt_tokens_details": {"cached_tokens": CACHED, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
MESSAGES = [{"role": "user", "content": "What does RAG ground answers in?"}]
ANSWER = ["Retrieved", " documents", "."]
COMPLETION = {
    "id": "chatcmpl-enrich1",
    "object": "chat.completion",
    "created": 1767225600,
    "model": RESPONSE_MODEL,
    "system_fingerprint": "fp_enrich",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(ANSWER), "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
    "service_tier": "default",
}
# Who calls, and how often: (tenant, stream).
CALLS = [("acme", False), ("acme", False), ("globex", False), ("acme", True)]

PEERS: dict[str, type[BaseInstrumentor]] = {
    "official": Official,
    "openinference": OpenInference,
    "openllmetry": OpenLLMetry,
}


def _chunk(
    delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-enrich1",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": RESPONSE_MODEL,
        "system_fingerprint": "fp_enrich",
        "choices": []
        if usage
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


def _sse() -> bytes:
    """A chat stream as OpenAI sends it with include_usage: the usage chunk has
    no choices, and ``data: [DONE]`` ends it."""
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": piece}) for piece in ANSWER]
    chunks += [_chunk({}, finish="stop"), _chunk({}, usage=USAGE)]
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def _reply(request: httpx2.Request) -> httpx2.Response:
    if json.loads(request.content).get("stream"):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=_sse())
    return httpx2.Response(200, json=COMPLETION)


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_reply)),
    )


def _make_calls() -> None:
    client = _client()
    for tenant_id, stream in CALLS:
        with otel_ml.tenant(tenant_id):
            if stream:
                chunks = client.chat.completions.create(
                    model=MODEL,
                    messages=MESSAGES,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                assert "".join(
                    c.choices[0].delta.content or "" for c in chunks if c.choices
                ) == "".join(ANSWER)
            else:
                reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
                assert reply.usage is not None and reply.usage.prompt_tokens == INPUT


class Pipeline:
    """A Telemetry on in-memory providers, with or without the enrichment
    (the documented set-up for apps that bring their own providers)."""

    def __init__(self, enrich: bool) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.meter_provider = MeterProvider(
            metric_readers=[self.reader], views=Telemetry.enrichment_views() if enrich else ()
        )
        self.telemetry = Telemetry(
            self.tracer_provider,
            self.meter_provider,
            owns_providers=True,
            prices=PriceTable.load(PRICES),
        )
        export = SimpleSpanProcessor(self.exporter)
        self.tracer_provider.add_span_processor(
            self.telemetry.enrichment_processor(export) if enrich else export
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def metric_sum(self, name: str, attributes: Mapping[str, Any]) -> float:
        total = 0.0
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        have = point.attributes or {}
                        if all(have.get(k) == v for k, v in attributes.items()):
                            total += (
                                point.sum if isinstance(point, HistogramDataPoint) else point.value
                            )
        return total

    def per_tenant(self) -> dict[str, tuple[float, float, float]]:
        """tenant -> (cost, input tokens, output tokens)."""
        return {
            tenant_id: (
                self.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: tenant_id}),
                self.metric_sum(
                    semconv.METRIC_TOKEN_USAGE,
                    {semconv.TENANT_ID: tenant_id, semconv.GEN_AI_TOKEN_TYPE: "input"},
                ),
                self.metric_sum(
                    semconv.METRIC_TOKEN_USAGE,
                    {semconv.TENANT_ID: tenant_id, semconv.GEN_AI_TOKEN_TYPE: "output"},
                ),
            )
            for tenant_id in ("acme", "globex")
        }

    def shutdown(self) -> None:
        self.telemetry.shutdown()


def _openai_class_attributes() -> dict[tuple[type, str], object]:
    """Every attribute of every class the openai package defines: what the
    peers patch, wherever they patch it."""
    found: dict[tuple[type, str], object] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "openai" or name.startswith("openai.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                for attribute, member in list(vars(value).items()):
                    found[(value, attribute)] = member
    return found


def _restore(saved: dict[tuple[type, str], object]) -> None:
    """Put back what an uninstrument left patched: not every peer's
    uninstrument() unwraps all it wrapped, and the unit tests of
    instrument_openai() that run later need the pristine client."""
    known = {cls for cls, _ in saved}
    for (cls, attribute), member in _openai_class_attributes().items():
        if cls not in known:
            continue  # imported since: nobody patched it before it existed
        original = saved.get((cls, attribute), _ABSENT)
        if original is _ABSENT:
            delattr(cls, attribute)
        elif original is not member:
            setattr(cls, attribute, original)


_ABSENT = object()


@pytest.fixture
def run() -> Iterator[Callable[..., Pipeline]]:
    """Runs CALLS with the given peers (and instrument_openai() if asked) on a
    fresh pipeline; uninstruments everything afterwards, and restores any
    openai attribute a peer left patched."""
    made: list[Pipeline] = []
    previous = set_current(None)
    saved = _openai_class_attributes()

    def go(*peers: str, enrich: bool = True, own: bool = False) -> Pipeline:
        pipeline = Pipeline(enrich)
        made.append(pipeline)
        set_current(pipeline.telemetry)
        instrumentors = [PEERS[name]() for name in peers]
        try:
            if own:
                otel_ml.instrument_openai()
            for instrumentor in instrumentors:
                instrumentor.instrument(
                    tracer_provider=pipeline.tracer_provider, meter_provider=pipeline.meter_provider
                )
            _make_calls()
        finally:
            for instrumentor in instrumentors:
                instrumentor.uninstrument()
            if own:
                otel_ml.uninstrument_openai()
        return pipeline

    try:
        yield go
    finally:
        _restore(saved)
        set_current(previous)
        for pipeline in made:
            pipeline.shutdown()


EXPECTED = {
    "acme": (3 * CALL_COST, 3 * INPUT, 3 * OUTPUT),
    "globex": (CALL_COST, INPUT, OUTPUT),
}


def _assert_same(
    got: dict[str, tuple[float, float, float]], reference: dict[str, tuple[float, float, float]]
) -> None:
    for tenant_id, (cost, input_tokens, output_tokens) in reference.items():
        assert got[tenant_id][0] == pytest.approx(cost, abs=1e-12), tenant_id
        assert got[tenant_id][1:] == (input_tokens, output_tokens), tenant_id


def _assert_per_tenant(got: dict[str, tuple[float, float, float]]) -> None:
    for tenant_id, (cost, input_tokens, output_tokens) in EXPECTED.items():
        assert got[tenant_id][0] == pytest.approx(cost, abs=1e-12), tenant_id
        assert got[tenant_id][1:] == (input_tokens, output_tokens), tenant_id


def test_instrument_openai_gives_the_reference(run: Callable[..., Pipeline]) -> None:
    pipeline = run(own=True)
    assert len(pipeline.spans()) == len(CALLS)
    _assert_per_tenant(pipeline.per_tenant())


@pytest.mark.parametrize("second", ["openinference", "openllmetry"])
def test_two_peers_with_enrichment_equal_instrument_openai(
    run: Callable[..., Pipeline], second: str
) -> None:
    reference = run(own=True).per_tenant()
    pipeline = run("official", second)

    _assert_per_tenant(pipeline.per_tenant())
    _assert_same(pipeline.per_tenant(), reference)
    spans = pipeline.spans()
    # One span per call from each peer, none added by otel-ml.
    scopes = sorted(span.instrumentation_scope.name for span in spans)
    assert len(spans) == 2 * len(CALLS), scopes
    assert len({span.context.span_id for span in spans}) == len(spans)
    # Exactly one span of each call carries the cost, with the call's tenant.
    priced = [span for span in spans if semconv.GEN_AI_USAGE_COST_AMOUNT in span.attributes]
    assert len(priced) == len(CALLS)
    assert sorted(span.attributes[semconv.TENANT_ID] for span in priced) == sorted(
        tenant_id for tenant_id, _ in CALLS
    )
    for span in priced:
        assert span.attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
            CALL_COST, abs=1e-12
        )
    # The peers' own tenant-less token histograms are gone: no sum counts a call twice.
    everyone = pipeline.metric_sum(semconv.METRIC_TOKEN_USAGE, {semconv.GEN_AI_TOKEN_TYPE: "input"})
    assert everyone == len(CALLS) * INPUT


def test_without_enrichment_the_peers_give_no_cost(run: Callable[..., Pipeline]) -> None:
    """The control: what the enrichment adds is not there without it."""
    pipeline = run("official", "openinference", enrich=False)
    assert pipeline.metric_sum(semconv.METRIC_COST, {}) == 0
    assert not any(semconv.GEN_AI_USAGE_COST_AMOUNT in s.attributes for s in pipeline.spans())
    # The official instrumentation's own histogram, without tenant.
    assert (
        pipeline.metric_sum(semconv.METRIC_TOKEN_USAGE, {semconv.GEN_AI_TOKEN_TYPE: "input"})
        == len(CALLS) * INPUT
    )
    assert pipeline.metric_sum(semconv.METRIC_TOKEN_USAGE, {semconv.TENANT_ID: "acme"}) == 0


@pytest.mark.parametrize("peer", ["official", "openinference", "openllmetry"])
def test_a_peer_and_instrument_openai_on_the_same_calls_count_each_once(
    run: Callable[..., Pipeline], peer: str
) -> None:
    reference = run(own=True).per_tenant()
    pipeline = run(peer, own=True)

    _assert_same(pipeline.per_tenant(), reference)
    spans = pipeline.spans()
    assert len(spans) == 2 * len(CALLS)
    own = [s for s in spans if s.instrumentation_scope.name == "otel_ml"]
    assert len(own) == len(CALLS)
    # Only otel-ml's spans carry the cost: the peer's are not priced again.
    priced = [s for s in spans if semconv.GEN_AI_USAGE_COST_AMOUNT in s.attributes]
    assert {s.context.span_id for s in priced} == {s.context.span_id for s in own}
