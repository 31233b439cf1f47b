"""Generation spans: request attributes, streaming latency (TTFT / time per
chunk), early stream exit, token counts and cost, content capture."""

from __future__ import annotations

import asyncio
import bisect
import gc
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_ml
from otel_ml import semconv, spans
from otel_ml._redaction import redact
from otel_ml.pricing import PriceTable
from otel_ml.testing import Capture
from otel_ml.tokens import count_tokens

MODEL = "gpt-4o-mini"
PIECES = ("Retrieval", "-augmented", " generation", " grounds", " answers", " in", " documents.")
# Long enough that a scheduler hiccup is small next to it, short enough for a unit test.
DELAY = 0.05


def _source(pieces: tuple[str, ...] = PIECES, delay: float = 0.0) -> Iterator[str]:
    """A fake provider stream: waits ``delay`` before the first piece."""
    if delay:
        time.sleep(delay)
    yield from pieces


async def _async_source(pieces: tuple[str, ...] = PIECES, delay: float = 0.0) -> AsyncIterator[str]:
    if delay:
        await asyncio.sleep(delay)
    for piece in pieces:
        yield piece


def _only_span(capture: Capture) -> ReadableSpan:
    finished = capture.spans()
    assert len(finished) == 1, [span.name for span in finished]
    return finished[0]


def _attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


def _histogram(capture: Capture, metric: str) -> HistogramDataPoint:
    points = capture.points(metric)
    assert len(points) == 1, f"{metric}: {points}"
    point = points[0]
    assert isinstance(point, HistogramDataPoint)
    return point


def _price(model: str) -> Any:
    price = PriceTable.load().lookup(model)
    assert price is not None
    return price


# --- request attributes --------------------------------------------------------------------------


