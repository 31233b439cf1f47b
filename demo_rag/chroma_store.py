"""The demo's vector database: the corpus in a Chroma collection, searched over HTTP.

The retrieval service (:mod:`demo_rag.vectordb`) opens a :class:`ChromaStore` at
start-up: it waits for the Chroma server, loads the corpus into the collection
(once: a restart finds it there and writes nothing), and then answers each search
with one ``Collection.query`` through a ``chromadb.HttpClient`` that
``otel_ml.instrument_chroma`` traces.

Embeddings are the demo's own hashed TF-IDF (:mod:`demo_rag.embeddings`), passed
explicitly both when loading and when querying, and the collection has no
embedding function: Chroma's default one would download an ONNX model. The
collection's distance function is cosine, chosen explicitly: Chroma's default is
l2, and the scores the demo reports are cosine similarities (1 - distance), as the
numpy scan this replaces computed them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import httpx

from demo_rag import corpus
from demo_rag.corpus import Document
from demo_rag.embeddings import MODEL_NAME, Hit, Vector, VectorIndex

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

CHROMA_URL_ENV: Final = "CHROMA_URL"
COLLECTION_ENV: Final = "DEMO_RAG_CHROMA_COLLECTION"
TIMEOUT_ENV: Final = "DEMO_RAG_CHROMA_TIMEOUT_S"
LOAD_ENV: Final = "DEMO_RAG_CHROMA_LOAD"
WAIT_ENV: Final = "DEMO_RAG_CHROMA_WAIT_S"
DEFAULT_COLLECTION: Final = "docs"
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_WAIT_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 2.0
# The start-up load sends the whole corpus (288 x 4096 floats, ~12 MB of JSON) in one
# upsert: on a busy machine that takes seconds, far past a search's timeout.
LOAD_TIMEOUT_S: Final = 120.0
SPACE: Final = "cosine"
# Collection metadata: which corpus and encoder the stored vectors come from.
FINGERPRINT_KEY: Final = "demo_rag.corpus_sha256"
HEARTBEAT_PATH: Final = "/api/v2/heartbeat"

logger = logging.getLogger(__name__)


class ChromaUnavailable(RuntimeError):
    """Chroma did not answer (down, unreachable, or slower than the timeout)."""


@dataclass(frozen=True)
class ChromaSettings:
    """Where the retrieval service finds Chroma, and how long it waits for it.

    ``timeout_s`` bounds every request to Chroma (chromadb's own client has no
    timeout at all, so a hung server would hang every search); ``wait_s`` is how
    long start-up waits for the server; ``load`` false leaves the collection as
    it is (an empty one stays empty: the fault the no-documents alert is for).
    """

    url: str
    collection: str = DEFAULT_COLLECTION
    timeout_s: float = DEFAULT_TIMEOUT_S
    wait_s: float = DEFAULT_WAIT_S
    load: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ChromaSettings:
        url = environ.get(CHROMA_URL_ENV)
        if not url:
            raise ValueError(f"{CHROMA_URL_ENV} is not set (the Chroma server's base URL)")
        return cls(
            url=url.rstrip("/"),
            collection=environ.get(COLLECTION_ENV) or DEFAULT_COLLECTION,
            timeout_s=float(environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S),
            wait_s=float(environ.get(WAIT_ENV) or DEFAULT_WAIT_S),
            load=(environ.get(LOAD_ENV) or "1").lower() not in ("0", "false", "no"),
        )


def wait_until_up(url: str, wait_s: float) -> None:
    """Poll Chroma's heartbeat until it answers, or raise :class:`ChromaUnavailable`."""
    deadline = time.monotonic() + wait_s
    last: Exception | str = "no answer"
    while True:
        try:
            response = httpx.get(url + HEARTBEAT_PATH, timeout=CONNECT_TIMEOUT_S)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise ChromaUnavailable(f"Chroma at {url} not up after {wait_s:.0f}s: {last}")
        time.sleep(0.2)


def connect(settings: ChromaSettings) -> ClientAPI:
    """A ``chromadb.HttpClient`` for ``settings.url``, with a request timeout.

    No anonymized product telemetry (``anonymized_telemetry=False``).
    """
    import chromadb
    from chromadb.config import Settings

    wait_until_up(settings.url, settings.wait_s)
    parts = urlsplit(settings.url)
    ssl = parts.scheme == "https"
    client = chromadb.HttpClient(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (443 if ssl else 80),
        ssl=ssl,
        settings=Settings(anonymized_telemetry=False),
    )
    set_timeout(client, settings.timeout_s)
    return client


def set_timeout(client: ClientAPI, timeout_s: float) -> None:
    """Give the client's requests a timeout; chromadb 1.5 builds its httpx.Client
    with ``timeout=None`` and has no setting for it, so it is set on that client.

    Fails loudly if a chromadb upgrade moves it: a silent no-op would bring back
    searches that hang forever on a stalled server.
    """
    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        raise RuntimeError("chromadb's HttpClient no longer keeps an httpx.Client at "
                           "client._server._session: the Chroma timeout cannot be set")
    session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))


