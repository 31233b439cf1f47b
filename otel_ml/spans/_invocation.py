"""One LLM call as plain data, after opentelemetry-util-genai's invocation
objects: the ``generation`` context manager fills it in as the call runs, and
:mod:`otel_ml.spans._generation_emit` turns it into span attributes and metrics
once, at the end. A provider integration fills the same record, so its spans
and metrics are the context manager's, name for name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class GenerationInvocation:
    """What is known about one generation call."""

    model: str
    provider: str
    operation: str
    prompt: Any = None
    stream: bool = False
    # perf_counter() of each non-empty output chunk, and the chunk's text.
    stamps: list[float] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    output_text: str | None = None
    input_tokens: int | None = None  # provider-reported; includes cached tokens
    output_tokens: int | None = None
    cached_input_tokens: int = 0  # part of input_tokens, read from the provider's cache
    cache_write_input_tokens: int = 0  # part of input_tokens, written to the cache
    reasoning_output_tokens: int | None = None  # part of output_tokens
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    response_id: str | None = None
    abandoned: bool = False  # a stream closed before its end
    server_address: str | None = None  # host of the provider's endpoint
    server_port: int | None = None

    def text(self) -> str:
        """The output text: as given to ``output()``, else the streamed pieces."""
        if self.output_text is not None:
            return self.output_text
        return "".join(self.pieces)
