#!/usr/bin/env python3
"""The labelled set behind docs/evaluations.md, and the offline evaluators' quality on it.

    python scripts/evaluation_quality.py generate   # (re)write tests/data/evaluation_labelled.jsonl
    python scripts/evaluation_quality.py tune       # min_overlap grid on the TUNING half only
    python scripts/evaluation_quality.py report     # held-out precision/recall with 95% CIs

The set is built from the demo corpus (demo_rag/data/corpus.jsonl): for each of 240
documents, a question about it, a retrieved context (the document and two others: one of
the same product, one on the same topic for another product, the place where a changed
name is found) and an answer. About half of the answers hold an unsupported claim, made
the way hallucinations look in RAG: a changed number (to a new value, or to another number
of the same document), a changed name (product, region, plan, error code), a fabricated
sentence, a changed word, or a negation. The others are supported: quotes, partial
quotes, two sentences joined, a sentence of another retrieved document, an abstention.
Relevance labels come with it: some answers come from another document than the question
asks about (answer irrelevant), and some contexts do not hold the asked-about document
(context irrelevant).

Everything is drawn from ``random.Random(SEED)``, so ``generate`` writes the same file on
every machine (a test checks it). The split into a tuning and a held-out half is drawn once,
with its own seed, and stored in the file: tune only on ``split == "tuning"``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_rag import corpus  # noqa: E402
from otel_ml.evaluation import (  # noqa: E402
    AnswerRelevance,
    ContextRelevance,
    EvaluationInput,
    Groundedness,
)

DATA: Final = REPO / "tests" / "data" / "evaluation_labelled.jsonl"
SEED: Final = 20261202
SPLIT_SEED: Final = 16
SIZE: Final = 240
Z95: Final = 1.959963984540054  # two-sided 95% normal quantile
_NUMBER: Final = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\w)")
_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
NO_ANSWER: Final = "I could not find this in the documentation I was given."
_PER_AREA: Final = 12
_FABRICATIONS: Final = (
    "{area} also includes a dedicated support engineer for every project.",
    "The {area} quota resets automatically at the start of every month.",
    "{area} is free for the first 12 months for new accounts.",
    "Enterprise customers get a 40% discount on {area}.",
    "{area} fails over automatically to a second continent within 90 seconds.",
    "Unused {area} resources are deleted after 14 days of inactivity.",
    "Support tickets about {area} are answered within 2 hours on every plan.",
    "{area} keeps an extra offline copy of all data in cold storage.",
)
# Swapped words that change the meaning without a number or name (the hard case).
_WORD_SWAPS: Final = (
    ("at rest", "in transit"), ("standard", "premium"), ("per second", "per minute"),
    ("minutes", "hours"), ("days", "weeks"), ("removed", "extended"),
    ("encrypts", "compresses"), ("automatic", "manual"), ("exponentially", "linearly"),
)
# Rewordings a model makes while keeping the meaning (supported paraphrases).
_SYNONYMS: Final = (
    ("usually", "typically"), ("about", "roughly"), ("generally", "widely"),
    ("approved", "granted"), ("requires", "needs"), ("keeps", "retains"),
    ("To get started with", "To start using"), ("By default", "Out of the box"),
    ("must be claimed", "have to be claimed"), ("is available in", "runs in"),
)
_NEGATIONS: Final = (
    (" is ", " is not "), (" requires ", " does not require "), (" takes ", " never takes "),
    (" allows ", " does not allow "), (" guarantees ", " does not guarantee "),
)


@dataclass(frozen=True)
class Example:
    id: str
    split: str
    kind: str
    question: str
    contexts: tuple[str, ...]
    answer: str
    unsupported: bool
    answer_relevant: bool
    context_relevant: bool


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _cite(answer: str, doc_id: str) -> str:
    return f"{answer} [{doc_id}]"


def _change_number(sentence: str, doc_text: str, rng: random.Random,
                   within_document: bool) -> str | None:
    numbers = list(_NUMBER.finditer(sentence))
    if not numbers:
        return None
    target = rng.choice(numbers)
    value = target.group()
    if within_document:
        others = sorted({m.group() for m in _NUMBER.finditer(doc_text)} - {value}
                        - {m.group() for m in numbers})
        if not others:
            return None
        new = rng.choice(others)
    else:
        present = {m.group() for m in _NUMBER.finditer(doc_text)}
        if "." in value:
            candidates = [f"{float(value) + d:.{len(value.split('.')[1])}f}"
                          for d in (0.01, 0.04, 0.1, 0.5, -0.01)]
        else:
            n = int(value)
            candidates = [str(c) for c in (n + 1, n + 2, n + 5, n * 2, max(n - 1, 0), n + 10)]
        candidates = [c for c in candidates if c not in present and c != value]
        new = rng.choice(candidates)
    return sentence[: target.start()] + new + sentence[target.end():]


def _change_name(sentence: str, doc: corpus.Document, other: corpus.Document,
                 rng: random.Random) -> str | None:
    if doc.area in sentence:
        return sentence.replace(doc.area, other.area)
    for pattern, pool in (
        (r"\b[a-z]{2}-[a-z]+-\d\b", ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2",
                                     "ap-south-1", "ap-northeast-1", "sa-east-1")),
        (r"\b(?:Business|Enterprise|Premium Support)\b", ("Business", "Enterprise",
                                                          "Premium Support")),
        (r"\bNB-\d+\b", ("NB-101", "NB-404", "NB-512", "NB-777")),
    ):
        found = re.search(pattern, sentence)
        if found:
            choices = [p for p in pool if p != found.group() and p not in doc.text]
            if choices:
                return sentence[: found.start()] + rng.choice(choices) + sentence[found.end():]
    return None


def _swap(sentence: str, pairs: Sequence[tuple[str, str]], rng: random.Random) -> str | None:
    usable = [(a, b) for a, b in pairs if a in sentence]
    if not usable:
        return None
    a, b = rng.choice(usable)
    return sentence.replace(a, b, 1)


def _partial(sentence: str) -> str:
    """A shorter quote: the sentence up to its first ';' or ', and', else whole."""
    for separator in ("; ", ", and "):
        if separator in sentence:
            return sentence.split(separator, 1)[0].rstrip(".") + "."
    return sentence


def _contexts(docs: Sequence[corpus.Document], index: int, rng: random.Random,
              relevant: bool) -> tuple[list[corpus.Document], corpus.Document]:
    """The retrieved documents (shuffled) and the same-topic document of another product."""
    area = index // _PER_AREA
    kind = index % _PER_AREA
    other_area = (area + 1 + rng.randrange(len(docs) // _PER_AREA - 1)) % (len(docs) // _PER_AREA)
    same_topic = docs[other_area * _PER_AREA + kind]
    same_area = docs[area * _PER_AREA + (kind + 1 + rng.randrange(_PER_AREA - 1)) % _PER_AREA]
    if relevant:
        chosen = [docs[index], same_area, same_topic]
    else:  # retrieval missed: three documents about something else
        far = (area + 5) % (len(docs) // _PER_AREA)
        chosen = [same_topic, docs[far * _PER_AREA + (kind + 3) % _PER_AREA], same_area]
        chosen[2] = docs[far * _PER_AREA + (kind + 7) % _PER_AREA]
    rng.shuffle(chosen)
    return chosen, same_topic




def generate() -> list[Example]:
    rng = random.Random(SEED)
    docs = corpus.load()
    questions = {q.doc_id: q.text for q in corpus.questions()}
    picked = sorted(rng.sample(range(len(docs)), SIZE))
    examples: list[Example] = []
    for number, index in enumerate(picked):
        doc = docs[index]
        # 1 in 8 contexts misses the asked-about document; 1 in 8 answers are about
        # another (retrieved) document.
        context_relevant = rng.random() >= 0.125
        contexts, same_topic = _contexts(docs, index, rng, context_relevant)
        answer_relevant = context_relevant and rng.random() >= 0.125
        source = doc if answer_relevant else contexts[0]
        sentences = _sentences(source.text)
        unsupported = rng.random() < 0.5
        answer, kind = _answer(source, same_topic, sentences, unsupported, context_relevant,
                               contexts, rng)
        if answer is None:  # the drawn change did not apply: a supported quote instead
            answer, kind, unsupported = _cite(sentences[0], source.id), "quote", False
        examples.append(Example(
            id=f"ex-{number:03d}", split="", kind=kind, question=questions[doc.id],
            contexts=tuple(d.text for d in contexts), answer=answer,
            unsupported=unsupported, answer_relevant=answer_relevant,
            context_relevant=context_relevant,
        ))
    order = list(range(len(examples)))
    random.Random(SPLIT_SEED).shuffle(order)
    tuning = set(order[: len(order) // 2])
    return [Example(**{**asdict(e), "split": "tuning" if i in tuning else "held_out",
                       "contexts": e.contexts})
            for i, e in enumerate(examples)]


def _answer(source: corpus.Document, same_topic: corpus.Document, sentences: list[str],
            unsupported: bool, context_relevant: bool, contexts: Sequence[corpus.Document],
            rng: random.Random) -> tuple[str | None, str]:
    first = rng.choice(sentences)
    if not context_relevant and not unsupported and rng.random() < 0.5:
        return NO_ANSWER, "abstention"
    if not unsupported:
        kind = rng.choice(("quote", "partial", "paraphrase", "two_sentences",
                           "other_document"))
        if kind == "paraphrase":
            reworded = _swap(first, _SYNONYMS, rng)
            if reworded is not None:
                return _cite(reworded, source.id), kind
            return _cite(_partial(first), source.id), "partial"
        if kind == "partial":
            return _cite(_partial(first), source.id), kind
        if kind == "two_sentences" and len(sentences) > 1:
            return _cite(" ".join(sentences[:2]), source.id), kind
        if kind == "other_document":
            other = rng.choice([d for d in contexts if d.id != source.id] or [source])
            return f"{_cite(first, source.id)} {_cite(_sentences(other.text)[0], other.id)}", kind
        return _cite(first, source.id), "quote"
    kind = rng.choice(("number", "number_in_document", "name", "name", "fabricated",
                       "fabricated", "word", "negation"))
    changed: str | None
    if kind == "number":
        changed = _change_number(first, " ".join(d.text for d in contexts), rng,
                                 within_document=False)
    elif kind == "number_in_document":
        changed = _change_number(first, source.text, rng, within_document=True)
    elif kind == "name":
        changed = _change_name(first, source, same_topic, rng)
    elif kind == "word":
        changed = _swap(first, _WORD_SWAPS, rng)
    elif kind == "negation":
        changed = _swap(first, _NEGATIONS, rng)
    else:
        fabricated = rng.choice(_FABRICATIONS).format(area=source.area)
        return _cite(f"{first} {fabricated}", source.id), kind
    every = " ".join(d.text for d in contexts)
    if changed is not None and changed in every:
        changed = None  # another retrieved document says exactly this: still supported
    if changed is None:  # this sentence has no number/name/word to change: another kind
        changed = _change_number(first, every, rng, within_document=False)
        kind = "number"
    if changed is None:
        fabricated = rng.choice(_FABRICATIONS).format(area=source.area)
        return _cite(f"{first} {fabricated}", source.id), "fabricated"
    return _cite(changed, source.id), kind


def load(path: Path = DATA) -> list[Example]:
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        raw["contexts"] = tuple(raw["contexts"])
        examples.append(Example(**raw))
    return examples


def dumps(examples: Iterable[Example]) -> str:
    return "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in examples)


# --- quality ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    """Precision and recall of one evaluator at flagging the failure class."""

    evaluator: str
    flagged: str  # the label counted as positive
    n: int
    positives: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.positives if self.positives else 0.0

    def precision_ci(self) -> tuple[float, float]:
        return wilson(self.true_positives, self.true_positives + self.false_positives)

    def recall_ci(self) -> tuple[float, float]:
        return wilson(self.true_positives, self.positives)


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good at small n and near 0 or 1)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _input(e: Example) -> EvaluationInput:
    return EvaluationInput(answer=e.answer, contexts=e.contexts, question=e.question)


def predictions(examples: Sequence[Example], min_overlap: float | None = None
                ) -> dict[str, list[tuple[Example, bool, bool]]]:
    """Per evaluator: (example, truly failing, flagged) for every example."""
    grounded = Groundedness() if min_overlap is None else Groundedness(min_overlap=min_overlap)
    answer, context = AnswerRelevance(), ContextRelevance()
    return {
        "groundedness": [(e, e.unsupported, grounded.evaluate(_input(e)).label == "unsupported")
                         for e in examples],
        "answer_relevance": [(e, not e.answer_relevant,
                              answer.evaluate(_input(e)).label == "irrelevant")
                             for e in examples],
        "context_relevance": [(e, not e.context_relevant,
                               context.evaluate(_input(e)).label == "irrelevant")
                              for e in examples],
    }


FLAGGED: Final = {"groundedness": "unsupported", "answer_relevance": "irrelevant",
                  "context_relevance": "irrelevant"}


def quality(examples: Sequence[Example], min_overlap: float | None = None) -> list[Quality]:
    rows = []
    for name, outcomes in predictions(examples, min_overlap).items():
        rows.append(Quality(
            evaluator=name, flagged=FLAGGED[name], n=len(outcomes),
            positives=sum(truth for _, truth, _ in outcomes),
            true_positives=sum(truth and flag for _, truth, flag in outcomes),
            false_positives=sum(flag and not truth for _, truth, flag in outcomes),
            false_negatives=sum(truth and not flag for _, truth, flag in outcomes),
        ))
    return rows


def held_out(examples: Sequence[Example]) -> list[Example]:
    return [e for e in examples if e.split == "held_out"]


def tuning(examples: Sequence[Example]) -> list[Example]:
    return [e for e in examples if e.split == "tuning"]


def table(rows: Sequence[Quality]) -> str:
    """The markdown table docs/evaluations.md carries (a test compares the two)."""
    lines = ["| evaluator | flags | n | failing | precision (95% CI) | recall (95% CI) |",
             "|---|---|---|---|---|---|"]
    for q in rows:
        p_low, p_high = q.precision_ci()
        r_low, r_high = q.recall_ci()
        lines.append(
            f"| {q.evaluator} | {q.flagged} | {q.n} | {q.positives} | "
            f"{q.precision:.3f} ({p_low:.3f}-{p_high:.3f}) | "
            f"{q.recall:.3f} ({r_low:.3f}-{r_high:.3f}) |")
    return "\n".join(lines)


def failures(examples: Sequence[Example]) -> list[tuple[str, Example, bool]]:
    """Held-out groundedness mistakes: (missed or false alarm, example, flagged)."""
    found = []
    for e, truth, flag in predictions(examples)["groundedness"]:
        if truth != flag:
            found.append(("missed" if truth else "false alarm", e, flag))
    return found


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall or 1)


def _tune(examples: Sequence[Example]) -> None:
    """Grids on the tuning half; the defaults are the smallest value with the best F1."""
    for step in range(6, 19):
        overlap = step / 20
        g = quality(examples, overlap)[0]
        print(f"groundedness min_overlap {overlap:.2f}: precision {g.precision:.3f} "
              f"recall {g.recall:.3f} F1 {_f1(g.precision, g.recall):.3f}")
    for make, field in ((AnswerRelevance, "answer_relevant"),
                        (ContextRelevance, "context_relevant")):
        for step in range(2, 9):
            threshold = step / 10
            evaluator = make(threshold=threshold)
            outcomes = [(not getattr(e, field),
                         evaluator.evaluate(_input(e)).label == "irrelevant") for e in examples]
            tp = sum(t and f for t, f in outcomes)
            flagged = sum(f for _, f in outcomes)
            failing = sum(t for t, _ in outcomes)
            p, r = (tp / flagged if flagged else 0.0), (tp / failing if failing else 0.0)
            print(f"{evaluator.name} threshold {threshold:.1f}: precision {p:.3f} "
                  f"recall {r:.3f} F1 {_f1(p, r):.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("generate", "tune", "report", "check"))
    args = parser.parse_args(argv)
    if args.command in ("generate", "check"):
        text = dumps(generate())
        if args.command == "check":
            same = DATA.is_file() and DATA.read_text(encoding="utf-8") == text
            print("up to date" if same else f"{DATA} is stale: run generate")
            return 0 if same else 1
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(text, encoding="utf-8")
        examples = load()
        print(f"wrote {len(examples)} examples to {DATA.relative_to(REPO)}: "
              f"{sum(e.unsupported for e in examples)} unsupported")
        return 0
    examples = load()
    if args.command == "tune":
        _tune(tuning(examples))
        return 0
    print(table(quality(held_out(examples))))
    kinds: dict[str, list[int]] = {}
    for e, truth, flag in predictions(held_out(examples))["groundedness"]:
        kinds.setdefault(e.kind, [0, 0])
        kinds[e.kind][0] += 1
        kinds[e.kind][1] += truth == flag
    print("\ngroundedness per kind (held-out): " + ", ".join(
        f"{k} {ok}/{n}" for k, (n, ok) in sorted(kinds.items())))
    for verdict, e, _ in failures(held_out(examples)):
        print(f"\n{verdict} [{e.id} {e.kind}]: {e.answer}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
