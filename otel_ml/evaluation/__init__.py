"""Evaluations of generations: groundedness, answer relevance, context relevance.

Evaluate inline::

    from otel_ml.evaluation import EvaluationInput, Groundedness
    results = tel.evaluate(span, EvaluationInput(answer, contexts, question, model=m))

or off the request path::

    runner = tel.evaluations([Groundedness()], sample_rate=0.2, concurrency=2)
    runner.submit(response_id, EvaluationInput(answer, contexts, question, model=m))

Each result is a ``gen_ai.evaluation.result`` event (OTel logs) parented to the
evaluated span, or carrying ``gen_ai.response.id``, and a point on the
``llm.evaluation.score`` histogram. Built-ins work offline (no model) or with
``judge=`` an OpenAI-compatible client. Your own evaluator is any object with
``name`` and ``evaluate(EvaluationInput) -> EvaluationResult``. See
docs/evaluations.md.
"""

from __future__ import annotations

from otel_ml.evaluation._builtin import AnswerRelevance, ContextRelevance, Groundedness
from otel_ml.evaluation._emit import EvaluationRecorder
from otel_ml.evaluation._judge import (
    DEFAULT_JUDGE_TENANT,
    ERROR_INVALID_REPLY,
    ERROR_OUT_OF_RANGE,
    ERROR_REFUSAL,
    JudgeError,
    judge_messages,
    parse_reply,
)
from otel_ml.evaluation._runner import Evaluations
from otel_ml.evaluation._types import (
    ABSTAINED,
    IRRELEVANT,
    RELEVANT,
    SUPPORTED,
    UNSUPPORTED,
    EvaluationInput,
    EvaluationResult,
    Evaluator,
)

__all__ = [
    "ABSTAINED",
    "DEFAULT_JUDGE_TENANT",
    "ERROR_INVALID_REPLY",
    "ERROR_OUT_OF_RANGE",
    "ERROR_REFUSAL",
    "IRRELEVANT",
    "RELEVANT",
    "SUPPORTED",
    "UNSUPPORTED",
    "AnswerRelevance",
    "ContextRelevance",
    "EvaluationInput",
    "EvaluationRecorder",
    "EvaluationResult",
    "Evaluations",
    "Evaluator",
    "Groundedness",
    "JudgeError",
    "judge_messages",
    "parse_reply",
]
