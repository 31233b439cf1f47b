"""Issue 13 item 2: an untrusted client must not steer tracing at the public edge.

Before the fix a ``traceparent`` with flags ``00`` made the api's server span
unsampled (gone from traces and span metrics), and a client could pick its trace id,
join another tenant's answer and get that tenant's feedback refused with 403. The
edge now starts a new trace per request and keeps the inbound span as a link; a
trusted caller (by configured network) is still continued.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from demo_rag.api import TRACE_ID_HEADER, Settings, create_app
from demo_rag.service import asgi_app
from demo_rag.tenants import TenantDirectory
from otel_ml._edge import TRUSTED_NETWORKS_ENV, edge
from otel_ml.instrumentation import instrument_fastapi
from otel_ml.testing import Capture

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
KEYS = {"key-acme": "acme", "key-globex": "globex"}


@pytest.fixture
def capture() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.shutdown()


@contextlib.asynccontextmanager
async def _client(capture: Capture, public: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The api as served, started (its lifespan opens the upstream clients).

    Unreachable upstreams: /ask fails fast with 502, after remembering its trace id.
    """
    settings = Settings(
        vectordb_url="http://127.0.0.1:9", llm_url="http://127.0.0.1:9", drift_reference=None
    )
    app = create_app(capture.telemetry, settings, TenantDirectory(KEYS))
    transport = httpx.ASGITransport(app=asgi_app(app, capture.telemetry, public=public))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        yield client


def _server_spans(capture: Capture) -> list[ReadableSpan]:
    return [s for s in capture.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def _traceparent(trace_id: str = CLIENT_TRACE, flags: str = "01") -> str:
    return f"00-{trace_id}-{CLIENT_SPAN}-{flags}"


@pytest.mark.parametrize("flags", ["00", "01"])
async def test_a_client_cannot_switch_tracing_off_nor_pick_the_trace(
    capture: Capture, flags: str
) -> None:
    async with _client(capture) as client:
        response = await client.post(
            "/ask", json={"question": "hi"}, headers={"traceparent": _traceparent(flags=flags)}
        )
    assert response.status_code == 401
    [span] = _server_spans(capture)
    assert span.context.trace_flags.sampled
    assert format(span.context.trace_id, "032x") != CLIENT_TRACE
    assert span.parent is None
    # The caller's span is kept as a link, so its own trace can still be joined to ours.
    [link] = span.links
    assert (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) == (
        CLIENT_TRACE,
        CLIENT_SPAN,
    )


async def test_joining_another_tenants_trace_cannot_block_its_feedback(capture: Capture) -> None:
    async with _client(capture) as client:
        victim = await client.post(
            "/ask", json={"question": "hi"}, headers={"X-API-Key": "key-acme"}
        )
        victim_trace = victim.headers[TRACE_ID_HEADER]
        attacker = await client.post(
            "/ask",
            json={"question": "hi"},
            headers={"X-API-Key": "key-globex", "traceparent": _traceparent(victim_trace)},
        )
        feedback = await client.post(
            "/feedback",
            json={"trace_id": victim_trace, "score": 1.0},
            headers={"X-API-Key": "key-acme"},
        )
    assert attacker.headers[TRACE_ID_HEADER] != victim_trace
    assert feedback.status_code == 202, feedback.text
    assert feedback.json()["linked"] is True


async def test_an_internal_service_continues_the_callers_trace(capture: Capture) -> None:
    async with _client(capture, public=False) as client:
        await client.post("/ask", json={"question": "hi"}, headers={"traceparent": _traceparent()})
    [span] = _server_spans(capture)
    assert format(span.context.trace_id, "032x") == CLIENT_TRACE
    assert span.links == ()


async def test_trusted_networks_come_from_the_environment(
    capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        vectordb_url="http://127.0.0.1:9", llm_url="http://127.0.0.1:9", drift_reference=None
    )
    app = create_app(capture.telemetry, settings, TenantDirectory(KEYS))
    instrument_fastapi(app, capture.telemetry)
    # httpx's ASGI transport reports the client as 127.0.0.1.
    monkeypatch.setenv(TRUSTED_NETWORKS_ENV, "10.0.0.0/8, 127.0.0.0/8")
    trusted = edge(app, telemetry=capture.telemetry)
    monkeypatch.setenv(TRUSTED_NETWORKS_ENV, "10.0.0.0/8,not-a-network")
    untrusted = edge(app, telemetry=capture.telemetry)
    for wrapped in (trusted, untrusted):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=wrapped), base_url="http://api"
        ) as client:
            await client.post(
                "/ask", json={"question": "hi"}, headers={"traceparent": _traceparent()}
            )
    first, second = _server_spans(capture)
    assert format(first.context.trace_id, "032x") == CLIENT_TRACE
    assert format(second.context.trace_id, "032x") != CLIENT_TRACE


async def test_an_invalid_traceparent_starts_a_new_trace_without_a_link(capture: Capture) -> None:
    async with _client(capture) as client:
        response = await client.post(
            "/ask", json={"question": "hi"}, headers={"traceparent": "00-zz-yy-01"}
        )
    assert response.status_code == 401
    [span] = _server_spans(capture)
    assert span.links == ()
