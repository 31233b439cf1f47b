"""Retrieval spans: hit formats, score statistics, document-count and score
metrics, failures and content capture."""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import otel_ml
from otel_ml import semconv
from otel_ml.spans._retrieval import RetrievalSpan
from otel_ml.testing import Capture


@dataclass
class Hit:
    """A vector-store result object with ``.id`` and ``.score``."""

    id: str
    score: float | None


SCORES = {"doc-1": 0.91, "doc-2": 0.77, "doc-3": 0.42, "doc-4": 0.05, "doc-5": 0.66}


def _span(capture: Capture) -> ReadableSpan:
    found = capture.spans()
    assert len(found) == 1, [span.name for span in found]
    return found[0]


def _attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


def _hits_in_every_format() -> list[Any]:
    items = list(SCORES.items())
    return [
        Hit(*items[0]),
        {"id": items[1][0], "score": items[1][1]},
        items[2],  # (id, score) tuple
        list(items[3]),  # [id, score] list
        Hit(*items[4]),
    ]


def test_span_name_kind_and_request_attributes(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="product-docs", query="how to reset", top_k=5) as r:
        r.record(_hits_in_every_format())

    span = otel_capture.span("retrieval product-docs")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert _attr(span, semconv.GEN_AI_OPERATION_NAME) == "retrieval"
    assert _attr(span, semconv.GEN_AI_DATA_SOURCE_ID) == "product-docs"
    # The retrieval top-k of the current conventions; gen_ai.request.top_k now
    # means sampling top-k and must not appear on a retrieval.
    assert _attr(span, semconv.GEN_AI_RETRIEVAL_TOP_K) == 5
    assert _attr(span, "gen_ai.retrieval.top_k") == 5
    assert _attr(span, semconv.GEN_AI_REQUEST_TOP_K) is None
    # No provider given, none guessed from the data source.
    assert _attr(span, semconv.GEN_AI_PROVIDER_NAME) is None


def test_a_named_provider_is_on_the_span_from_its_start(otel_capture: Capture) -> None:
    # An OpenAI vector store search: the provider is known to the caller only.
    recorder = otel_capture.telemetry._recorder
    with RetrievalSpan(recorder, "vs_abc123", top_k=3, provider=" openai ") as r:
        in_flight = trace.get_current_span()
        assert isinstance(in_flight, ReadableSpan)  # the SDK span, set at start (sampling)
        assert _attr(in_flight, semconv.GEN_AI_PROVIDER_NAME) == "openai"
        r.record([("file-1", 0.9)])

    span = otel_capture.span("retrieval vs_abc123")
    assert _attr(span, semconv.GEN_AI_PROVIDER_NAME) == "openai"
    assert _attr(span, semconv.GEN_AI_RETRIEVAL_TOP_K) == 3


def test_the_public_retrieval_takes_the_provider(otel_capture: Capture) -> None:
    with otel_ml.retrieval("vs_abc123", top_k=2, provider="openai") as r:
        r.record([("file-1", 0.8)])
    span = otel_capture.span("retrieval vs_abc123")
    assert _attr(span, semconv.GEN_AI_PROVIDER_NAME) == "openai"


@pytest.mark.parametrize("provider", ["", "   ", 42])
def test_a_provider_that_is_no_name_is_left_out(otel_capture: Capture, provider: Any) -> None:
    with RetrievalSpan(otel_capture.telemetry._recorder, "docs", provider=provider):
        pass
    assert _attr(_span(otel_capture), semconv.GEN_AI_PROVIDER_NAME) is None


def test_every_hit_format_is_counted_with_score_statistics(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="docs", top_k=5) as r:
        r.record(_hits_in_every_format())

    span = _span(otel_capture)
    scores = list(SCORES.values())
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == len(SCORES)
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MAX) == max(scores)
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MIN) == min(scores)
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MEAN) == pytest.approx(
        math.fsum(scores) / len(scores)
    )


