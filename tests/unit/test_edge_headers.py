"""Issue 13 item 3: undecodable header bytes give a 400 and a span, not a 500.

The OpenTelemetry ASGI layer decodes a header value that is not valid UTF-8 with
``unicode_escape``, which raises on a backslash not followed by a valid escape: the
request failed with 500 before any span existed. Every demo service now answers it at
its edge with 400 and a server span of the edge's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.trace import SpanKind, StatusCode

from demo_rag import llm, vectordb
from demo_rag.api import Settings, create_app
from demo_rag.service import asgi_app
from demo_rag.tenants import TenantDirectory
from otel_ml import semconv
from otel_ml._edge import INVALID_HEADER
from otel_ml.testing import Capture

HOSTILE = b"00-a\\x\xff"


@pytest.fixture
def capture() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.shutdown()


def _api(capture: Capture) -> FastAPI:
    settings = Settings(
        vectordb_url="http://127.0.0.1:9", llm_url="http://127.0.0.1:9", drift_reference=None
    )
    return create_app(capture.telemetry, settings, TenantDirectory({"key-acme": "acme"}))


@pytest.mark.parametrize("header", ["traceparent", "baggage", "user-agent", "x-anything"])
@pytest.mark.parametrize(
    ("service", "path", "public"),
    [
        ("api", "/ask", True),
        ("vectordb", "/search", False),
        ("llm", "/v1/chat/completions", False),
    ],
)
async def test_undecodable_header_bytes_get_a_400_and_a_span(
    capture: Capture, header: str, service: str, path: str, public: bool
) -> None:
    app = {
        "api": _api,
        "vectordb": lambda c: vectordb.create_app(c.telemetry),
        "llm": lambda c: llm.create_app(c.telemetry),
    }[service](capture)
    transport = httpx.ASGITransport(app=asgi_app(app, capture.telemetry, public=public))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        response = await client.post(path, json={}, headers={header: HOSTILE})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]
    [span] = [s for s in capture.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert span.name == "POST"
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {}) == {
        semconv.HTTP_REQUEST_METHOD: "POST",
        semconv.URL_SCHEME: "http",
        semconv.HTTP_RESPONSE_STATUS_CODE: 400,
        semconv.ERROR_TYPE: INVALID_HEADER,
    }


async def test_a_valid_utf8_header_is_served_as_before(capture: Capture) -> None:
    transport = httpx.ASGITransport(app=asgi_app(_api(capture), capture.telemetry, public=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        response = await client.post(
            "/ask", json={"question": "hi"}, headers={"user-agent": "naïve/1.0".encode()}
        )
    assert response.status_code == 401
