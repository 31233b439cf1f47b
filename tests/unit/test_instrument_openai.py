"""instrument_openai(): the real ``openai`` client (3.x, on httpx2) over a mock
transport that answers in OpenAI's wire format; chat completions, sync and
async, streamed and not, the ``.stream()`` helper, abandoned streams, client
errors, trace-context injection, idempotence, per-client mode and the request
body left alone."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
import openai
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_ml
from otel_ml import semconv
from otel_ml.pricing import PriceTable
from otel_ml.spans._validate import error_type
from otel_ml.testing import Capture

BASE_URL = "https://api.openai.test/v1"
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
DELAY = 0.05
PIECES = ("The", " capital", " of", " France", " is", " Paris", ".")
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 48,
    "total_tokens": 1248,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 16,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": SNAPSHOT,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The capital of France is Paris.",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}
STREAM_ID = "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
RATE_LIMIT = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-test on tokens per "
        "min (TPM): Limit 200000, Used 200000, Requested 1248. Please try again in 374ms.",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


# --- the wire ------------------------------------------------------------------


def chat_chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` as OpenAI streams it (with include_usage on,
    every chunk has ``usage: null`` until the last one)."""
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": STREAM_ID,
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": SNAPSHOT,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": choices,
        "usage": None,
    }


def chat_chunks(usage: dict[str, Any] | None = USAGE) -> list[dict[str, Any]]:
    chunks = [chat_chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chat_chunk({"content": piece}) for piece in PIECES]
    chunks.append(chat_chunk({}, finish="stop"))
    if usage is not None:
        final = chat_chunk(None)
        final["usage"] = usage
        chunks.append(final)
    return chunks


def sse(events: list[dict[str, Any]], named: bool = False) -> list[bytes]:
    """Server-sent events; chat streams end with ``data: [DONE]``, Responses
    API streams name each event."""
    lines = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        lines.append(f"{head}data: {json.dumps(event)}\n\n".encode())
    if not named:
        lines.append(b"data: [DONE]\n\n")
    return lines


class Server:
    """The provider: answers each request with ``reply(body)`` and keeps what it got."""

    def __init__(self, reply: Callable[[dict[str, Any]], httpx2.Response]) -> None:
        self.reply = reply
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx2.Headers] = []
        self.paths: list[str] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(request.headers)
        self.paths.append(request.url.path)
        return self.reply(body)

    async def handle_async(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        return self.handle(request)


def stream_response(parts: list[bytes], delay: float = DELAY) -> httpx2.Response:
    def body() -> Iterator[bytes]:
        time.sleep(delay)
        yield from parts

    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def async_stream_response(parts: list[bytes], delay: float = DELAY) -> httpx2.Response:
    async def body() -> AsyncIterator[bytes]:
        await asyncio.sleep(delay)
        for part in parts:
            yield part

    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def chat_reply(body: dict[str, Any]) -> httpx2.Response:
    if body.get("stream"):
        # As OpenAI: usage comes in a last chunk only when the request asks for it.
        include = (body.get("stream_options") or {}).get("include_usage")
        return stream_response(sse(chat_chunks(USAGE if include else None)))
    return httpx2.Response(200, json=COMPLETION)


def async_chat_reply(body: dict[str, Any]) -> httpx2.Response:
    if body.get("stream"):
        include = (body.get("stream_options") or {}).get("include_usage")
        return async_stream_response(sse(chat_chunks(USAGE if include else None)))
    return httpx2.Response(200, json=COMPLETION)


def sync_client(server: Server, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(server.handle)),
        **options,
    )


def async_client(server: Server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="test",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(server.handle_async)),
    )


# --- helpers -------------------------------------------------------------------


@pytest.fixture
def instrumented() -> Iterator[None]:
    otel_ml.instrument_openai()
    yield
    otel_ml.uninstrument_openai()


def only_span(capture: Capture) -> ReadableSpan:
    spans = capture.spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    assert span.attributes is not None
    return dict(span.attributes)


