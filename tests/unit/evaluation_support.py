"""A Telemetry with in-memory spans, metrics and log records, for the evaluation tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ml import semconv
from otel_ml.pricing import PriceTable
from otel_ml.telemetry import Telemetry


class EvalCapture:
    def __init__(self, capture_content: bool = False, max_tenants: int = 100) -> None:
        self.spans = InMemorySpanExporter()
        self.logs = InMemoryLogRecordExporter()
        self.reader = InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(
            BaggageSpanProcessor(lambda key: key == semconv.TENANT_ID))
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.telemetry = Telemetry(
            tracer_provider, MeterProvider(metric_readers=[self.reader]),
            owns_providers=True, capture_content=capture_content, prices=PriceTable.load(),
            max_tenants=max_tenants, logger_provider=logger_provider,
            owns_logger_provider=True,
        )

    def events(self) -> list[ReadableLogRecord]:
        return [r for r in self.logs.get_finished_logs()
                if r.log_record.event_name == semconv.EVENT_GEN_AI_EVALUATION_RESULT]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        found = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p)
                                  for p in metric.data.data_points]
        return found

    def shutdown(self) -> None:
        self.telemetry.shutdown()


def fresh_globals(monkeypatch: Any, data_dir: Any) -> None:
    """Unset OTel globals (tracer, meter, logger) and otel-ml's registry, the
    embedded default writing to ``data_dir``: all restored after the test."""
    from opentelemetry import trace
    from opentelemetry._logs import _internal as logs_internal
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.util._once import Once

    from otel_ml import telemetry as telemetry_module

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(logs_internal, "_LOGGER_PROVIDER", None)
    monkeypatch.setattr(logs_internal, "_LOGGER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(telemetry_module, "_configured", {})
    monkeypatch.setattr(telemetry_module, "_default", None)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_ML_DATA_DIR", str(data_dir))
