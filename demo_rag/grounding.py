"""Groundedness (hallucination) scoring: how much of an answer its context supports.

Two scorers share one interface:

- :class:`OverlapScorer`, the default, needs no model: the share of the answer's
  content words (and numbers, which is where RAG answers usually go wrong) that appear
  in the retrieved context. It is cheap enough to run on every answer, and it catches
  the failure that matters most in RAG, an answer that states things the documents
  do not.
- :class:`LlmJudgeScorer` asks a chat model to grade the answer (LLM-as-judge). It
  calls the llm service like any other generation, so the judge's tokens and cost are
  traced and billed to the tenant too.

Both return a score in [0, 1], 1 meaning fully grounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Protocol

from demo_rag.embeddings import tokenize

JUDGE_INSTRUCTION: Final = (
    "You are a groundedness judge. Grade how well the ANSWER is supported by the CONTEXT. "
    "Reply with only a number between 0 and 1."
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# "[kb-0042]": a citation of the context, not a claim to check against it.
_CITATION = re.compile(r"\[[\w.-]+\]")


class Scorer(Protocol):
    """Scores one answer against the documents it was generated from."""

    name: str

    async def score(self, question: str, answer: str, contexts: Sequence[str]) -> float: ...


def overlap_score(answer: str, contexts: Sequence[str]) -> float:
    """Share of the answer's distinct content tokens found in the contexts.

    An empty answer scores 1.0: it asserts nothing unsupported (whether it is useful
    is a different question, left to user feedback).
    """
    answer_tokens = set(tokenize(_CITATION.sub(" ", answer)))
    if not answer_tokens:
        return 1.0
    context_tokens: set[str] = set()
    for context in contexts:
        context_tokens.update(tokenize(context))
    return len(answer_tokens & context_tokens) / len(answer_tokens)


class OverlapScorer:
    """The model-free default scorer."""

    name = "overlap"

    async def score(self, question: str, answer: str, contexts: Sequence[str]) -> float:
        return overlap_score(answer, contexts)


def judge_messages(question: str, answer: str, contexts: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages an LLM judge receives."""
    context = "\n\n".join(contexts)
    return [
        {"role": "system", "content": JUDGE_INSTRUCTION},
        {"role": "user",
         "content": f"QUESTION:\n{question}\n\nCONTEXT:\n{context}\n\nANSWER:\n{answer}"},
    ]


def parse_judge_reply(reply: str) -> float:
    """The first number in the judge's reply, clamped to [0, 1].

    Raises ValueError when the reply holds no number: a judge that does not follow
    the format has not produced a score, and 0 would read as "hallucinated".
    """
    match = _NUMBER.search(reply)
    if match is None:
        raise ValueError(f"judge reply has no score: {reply[:80]!r}")
    return min(1.0, max(0.0, float(match.group())))


class JudgeClient(Protocol):
    """Sends chat messages to a model and returns the reply text."""

    async def complete(self, messages: list[dict[str, str]]) -> str: ...


class LlmJudgeScorer:
    """LLM-as-judge: delegates the grading to a chat model through ``client``."""

    name = "llm_judge"

    def __init__(self, client: JudgeClient) -> None:
        self._client = client

    async def score(self, question: str, answer: str, contexts: Sequence[str]) -> float:
        reply = await self._client.complete(judge_messages(question, answer, contexts))
        return parse_judge_reply(reply)
