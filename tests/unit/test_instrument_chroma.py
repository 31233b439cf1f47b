"""instrument_chroma(): queries, gets, adds and upserts of a real in-process
Chroma (chromadb's EphemeralClient, no server, nothing downloaded: every
embedding is given, collections have no embedding function but one test's
tiny local one). Scores are checked against numpy on the same vectors for
each distance function; attributes, metrics and content capture as the
retrieval span has them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.api import ClientAPI
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

# Three documents in 3-d, not normalised (so cosine, ip and l2 rank differently),
# and two queries.
DOCS: dict[str, Any] = {
    "paris": [1.0, 0.2, 0.0],
    "lyon": [0.6, 0.8, 0.1],
    "nice": [0.0, 2.0, 1.5],
}
QUERY: Any = [0.9, 0.3, 0.1]
QUERY_2: Any = [0.0, 1.0, 1.0]


def settings() -> Settings:
    # anonymized_telemetry=False: Chroma's product telemetry (a no-op in 1.5.9, see
    # docs/instrument-chroma.md) stays off in tests.
    return Settings(anonymized_telemetry=False)


@pytest.fixture
def client() -> ClientAPI:
    return chromadb.EphemeralClient(settings=settings())


@pytest.fixture
def instrumented(otel_capture: Capture) -> Iterator[Capture]:
    otel_ml.instrument_chroma()
    try:
        yield otel_capture
    finally:
        otel_ml.uninstrument_chroma()


def new_collection(client: ClientAPI, space: str | None = "cosine", **options: Any) -> Any:
    """A collection of DOCS with a unique name (the ephemeral system is shared)."""
    name = f"docs-{uuid.uuid4().hex[:12]}"
    if space is not None:
        options.setdefault("configuration", {"hnsw": {"space": space}})
    options.setdefault("embedding_function", None)
    collection = client.create_collection(name, **options)
    collection.add(ids=list(DOCS), embeddings=list(DOCS.values()))
    return collection


def expected_scores(space: str, query: list[float]) -> dict[str, tuple[float, float]]:
    """(distance, similarity) per document, computed here with numpy."""
    q = np.asarray(query, dtype=np.float64)
    result = {}
    for doc_id, vector in DOCS.items():
        d = np.asarray(vector, dtype=np.float64)
        if space == "cosine":
            similarity = float(q @ d / (np.linalg.norm(q) * np.linalg.norm(d)))
            result[doc_id] = (1.0 - similarity, similarity)
        elif space == "ip":
            similarity = float(q @ d)
            result[doc_id] = (1.0 - similarity, similarity)
        else:  # l2: Chroma's distance is the squared Euclidean distance
            squared = float(np.sum((q - d) ** 2))
            result[doc_id] = (squared, 1.0 / (1.0 + squared))
    return result


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-5, abs=1e-6)  # Chroma computes in float32


@pytest.mark.parametrize("space", ["cosine", "l2", "ip"])
def test_query_scores_are_the_similarities_of_the_distance_function(
    instrumented: Capture, client: ClientAPI, space: str
) -> None:
    collection = new_collection(client, space)
    result = collection.query(query_embeddings=[QUERY], n_results=2)

    expected = expected_scores(space, QUERY)
    nearest = sorted(expected, key=lambda doc_id: expected[doc_id][0])[:2]
    assert result["ids"] == [nearest]  # the instrumented call returns Chroma's result
    span = instrumented.span(f"retrieval {collection.name}")
    attributes = span.attributes or {}
    scores = [expected[doc_id][1] for doc_id in nearest]
    distances = [expected[doc_id][0] for doc_id in nearest]
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 2
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MAX] == approx(max(scores))
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MIN] == approx(min(scores))
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MEAN] == approx(sum(scores) / 2)
    assert attributes[semconv.RAG_RETRIEVAL_DISTANCE_MIN] == approx(min(distances))
    assert attributes[semconv.RAG_RETRIEVAL_DISTANCE_MAX] == approx(max(distances))
    assert attributes[semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION] == space
    # The distances Chroma returned are the ones recorded.
    assert attributes[semconv.RAG_RETRIEVAL_DISTANCE_MIN] == approx(min(result["distances"][0]))
    # The score histogram got one point per hit, converted the same way.
    source = {semconv.GEN_AI_DATA_SOURCE_ID: collection.name}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_SCORE, source) == 2
    assert instrumented.metric_sum(semconv.METRIC_RETRIEVAL_SCORE, source) == approx(sum(scores))


def test_query_span_is_the_retrieval_span_with_db_attributes(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)
    with instrumented.telemetry.tracer.start_as_current_span("request") as parent:
        collection.query(query_embeddings=[QUERY], n_results=3)

    span = instrumented.span(f"retrieval {collection.name}")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    attributes = span.attributes or {}
    assert {
        key: attributes.get(key)
        for key in (
            semconv.GEN_AI_OPERATION_NAME,
            semconv.GEN_AI_DATA_SOURCE_ID,
            semconv.GEN_AI_RETRIEVAL_TOP_K,
            semconv.DB_SYSTEM_NAME,
            semconv.DB_COLLECTION_NAME,
            semconv.DB_NAMESPACE,
            semconv.DB_OPERATION_NAME,
            semconv.DB_RESPONSE_RETURNED_ROWS,
        )
    } == {
        semconv.GEN_AI_OPERATION_NAME: "retrieval",
        semconv.GEN_AI_DATA_SOURCE_ID: collection.name,
        semconv.GEN_AI_RETRIEVAL_TOP_K: 3,
        semconv.DB_SYSTEM_NAME: "chroma",
        semconv.DB_COLLECTION_NAME: collection.name,
        semconv.DB_NAMESPACE: "default_tenant|default_database",
        semconv.DB_OPERATION_NAME: "query",
        semconv.DB_RESPONSE_RETURNED_ROWS: 3,
    }
    # One query is no batch; the in-process client has no server.
    for absent in (semconv.DB_OPERATION_BATCH_SIZE, semconv.SERVER_ADDRESS, semconv.SERVER_PORT):
        assert absent not in attributes
    # The retrieval metrics of otel_ml.retrieval(), by data source.
    source = {semconv.GEN_AI_DATA_SOURCE_ID: collection.name}
    assert instrumented.metric_sum(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 3
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 1


class _StartAttributes(SpanProcessor):
    """What a head sampler or span processor sees: the attributes at span start."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.seen[span.name] = dict(span.attributes or {})


