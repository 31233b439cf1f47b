"""instrument_chroma() against a real Chroma server: ``chroma run`` from the
chromadb package (1.5.9, the venv's), started here on a free port in a temporary
folder. The sync ``HttpClient`` and the ``AsyncHttpClient`` (``AsyncCollection``,
which no in-process client has) over real HTTP: server.address/port, scores,
db attributes, and a server that went away.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import httpx
import numpy as np
import pytest
from chromadb.config import Settings
from opentelemetry.trace import SpanKind, StatusCode

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

pytestmark = pytest.mark.integration

CHROMA = Path(sys.executable).parent / "chroma"
START_TIMEOUT_S = 90.0  # two shared cores: be patient
DOCS: dict[str, Any] = {"a": [1.0, 0.0, 0.0], "b": [0.6, 0.8, 0.0], "c": [0.0, 0.6, 0.8]}
QUERY: Any = [0.8, 0.6, 0.0]


@dataclass
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(path: Path) -> Server:
    assert CHROMA.exists(), f"{CHROMA} is missing: the chromadb package brings it"
    port = free_port()
    log = (path.parent / f"chroma-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    server = Server("localhost", port, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"chroma run exited: see {log.name}"
        try:
            if httpx.get(f"http://localhost:{port}/api/v2/heartbeat", timeout=2).is_success:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"chroma run did not answer on port {port} in {START_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(tmp_path_factory.mktemp("chroma") / "data")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def instrumented(otel_capture: Capture) -> Iterator[Capture]:
    otel_ml.instrument_chroma()
    try:
        yield otel_capture
    finally:
        otel_ml.uninstrument_chroma()


def settings() -> Settings:
    return Settings(anonymized_telemetry=False)


def cosine(a: Any, b: Any) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def check_query_span(capture: Capture, name: str, server: Server, result: Any) -> None:
    span = capture.span(f"retrieval {name}")
    attributes = span.attributes or {}
    assert span.kind is SpanKind.CLIENT
    assert attributes[semconv.SERVER_ADDRESS] == server.host
    assert attributes[semconv.SERVER_PORT] == server.port
    assert attributes[semconv.DB_SYSTEM_NAME] == "chroma"
    assert attributes[semconv.DB_COLLECTION_NAME] == name
    assert attributes[semconv.DB_OPERATION_NAME] == "query"
    assert attributes[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 2
    scores = [cosine(QUERY, DOCS[doc_id]) for doc_id in result["ids"][0]]
    assert result["ids"][0] == ["b", "a"]  # cos 1.0 and 0.8
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MAX] == pytest.approx(max(scores), abs=1e-5)
    assert attributes[semconv.RAG_RETRIEVAL_SCORE_MIN] == pytest.approx(min(scores), abs=1e-5)
    assert attributes[semconv.RAG_RETRIEVAL_DISTANCE_MAX] == pytest.approx(
        1.0 - min(scores), abs=1e-5
    )


def test_http_client_spans_name_the_server(instrumented: Capture, server: Server) -> None:
    client = chromadb.HttpClient(host=server.host, port=server.port, settings=settings())
    name = f"sync-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    collection.add(ids=list(DOCS), embeddings=list(DOCS.values()))
    result = collection.query(query_embeddings=[QUERY], n_results=2)
    got = collection.get(ids=["a", "c"])

    check_query_span(instrumented, name, server, result)
    assert sorted(got["ids"]) == ["a", "c"]
    for operation, count in (("add", semconv.RAG_VECTOR_DB_RECORD_COUNT),
                             ("get", semconv.DB_RESPONSE_RETURNED_ROWS)):
        attributes = instrumented.span(f"{operation} {name}").attributes or {}
        assert attributes[semconv.SERVER_PORT] == server.port
        assert attributes[count] == (3 if operation == "add" else 2)
    points = instrumented.points(
        semconv.METRIC_DB_CLIENT_OPERATION_DURATION, {semconv.DB_COLLECTION_NAME: name}
    )
    assert sorted(str((p.attributes or {})[semconv.DB_OPERATION_NAME]) for p in points) == [
        "add", "get", "query"
    ]
    assert {(p.attributes or {})[semconv.SERVER_PORT] for p in points} == {server.port}


def test_async_http_client_is_instrumented_too(instrumented: Capture, server: Server) -> None:
    name = f"async-{uuid.uuid4().hex[:8]}"

    async def run() -> Any:
        client = await chromadb.AsyncHttpClient(
            host=server.host, port=server.port, settings=settings()
        )
        collection = await client.create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        await collection.upsert(ids=list(DOCS), embeddings=list(DOCS.values()))
        result = await collection.query(query_embeddings=[QUERY], n_results=2)
        got = await collection.get(ids=["b"])
        return result, got

    result, got = asyncio.run(run())

    check_query_span(instrumented, name, server, result)
    assert got["ids"] == ["b"]
    upsert = instrumented.span(f"upsert {name}").attributes or {}
    assert upsert[semconv.RAG_VECTOR_DB_RECORD_COUNT] == 3
    assert upsert[semconv.DB_OPERATION_NAME] == "upsert"
    get = instrumented.span(f"get {name}").attributes or {}
    assert get[semconv.DB_RESPONSE_RETURNED_ROWS] == 1
    # Async spans nest like sync ones: each is a root here, none leaks into the next.
    assert all(span.parent is None for span in instrumented.spans())


def test_per_client_mode_on_an_http_client(otel_capture: Capture, server: Server) -> None:
    traced = chromadb.HttpClient(host=server.host, port=server.port, settings=settings())
    local = chromadb.EphemeralClient(settings=settings())
    otel_ml.instrument_chroma(traced)
    try:
        name = f"per-client-{uuid.uuid4().hex[:8]}"
        remote = traced.create_collection(name, embedding_function=None)
        remote.add(ids=["a"], embeddings=[DOCS["a"]])
        in_process = local.create_collection(name, embedding_function=None)
        in_process.add(ids=["a"], embeddings=[DOCS["a"]])
        remote.query(query_embeddings=[QUERY], n_results=1)
        in_process.query(query_embeddings=[QUERY], n_results=1)
    finally:
        otel_ml.uninstrument_chroma(traced)
    spans = otel_capture.spans()
    assert [span.name for span in spans] == [f"add {name}", f"retrieval {name}"]
    assert all((span.attributes or {})[semconv.SERVER_PORT] == server.port for span in spans)


def test_a_server_that_went_away_marks_the_span_and_raises(
    instrumented: Capture, tmp_path: Path
) -> None:
    doomed = start_server(tmp_path / "data")
    try:
        client = chromadb.HttpClient(host=doomed.host, port=doomed.port, settings=settings())
        collection = client.create_collection("doomed", embedding_function=None)
        collection.add(ids=["a"], embeddings=[DOCS["a"]])
    finally:
        doomed.stop()
    with pytest.raises(httpx.ConnectError) as raised:
        collection.query(query_embeddings=[QUERY], n_results=1)

    span = instrumented.span("retrieval doomed")
    assert span.status.status_code is StatusCode.ERROR
    attributes = span.attributes or {}
    assert attributes[semconv.ERROR_TYPE] == "httpx.ConnectError"
    assert attributes[semconv.SERVER_PORT] == doomed.port
    assert type(raised.value) is httpx.ConnectError  # unchanged, not wrapped by otel-ml
    source = {semconv.GEN_AI_DATA_SOURCE_ID: "doomed"}
    assert instrumented.metric_count(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT, source) == 0


def test_with_instrument_httpx_the_request_is_a_child_of_the_chroma_span(
    instrumented: Capture, server: Server
) -> None:
    # What carries the trace to the server: the httpx instrumentation's client span,
    # under the Chroma span, injects its traceparent into Chroma's request.
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    client = chromadb.HttpClient(host=server.host, port=server.port, settings=settings())
    collection = client.get_or_create_collection("propagation", embedding_function=None)
    collection.upsert(ids=["a"], embeddings=[DOCS["a"]])
    otel_ml.instrument_httpx(telemetry=instrumented.telemetry)
    try:
        instrumented.clear()
        collection.query(query_embeddings=[QUERY], n_results=1)
    finally:
        HTTPXClientInstrumentor().uninstrument()

    retrieval = instrumented.span("retrieval propagation")
    http = [span for span in instrumented.spans() if span.kind is SpanKind.CLIENT
            and (span.attributes or {}).get(semconv.HTTP_REQUEST_METHOD) == "POST"]
    assert len(http) == 1, [span.name for span in instrumented.spans()]
    assert http[0].parent is not None
    assert http[0].parent.span_id == retrieval.context.span_id
    assert http[0].context.trace_id == retrieval.context.trace_id