def test_span_carries_the_genai_request_and_response_attributes(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        g.usage(input_tokens=10, output_tokens=5)
        g.response(model="gpt-4o-mini-2024-07-18", finish_reasons=["stop"], response_id="r-1")

    span = otel_capture.span("chat gpt-4o-mini")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert _attr(span, semconv.GEN_AI_OPERATION_NAME) == "chat"
    assert _attr(span, semconv.GEN_AI_PROVIDER_NAME) == "openai"
    assert _attr(span, semconv.GEN_AI_REQUEST_MODEL) == MODEL
    assert _attr(span, semconv.GEN_AI_REQUEST_STREAM) is True
    assert _attr(span, semconv.GEN_AI_RESPONSE_MODEL) == "gpt-4o-mini-2024-07-18"
    assert _attr(span, semconv.GEN_AI_RESPONSE_FINISH_REASONS) == ("stop",)


def test_operation_name_goes_into_span_name_and_metrics(otel_capture: Capture) -> None:
    with otel_ml.generation(
        model="text-embedding-3-small", provider="openai", operation="embeddings"
    ) as g:
        g.usage(input_tokens=8)

    span = otel_capture.span("embeddings text-embedding-3-small")
    assert _attr(span, semconv.GEN_AI_OPERATION_NAME) == "embeddings"
    point = _histogram(otel_capture, semconv.METRIC_OPERATION_DURATION)
    assert point.attributes is not None
    assert point.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"


def test_generation_is_a_child_of_the_current_span(otel_capture: Capture) -> None:
    tracer = otel_capture.telemetry.tracer
    with (
        tracer.start_as_current_span("handle request") as parent,
        otel_ml.generation(model=MODEL, provider="openai"),
    ):
        pass

    child = otel_capture.span("chat gpt-4o-mini")
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id
    assert child.context is not None
    assert child.context.trace_id == parent.get_span_context().trace_id


async def test_async_with_records_the_same_span(otel_capture: Capture) -> None:
    async with otel_ml.generation(model=MODEL, provider="openai") as g:
        await asyncio.sleep(0)
        g.usage(input_tokens=3, output_tokens=4)

    span = otel_capture.span("chat gpt-4o-mini")
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 3
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == 4
    assert otel_capture.metric_count(semconv.METRIC_OPERATION_DURATION) == 1


def test_bucket_boundaries_follow_the_conventions(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai") as g:
        g.chunk("a")
        g.chunk("b")
        g.usage(input_tokens=3, output_tokens=2)

    tokens = otel_capture.points(semconv.METRIC_TOKEN_USAGE)[0]
    assert isinstance(tokens, HistogramDataPoint)
    assert tuple(tokens.explicit_bounds) == semconv.TOKEN_BUCKETS
    for metric in (
        semconv.METRIC_OPERATION_DURATION,
        semconv.METRIC_TIME_TO_FIRST_CHUNK,
        semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
    ):
        assert tuple(_histogram(otel_capture, metric).explicit_bounds) == semconv.DURATION_BUCKETS


# --- time to first chunk -------------------------------------------------------------------------


def _assert_ttft(capture: Capture, delay: float) -> None:
    """TTFT on the span and in the histogram matches the measured delay within 5 ms."""
    ttft = _attr(_only_span(capture), semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    assert ttft >= DELAY  # the sleep alone guarantees that much
    assert abs(ttft - delay) < 0.005
    point = _histogram(capture, semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert point.count == 1
    assert abs(point.sum - delay) < 0.005
    assert point.sum == pytest.approx(ttft, abs=1e-9)


# The delay is measured around the sleep rather than taken as DELAY: the OS may
# oversleep on a busy machine, and what is under test is the SDK's clock.
def test_ttft_with_chunk_matches_a_controlled_delay(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        started = time.perf_counter()
        time.sleep(DELAY)
        delay = time.perf_counter() - started
        for piece in PIECES:
            g.chunk(piece)
    _assert_ttft(otel_capture, delay)


def test_ttft_with_wrap_matches_a_controlled_delay(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        started = time.perf_counter()
        stream = g.wrap(_source(delay=DELAY))
        first = next(stream)
        delay = time.perf_counter() - started
        rest = list(stream)
    assert (first, *rest) == PIECES
    _assert_ttft(otel_capture, delay)


async def test_ttft_with_wrap_async_matches_a_controlled_delay(otel_capture: Capture) -> None:
    async with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        started = time.perf_counter()
        stream = g.wrap_async(_async_source(delay=DELAY))
        first = await stream.__anext__()
        delay = time.perf_counter() - started
        rest = [piece async for piece in stream]
    assert (first, *rest) == PIECES
    _assert_ttft(otel_capture, delay)


def test_empty_chunks_do_not_count_as_the_first_chunk(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        started = time.perf_counter()
        g.chunk("")  # e.g. the role-only first delta of an OpenAI stream
        time.sleep(DELAY)
        delay = time.perf_counter() - started
        g.chunk("Hello")
        g.chunk("")
        g.chunk(" world")

    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 2
    _assert_ttft(otel_capture, delay)


def test_no_chunk_means_no_ttft(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai") as g:
        g.usage(input_tokens=5, output_tokens=1)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) is None
    assert otel_capture.points(semconv.METRIC_TIME_TO_FIRST_CHUNK) == []
    assert otel_capture.points(semconv.METRIC_TIME_PER_OUTPUT_CHUNK) == []


# --- time per output chunk -----------------------------------------------------------------------


def test_one_time_per_chunk_point_per_chunk_after_the_first(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        for piece in g.wrap(_source()):
            assert isinstance(piece, str)

    span = _only_span(otel_capture)
    assert span.events == ()  # no span event per chunk
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == len(PIECES)
    point = _histogram(otel_capture, semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert point.count == len(PIECES) - 1
    mean = _attr(span, semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN)
    assert mean == pytest.approx(point.sum / point.count, rel=1e-9)


class _FakeClock:
    """Stands in for ``time`` inside otel_ml.spans' modules so gaps are exact."""

    def __init__(self, now: float) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


def test_chunk_timings_are_exact_under_a_controlled_clock(
    otel_capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _FakeClock(100.0)
    fake_time = SimpleNamespace(perf_counter=clock.perf_counter)
    monkeypatch.setattr(spans._scope, "time", fake_time)  # span start
    monkeypatch.setattr(spans._generation, "time", fake_time)  # chunks and the end
    arrivals = (100.2, 100.25, 100.35, 100.6)
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        for index, arrival in enumerate(arrivals):
            clock.now = arrival
            g.chunk(f"piece {index}")
        clock.now = 101.0

    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) == pytest.approx(0.2)
    assert _attr(span, semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN) == pytest.approx(sum(gaps) / 3)
    per_chunk = _histogram(otel_capture, semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert per_chunk.count == 3
    assert per_chunk.sum == pytest.approx(sum(gaps))
    assert per_chunk.min == pytest.approx(min(gaps))
    assert per_chunk.max == pytest.approx(max(gaps))
    expected_buckets = [0] * (len(semconv.DURATION_BUCKETS) + 1)
    for gap in gaps:
        expected_buckets[bisect.bisect_left(semconv.DURATION_BUCKETS, gap)] += 1
    assert list(per_chunk.bucket_counts) == expected_buckets
    duration = _histogram(otel_capture, semconv.METRIC_OPERATION_DURATION)
    assert duration.sum == pytest.approx(1.0)


# --- early stream exit ---------------------------------------------------------------------------


def _exit_by_break(capture: Capture) -> list[str]:
    received: list[str] = []
    with capture.telemetry.generation(MODEL, "openai", stream=True) as g:
        for piece in g.wrap(_source()):
            received.append(piece)
            if len(received) == 3:
                break
    return received


def _exit_by_close(capture: Capture) -> list[str]:
    with capture.telemetry.generation(MODEL, "openai", stream=True) as g:
        stream = g.wrap(_source())
        received = [next(stream), next(stream), next(stream)]
        stream.close()
    return received


def _exit_by_generator_exit(capture: Capture) -> list[str]:
    """A streaming HTTP response whose client disconnects: the server closes
    the app's generator, raising GeneratorExit inside the ``with`` block."""

    def answer() -> Generator[str, None, None]:
        with capture.telemetry.generation(MODEL, "openai", stream=True) as g:
            yield from g.wrap(_source())

    response = answer()
    received = [next(response), next(response), next(response)]
    response.close()
    return received


def _exit_by_garbage_collection(capture: Capture) -> list[str]:
    with capture.telemetry.generation(MODEL, "openai", stream=True) as g:
        stream = g.wrap(_source())
        received = [next(stream), next(stream), next(stream)]
    assert capture.spans() == []  # the open stream holds the span
    del stream
    gc.collect()
    return received


def _exit_by_aclose(capture: Capture) -> list[str]:
    async def scenario() -> list[str]:
        async with capture.telemetry.generation(MODEL, "openai", stream=True) as g:
            stream = g.wrap_async(_async_source())
            received = [await stream.__anext__() for _ in range(3)]
            await stream.aclose()
        return received

    return asyncio.run(scenario())


EARLY_EXITS: dict[str, Callable[[Capture], list[str]]] = {
    "break": _exit_by_break,
    "close": _exit_by_close,
    "generator_exit": _exit_by_generator_exit,
    "garbage_collection": _exit_by_garbage_collection,
    "aclose": _exit_by_aclose,
}


@pytest.mark.parametrize("exit_early", EARLY_EXITS.values(), ids=EARLY_EXITS.keys())
def test_early_exit_ends_the_span_once_and_keeps_its_values(
    otel_capture: Capture,
    caplog: pytest.LogCaptureFixture,
    exit_early: Callable[[Capture], list[str]],
) -> None:
    caplog.set_level(logging.WARNING)
    received = exit_early(otel_capture)
    gc.collect()

    assert received == list(PIECES[:3])
    span = _only_span(otel_capture)
    assert not [r for r in caplog.records if "ended span" in r.getMessage()]
    assert otel_capture.metric_count(semconv.METRIC_OPERATION_DURATION) == 1
    assert _attr(span, semconv.LLM_STREAM_ABANDONED) is True
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 3
    ttft = _attr(span, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    assert ttft > 0
    assert otel_capture.metric_sum(semconv.METRIC_TIME_TO_FIRST_CHUNK) == pytest.approx(ttft)
    assert otel_capture.metric_count(semconv.METRIC_TIME_PER_OUTPUT_CHUNK) == 2
    output_tokens = count_tokens("".join(received), MODEL)
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == output_tokens
    cost = _price(MODEL).cost(0, output_tokens)
    assert _attr(span, semconv.GEN_AI_USAGE_COST_AMOUNT) == pytest.approx(cost)
    assert otel_capture.metric_sum(semconv.METRIC_COST) == pytest.approx(cost)


def test_client_disconnect_is_not_an_error(otel_capture: Capture) -> None:
    """GeneratorExit is how Python stops a generator, not an application error
    (OpenTelemetry's own use_span skips it, open-telemetry/opentelemetry-python#4484):
    a disconnect must not turn the span or the duration metric into an error."""
    _exit_by_generator_exit(otel_capture)

    span = _only_span(otel_capture)
    assert span.status.status_code is not StatusCode.ERROR
    assert _attr(span, semconv.ERROR_TYPE) is None
    duration = _histogram(otel_capture, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes is not None
    assert semconv.ERROR_TYPE not in duration.attributes


def test_provider_usage_seen_before_an_early_exit_is_kept(otel_capture: Capture) -> None:
    with otel_capture.telemetry.generation(MODEL, "openai", stream=True) as g:
        g.usage(input_tokens=321)
        for _ in g.wrap(_source()):
            break

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 321
    output_tokens = count_tokens(PIECES[0], MODEL)
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == output_tokens
    cost = _price(MODEL).cost(321, output_tokens)
    assert _attr(span, semconv.GEN_AI_USAGE_COST_AMOUNT) == pytest.approx(cost)


def test_fully_consumed_stream_is_not_marked_abandoned(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        assert list(g.wrap(_source())) == list(PIECES)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_STREAM_ABANDONED) is None
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == len(PIECES)


# --- streams that outlive the with-block ---------------------------------------------------------


def test_unstarted_stream_returned_from_the_block_keeps_the_span_open(
    otel_capture: Capture,
) -> None:
    """The FastAPI pattern: ``return StreamingResponse(g.wrap(stream))``."""
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        stream = g.wrap(_source())
    assert otel_capture.spans() == []

    assert list(stream) == list(PIECES)
    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == len(PIECES)
    assert _attr(span, semconv.LLM_STREAM_ABANDONED) is None
    output_tokens = count_tokens("".join(PIECES), MODEL)
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == output_tokens
    assert otel_capture.metric_count(semconv.METRIC_TIME_PER_OUTPUT_CHUNK) == len(PIECES) - 1


def test_partly_consumed_stream_finishes_after_the_block(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        stream = g.wrap(_source())
        first = next(stream)
    assert otel_capture.spans() == []

    assert [first, *stream] == list(PIECES)
    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == len(PIECES)
    assert otel_capture.metric_count(semconv.METRIC_OPERATION_DURATION) == 1


async def test_async_stream_returned_from_the_block_keeps_the_span_open(
    otel_capture: Capture,
) -> None:
    async with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        stream = g.wrap_async(_async_source())
    assert otel_capture.spans() == []

    assert [piece async for piece in stream] == list(PIECES)
    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == len(PIECES)


def test_unstarted_stream_dropped_after_the_block_ends_the_span(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        stream = g.wrap(_source())
    del stream
    gc.collect()

    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_STREAM_ABANDONED) is True
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) is None


def test_two_streams_end_the_span_when_the_last_one_closes(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        first = g.wrap(_source(("a", "b")))
        second = g.wrap(_source(("c", "d")))
    assert list(first) == ["a", "b"]
    assert otel_capture.spans() == []
    assert list(second) == ["c", "d"]
    assert _attr(_only_span(otel_capture), semconv.LLM_OUTPUT_CHUNK_COUNT) == 4


# --- failures ------------------------------------------------------------------------------------


class ProviderDisconnected(ConnectionError):
    pass


def _failing_source(error: BaseException) -> Iterator[str]:
    yield "partial"
    yield " answer"
    raise error


def test_stream_error_inside_the_block_propagates_unchanged(otel_capture: Capture) -> None:
    error = ProviderDisconnected("upstream reset")
    with (
        pytest.raises(ProviderDisconnected) as raised,
        otel_ml.generation(model=MODEL, provider="openai", stream=True) as g,
    ):
        for _ in g.wrap(_failing_source(error)):
            pass
    assert raised.value is error

    span = _only_span(otel_capture)
    assert span.status.status_code is StatusCode.ERROR
    expected_type = f"{__name__}.ProviderDisconnected"
    assert _attr(span, semconv.ERROR_TYPE) == expected_type
    assert [event.name for event in span.events] == ["exception"]
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 2
    duration = _histogram(otel_capture, semconv.METRIC_OPERATION_DURATION)
    assert duration.attributes is not None
    assert duration.attributes[semconv.ERROR_TYPE] == expected_type


def test_stream_error_after_the_block_marks_the_span_as_failed(otel_capture: Capture) -> None:
    """A provider dropping the connection while a StreamingResponse drains the
    stream (after the handler's ``with`` block) is still a failed generation."""
    error = ProviderDisconnected("upstream reset")
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        stream = g.wrap(_failing_source(error))
    with pytest.raises(ProviderDisconnected) as raised:
        list(stream)
    assert raised.value is error

    span = _only_span(otel_capture)
    assert span.status.status_code is StatusCode.ERROR
    assert _attr(span, semconv.ERROR_TYPE) == f"{__name__}.ProviderDisconnected"
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 2


# --- tokens --------------------------------------------------------------------------------------


def test_provider_usage_wins_over_local_counts(otel_capture: Capture) -> None:
    prompt = "Summarise the onboarding guide for a new engineer."
    with otel_ml.generation(model=MODEL, provider="openai", prompt=prompt) as g:
        g.output("A long answer that would count very differently locally." * 3)
        g.usage(input_tokens=120, output_tokens=48)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 120
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == 48
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is False
    by_type = {semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
    assert otel_capture.metric_sum(semconv.METRIC_TOKEN_USAGE, by_type) == 120
    by_type = {semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT}
    assert otel_capture.metric_sum(semconv.METRIC_TOKEN_USAGE, by_type) == 48


def test_local_counts_are_marked_estimated(otel_capture: Capture) -> None:
    prompt = "Which regions does the premium plan cover? Answer in one sentence."
    answer = "The premium plan covers the EU, the US and Japan."
    with otel_ml.generation(model=MODEL, provider="openai", prompt=prompt) as g:
        g.output(answer)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == count_tokens(prompt, MODEL)
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == count_tokens(answer, MODEL)
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is True


def test_streamed_text_is_counted_when_no_output_is_given(otel_capture: Capture) -> None:
    with otel_ml.generation(model="gpt-4", provider="openai", stream=True) as g:
        for piece in PIECES:
            g.chunk(piece)

    span = _only_span(otel_capture)
    expected = count_tokens("".join(PIECES), "gpt-4")
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == expected
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) is None
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is True


def test_partial_provider_usage_is_completed_locally_and_flagged(otel_capture: Capture) -> None:
    answer = "Partial usage: the provider only reported the prompt side."
    with otel_ml.generation(model=MODEL, provider="openai", prompt="ignored prompt") as g:
        g.usage(input_tokens=77)
        g.output(answer)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 77
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == count_tokens(answer, MODEL)
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is True


def test_chat_messages_prompt_counts_every_text_part(otel_capture: Capture) -> None:
    texts = [
        "You answer questions about the product documentation.",
        "How do I rotate an API key?",
        "Include the CLI command.",
    ]
    messages = [
        {"role": "system", "content": texts[0]},
        {"role": "user", "content": [{"type": "text", "text": texts[1]}, {"type": "image_url"}]},
        {"role": "user", "content": [{"type": "text", "text": texts[2]}]},
    ]
    with otel_ml.generation(model=MODEL, provider="openai", prompt=messages):
        pass

    counted = _attr(_only_span(otel_capture), semconv.GEN_AI_USAGE_INPUT_TOKENS)
    separate = sum(count_tokens(text, MODEL) for text in texts)
    # Joining the parts may merge or add a separator token per boundary.
    assert separate - len(texts) <= counted <= separate + len(texts)


def _openai_chunks(usage: Any) -> list[Any]:
    """An OpenAI stream with ``include_usage``: deltas, then a usage-only chunk."""
    deltas = [{"choices": [{"delta": {"content": piece}}]} for piece in PIECES[:3]]
    role = {"choices": [{"delta": {"role": "assistant"}}]}
    return [role, *deltas, {"choices": [], "usage": usage}]


def test_openai_style_mapping_chunks_carry_text_and_usage(otel_capture: Capture) -> None:
    chunks = _openai_chunks({"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40})
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        assert list(g.wrap(chunks)) == chunks  # items pass through unchanged

    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 3
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 31
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == 9
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is False


def test_openai_style_object_chunks_carry_text_and_usage(otel_capture: Capture) -> None:
    def chunk(content: str | None, usage: Any = None) -> SimpleNamespace:
        delta = SimpleNamespace(content=content)
        choices = [] if content is None else [SimpleNamespace(delta=delta)]
        return SimpleNamespace(choices=choices, usage=usage)

    usage = SimpleNamespace(prompt_tokens=12, completion_tokens=2)
    chunks = [chunk("Hel"), chunk("lo"), chunk(None, usage)]
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        for _ in g.wrap(chunks):
            pass

    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 2
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 12
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == 2


def test_nothing_to_count_records_no_tokens_and_no_cost(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai"):
        pass

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) is None
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) is None
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is False
    assert _attr(span, semconv.GEN_AI_USAGE_COST_AMOUNT) is None
    assert otel_capture.points(semconv.METRIC_TOKEN_USAGE) == []
    assert otel_capture.points(semconv.METRIC_COST) == []
    assert otel_capture.points(semconv.METRIC_COST_UNPRICED) == []


@pytest.mark.parametrize(
    "bad",
    [-5, float("nan"), float("inf"), 2.5, "120", True, None, [1], object()],
    ids=["negative", "nan", "inf", "fraction", "str", "bool", "none", "list", "object"],
)
def test_unusable_usage_values_fall_back_to_local_counts(otel_capture: Capture, bad: Any) -> None:
    prompt, answer = "How many tokens is this?", "Exactly as many as tiktoken says."
    with otel_ml.generation(model=MODEL, provider="openai", prompt=prompt) as g:
        g.output(answer)
        g.usage(input_tokens=bad, output_tokens=bad, cached_input_tokens=bad)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == count_tokens(prompt, MODEL)
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == count_tokens(answer, MODEL)
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is True
    assert _attr(span, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) is None


def test_whole_float_usage_is_accepted(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai") as g:
        g.usage(input_tokens=120.0, output_tokens=48)

    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_USAGE_INPUT_TOKENS) == 120
    assert _attr(span, semconv.LLM_USAGE_ESTIMATED) is False


def test_non_str_chunks_are_ignored(otel_capture: Capture) -> None:
    with otel_ml.generation(model=MODEL, provider="openai", stream=True) as g:
        for piece in (b"bytes", None, 42, "kept", ["list"], "also kept"):
            g.chunk(piece)
        g.output(b"not text")

    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 2
    expected = count_tokens("keptalso kept", MODEL)
    assert _attr(span, semconv.GEN_AI_USAGE_OUTPUT_TOKENS) == expected


# --- cost ----------------------------------------------------------------------------------------


def test_cost_is_priced_from_the_table_with_cached_input(otel_capture: Capture) -> None:
    with otel_ml.tenant("acme"), otel_ml.generation(model=MODEL, provider="openai") as g:
        g.usage(input_tokens=10_000, output_tokens=2_000, cached_input_tokens=4_000)

    span = _only_span(otel_capture)
    price = _price(MODEL)
    expected = (6_000 * price.input + 4_000 * price.cached_input + 2_000 * price.output) / 1e6
    assert expected > 0
    assert _attr(span, semconv.GEN_AI_USAGE_COST_AMOUNT) == pytest.approx(expected)
    assert _attr(span, semconv.GEN_AI_USAGE_COST_CURRENCY) == "USD"
    assert _attr(span, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == 4_000
    attributes = {
        semconv.TENANT_ID: "acme",
        semconv.GEN_AI_REQUEST_MODEL: MODEL,
        semconv.GEN_AI_PROVIDER_NAME: "openai",
    }
    assert otel_capture.metric_sum(semconv.METRIC_COST, attributes) == pytest.approx(expected)


def test_cache_write_tokens_are_billed_at_the_cache_write_price(otel_capture: Capture) -> None:
    pricing = {
        "models": {
            "m": {"input": 3.0, "output": 15.0, "cached_input": 0.3, "cache_write_input": 3.75}
        }
    }
    with otel_capture.telemetry.generation("m", "anthropic") as g:
        g.usage(
            input_tokens=10_000,
            output_tokens=1_000,
            cached_input_tokens=6_000,
            cache_write_input_tokens=2_000,
            reasoning_output_tokens=400,
        )
    span = _only_span(otel_capture)
    # Bundled table has no model "m": the span is unpriced, but the usage parts are there.
    assert _attr(span, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == 6_000
    assert _attr(span, semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS) == 2_000
    assert _attr(span, semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) == 400
    price = PriceTable.load(pricing).lookup("m")
    assert price is not None
    # 2,000 uncached at $3, 6,000 read at $0.30, 2,000 written at $3.75, 1,000 out at $15.
    assert price.cost(10_000, 1_000, 6_000, 2_000) == pytest.approx(
        (2_000 * 3.0 + 6_000 * 0.3 + 2_000 * 3.75 + 1_000 * 15.0) / 1e6
    )


def test_cost_on_the_span_uses_the_cache_write_price(otel_capture_factory: Any) -> None:
    pricing = {
        "models": {
            "m": {"input": 3.0, "output": 15.0, "cached_input": 0.3, "cache_write_input": 3.75}
        }
    }
    capture = otel_capture_factory(pricing=pricing)
    with capture.telemetry.generation("m", "anthropic") as g:
        g.usage(
            input_tokens=10_000,
            output_tokens=1_000,
            cached_input_tokens=6_000,
            cache_write_input_tokens=2_000,
        )
    expected = (2_000 * 3.0 + 6_000 * 0.3 + 2_000 * 3.75 + 1_000 * 15.0) / 1e6
    span = _only_span(capture)
    assert _attr(span, semconv.GEN_AI_USAGE_COST_AMOUNT) == pytest.approx(expected)
    assert capture.metric_sum(semconv.METRIC_COST) == pytest.approx(expected)


def test_response_id_server_and_finish_reasons_are_on_the_span(otel_capture: Capture) -> None:
    g = otel_capture.telemetry.generation(MODEL, "openai")
    g.server("api.openai.com", 443)
    with g:
        g.response(
            model="gpt-4o-mini-2024-07-18", finish_reasons=["stop"], response_id="chatcmpl-1"
        )
    span = _only_span(otel_capture)
    assert _attr(span, semconv.GEN_AI_RESPONSE_ID) == "chatcmpl-1"
    assert _attr(span, semconv.SERVER_ADDRESS) == "api.openai.com"
    assert _attr(span, semconv.SERVER_PORT) == 443
    assert list(_attr(span, semconv.GEN_AI_RESPONSE_FINISH_REASONS)) == ["stop"]


def test_an_abandoned_stream_has_finish_reason_error(otel_capture: Capture) -> None:
    _exit_by_break(otel_capture)
    span = _only_span(otel_capture)
    assert list(_attr(span, semconv.GEN_AI_RESPONSE_FINISH_REASONS)) == ["error"]


def test_a_held_span_ends_once_when_released(otel_capture: Capture) -> None:
    with otel_capture.telemetry.generation(MODEL, "openai", stream=True) as g:
        state = g.hold()
    assert otel_capture.spans() == []
    g.chunk("hello")
    state.finished = True
    g.release(state)
    g.release(state)
    span = _only_span(otel_capture)
    assert _attr(span, semconv.LLM_OUTPUT_CHUNK_COUNT) == 1
    assert _attr(span, semconv.LLM_STREAM_ABANDONED) is None
    assert otel_capture.metric_count(semconv.METRIC_OPERATION_DURATION) == 1


def test_unknown_model_gets_no_cost_and_counts_as_unpriced(otel_capture: Capture) -> None:
    with otel_ml.generation(model="acme-llm-7b", provider="self-hosted") as g:
        g.usage(input_tokens=100, output_tokens=20)

    span = _only_span(otel_capture)
    assert span.attributes is not None
    assert semconv.GEN_AI_USAGE_COST_AMOUNT not in span.attributes
    assert semconv.GEN_AI_USAGE_COST_CURRENCY not in span.attributes
    assert otel_capture.points(semconv.METRIC_COST) == []
    unpriced = {semconv.GEN_AI_REQUEST_MODEL: "acme-llm-7b"}
    assert otel_capture.metric_sum(semconv.METRIC_COST_UNPRICED, unpriced) == 1


# --- content capture -----------------------------------------------------------------------------


SECRET_PROMPT = "my card number is 4111-1111-1111-1111, what is my balance?"
SECRET_ANSWER = "Your balance for card 4111-1111-1111-1111 is 12 EUR."
SECRET_QUERY = "balance of card 4111-1111-1111-1111"
SECRET = "4111-1111-1111-1111"
CONTENT_KEYS = {
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_RETRIEVAL_QUERY_TEXT,
    semconv.GEN_AI_RETRIEVAL_DOCUMENTS,
}


def _answer_with_content(telemetry: otel_ml.Telemetry) -> None:
    with telemetry.retrieval("docs", query=SECRET_QUERY, top_k=2) as r:
        r.record([("doc-1", 0.9)])
    with telemetry.generation(MODEL, "openai", prompt=SECRET_PROMPT, stream=True) as g:
        for piece in g.wrap(_source((SECRET_ANSWER[:20], SECRET_ANSWER[20:]))):
            assert piece
        g.response(finish_reasons=["stop"])


def _all_metric_attribute_values(capture: Capture) -> list[Any]:
    data = capture.reader.get_metrics_data()
    assert data is not None
    return [
        value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        for value in (point.attributes or {}).values()
    ]


def test_content_is_off_by_default_everywhere(otel_capture: Capture) -> None:
    assert otel_capture.telemetry.capture_content is False
    _answer_with_content(otel_capture.telemetry)

    finished = otel_capture.spans()
    assert len(finished) == 2
    for span in finished:
        assert span.attributes is not None
        assert CONTENT_KEYS.isdisjoint(span.attributes)
        assert not [v for v in span.attributes.values() if SECRET in str(v)]
        assert not [e for e in span.events if SECRET in str(e.attributes)]
    metric_values = _all_metric_attribute_values(otel_capture)
    assert metric_values  # metrics were recorded ...
    assert not [v for v in metric_values if SECRET in str(v)]  # ... without content


def test_captured_prompt_and_completion_when_enabled(
    otel_capture_factory: Callable[..., Capture],
) -> None:
    capture = otel_capture_factory(capture_content=True)
    _answer_with_content(capture.telemetry)

    span = capture.span("chat gpt-4o-mini")
    inputs = json.loads(_attr(span, semconv.GEN_AI_INPUT_MESSAGES))
    # Captured, with the card number masked by the redaction rules.
    prompt = redact(SECRET_PROMPT)
    assert prompt != SECRET_PROMPT and "****" in prompt
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    outputs = json.loads(_attr(span, semconv.GEN_AI_OUTPUT_MESSAGES))
    assert outputs == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": redact(SECRET_ANSWER)}],
            "finish_reason": "stop",
        }
    ]


def test_each_captured_string_is_capped(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_ML_CONTENT_MAX_LENGTH", "100")
    capture = otel_capture_factory(capture_content=True)
    prompt = "p" * 50_000
    answer = "a" * 50_000
    with capture.telemetry.generation(MODEL, "openai", prompt=prompt) as g:
        g.output(answer)
        g.usage(input_tokens=1, output_tokens=1)

    span = _only_span(capture)
    for key, original in (
        (semconv.GEN_AI_INPUT_MESSAGES, prompt),
        (semconv.GEN_AI_OUTPUT_MESSAGES, answer),
    ):
        captured = json.loads(_attr(span, key))[0]["parts"][0]["content"]
        assert len(captured) <= 100
        assert original.startswith(captured.removesuffix("…[truncated]"))
        assert captured.endswith("…[truncated]")


def test_captured_messages_stay_within_the_limit_for_long_histories(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Capping each part is not enough: a 2,000-message history of short
    messages still makes one attribute of megabytes, which can push an OTLP
    request past the receiver's limit and lose the whole batch."""
    monkeypatch.setenv("OTEL_ML_CONTENT_MAX_LENGTH", "4096")
    capture = otel_capture_factory(capture_content=True)
    history = [{"role": "user", "content": f"message {i}: " + "x" * 500} for i in range(2_000)]
    with capture.telemetry.generation(MODEL, "openai", prompt=history) as g:
        g.usage(input_tokens=1, output_tokens=1)

    captured = _attr(_only_span(capture), semconv.GEN_AI_INPUT_MESSAGES)
    assert len(captured) <= 4096


def test_model_names_on_metrics_are_capped_but_spans_and_cost_keep_them(
    otel_capture_factory: Any,
) -> None:
    from otel_ml.spans._scope import MAX_METRIC_MODELS

    models = [f"m{i}" for i in range(MAX_METRIC_MODELS + 50)]
    pricing = {"models": {name: {"input": 1.0, "output": 2.0} for name in models}}
    capture = otel_capture_factory(pricing=pricing)
    for name in models:
        with capture.telemetry.generation(name, "self-hosted") as g:
            g.usage(input_tokens=1_000_000, output_tokens=0)

    kept = {
        point.attributes[semconv.GEN_AI_REQUEST_MODEL]
        for point in capture.points(semconv.METRIC_COST)
        if point.attributes
    }
    assert kept == set(models[:MAX_METRIC_MODELS]) | {semconv.LABEL_OVERFLOW}
    # Every dollar is still counted, priced by the real model.
    assert capture.metric_sum(semconv.METRIC_COST) == pytest.approx(len(models) * 1.0)
    assert capture.metric_sum(
        semconv.METRIC_COST, {semconv.GEN_AI_REQUEST_MODEL: semconv.LABEL_OVERFLOW}
    ) == pytest.approx(50.0)
    last = capture.spans()[-1]
    assert last.attributes is not None
    assert last.attributes[semconv.GEN_AI_REQUEST_MODEL] == models[-1]
