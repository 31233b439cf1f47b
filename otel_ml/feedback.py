"""User feedback on an answer, linked to the trace that produced it."""

from __future__ import annotations

import math
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._safety import warn_input
from otel_ml.spans import Recorder
from otel_ml.tenancy import current_tenant

KINDS = frozenset({"thumbs_up", "thumbs_down", "copy_to_clipboard", "score"})


def record_feedback(
    recorder: Recorder,
    trace_id: Any,
    kind: str | None = None,
    score: float | None = None,
    span_id: Any = None,
) -> None:
    """Emit a ``feedback {kind}`` span linked to ``trace_id`` and count it."""
    trace_int = _parse_id(trace_id, 32, "feedback trace_id")
    if trace_int is None:
        return
    kind, score = _kind_and_score(kind, score)
    if kind is None:
        return
    attributes: dict[str, AttributeValue] = {
        semconv.RAG_FEEDBACK_KIND: kind,
        semconv.RAG_FEEDBACK_TRACE_ID: f"{trace_int:032x}",
    }
    if score is not None:
        attributes[semconv.RAG_FEEDBACK_SCORE] = score
    tenant_id = current_tenant()
    if tenant_id is not None:
        attributes[semconv.TENANT_ID] = tenant_id
    links = []
    span_int = _parse_id(span_id, 16, "feedback span_id") if span_id is not None else None
    if span_int is not None:
        target = SpanContext(trace_int, span_int, is_remote=True, trace_flags=TraceFlags(1))
        links.append(Link(target))
    span = recorder.tracer.start_span(
        semconv.SPAN_FEEDBACK.format(kind=kind),
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        links=links,
        # Feedback arrives in a request of its own: make it a root, never a
        # child of whatever span happens to be current.
        context=trace.set_span_in_context(INVALID_SPAN),
    )
    span.end()
    metric_attributes: dict[str, AttributeValue] = {semconv.FEEDBACK_KIND: kind}
    recorder.tenant_attribute(metric_attributes)
    recorder.instruments.feedback.add(1, metric_attributes)


def _kind_and_score(kind: Any, score: Any) -> tuple[str | None, float | None]:
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            warn_input(f"feedback score must be a number in [0, 1], got {score!r:.40}; ignored")
            return None, None
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            warn_input(f"feedback score must be in [0, 1], got {score!r}; ignored")
            return None, None
        score = float(score)
        kind = kind or "score"
    if kind not in KINDS:
        warn_input(f"feedback kind must be one of {sorted(KINDS)}, got {kind!r:.40}; ignored")
        return None, None
    if kind == "score" and score is None:
        warn_input("feedback kind 'score' needs a score in [0, 1]; ignored")
        return None, None
    return kind, score


def _parse_id(value: Any, hex_digits: int, what: str) -> int | None:
    """A W3C trace/span id given as hex str or int; None (with a warning) if invalid."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value) == hex_digits:
        try:
            number = int(value, 16)
        except ValueError:
            number = None
    if number is None or not 0 < number < 16**hex_digits:
        warn_input(f"{what} must be {hex_digits} hex digits (non-zero), got {value!r:.40}")
        return None
    return number
