"""The model-free checks behind the built-in evaluators' offline mode.

Groundedness: every claim (sentence) of the answer must be supported by the
contexts. A claim is supported when

1. enough of its content words are in one context document's two best
   matching sentences (``min_overlap``, tuned on the tuning half of the
   labelled set, docs/evaluations.md), and
2. it does not contradict that document: a negation the best-matching
   sentence lacks (or the reverse), a number read with another unit
   ("30 weeks" where the context says "30 days"), and
3. each of its anchors (numbers, names, codes) appears in the context document
   that sentence comes from, next to one of the words it stands next to in the
   claim: "up to 187 buckets" is not supported by "17 buckets ... raised to
   187", and "Block Volumes SLA ... 99.95%" is not supported by an Object
   Storage article that says 99.95%.

Rule 3 catches the near-misses (a changed number or name) that word overlap
alone scores as 90 % grounded. A sentence saying the context does not hold the
answer is an abstention, not a claim (an answer that only abstains is labelled
``abstained``). It does not understand paraphrase with other words or most
changed words; docs/evaluations.md lists where it fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from otel_ml.evaluation._text import Tokens, analyse, claims, overlap, sentences

# "I could not find this in the documentation": saying the context lacks the
# answer is the grounded behaviour, not a claim to check against the context.
_ABSTENTION: Final = re.compile(
    r"\b(?:could not|cannot|can't|couldn't|unable to|do not|don't) (?:find|answer)\b"
    r"|\b(?:context|documentation|documents?)(?: I was given)? (?:does not|doesn't|do not|"
    r"don't) (?:contain|say|mention|cover)\b",
    re.IGNORECASE,
)

# A claim that negates what its best-matching context sentence asserts (or the
# other way round) is not supported by it, whatever the word overlap.
_NEGATION: Final = re.compile(r"\b(?:not|never|no|cannot|none)\b|n't\b", re.IGNORECASE)
# Units a number is read with: "30 days" is not "30 weeks".
_UNITS: Final = frozenset((
    "second", "minut", "hour", "day", "week", "month", "year", "ms", "gb", "tb", "mb",
    "kb", "request", "percent",
))

# Tuned on the tuning half only (scripts/eval_labelled_set.py --tune).
DEFAULT_MIN_OVERLAP = 0.6


@dataclass(frozen=True)
class _Document:
    tokens: frozenset[str]
    bigrams: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class ClaimCheck:
    """Why one claim is or is not supported."""

    claim: str
    overlap: float
    missing_anchors: tuple[str, ...]
    supported: bool
    contradicted: bool = False  # negation or unit differs from the context

    @property
    def reason(self) -> str | None:
        if self.supported:
            return None
        if self.missing_anchors:
            return "changed or unknown number/name"
        return "negation or unit differs" if self.contradicted else "low word overlap"


@dataclass(frozen=True)
class _Context:
    document: _Document
    sentences: tuple[frozenset[str], ...]
    negated: tuple[bool, ...]
    units: dict[str, frozenset[str]]  # number -> the unit words that follow it


def _contexts(contexts: Sequence[str]) -> list[_Context]:
    found: list[_Context] = []
    for context in contexts:
        words: set[str] = set()
        bigrams: set[tuple[str, str]] = set()
        parts: list[frozenset[str]] = []
        negated: list[bool] = []
        units: dict[str, set[str]] = {}
        for sentence in sentences([context]):
            tokens = analyse(sentence)
            parts.append(frozenset(tokens.words))
            negated.append(bool(_NEGATION.search(sentence)))
            words.update(tokens.words)
            bigrams.update(tokens.bigrams)
            for number, unit in _number_units(tokens):
                units.setdefault(number, set()).add(unit)
        found.append(_Context(_Document(frozenset(words), frozenset(bigrams)), tuple(parts),
                              tuple(negated), {k: frozenset(v) for k, v in units.items()}))
    return found


def _number_units(tokens: Tokens) -> list[tuple[str, str]]:
    words = tokens.words
    return [(word, words[i + 1]) for i, word in enumerate(words[:-1])
            if word[:1].isdigit() and words[i + 1] in _UNITS]


def _unit_changed(claim: Tokens, context: _Context) -> bool:
    """A number the context reads with one unit, the claim with another."""
    return any(unit not in context.units[number]
               for number, unit in _number_units(claim) if number in context.units)


def _polarity_flipped(claim: str, tokens: Tokens, context: _Context) -> bool:
    """Whether the claim and the context sentences it overlaps most disagree on negation."""
    ranked = sorted(range(len(context.sentences)),
                    key=lambda i: overlap(tokens.words, context.sentences[i]), reverse=True)
    negated = bool(_NEGATION.search(claim))
    return bool(ranked) and all(context.negated[i] != negated for i in ranked[:1])


def _coverage(claim: Tokens, context: _Context) -> float:
    """Overlap with the union of the context's two best-matching sentences: a
    claim may merge two sentences of one article, not facts from all over it."""
    ranked = sorted(context.sentences, key=lambda s: overlap(claim.words, s), reverse=True)
    return overlap(claim.words, frozenset().union(*ranked[:2]))


def _anchor_supported(anchor: str, claim: Tokens, document: _Document) -> bool:
    if anchor not in document.tokens:
        return False
    words = claim.words
    neighbours = [
        pair for i, word in enumerate(words) if word == anchor
        for pair in ((words[i - 1], word) if i > 0 else None,
                     (word, words[i + 1]) if i + 1 < len(words) else None)
        if pair is not None
    ]
    return not neighbours or any(pair in document.bigrams for pair in neighbours)


def check_claims(
    answer: str, contexts: Sequence[str], min_overlap: float = DEFAULT_MIN_OVERLAP
) -> list[ClaimCheck]:
    """One :class:`ClaimCheck` per claim of ``answer``."""
    parsed = _contexts(contexts)
    checks: list[ClaimCheck] = []
    for claim in claims(answer):
        if _ABSTENTION.search(claim):
            continue
        tokens = analyse(claim)
        best, where = 0.0, -1
        for index, context in enumerate(parsed):
            score = _coverage(tokens, context)
            if score > best:
                best, where = score, index
        missing: tuple[str, ...] = tuple(sorted(tokens.anchors))
        contradicted = False
        if where >= 0:
            context = parsed[where]
            missing = tuple(a for a in sorted(tokens.anchors)
                            if not _anchor_supported(a, tokens, context.document))
            contradicted = (_polarity_flipped(claim, tokens, context)
                            or _unit_changed(tokens, context))
        supported = best >= min_overlap and not missing and not contradicted
        checks.append(ClaimCheck(claim, best, missing, supported, contradicted))
    return checks


def groundedness_score(
    answer: str, contexts: Sequence[str], min_overlap: float = DEFAULT_MIN_OVERLAP
) -> tuple[float, list[ClaimCheck]]:
    """Share of the answer's claims supported by the contexts (1.0 for an
    answer that claims nothing), and the checks."""
    checks = check_claims(answer, contexts, min_overlap)
    if not checks:
        return 1.0, checks
    return sum(c.supported for c in checks) / len(checks), checks


def abstains(answer: str) -> bool:
    """Whether the answer only says the context does not hold the answer."""
    return any(_ABSTENTION.search(c) for c in claims(answer))


def question_overlap(question: str, text: str) -> float:
    """Share of the question's content words found in ``text``."""
    return overlap(analyse(question).words, frozenset(analyse(text).words))
