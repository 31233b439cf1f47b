"""The SDK's own faults never reach the application; the application's
exceptions always do, unchanged.

Hypothesis throws random types, None, NaN, negative and huge values at every
public parameter and method; broken exporters, processors and instruments
stand in for SDK faults.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import otel_ml
from otel_ml import semconv
from otel_ml import telemetry as telemetry_module
from otel_ml.telemetry import Telemetry, set_current
from otel_ml.testing import Capture

FUZZ = settings(
    max_examples=150,
    deadline=None,  # the first local token count builds a tokenizer
    # Nested random values are big by design; these checks would only flake.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0, 1e308, 5e-324]),
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "<|endoftext|>", "gpt-4o-mini", "a" * 300]),
    st.binary(max_size=16),
    st.complex_numbers(allow_nan=True),
    st.builds(Decimal, st.sampled_from(["NaN", "-1", "1e400", "0.5"])),
    st.builds(object),
    st.builds(np.float64, st.floats(allow_nan=True)),
    st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
anything = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def capture() -> Iterator[Capture]:
    """One capture for all examples (hypothesis reruns the test body, not fixtures)."""
    made = Capture(capture_content=True)
    previous = set_current(made.telemetry)
    yield made
    set_current(previous)
    made.shutdown()


def _one_more_span(capture: Capture, before: int) -> ReadableSpan:
    finished = capture.exporter.get_finished_spans()
    assert len(finished) == before + 1
    return finished[-1]


def _span_count(capture: Capture) -> int:
    return len(capture.exporter.get_finished_spans())


# --- every parameter and method ------------------------------------------------------------------


@FUZZ
@given(
    model=anything,
    provider=anything,
    prompt=anything,
    stream=anything,
    operation=anything,
    chunks=st.lists(anything, max_size=5),
    output=anything,
    usage=st.tuples(anything, anything, anything),
    response=st.tuples(anything, anything, anything),
)
def test_generation_never_raises(
    capture: Capture,
    model: Any,
    provider: Any,
    prompt: Any,
    stream: Any,
    operation: Any,
    chunks: list[Any],
    output: Any,
    usage: tuple[Any, Any, Any],
    response: tuple[Any, Any, Any],
) -> None:
    before = _span_count(capture)
    with capture.telemetry.generation(model, provider, prompt, stream, operation) as g:
        for chunk in chunks:
            g.chunk(chunk)
        yielded = list(g.wrap(chunks))
        g.output(output)
        g.usage(*usage)
        g.response(*response)
    assert len(yielded) == len(chunks)
    assert all(a is b for a, b in zip(yielded, chunks, strict=True))  # items pass unchanged
    span = _one_more_span(capture, before)
    attributes = span.attributes or {}
    for key in (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS):
        tokens = attributes.get(key, 0)
        assert isinstance(tokens, int) and tokens >= 0
    cost = attributes.get(semconv.GEN_AI_USAGE_COST_AMOUNT, 0.0)
    assert isinstance(cost, float) and math.isfinite(cost) and cost >= 0


@FUZZ
@given(chunks=st.lists(anything, max_size=5), usage=st.tuples(anything, anything, anything))
async def test_async_generation_never_raises(
    capture: Capture, chunks: list[Any], usage: tuple[Any, Any, Any]
) -> None:
    async def source() -> AsyncIterator[Any]:
        for chunk in chunks:
            yield chunk

    before = _span_count(capture)
    async with otel_ml.generation(model="gpt-4o-mini", provider="openai", stream=True) as g:
        yielded = [item async for item in g.wrap_async(source())]
        g.usage(*usage)
    assert all(a is b for a, b in zip(yielded, chunks, strict=True))
    _one_more_span(capture, before)


@FUZZ
@given(
    data_source=anything,
    query=anything,
    top_k=anything,
    hits=st.one_of(anything, st.lists(anything, max_size=6)),
)
def test_retrieval_never_raises(
    capture: Capture, data_source: Any, query: Any, top_k: Any, hits: Any
) -> None:
    before = _span_count(capture)
    with capture.telemetry.retrieval(data_source, query, top_k) as r:
        r.record(hits)
    span = _one_more_span(capture, before)
    attributes = span.attributes or {}
    count = attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT]
    assert isinstance(count, int) and count >= 0
    for key in (semconv.RAG_RETRIEVAL_SCORE_MAX, semconv.RAG_RETRIEVAL_SCORE_MEAN):
        score = attributes.get(key, 0.0)
        assert isinstance(score, float) and math.isfinite(score)


@FUZZ
@given(model=anything, predictions=st.lists(anything, max_size=4))
def test_inference_never_raises(capture: Capture, model: Any, predictions: list[Any]) -> None:
    before = _span_count(capture)
    with capture.telemetry.inference(model) as p:
        for prediction in predictions:
            p.prediction(prediction)
    _one_more_span(capture, before)


@FUZZ
@given(trace_id=anything, kind=anything, score=anything, span_id=anything)
def test_feedback_never_raises(
    capture: Capture, trace_id: Any, kind: Any, score: Any, span_id: Any
) -> None:
    before = _span_count(capture)
    otel_ml.feedback(trace_id, kind, score=score, span_id=span_id)
    assert _span_count(capture) - before in (0, 1)


@FUZZ
@given(tenant_id=anything)
def test_tenant_never_raises(capture: Capture, tenant_id: Any) -> None:
    with otel_ml.tenant(tenant_id) as entered:
        assert entered is None or entered == tenant_id
        current = otel_ml.current_tenant()
        assert current is None or current == tenant_id
    assert otel_ml.current_tenant() is None


@FUZZ
@given(timeout=anything)
def test_force_flush_never_raises(capture: Capture, timeout: Any) -> None:
    assert capture.telemetry.force_flush(timeout) in (True, False)


INT64_MAX = 2**63 - 1


def _assert_exportable(capture: Capture) -> None:
    """Everything recorded still encodes to OTLP: one bad value must not cost
    the whole batch (or, for a cumulative metric, every export from now on)."""
    for span in capture.exporter.get_finished_spans():
        for key, value in (span.attributes or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                assert -INT64_MAX - 1 <= value <= INT64_MAX, (span.name, key, value)
    encode_spans(capture.exporter.get_finished_spans())
    data = capture.reader.get_metrics_data()
    if data is not None:  # None when nothing was recorded
        encode_metrics(data)


def test_everything_recorded_while_fuzzing_still_exports(capture: Capture) -> None:
    """Runs after the fuzz tests above (file order)."""
    _assert_exportable(capture)
    for metric in (
        semconv.METRIC_COST,
        semconv.METRIC_TOKEN_USAGE,
        semconv.METRIC_TIME_TO_FIRST_CHUNK,
        semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
        semconv.METRIC_RETRIEVAL_SCORE,
        semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT,
    ):
        total = capture.metric_sum(metric)
        assert math.isfinite(total) and total >= 0, metric


@pytest.mark.parametrize("huge", [2**63, 2**70, 1e308], ids=["int64_overflow", "2^70", "1e308"])
def test_huge_token_counts_never_break_export(otel_capture: Capture, huge: Any) -> None:
    for _ in range(2):
        with otel_ml.generation(model="gpt-4o-mini", provider="openai") as g:
            g.usage(input_tokens=huge, output_tokens=huge)
        with otel_ml.retrieval(data_source="docs", top_k=huge):
            pass
    with otel_ml.generation(model="gpt-4o-mini", provider="openai") as g:
        g.usage(input_tokens=10, output_tokens=5)

    _assert_exportable(otel_capture)
    assert len(otel_capture.spans()) == 5


@pytest.fixture(scope="module")
def user_pipeline() -> tuple[TracerProvider, MeterProvider]:
    return TracerProvider(), MeterProvider(metric_readers=[InMemoryMetricReader()])


# Each example builds a Telemetry and parses the price table (~30 ms): fewer
# examples, and one shrunk failure at a time.
@settings(FUZZ, max_examples=60, report_multiple_bugs=False)
@given(
    service_name=anything,
    capture_content=anything,
    pricing=anything,
    max_tenants=anything,
)
def test_configure_never_raises(
    user_pipeline: tuple[TracerProvider, MeterProvider],
    service_name: Any,
    capture_content: Any,
    pricing: Any,
    max_tenants: Any,
) -> None:
    previous = telemetry_module.current()
    tracer_provider, meter_provider = user_pipeline
    try:
        telemetry = otel_ml.configure(
            service_name=service_name,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            capture_content=capture_content,
            pricing=pricing,
            max_tenants=max_tenants,
        )
        with telemetry.generation("gpt-4o-mini", "openai") as g:
            g.usage(input_tokens=1, output_tokens=1)
        telemetry.shutdown()
    finally:
        set_current(previous)


# --- objects whose own methods fail --------------------------------------------------------------


class Hostile:
    """Every dunder the SDK might touch raises: str, repr, bool, iter, len, eq, hash."""

    def _fail(self, *args: Any) -> Any:
        raise RuntimeError("hostile object")

    __str__ = __repr__ = __format__ = _fail
    __bool__ = __iter__ = __len__ = __eq__ = __hash__ = _fail
    __float__ = __int__ = __index__ = _fail

    @property
    def id(self) -> Any:
        return self._fail()


HOSTILE_VALUES = [Hostile(), np.array([1.0, 2.0]), np.array([])]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=["hostile", "array", "empty_array"])
def test_values_with_failing_methods_never_raise(otel_capture: Capture, value: Any) -> None:
    tel = otel_capture.telemetry
    with tel.generation(value, value, value, value, value) as g:
        g.chunk(value)
        (item,) = g.wrap([value])
        assert item is value
        g.output(value)
        g.usage(value, value, value)
        g.response(value, value, value)
    with tel.retrieval(value, value, value) as r:
        r.record(value)
        r.record([value, (value, value), {"id": value, "score": value}])
    with tel.inference(value) as p:
        p.prediction(value)
    with otel_ml.tenant(value):
        pass
    tel.feedback(value, value, score=value, span_id=value)
    assert {span.name.split(" ")[0] for span in otel_capture.spans()} >= {"retrieval", "inference"}


# --- SDK faults: exporters, processors, instruments ----------------------------------------------


class RaisingExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        raise ConnectionError("collector exploded")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise ConnectionError("collector exploded")


class RaisingProcessor(SpanProcessor):
    def on_start(self, span: Span, parent_context: Any = None) -> None:
        raise RuntimeError("processor on_start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor on_end")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise RuntimeError("processor flush")


class _RaisingInstrument:
    def record(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("instrument record")

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("instrument add")


class _RaisingMeter:
    def create_histogram(self, *args: Any, **kwargs: Any) -> _RaisingInstrument:
        return _RaisingInstrument()

    def create_counter(self, *args: Any, **kwargs: Any) -> _RaisingInstrument:
        return _RaisingInstrument()


class RaisingMeterProvider:
    """A meter provider whose instruments fail on every record."""

    def get_meter(self, *args: Any, **kwargs: Any) -> _RaisingMeter:
        return _RaisingMeter()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise RuntimeError("meter flush")


def _full_request(telemetry: Telemetry) -> str:
    """What an app does per request; returns the app's own result."""
    with telemetry.tenant("acme"):
        with telemetry.retrieval("docs", query="q", top_k=2) as r:
            r.record([("a", 0.9), ("b", 0.1)])
        with telemetry.generation("gpt-4o-mini", "openai", prompt="q", stream=True) as g:
            answer = "".join(g.wrap(iter(["an", " answer"])))
        with telemetry.inference("m") as p:
            p.prediction(0.7)
        telemetry.feedback("0af7651916cd43dd8448eb211c80319c", "thumbs_up")
    return answer


