"""instrument_openai() beyond chat completions: the Responses API (streamed
and not, sync and async, its ``.stream()`` helper) and embeddings; and
``GenerationSpan.wrap()`` over a raw OpenAI stream. The real ``openai`` client
over a mock transport, in OpenAI's wire format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from test_instrument_openai import (  # the wire helpers of the chat tests
    DELAY,
    MESSAGES,
    MODEL,
    STREAM_ID,
    USAGE,
    Server,
    assert_usage,
    async_client,
    async_stream_response,
    attrs,
    chat_reply,
    expected_cost,
    only_span,
    sse,
    stream_response,
    sync_client,
)

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

R_MODEL = "gpt-4.1-mini"
R_SNAPSHOT = "gpt-4.1-mini-2025-04-14"
R_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
R_PIECES = ("Paris", " is", " the", " capital", ".")
R_USAGE = {
    "input_tokens": 2000,
    "input_tokens_details": {"cached_tokens": 1536},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 2300,
}
R_COST = expected_cost(R_MODEL, 2000, 300, 1536)


def response(status: str = "completed", usage: dict[str, Any] | None = R_USAGE) -> dict[str, Any]:
    """A Responses API ``response`` object as OpenAI returns it."""
    done = status == "completed"
    return {
        "id": R_ID,
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": R_SNAPSHOT,
        "output": [
            {
                "type": "message",
                "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "".join(R_PIECES), "annotations": []}],
            }
        ]
        if done
        else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage if done else None,
        "user": None,
        "metadata": {},
    }


def response_events() -> list[dict[str, Any]]:
    """The events of a streamed response, from ``response.created`` to ``response.completed``."""
    item = {"id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress")},
        {"type": "response.in_progress", "response": response("in_progress")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {
                "type": "message",
                "id": item["id"],
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {
            "type": "response.content_part.added",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": piece,
            "logprobs": [],
        }
        for piece in R_PIECES
    ]
    events += [
        {
            "type": "response.output_text.done",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "text": "".join(R_PIECES),
            "logprobs": [],
        },
        {"type": "response.completed", "response": response()},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def responses_reply(body: dict[str, Any]) -> httpx2.Response:
    if body.get("stream"):
        return stream_response(sse(response_events(), named=True))
    return httpx2.Response(200, json=response())


def async_responses_reply(body: dict[str, Any]) -> httpx2.Response:
    if body.get("stream"):
        return async_stream_response(sse(response_events(), named=True))
    return httpx2.Response(200, json=response())


EMBEDDINGS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093, 0.0151]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}


@pytest.fixture
def instrumented() -> Iterator[None]:
    otel_ml.instrument_openai()
    yield
    otel_ml.uninstrument_openai()


def assert_response_span(span: Any, stream: bool, server: bool = True) -> dict[str, Any]:
    attributes = attrs(span)
    assert span.name == f"chat {R_MODEL}"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_CHAT
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is stream
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == R_SNAPSHOT
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == R_ID
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 2000
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 300
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1536
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 128
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(R_COST, abs=1e-9)
    if server:
        assert attributes[semconv.SERVER_ADDRESS] == "api.openai.test"
    return attributes


def test_responses_create(otel_capture: Capture, instrumented: None) -> None:
    server = Server(responses_reply)
    result = sync_client(server).responses.create(model=R_MODEL, input="Capital of France?")
    assert result.output_text == "".join(R_PIECES)
    assert_response_span(only_span(otel_capture), stream=False)
    assert server.paths == ["/v1/responses"]
    assert server.bodies == [{"model": R_MODEL, "input": "Capital of France?"}]


def test_responses_stream_reads_usage_from_response_completed(
    otel_capture: Capture, instrumented: None
) -> None:
    client = sync_client(Server(responses_reply))
    for _ in client.responses.create(model=R_MODEL, input="warm-up", stream=True):
        pass  # the first stream builds the SDK's event models: not part of the TTFT below
    otel_capture.clear()
    stream = client.responses.create(model=R_MODEL, input="Capital of France?", stream=True)
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "".join(R_PIECES)
    attributes = assert_response_span(only_span(otel_capture), stream=True)
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == len(R_PIECES)
    assert DELAY <= attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] < DELAY + 0.05
    # The warm-up recorded as many points: the metric is cumulative.
    [per_chunk] = otel_capture.points(semconv.METRIC_TIME_PER_OUTPUT_CHUNK)
    assert per_chunk.count == 2 * (len(R_PIECES) - 1)


def test_responses_stream_helper(otel_capture: Capture, instrumented: None) -> None:
    client = sync_client(Server(responses_reply))
    with client.responses.stream(model=R_MODEL, input="Capital of France?") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.id == R_ID
    assert_response_span(only_span(otel_capture), stream=True)


def test_abandoned_responses_stream_keeps_the_created_identity(
    otel_capture: Capture, instrumented: None
) -> None:
    client = sync_client(Server(responses_reply))
    stream = client.responses.create(model=R_MODEL, input="Capital of France?", stream=True)
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    stream.close()
    attributes = attrs(only_span(otel_capture))
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == R_ID
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("error",)
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == 1


async def test_async_responses(otel_capture: Capture, instrumented: None) -> None:
    client = async_client(Server(async_responses_reply))
    result = await client.responses.create(model=R_MODEL, input="Capital of France?")
    assert result.id == R_ID
    assert_response_span(only_span(otel_capture), stream=False)
    otel_capture.clear()
    stream = await client.responses.create(model=R_MODEL, input="Capital of France?", stream=True)
    async for _ in stream:
        pass
    assert_response_span(only_span(otel_capture), stream=True)


def test_embeddings(otel_capture: Capture, instrumented: None) -> None:
    server = Server(lambda body: httpx2.Response(200, json=EMBEDDINGS))
    with otel_ml.tenant("acme"):
        result = sync_client(server).embeddings.create(
            model="text-embedding-3-small", input=["What is RAG?"]
        )
    assert result.data[0].embedding == [0.0023, -0.0093, 0.0151]
    span = only_span(otel_capture)
    attributes = attrs(span)
    assert span.name == "embeddings text-embedding-3-small"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == semconv.OP_EMBEDDINGS
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 8
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in attributes
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is False
    cost = expected_cost_plain("text-embedding-3-small", 8)
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(cost, abs=1e-12)
    assert otel_capture.metric_sum(
        semconv.METRIC_COST, {semconv.TENANT_ID: "acme"}
    ) == pytest.approx(cost, abs=1e-12)


async def test_async_embeddings(otel_capture: Capture, instrumented: None) -> None:
    client = async_client(Server(lambda body: httpx2.Response(200, json=EMBEDDINGS)))
    await client.embeddings.create(model="text-embedding-3-small", input="What is RAG?")
    assert attrs(only_span(otel_capture))[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 8


def expected_cost_plain(model: str, input_tokens: int) -> float:
    from otel_ml.pricing import PriceTable

    price = PriceTable.load().lookup(model)
    assert price is not None
    return input_tokens * price.input / 1_000_000


def test_wrap_reads_a_raw_openai_stream(otel_capture: Capture) -> None:
    """Not instrumented: the context manager's wrap() over the client's own Stream."""
    client = sync_client(Server(chat_reply))
    with otel_ml.generation(MODEL, provider="openai", prompt=MESSAGES, stream=True) as g:
        stream = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        for _ in g.wrap(stream):
            pass
    attributes = attrs(only_span(otel_capture))
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == STREAM_ID
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert_usage(attributes)
    assert USAGE["prompt_tokens"] == attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS]


def test_wrap_reads_a_raw_responses_stream(otel_capture: Capture) -> None:
    client = sync_client(Server(responses_reply))
    with otel_ml.generation(R_MODEL, provider="openai", stream=True) as g:
        stream = client.responses.create(model=R_MODEL, input="Capital?", stream=True)
        for _ in g.wrap(stream):
            pass
    attributes = assert_response_span(only_span(otel_capture), stream=True, server=False)
    assert attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] == len(R_PIECES)
