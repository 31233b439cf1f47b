"""The demo services' logs: one access line per request inside its server span,
sent through OTLP with configure(logs=True) and kept as JSON on stderr, both redacted.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ml
from demo_rag.logs import JsonFormatter
from demo_rag.service import asgi_app, new_app

SECRET = "sk-proj-" + "Z9y8X7w6V5u4T3s2R1q0"


@pytest.fixture
def root() -> Iterator[io.StringIO]:
    """The root logger as demo_rag.logs.setup() leaves it, JSON into a buffer."""
    logger = logging.getLogger()
    saved, level = list(logger.handlers), logger.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("rag-test"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    yield stream
    logger.handlers[:] = saved
    logger.setLevel(level)


async def test_each_request_logs_one_line_in_its_trace(root: io.StringIO) -> None:
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    telemetry = otel_ml.configure(
        service_name="rag-test", tracer_provider=tracer_provider, meter_provider=MeterProvider(),
        logger_provider=logger_provider, logs=True, flush_on_sigterm=False,
    )
    try:
        app = new_app("test", 1024)

        @app.get("/items")
        async def items() -> dict[str, int]:
            return {"count": 1}

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        served = asgi_app(app, telemetry, public=False)
        transport = httpx.ASGITransport(app=served)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            assert (await client.get(f"/items?token={SECRET}")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
    finally:
        telemetry.shutdown()
    [server] = [s for s in spans.get_finished_spans() if s.name == "GET /items"]
    records = [r.log_record for r in logs.get_finished_logs()
               if r.instrumentation_scope is not None
               and r.instrumentation_scope.name == "demo_rag.service"]
    [record] = records  # none for the health check
    assert record.body == "GET /items?token=**** -> 200"
    assert record.trace_id == server.context.trace_id
    assert record.span_id == server.context.span_id
    assert dict(record.attributes or {})["status"] == 200
    lines = [json.loads(text) for text in root.getvalue().splitlines()]
    [line] = [entry for entry in lines if entry["logger"] == "demo_rag.service"]
    assert line["message"] == "GET /items?token=**** -> 200"
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert SECRET not in root.getvalue()
