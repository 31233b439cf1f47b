"""The OpenAI chat-completions wire format, both directions.

The llm service speaks it as a server, and as a client of a real endpoint when
``LLM_BASE_URL`` is set. The api service calls the llm service through the
official ``openai`` client instead (instrumented by ``instrument_openai``). Only what a
text-only RAG product needs is modelled: content deltas, finish reasons, usage,
errors.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

SSE_MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True)
class Delta:
    """One parsed ``chat.completion.chunk`` (or a whole non-streamed completion)."""

    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None


class UpstreamError(Exception):
    """A chat endpoint answered with an error status (or an unreadable stream)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; ``data`` is JSON-encoded unless it is already a str."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """``(event, data)`` pairs from SSE text lines; multi-line data is joined with \\n."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith(":"):
            continue  # comment / keep-alive
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": error_type}}


def chunk_payload(
    response_id: str,
    created: int,
    model: str,
    *,
    content: str | None = None,
    role: str | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk``; ``usage`` alone makes the final usage-only chunk."""
    choices: list[dict[str, Any]] = []
    if usage is None or content is not None or finish_reason is not None:
        delta: dict[str, str] = {}
        if role:
            delta["role"] = role
        if content is not None:
            delta["content"] = content
        choices.append({"index": 0, "delta": delta, "finish_reason": finish_reason})
    payload: dict[str, Any] = {
        "id": response_id, "object": "chat.completion.chunk", "created": created,
        "model": model, "choices": choices,
    }
    if usage is not None:
        payload["usage"] = usage.as_dict()
    return payload


def completion_payload(
    response_id: str, created: int, model: str, text: str, finish_reason: str, usage: Usage
) -> dict[str, Any]:
    """A non-streamed ``chat.completion``."""
    return {
        "id": response_id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish_reason}],
        "usage": usage.as_dict(),
    }


def parse_chunk(payload: Mapping[str, Any]) -> Delta:
    """Read a streamed chunk or a whole completion (``message`` instead of ``delta``)."""
    content = ""
    finish_reason = None
    choices = payload.get("choices") or []
    if choices:
        choice = choices[0]
        body = choice.get("delta") or choice.get("message") or {}
        content = body.get("content") or ""
        finish_reason = choice.get("finish_reason")
    return Delta(
        content=content,
        finish_reason=finish_reason,
        usage=_usage(payload.get("usage")),
        model=payload.get("model"),
        id=payload.get("id"),
    )


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


async def stream_chat(
    client: httpx.AsyncClient,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> AsyncGenerator[Delta, None]:
    """POST a streaming chat request and yield its chunks until ``[DONE]``.

    Raises :class:`UpstreamError` for an error status, before anything is yielded.
    """
    request = {**body, "stream": True}
    async with client.stream("POST", url, json=request, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise error_from(response)
        async for _, data in iter_sse(response.aiter_lines()):
            if data.strip() == "[DONE]":
                return
            try:
                payload = json.loads(data)
                delta = parse_chunk(payload)
            except (ValueError, AttributeError) as exc:
                raise UpstreamError(502, "bad_stream", f"unreadable chunk: {data[:80]!r}") from exc
            error = payload.get("error")
            if isinstance(error, Mapping):  # a failure after the stream started
                raise UpstreamError(
                    502, str(error.get("type") or "stream_error"), str(error.get("message"))
                )
            yield delta


def error_from(response: httpx.Response) -> UpstreamError:
    """The error an OpenAI-compatible endpoint returned, as an exception."""
    error_type, message = "http_error", response.text[:200]
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, Mapping):
        error_type = str(error.get("type") or error.get("code") or error_type)
        message = str(error.get("message") or message)
    return UpstreamError(response.status_code, error_type, message)
