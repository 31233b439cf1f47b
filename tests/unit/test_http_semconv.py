"""instrument_fastapi / instrument_httpx emit the stable HTTP conventions
(http.server.request.duration and http.client.request.duration in seconds,
http.request.method, http.response.status_code, http.route), and a user's own
OTEL_SEMCONV_STABILITY_OPT_IN (http/dup, ...) still decides when it names an
HTTP mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability as Stability,
)
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetryStabilitySignalType as Signal,
)
from opentelemetry.instrumentation._semconv import _StabilityMode as Mode
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.trace import SpanKind

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

# The pre-1.21 names opentelemetry-instrumentation 0.66b2 emits by default.
OLD_SERVER_DURATION = "http.server.duration"
OLD_CLIENT_DURATION = "http.client.duration"
OLD_METHOD = "http.method"
OLD_STATUS_CODE = "http.status_code"


@pytest.fixture
def fresh_opt_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], None]]:
    """As in a new process: the variable set (or not) before anything reads it.
    monkeypatch puts the process-wide state back after the test."""
    monkeypatch.setattr(Stability, "_initialized", False)
    monkeypatch.setattr(Stability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})

    def set_variable(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(semconv.OTEL_SEMCONV_STABILITY_OPT_IN, raising=False)
        else:
            monkeypatch.setenv(semconv.OTEL_SEMCONV_STABILITY_OPT_IN, value)

    yield set_variable


def _app(capture: Capture) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    otel_ml.instrument_fastapi(app, capture.telemetry)
    return app


async def _get(app: FastAPI, *paths: str) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return [(await client.get(path)).status_code for path in paths]


def _metrics(capture: Capture) -> dict[str, tuple[str, list[HistogramDataPoint]]]:
    """Every metric the capture holds: name -> (unit, histogram points)."""
    found: dict[str, tuple[str, list[HistogramDataPoint]]] = {}
    data = capture.reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = [p for p in metric.data.data_points if isinstance(p, HistogramDataPoint)]
                found[metric.name] = (metric.unit or "", points)
    return found


def _by_status(points: list[HistogramDataPoint], key: str) -> dict[Any, dict[str, Any]]:
    return {dict(p.attributes or {}).get(key): dict(p.attributes or {}) for p in points}


async def test_fastapi_server_metric_is_the_stable_one_in_seconds(
    otel_capture: Capture, fresh_opt_in: Callable[[str | None], None]
) -> None:
    fresh_opt_in(None)
    app = _app(otel_capture)
    assert await _get(app, "/items/7", "/items/8", "/items/nan") == [200, 200, 422]

    metrics = _metrics(otel_capture)
    assert OLD_SERVER_DURATION not in metrics
    unit, points = metrics[semconv.METRIC_HTTP_SERVER_REQUEST_DURATION]
    assert unit == "s"
    by_status = _by_status(points, semconv.HTTP_RESPONSE_STATUS_CODE)
    assert set(by_status) == {200, 422}
    ok = by_status[200]
    assert ok[semconv.HTTP_REQUEST_METHOD] == "GET"
    assert ok[semconv.HTTP_ROUTE] == "/items/{item_id}"
    assert ok[semconv.URL_SCHEME] == "http"
    assert OLD_METHOD not in ok and OLD_STATUS_CODE not in ok
    (ok_point,) = [p for p in points if dict(p.attributes or {}) == ok]
    assert ok_point.count == 2
    # In seconds: an in-process request takes well under one (in ms it would not).
    assert 0 < ok_point.sum < 1

    (server,) = [s for s in otel_capture.spans() if s.kind is SpanKind.SERVER][:1]
    attributes = dict(server.attributes or {})
    assert attributes[semconv.HTTP_REQUEST_METHOD] == "GET"
    assert attributes[semconv.HTTP_ROUTE] == "/items/{item_id}"
    assert OLD_METHOD not in attributes


async def test_a_users_http_dup_keeps_both_conventions(
    otel_capture: Capture, fresh_opt_in: Callable[[str | None], None]
) -> None:
    fresh_opt_in("http/dup")
    assert await _get(_app(otel_capture), "/items/7") == [200]

    metrics = _metrics(otel_capture)
    assert metrics[semconv.METRIC_HTTP_SERVER_REQUEST_DURATION][0] == "s"
    old_unit, old_points = metrics[OLD_SERVER_DURATION]
    assert old_unit == "ms"
    assert _by_status(old_points, OLD_STATUS_CODE)[200][OLD_METHOD] == "GET"


async def test_other_opt_ins_of_the_user_are_kept(
    otel_capture: Capture, fresh_opt_in: Callable[[str | None], None]
) -> None:
    fresh_opt_in("gen_ai_latest_experimental, database")
    assert await _get(_app(otel_capture), "/items/7") == [200]

    assert OLD_SERVER_DURATION not in _metrics(otel_capture)
    mapping = Stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
    assert mapping[Signal.HTTP] is Mode.HTTP
    assert mapping[Signal.GEN_AI] is Mode.GEN_AI_LATEST_EXPERIMENTAL
    assert mapping[Signal.DATABASE] is Mode.DATABASE


def test_httpx_client_metric_is_the_stable_one_in_seconds(
    otel_capture: Capture, fresh_opt_in: Callable[[str | None], None]
) -> None:
    fresh_opt_in(None)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201 if request.method == "POST" else 503, json={})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        otel_ml.instrument_httpx(client, otel_capture.telemetry)
        assert client.post("http://llm.test:8002/v1/chat").status_code == 201
        assert client.get("http://llm.test:8002/health").status_code == 503

    metrics = _metrics(otel_capture)
    assert OLD_CLIENT_DURATION not in metrics
    unit, points = metrics[semconv.METRIC_HTTP_CLIENT_REQUEST_DURATION]
    assert unit == "s"
    by_status = _by_status(points, semconv.HTTP_RESPONSE_STATUS_CODE)
    assert by_status[201][semconv.HTTP_REQUEST_METHOD] == "POST"
    assert by_status[503][semconv.HTTP_REQUEST_METHOD] == "GET"
    assert by_status[201][semconv.SERVER_ADDRESS] == "llm.test"
    assert by_status[201][semconv.SERVER_PORT] == 8002
