"""``Collection.get``/``add``/``upsert`` as database client spans:
``{operation} {collection}`` (the conventions' span name without a query
summary), kind CLIENT, with the ``db.*`` attributes and the record count.
Errors, ``tenant.id`` and the end-once lifecycle are every otel-ml span's
(:class:`SpanScope`); the duration goes to ``db.client.operation.duration``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import Histogram
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml.instrumentation._chroma._metrics import record_duration
from otel_ml.spans._scope import Recorder, SpanScope


class OperationSpan(SpanScope):
    """One get, add or upsert call."""

    def __init__(
        self,
        recorder: Recorder,
        operation: str,
        collection_name: str,
        db_attributes: dict[str, AttributeValue],
        duration: Histogram,
        record_count: int | None = None,
    ) -> None:
        super().__init__(recorder)
        self._name = f"{operation} {collection_name}"
        self._attributes = db_attributes
        self._duration = duration
        self._record_count = record_count
        self._returned: int | None = None

    def _start(self) -> None:
        attributes = dict(self._attributes)
        if self._record_count is not None:
            attributes[semconv.RAG_VECTOR_DB_RECORD_COUNT] = self._record_count
        self._start_span(self._name, SpanKind.CLIENT, attributes)

    def read(self, result: Any) -> None:
        """A ``GetResult``: how many records came back (add/upsert return None)."""
        if isinstance(result, Mapping):
            ids = result.get("ids")
            if isinstance(ids, Sequence):
                self._returned = len(ids)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        if self._returned is not None:
            span.set_attribute(semconv.DB_RESPONSE_RETURNED_ROWS, self._returned)
        record_duration(self._recorder, self._duration, self._t0, self._attributes, exc)


def record_count(ids: Any) -> int | None:
    """How many records an add/upsert writes: one per id (``ids`` is one id or many)."""
    if isinstance(ids, str):
        return 1
    if isinstance(ids, Sequence):
        return len(ids)
    return None
