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

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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


def instrument_fastapi(
    app: Any, telemetry: Telemetry | None = None, flush_on_shutdown: bool = True
) -> None:
    """Trace every request of a FastAPI ``app`` and extract inbound context.

    The per-message ASGI ``send``/``receive`` spans are left out: a streamed
    answer would otherwise add one span per chunk. ``flush_on_shutdown``: see
    :func:`flush_on_shutdown`.
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
        if flush_on_shutdown:
            _flush_at_lifespan_end(app, telemetry)


def flush_on_shutdown(app: Any, telemetry: Telemetry | None = None) -> None:
    """Flush ``telemetry`` (default: the current one) when the Starlette or
    FastAPI ``app`` finishes its lifespan, bounded by its ``shutdown_timeout``.

    Servers end the lifespan on SIGTERM before the process exits, and ``uvicorn``
    then raises SIGTERM again, whose default action skips ``atexit``: this is
    where the spans of the last requests can still be sent. The app's own
    lifespan runs first and is otherwise unchanged. It flushes rather than shuts
    down, so an app whose lifespan runs several times (tests) keeps its
    telemetry; the shutdown happens at exit or on SIGTERM.
    """
    router = getattr(app, "router", None)
    original = getattr(router, "lifespan_context", None)
    if router is None or original is None or getattr(original, _FLUSHES, False):
        return

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        try:
            async with original(app_) as state:
                yield state
        finally:
            chosen = telemetry or current()
            with guard("flush at the end of the lifespan"):
                await asyncio.to_thread(chosen.force_flush)

    setattr(lifespan, _FLUSHES, True)
    router.lifespan_context = lifespan


_FLUSHES = "_otel_ml_flushes_on_shutdown"
_flush_at_lifespan_end = flush_on_shutdown  # instrument_fastapi's argument hides the name


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
