"""``Collection.query`` as a ``retrieval {collection}`` span: the span of
``otel_ml.retrieval()`` itself (a :class:`RetrievalSpan`: the same document
count, scores, metrics and content rules), plus the database attributes and
the raw distances.

One call may carry several query embeddings (Chroma's batch query). It is
one span: its documents are the hits of every query together (document
count, score statistics and the ``rag.retrieval.*`` metrics over all of
them), and, as the conventions have it for a batch, ``db.operation.name`` is
``BATCH query`` and ``db.operation.batch.size`` the number of queries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import Histogram
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml.instrumentation._chroma._distance import similarity
from otel_ml.instrumentation._chroma._metrics import record_duration
from otel_ml.spans._retrieval import RetrievalSpan
from otel_ml.spans._scope import Recorder


class QuerySpan(RetrievalSpan):
    """A retrieval span that also carries ``db.*`` and reads a ``QueryResult``."""

    def __init__(
        self,
        recorder: Recorder,
        collection_name: str,
        db_attributes: dict[str, AttributeValue],
        duration: Histogram,
        space: str,
        query: str | None = None,
        top_k: int | None = None,
    ) -> None:
        super().__init__(
            recorder, collection_name, query=query, top_k=top_k,
            start_attributes={**db_attributes, semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION: space},
        )
        self._db_attributes = db_attributes
        self._duration = duration
        self._space = space
        self._distances: list[float] = []
        self._queries: int | None = None

    def read(self, result: Any) -> None:
        """Record the hits of a ``QueryResult`` (ids, and distances if included)."""
        ids = _rows(result, "ids") or []
        distances = _rows(result, "distances")
        self._queries = len(ids)
        hits: list[tuple[str, float | None]] = []
        for index, query_ids in enumerate(ids):
            query_distances = distances[index] if distances and index < len(distances) else None
            for position, doc_id in enumerate(query_ids or ()):
                distance = _distance_at(query_distances, position)
                if distance is not None:
                    self._distances.append(distance)
                score = None if distance is None else similarity(self._space, distance)
                hits.append((str(doc_id), score))
        self.record(hits)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        if self._queries is not None:
            if self._queries > 1:
                batch = semconv.DB_OP_BATCH_PREFIX + semconv.DB_OP_QUERY
                self._db_attributes = {**self._db_attributes, semconv.DB_OPERATION_NAME: batch}
                span.set_attribute(semconv.DB_OPERATION_NAME, batch)
                span.set_attribute(semconv.DB_OPERATION_BATCH_SIZE, self._queries)
            span.set_attribute(semconv.DB_RESPONSE_RETURNED_ROWS, len(self._hits))
        if self._distances:
            span.set_attribute(semconv.RAG_RETRIEVAL_DISTANCE_MIN, min(self._distances))
            span.set_attribute(semconv.RAG_RETRIEVAL_DISTANCE_MAX, max(self._distances))
        super()._finish(span, exc)
        record_duration(self._recorder, self._duration, self._t0, self._db_attributes, exc)


def query_text(query_texts: Any) -> str | None:
    """The ``gen_ai.retrieval.query.text`` of a call (recorded only with content
    capture on): the text, or a JSON array of the texts of a batch query. None
    when the call passed embeddings only."""
    if isinstance(query_texts, str):
        return query_texts
    if isinstance(query_texts, Sequence) and query_texts:
        texts = [text for text in query_texts if isinstance(text, str)]
        if len(texts) == 1:
            return texts[0]
        if texts:
            return json.dumps(texts, ensure_ascii=False)
    return None


def top_k(n_results: Any) -> int | None:
    return n_results if isinstance(n_results, int) and not isinstance(n_results, bool) else None


def _rows(result: Any, key: str) -> list[Any] | None:
    """One per-query list of a ``QueryResult`` (a TypedDict: a plain dict)."""
    if not isinstance(result, Mapping):
        return None
    rows = result.get(key)
    return list(rows) if isinstance(rows, Sequence) else None


def _distance_at(distances: Any, position: int) -> float | None:
    if distances is None or position >= len(distances):
        return None
    try:
        value = float(distances[position])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
