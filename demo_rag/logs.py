"""JSON logs that carry the active trace and span ids.

One JSON object per line on stderr, so a log line found in a log search leads
straight to its trace in Jaeger (and back). The ids come from the OpenTelemetry
context at the moment of the call, so they are right inside async handlers and
streaming responses too.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, Final

from opentelemetry import baggage, trace

from otel_ml import semconv
from otel_ml._redaction import redact

# LogRecord attributes that are not user-supplied ``extra`` fields.
_RESERVED: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """Formats records as one-line JSON with service, trace_id, span_id and tenant.id."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            # Masked as the OTLP copy is (configure(logs=True)): a secret that
            # reached a message (a token in a URL) stays off the terminal too.
            "message": redact(record.getMessage()),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        tenant = baggage.get_baggage(semconv.TENANT_ID)
        if tenant is not None:
            entry[semconv.TENANT_ID] = str(tenant)
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(service_name: str, level: int = logging.INFO) -> None:
    """Route all logging (uvicorn's included) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
