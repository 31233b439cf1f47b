"""Context managers for retrieval, generation and classic-model inference spans.

Each works with ``with`` and ``async with``. Application exceptions propagate
unchanged (the span records them); otel-ml's own faults are logged and
swallowed by :func:`otel_ml._safety.guard`.

Split by job, after opentelemetry-util-genai:

- ``_scope``: the lifecycle every span shares (start, make current, end once);
- ``_invocation``: one LLM call as plain data (:class:`GenerationInvocation`);
- ``_generation``: the ``generation`` context manager that fills it;
- ``_stream``: sync/async stream wrappers that end a span exactly once;
- ``_generation_emit``: span attributes, token fallback, cost and metrics;
- ``_openai``: reading OpenAI-shaped chunks and messages;
- ``_retrieval``, ``_inference``: the other two spans;
- ``_validate``: what callers pass in.

A provider integration fills a :class:`GenerationInvocation` from the
provider's responses, so its telemetry is the context manager's, name for name.
"""

from __future__ import annotations

from otel_ml.spans._generation import GenerationSpan
from otel_ml.spans._inference import InferenceSpan, new_label_cap
from otel_ml.spans._invocation import GenerationInvocation
from otel_ml.spans._retrieval import RetrievalSpan
from otel_ml.spans._scope import Recorder, SpanScope

__all__ = [
    "GenerationInvocation",
    "GenerationSpan",
    "InferenceSpan",
    "Recorder",
    "RetrievalSpan",
    "SpanScope",
    "new_label_cap",
]
