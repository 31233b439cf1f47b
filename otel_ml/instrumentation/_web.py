"""Cross-service propagation through the ecosystem's own instrumentations.

Trace context and W3C baggage (which carries ``tenant.id``) cross service
boundaries via opentelemetry-instrumentation-fastapi on the server side and
opentelemetry-instrumentation-httpx on the client side, using the global
propagators (``tracecontext,baggage`` unless ``OTEL_PROPAGATORS`` says otherwise).

Both emit the stable HTTP conventions (``http.server.request.duration`` and
``http.client.request.duration`` in seconds, ``http.request.method``,
``http.response.status_code``, ...): left alone, opentelemetry-instrumentation
0.66b2 still defaults to the pre-1.21 ones (``http.server.duration`` in ms).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from otel_ml import semconv
from otel_ml._safety import guard, missing_extra
from otel_ml.telemetry import Telemetry, current

_log = logging.getLogger("otel_ml")


def prefer_stable_http_semconv() -> None:
    """Make the official HTTP instrumentations emit the stable HTTP conventions,
    unless ``OTEL_SEMCONV_STABILITY_OPT_IN`` already names an HTTP mode.

    opentelemetry-instrumentation reads the variable once per process, into
    ``_OpenTelemetrySemanticConventionStability``, and every HTTP instrumentor
    asks it for its mode when it builds its middleware or transport. Setting the
    HTTP entry there, rather than the variable, works even after another
    instrumentation read it first, keeps the user's ``http/dup`` (old and new
    side by side while dashboards migrate) or ``http``, and leaves the GenAI and
    database modes as the variable set them. Like the variable, it applies to
    the whole process, so requests/urllib instrumentors created later agree.
    """
    # Private API of opentelemetry-instrumentation (no public setter exists);
    # tests/unit/test_http_semconv.py fails if it changes shape.
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetrySemanticConventionStability as Stability,
    )
    from opentelemetry.instrumentation._semconv import (
        _OpenTelemetryStabilitySignalType as Signal,
    )
    from opentelemetry.instrumentation._semconv import _StabilityMode as Mode

    chosen = os.environ.get(semconv.OTEL_SEMCONV_STABILITY_OPT_IN, "")
    user_modes = {part.strip() for part in chosen.split(",")}
    if user_modes & {semconv.SEMCONV_OPT_IN_HTTP, semconv.SEMCONV_OPT_IN_HTTP_DUP}:
        return
    Stability._initialize()  # type: ignore[no-untyped-call]
    with Stability._lock:
        mapping = Stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
        if mapping.get(Signal.HTTP, Mode.DEFAULT) is Mode.DEFAULT:
            mapping[Signal.HTTP] = Mode.HTTP
            _log.debug("otel_ml: HTTP instrumentations emit the stable HTTP conventions")


def instrument_fastapi(app: Any, telemetry: Telemetry | None = None) -> None:
    """Trace every request of a FastAPI ``app`` and extract inbound context.

    The per-message ASGI ``send``/``receive`` spans are left out: a streamed
    answer would otherwise add one span per chunk.
    """
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError as exc:
        missing_extra("instrument_fastapi()", exc, "fastapi")
        return
    telemetry = telemetry or current()
    with guard("instrument_fastapi()"):
        prefer_stable_http_semconv()
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
            exclude_spans=["receive", "send"],
        )


def instrument_httpx(client: Any = None, telemetry: Telemetry | None = None) -> None:
    """Trace outgoing httpx requests and inject trace context and baggage.

    With a ``client`` (``httpx.Client`` or ``httpx.AsyncClient``) only that
    client is instrumented; without one, every httpx client in the process.
    """
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError as exc:
        missing_extra("instrument_httpx()", exc, "httpx")
        return
    telemetry = telemetry or current()
    with guard("instrument_httpx()"):
        prefer_stable_http_semconv()
        if client is None:
            instrumentor = HTTPXClientInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(
                    tracer_provider=telemetry.tracer_provider,
                    meter_provider=telemetry.meter_provider,
                )
        else:
            HTTPXClientInstrumentor.instrument_client(
                client,
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            )
