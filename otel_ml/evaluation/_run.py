"""Running evaluators on one generation and emitting what they find.

Shared by ``Telemetry.evaluate`` (inline) and the off-path runner. An
evaluator that raises gives a result with ``error_type`` (the exception's
class name): evaluation is telemetry, it never breaks the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, Span, SpanContext

from otel_ml.evaluation._builtin import Groundedness
from otel_ml.evaluation._emit import EvaluationRecorder
from otel_ml.evaluation._judge import JudgeError
from otel_ml.evaluation._types import EvaluationInput, EvaluationResult, Evaluator

logger = logging.getLogger("otel_ml")

# The evaluated generation: a span (or its context), a response id, or None
# for the span current where evaluate() is called.
Target = Any


def default_evaluators() -> list[Evaluator]:
    return [Groundedness()]


def _no_span() -> Context:
    # Not an empty Context: the Logs API takes an empty (falsy) one to mean
    # "the current context", and the event would land on whatever span is current.
    return trace.set_span_in_context(INVALID_SPAN, Context())


def resolve_target(target: Target, data: EvaluationInput) -> tuple[Context, str | None]:
    """The context the event is emitted in, and the response id it carries."""
    response_id = data.response_id
    if isinstance(target, str):
        # Evaluated after the fact: no span to parent to, only the id.
        return _no_span(), target or response_id
    span_context: SpanContext | None = None
    if isinstance(target, SpanContext):
        span_context = target
    elif isinstance(target, Span):
        span_context = target.get_span_context()
    elif target is not None:
        inner = getattr(target, "_span", None)  # otel_ml.GenerationSpan and friends
        if isinstance(inner, Span):
            span_context = inner.get_span_context()
    if span_context is not None and span_context.is_valid:
        return trace.set_span_in_context(NonRecordingSpan(span_context), Context()), response_id
    if target is None:
        return otel_context.get_current(), response_id
    return _no_span(), response_id


def run_one(evaluator: Evaluator, data: EvaluationInput) -> EvaluationResult:
    name = str(getattr(evaluator, "name", type(evaluator).__name__))
    try:
        result = evaluator.evaluate(data)
    except JudgeError as exc:
        return EvaluationResult(name=name, error_type=exc.error_type)
    except Exception as exc:
        logger.debug("otel-ml: evaluator %s failed: %r", name, exc)
        return EvaluationResult(name=name, error_type=type(exc).__name__)
    if not isinstance(result, EvaluationResult):
        return EvaluationResult(name=name, error_type="invalid_result")
    if result.score is not None and not 0.0 <= result.score <= 1.0:
        return EvaluationResult(name=result.name, error_type="score_out_of_range")
    return result


def evaluate_and_emit(
    emitter: EvaluationRecorder,
    target: Target,
    data: EvaluationInput,
    evaluators: Sequence[Evaluator] | None,
) -> list[EvaluationResult]:
    event_context, response_id = resolve_target(target, data)
    results = []
    for evaluator in evaluators if evaluators is not None else default_evaluators():
        result = run_one(evaluator, data)
        results.append(result)
        try:
            emitter.emit(result, context=event_context, model=data.model,
                         response_id=response_id)
        except Exception as exc:  # telemetry never breaks the app
            logger.debug("otel-ml: emitting an evaluation failed: %r", exc)
    return results
