"""The streaming hot path stays cheap without timing anything.

While a stream is consumed, otel-ml runs a fixed number of Python frames per
chunk (the generator that stamps the chunk, and the observer that takes its
text), no SDK call, and keeps no chunk object alive (the garbage collector
would charge for it), counted with ``sys.setprofile`` through the real
``openai`` and ``anthropic`` clients over their HTTP transport. At the end,
every gap between chunks lands in the time-per-output-chunk histogram, with
one exemplar pointing at the generation span, whether otel-ml's providers
take the gaps in one batch or a user's plain providers take them one by one.
"""

from __future__ import annotations

import asyncio
import dis
import itertools
import json
import statistics
import sys
from collections.abc import AsyncIterable, Callable, Iterable
from types import FrameType
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from test_instrument_anthropic_wire import MODEL as ANTHROPIC_MODEL
from test_instrument_anthropic_wire import Server, stream_events

import otel_ml
from otel_ml import providers, semconv
from otel_ml.metrics import GAP_BATCH_KEY, GapBatch, record_gaps
from otel_ml.spans import _stream
from otel_ml.telemetry import _SCOPE

CHUNKS = 60
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "How does the collector batch spans?"}]
ATTRIBUTES = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT, semconv.GEN_AI_REQUEST_MODEL: MODEL}


# --- set-up ---------------------------------------------------------------------


class Sink:
    """A Telemetry on in-memory providers; ``gap_views``: as configure() builds them."""

    def __init__(self, gap_views: bool = True, sampled: bool = True) -> None:
        self.spans_out = InMemorySpanExporter()
        tracer_provider = TracerProvider(sampler=None if sampled else ALWAYS_OFF)
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        views = providers.chunk_gap_views() if gap_views else []
        meter_provider = MeterProvider(metric_readers=[self.reader], views=views)
        self.telemetry = otel_ml.Telemetry(tracer_provider, meter_provider, owns_providers=True)

    def span(self) -> ReadableSpan:
        (span,) = self.spans_out.get_finished_spans()
        return span

    def per_chunk_point(self) -> HistogramDataPoint:
        data = self.reader.get_metrics_data()
        points = [
            point
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == semconv.METRIC_TIME_PER_OUTPUT_CHUNK
            for point in metric.data.data_points
        ]
        (point,) = points
        assert isinstance(point, HistogramDataPoint)
        return point


def openai_body(chunks: int) -> bytes:
    """A chat completion stream as OpenAI sends it with include_usage."""
    base = {
        "id": "chatcmpl-hot",
        "object": "chat.completion.chunk",
        "created": 1733000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_hot",
    }

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = [{**base, "choices": [choice({"role": "assistant", "content": ""})], "usage": None}]
    events += [
        {**base, "choices": [choice({"content": f" t{i}"})], "usage": None} for i in range(chunks)
    ]
    events.append({**base, "choices": [choice({}, "stop")], "usage": None})
    events.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": chunks,
                "total_tokens": 12 + chunks,
            },
        }
    )
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


