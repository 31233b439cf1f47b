"""The data an evaluation takes and gives, and the protocol evaluators follow.

Plain objects in the style of opentelemetry-util-genai's types: no OTel import,
so a user's evaluator needs nothing but these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

# gen_ai.evaluation.score.label values of the built-in evaluators. The
# conventions leave labels to the evaluator; these are bounded (the metric
# carries the label) and stable (the hallucination-rate rule matches on them).
SUPPORTED: Final = "supported"
UNSUPPORTED: Final = "unsupported"
ABSTAINED: Final = "abstained"  # groundedness: the answer says the context lacks it
RELEVANT: Final = "relevant"
IRRELEVANT: Final = "irrelevant"


@dataclass(frozen=True)
class EvaluationInput:
    """One generation to evaluate: its answer, the retrieved contexts it was
    given, and the question. ``model`` is the evaluated generation's model (a
    metric attribute); ``response_id`` its ``gen_ai.response.id``."""

    answer: str
    contexts: Sequence[str] = ()
    question: str = ""
    model: str | None = None
    response_id: str | None = None


@dataclass(frozen=True)
class EvaluationResult:
    """One evaluator's verdict, as the ``gen_ai.evaluation.result`` event
    carries it. ``score`` in [0, 1] (1 = best), ``label`` a short category,
    ``explanation`` why; ``error_type`` set (and score/label None) when the
    evaluation itself failed."""

    name: str
    score: float | None = None
    label: str | None = None
    explanation: str | None = None
    error_type: str | None = None
    # Details for callers (not exported): e.g. the claims a groundedness check
    # found unsupported. May hold answer text: never put on telemetry.
    details: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@runtime_checkable
class Evaluator(Protocol):
    """Anything with a ``name`` and ``evaluate``: plug in your own.

    ``evaluate`` may raise; the caller turns the exception into a result with
    ``error_type`` set (the class name), so one broken evaluator costs its own
    result only.
    """

    name: str

    def evaluate(self, data: EvaluationInput) -> EvaluationResult: ...
