"""Reading OpenAI-shaped data without importing the ``openai`` package:
chat completions and their streamed chunks, Responses API objects and stream
events, embeddings results (SDK objects or raw JSON mappings alike), and chat
messages.

:meth:`GenerationSpan.wrap` reads a stream's items with :func:`observe_chunk`;
the drop-in ``instrument_openai()`` reads whole responses, and its stream
proxies read the chunks they kept once, at the end of the stream. Everything
here writes to a :class:`Sink` (a ``GenerationSpan``), whose ``usage()`` and
``response()`` validate what the provider sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from otel_ml import semconv
from otel_ml.spans._invocation import GenerationInvocation

# (input, output, cached input, reasoning output), as the provider reported them.
UsageCounts = tuple[int | None, int | None, int | None, int | None]

# Responses API ``incomplete_details.reason`` -> the conventions' finish reason.
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
_RESPONSE_TERMINAL_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)
_RESPONSE_TEXT_DELTA = "response.output_text.delta"
_MISSING = object()


class Sink(Protocol):
    """Where readings go: a ``GenerationSpan``."""

    invocation: GenerationInvocation

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        cache_write_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
    ) -> None: ...

    def response(
        self,
        model: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        response_id: str | None = None,
    ) -> None: ...

    def output(self, text: str) -> None: ...


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: the SDK's objects and raw JSON alike."""
    if obj is None:
        return None
    # dict first, then attributes: isinstance(x, Mapping) is an ABC check that
    # costs more than the read itself on the SDK's pydantic objects.
    if type(obj) is dict:
        return obj.get(name)
    value = getattr(obj, name, _MISSING)
    if value is not _MISSING:
        return value
    return obj.get(name) if isinstance(obj, Mapping) else None


# --- usage ---------------------------------------------------------------------


def usage_counts(usage: Any) -> UsageCounts | None:
    """Token counts of a usage object: chat/embeddings (``prompt_tokens``,
    ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.
    reasoning_tokens``) or Responses API (``input_tokens``, ``*_details``).

    OpenAI's input count already includes the cached tokens, and its output
    count the reasoning tokens, as the conventions want: no sums here.
    """
    if not usage:
        return None
    input_tokens = field(usage, "prompt_tokens")
    input_details = field(usage, "prompt_tokens_details")
    if input_tokens is None:
        input_tokens = field(usage, "input_tokens")
        input_details = field(usage, "input_tokens_details")
    output_tokens = field(usage, "completion_tokens")
    output_details = field(usage, "completion_tokens_details")
    if output_tokens is None:
        output_tokens = field(usage, "output_tokens")
        output_details = field(usage, "output_tokens_details")
    return (
        input_tokens,
        output_tokens,
        field(input_details, "cached_tokens"),
        field(output_details, "reasoning_tokens"),
    )


def record_usage(sink: Sink, usage: Any) -> None:
    """Hand a usage object's counts to ``sink.usage()``."""
    counts = usage_counts(usage)
    if counts is not None:
        sink.usage(
            counts[0], counts[1], cached_input_tokens=counts[2], reasoning_output_tokens=counts[3]
        )


def _record_identity(sink: Sink, obj: Any) -> None:
    """Response model and id, once: the first chunk that carries them wins."""
    invocation = sink.invocation
    if invocation.response_id is None or invocation.response_model is None:
        sink.response(model=field(obj, "model"), response_id=field(obj, "id"))


# --- chat completions ----------------------------------------------------------


def chat_chunk_text(chunk: Any) -> str | None:
    """The text of a chat chunk's first choice delta."""
    choices = field(chunk, "choices")
    text = field(field(choices[0], "delta"), "content") if choices else None
    return text if isinstance(text, str) else None


def _add_finish_reasons(reasons: dict[int, str], choices: Any) -> None:
    for position, choice in enumerate(choices or ()):
        reason = field(choice, "finish_reason")
        if isinstance(reason, str):
            index = field(choice, "index")
            reasons[index if isinstance(index, int) else position] = reason


def _sorted_reasons(reasons: dict[int, str]) -> list[str]:
    return [reasons[index] for index in sorted(reasons)]


def record_chat_completion(sink: Sink, completion: Any) -> None:
    """A non-streamed chat completion: identity, finish reasons, usage, text."""
    reasons: dict[int, str] = {}
    choices = field(completion, "choices")
    _add_finish_reasons(reasons, choices)
    sink.response(
        model=field(completion, "model"),
        finish_reasons=_sorted_reasons(reasons),
        response_id=field(completion, "id"),
    )
    record_usage(sink, field(completion, "usage"))
    text = field(field(choices[0], "message"), "content") if choices else None
    if isinstance(text, str):
        sink.output(text)


