"""The demo's vector database is the stack's Chroma server: what Jaeger shows of it.

- One answer is one trace: the api's server span, the retrieval service's
  server span, and the Chroma client span (``retrieval docs``, from
  ``otel_ml.instrument_chroma``) with its HTTP request under it, all under the
  request's TraceID, each the child of the one before.
- Chroma's own server spans (``chromadb``, exported through the collector by
  its ``CHROMA_OPEN_TELEMETRY__*`` settings) reach Jaeger, but each request to
  Chroma is a trace of its own: Chroma 1.5.9's HTTP server makes its request
  span without extracting the incoming W3C ``traceparent`` (its axum
  ``TraceLayer`` span has no remote parent; only its internal gRPC server
  does that). The test sends Chroma a request with a known ``traceparent``
  and asserts the server span is NOT in that trace, so it fails the day
  Chroma starts continuing trace context (then docs/demo.md must change).
- An empty collection: the retrieval spans say 0 documents and the project's
  RetrievalReturnsNoDocuments alert fires (its ``for:`` shortened, nothing else).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_clients import (
    ALERT_TIMEOUT_S,
    METRIC_TIMEOUT_S,
    TRACE_TIMEOUT_S,
    Alertmanager,
    Jaeger,
    Prometheus,
    Trace,
    poll,
)
from e2e_demo import SERVICES, Asked, Traffic
from e2e_rules import fast_rules

from demo_rag.launcher import launch
from otel_ml import semconv
from otel_ml.cli.stack import Stack
from otel_ml.cli.stack.components import CHROMA_SERVICE_NAME

pytestmark = pytest.mark.e2e

QUERY_ROUTE = "POST /api/v2/tenants/{tenant}/databases/{database}/collections/{collection_id}/query"
ALERT = "RetrievalReturnsNoDocuments"
RULES_FILE = "rag.yml"
FAST_FOR_S = 10
EMPTY_ENV = {
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "LLM_SIM_ERROR_RATE": "0",
    "LLM_SIM_SLOW_RATE": "0",
    "LLM_SIM_TTFT_MS": "5",
    "LLM_SIM_TBT_MS": "1",
}


@pytest.fixture(scope="module")
def answer(traffic: Traffic, jaeger: Jaeger) -> Trace:
    asked = next(a for a in traffic.ledger if not a.stream)
    return jaeger.wait_trace(asked.trace_id, SERVICES)


def test_api_retrieval_service_and_chroma_client_spans_share_one_trace(
    answer: Trace, stack: Stack
) -> None:
    (root,) = answer.roots()
    assert (root.service, root.operation, root.kind) == ("rag-api", "POST /ask", "server")
    search = next(s for s in answer.spans
                  if s.service == "rag-vectordb" and s.operation == "POST /search")
    caller = answer.parent(search)
    assert caller is not None and (caller.service, caller.kind) == ("rag-api", "client")
    assert answer.parent(caller) == root
    (retrieval,) = answer.where(**{semconv.DB_SYSTEM_NAME: "chroma"})
    assert (retrieval.service, retrieval.operation, retrieval.kind) == (
        "rag-vectordb", "retrieval docs", "client")
    assert answer.parent(retrieval) == search
    assert retrieval.tags[semconv.DB_COLLECTION_NAME] == "docs"
    assert retrieval.tags[semconv.SERVER_PORT] == int(stack.urls.chroma.rsplit(":", 1)[1])
    assert retrieval.tags[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 4
    (request,) = [s for s in answer.spans if answer.parent(s) == retrieval]
    assert request.kind == "client" and request.tags.get(semconv.HTTP_REQUEST_METHOD) == "POST"
    # Chroma's server span for this query is not in the request's trace (see below).
    assert CHROMA_SERVICE_NAME not in answer.services


def _chroma_traces(jaeger: Jaeger, http: httpx.Client, **tags: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"service": CHROMA_SERVICE_NAME, "limit": 20, "lookback": "1h"}
    if tags:
        params["tags"] = json.dumps(tags)
    response = http.get(f"{jaeger.base_url}/api/traces", params=params)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_chroma_exports_server_spans_that_do_not_continue_the_callers_trace(
    answer: Trace, jaeger: Jaeger, http: httpx.Client, stack: Stack
) -> None:
    # Chroma's query spans reach Jaeger through the collector...
    queries = poll(
        lambda: [t for t in _chroma_traces(jaeger, http)
                 if any(s["operationName"] == QUERY_ROUTE for s in t["spans"])],
        bool, timeout=TRACE_TIMEOUT_S, what="Chroma's query spans in Jaeger",
    )
    assert all(t["traceID"] != answer.trace_id for t in queries)
    # ...and a request carrying a known traceparent starts a trace of its own.
    caller_trace, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    tenant = f"e2e-{uuid.uuid4().hex[:12]}"
    response = http.get(f"{stack.urls.chroma}/api/v2/tenants/{tenant}",
                        headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"})
    assert response.status_code in (200, 404)
    uri = f"/api/v2/tenants/{tenant}"
    (server,) = poll(lambda: _chroma_traces(jaeger, http, **{"http.uri": uri}), bool,
                     timeout=TRACE_TIMEOUT_S, what=f"Chroma's span for GET {uri}")
    request_span = next(s for s in server["spans"] if s["operationName"].startswith("GET "))
    assert server["traceID"] != caller_trace  # the incoming context is not extracted
    assert request_span.get("references", []) == []  # a root span: no remote parent
    assert jaeger.trace(caller_trace) is None


# --- an empty collection fires the no-documents alert ----------------------------------------


@pytest.fixture
def fast_rag_rules(stack: Stack, http: httpx.Client) -> Iterator[None]:
    """rag.yml with only the RetrievalReturnsNoDocuments ``for:`` shortened."""
    with fast_rules(stack, http, RULES_FILE, [ALERT], FAST_FOR_S, only_these=True):
        yield


def test_an_empty_collection_fires_retrieval_returns_no_documents(
    stack: Stack, tmp_path: Path, jaeger: Jaeger, prometheus: Prometheus,
    alertmanager: Alertmanager, traffic: Traffic, fast_rag_rules: None,
) -> None:
    collection = f"empty-{uuid.uuid4().hex[:10]}"  # its own gen_ai_data_source_id
    env = {**EMPTY_ENV, "DEMO_RAG_CHROMA_COLLECTION": collection, "DEMO_RAG_CHROMA_LOAD": "0"}
    with launch(otlp_endpoint=stack.urls.otlp_http, tenants=("hollow",), env=env,
                log_dir=tmp_path / "logs", chroma_url=stack.urls.chroma) as services:
        key = services.api_keys["hollow"]
        trace_ids = []
        deadline = time.monotonic() + ALERT_TIMEOUT_S + METRIC_TIMEOUT_S

        def firing() -> list[dict[str, Any]]:
            # Keep retrievals coming while waiting: the rule reads a 10 min rate.
            response = httpx.post(f"{services.api}/ask", json={"question": "Any docs?"},
                                  headers={"X-API-Key": key}, timeout=60)
            assert response.status_code == 200, response.text
            body = response.json()
            # Into the session ledger: the metric tests compare every rag-api series with it.
            traffic.record([Asked("hollow", body["trace_id"], False,
                                  body["usage"]["prompt_tokens"],
                                  body["usage"]["completion_tokens"])])
            assert body["sources"] == []
            trace_ids.append(body["trace_id"])
            return [a for a in prometheus.alerts()
                    if a["labels"].get("alertname") == ALERT and a["state"] == "firing"
                    and a["labels"].get("gen_ai_data_source_id") == collection]

        fired = poll(firing, bool, timeout=deadline - time.monotonic(), interval=2.0,
                     what=f"{ALERT} firing for {collection}")
    assert fired[0]["labels"]["severity"] == "warning"
    sent = poll(lambda: [a for a in alertmanager.alerts(ALERT)
                         if a["labels"].get("gen_ai_data_source_id") == collection],
                bool, timeout=ALERT_TIMEOUT_S, what=f"{ALERT} in Alertmanager")
    assert sent[0]["status"]["state"] == "active"
    trace = jaeger.wait_trace(trace_ids[0], SERVICES)
    (retrieval,) = trace.where(**{semconv.DB_SYSTEM_NAME: "chroma"})
    assert retrieval.operation == f"retrieval {collection}"
    assert retrieval.tags[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT] == 0
