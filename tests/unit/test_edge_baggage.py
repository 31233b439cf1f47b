"""Issue 13 item 1: a client must not choose its tenant through baggage.

The collector's span_metrics connector has ``tenant.id`` as a dimension, so a tenant on
an unauthenticated server span becomes a Prometheus series any client can mint.

The OpenTelemetry W3C baggage propagator percent-decodes (``unquote_plus``) and strips
baggage keys after splitting, so ``tenant%2Eid`` and ``tenant.id+`` both become
``tenant.id`` once extracted. And the OpenTelemetry ASGI getter decodes a header value
that is not valid UTF-8 with ``unicode_escape``: ``tenant\\x2eid=evil,z=\\xff`` arrives at
the propagator as ``tenant.id=evil``. The fuzzers below build raw header bytes from
those ingredients and check what the real getter and propagator make of the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter

from demo_rag.api import Settings, create_app
from demo_rag.tenants import TenantDirectory
from otel_ml import semconv, strip_client_tenant
from otel_ml._edge import edge
from otel_ml.instrumentation import instrument_fastapi
from otel_ml.testing import Capture

SPOOFED = "mallory"
# The bypass reported in issue 13: a literal backslash escape plus one invalid byte.
ESCAPED_BYPASS = b"tenant\\x2eid=evil,z=\xff"


# Raw baggage headers from a grammar: members whose key spells tenant.id with each
# character written in any form some decoder understands (literal, percent, Python
# escapes), padded with whitespace, '+' or their encodings; values and other members
# from arbitrary bytes (invalid UTF-8 included). The fuzzers search raw header bytes,
# not a list of known spellings.
def _spellings(char: str) -> st.SearchStrategy[bytes]:
    code = ord(char)
    return st.sampled_from(
        [
            char.encode(),
            f"%{code:02X}".encode(),
            f"%{code:02x}".encode(),
            f"\\x{code:02x}".encode(),
            f"\\u{code:04x}".encode(),
            f"\\{code:03o}".encode(),
        ]
    )


_PAD = st.lists(
    st.sampled_from([b" ", b"\t", b"+", b"%20", b"%09", b"%C2%A0", b"\\\n"]), max_size=2
).map(b"".join)
_TENANT_KEY = st.tuples(_PAD, *(_spellings(c) for c in semconv.TENANT_ID), _PAD).map(b"".join)
_VALUE_PIECES = st.sampled_from([b"evil", b"\xff", b"\\", b"%", b"\xc3\xa9", b";p=1", b" "])
_VALUE = st.lists(_VALUE_PIECES | st.binary(max_size=2), max_size=4).map(b"".join)
_MEMBER = st.tuples(
    _TENANT_KEY | st.binary(max_size=6), st.sampled_from([b"=", b" = ", b""]), _VALUE
).map(b"".join)
RAW_BAGGAGE = st.lists(_MEMBER | st.binary(max_size=4), min_size=1, max_size=4).map(b",".join)


@pytest.fixture
def capture() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.shutdown()


def _settings() -> Settings:
    # Unreachable upstreams: the requests below are rejected before any call.
    return Settings(
        vectordb_url="http://127.0.0.1:9", llm_url="http://127.0.0.1:9", drift_reference=None
    )


def _tenant_the_propagator_reads(headers: list[tuple[bytes, bytes]]) -> object:
    """What the FastAPI instrumentation would put in the request's baggage."""
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    try:
        context = propagate.extract(scope, context=Context(), getter=asgi_getter)
    except UnicodeDecodeError:  # the item-3 crash: no span, so no tenant either
        return None
    return baggage.get_baggage(semconv.TENANT_ID, context)


async def _headers_after(wrapper: Any, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["headers"])

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "method": "POST",
        "headers": headers,
        "query_string": b"",
        "client": ("203.0.113.9", 4000),
    }
    await wrapper(app)(scope, None, send)
    return seen


def test_the_reported_bypass_reaches_the_propagator_as_a_tenant() -> None:
    """The reproduction: without stripping, the escaped key becomes tenant.id."""
    assert _tenant_the_propagator_reads([(b"baggage", ESCAPED_BYPASS)]) == "evil"


async def test_strip_client_tenant_stops_the_escaped_bypass() -> None:
    [headers] = await _headers_after(strip_client_tenant, [(b"baggage", ESCAPED_BYPASS)])
    assert _tenant_the_propagator_reads(headers) is None


@settings(
    max_examples=1000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(raw=RAW_BAGGAGE, second=st.none() | RAW_BAGGAGE)
async def test_no_raw_baggage_survives_stripping_as_a_tenant(
    raw: bytes, second: bytes | None
) -> None:
    headers = [(b"baggage", raw)] + ([(b"Baggage", second)] if second is not None else [])
    [cleaned] = await _headers_after(strip_client_tenant, headers)
    assert _tenant_the_propagator_reads(cleaned) is None


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(raw=RAW_BAGGAGE)
async def test_the_edge_passes_no_client_baggage_at_all(raw: bytes) -> None:
    # Untrusted (the default): baggage is dropped whole, or the request is refused
    # (400, app not called) when the bytes are not UTF-8.
    seen = await _headers_after(lambda app: edge(app, trusted=[]), [(b"baggage", raw)])
    assert all(name != b"baggage" for headers in seen for name, _ in headers)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(raw=RAW_BAGGAGE)
async def test_a_trusted_callers_baggage_loses_its_tenant(raw: bytes) -> None:
    seen = await _headers_after(
        lambda app: edge(app, trusted=["203.0.113.0/24"]), [(b"baggage", raw)]
    )
    assert all(_tenant_the_propagator_reads(headers) is None for headers in seen)


@pytest.mark.parametrize(
    "baggage_value",
    [
        f"tenant.id={SPOOFED}".encode(),  # the plain form (control case)
        f"tenant%2Eid={SPOOFED}".encode(),  # percent-encoded key
        f"tenant%2eid={SPOOFED}".encode(),
        f"tenant.id+={SPOOFED}".encode(),  # '+' decodes to a space, then the key is stripped
        f"tenant%2Eid={SPOOFED},session=abc".encode(),
        ESCAPED_BYPASS,  # issue 13 item 1
    ],
)
async def test_an_unauthenticated_server_span_never_carries_a_client_tenant(
    capture: Capture, baggage_value: bytes
) -> None:
    app = create_app(capture.telemetry, _settings(), TenantDirectory({"key-acme": "acme"}))
    instrument_fastapi(app, capture.telemetry)
    transport = httpx.ASGITransport(app=strip_client_tenant(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.post(
            "/ask", json={"question": "hi"}, headers={"baggage": baggage_value}
        )
    assert response.status_code == 401
    servers = [s for s in capture.exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert servers, "no server span recorded"
    tenants = {(s.attributes or {}).get(semconv.TENANT_ID) for s in servers}
    assert tenants == {None}, f"client-chosen tenant reached the server span: {tenants}"