def record_chat_stream(sink: Sink, stamps: Sequence[float], chunks: Sequence[Any]) -> None:
    """Everything a finished (or abandoned) chat stream carried, read once.

    ``stamps[i]`` is when ``chunks[i]`` reached the app; only chunks with text
    become the invocation's timed pieces, as with ``GenerationSpan.chunk()``.
    """
    invocation = sink.invocation
    reasons: dict[int, str] = {}
    usage = None
    if chunks and not isinstance(chunks[0], Mapping):
        # The SDK's objects: plain getattr, ~0.5 µs per chunk less than field().
        for stamp, chunk in zip(stamps, chunks, strict=False):
            choices = getattr(chunk, "choices", None)
            if choices:
                first = choices[0]
                text = getattr(getattr(first, "delta", None), "content", None)
                if text and type(text) is str:
                    invocation.stamps.append(stamp)
                    invocation.pieces.append(text)
                if len(choices) > 1 or getattr(first, "finish_reason", None) is not None:
                    _add_finish_reasons(reasons, choices)
            usage = getattr(chunk, "usage", None) or usage
    else:
        for stamp, chunk in zip(stamps, chunks, strict=False):
            choices = field(chunk, "choices")
            if choices:
                text = field(field(choices[0], "delta"), "content")
                if isinstance(text, str) and text:
                    invocation.stamps.append(stamp)
                    invocation.pieces.append(text)
                _add_finish_reasons(reasons, choices)
            usage = field(chunk, "usage") or usage
    if chunks:
        _record_identity(sink, chunks[0])
    sink.response(finish_reasons=_sorted_reasons(reasons) if reasons else None)
    record_usage(sink, usage)


# --- Responses API -------------------------------------------------------------


def response_finish_reasons(response: Any) -> list[str]:
    """The conventions' finish reasons for a Responses API ``status``."""
    status = field(response, "status")
    if status == "completed":
        for item in field(response, "output") or ():
            if field(item, "type") == "function_call":
                return ["tool_call"]
        return ["stop"]
    if status == "incomplete":
        reason = field(field(response, "incomplete_details"), "reason")
        return [_INCOMPLETE_REASONS.get(reason, reason if isinstance(reason, str) else "length")]
    if status in ("failed", "cancelled"):
        return [semconv.FINISH_REASON_ERROR]
    return []


def response_text(response: Any) -> str | None:
    """The output text of a Responses API object (its ``output_text`` parts)."""
    texts = [
        text
        for item in field(response, "output") or ()
        if field(item, "type") == "message"
        for part in field(item, "content") or ()
        if field(part, "type") == "output_text" and isinstance(text := field(part, "text"), str)
    ]
    return "".join(texts) if texts else None


def record_response(sink: Sink, response: Any) -> None:
    """A Responses API ``Response``: identity, finish reasons, usage, text."""
    sink.response(
        model=field(response, "model"),
        finish_reasons=response_finish_reasons(response),
        response_id=field(response, "id"),
    )
    record_usage(sink, field(response, "usage"))
    text = response_text(response)
    if text is not None and sink.invocation.output_text is None and not sink.invocation.pieces:
        sink.output(text)


def record_response_stream(sink: Sink, stamps: Sequence[float], events: Sequence[Any]) -> None:
    """Everything a Responses API event stream carried, read once at its end:
    text deltas become the timed pieces; the terminal event (``response.
    completed``/``incomplete``/``failed``) holds usage and status, and an
    abandoned stream keeps the identity of ``response.created``."""
    invocation = sink.invocation
    final = None
    for stamp, event in zip(stamps, events, strict=False):
        kind = field(event, "type")
        if kind == _RESPONSE_TEXT_DELTA:
            delta = field(event, "delta")
            if isinstance(delta, str) and delta:
                invocation.stamps.append(stamp)
                invocation.pieces.append(delta)
        elif kind in _RESPONSE_TERMINAL_EVENTS:
            final = field(event, "response")
        elif final is None and invocation.response_id is None:
            response = field(event, "response")
            if response is not None:
                sink.response(model=field(response, "model"), response_id=field(response, "id"))
    if final is not None:
        record_response(sink, final)


# --- embeddings ----------------------------------------------------------------


def record_embeddings(sink: Sink, result: Any) -> None:
    """An embeddings result: response model and input tokens (no output)."""
    sink.response(model=field(result, "model"))
    counts = usage_counts(field(result, "usage"))
    if counts is not None:
        sink.usage(input_tokens=counts[0])


# --- GenerationSpan.wrap() ------------------------------------------------------


def observe_chunk(sink: Sink, item: Any) -> str | None:
    """One streamed item for ``GenerationSpan.wrap()``: a chat chunk or a
    Responses API event. Records its identity, finish reasons and usage on
    ``sink`` and returns its text, which the caller times."""
    choices = field(item, "choices")
    if choices is None:
        return _observe_event(sink, item)
    invocation = sink.invocation
    if invocation.response_id is None:
        _record_identity(sink, item)
    text = None
    if choices:
        text = field(field(choices[0], "delta"), "content")
        for choice in choices:
            reason = field(choice, "finish_reason")
            if isinstance(reason, str):
                invocation.finish_reasons.append(reason)
    usage = field(item, "usage")
    if usage:
        record_usage(sink, usage)
    return text if isinstance(text, str) else None


def _observe_event(sink: Sink, event: Any) -> str | None:
    kind = field(event, "type")
    if kind == _RESPONSE_TEXT_DELTA:
        delta = field(event, "delta")
        return delta if isinstance(delta, str) else None
    if kind in _RESPONSE_TERMINAL_EVENTS:
        record_response(sink, field(event, "response"))
    elif sink.invocation.response_id is None and (response := field(event, "response")):
        sink.response(model=field(response, "model"), response_id=field(response, "id"))
    return None


# --- prompts -------------------------------------------------------------------


def prompt_text(prompt: Any) -> str:
    """Plain text of a prompt: a str, or OpenAI-style messages with str or part contents."""
    if isinstance(prompt, str):
        return prompt
    texts: list[str] = []
    if isinstance(prompt, Iterable):
        for message in prompt:
            content = message.get("content") if isinstance(message, Mapping) else message
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, Iterable):
                texts.extend(
                    part["text"]
                    for part in content
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                )
    return "\n".join(texts)
