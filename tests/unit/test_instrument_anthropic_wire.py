"""Canned Anthropic Messages API traffic in the exact wire format, and the real
``anthropic`` clients over a mock ``httpx2`` transport, for the
``instrument_anthropic`` tests. The tests here check the canned traffic
itself: the uninstrumented client parses it into what the API would give."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

BASE_URL = "https://api.anthropic.test"
HOST = "api.anthropic.test"
MODEL = "claude-haiku-4-5"
RESPONSE_MODEL = "claude-haiku-4-5-20251001"
MESSAGES = [
    {"role": "user", "content": "What does retrieval-augmented generation ground answers in?"}
]
REQUEST: dict[str, Any] = {"model": MODEL, "max_tokens": 256, "messages": MESSAGES}
ANSWER = "It grounds answers in retrieved documents."
# Per 1M tokens; the bundled table is not used, so the expected costs are fixed here.
PRICES = {
    "models": {
        MODEL: {"input": 3.0, "output": 15.0, "cached_input": 0.3, "cache_write_input": 3.75}
    }
}
DELAY = 0.05  # before the first text delta of a stream

# Usage as the API reports it: input_tokens excludes the cache read and write.
USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 1000,
    "output_tokens": 9,
    "service_tier": "standard",
}
INPUT_WITH_CACHE = 12 + 200 + 1000


def cost(input_uncached: int, cache_read: int, cache_write: int, output: int) -> float:
    """USD at PRICES, part by part."""
    return (input_uncached * 3.0 + cache_read * 0.3 + cache_write * 3.75 + output * 15.0) / 1e6


MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": RESPONSE_MODEL,
    "content": [{"type": "text", "text": ANSWER}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": USAGE,
}

TEXT_DELTAS = ("It grounds", " answers in", " retrieved", " documents.")
STREAM_OUTPUT_TOKENS = 11


def stream_events(
    deltas: tuple[str, ...] = TEXT_DELTAS, *, delta_usage: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The events of one streamed message, as the API sends them (ping included).

    ``message_start`` carries the input side of the usage, ``message_delta``
    the cumulative output tokens (and, from newer APIs, ``delta_usage``).
    """
    start_usage = {**USAGE, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **MESSAGE,
                    "id": "msg_01StreamedXYZ",
                    "content": [],
                    "stop_reason": None,
                    "usage": start_usage,
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for text in deltas:
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": STREAM_OUTPUT_TOKENS, **(delta_usage or {})},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _first_text(events: list[tuple[str, dict[str, Any]]]) -> int:
    return next(i for i, (name, _) in enumerate(events) if name == "content_block_delta")


def sse_body(
    events: list[tuple[str, dict[str, Any]]], delay: float, first_text: list[float]
) -> Iterator[bytes]:
    """The stream, waiting ``delay`` before the first text delta; ``first_text``
    gets the ``perf_counter()`` at which that delta is sent."""
    first = _first_text(events)
    for index, (name, data) in enumerate(events):
        if index == first:
            if delay:
                time.sleep(delay)
            first_text.append(time.perf_counter())
        yield sse(name, data)


async def sse_body_async(
    events: list[tuple[str, dict[str, Any]]], delay: float, first_text: list[float]
) -> AsyncIterator[bytes]:
    first = _first_text(events)
    for index, (name, data) in enumerate(events):
        if index == first:
            if delay:
                await asyncio.sleep(delay)
            first_text.append(time.perf_counter())
        yield sse(name, data)


SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_stream"}
JSON_HEADERS = {"content-type": "application/json", "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"}

RATE_LIMIT_BODY = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": "Number of request tokens has exceeded your per-minute rate limit "
        "(https://docs.claude.com/en/api/rate-limits); see the response headers for current "
        "usage. Please reduce the prompt length or the maximum tokens requested, or try "
        "again later. You may also contact sales at https://www.anthropic.com/contact-sales "
        "to discuss your options for a rate limit increase.",
    },
    "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
}


@dataclass
class Server:
    """The mock API: what it answers, and every request it received."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=stream_events)
    delay: float = 0.0
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: MESSAGE)
    error: Exception | None = None  # raised by the transport instead of answering
    requests: list[httpx2.Request] = field(default_factory=list)
    # perf_counter() when each request arrived, and when its first text delta left.
    arrived: list[float] = field(default_factory=list)
    first_text: list[float] = field(default_factory=list)

    def waited(self) -> float:
        """How long the one streamed request waited for its first text delta,
        as the server measured it: the delay, plus a loaded machine's oversleep."""
        (arrived,) = self.arrived
        (sent,) = self.first_text
        return sent - arrived

    def _streams(self, request: httpx2.Request) -> bool:
        return bool(json.loads(request.content).get("stream"))

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.arrived.append(time.perf_counter())
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        if self.status == 200 and self._streams(request):
            return httpx2.Response(
                200, headers=SSE_HEADERS, content=sse_body(self.events, self.delay, self.first_text)
            )
        return httpx2.Response(self.status, headers=JSON_HEADERS, json=self.body)

    async def handle_async(self, request: httpx2.Request) -> httpx2.Response:
        self.arrived.append(time.perf_counter())
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        if self.status == 200 and self._streams(request):
            body = sse_body_async(self.events, self.delay, self.first_text)
            return httpx2.Response(200, headers=SSE_HEADERS, content=body)
        return httpx2.Response(self.status, headers=JSON_HEADERS, json=self.body)

    def client(self, **options: Any) -> anthropic.Anthropic:
        transport = httpx2.MockTransport(self.handle)
        return anthropic.Anthropic(
            api_key="test",
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
            **options,
        )

    def async_client(self, **options: Any) -> anthropic.AsyncAnthropic:
        transport = httpx2.MockTransport(self.handle_async)
        return anthropic.AsyncAnthropic(
            api_key="test",
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=transport),
            **options,
        )

    def bodies(self) -> list[bytes]:
        return [request.content for request in self.requests]


Factory = Callable[..., Any]


# --- the canned traffic itself ---------------------------------------------------


def test_the_canned_message_parses_into_the_api_s_message() -> None:
    message = Server().client().messages.create(**REQUEST)
    assert isinstance(message, anthropic.types.Message)
    assert message.content[0].text == ANSWER  # type: ignore[union-attr]
    assert message.usage.cache_read_input_tokens == 1000
    assert message.usage.cache_creation_input_tokens == 200


def test_the_canned_stream_gives_the_api_s_events_and_final_message() -> None:
    server = Server()
    events = [event.type for event in server.client().messages.create(stream=True, **REQUEST)]
    # The client drops ping events; every other event reaches the application.
    assert events == [name for name, _ in stream_events() if name != "ping"]
    with server.client().messages.stream(**REQUEST) as stream:
        assert "".join(stream.text_stream) == "".join(TEXT_DELTAS)
        final = stream.get_final_message()
    assert final.usage.output_tokens == STREAM_OUTPUT_TOKENS
    assert final.usage.input_tokens == 12
    assert final.stop_reason == "end_turn"


def test_the_canned_429_is_the_client_s_rate_limit_error() -> None:
    server = Server(status=429, body=RATE_LIMIT_BODY)
    try:
        server.client().messages.create(**REQUEST)
    except anthropic.RateLimitError as exc:
        assert exc.status_code == 429
        assert exc.body == RATE_LIMIT_BODY
    else:
        raise AssertionError("no RateLimitError")