def test_raising_exporter_and_processor_never_reach_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL)  # the SDK logs the exporter's failures
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = otel_ml.configure(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
    )
    try:
        assert _full_request(telemetry) == "an answer"
        assert len(exporter.get_finished_spans()) == 4  # the healthy exporter still got them
        assert isinstance(telemetry.force_flush(), bool)
    finally:
        telemetry.shutdown()


def test_raising_span_processor_never_reaches_the_app() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(RaisingProcessor())
    telemetry = otel_ml.configure(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
    )
    try:
        assert _full_request(telemetry) == "an answer"
        assert telemetry.force_flush() is False
    finally:
        telemetry.shutdown()


def test_raising_instruments_never_reach_the_app() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = otel_ml.configure(
        tracer_provider=tracer_provider,
        meter_provider=RaisingMeterProvider(),  # type: ignore[arg-type]
    )
    try:
        assert _full_request(telemetry) == "an answer"
        names = sorted(span.name for span in exporter.get_finished_spans())
        assert names == ["chat gpt-4o-mini", "feedback thumbs_up", "inference m", "retrieval docs"]
        assert telemetry.force_flush() is False
    finally:
        telemetry.shutdown()


def test_broken_tokenizer_never_reaches_the_app(
    otel_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str, model: str) -> int:
        raise OSError("tokenizer data missing")

    monkeypatch.setattr("otel_ml.spans._generation_emit.count_tokens", broken)
    with otel_ml.generation(model="gpt-4o-mini", provider="openai", prompt="q") as g:
        g.output("an answer")
    assert len(otel_capture.spans()) == 1  # the span still ends


