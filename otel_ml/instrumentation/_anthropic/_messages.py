"""Reading the Messages API: the request's model and prompt, and the usage,
stop reason and id of a ``Message`` or of the events of its stream.

Anthropic reports ``input_tokens`` without the cache; the GenAI conventions'
``gen_ai.usage.input_tokens`` includes it, so the three are summed here, once,
and the cache parts are passed on apart for the cached and cache-write prices.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from otel_ml.spans._generation import GenerationSpan

# Anthropic's stop reasons in the conventions' finish-reason values, as the
# official opentelemetry-instrumentation-genai-anthropic normalizes them; a
# reason without a conventions value (pause_turn, refusal) passes unchanged.
FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
}

# The usage fields, all cumulative in a stream: a later value replaces an earlier one.
_INPUT = "input_tokens"
_OUTPUT = "output_tokens"
_CACHE_READ = "cache_read_input_tokens"
_CACHE_WRITE = "cache_creation_input_tokens"
_USAGE_FIELDS = (_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE)


def request_model(kwargs: Mapping[str, Any]) -> str:
    """The requested model, or ``unknown`` (the client raises for a missing one)."""
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else "unknown"


def finish_reason(stop_reason: Any) -> list[str] | None:
    if not isinstance(stop_reason, str) or not stop_reason:
        return None
    return [FINISH_REASONS.get(stop_reason, stop_reason)]


def read_usage(usage: Any, into: dict[str, int], fields: tuple[str, ...] = _USAGE_FIELDS) -> None:
    """Copy the integer ``fields`` of a ``Usage``/``MessageDeltaUsage`` into ``into``;
    a field the event leaves out or sets to null keeps its earlier value."""
    for name in fields:
        value = getattr(usage, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            into[name] = value
    details = getattr(usage, "output_tokens_details", None)
    thinking = getattr(details, "thinking_tokens", None)
    if isinstance(thinking, int) and not isinstance(thinking, bool):
        into["thinking_tokens"] = thinking


def report_usage(g: GenerationSpan, usage: Mapping[str, int]) -> None:
    """Hand the provider's usage to the span, input summed as the conventions say."""
    cache_read = usage.get(_CACHE_READ, 0)
    cache_write = usage.get(_CACHE_WRITE, 0)
    input_tokens = usage.get(_INPUT)
    g.usage(
        input_tokens=None if input_tokens is None else input_tokens + cache_read + cache_write,
        output_tokens=usage.get(_OUTPUT),
        cached_input_tokens=cache_read,
        cache_write_input_tokens=cache_write,
        reasoning_output_tokens=usage.get("thinking_tokens"),
    )


def record_message(g: GenerationSpan, message: Any) -> None:
    """Everything a non-streamed ``Message`` tells about the call."""
    usage: dict[str, int] = {}
    read_usage(getattr(message, "usage", None), usage)
    report_usage(g, usage)
    g.response(
        model=getattr(message, "model", None),
        finish_reasons=finish_reason(getattr(message, "stop_reason", None)),
        response_id=getattr(message, "id", None),
    )
    text = "".join(
        block.text
        for block in getattr(message, "content", None) or ()
        if getattr(block, "type", None) == "text" and isinstance(block.text, str)
    )
    if text:
        g.output(text)


class StreamRecord:
    """What the events of one stream carry, gathered as they pass.

    :meth:`event` runs once per event: a text delta costs two appends (the
    ``perf_counter()`` stamp and the text), as ``GenerationSpan.chunk`` does;
    the few other events that carry anything are read when they pass, and
    the span hears of it all once, in :meth:`report`.
    """

    __slots__ = ("_pieces", "_stamps", "ended", "message_id", "model", "stop_reason", "usage")

    def __init__(self, g: GenerationSpan) -> None:
        self._stamps = g.invocation.stamps
        self._pieces = g.invocation.pieces
        self.usage: dict[str, int] = {}
        self.model: str | None = None
        self.message_id: str | None = None
        self.stop_reason: str | None = None
        self.ended = False  # message_stop seen: the provider finished the response

    def event(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                self._stamps.append(time.perf_counter())
                self._pieces.append(delta.text)
        elif kind == "message_start":
            message = event.message
            self.model = message.model
            self.message_id = message.id
            # Its output_tokens is a count at the start only: output comes from message_delta.
            read_usage(message.usage, self.usage, (_INPUT, _CACHE_READ, _CACHE_WRITE))
        elif kind == "message_delta":
            read_usage(event.usage, self.usage)
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
        elif kind == "message_stop":
            self.ended = True

    def report(self, g: GenerationSpan) -> None:
        report_usage(g, self.usage)
        g.response(
            model=self.model,
            finish_reasons=finish_reason(self.stop_reason),
            response_id=self.message_id,
        )
