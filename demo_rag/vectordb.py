"""rag-vectordb: cosine search over the bundled corpus.

``POST /search {query, top_k}`` -> ``{hits: [{id, score, title, text}], model}``.

The search is wrapped in an otel-ml ``retrieval docs`` span (document count, score
max/min/mean, and the retrieval metrics); the query embedding gets its own
``embeddings`` span so a slow encoder would show up separately from the scan. The
tenant arrives in W3C baggage from the api service and lands on both spans.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, Field

import otel_ml
from demo_rag import corpus
from demo_rag.embeddings import MODEL_NAME, VectorIndex
from demo_rag.service import new_app, serve
from otel_ml import semconv

SERVICE_NAME: Final = "rag-vectordb"
DATA_SOURCE: Final = "docs"
MAX_TOP_K: Final = 50
# A query is at most 4000 characters: 64 KiB leaves room for any JSON escaping of it.
MAX_BODY_BYTES: Final = 64 * 1024


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


def create_app(telemetry: otel_ml.Telemetry, index: VectorIndex | None = None) -> FastAPI:
    """The vectordb app; ``index`` defaults to the bundled corpus."""
    index = index if index is not None else VectorIndex(corpus.load())
    app = new_app(SERVICE_NAME, MAX_BODY_BYTES)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "service": SERVICE_NAME, "documents": len(index)}

    @app.post("/search")
    async def search(request: SearchRequest) -> SearchResponse:
        with telemetry.retrieval(DATA_SOURCE, query=request.query, top_k=request.top_k) as r:
            with telemetry.tracer.start_as_current_span(
                f"{semconv.OP_EMBEDDINGS} {MODEL_NAME}",
                kind=SpanKind.INTERNAL,
                attributes={
                    semconv.GEN_AI_OPERATION_NAME: semconv.OP_EMBEDDINGS,
                    semconv.GEN_AI_REQUEST_MODEL: MODEL_NAME,
                },
            ):
                vector = index.embed(request.query)
            hits = index.search_vector(vector, request.top_k)
            r.record(hits)
        return SearchResponse(
            hits=[SearchHit(id=h.id, score=h.score, title=h.title, text=h.text) for h in hits],
            model=MODEL_NAME,
        )

    return app


def main() -> int:
    return serve(SERVICE_NAME, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