def expected_cost(model: str, input_tokens: int, output_tokens: int, cached: int) -> float:
    price = PriceTable.load().lookup(model)
    assert price is not None and price.cached_input is not None
    return (
        (input_tokens - cached) * price.input
        + cached * price.cached_input
        + output_tokens * price.output
    ) / 1_000_000


COST = expected_cost(MODEL, 1200, 48, 1024)


def assert_usage(attributes: dict[str, Any]) -> None:
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 48
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 16
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is False
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(COST, abs=1e-9)


def assert_chat_span(span: ReadableSpan, stream: bool) -> dict[str, Any]:
    attributes = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_CHAT
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == semconv.PROVIDER_OPENAI
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is stream
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == SNAPSHOT
    assert attributes[semconv.SERVER_ADDRESS] == "api.openai.test"
    assert attributes[semconv.SERVER_PORT] == 443
    return attributes


def assert_stream_timing(capture: Capture, attributes: dict[str, Any]) -> None:
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == len(PIECES)
    ttft = attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    # Within 5 ms in test_ttft_is_within_5ms_of_the_delay; here only its bounds.
    assert DELAY <= ttft < DELAY + 0.05, ttft
    [point] = capture.points(semconv.METRIC_TIME_TO_FIRST_CHUNK)
    assert point.sum == pytest.approx(ttft)
    [per_chunk] = capture.points(semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert per_chunk.count == len(PIECES) - 1


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """Streamed calls before any test, into a throwaway pipeline: the first
    stream's lazy imports (the SDK's and ours) would otherwise land in the
    measured TTFT."""
    throwaway = Capture()
    aclient = None
    client = sync_client(Server(lambda body: stream_response(sse(chat_chunks()), delay=0)))
    otel_ml.instrument_openai(client, telemetry=throwaway.telemetry)
    try:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass
        with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
            for _ in stream:
                pass
        aclient = async_client(Server(lambda body: async_stream_response(sse(chat_chunks()), 0)))
        otel_ml.instrument_openai(aclient, telemetry=throwaway.telemetry)
        asyncio.run(_drain(aclient))
    finally:
        otel_ml.uninstrument_openai(client)
        otel_ml.uninstrument_openai(aclient)
        throwaway.shutdown()


async def _drain(client: openai.AsyncOpenAI) -> None:
    async for _ in await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True
    ):
        pass


# --- chat completions ----------------------------------------------------------


def test_chat_create_records_response_usage_cost_and_tenant(
    otel_capture: Capture, instrumented: None
) -> None:
    server = Server(chat_reply)
    client = sync_client(server)
    with otel_ml.tenant("acme"):
        completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == "The capital of France is Paris."
    span = only_span(otel_capture)
    attributes = assert_chat_span(span, stream=False)
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == COMPLETION["id"]
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.TENANT_ID] == "acme"
    assert_usage(attributes)
    assert semconv.GEN_AI_INPUT_MESSAGES not in attributes  # content capture is off
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in attributes
    metric = {semconv.TENANT_ID: "acme", semconv.GEN_AI_REQUEST_MODEL: MODEL}
    assert otel_capture.metric_sum(semconv.METRIC_COST, metric) == pytest.approx(COST, abs=1e-9)
    assert (
        otel_capture.metric_sum(
            semconv.METRIC_TOKEN_USAGE, {**metric, semconv.GEN_AI_TOKEN_TYPE: "input"}
        )
        == 1200
    )
    assert (
        otel_capture.metric_sum(
            semconv.METRIC_TOKEN_USAGE, {**metric, semconv.GEN_AI_TOKEN_TYPE: "output"}
        )
        == 48
    )
    assert otel_capture.metric_count(semconv.METRIC_OPERATION_DURATION, metric) == 1
    assert server.bodies == [{"model": MODEL, "messages": MESSAGES}]


def test_chat_stream_times_chunks_and_reads_the_usage_chunk(
    otel_capture: Capture, instrumented: None
) -> None:
    server = Server(chat_reply)
    client = sync_client(server)
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "".join(PIECES)
    assert stream.response.status_code == 200  # the proxy is the Stream
    attributes = assert_chat_span(only_span(otel_capture), stream=True)
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == STREAM_ID
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert_usage(attributes)
    assert_stream_timing(otel_capture, attributes)
    assert server.bodies[-1]["stream_options"] == {"include_usage": True}