def test_record_called_twice_accumulates(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="docs") as r:
        r.record([("a", 0.2)])
        r.record([("b", 0.8), ("c", 0.5)])

    span = _span(otel_capture)
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 3
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MEAN) == pytest.approx(0.5)


def test_generator_of_hits_is_accepted(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="docs") as r:
        r.record((f"doc-{i}", i / 10) for i in range(4))

    span = _span(otel_capture)
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 4
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MAX) == pytest.approx(0.3)


def test_hits_without_usable_scores_count_as_documents_only(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="keyword-index") as r:
        r.record([Hit("a", None), {"id": "b"}, ("c", float("nan")), ("d", "high"), ("e", 0.4)])

    span = _span(otel_capture)
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 5
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MAX) == 0.4
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MIN) == 0.4
    assert otel_capture.metric_count(semconv.METRIC_RETRIEVAL_SCORE) == 1


def test_unusable_hits_are_skipped_and_bad_input_ignored(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="docs") as r:
        r.record("not a list of hits")
        r.record(42)
        r.record([object(), 3.5, None, ("a", 0.5, "extra"), ("ok", 0.9)])

    span = _span(otel_capture)
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 1
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MAX) == 0.9


def test_no_hits_records_zero_documents_and_no_score_stats(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="docs", top_k=3) as r:
        r.record([])

    span = _span(otel_capture)
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 0
    assert _attr(span, semconv.RAG_RETRIEVAL_SCORE_MAX) is None
    points = otel_capture.points(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT)
    assert [(p.count, p.sum) for p in points if isinstance(p, HistogramDataPoint)] == [(1, 0)]
    assert otel_capture.points(semconv.METRIC_RETRIEVAL_SCORE) == []


def test_metrics_carry_data_source_and_tenant(otel_capture: Capture) -> None:
    with otel_ml.tenant("acme"), otel_ml.retrieval(data_source="docs", top_k=5) as r:
        r.record(_hits_in_every_format())

    count_points = otel_capture.points(
        semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT,
        {semconv.GEN_AI_DATA_SOURCE_ID: "docs", semconv.TENANT_ID: "acme"},
    )
    assert len(count_points) == 1
    point = count_points[0]
    assert isinstance(point, HistogramDataPoint)
    assert (point.count, point.sum) == (1, len(SCORES))
    assert tuple(point.explicit_bounds) == semconv.DOCUMENT_COUNT_BUCKETS


def test_score_histogram_has_one_point_per_document_in_0_1_buckets(
    otel_capture: Capture,
) -> None:
    with otel_ml.retrieval(data_source="docs") as r:
        r.record(_hits_in_every_format())

    points = otel_capture.points(semconv.METRIC_RETRIEVAL_SCORE)
    assert len(points) == 1
    point = points[0]
    assert isinstance(point, HistogramDataPoint)
    assert point.attributes == {semconv.GEN_AI_DATA_SOURCE_ID: "docs"}
    assert point.count == len(SCORES)
    assert point.sum == pytest.approx(math.fsum(SCORES.values()))
    assert tuple(point.explicit_bounds) == semconv.SCORE_BUCKETS
    expected = [0] * (len(semconv.SCORE_BUCKETS) + 1)
    for score in SCORES.values():
        expected[bisect.bisect_left(semconv.SCORE_BUCKETS, score)] += 1
    assert list(point.bucket_counts) == expected


