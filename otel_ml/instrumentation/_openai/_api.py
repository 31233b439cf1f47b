"""What each instrumented OpenAI endpoint means for a generation span: its
operation name, where its prompt is, and how its responses and streams are
read (the reading itself is in :mod:`otel_ml.spans._openai`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from otel_ml import semconv
from otel_ml.spans import _openai
from otel_ml.spans._generation import GenerationSpan

ReadResult = Callable[[GenerationSpan, Any], None]
ReadStream = Callable[[GenerationSpan, Sequence[float], Sequence[Any]], None]


@dataclass(frozen=True)
class Api:
    """One endpoint: ``chat.completions``, ``responses`` or ``embeddings``."""

    name: str
    operation: str
    prompt_key: str
    read_result: ReadResult
    read_stream: ReadStream
    # Chat completions only: the include_usage option may add stream_options.
    takes_stream_options: bool = False


def _no_stream(span: GenerationSpan, stamps: Sequence[float], items: Sequence[Any]) -> None:
    """Embeddings never stream."""


# The conventions' OpenAI page: gen_ai.operation.name is "chat" for Chat
# Completions and for the Responses API alike (openai.api.type tells them apart).
CHAT = Api(
    "chat.completions",
    semconv.OP_CHAT,
    "messages",
    _openai.record_chat_completion,
    _openai.record_chat_stream,
    takes_stream_options=True,
)
RESPONSES = Api(
    "responses",
    semconv.OP_CHAT,
    "input",
    _openai.record_response,
    _openai.record_response_stream,
)
EMBEDDINGS = Api(
    "embeddings", semconv.OP_EMBEDDINGS, "input", _openai.record_embeddings, _no_stream
)
