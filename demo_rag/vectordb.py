"""rag-vectordb: the retrieval service, between the api and the Chroma server.

``POST /search {query, top_k}`` -> ``{hits: [{id, score, title, text}], model}``.

The question is embedded here (its own ``embeddings`` span, so a slow encoder shows
apart from the database) and searched in Chroma with one ``Collection.query``
through a ``chromadb.HttpClient`` instrumented by ``otel_ml.instrument_chroma``:
that call is the ``retrieval docs`` client span (document count, score
max/min/mean, the retrieval metrics, ``db.*`` attributes), with the HTTP request
to Chroma under it. The tenant arrives in W3C baggage from the api and lands on
every span.

Chroma down, unreachable or slower than ``DEMO_RAG_CHROMA_TIMEOUT_S`` gives a 503
(the spans marked as errors), never a hang. The corpus is loaded into the
collection at start-up (:mod:`demo_rag.chroma_store`); ``/healthz`` answers 503
until that is done, and then 200 with the number of documents.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import httpx
from fastapi import FastAPI, HTTPException
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, Field

import otel_ml
from demo_rag.chroma_store import ChromaSettings, ChromaStore, ChromaUnavailable
from demo_rag.embeddings import MODEL_NAME
from demo_rag.service import new_app, serve
from otel_ml import semconv

SERVICE_NAME: Final = "rag-vectordb"
STARTUP_SPAN: Final = "vectordb start-up"
RETRY_S: Final = 2.0  # between attempts to open the store while Chroma is unavailable
MAX_TOP_K: Final = 50
# A query is at most 4000 characters: 64 KiB leaves room for any JSON escaping of it.
MAX_BODY_BYTES: Final = 64 * 1024

logger = logging.getLogger(__name__)


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(default=4, ge=1, le=MAX_TOP_K)


class SearchHit(BaseModel):
    id: str
    score: float
    title: str
    text: str


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    model: str


def open_store(telemetry: otel_ml.Telemetry) -> ChromaStore:
    """The store from the environment (``CHROMA_URL``...), its client instrumented.

    One ``vectordb start-up`` trace holds the connection and the corpus load (an
    ``upsert`` span per batch when the collection needed it), rather than a
    one-span trace per HTTP request to Chroma.
    """
    with telemetry.tracer.start_as_current_span(STARTUP_SPAN, kind=SpanKind.INTERNAL):
        return ChromaStore.open(
            ChromaSettings.from_env(), on_client=lambda c: otel_ml.instrument_chroma(c, telemetry)
        )


class _Opening:
    """The store, opened in a thread at start-up: the service answers at once (bad
    requests get their 4xx, /healthz a 503) and is healthy once the corpus is in."""

    def __init__(self) -> None:
        self.store: ChromaStore | None = None
        self.error: str = "still connecting to Chroma and loading the corpus"

    def start(self, factory: Callable[[otel_ml.Telemetry], ChromaStore],
              telemetry: otel_ml.Telemetry) -> None:
        def run() -> None:
            while True:
                try:
                    self.store = factory(telemetry)
                    return
                except (ChromaUnavailable, httpx.HTTPError) as exc:
                    # Chroma not up yet, or restarting: keep trying (under compose the
                    # service would otherwise stay up and unhealthy for good).
                    self.error = f"vector database unavailable: {exc}"
                    logger.warning("vector database unavailable; retrying", extra={
                        "error": str(exc)})
                    time.sleep(RETRY_S)
                except Exception as exc:  # a configuration error: /healthz and the log say it
                    self.error = f"cannot open the vector database: {exc}"
                    logger.exception("cannot open the vector database")
                    return
        # A daemon: a start-up still waiting for Chroma never delays a shutdown.
        threading.Thread(target=run, name="open-chroma", daemon=True).start()

    def get(self) -> ChromaStore:
        if self.store is None:
            raise HTTPException(503, self.error)
        return self.store


def create_app(
    telemetry: otel_ml.Telemetry,
    store_factory: Callable[[otel_ml.Telemetry], ChromaStore] = open_store,
) -> FastAPI:
    """The retrieval app; the store opens in the background from start-up."""
    opening = _Opening()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opening.start(store_factory, telemetry)
        yield

    app = new_app(SERVICE_NAME, MAX_BODY_BYTES, lifespan=lifespan)
    store = opening.get

    # Not a Chroma call per poll: its HTTP request would be an untraced-parent span
    # (a one-span trace) every few seconds under docker compose's health check.
    @app.get("/healthz")
    def healthz() -> dict[str, object]:
        return {"status": "ok", "service": SERVICE_NAME, "documents": store().documents}

    # Sync: chromadb's HttpClient blocks, so FastAPI runs this in its thread pool
    # (with the request's OpenTelemetry context).
    @app.post("/search")
    def search(request: SearchRequest) -> SearchResponse:
        db = store()
        with telemetry.tracer.start_as_current_span(
            f"{semconv.OP_EMBEDDINGS} {MODEL_NAME}",
            kind=SpanKind.INTERNAL,
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_EMBEDDINGS,
                semconv.GEN_AI_REQUEST_MODEL: MODEL_NAME,
            },
        ):
            vector = db.embed(request.query)
        try:
            hits = db.search_vector(vector, request.top_k)
        except ChromaUnavailable as exc:
            logger.warning("vector database unavailable", extra={"error": str(exc)})
            raise HTTPException(503, f"vector database unavailable: {exc}") from exc
        return SearchResponse(
            hits=[SearchHit(id=h.id, score=h.score, title=h.title, text=h.text) for h in hits],
            model=MODEL_NAME,
        )

    return app


def main() -> int:
    return serve(SERVICE_NAME, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
