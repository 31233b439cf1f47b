"""Text analysis for the offline evaluators: claims, content tokens, anchors.

Model-free and deterministic. A *claim* is a sentence of the answer. Its
*content tokens* are its lower-cased words without stopwords; its *anchors* are
the tokens a near-miss hallucination changes: numbers (with their unit or
sign: 17, 99.95%, $0.82, 48) and names (capitalised words, codes such as
NB-693, `backticked` commands). A light stemmer folds plurals and common
suffixes so "buckets"/"bucket" and "approved"/"approve" meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

_WORD: Final = re.compile(r"\$?[A-Za-z0-9]+(?:[.\-_/:][A-Za-z0-9]+)*%?")
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_END: Final = re.compile(r"(?<=[.!?;])\s+|\n+")
# "[kb-0042]": a citation of a context, not a claim to check against it.
_CITATION: Final = re.compile(r"\[[\w.:/-]+\]")
_STOPWORD_TEXT: Final = (
    "a an and are as at be been but by can could do does did for from how i if in is it "
    "its of on or so such that the this to what when where which who whom why will would "
    "with my me you your our we us after before into than then there their them they "
    "these those was were has have had not no yes also just only any all each every some "
    "more most very about up out over under per via may might must shall should here he "
    "she his her him please note many much"
)
_STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES: Final = ("ing", "ed", "ly", "s")


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match inflections in help-centre text
    ("create", "creates", "created" all give "creat")."""
    if any(ch.isdigit() for ch in word) or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) >= 4 else word


def _is_anchor(raw: str, first: bool) -> bool:
    if any(ch.isdigit() for ch in raw) or raw.startswith("$"):
        return True
    if "-" in raw or "_" in raw:  # identifiers: nb-693, eu-west-1, my_bucket
        return True
    # A capitalised word is a name, except the sentence's first word, which is
    # capitalised anyway (it still counts when it is all capitals: ACTIVE, SLA).
    if raw[:1].isupper() and (not first or (raw.isupper() and len(raw) > 1)):
        return raw.lower() not in _STOPWORDS
    return False


@dataclass(frozen=True)
class Tokens:
    """A text's content tokens in order, and which of them are anchors."""

    words: tuple[str, ...]
    anchors: frozenset[str]

    @property
    def bigrams(self) -> frozenset[tuple[str, str]]:
        return frozenset(zip(self.words, self.words[1:], strict=False))


@lru_cache(maxsize=4096)
def analyse(text: str) -> Tokens:
    """Content tokens of ``text`` (citations dropped), stemmed, in order."""
    words: list[str] = []
    anchors: set[str] = set()
    first = True
    for match in _WORD.finditer(_CITATION.sub(" ", text)):
        raw = match.group()
        word = raw.lower().strip(".")
        if word in _STOPWORDS:
            first = False
            continue
        token = stem(word)
        words.append(token)
        if _is_anchor(raw, first):
            anchors.add(token)
        first = False
    return Tokens(tuple(words), frozenset(anchors))


def claims(answer: str) -> list[str]:
    """The answer's sentences (and semicolon-separated clauses) that assert
    something (have content tokens)."""
    sentences = (s.strip() for s in _CLAUSE_END.split(_CITATION.sub(" ", answer)))
    return [s for s in sentences if s and analyse(s).words]


def sentences(texts: Iterable[str]) -> list[str]:
    """All sentences of the contexts."""
    found: list[str] = []
    for text in texts:
        found.extend(s.strip() for s in _SENTENCE_END.split(text) if s.strip())
    return found


def overlap(wanted: Sequence[str], present: frozenset[str] | set[str]) -> float:
    """Share of the distinct ``wanted`` tokens found in ``present`` (1.0 if none)."""
    distinct = set(wanted)
    if not distinct:
        return 1.0
    return len(distinct & present) / len(distinct)
