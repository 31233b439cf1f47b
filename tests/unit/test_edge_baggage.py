"""Review findings on demo_rag.api: the edge must not let a client choose its tenant.

The collector's span_metrics connector has ``tenant.id`` as a dimension, so a tenant on
an unauthenticated server span becomes a Prometheus series any client can mint.

The OpenTelemetry W3C baggage propagator percent-decodes (``unquote_plus``) and strips
baggage keys after splitting, so ``tenant%2Eid`` and ``tenant.id+`` both become
``tenant.id`` once extracted. The edge filter compares raw bytes only.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo_rag.api import Settings, create_app
from demo_rag.tenants import TenantDirectory
from otel_ml import semconv, strip_client_tenant
from otel_ml.instrumentation import instrument_fastapi
from otel_ml.testing import Capture

SPOOFED = "mallory"


@pytest.fixture
def capture() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.shutdown()


def _settings() -> Settings:
    # Unreachable upstreams: the requests below are rejected before any call.
    return Settings(vectordb_url="http://127.0.0.1:9", llm_url="http://127.0.0.1:9",
                    drift_reference=None)


@pytest.mark.parametrize("baggage", [
    f"tenant.id={SPOOFED}",            # the plain form: stripped today (control case)
    f"tenant%2Eid={SPOOFED}",          # percent-encoded key
    f"tenant%2eid={SPOOFED}",
    f"tenant.id+={SPOOFED}",           # '+' decodes to a space, then the key is stripped
    f"tenant%2Eid={SPOOFED},session=abc",
])
async def test_an_unauthenticated_server_span_never_carries_a_client_tenant(
    capture: Capture, baggage: str
) -> None:
    app = create_app(capture.telemetry, _settings(), TenantDirectory({"key-acme": "acme"}))
    instrument_fastapi(app, capture.telemetry)
    transport = httpx.ASGITransport(app=strip_client_tenant(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.post("/ask", json={"question": "hi"},
                                     headers={"baggage": baggage})
    assert response.status_code == 401
    servers = [s for s in capture.exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert servers, "no server span recorded"
    tenants = {(s.attributes or {}).get(semconv.TENANT_ID) for s in servers}
    assert tenants == {None}, f"client-chosen tenant reached the server span: {tenants}"