def openai_client() -> openai.OpenAI:
    body = openai_body(CHUNKS)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return openai.OpenAI(
        api_key="test",
        base_url="https://api.openai.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def async_openai_client() -> openai.AsyncOpenAI:
    body = openai_body(CHUNKS)

    async def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return openai.AsyncOpenAI(
        api_key="test",
        base_url="https://api.openai.test/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )


def create(client: openai.OpenAI) -> Any:
    messages: Any = MESSAGES
    return client.chat.completions.create(model=MODEL, messages=messages, stream=True)


# --- counting the work per chunk ------------------------------------------------------


class PerChunk:
    """Python frames entered (calls and generator resumptions) between two
    chunks reaching the application, for the chunks in the middle of a stream
    (the first includes the request, the last the span's end)."""

    def __init__(self) -> None:
        self.total = 0
        self.ours = 0  # frames of otel_ml's code
        self.sdk = 0  # frames of the OpenTelemetry API or SDK
        self._marks: list[tuple[int, int, int]] = []

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            self.total += 1
            filename = frame.f_code.co_filename
            if "/otel_ml/" in filename:
                self.ours += 1
            elif "/opentelemetry/" in filename:
                self.sdk += 1

    def mark(self) -> None:
        self._marks.append((self.total, self.ours, self.sdk))

    def consume(self, stream: Iterable[Any]) -> None:
        sys.setprofile(self._profile)
        try:
            for _ in stream:
                self.mark()
        finally:
            sys.setprofile(None)

    def consume_async(self, stream: AsyncIterable[Any]) -> None:
        async def run() -> None:
            sys.setprofile(self._profile)
            try:
                async for _ in stream:
                    self.mark()
            finally:
                sys.setprofile(None)

        asyncio.run(run())

    def middle(self, column: int) -> list[int]:
        marks = self._marks[5:-5]
        assert len(marks) > CHUNKS // 2
        return [after[column] - before[column] for before, after in itertools.pairwise(marks)]


def raw_frames_per_chunk(consume: Callable[[PerChunk], None]) -> float:
    counter = PerChunk()
    consume(counter)
    return statistics.median(counter.middle(0))


def assert_frames_per_chunk(counter: PerChunk, raw_median: float, ours: int = 2) -> None:
    """``ours``: the generator and the observer (plus, for Anthropic, its event reader)."""
    assert set(counter.middle(1)) == {ours}, "otel-ml's frames per chunk"
    assert set(counter.middle(2)) == {0}, "no OpenTelemetry call per chunk"
    assert statistics.median(counter.middle(0)) == raw_median + ours


def test_wrap_runs_two_frames_per_chunk_through_the_openai_client() -> None:
    sink = Sink()
    raw = raw_frames_per_chunk(lambda c: c.consume(create(openai_client())))
    counter = PerChunk()
    client = openai_client()
    with sink.telemetry.generation(MODEL, "openai", stream=True) as g:
        counter.consume(g.wrap(create(client)))
    assert_frames_per_chunk(counter, raw)
    assert sink.span().attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == CHUNKS  # type: ignore[index]


def test_instrument_openai_runs_two_frames_per_chunk_sync_and_async() -> None:
    sink = Sink()
    raw = raw_frames_per_chunk(lambda c: c.consume(create(openai_client())))
    counter = PerChunk()
    client = openai_client()
    otel_ml.instrument_openai(client, telemetry=sink.telemetry)
    counter.consume(create(client))
    assert_frames_per_chunk(counter, raw)

    async def acreate(client: openai.AsyncOpenAI) -> Any:
        messages: Any = MESSAGES
        return await client.chat.completions.create(model=MODEL, messages=messages, stream=True)

    raw_async = raw_frames_per_chunk(
        lambda c: c.consume_async(asyncio.run(acreate(async_openai_client())))
    )
    async_client = async_openai_client()
    otel_ml.instrument_openai(async_client, telemetry=sink.telemetry)
    counter = PerChunk()
    counter.consume_async(asyncio.run(acreate(async_client)))
    assert_frames_per_chunk(counter, raw_async)


def test_instrument_anthropic_runs_three_frames_per_event() -> None:
    deltas = tuple(f" t{i}" for i in range(CHUNKS))
    server = Server(events=stream_events(deltas))

    def stream(client: anthropic.Anthropic) -> Any:
        return client.messages.create(
            model=ANTHROPIC_MODEL,
            max_tokens=64,
            stream=True,
            messages=[{"role": "user", "content": "hi"}],
        )

    raw = raw_frames_per_chunk(lambda c: c.consume(stream(server.client())))
    sink = Sink()
    client = server.client()
    otel_ml.instrument_anthropic(client, telemetry=sink.telemetry)
    counter = PerChunk()
    try:
        counter.consume(stream(client))
    finally:
        # The request-path hooks stay on while an instrumented client lives: a
        # client left instrumented would leak them into later tests.
        otel_ml.uninstrument_anthropic(client)
    assert_frames_per_chunk(counter, raw, ours=3)
    assert sink.span().attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == CHUNKS  # type: ignore[index]
    point = sink.per_chunk_point()
    assert point.count == CHUNKS - 1 == sum(point.bucket_counts)


def test_text_chunks_are_not_kept_alive_until_the_end() -> None:
    sink = Sink()
    client = openai_client()
    with sink.telemetry.generation(MODEL, "openai", stream=True) as g:
        wrapped = g.wrap(create(client))
        for index, _ in enumerate(wrapped):
            if index == CHUNKS // 2:
                assert wrapped.gi_frame is not None
                kept = wrapped.gi_frame.f_locals["state"].kept
                assert len(kept) == 1  # the first chunk (role, id, model) only
    otel_ml.instrument_openai(client, telemetry=sink.telemetry)
    stream = create(client)
    for index, _ in enumerate(stream):
        if index == CHUNKS // 2:
            assert len(stream._self_state.kept) == 1
    spans = sink.spans_out.get_finished_spans()
    assert [s.attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] for s in spans] == [CHUNKS, CHUNKS]  # type: ignore[index]
    assert {s.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] for s in spans} == {("stop",)}  # type: ignore[index]
    assert {s.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] for s in spans} == {CHUNKS}  # type: ignore[index]


def _loop_opnames(function: Callable[..., Any]) -> set[str]:
    """The instructions of a function's (only) loop, head to backward jump."""
    instructions = list(dis.get_instructions(function))
    (jump,) = [i for i in instructions if i.opname == "JUMP_BACKWARD"]
    head = jump.argval
    return {i.opname for i in instructions if head <= i.offset <= jump.offset}