def test_db_attributes_are_on_the_query_span_from_its_start(
    instrumented: Capture, client: ClientAPI
) -> None:
    started = _StartAttributes()
    instrumented.telemetry.tracer_provider.add_span_processor(started)  # type: ignore[attr-defined]
    collection = new_collection(client, space="ip")
    collection.query(query_embeddings=[QUERY], n_results=2)

    at_start = started.seen[f"retrieval {collection.name}"]
    assert {k: at_start.get(k) for k in (
        semconv.DB_SYSTEM_NAME, semconv.DB_COLLECTION_NAME, semconv.DB_OPERATION_NAME,
        semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION, semconv.GEN_AI_OPERATION_NAME,
        semconv.GEN_AI_DATA_SOURCE_ID,
    )} == {
        semconv.DB_SYSTEM_NAME: "chroma",
        semconv.DB_COLLECTION_NAME: collection.name,
        semconv.DB_OPERATION_NAME: "query",
        semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION: "ip",
        semconv.GEN_AI_OPERATION_NAME: "retrieval",
        semconv.GEN_AI_DATA_SOURCE_ID: collection.name,
    }
    # Results only at the end.
    assert semconv.RAG_RETRIEVAL_DOCUMENT_COUNT not in at_start


def test_top_k_is_chromas_default_when_the_call_names_none(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)
    collection.query(QUERY)  # positional query_embeddings, n_results defaults to 10
    attributes = instrumented.span(f"retrieval {collection.name}").attributes or {}
    assert attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 10
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 3  # only 3 documents exist


def test_a_batch_query_is_one_span_over_all_its_queries(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client, "ip")
    result = collection.query(query_embeddings=[QUERY, QUERY_2], n_results=2)

    span = instrumented.span(f"retrieval {collection.name}")
    attributes = span.attributes or {}
    assert attributes[semconv.DB_OPERATION_NAME] == "BATCH query"
    assert attributes[semconv.DB_OPERATION_BATCH_SIZE] == 2
    assert attributes[semconv.DB_RESPONSE_RETURNED_ROWS] == 4
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 4
    first, second = expected_scores("ip", QUERY), expected_scores("ip", QUERY_2)
    scores = [first[i][1] for i in result["ids"][0]] + [second[i][1] for i in result["ids"][1]]
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MAX] == approx(max(scores))
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MIN] == approx(min(scores))
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MEAN] == approx(sum(scores) / 4)
    source = {semconv.GEN_AI_DATA_SOURCE_ID: collection.name}
    assert instrumented.metric_sum(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 4
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_SCORE, source) == 4


def test_the_distance_function_comes_from_metadata_or_defaults_to_l2(
    instrumented: Capture, client: ClientAPI
) -> None:
    legacy = new_collection(client, None, metadata={"hnsw:space": "ip"})
    default = new_collection(client, None)
    legacy.query(query_embeddings=[QUERY], n_results=1)
    default.query(query_embeddings=[QUERY], n_results=1)

    legacy_span = instrumented.span(f"retrieval {legacy.name}").attributes or {}
    default_span = instrumented.span(f"retrieval {default.name}").attributes or {}
    assert legacy_span[semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION] == "ip"
    assert legacy_span[semconv.RAG_RETRIEVAL_SCORE_MAX] == approx(
        max(score for _, score in expected_scores("ip", QUERY).values())
    )
    assert default_span[semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION] == "l2"
    assert default_span[semconv.RAG_RETRIEVAL_SCORE_MAX] == approx(
        max(score for _, score in expected_scores("l2", QUERY).values())
    )


