"""The demo on a real Chroma server, started natively by the launcher (``chroma run``).

One launch serves the whole module: a normal answer, a search compared with the
numpy scan Chroma replaced, a second launch on the same server with an empty
collection, the corpus load run again (idempotent), then the faults: Chroma
stalled (SIGSTOP, past the retrieval service's timeout), then Chroma stopped.
Spans are read from the OTLP files once the services have flushed them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo_files import CLIENT, STATUS_ERROR, FileSpan, by_trace, load_spans

from demo_rag import corpus
from demo_rag.api import API_KEY_HEADER
from demo_rag.chroma_store import (
    HEARTBEAT_PATH,
    ChromaSettings,
    ChromaStore,
    connect,
    open_collection,
)
from demo_rag.embeddings import VectorIndex
from demo_rag.launcher import launch
from otel_ml import semconv

TIMEOUT_S = 1.0  # the retrieval service's Chroma timeout in this module
ENV = {
    "LLM_SIM_TTFT_MS": "5", "LLM_SIM_TTFT_SIGMA": "0", "LLM_SIM_TBT_MS": "1",
    "LLM_SIM_TBT_SIGMA": "0", "LLM_SIM_ERROR_RATE": "0", "LLM_SIM_SLOW_RATE": "0",
    "DEMO_RAG_CHROMA_TIMEOUT_S": str(TIMEOUT_S),
    "OTEL_BSP_SCHEDULE_DELAY": "200",
}
QUESTION = "How much does Object Storage cost?"


@dataclass
class Asked:
    status: int
    body: dict[str, Any]
    trace_id: str
    seconds: float


@dataclass
class ChromaRun:
    out_dir: Path
    empty_out_dir: Path
    answered: Asked | None = None
    search: list[dict[str, Any]] = field(default_factory=list)
    empty: Asked | None = None
    loads: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    stored_ids: list[str] = field(default_factory=list)
    stalled_search: tuple[int, float] = (0, 0.0)
    stalled: Asked | None = None
    down_search: tuple[int, float] = (0, 0.0)
    down: Asked | None = None


def _ask(api: str, key: str) -> Asked:
    started = time.monotonic()
    response = httpx.post(f"{api}/ask", json={"question": QUESTION},
                          headers={API_KEY_HEADER: key}, timeout=60)
    return Asked(response.status_code, response.json(), response.headers["X-Trace-Id"],
                 time.monotonic() - started)


def _search(url: str) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/search", json={"query": QUESTION}, timeout=60)
    return response.status_code, time.monotonic() - started


def _reload_twice_then_shrink(chroma_url: str, run: ChromaRun) -> None:
    """The corpus load, as restarts run it: the corpus, the same again, one document less."""
    documents = corpus.load()
    settings = ChromaSettings(url=chroma_url, collection="reload-check")
    for docs in (documents, documents, documents[1:]):
        store = ChromaStore.open(settings, documents=docs)
        run.loads.append(store.written)
        run.counts.append(store.documents)
    stored = open_collection(connect(settings), "reload-check").get(include=[])["ids"]
    run.stored_ids = sorted(stored)


def _wait_down(chroma_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(chroma_url + HEARTBEAT_PATH, timeout=1)
        except httpx.HTTPError:
            return
        time.sleep(0.2)
    raise AssertionError("Chroma still answers 60 s after SIGTERM")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaRun]:
    result = ChromaRun(tmp_path_factory.mktemp("chroma-demo"),
                       tmp_path_factory.mktemp("chroma-empty"))
    with launch(out_dir=result.out_dir, tenants=("acme",), env=ENV) as services:
        key = services.api_keys["acme"]
        result.answered = _ask(services.api, key)
        response = httpx.post(f"{services.vectordb}/search",
                              json={"query": QUESTION, "top_k": 8}, timeout=30)
        result.search = response.json()["hits"]
        empty_env = {**ENV, "DEMO_RAG_CHROMA_COLLECTION": "empty-docs",
                     "DEMO_RAG_CHROMA_LOAD": "0"}
        with launch(out_dir=result.empty_out_dir, tenants=("acme",), env=empty_env,
                    chroma_url=services.chroma) as empty:
            result.empty = _ask(empty.api, empty.api_keys["acme"])
        _reload_twice_then_shrink(services.chroma, result)
        chroma = services.pids["chroma"]  # our own child: the launcher started it
        os.killpg(chroma, signal.SIGSTOP)
        try:
            result.stalled_search = _search(services.vectordb)
            result.stalled = _ask(services.api, key)
        finally:
            os.killpg(chroma, signal.SIGCONT)
        os.killpg(chroma, signal.SIGTERM)
        _wait_down(services.chroma)
        result.down_search = _search(services.vectordb)
        result.down = _ask(services.api, key)
    yield result


def _trace(out_dir: Path, trace_id: str) -> list[FileSpan]:
    spans = by_trace(load_spans(out_dir))[trace_id]
    assert spans, f"no spans for trace {trace_id}"
    return spans


def _only(spans: list[FileSpan], service: str, name: str) -> FileSpan:
    found = [s for s in spans if s.service == service and s.name == name]
    assert len(found) == 1, (service, name, [(s.service, s.name) for s in spans])
    return found[0]


def test_an_answer_reads_api_then_retrieval_service_then_chroma(run: ChromaRun) -> None:
    assert run.answered is not None and run.answered.status == 200
    assert run.answered.body["sources"][0] == "kb-0001"  # Object Storage pricing
    spans = _trace(run.out_dir, run.answered.trace_id)
    by_id = {s.span_id: s for s in spans}
    search = _only(spans, "rag-vectordb", "POST /search")
    assert by_id[search.parent].service == "rag-api"
    retrieval = _only(spans, "rag-vectordb", "retrieval docs")
    assert retrieval.parent == search.span_id and retrieval.kind == CLIENT
    embedding = _only(spans, "rag-vectordb", "embeddings hashed-tfidf-4096")
    assert embedding.parent == search.span_id
    assert embedding.end <= retrieval.start  # the question is embedded, then searched
    [http] = [s for s in spans if s.parent == retrieval.span_id]
    assert http.kind == CLIENT and http.attrs["server.port"] == retrieval.attrs["server.port"]
    assert retrieval.attrs[semconv.DB_SYSTEM_NAME] == "chroma"
    assert retrieval.attrs[semconv.DB_COLLECTION_NAME] == "docs"
    assert retrieval.attrs[semconv.DB_OPERATION_NAME] == "query"
    assert retrieval.attrs[semconv.RAG_RETRIEVAL_DISTANCE_FUNCTION] == "cosine"
    assert retrieval.attrs[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 4
    assert retrieval.attrs[semconv.RAG_RETRIEVAL_SCORE_MAX] == pytest.approx(0.291838, abs=1e-6)
    assert retrieval.attrs["tenant.id"] == "acme"
    # content capture is off by default: the question is on no span
    assert not any(QUESTION in str(v) for s in spans for v in s.attrs.values())


def test_chroma_finds_what_the_numpy_scan_found(run: ChromaRun) -> None:
    expected = VectorIndex(corpus.load()).search(QUESTION, 8)
    assert [(h["id"], h["score"]) for h in run.search] == [
        (h.id, pytest.approx(h.score, abs=2e-6)) for h in expected
    ]


def test_an_empty_collection_gives_a_retrieval_span_with_no_documents(run: ChromaRun) -> None:
    assert run.empty is not None and run.empty.status == 200, run.empty
    assert run.empty.body["sources"] == []
    spans = _trace(run.empty_out_dir, run.empty.trace_id)
    retrieval = _only(spans, "rag-vectordb", "retrieval empty-docs")
    assert retrieval.attrs[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 0
    assert retrieval.attrs[semconv.DB_COLLECTION_NAME] == "empty-docs"
    assert retrieval.status != STATUS_ERROR


def test_the_corpus_load_is_idempotent(run: ChromaRun) -> None:
    documents = corpus.load()
    n = len(documents)
    # a re-open over the same corpus writes nothing; one without its first
    # document writes the rest and deletes that one
    assert run.loads == [n, 0, n - 1]
    assert run.counts == [n, n, n - 1]
    assert run.stored_ids == sorted(d.id for d in documents[1:])


def test_a_stalled_chroma_gives_503_within_the_timeout_not_a_hang(run: ChromaRun) -> None:
    status, seconds = run.stalled_search
    assert status == 503
    assert seconds < 30  # the timeout is 1 s; 30 s only rules out a hang on a busy machine
    assert run.stalled is not None
    _assert_failed_answer(run.out_dir, run.stalled)


def test_a_stopped_chroma_gives_503(run: ChromaRun) -> None:
    assert run.down_search[0] == 503
    assert run.down is not None
    _assert_failed_answer(run.out_dir, run.down)


def _assert_failed_answer(out_dir: Path, asked: Asked) -> None:
    # The database unavailable is a 503 for the api's caller too (retry later).
    assert asked.status == 503, asked
    assert asked.body["error"]["type"] == "retrieval_unavailable"
    assert "503" in asked.body["error"]["message"]
    spans = _trace(out_dir, asked.trace_id)
    root = _only(spans, "rag-api", "POST /ask")
    assert root.status == STATUS_ERROR
    search = _only(spans, "rag-vectordb", "POST /search")
    assert search.status == STATUS_ERROR
    retrieval = _only(spans, "rag-vectordb", "retrieval docs")
    assert retrieval.status == STATUS_ERROR
    assert not any(s.service == "rag-llm" for s in spans)  # no answer without documents
