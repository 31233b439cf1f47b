"""Deterministic text embeddings and cosine search: hashed TF-IDF with numpy.

The demo's vector database is Chroma (:mod:`demo_rag.chroma_store`), which stores
these vectors; :meth:`VectorIndex.search` is the in-memory scan it replaced, kept
as the reference the tests and bench/bench_retrieval.py compare Chroma against.

Why not a neural embedding model: the demo must run offline on a fresh machine with
nothing to download, and must give the same scores on every run so tests can rely on
them. Hashed TF-IDF over unigrams and bigrams retrieves help-centre articles well,
needs no vocabulary file, and produces a real score distribution for the retrieval
metrics to show.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from demo_rag.corpus import Document

DIMENSIONS: Final = 4096
# A help-centre title names what the article is about ("... pricing and cost"), the
# body mostly repeats the product name: counting title terms twice makes "how much
# does X cost" find the pricing article rather than any article about X.
TITLE_WEIGHT: Final = 2
MODEL_NAME: Final = f"hashed-tfidf-{DIMENSIONS}"

_TOKEN = re.compile(r"[a-z0-9]+(?:[.\-_][a-z0-9]+)*")
_STOPWORD_TEXT: Final = (
    "a an and are as at be by can do does for from how i in is it its of on or the this to "
    "what when where which who why will with my me you your our we after before into than "
    "then there their them they these those was were has have had not no"
)
STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())

Vector = npt.NDArray[np.float32]


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords; keeps '99.9', 'nb-123', 'eu-west-1' whole."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


def _features(text: str) -> Counter[str]:
    tokens = tokenize(text)
    return Counter(tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)])


def _bucket(feature: str) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and the three services
    # and the tests must agree on every bucket.
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % DIMENSIONS


def _term_frequencies(text: str, title: str = "") -> Vector:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    counts = _features(text)
    for feature, count in _features(title).items():
        counts[feature] += TITLE_WEIGHT * count
    for feature, count in counts.items():
        vector[_bucket(feature)] += 1.0 + math.log(count)  # sublinear tf
    return vector


def _normalise(matrix: Vector) -> Vector:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    result: Vector = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return result


@dataclass(frozen=True)
class Hit:
    """One search result; ``id`` and ``score`` are what otel_ml.retrieval records."""

    id: str
    score: float
    title: str
    text: str


class VectorIndex:
    """An in-memory index: one L2-normalised TF-IDF row per document.

    The IDF weights are fitted on the indexed documents, as a vector database fits its
    encoder once at load time; queries are embedded with the same weights.
    """

    def __init__(self, documents: Sequence[Document]) -> None:
        if not documents:
            raise ValueError("cannot index an empty corpus")
        self._documents = list(documents)
        tf = np.stack([_term_frequencies(d.text, title=d.title) for d in self._documents])
        document_frequency = np.count_nonzero(tf, axis=0).astype(np.float32)
        n = float(len(self._documents))
        self._idf: Vector = (np.log((1.0 + n) / (1.0 + document_frequency)) + 1.0).astype(
            np.float32
        )
        self._matrix = _normalise(tf * self._idf)

    def __len__(self) -> int:
        return len(self._documents)

    @property
    def vectors(self) -> Vector:
        """The documents' embeddings, one row per document in corpus order."""
        return self._matrix

    def embed(self, text: str) -> Vector:
        """The query embedding: TF-IDF with the corpus IDF, L2-normalised."""
        return _normalise(_term_frequencies(text) * self._idf)

    def search(self, query: str, top_k: int) -> list[Hit]:
        """The ``top_k`` most cosine-similar documents, best first; zero-score rows dropped."""
        return self.search_vector(self.embed(query), top_k)

    def search_vector(self, vector: Vector, top_k: int) -> list[Hit]:
        """Like :meth:`search`, for a query already embedded with :meth:`embed`."""
        if top_k <= 0:
            return []
        scores = self._matrix @ vector
        k = min(top_k, len(self._documents))
        candidates = np.argpartition(-scores, k - 1)[:k]
        # Ties break on corpus order so results are stable across numpy versions.
        ranked = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), i))
        return [self._hit(i, float(scores[i])) for i in ranked if scores[i] > 0.0]

    def _hit(self, index: int, score: float) -> Hit:
        doc = self._documents[index]
        return Hit(id=doc.id, score=round(score, 6), title=doc.title, text=doc.text)
