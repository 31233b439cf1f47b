"""instrument_anthropic() on streams: messages.create(stream=True) and the
messages.stream() helper, sync and async, read to the end, abandoned, failing,
over the exact SSE wire format with a delay before the first text delta."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterable, Iterable, Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from test_instrument_anthropic_wire import (
    DELAY,
    INPUT_WITH_CACHE,
    PRICES,
    REQUEST,
    RESPONSE_MODEL,
    STREAM_OUTPUT_TOKENS,
    TEXT_DELTAS,
    Factory,
    Server,
    cost,
    stream_events,
)

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

EVENTS = [name for name, _ in stream_events() if name != "ping"]  # the client drops pings
TEXT = "".join(TEXT_DELTAS)
TOLERANCE = 0.005


@pytest.fixture
def capture(otel_capture_factory: Factory) -> Iterator[Capture]:
    capture: Capture = otel_capture_factory(pricing=PRICES)
    warm()
    otel_ml.instrument_anthropic()
    try:
        yield capture
    finally:
        otel_ml.uninstrument_anthropic()


def only_span(capture: Capture) -> ReadableSpan:
    spans = capture.spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def warm() -> None:
    """Uninstrumented calls first: the client's one-off set-up (its models'
    validators, tens of ms) is not part of a call's TTFT in production either."""
    client = Server().client()
    for _ in client.messages.create(stream=True, **REQUEST):
        pass
    with client.messages.stream(**REQUEST) as stream:
        stream.get_final_message()


class Reader:
    """Reads a stream as an app does, noting when the first text reached it."""

    def __init__(self) -> None:
        self.called = time.perf_counter()
        self.first_text: float | None = None

    def events(self, stream: Iterable[Any]) -> list[Any]:
        events = []
        for event in stream:
            self._saw(event)
            events.append(event)
        return events

    async def events_async(self, stream: AsyncIterable[Any]) -> list[Any]:
        events = []
        async for event in stream:
            self._saw(event)
            events.append(event)
        return events

    def _saw(self, item: Any) -> None:
        # A text_stream piece, the helper's text event, or the raw text delta.
        text = isinstance(item, str) or item.type in ("text", "content_block_delta")
        if text and self.first_text is None:
            self.first_text = time.perf_counter()

    def ttft(self) -> float:
        assert self.first_text is not None
        return self.first_text - self.called


