"""In-memory spans, metrics and events of one :class:`otel_ml.Telemetry`, for tests.

Kept apart from :mod:`otel_ml.testing` (the pytest plugin, which pytest imports
at start-up in every project that has otel-ml installed) because it needs the
OTel SDK: the plugin imports this module only when a test asks for a capture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ml import providers, semconv
from otel_ml.pricing import PriceTable, PricingSource
from otel_ml.telemetry import Telemetry

DataPoint = NumberDataPoint | HistogramDataPoint


class Capture:
    """In-memory spans, metrics and log records (events such as
    ``gen_ai.evaluation.result``) of one :class:`Telemetry`, with finders."""

    def __init__(
        self,
        *,
        capture_content: bool = False,
        pricing: PricingSource = None,
        max_tenants: int = 100,
    ) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(
            BaggageSpanProcessor(lambda key: key == semconv.TENANT_ID)
        )
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        # configure()'s views, so tests take the path production takes.
        meter_provider = MeterProvider(
            metric_readers=[self.reader], views=providers.chunk_gap_views()
        )
        self.telemetry = Telemetry(
            tracer_provider,
            meter_provider,
            owns_providers=True,
            capture_content=capture_content,
            prices=PriceTable.load(pricing),
            max_tenants=max_tenants,
            logger_provider=logger_provider,
            owns_logger_provider=True,
        )

    # --- spans -------------------------------------------------------------
    def spans(
        self, name: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> list[ReadableSpan]:
        """Finished spans, optionally filtered by name and attribute values."""
        found = []
        for span in self.exporter.get_finished_spans():
            if name is not None and span.name != name:
                continue
            span_attributes = span.attributes or {}
            if all(span_attributes.get(k) == v for k, v in (attributes or {}).items()):
                found.append(span)
        return found

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (fails if there are 0 or several)."""
        found = self.spans(name)
        names = sorted({span.name for span in self.exporter.get_finished_spans()})
        assert len(found) == 1, f"expected 1 span {name!r}, found {len(found)}; spans: {names}"
        return found[0]

    # --- events and logs ----------------------------------------------------
    def events(
        self, name: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> list[ReadableLogRecord]:
        """Emitted log records that are events (``event_name`` set), optionally of
        one name and with these attribute values; ``.log_record`` holds each one's
        attributes, body and trace context."""
        found = []
        for record in self.logs.get_finished_logs():
            event_name = record.log_record.event_name
            if not event_name or (name is not None and event_name != name):
                continue
            record_attributes = record.log_record.attributes or {}
            if all(record_attributes.get(k) == v for k, v in (attributes or {}).items()):
                found.append(record)
        return found

    # --- metrics -----------------------------------------------------------
    def points(self, metric: str, attributes: Mapping[str, Any] | None = None) -> list[DataPoint]:
        """Data points of ``metric`` whose attributes include ``attributes``."""
        data = self.reader.get_metrics_data()
        found: list[DataPoint] = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for item in scope_metrics.metrics:
                    if item.name != metric:
                        continue
                    for point in item.data.data_points:
                        point_attributes = point.attributes or {}
                        if all(point_attributes.get(k) == v for k, v in (attributes or {}).items()):
                            found.append(point)  # type: ignore[arg-type]
        return found

    def metric_sum(self, metric: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of a counter's values, or of a histogram's recorded values."""
        total = 0.0
        for point in self.points(metric, attributes):
            total += point.sum if isinstance(point, HistogramDataPoint) else point.value
        return total

    def metric_count(self, metric: str, attributes: Mapping[str, Any] | None = None) -> int:
        """Number of values recorded into a histogram."""
        return sum(
            point.count for point in self.points(metric, attributes)
            if isinstance(point, HistogramDataPoint)
        )

    def clear(self) -> None:
        self.exporter.clear()
        self.logs.clear()

    def shutdown(self) -> None:
        self.telemetry.shutdown()
