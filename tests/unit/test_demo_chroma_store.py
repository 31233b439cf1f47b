"""demo_rag.chroma_store against Chroma's in-process client: the corpus load is
idempotent, the collection is cosine, and Chroma's answer becomes the hits the
numpy scan gave. (The HTTP server, timeouts and faults: tests/integration.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from demo_rag import corpus
from demo_rag.chroma_store import (
    FINGERPRINT_KEY,
    ChromaSettings,
    corpus_fingerprint,
    hits_of,
    load_corpus,
    open_collection,
)
from demo_rag.embeddings import VectorIndex

DOCS = corpus.load()[:12]


@pytest.fixture
def client() -> Iterator[Any]:
    import chromadb  # a dev dependency: imported here, as `import otel_ml` stays light
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings

    # chromadb keeps one in-process system per identifier ("ephemeral") and refuses
    # a client with other settings ("already exists ... with different settings"):
    # this one has allow_reset, other tests' clients do not. Cleared on both sides.
    SharedSystemClient.clear_system_cache()
    made = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False,
                                                      allow_reset=True))
    yield made
    made.reset()
    SharedSystemClient.clear_system_cache()


def test_the_load_writes_once_then_nothing_then_only_what_changed(client: Any) -> None:
    index = VectorIndex(DOCS)
    collection = open_collection(client, "docs")
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    assert load_corpus(collection, DOCS, index.vectors, batch_size=5) == len(DOCS)
    assert collection.metadata[FINGERPRINT_KEY] == corpus_fingerprint(DOCS)
    assert load_corpus(collection, DOCS, index.vectors, batch_size=5) == 0
    assert collection.count() == len(DOCS)
    fewer = DOCS[2:]
    assert load_corpus(collection, fewer, VectorIndex(fewer).vectors, batch_size=5) == 10
    assert sorted(collection.get(include=[])["ids"]) == sorted(d.id for d in fewer)


def test_chroma_returns_what_the_numpy_scan_returns(client: Any) -> None:
    index = VectorIndex(DOCS)
    collection = open_collection(client, "docs")
    load_corpus(collection, DOCS, index.vectors, batch_size=100)
    question = corpus.questions()[3].text
    result = collection.query(query_embeddings=[index.embed(question).tolist()], n_results=5,
                              include=["documents", "metadatas", "distances"])
    hits = hits_of(result)
    expected = index.search(question, 5)
    assert [h.id for h in hits] == [h.id for h in expected]
    assert [h.score for h in hits] == pytest.approx([h.score for h in expected], abs=2e-6)
    assert [h.title for h in hits] == [h.title for h in expected]
    assert [h.text for h in hits] == [h.text for h in expected]


def test_zero_similarity_rows_are_left_out_as_the_scan_left_them_out() -> None:
    result = {"ids": [["a", "b", "c"]], "distances": [[0.25, 0.9999999, 1.0]],
              "documents": [["A", "B", "C"]], "metadatas": [[{"title": "ta"}, {}, {}]]}
    hits = hits_of(result)
    assert [(h.id, h.score, h.title, h.text) for h in hits] == [("a", 0.75, "ta", "A")]
    assert hits_of({"ids": [[]], "distances": [[]], "documents": [[]], "metadatas": [[]]}) == []


def test_settings_come_from_the_environment() -> None:
    settings = ChromaSettings.from_env({
        "CHROMA_URL": "http://127.0.0.1:8100/", "DEMO_RAG_CHROMA_COLLECTION": "empty",
        "DEMO_RAG_CHROMA_TIMEOUT_S": "1.5", "DEMO_RAG_CHROMA_LOAD": "0",
    })
    assert settings == ChromaSettings(url="http://127.0.0.1:8100", collection="empty",
                                      timeout_s=1.5, load=False)
    assert ChromaSettings.from_env({"CHROMA_URL": "http://h:1"}).collection == "docs"
    with pytest.raises(ValueError, match="CHROMA_URL is not set"):
        ChromaSettings.from_env({})