# --- application exceptions propagate unchanged --------------------------------------------------


class AppError(Exception):
    """An application exception from outside builtins."""


EXCEPTION_TYPES = [ValueError, KeyError, RuntimeError, ZeroDivisionError, AppError, TimeoutError]


def _expected_error_type(error: BaseException) -> str:
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{__name__}.{cls.__qualname__}"


def _open(telemetry: Telemetry, kind: str) -> Any:
    if kind == "generation":
        return telemetry.generation("gpt-4o-mini", "openai")
    if kind == "retrieval":
        return telemetry.retrieval("docs")
    return telemetry.inference("m")


def _assert_recorded(capture: Capture, before: int, error: BaseException) -> None:
    span = _one_more_span(capture, before)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == _expected_error_type(error)
    assert [event.name for event in span.events] == ["exception"]


@FUZZ
@given(
    exception_type=st.sampled_from(EXCEPTION_TYPES),
    message=st.text(max_size=600),
    kind=st.sampled_from(["generation", "retrieval", "inference"]),
)
def test_app_exceptions_propagate_unchanged(
    capture: Capture, exception_type: type[Exception], message: str, kind: str
) -> None:
    error = exception_type(message)
    before = _span_count(capture)
    with pytest.raises(exception_type) as raised, _open(capture.telemetry, kind):
        raise error
    assert raised.value is error
    assert raised.value.args == (message,)
    _assert_recorded(capture, before, error)


@FUZZ
@given(
    exception_type=st.sampled_from(EXCEPTION_TYPES),
    message=st.text(max_size=100),
    kind=st.sampled_from(["generation", "retrieval", "inference"]),
)
async def test_app_exceptions_propagate_unchanged_from_async_with(
    capture: Capture, exception_type: type[Exception], message: str, kind: str
) -> None:
    error = exception_type(message)
    before = _span_count(capture)
    with pytest.raises(exception_type) as raised:
        async with _open(capture.telemetry, kind):
            await asyncio.sleep(0)
            raise error
    assert raised.value is error
    _assert_recorded(capture, before, error)


def test_app_exception_inside_tenant_propagates(otel_capture: Capture) -> None:
    error = AppError("boom")
    with pytest.raises(AppError) as raised, otel_ml.tenant("acme"):
        raise error
    assert raised.value is error
    assert otel_ml.current_tenant() is None


def test_app_exception_with_a_failing_str_propagates(otel_capture: Capture) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    error = Unprintable()
    with pytest.raises(Unprintable) as raised, otel_ml.generation("gpt-4o-mini", "openai"):
        raise error
    assert raised.value is error
    assert len(otel_capture.spans()) == 1
