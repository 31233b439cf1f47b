"""The built-in evaluators: groundedness, answer relevance, context relevance.

Each works offline by default (no model: otel_ml.evaluation._offline) and as
an LLM judge when given ``judge=`` (an OpenAI-compatible client) and
``judge_model=``. Offline explanations are built from counts and reasons only,
never from the text, so they are safe to export without content capture.
"""

from __future__ import annotations

from typing import Any, Final

from otel_ml.evaluation._judge import DEFAULT_JUDGE_TENANT, Judge, Rubric
from otel_ml.evaluation._offline import (
    DEFAULT_MIN_OVERLAP,
    abstains,
    groundedness_score,
    question_overlap,
)
from otel_ml.evaluation._types import (
    ABSTAINED,
    IRRELEVANT,
    RELEVANT,
    SUPPORTED,
    UNSUPPORTED,
    EvaluationInput,
    EvaluationResult,
)

# details key: the explanation holds no answer/context text (built-ins' offline mode).
CONTENT_FREE: Final = "content_free_explanation"

GROUNDEDNESS_INSTRUCTION: Final = (
    "You are a groundedness judge. Grade how well every claim of the ANSWER is supported "
    "by the CONTEXT: 1 means every claim is stated in the context, 0 means none is. A claim "
    "with a number, name or code that differs from the context is unsupported."
)
ANSWER_RELEVANCE_INSTRUCTION: Final = (
    "You are an answer-relevance judge. Grade how directly the ANSWER addresses the "
    "QUESTION (1 = fully, 0 = not at all), whether or not it is correct."
)
CONTEXT_RELEVANCE_INSTRUCTION: Final = (
    "You are a context-relevance judge. Grade how useful the CONTEXT is for answering the "
    "QUESTION (1 = contains the answer, 0 = unrelated). Ignore the ANSWER."
)


class _Builtin:
    name: str
    rubric: Rubric

    def __init__(self, judge: Any = None, judge_model: str | None = None,
                 judge_tenant: str | None = DEFAULT_JUDGE_TENANT,
                 judge_timeout: float | None = 30.0) -> None:
        if judge is not None and not judge_model:
            raise ValueError("judge= needs judge_model= (the model the judge client calls)")
        self._judge = (
            Judge(judge, str(judge_model), tenant=judge_tenant, timeout=judge_timeout)
            if judge is not None else None
        )

    @property
    def mode(self) -> str:
        return "judge" if self._judge is not None else "offline"

    def evaluate(self, data: EvaluationInput) -> EvaluationResult:
        if self._judge is not None:
            return self._judge.evaluate(self.name, data, self.rubric)
        return self._offline(data)

    def _offline(self, data: EvaluationInput) -> EvaluationResult:
        raise NotImplementedError


class Groundedness(_Builtin):
    """Is every claim of the answer supported by the retrieved contexts?

    Score: share of supported claims; label ``supported`` when all are,
    ``unsupported`` otherwise (a hallucination). An answer that only says the
    context does not hold the answer (offline mode) is ``abstained`` with score
    0: nothing it says is wrong, and nothing it says is grounded either, so
    groundedness still falls when retrieval stops finding answers, while the
    hallucination rate (the ``unsupported`` share) does not count it.
    """

    name = "groundedness"
    rubric = Rubric(GROUNDEDNESS_INSTRUCTION, (SUPPORTED, UNSUPPORTED), 1.0)

    def __init__(self, judge: Any = None, judge_model: str | None = None, *,
                 min_overlap: float = DEFAULT_MIN_OVERLAP,
                 judge_tenant: str | None = DEFAULT_JUDGE_TENANT,
                 judge_timeout: float | None = 30.0) -> None:
        super().__init__(judge, judge_model, judge_tenant, judge_timeout)
        self.min_overlap = min_overlap

    def _offline(self, data: EvaluationInput) -> EvaluationResult:
        score, checks = groundedness_score(data.answer, data.contexts, self.min_overlap)
        if not checks and abstains(data.answer):
            return EvaluationResult(
                name=self.name, score=0.0, label=ABSTAINED,
                explanation="the answer abstains: no claim to check",
                details={CONTENT_FREE: True, "unsupported_claims": []},
            )
        failed = [c for c in checks if not c.supported]
        reasons = sorted({c.reason for c in failed if c.reason})
        explanation = (f"{len(checks) - len(failed)} of {len(checks)} claims supported"
                       if checks else "no claim to check")
        if reasons:
            explanation += "; unsupported: " + ", ".join(reasons)
        return EvaluationResult(
            name=self.name, score=score, label=UNSUPPORTED if failed else SUPPORTED,
            explanation=explanation,
            details={CONTENT_FREE: True, "unsupported_claims": [c.claim for c in failed]},
        )


class AnswerRelevance(_Builtin):
    """Does the answer address the question? Offline: the share of the
    question's content words the answer takes up."""

    name = "answer_relevance"

    def __init__(self, judge: Any = None, judge_model: str | None = None, *,
                 threshold: float = 0.5, judge_tenant: str | None = DEFAULT_JUDGE_TENANT,
                 judge_timeout: float | None = 30.0) -> None:
        super().__init__(judge, judge_model, judge_tenant, judge_timeout)
        self.threshold = threshold
        self.rubric = Rubric(ANSWER_RELEVANCE_INSTRUCTION, (RELEVANT, IRRELEVANT), threshold)

    def _offline(self, data: EvaluationInput) -> EvaluationResult:
        score = question_overlap(data.question, data.answer)
        return EvaluationResult(
            name=self.name, score=score,
            label=RELEVANT if score >= self.threshold else IRRELEVANT,
            explanation=f"{score:.0%} of the question's terms addressed",
            details={CONTENT_FREE: True},
        )


class ContextRelevance(_Builtin):
    """Did retrieval find context for the question? Offline: the best share of
    the question's content words found in one context."""

    name = "context_relevance"

    # 0.6: tuned on the tuning half of the labelled set (docs/evaluations.md).
    def __init__(self, judge: Any = None, judge_model: str | None = None, *,
                 threshold: float = 0.6, judge_tenant: str | None = DEFAULT_JUDGE_TENANT,
                 judge_timeout: float | None = 30.0) -> None:
        super().__init__(judge, judge_model, judge_tenant, judge_timeout)
        self.threshold = threshold
        self.rubric = Rubric(CONTEXT_RELEVANCE_INSTRUCTION, (RELEVANT, IRRELEVANT), threshold)

    def _offline(self, data: EvaluationInput) -> EvaluationResult:
        scores = [question_overlap(data.question, c) for c in data.contexts]
        score = max(scores, default=0.0)
        hits = sum(s >= self.threshold for s in scores)
        return EvaluationResult(
            name=self.name, score=score,
            label=RELEVANT if score >= self.threshold else IRRELEVANT,
            explanation=f"{hits} of {len(scores)} contexts relevant",
            details={CONTENT_FREE: True},
        )
