"""otel-ml: OpenTelemetry-native observability for RAG and LLM services.

Typical use::

    tel = otel_ml.configure(service_name="rag-api")
    with otel_ml.tenant("acme"):
        with otel_ml.retrieval(data_source="docs", query=q, top_k=5) as r:
            r.record(hits)
        with otel_ml.generation(model="gpt-4o-mini", provider="openai", prompt=p, stream=True) as g:
            for piece in g.wrap(stream):
                ...
"""

from __future__ import annotations

from typing import Any

from otel_ml._edge import edge
from otel_ml.instrumentation import (
    flush_on_shutdown,
    instrument_anthropic,
    instrument_chroma,
    instrument_fastapi,
    instrument_httpx,
    instrument_openai,
    uninstrument_anthropic,
    uninstrument_chroma,
    uninstrument_openai,
)
from otel_ml.spans import GenerationSpan, InferenceSpan, RetrievalSpan
from otel_ml.telemetry import Telemetry, configure, current
from otel_ml.tenancy import current_tenant, strip_client_tenant, tenant

__all__ = [
    "GenerationSpan",
    "InferenceSpan",
    "RetrievalSpan",
    "Telemetry",
    "configure",
    "current_tenant",
    "edge",
    "evaluate",
    "feedback",
    "flush_on_shutdown",
    "generation",
    "inference",
    "instrument_anthropic",
    "instrument_chroma",
    "instrument_fastapi",
    "instrument_httpx",
    "instrument_openai",
    "retrieval",
    "strip_client_tenant",
    "tenant",
    "uninstrument_anthropic",
    "uninstrument_chroma",
    "uninstrument_openai",
]


def retrieval(
    data_source: str,
    query: str | None = None,
    top_k: int | None = None,
    provider: str | None = None,
) -> RetrievalSpan:
    """A ``retrieval {data_source}`` span on the current Telemetry."""
    return current().retrieval(data_source, query=query, top_k=top_k, provider=provider)


def generation(
    model: str,
    provider: str,
    prompt: Any = None,
    stream: bool = False,
    operation: str = "chat",
) -> GenerationSpan:
    """A ``{operation} {model}`` generation span on the current Telemetry."""
    return current().generation(model, provider, prompt=prompt, stream=stream, operation=operation)


def inference(model: str) -> InferenceSpan:
    """A classic-model prediction span on the current Telemetry."""
    return current().inference(model)


def evaluate(target: Any, data: Any, evaluators: Any = None) -> list[Any]:
    """Evaluate one generation on the current Telemetry (``Telemetry.evaluate``):
    ``data`` an ``otel_ml.evaluation.EvaluationInput``, ``target`` the evaluated
    span, its response id, or None for the current span."""
    return current().evaluate(target, data, evaluators)


def feedback(
    trace_id: Any, kind: str | None = None, score: float | None = None, span_id: Any = None
) -> None:
    """User feedback on the answer of ``trace_id`` (thumbs_up, thumbs_down,
    copy_to_clipboard, or a ``score`` in [0, 1])."""
    current().feedback(trace_id, kind, score=score, span_id=span_id)