def test_chat_stream_helper_gives_one_span(otel_capture: Capture, instrumented: None) -> None:
    server = Server(chat_reply)
    client = sync_client(server)
    with client.chat.completions.stream(
        model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "".join(PIECES)
    assert final.choices[0].message.content == "".join(PIECES)
    attributes = assert_chat_span(only_span(otel_capture), stream=True)
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == STREAM_ID
    assert_usage(attributes)
    assert_stream_timing(otel_capture, attributes)


def test_stream_helper_left_early_ends_its_span_at_exit(
    otel_capture: Capture, instrumented: None
) -> None:
    client = sync_client(Server(chat_reply))
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for event in stream:
            if event.type == "content.delta":
                break
        assert otel_capture.spans() == []  # still streaming
    attributes = attrs(only_span(otel_capture))
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)
    assert attributes[semconv.LLM_STREAM_ABANDONED] is True


def test_abandoned_stream_ends_once_with_error_reason_and_keeps_tokens(
    otel_capture: Capture, instrumented: None
) -> None:
    client = sync_client(Server(chat_reply))
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    for index, _ in enumerate(stream):
        if index == 1:
            break
    assert otel_capture.spans() == []
    stream.close()
    stream.close()
    del stream
    gc.collect()
    attributes = attrs(only_span(otel_capture))
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)
    assert attributes[semconv.LLM_STREAM_ABANDONED] is True
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == 1  # the role chunk has no text
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == STREAM_ID
    # No usage chunk arrived: the tokens are a local count of what did, and priced.
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is True
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] >= 1
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] > 0
    assert otel_capture.metric_count(semconv.METRIC_OPERATION_DURATION) == 1


def test_stream_never_iterated_ends_when_collected(
    otel_capture: Capture, instrumented: None
) -> None:
    client = sync_client(Server(chat_reply))
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert otel_capture.spans() == []
    del stream
    gc.collect()
    attributes = attrs(only_span(otel_capture))
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)


def test_stream_as_context_manager_ends_at_exit(otel_capture: Capture, instrumented: None) -> None:
    client = sync_client(Server(chat_reply))
    with client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as stream:
        first = next(stream)
    assert first.id == STREAM_ID
    assert attrs(only_span(otel_capture))[semconv.LLM_STREAM_ABANDONED] is True


async def test_async_chat_create_and_stream(otel_capture: Capture, instrumented: None) -> None:
    server = Server(async_chat_reply)
    client = async_client(server)
    completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.id == COMPLETION["id"]
    assert_usage(assert_chat_span(only_span(otel_capture), stream=False))
    otel_capture.clear()
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in pieces) == "".join(PIECES)
    attributes = assert_chat_span(only_span(otel_capture), stream=True)
    assert_usage(attributes)
    assert_stream_timing(otel_capture, attributes)


async def test_async_stream_helper_and_abandoned_async_stream(
    otel_capture: Capture, instrumented: None
) -> None:
    client = async_client(Server(async_chat_reply))
    async with client.chat.completions.stream(
        model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        async for _ in stream:
            pass
    attributes = assert_chat_span(only_span(otel_capture), stream=True)
    assert_usage(attributes)
    otel_capture.clear()
    raw = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    count = 0
    async for _ in raw:
        count += 1
        if count == 2:
            break
    await raw.close()
    attributes = attrs(only_span(otel_capture))
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == STREAM_ID


# --- the request ---------------------------------------------------------------


def test_request_body_unchanged_without_include_usage(
    otel_capture: Capture, instrumented: None
) -> None:
    server = Server(chat_reply)
    client = sync_client(server)
    for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
        pass
    assert server.bodies == [{"model": MODEL, "messages": MESSAGES, "stream": True}]
    attributes = attrs(only_span(otel_capture))
    # The canned server sends no usage chunk when not asked: a local, flagged count.
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is True


def test_include_usage_adds_stream_options_only_to_streams(otel_capture: Capture) -> None:
    server = Server(chat_reply)
    client = sync_client(server)
    otel_ml.instrument_openai(include_usage=True)
    try:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass
        options = {"include_obfuscation": False}
        for _ in client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options=options
        ):
            pass
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    finally:
        otel_ml.uninstrument_openai()
    assert server.bodies[0]["stream_options"] == {"include_usage": True}
    assert server.bodies[1]["stream_options"] == {
        "include_obfuscation": False,
        "include_usage": True,
    }
    assert options == {"include_obfuscation": False}  # the app's dict is not touched
    assert "stream_options" not in server.bodies[2]
    assert [attrs(s)[semconv.LLM_USAGE_ESTIMATED] for s in otel_capture.spans()] == [
        False,
        False,
        False,
    ]


