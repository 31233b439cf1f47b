"""The embedded default: OTLP JSON lines in a local folder.

Without an OTLP endpoint, otel-ml writes the same data it would send to a
collector, in the format of the collector's ``file`` exporter and
``otlpjsonfile`` receiver: one ``ExportTraceServiceRequest`` /
``ExportMetricsServiceRequest`` / ``ExportLogsServiceRequest`` (events such as
``gen_ai.evaluation.result``) per line, ids in hex, enums as integers. Each
process writes its own files (``traces-<service>-<pid>.jsonl``), so several
services can share one folder without interleaved writes, and the folder can
be replayed into a real stack later.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_ml._otlp_json import spans_to_otlp_json

if TYPE_CHECKING:
    from google.protobuf.message import Message

# protobuf and the OTLP encoders (about 5 MB resident) load on the first file
# export, not when configure() imports this module: only the embedded default
# writes files, and an app that brings its own exporters should not carry them.

DATA_DIR_ENV = "OTEL_ML_DATA_DIR"
DEFAULT_DATA_DIR = "otel-ml-data"
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def signal_path(directory: Path, signal: str, service_name: str) -> Path:
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", service_name) or "service"
    return directory / f"{signal}-{safe_name}-{os.getpid()}.jsonl"


def to_otlp_json(message: Message) -> str:
    """One OTLP/JSON line: camelCase keys, integer enums, hex trace/span ids."""
    from google.protobuf.json_format import MessageToDict

    document = MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(_hex_ids(document), separators=(",", ":"))


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex() if key in _ID_KEYS and isinstance(value, str)
            else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


class _JsonLinesFile:
    """Append-only writer, one line per export call, safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, line: str) -> bool:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        return True


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        self._file = _JsonLinesFile(path)

    @property
    def path(self) -> Path:
        return self._file.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            # Straight to JSON, not through protobuf: spans are the bulk of
            # what the embedded default writes (otel_ml/_otlp_json.py says why).
            self._file.append(spans_to_otlp_json(spans))
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonLinesMetricExporter(MetricExporter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = _JsonLinesFile(path)

    @property
    def path(self) -> Path:
        return self._file.path

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        try:
            self._file.append(to_otlp_json(encode_metrics(metrics_data)))
        except OSError:
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True


class JsonLinesLogExporter(LogRecordExporter):
    """Log records (otel-ml's events) as OTLP JSON lines: ``logs-<service>-<pid>.jsonl``."""

    def __init__(self, path: Path) -> None:
        self._file = _JsonLinesFile(path)

    @property
    def path(self) -> Path:
        return self._file.path

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        try:
            self._file.append(to_otlp_json(encode_logs(batch)))
        except OSError:
            return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
