"""Cross-service propagation through the ecosystem's own instrumentations.

Trace context and W3C baggage (which carries ``tenant.id``) cross service
boundaries via opentelemetry-instrumentation-fastapi on the server side and
opentelemetry-instrumentation-httpx on the client side, using the global
propagators (``tracecontext,baggage`` unless ``OTEL_PROPAGATORS`` says otherwise).
"""

from __future__ import annotations

from typing import Any

from otel_ml._safety import guard, missing_extra
from otel_ml.telemetry import Telemetry, current


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
