"""What a finished span of another GenAI instrumentation says about its call:
operation, provider, model and token usage, read from whichever of the
attribute names in use today it carries (GenAI conventions, OpenInference,
OpenLLMetry's earlier names). Plain data in, plain data out: no SDK here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_ml import semconv

# Most authoritative first: the conventions' names, then the peers' own.
_INPUT = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.LEGACY_GEN_AI_USAGE_PROMPT_TOKENS,
    semconv.OI_TOKEN_COUNT_PROMPT,
)
_OUTPUT = (
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS,
    semconv.OI_TOKEN_COUNT_COMPLETION,
)
_CACHE_READ = (
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv.LEGACY_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv.OI_TOKEN_COUNT_CACHE_READ,
)
_CACHE_WRITE = (
    semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv.LEGACY_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv.OI_TOKEN_COUNT_CACHE_WRITE,
)
# The request model first: otel-ml prices and labels its own calls by it, so the
# two kinds of span land in the same series.
_MODEL = (
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.OI_LLM_MODEL_NAME,
)
_PROVIDER = (
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.LEGACY_GEN_AI_SYSTEM,
    semconv.OI_LLM_PROVIDER,
    semconv.OI_LLM_SYSTEM,
)
# Start attributes that mark a span as a GenAI call, whatever its scope.
MARKERS = frozenset(
    {
        semconv.GEN_AI_OPERATION_NAME,
        semconv.GEN_AI_PROVIDER_NAME,
        semconv.LEGACY_GEN_AI_SYSTEM,
        semconv.OI_SPAN_KIND,
        semconv.LEGACY_LLM_REQUEST_TYPE,
    }
)
_OI_OPERATIONS = {
    semconv.OI_SPAN_KIND_LLM: semconv.OP_CHAT,
    semconv.OI_SPAN_KIND_EMBEDDING: semconv.OP_EMBEDDINGS,
}
_LEGACY_OPERATIONS = {
    "chat": semconv.OP_CHAT,
    "completion": semconv.OP_TEXT_COMPLETION,
    "embedding": semconv.OP_EMBEDDINGS,
}


# Request attributes a span of the call may pass down to an inner span of the
# same call (one peer inside another): they describe the request, not the usage.
# Not the operation: an agent's span encloses chat calls.
_HINTS = (
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.LEGACY_GEN_AI_SYSTEM,
)


def request_hints(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The request attributes of a starting GenAI span."""
    return {name: attributes[name] for name in _HINTS if name in attributes}


@dataclass(frozen=True)
class PeerUsage:
    """Usage of one call as another instrumentation reported it."""

    operation: str
    provider: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0


def read_usage(attributes: Mapping[str, Any]) -> PeerUsage | None:
    """The call's usage, or None when the span reports no token counts (a
    chain, a retrieval, an HTTP span, or a call that failed before usage)."""
    input_tokens = _first_count(attributes, _INPUT)
    output_tokens = _first_count(attributes, _OUTPUT)
    if input_tokens is None and output_tokens is None:
        return None
    return PeerUsage(
        operation=_operation(attributes),
        provider=_first_str(attributes, _PROVIDER),
        model=_first_str(attributes, _MODEL),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=_first_count(attributes, _CACHE_READ) or 0,
        cache_write_input_tokens=_first_count(attributes, _CACHE_WRITE) or 0,
    )


def _operation(attributes: Mapping[str, Any]) -> str:
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    if isinstance(operation, str) and operation:
        return operation
    kind = attributes.get(semconv.OI_SPAN_KIND)
    if isinstance(kind, str) and kind in _OI_OPERATIONS:
        return _OI_OPERATIONS[kind]
    request_type = attributes.get(semconv.LEGACY_LLM_REQUEST_TYPE)
    if isinstance(request_type, str) and request_type in _LEGACY_OPERATIONS:
        return _LEGACY_OPERATIONS[request_type]
    return semconv.OP_CHAT


def _first_count(attributes: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = attributes.get(name)
        # bool is an int; a negative count is a peer's bug, not usage.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _first_str(attributes: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
    return None
