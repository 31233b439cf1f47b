"""Issue 13 items 4 to 6: what a request body may cost the demo services.

4. ``NaN``, ``Infinity`` and ``1e400`` are accepted by Python's JSON parser; FastAPI's
   422 then echoed them back and could not serialise them: a 500. They are now refused
   while parsing, with a 422 saying why.
5. ``/ask`` read and parsed a body of any size before authenticating. Now an unknown
   key gets its 401 before a byte of the body is read, a body past the cap a 413, and
   the llm service caps message count and length.
6. The llm service put the client's ``model`` string on metric labels and on the span
   attribute the collector's span metrics are keyed on. Unknown models now fold into a
   bounded set, as tenants do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.trace import SpanKind

from demo_rag import api, llm, vectordb
from demo_rag.service import asgi_app
from demo_rag.simulator import DEFAULT_MODEL, SimConfig, SimulatedModel
from demo_rag.tenants import TenantDirectory
from otel_ml import semconv
from otel_ml.testing import Capture

KEY = {api.API_KEY_HEADER: "key-acme"}
JSON = {"content-type": "application/json"}


@pytest.fixture
def capture() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.shutdown()


def _api(capture: Capture) -> FastAPI:
    settings = api.Settings(
        vectordb_url="http://127.0.0.1:9", llm_url="http://127.0.0.1:9", drift_reference=None
    )
    return api.create_app(capture.telemetry, settings, TenantDirectory({"key-acme": "acme"}))


def _llm(capture: Capture) -> FastAPI:
    fast = SimConfig(
        ttft_median_s=0.001,
        ttft_sigma=0.0,
        tbt_median_s=0.0,
        tbt_sigma=0.0,
        error_rate=0.0,
        slow_rate=0.0,
        seed=1,
    )
    return llm.create_app(capture.telemetry, llm.SimulatedBackend(SimulatedModel(fast)))


@contextlib.asynccontextmanager
async def _served(app: FastAPI, capture: Capture, public: bool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=asgi_app(app, capture.telemetry, public=public))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://svc") as client,
    ):
        yield client


_CHAT = '{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":%s}'
NON_FINITE_BODIES = [
    pytest.param("llm", "/v1/chat/completions", _CHAT, id="chat"),
    pytest.param("vectordb", "/search", '{"query":"dns","top_k":%s}', id="search"),
    pytest.param("api", "/ask", '{"question":"hi","stream":false,"x":%s}', id="ask"),
    pytest.param("api", "/feedback", '{"trace_id":"' + "ab" * 16 + '","score":%s}', id="feedback"),
]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize(("service", "path", "template"), NON_FINITE_BODIES)
async def test_non_finite_numbers_are_refused_with_422(
    capture: Capture, service: str, path: str, template: str, number: str
) -> None:
    app = {"api": _api, "vectordb": lambda c: vectordb.create_app(c.telemetry), "llm": _llm}[
        service
    ](capture)
    async with _served(app, capture, public=service == "api") as client:
        response = await client.post(path, content=template % number, headers={**KEY, **JSON})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert "non-finite" in error["ctx"]["error"]


@pytest.mark.parametrize("depth", [33, 474, 5_000])
@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("llm", "/v1/chat/completions"),
        ("vectordb", "/search"),
        ("api", "/ask"),
    ],
)
async def test_deep_nesting_is_refused_with_4xx(
    capture: Capture, service: str, path: str, depth: int
) -> None:
    """Found by the fuzzer: 474 nested lists gave the llm a 500 (RecursionError while
    FastAPI encoded its 422)."""
    app = {"api": _api, "vectordb": lambda c: vectordb.create_app(c.telemetry), "llm": _llm}[
        service
    ](capture)
    body = b'{"query":' + b"[" * depth + b"]" * depth + b"}"
    async with _served(app, capture, public=service == "api") as client:
        response = await client.post(path, content=body, headers={**KEY, **JSON})
    assert response.status_code in (400, 422), response.text[:200]


async def _counting(total: int, chunk: int, read: list[int]) -> AsyncIterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        read[0] += chunk
        yield block


@pytest.mark.parametrize(
    ("headers", "status", "cap"),
    [({}, 401, 0), (KEY, 413, None)],
    ids=["anonymous-reads-nothing", "authenticated-reads-up-to-the-cap"],
)
async def test_a_100_mb_body_is_not_read(
    capture: Capture, headers: dict[str, str], status: int, cap: int | None
) -> None:
    read = [0]
    async with _served(_api(capture), capture, public=True) as client:
        response = await client.post(
            "/ask", content=_counting(100 * 2**20, 2**16, read), headers={**headers, **JSON}
        )
    assert response.status_code == status
    # The ASGI transport may pull a chunk or two ahead of the app.
    assert read[0] <= (api.MAX_BODY_BYTES if cap is None else cap) + 2 * 2**16
    [span] = [s for s in capture.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert (span.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE] == status


async def test_a_declared_oversized_body_is_refused_before_reading(capture: Capture) -> None:
    read = [0]
    async with _served(_api(capture), capture, public=True) as client:
        response = await client.post(
            "/ask",
            content=_counting(2**20, 2**16, read),
            headers={**KEY, **JSON, "content-length": str(2**20)},
        )
    assert response.status_code == 413
    assert read[0] <= 2 * 2**16


async def test_the_api_still_answers_a_body_within_the_cap(capture: Capture) -> None:
    async with _served(_api(capture), capture, public=True) as client:
        response = await client.post("/ask", json={"question": "x" * 2001}, headers=KEY)
    assert response.status_code == 422  # the question's own limit, not the body cap


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi"}] * (llm.MAX_MESSAGES + 1),
        [{"role": "user", "content": "x" * (llm.MAX_MESSAGE_CHARS + 1)}],
    ],
    ids=["too-many", "too-long"],
)
async def test_the_llm_caps_message_count_and_length(
    capture: Capture, messages: list[dict[str, Any]]
) -> None:
    async with _served(_llm(capture), capture, public=False) as client:
        response = await client.post("/v1/chat/completions", json={"messages": messages})
    assert response.status_code in (413, 422), response.text


async def test_the_llm_answers_at_its_caps(capture: Capture) -> None:
    messages = [{"role": "user", "content": "x" * 1000}] * llm.MAX_MESSAGES
    async with _served(_llm(capture), capture, public=False) as client:
        response = await client.post(
            "/v1/chat/completions", json={"messages": messages, "max_tokens": 2}
        )
    assert response.status_code == 200, response.text


async def test_client_chosen_models_do_not_mint_series(capture: Capture) -> None:
    async with _served(_llm(capture), capture, public=False) as client:
        for index in range(3 * llm.MAX_MODEL_LABELS):
            body = {
                "model": f"attacker-{index}",
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "hi"}],
            }
            assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        known = {
            "model": DEFAULT_MODEL,
            "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}],
        }
        assert (await client.post("/v1/chat/completions", json=known)).status_code == 200
    points = capture.points(semconv.METRIC_SERVER_REQUEST_DURATION)
    labels = {(p.attributes or {})[semconv.GEN_AI_REQUEST_MODEL] for p in points}
    assert len(labels) <= llm.MAX_MODEL_LABELS + 2
    assert {DEFAULT_MODEL, semconv.LABEL_OVERFLOW} <= labels
    # The collector's span metrics are keyed on the server span's request model too.
    servers = [s for s in capture.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    span_models = {(s.attributes or {})[semconv.GEN_AI_REQUEST_MODEL] for s in servers}
    assert span_models <= labels