@pytest.mark.parametrize(
    "loop", [_stream._iterate, _stream._iterate_async, _stream.tap, _stream.tap_async]
)
def test_the_per_chunk_loops_read_no_attribute(loop: Callable[..., Any]) -> None:
    opnames = _loop_opnames(loop)
    assert "YIELD_VALUE" in opnames  # the loop found is the one that yields chunks
    assert not opnames & {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "BINARY_SUBSCR"}


# --- every gap recorded, one exemplar ---------------------------------------------


@pytest.mark.parametrize("gap_views", [True, False], ids=["otel_ml_providers", "plain_providers"])
@pytest.mark.parametrize("variant", ["wrap", "instrument_openai"])
def test_every_gap_lands_in_the_histogram_with_one_exemplar(gap_views: bool, variant: str) -> None:
    sink = Sink(gap_views)
    client = openai_client()
    if variant == "wrap":
        with sink.telemetry.generation(MODEL, "openai", stream=True) as g:
            for _ in g.wrap(create(client)):
                pass
    else:
        otel_ml.instrument_openai(client, telemetry=sink.telemetry)
        for _ in create(client):
            pass
    span = sink.span()
    point = sink.per_chunk_point()
    assert point.count == CHUNKS - 1
    assert sum(point.bucket_counts) == CHUNKS - 1
    mean = span.attributes[semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN]  # type: ignore[index]
    assert point.sum == pytest.approx(mean * (CHUNKS - 1))  # type: ignore[operator]
    (exemplar,) = point.exemplars
    assert exemplar.trace_id == span.context.trace_id  # type: ignore[union-attr]
    assert exemplar.span_id == span.context.span_id  # type: ignore[union-attr]
    assert exemplar.value == point.max  # the slowest gap is the one linked


def test_an_unsampled_span_gives_no_exemplar_and_every_gap() -> None:
    sink = Sink(sampled=False)
    with sink.telemetry.generation(MODEL, "openai", stream=True) as g:
        for _ in g.wrap([f"t{i}" for i in range(CHUNKS)]):
            pass
    point = sink.per_chunk_point()
    assert point.count == CHUNKS - 1 == sum(point.bucket_counts)
    assert not point.exemplars


def _record(gap_views: bool, stamps: list[float]) -> HistogramDataPoint:
    sink = Sink(gap_views)
    histogram = sink.telemetry._recorder.instruments.time_per_output_chunk
    record_gaps(histogram, stamps, ATTRIBUTES)
    record_gaps(histogram, stamps[:3], ATTRIBUTES)  # a second stream, same point
    return sink.per_chunk_point()


def test_the_batch_gives_the_exact_histogram_of_one_record_per_gap() -> None:
    # Gaps on bucket boundaries, between them, above the last and equal ones.
    gaps = [*semconv.DURATION_BUCKETS, 0.0, 1e-6, 0.0123, 0.0123, 500.0, 0.25, 0.1]
    stamps = [0.0]
    for gap in gaps:
        stamps.append(stamps[-1] + gap)
    batched, one_by_one = _record(True, stamps), _record(False, stamps)
    assert batched.bucket_counts == one_by_one.bucket_counts
    assert batched.count == one_by_one.count == len(gaps) + 2
    assert batched.sum == pytest.approx(one_by_one.sum)
    assert (batched.min, batched.max) == (one_by_one.min, one_by_one.max)


def test_configure_s_meter_provider_takes_the_batch(tmp_path: Any) -> None:
    destination = providers.Destination(None, "file", tmp_path)
    meter_provider = providers.build_meter_provider(
        providers.build_resource("hot-path"), destination
    )
    try:
        for name in (
            semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
            semconv.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK,
        ):
            histogram = meter_provider.get_meter(_SCOPE).create_histogram(name, unit="s")
            batch = GapBatch([0.1, 0.2])
            histogram.record(0.3, ATTRIBUTES, context=otel_context.set_value(GAP_BATCH_KEY, batch))
            assert batch.claimed, name
        # Another library's instrument of the same name keeps the SDK's own aggregation.
        peer = meter_provider.get_meter("peer").create_histogram(
            semconv.METRIC_TIME_PER_OUTPUT_CHUNK, unit="s"
        )
        batch = GapBatch([0.1])
        peer.record(0.3, ATTRIBUTES, context=otel_context.set_value(GAP_BATCH_KEY, batch))
        assert not batch.claimed
    finally:
        meter_provider.shutdown()


def test_exponential_histograms_asked_for_keep_their_aggregation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        "base2_exponential_bucket_histogram",
    )
    assert providers.chunk_gap_views() == []


def test_an_sdk_without_the_expected_aggregation_falls_back_to_one_record_per_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(providers, "_MERGED_FIELDS", ("_a_field_no_sdk_has",))
    stamps = [0.0, 0.1, 0.3, 0.6, 1.0]
    point = _record(True, stamps)
    assert point.count == 4 + 2 == sum(point.bucket_counts)
    assert point.sum == pytest.approx(1.0 + 0.3)