def assert_complete_stream(capture: Capture, server: Server, reader: Reader) -> None:
    span = only_span(capture)
    attributes = attrs(span)
    assert span.status.status_code is StatusCode.UNSET
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == "msg_01StreamedXYZ"
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_WITH_CACHE
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attributes[semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 200
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == STREAM_OUTPUT_TOKENS
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is False
    assert semconv.LLM_STREAM_ABANDONED not in attributes
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        cost(12, 1000, 200, STREAM_OUTPUT_TOKENS), abs=1e-9
    )
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == len(TEXT_DELTAS)
    ttft = attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    # The server's wait is in it, and it is the TTFT the app saw, within 5 ms: the
    # server's clock and the app's both include a loaded machine's oversleep.
    assert DELAY <= server.waited() <= ttft, (ttft, server.waited())
    assert abs(ttft - reader.ttft()) <= TOLERANCE, (ttft, reader.ttft())
    (ttft_point,) = capture.points(semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert ttft_point.sum == pytest.approx(ttft)  # type: ignore[union-attr]
    # One time-per-chunk point per text delta after the first.
    assert capture.metric_count(semconv.METRIC_TIME_PER_OUTPUT_CHUNK) == len(TEXT_DELTAS) - 1


def test_create_stream_gives_usage_ttft_and_chunks(capture: Capture) -> None:
    server = Server(delay=DELAY)
    client = server.client()
    with otel_ml.tenant("acme"):
        reader = Reader()
        stream = client.messages.create(stream=True, **REQUEST)
        events = reader.events(stream)

    assert [event.type for event in events] == EVENTS
    assert isinstance(stream, anthropic.Stream)
    assert_complete_stream(capture, server, reader)
    span = only_span(capture)
    assert attrs(span)[semconv.TENANT_ID] == "acme"
    acme = {semconv.TENANT_ID: "acme"}
    input_type = {**acme, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
    assert capture.metric_sum(semconv.METRIC_TOKEN_USAGE, input_type) == INPUT_WITH_CACHE
    assert capture.metric_sum(semconv.METRIC_COST, acme) == pytest.approx(
        cost(12, 1000, 200, STREAM_OUTPUT_TOKENS), abs=1e-9
    )


async def test_async_create_stream_gives_usage_ttft_and_chunks(capture: Capture) -> None:
    server = Server(delay=DELAY)
    client = server.async_client()
    reader = Reader()
    stream = await client.messages.create(stream=True, **REQUEST)
    events = await reader.events_async(stream)

    assert [event.type for event in events] == EVENTS
    assert_complete_stream(capture, server, reader)


def test_stream_helper_text_stream_and_final_message(capture: Capture) -> None:
    server = Server(delay=DELAY)
    client = server.client()
    reader = Reader()
    with client.messages.stream(**REQUEST) as stream:
        text = "".join(reader.events(stream.text_stream))
        final = stream.get_final_message()

    assert text == TEXT
    assert final.content[0].text == TEXT  # type: ignore[union-attr]
    assert final.usage.output_tokens == STREAM_OUTPUT_TOKENS
    assert final.usage.input_tokens == 12  # the client's own object keeps the API's value
    assert_complete_stream(capture, server, reader)


def test_stream_helper_iterated_event_by_event(capture: Capture) -> None:
    server = Server(delay=DELAY)
    client = server.client()
    reader = Reader()
    with client.messages.stream(**REQUEST) as stream:
        kinds = [event.type for event in reader.events(stream)]
    assert kinds.count("text") == len(TEXT_DELTAS)  # the helper's own events still come
    assert "message_stop" in kinds
    assert_complete_stream(capture, server, reader)


async def test_async_stream_helper_text_stream_and_final_message(capture: Capture) -> None:
    server = Server(delay=DELAY)
    client = server.async_client()
    reader = Reader()
    async with client.messages.stream(**REQUEST) as stream:
        text = "".join(await reader.events_async(stream.text_stream))
        final = await stream.get_final_message()

    assert text == TEXT
    assert final.stop_reason == "end_turn"
    assert_complete_stream(capture, server, reader)


def test_usage_repeated_in_message_delta_is_not_counted_twice(capture: Capture) -> None:
    # Newer APIs repeat the cumulative input side in message_delta.
    repeated = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
    }
    server = Server(events=stream_events(delta_usage=repeated))
    for _ in server.client().messages.create(stream=True, **REQUEST):
        pass
    attributes = attrs(only_span(capture))
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_WITH_CACHE
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == STREAM_OUTPUT_TOKENS


def assert_abandoned(capture: Capture, chunks: int) -> None:
    span = only_span(capture)
    attributes = attrs(span)
    assert span.status.status_code is StatusCode.UNSET  # the app stopped: no error of its
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == (semconv.FINISH_REASON_ERROR,)
    assert attributes[semconv.LLM_STREAM_ABANDONED] is True
    # The input side came in message_start and is kept; the output is counted locally.
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_WITH_CACHE
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is True
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == chunks
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] > cost(12, 1000, 200, 0)
    assert capture.metric_sum(semconv.METRIC_COST) == pytest.approx(
        attributes[semconv.GEN_AI_USAGE_COST_AMOUNT]
    )


def test_a_stream_closed_early_ends_its_span_once(capture: Capture) -> None:
    stream = Server().client().messages.create(stream=True, **REQUEST)
    with stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    stream.close()  # a second close ends nothing twice
    assert_abandoned(capture, chunks=1)


def test_a_stream_dropped_unclosed_ends_its_span_once(capture: Capture) -> None:
    stream = Server().client().messages.create(stream=True, **REQUEST)
    for event in stream:
        if event.type == "content_block_delta":
            break
    assert capture.spans() == []  # still open: the app might read on
    del stream, event
    gc.collect()
    assert_abandoned(capture, chunks=1)


def test_a_stream_helper_left_early_ends_its_span_once(capture: Capture) -> None:
    with Server().client().messages.stream(**REQUEST) as stream:
        for _ in stream.text_stream:
            break
    assert_abandoned(capture, chunks=1)


async def test_an_async_stream_closed_early_ends_its_span_once(capture: Capture) -> None:
    stream = await Server().async_client().messages.create(stream=True, **REQUEST)
    async with stream:
        async for event in stream:
            if event.type == "content_block_delta":
                break
    assert_abandoned(capture, chunks=1)


def test_an_error_event_mid_stream_propagates_and_marks_the_span(capture: Capture) -> None:
    events = stream_events()[:4]
    events.append(
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    )
    stream = Server(events=events).client().messages.create(stream=True, **REQUEST)
    with pytest.raises(anthropic.APIStatusError) as raised:
        for _ in stream:
            pass
    span = only_span(capture)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[semconv.ERROR_TYPE] == (
        f"{type(raised.value).__module__}.{type(raised.value).__qualname__}"
    )
    assert attrs(span)[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_WITH_CACHE
