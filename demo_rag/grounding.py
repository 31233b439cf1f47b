"""Groundedness in the demo: otel-ml's evaluators (:mod:`otel_ml.evaluation`).

The api scores every answer with ``otel_ml.evaluation.Groundedness`` (offline, or
as an LLM judge over the llm service with ``DEMO_RAG_GROUNDEDNESS=llm_judge``).
What is left here is what the simulated model needs to play the judge: how to
recognise a judge request, and the offline score it grades with, so that a
judged run stays reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from otel_ml.evaluation import EvaluationInput, Groundedness

# The judge's system prompt starts with this (otel_ml.evaluation's groundedness rubric).
JUDGE_INSTRUCTION: Final = Groundedness.rubric.instruction

_OFFLINE: Final = Groundedness()


def overlap_score(answer: str, contexts: Sequence[str]) -> float:
    """The offline groundedness score of ``answer``: the share of its claims the
    contexts support (see otel_ml.evaluation). Kept under its old name for the
    simulated judge."""
    score = _OFFLINE.evaluate(EvaluationInput(answer, tuple(contexts))).score
    return 1.0 if score is None else score