def test_a_query_without_distances_counts_documents_without_scores(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)
    collection.query(query_embeddings=[QUERY], n_results=2, include=["documents"])

    attributes = instrumented.span(f"retrieval {collection.name}").attributes or {}
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 2
    for absent in (
        semconv.RAG_RETRIEVAL_SCORE_MAX,
        semconv.RAG_RETRIEVAL_DISTANCE_MIN,
        semconv.RAG_RETRIEVAL_DISTANCE_MAX,
    ):
        assert absent not in attributes
    source = {semconv.GEN_AI_DATA_SOURCE_ID: collection.name}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_SCORE, source) == 0


def test_an_empty_collection_gives_zero_documents(
    instrumented: Capture, client: ClientAPI
) -> None:
    empty = client.create_collection(f"empty-{uuid.uuid4().hex[:8]}", embedding_function=None)
    empty.query(query_embeddings=[QUERY], n_results=5)

    attributes = instrumented.span(f"retrieval {empty.name}").attributes or {}
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 0
    assert attributes[semconv.DB_RESPONSE_RETURNED_ROWS] == 0
    source = {semconv.GEN_AI_DATA_SOURCE_ID: empty.name}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 1
    assert instrumented.metric_sum(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 0


def test_get_add_and_upsert_are_db_client_spans(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)  # its add is the first span
    collection.upsert(ids=["paris", "rome"], embeddings=[[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    got = collection.get(ids=["paris", "lyon", "rome", "absent"])

    assert sorted(got["ids"]) == ["lyon", "paris", "rome"]
    name = collection.name
    common = {
        semconv.DB_SYSTEM_NAME: "chroma",
        semconv.DB_COLLECTION_NAME: name,
        semconv.DB_NAMESPACE: "default_tenant|default_database",
    }
    add = instrumented.span(f"add {name}")
    upsert = instrumented.span(f"upsert {name}")
    get = instrumented.span(f"get {name}")
    assert dict(add.attributes or {}) == {
        **common, semconv.DB_OPERATION_NAME: "add", semconv.RAG_VECTOR_DB_RECORD_COUNT: 3
    }
    assert dict(upsert.attributes or {}) == {
        **common, semconv.DB_OPERATION_NAME: "upsert", semconv.RAG_VECTOR_DB_RECORD_COUNT: 2
    }
    assert dict(get.attributes or {}) == {
        **common, semconv.DB_OPERATION_NAME: "get", semconv.DB_RESPONSE_RETURNED_ROWS: 3
    }
    assert {add.kind, upsert.kind, get.kind} == {SpanKind.CLIENT}
    # No retrieval metrics for them.
    source = {semconv.GEN_AI_DATA_SOURCE_ID: name}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 0


def test_a_single_id_counts_one_record(instrumented: Capture, client: ClientAPI) -> None:
    collection = new_collection(client)
    instrumented.clear()
    collection.add(ids="madrid", embeddings=[[0.1, 0.1, 0.1]])
    attributes = instrumented.span(f"add {collection.name}").attributes or {}
    assert attributes[semconv.RAG_VECTOR_DB_RECORD_COUNT] == 1


def test_arguments_are_read_however_they_are_passed(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)
    instrumented.clear()
    collection.upsert(["x", "y"], [[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]])  # positional ids
    collection.query([QUERY], None, None, None, None, 2)  # positional n_results
    upsert = instrumented.span(f"upsert {collection.name}").attributes or {}
    query = instrumented.span(f"retrieval {collection.name}").attributes or {}
    assert upsert[semconv.RAG_VECTOR_DB_RECORD_COUNT] == 2
    assert query[semconv.GEN_AI_RETRIEVAL_TOP_K] == 2
    assert query[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 2


class Letters(EmbeddingFunction[Documents]):
    """A local, deterministic embedding function for the query_texts test
    (Chroma must not download its default model)."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [
            np.array([t.count("a"), t.count("e") + 1.0, t.count("i")], dtype=np.float32)
            for t in input
        ]

    @staticmethod
    def name() -> str:
        return "otel-ml-test-letters"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> Letters:
        return Letters()


def test_query_text_and_documents_are_not_recorded_by_default(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client, embedding_function=Letters())
    collection.query(query_texts=["where is the tower?"], n_results=2)

    attributes = instrumented.span(f"retrieval {collection.name}").attributes or {}
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 2
    assert semconv.GEN_AI_RETRIEVAL_QUERY_TEXT not in attributes
    assert semconv.GEN_AI_RETRIEVAL_DOCUMENTS not in attributes


def test_content_capture_records_query_text_and_document_ids(
    otel_capture_factory: Any, client: ClientAPI
) -> None:
    capture = otel_capture_factory(capture_content=True)
    otel_ml.instrument_chroma()
    try:
        collection = new_collection(client, embedding_function=Letters())
        result = collection.query(query_texts=["where is the tower?"], n_results=2)
        collection.query(query_texts=["paris", "lyon"], n_results=1)
    finally:
        otel_ml.uninstrument_chroma()

    single, batch = capture.spans(f"retrieval {collection.name}")
    single_attributes = single.attributes or {}
    assert single_attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] == "where is the tower?"
    documents = json.loads(str(single_attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS]))
    assert [document["id"] for document in documents] == result["ids"][0]
    assert [document["score"] for document in documents] == [
        approx(1.0 - distance) for distance in result["distances"][0]
    ]
    # A batch of texts is one JSON array.
    batch_text = (batch.attributes or {})[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT]
    assert json.loads(str(batch_text)) == ["paris", "lyon"]


def test_chroma_errors_propagate_and_mark_the_span(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)
    with pytest.raises(chromadb.errors.InvalidArgumentError) as raised:
        collection.query(query_embeddings=[QUERY[:2]], n_results=1)  # 2-d into 3-d

    span = instrumented.span(f"retrieval {collection.name}")
    assert span.status.status_code is StatusCode.ERROR
    attributes = span.attributes or {}
    assert attributes[semconv.ERROR_TYPE] == "chromadb.errors.InvalidArgumentError"
    assert semconv.RAG_RETRIEVAL_DOCUMENT_COUNT in attributes  # 0, recorded on the span
    assert [event.name for event in span.events] == ["exception"]
    assert str(raised.value) in (span.status.description or "")
    # A failed search is not counted as "0 documents" in the metric.
    source = {semconv.GEN_AI_DATA_SOURCE_ID: collection.name}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 0

    with pytest.raises(chromadb.errors.InvalidArgumentError):
        collection.add(ids=["bad"], embeddings=[[1.0]])
    add_spans = instrumented.spans(f"add {collection.name}")
    assert add_spans[-1].status.status_code is StatusCode.ERROR
    assert (add_spans[-1].attributes or {})[semconv.ERROR_TYPE] == (
        "chromadb.errors.InvalidArgumentError"
    )


def test_tenant_is_on_the_span_and_the_document_count(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)
    with otel_ml.tenant("acme"):
        collection.query(query_embeddings=[QUERY], n_results=1)
    span = instrumented.span(f"retrieval {collection.name}")
    assert (span.attributes or {})[semconv.TENANT_ID] == "acme"
    source = {semconv.GEN_AI_DATA_SOURCE_ID: collection.name, semconv.TENANT_ID: "acme"}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 1


def test_every_call_records_db_client_operation_duration(
    instrumented: Capture, client: ClientAPI
) -> None:
    collection = new_collection(client)  # add
    collection.query(query_embeddings=[QUERY], n_results=1)
    collection.query(query_embeddings=[QUERY, QUERY_2], n_results=1)
    collection.get(ids=["paris"])
    with pytest.raises(chromadb.errors.InvalidArgumentError):
        collection.upsert(ids=["bad"], embeddings=[[1.0]])

    metric = semconv.METRIC_DB_CLIENT_OPERATION_DURATION
    base = {
        semconv.DB_SYSTEM_NAME: "chroma",
        semconv.DB_COLLECTION_NAME: collection.name,
        semconv.DB_NAMESPACE: "default_tenant|default_database",
    }
    for operation in ("add", "query", "BATCH query", "get", "upsert"):
        attributes = {**base, semconv.DB_OPERATION_NAME: operation}
        assert instrumented.metric_count(metric, attributes) == 1, operation
    # The duration is the call's: positive and within its span's.
    (get,) = instrumented.points(metric, {semconv.DB_OPERATION_NAME: "get"})
    get_span = instrumented.span(f"get {collection.name}")
    assert get_span.start_time is not None and get_span.end_time is not None
    assert 0 < instrumented.metric_sum(metric, {semconv.DB_OPERATION_NAME: "get"}) <= (
        get_span.end_time - get_span.start_time
    ) / 1e9
    assert semconv.ERROR_TYPE not in (get.attributes or {})
    (failed,) = instrumented.points(metric, {semconv.DB_OPERATION_NAME: "upsert"})
    assert (failed.attributes or {})[semconv.ERROR_TYPE] == "chromadb.errors.InvalidArgumentError"