def test_requests_carry_the_generation_spans_trace_context(
    otel_capture: Capture, instrumented: None
) -> None:
    server = Server(chat_reply)
    client = sync_client(server)
    extra = {"X-Request-Tag": "t1"}
    with otel_ml.tenant("acme"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, extra_headers=extra)
    span = only_span(otel_capture)
    headers = server.headers[0]
    version, trace_id, span_id, _ = headers["traceparent"].split("-")
    assert (version, trace_id) == ("00", f"{span.context.trace_id:032x}")
    assert span_id == f"{span.context.span_id:016x}"
    assert "tenant.id=acme" in headers["baggage"]
    assert headers["x-request-tag"] == "t1"
    assert extra == {"X-Request-Tag": "t1"}


def test_a_traceparent_the_app_sets_is_left_alone(
    otel_capture: Capture, instrumented: None
) -> None:
    server = Server(chat_reply)
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client = sync_client(server, default_headers={"traceparent": mine})
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert server.headers[0]["traceparent"] == mine


def test_the_server_continues_the_trace(otel_capture: Capture, instrumented: None) -> None:
    tracer = otel_capture.telemetry.tracer_provider.get_tracer("provider")

    def reply(body: dict[str, Any]) -> httpx2.Response:
        context = propagate.extract(dict(server.headers[-1]))
        with tracer.start_as_current_span(
            "POST /v1/chat/completions", context=context, kind=SpanKind.SERVER
        ):
            return httpx2.Response(200, json=COMPLETION)

    server = Server(reply)
    sync_client(server).chat.completions.create(model=MODEL, messages=MESSAGES)
    by_name = {span.name: span for span in otel_capture.spans()}
    client_span, server_span = by_name[f"chat {MODEL}"], by_name["POST /v1/chat/completions"]
    assert server_span.context.trace_id == client_span.context.trace_id
    assert server_span.parent is not None
    assert server_span.parent.span_id == client_span.context.span_id


# --- errors --------------------------------------------------------------------


def _assert_error_span(capture: Capture, exc: BaseException) -> None:
    span = only_span(capture)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[semconv.ERROR_TYPE] == error_type(exc)
    assert (
        capture.metric_count(
            semconv.METRIC_OPERATION_DURATION, {semconv.ERROR_TYPE: error_type(exc)}
        )
        == 1
    )


def test_rate_limit_error_propagates_unchanged(otel_capture: Capture, instrumented: None) -> None:
    def reply(body: dict[str, Any]) -> httpx2.Response:
        return httpx2.Response(429, json=RATE_LIMIT, headers={"x-request-id": "req_1"})

    client = sync_client(Server(reply))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    _assert_error_span(otel_capture, caught.value)
    assert error_type(caught.value).endswith("RateLimitError")