def corpus_fingerprint(documents: Sequence[Document]) -> str:
    """What the stored vectors depend on: every document and the encoder."""
    digest = hashlib.sha256(MODEL_NAME.encode())
    for doc in documents:
        for part in (doc.id, doc.title, doc.text):
            digest.update(b"\0" + part.encode())
    return digest.hexdigest()


def open_collection(client: ClientAPI, name: str) -> Collection:
    """The collection, created with cosine distance and no embedding function."""
    collection = client.get_or_create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": SPACE}}
    )
    # The JSON form: the parsed one warns that embedding_function=None is "legacy".
    space = ((collection.configuration_json or {}).get("hnsw") or {}).get("space")
    if space != SPACE:
        raise RuntimeError(f"Chroma collection {name!r} uses {space} distance, not {SPACE}: "
                           "delete it (or use another DEMO_RAG_CHROMA_COLLECTION)")
    return collection


def load_corpus(
    collection: Collection, documents: Sequence[Document], vectors: Vector, batch_size: int
) -> int:
    """Make the collection hold exactly ``documents``; returns how many were written.

    Idempotent: stable ids (the corpus' own) are upserted, ids no longer in the
    corpus deleted, and the corpus fingerprint kept in the collection's
    metadata, so a restart over the same corpus writes nothing (0).
    """
    fingerprint = corpus_fingerprint(documents)
    metadata = dict(collection.metadata or {})
    if metadata.get(FINGERPRINT_KEY) == fingerprint and collection.count() == len(documents):
        return 0
    batch = max(1, batch_size)  # the server's limit: client.get_max_batch_size()
    for start in range(0, len(documents), batch):
        chunk = documents[start:start + batch]
        collection.upsert(
            ids=[d.id for d in chunk],
            embeddings=vectors[start:start + batch],
            documents=[d.text for d in chunk],
            metadatas=[{"title": d.title, "area": d.area} for d in chunk],
        )
    wanted = {d.id for d in documents}
    stale = [i for i in collection.get(include=[])["ids"] if i not in wanted]
    if stale:
        collection.delete(ids=stale)
    collection.modify(metadata={**metadata, FINGERPRINT_KEY: fingerprint})
    return len(documents)


def hits_of(result: Mapping[str, Any]) -> list[Hit]:
    """A one-query ``QueryResult`` as hits, best first; zero-similarity rows dropped,
    as the numpy scan dropped them (they share no term with the question)."""
    ids = result["ids"][0]
    distances = (result.get("distances") or [[]])[0]
    documents = (result.get("documents") or [[]])[0]
    metadatas = (result.get("metadatas") or [[]])[0]
    hits = []
    for position, doc_id in enumerate(ids):
        score = round(1.0 - float(distances[position]), 6)
        if score > 0.0:
            meta = metadatas[position] or {}
            hits.append(Hit(id=str(doc_id), score=score, title=str(meta.get("title", "")),
                            text=str(documents[position] or "")))
    return hits


class ChromaStore:
    """The corpus in Chroma, and the encoder that embeds questions like its documents."""

    def __init__(
        self, client: ClientAPI, collection: Collection, index: VectorIndex, documents: int,
        written: int = 0,
    ) -> None:
        self.client = client
        self.collection = collection
        self.index = index
        self.documents = documents  # in the collection at start-up
        self.written = written  # by the load at start-up: 0 when it was already there

    @classmethod
    def open(
        cls,
        settings: ChromaSettings,
        documents: Sequence[Document] | None = None,
        on_client: Callable[[ClientAPI], None] | None = None,
    ) -> ChromaStore:
        """Connect, and load ``documents`` (default: the bundled corpus) unless told not to.

        ``on_client`` sees the client before any collection call (to instrument it).
        """
        documents = list(documents if documents is not None else corpus.load())
        index = VectorIndex(documents)  # the IDF is fitted on the corpus, as before
        client = connect(settings)
        set_timeout(client, max(settings.timeout_s, LOAD_TIMEOUT_S))
        if on_client is not None:
            on_client(client)
        collection = open_collection(client, settings.collection)
        started = time.perf_counter()
        written = 0
        if settings.load:
            written = load_corpus(
                collection, documents, index.vectors, client.get_max_batch_size()
            )
        stored = collection.count()
        set_timeout(client, settings.timeout_s)  # from now on: searches
        logger.info("corpus in Chroma", extra={
            "collection": settings.collection, "written": written, "documents": stored,
            "seconds": round(time.perf_counter() - started, 3)})
        return cls(client, collection, index, stored, written)

    def embed(self, text: str) -> Vector:
        return self.index.embed(text)

    def search_vector(self, vector: Vector, top_k: int) -> list[Hit]:
        """The ``top_k`` nearest documents by cosine; raises :class:`ChromaUnavailable`
        when Chroma is down or slower than the timeout."""
        query: list[Sequence[float] | Sequence[int]] = [vector.tolist()]
        try:
            result = self.collection.query(
                query_embeddings=query, n_results=top_k,
                include=["documents", "metadatas", "distances"],
            )
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise ChromaUnavailable(f"Chroma: {type(exc).__name__}: {exc}") from exc
        return hits_of(result)
