"""instrument_fastapi / instrument_httpx: trace context and the tenant baggage
cross a real HTTP hop, and the edge's tenant overrides a client's.

Propagation tests use uvicorn on a localhost socket: httpx.ASGITransport runs
the app inside the client's own context, where the server would see the
client's span and baggage without any header.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

PIECES = ("streamed", " answer", " pieces")


def build_app(capture: Capture, *, edge_tenant: str | None = None) -> FastAPI:
    """A downstream service; with ``edge_tenant`` it is the edge and sets the tenant."""
    app = FastAPI()
    telemetry = capture.telemetry

    @app.get("/answer")
    async def answer(request: Request) -> dict[str, Any]:
        if edge_tenant is not None:
            with otel_ml.tenant(edge_tenant):
                return _handle(request)
        return _handle(request)

    def _handle(request: Request) -> dict[str, Any]:
        server_span = trace.get_current_span().get_span_context()
        with telemetry.generation("gpt-4o-mini", "openai") as g:
            g.usage(input_tokens=10, output_tokens=5)
        return {
            "trace_id": format_trace_id(server_span.trace_id),
            "tenant": otel_ml.current_tenant(),
            "traceparent": request.headers.get("traceparent"),
            "baggage": request.headers.get("baggage"),
        }

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def pieces() -> AsyncIterator[str]:
            for piece in PIECES:
                yield piece

        with telemetry.generation("gpt-4o-mini", "openai", stream=True) as g:
            return StreamingResponse(g.wrap_async(pieces()), media_type="text/plain")

    otel_ml.instrument_fastapi(app, telemetry)
    return app


def _by_kind(capture: Capture, kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in capture.spans() if span.kind is kind]


def _ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return format_trace_id(span.context.trace_id), format_span_id(span.context.span_id)


def _assert_one_trace_across_the_hop(
    capture: Capture, body: dict[str, Any], root_trace_id: int
) -> None:
    (client_span,) = [s for s in _by_kind(capture, SpanKind.CLIENT) if s.name.startswith("GET")]
    (server_span,) = _by_kind(capture, SpanKind.SERVER)
    generation = capture.span("chat gpt-4o-mini")
    trace_id = format_trace_id(root_trace_id)
    client_trace, client_span_id = _ids(client_span)
    # The header on the wire names the client span as the parent ...
    version, header_trace, header_parent, flags = body["traceparent"].split("-")
    assert (version, header_trace, header_parent) == ("00", trace_id, client_span_id)
    assert int(flags, 16) & 0x01  # sampled
    # ... and the server continues that trace under it.
    assert body["trace_id"] == trace_id == client_trace
    assert server_span.parent is not None and server_span.parent.is_remote
    assert format_span_id(server_span.parent.span_id) == client_span_id
    assert generation.parent is not None
    assert format_span_id(generation.parent.span_id) == _ids(server_span)[1]


class Server:
    """An app served by uvicorn on a free localhost port, in its own thread
    (so nothing reaches it but what is on the wire)."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        host, port = self._socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        """Graceful stop: in-flight requests, and so their server spans, finish first."""
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], Server]]:
    servers: list[Server] = []

    def start(app: FastAPI) -> Server:
        servers.append(Server(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


async def test_context_and_tenant_cross_the_hop(
    otel_capture: Capture, serve: Callable[[FastAPI], Server]
) -> None:
    server = serve(build_app(otel_capture))
    tracer = otel_capture.telemetry.tracer
    async with httpx.AsyncClient(base_url=server.url) as client:
        otel_ml.instrument_httpx(client, otel_capture.telemetry)
        with tracer.start_as_current_span("user request") as root, otel_ml.tenant("acme"):
            response = await client.get("/answer")
    server.stop()

    body = response.json()
    assert response.status_code == 200
    assert body["tenant"] == "acme"
    assert "tenant.id=acme" in body["baggage"]
    _assert_one_trace_across_the_hop(otel_capture, body, root.get_span_context().trace_id)
    (server_span,) = _by_kind(otel_capture, SpanKind.SERVER)
    assert (server_span.attributes or {})[semconv.TENANT_ID] == "acme"
    generation = otel_capture.span("chat gpt-4o-mini")
    assert (generation.attributes or {})[semconv.TENANT_ID] == "acme"
    cost_tenants = {
        (p.attributes or {}).get(semconv.TENANT_ID)
        for p in otel_capture.points(semconv.METRIC_COST)
    }
    assert cost_tenants == {"acme"}


def test_sync_client_carries_context_and_tenant(
    otel_capture: Capture, serve: Callable[[FastAPI], Server]
) -> None:
    server = serve(build_app(otel_capture))
    tracer = otel_capture.telemetry.tracer
    with httpx.Client(base_url=server.url) as client:
        otel_ml.instrument_httpx(client, otel_capture.telemetry)
        with tracer.start_as_current_span("user request") as root, otel_ml.tenant("acme"):
            response = client.get("/answer")
    server.stop()

    body = response.json()
    assert body["tenant"] == "acme"
    _assert_one_trace_across_the_hop(otel_capture, body, root.get_span_context().trace_id)


def test_without_client_instrumentation_nothing_crosses(
    otel_capture: Capture, serve: Callable[[FastAPI], Server]
) -> None:
    """Control for the tests above: without the injected headers, the server
    starts a trace of its own and sees no tenant."""
    server = serve(build_app(otel_capture))
    tracer = otel_capture.telemetry.tracer
    with (
        httpx.Client(base_url=server.url) as client,
        tracer.start_as_current_span("user request") as root,
        otel_ml.tenant("acme"),
    ):
        response = client.get("/answer")
    server.stop()

    body = response.json()
    assert body["traceparent"] is None
    assert body["baggage"] is None
    assert body["tenant"] is None
    assert body["trace_id"] != format_trace_id(root.get_span_context().trace_id)
    (server_span,) = _by_kind(otel_capture, SpanKind.SERVER)
    assert server_span.parent is None


def test_edge_tenant_overrides_the_clients_baggage(
    otel_capture: Capture, serve: Callable[[FastAPI], Server]
) -> None:
    server = serve(build_app(otel_capture, edge_tenant="acme"))
    with httpx.Client(base_url=server.url) as client:
        otel_ml.instrument_httpx(client, otel_capture.telemetry)
        with otel_ml.tenant("evil-corp"):  # an untrusted client claiming a tenant
            response = client.get("/answer")
    server.stop()

    body = response.json()
    assert "tenant.id=evil-corp" in body["baggage"]
    assert body["tenant"] == "acme"
    (server_span,) = _by_kind(otel_capture, SpanKind.SERVER)
    assert (server_span.attributes or {})[semconv.TENANT_ID] == "acme"
    generation = otel_capture.span("chat gpt-4o-mini")
    assert (generation.attributes or {})[semconv.TENANT_ID] == "acme"


def test_global_httpx_instrumentation(
    otel_capture: Capture, serve: Callable[[FastAPI], Server]
) -> None:
    server = serve(build_app(otel_capture))
    otel_ml.instrument_httpx(telemetry=otel_capture.telemetry)
    try:
        with httpx.Client(base_url=server.url) as client, otel_ml.tenant("acme"):
            instrumented = client.get("/answer").json()
    finally:
        HTTPXClientInstrumentor().uninstrument()
    with httpx.Client(base_url=server.url) as client, otel_ml.tenant("acme"):
        plain = client.get("/answer").json()

    assert instrumented["tenant"] == "acme"
    assert instrumented["traceparent"] is not None
    assert plain["traceparent"] is None  # uninstrumented again


async def test_streamed_response_has_no_per_chunk_spans(otel_capture: Capture) -> None:
    app = build_app(otel_capture)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://rag-api"
    ) as client:
        response = await client.get("/stream")

    assert response.text == "".join(PIECES)
    names = [span.name for span in otel_capture.spans()]
    assert sorted(names) == ["GET /stream", "chat gpt-4o-mini"]  # no "http send" spans
    generation = otel_capture.span("chat gpt-4o-mini")
    assert (generation.attributes or {})[semconv.LLM_OUTPUT_CHUNK_COUNT] == len(PIECES)


async def test_instrument_fastapi_defaults_to_the_current_telemetry(otel_capture: Capture) -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    otel_ml.instrument_fastapi(app)  # no telemetry: otel_ml's current one
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        assert (await client.get("/ping")).json() == "pong"
    assert [span.kind for span in otel_capture.spans()] == [SpanKind.SERVER]