def test_connection_and_timeout_errors_propagate(otel_capture: Capture, instrumented: None) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    def time_out(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("read timed out", request=request)

    for handler, error in ((refuse, openai.APIConnectionError), (time_out, openai.APITimeoutError)):
        otel_capture.clear()
        client = openai.OpenAI(
            api_key="test",
            base_url=BASE_URL,
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        )
        with pytest.raises(error) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert type(caught.value) is error
        _assert_error_span(otel_capture, caught.value)


def test_error_raised_mid_stream_propagates_and_ends_the_span(
    otel_capture: Capture, instrumented: None
) -> None:
    def reply(body: dict[str, Any]) -> httpx2.Response:
        error = {"error": {"message": "The server had an error", "type": "server_error"}}
        return stream_response(sse(chat_chunks()[:3])[:-1] + sse([error])[:1], delay=0)

    client = sync_client(Server(reply))
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    span = only_span(otel_capture)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[semconv.ERROR_TYPE] == error_type(caught.value)
    assert attrs(span)[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)


# --- lifecycle -----------------------------------------------------------------


def test_instrument_twice_is_one_span_and_uninstrument_restores(otel_capture: Capture) -> None:
    original = openai.resources.chat.completions.completions.Completions.create
    client = sync_client(Server(chat_reply))
    otel_ml.instrument_openai()
    otel_ml.instrument_openai()
    try:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert len(otel_capture.spans()) == 1
    finally:
        otel_ml.uninstrument_openai()
    assert openai.resources.chat.completions.completions.Completions.create is original
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert len(otel_capture.spans()) == 1
    otel_ml.uninstrument_openai()  # a second undo does nothing


def test_per_client_instruments_only_that_client(otel_capture: Capture) -> None:
    mine, other = sync_client(Server(chat_reply)), sync_client(Server(chat_reply))
    otel_ml.instrument_openai(mine)
    otel_ml.instrument_openai(mine)
    try:
        other.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert otel_capture.spans() == []
        mine.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert len(otel_capture.spans()) == 1
        # Global on top of per-client: still one span per call.
        otel_ml.instrument_openai()
        try:
            mine.chat.completions.create(model=MODEL, messages=MESSAGES)
            for _ in mine.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
                pass
        finally:
            otel_ml.uninstrument_openai()
        assert len(otel_capture.spans()) == 3
    finally:
        otel_ml.uninstrument_openai(mine)
    mine.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert len(otel_capture.spans()) == 3
    assert "create" not in vars(mine.chat.completions)


def test_per_client_with_given_telemetry_and_content_capture(otel_capture_factory: Any) -> None:
    capture = otel_capture_factory(capture_content=True)
    client = sync_client(Server(chat_reply))
    otel_ml.instrument_openai(client, telemetry=capture.telemetry)
    try:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    finally:
        otel_ml.uninstrument_openai(client)
    attributes = attrs(only_span(capture))
    assert "capital of France?" in attributes[semconv.GEN_AI_INPUT_MESSAGES]
    assert "Paris." in attributes[semconv.GEN_AI_OUTPUT_MESSAGES]


def test_a_returned_stream_leaves_the_callers_context_as_it_was(
    otel_capture: Capture, instrumented: None
) -> None:
    client = sync_client(Server(chat_reply))
    before = trace.get_current_span()
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert trace.get_current_span() is before
    for _ in stream:
        pass
    assert len(otel_capture.spans()) == 1


def test_ttft_is_within_5ms_of_the_delay(otel_capture: Capture, instrumented: None) -> None:
    """TTFT is the server's delay as the app lives it: at least the 50 ms the
    server waits, and within 5 ms of the time from the call to the first text
    the app itself sees. A loaded 2-core machine oversleeps the server's 50 ms
    by up to 15 ms (seen with other suites running), which is real time to
    first chunk for the app too, so the nominal delay alone cannot be the
    reference. The best of five attempts: a systematic error fails all of
    them, a scheduler stall in one does not fail the build."""
    client = sync_client(Server(chat_reply))
    errors = []
    for _ in range(5):
        gc.collect()  # no collection pause inside the measured call
        otel_capture.clear()
        called = time.perf_counter()
        first_text: float | None = None
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            if first_text is None and chunk.choices and chunk.choices[0].delta.content:
                first_text = time.perf_counter()
        assert first_text is not None
        ttft = attrs(only_span(otel_capture))[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        assert DELAY <= ttft <= first_text - called + 0.001
        errors.append(abs((first_text - called) - ttft))
    assert min(errors) < 0.005, errors
