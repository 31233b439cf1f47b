"""``retrieval {data_source}`` spans: document count and similarity scores."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._safety import guard, warn_input
from otel_ml.spans._scope import Recorder, SpanScope
from otel_ml.spans._validate import finite_float, name_or, non_negative_int


class RetrievalSpan(SpanScope):
    """``retrieval {data_source}``: doc count and similarity-score statistics.

    ``provider`` is the GenAI provider serving the search (``openai`` for an
    OpenAI vector store, ``aws.bedrock`` for a Bedrock knowledge base). The
    conventions require ``gen_ai.provider.name`` on a retrieval span only "when
    applicable", and it cannot be told from a data-source id: a search in the
    application's own vector index has no GenAI provider, so without one the
    attribute is left out rather than guessed.
    """

    def __init__(
        self,
        recorder: Recorder,
        data_source: str,
        query: str | None = None,
        top_k: int | None = None,
        provider: str | None = None,
        start_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """``start_attributes``: more attributes for the span's start, where
        samplers see them (an integration's ``db.*``); they do not replace the
        retrieval attributes of the same names."""
        super().__init__(recorder)
        self._start_attributes = dict(start_attributes or {})
        self.data_source = name_or(data_source, "unknown", "retrieval data_source")
        self._query = query
        self._top_k = non_negative_int(top_k, "retrieval top_k")
        self._provider = _provider_name(provider)
        self._hits: list[tuple[str, float | None]] = []

    def _start(self) -> None:
        attributes: dict[str, AttributeValue] = {
            **self._start_attributes,
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL,
            semconv.GEN_AI_DATA_SOURCE_ID: self.data_source,
        }
        if self._provider is not None:
            attributes[semconv.GEN_AI_PROVIDER_NAME] = self._provider
        if self._top_k is not None:
            attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] = self._top_k
        if self._recorder.content.enabled and isinstance(self._query, str):
            attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] = self._recorder.content.cap(
                self._query
            )
        self._start_span(f"retrieval {self.data_source}", SpanKind.CLIENT, attributes)

    def record(self, hits: Iterable[Any]) -> None:
        """Record the retrieved documents: objects with ``.id``/``.score``,
        mappings with ``id``/``score`` keys, or ``(id, score)`` pairs."""
        with guard("retrieval record()"):
            if isinstance(hits, (str, bytes)) or not isinstance(hits, Iterable):
                warn_input(f"retrieval record() takes an iterable of hits, got {type(hits)}")
                return
            for hit in hits:
                with guard("retrieval hit"):
                    parsed = _parse_hit(hit)
                    if parsed is not None:
                        self._hits.append(parsed)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        scores = [score for _, score in self._hits if score is not None]
        span.set_attribute(semconv.RAG_RETRIEVAL_DOCUMENT_COUNT, len(self._hits))
        if scores:
            span.set_attributes(
                {
                    semconv.RAG_RETRIEVAL_SCORE_MAX: max(scores),
                    semconv.RAG_RETRIEVAL_SCORE_MIN: min(scores),
                    semconv.RAG_RETRIEVAL_SCORE_MEAN: math.fsum(scores) / len(scores),
                }
            )
        if self._recorder.content.enabled:
            documents = [{"id": doc_id, "score": score} for doc_id, score in self._hits]
            span.set_attribute(
                semconv.GEN_AI_RETRIEVAL_DOCUMENTS, self._recorder.content.json(documents)
            )
        if exc is not None and not self._hits:
            return  # a failed search returned nothing: do not count it as "0 documents"
        instruments = self._recorder.instruments
        source = {semconv.GEN_AI_DATA_SOURCE_ID: self.data_source}
        count_attributes: dict[str, AttributeValue] = dict(source)
        self._recorder.tenant_attribute(count_attributes)
        instruments.retrieval_document_count.record(len(self._hits), count_attributes)
        for score in scores:
            instruments.retrieval_score.record(score, source)


def _provider_name(provider: Any) -> str | None:
    if provider is None:
        return None
    if isinstance(provider, str) and provider.strip():
        return provider.strip()[:256]
    warn_input(f"retrieval provider must be a non-empty str, got {type(provider).__name__}")
    return None


def _parse_hit(hit: Any) -> tuple[str, float | None] | None:
    if isinstance(hit, Mapping):
        doc_id, score = hit.get("id"), hit.get("score")
    elif isinstance(hit, (tuple, list)) and len(hit) == 2:
        doc_id, score = hit
    elif hasattr(hit, "id"):
        doc_id, score = hit.id, getattr(hit, "score", None)
    else:
        warn_input(f"retrieval hit {type(hit).__name__} has no id/score; skipped")
        return None
    return str(doc_id), finite_float(score, "retrieval hit score")