async def test_async_with(otel_capture: Capture) -> None:
    async with otel_ml.retrieval(data_source="docs", top_k=2) as r:
        r.record([("a", 0.3), ("b", 0.6)])

    span = otel_capture.span("retrieval docs")
    assert _attr(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 2


class VectorStoreDown(RuntimeError):
    pass


def test_failed_search_propagates_and_is_not_counted_as_zero_documents(
    otel_capture: Capture,
) -> None:
    error = VectorStoreDown("connection refused")
    with pytest.raises(VectorStoreDown) as raised, otel_ml.retrieval(data_source="docs"):
        raise error
    assert raised.value is error

    span = _span(otel_capture)
    assert span.status.status_code is StatusCode.ERROR
    assert _attr(span, semconv.ERROR_TYPE) == f"{__name__}.VectorStoreDown"
    assert [event.name for event in span.events] == ["exception"]
    assert otel_capture.points(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT) == []


def test_failure_after_hits_still_records_them(otel_capture: Capture) -> None:
    with pytest.raises(KeyError), otel_ml.retrieval(data_source="docs") as r:
        r.record([("a", 0.9)])
        raise KeyError("rerank failed")

    span = _span(otel_capture)
    assert _attr(span, semconv.ERROR_TYPE) == "KeyError"
    assert otel_capture.metric_sum(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT) == 1


def test_retrieval_and_generation_share_the_request_trace(otel_capture: Capture) -> None:
    tracer = otel_capture.telemetry.tracer
    with tracer.start_as_current_span("POST /answer") as root:
        with otel_ml.retrieval(data_source="docs") as r:
            r.record([("a", 0.9)])
        with otel_ml.generation(model="gpt-4o-mini", provider="openai"):
            pass

    trace_id = root.get_span_context().trace_id
    for name in ("retrieval docs", "chat gpt-4o-mini"):
        span = otel_capture.span(name)
        assert span.context is not None and span.context.trace_id == trace_id
        assert span.parent is not None
        assert span.parent.span_id == root.get_span_context().span_id


# --- content capture -----------------------------------------------------------------------------


def test_query_and_documents_are_not_captured_by_default(otel_capture: Capture) -> None:
    with otel_ml.retrieval(data_source="docs", query="private question") as r:
        r.record([("doc-1", 0.5)])

    span = _span(otel_capture)
    assert span.attributes is not None
    assert semconv.GEN_AI_RETRIEVAL_QUERY_TEXT not in span.attributes
    assert semconv.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes
    assert not [v for v in span.attributes.values() if "private question" in str(v)]


def test_query_and_documents_are_captured_when_enabled(
    otel_capture_factory: Callable[..., Capture],
) -> None:
    capture = otel_capture_factory(capture_content=True)
    with capture.telemetry.retrieval("docs", query="how do I rotate keys?") as r:
        r.record([Hit("doc-1", 0.8), Hit("doc-2", None)])

    span = _span(capture)
    assert _attr(span, semconv.GEN_AI_RETRIEVAL_QUERY_TEXT) == "how do I rotate keys?"
    documents = json.loads(_attr(span, semconv.GEN_AI_RETRIEVAL_DOCUMENTS))
    assert documents == [{"id": "doc-1", "score": 0.8}, {"id": "doc-2", "score": None}]


def test_captured_query_is_capped(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_ML_CONTENT_MAX_LENGTH", "64")
    capture = otel_capture_factory(capture_content=True)
    query = "q" * 10_000
    with capture.telemetry.retrieval("docs", query=query):
        pass

    captured = _attr(_span(capture), semconv.GEN_AI_RETRIEVAL_QUERY_TEXT)
    assert len(captured) <= 64
    assert query.startswith(captured.removesuffix("…[truncated]"))


def test_captured_documents_stay_within_the_limit(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wide search (top_k in the thousands, long ids) must not produce one
    attribute of megabytes: that can fail the OTLP request for a whole batch."""
    monkeypatch.setenv("OTEL_ML_CONTENT_MAX_LENGTH", "4096")
    capture = otel_capture_factory(capture_content=True)
    hits = [(f"s3://corpus/tenant-a/{'x' * 80}/{i}.md", 0.5) for i in range(5_000)]
    with capture.telemetry.retrieval("docs", top_k=5_000) as r:
        r.record(hits)

    captured = _attr(_span(capture), semconv.GEN_AI_RETRIEVAL_DOCUMENTS)
    assert len(captured) <= 4096
    assert _attr(_span(capture), semconv.RAG_RETRIEVAL_DOCUMENT_COUNT) == 5_000
