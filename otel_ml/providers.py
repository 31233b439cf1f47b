"""Building the tracer, meter and logger providers ``configure()`` owns.

Endpoint resolution per signal, in order: the ``endpoint`` argument,
``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`` (used as the full URL, as the
spec says), ``OTEL_EXPORTER_OTLP_ENDPOINT``; with none, the embedded default
(OTLP JSON lines on disk). Protocol: ``OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL``
or ``OTEL_EXPORTER_OTLP_PROTOCOL`` if set, else http/protobuf, the default the
OTLP exporter specification gives. All other standard ``OTEL_*`` variables
(batch sizes, export interval, timeouts, headers, resource attributes) are read
by the OTel SDK itself.

This module imports the OTel SDK (``otel-ml[otlp]``); only ``configure()``
imports it. gRPC (``otel-ml[otlp-grpc]``) is imported only for a gRPC
destination. A destination that cannot be used (an endpoint that is not a URL,
a missing gRPC extra) falls back to the embedded default with an error in the
log: telemetry is kept on disk rather than lost, and ``configure()`` never raises.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_ml import semconv
from otel_ml._delivery import (
    CountingBatchSpanProcessor,
    Delivery,
    RetryingMetricExporter,
    RetryingSpanExporter,
)
from otel_ml._version import __version__
from otel_ml.local_export import (
    JsonLinesLogExporter,
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
    data_dir,
    signal_path,
)
from otel_ml.metrics import GAP_BATCH_KEY, GapBatch
from otel_ml.telemetry import _SCOPE as SCOPE

logger = logging.getLogger("otel_ml")


@dataclass(frozen=True)
class Destination:
    """Where telemetry goes: an OTLP endpoint and protocol, or a local folder."""

    endpoint: str | None
    protocol: str  # "grpc", "http/protobuf" or "file"
    directory: Path | None = None
    exact_url: bool = False  # a signal-specific endpoint: no /v1/<signal> appended

    def describe(self) -> str:
        if self.protocol == "file":
            return f"OTLP JSON lines in {self.directory}/"
        return f"OTLP {self.protocol} to {self.endpoint}"


_DEFAULT_PROTOCOL = "http/protobuf"  # the OTLP exporter spec's default
_GRPC_PORT = 4317


def resolve_destination(endpoint: str | None, signal: str = "traces") -> Destination:
    """Where ``signal`` ("traces", "metrics" or "logs") goes."""
    exact_url = False
    signal_endpoint = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    if not endpoint and signal_endpoint:
        endpoint, exact_url = signal_endpoint, True
    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
    if endpoint is None:
        return Destination(None, "file", data_dir())
    parts = _parse_url(endpoint)
    if parts is None:
        return _fall_back(f"the OTLP endpoint {endpoint!r} is not a valid URL")
    protocol = _protocol(signal)
    if protocol == _DEFAULT_PROTOCOL and parts.port == _GRPC_PORT:
        logger.warning(
            "otel-ml: sending OTLP over http/protobuf (the default) to port %d, the "
            "OTLP/gRPC port; set OTEL_EXPORTER_OTLP_PROTOCOL=grpc for a gRPC receiver, "
            "or use its HTTP port (4318)", _GRPC_PORT,
        )
    return Destination(endpoint, protocol, exact_url=exact_url)


def _protocol(signal: str) -> str:
    protocol = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    ).strip().lower()
    if protocol in ("grpc", "http/protobuf"):
        return protocol
    if protocol:
        logger.warning(
            "otel-ml: OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported; using %s",
            protocol, _DEFAULT_PROTOCOL,
        )
    return _DEFAULT_PROTOCOL


def _parse_url(endpoint: str) -> SplitResult | None:
    """The endpoint split into parts, or None if the exporters could not use it
    (they would raise later, from a background thread or at the first export)."""
    if any(char.isspace() or not char.isprintable() for char in endpoint):
        return None
    try:
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def _fall_back(reason: str) -> Destination:
    destination = Destination(None, "file", data_dir())
    logger.error("otel-ml: %s; writing %s instead", reason, destination.describe())
    return destination


def build_resource(service_name: str | None) -> Resource:
    attributes: dict[str, str] = {
        "service.instance.id": str(uuid.uuid4()),
        "telemetry.distro.name": "otel-ml",
        "telemetry.distro.version": __version__,
    }
    if isinstance(service_name, str) and service_name:
        attributes["service.name"] = service_name
    service_version = os.environ.get("OTEL_SERVICE_VERSION")
    if service_version:
        attributes["service.version"] = service_version
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME; ours win.
    return Resource.create(attributes)


def build_tracer_provider(
    resource: Resource,
    destination: Destination,
    wrap_export: Callable[[SpanProcessor], SpanProcessor] | None = None,
    *,
    delivery: Delivery | None = None,
    max_queue_size: int | None = None,
) -> TracerProvider:
    """``wrap_export``: puts a processor in front of the exporting one (the
    enrichment, which hands the exporter spans with attributes added).
    ``delivery``: retries exports through a collector outage and counts drops;
    ``max_queue_size``: spans held meanwhile (None: ``OTEL_BSP_MAX_QUEUE_SIZE``)."""
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BaggageSpanProcessor(_is_tenant_key))
    exporter = _span_exporter(resource, destination)
    export: SpanProcessor
    if delivery is None:
        export = BatchSpanProcessor(exporter, max_queue_size=max_queue_size)
    else:
        export = CountingBatchSpanProcessor(
            RetryingSpanExporter(exporter, delivery), delivery, max_queue_size
        )
    provider.add_span_processor(wrap_export(export) if wrap_export is not None else export)
    return provider


def build_meter_provider(
    resource: Resource,
    destination: Destination,
    views: Sequence[View] = (),
    *,
    delivery: Delivery | None = None,
) -> MeterProvider:
    exporter = _metric_exporter(resource, destination)
    if delivery is not None:
        exporter = RetryingMetricExporter(exporter, delivery)
    reader = PeriodicExportingMetricReader(exporter)
    return MeterProvider(
        resource=resource, metric_readers=[reader], views=[*views, *chunk_gap_views()]
    )


def build_logger_provider(resource: Resource, destination: Destination) -> LoggerProvider:
    """The logger provider otel-ml's events (``gen_ai.evaluation.result``) go
    through. Batched like spans (``OTEL_BLRP_*``); not retried through a
    collector outage as spans and metrics are: an event lost then is a lost
    evaluation, its score is still on the metric."""
    provider = LoggerProvider(resource=resource)
    exporter = _LazyLogExporter(lambda: _log_exporter(resource, destination))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


class _LazyLogExporter(LogRecordExporter):
    """The log exporter, built on the first export.

    Only apps that evaluate (or log through OTel) emit log records, and the
    OTLP log exporter brings its own modules and HTTP session (about 4 MB
    resident): an app that never emits one should not carry it.
    """

    def __init__(self, build: Callable[[], LogRecordExporter]) -> None:
        self._build = build
        self._exporter: LogRecordExporter | None = None
        self._lock = threading.Lock()

    def _get(self) -> LogRecordExporter:
        with self._lock:
            if self._exporter is None:
                self._exporter = self._build()
            return self._exporter

    def export(self, batch: Sequence[Any]) -> Any:
        return self._get().export(batch)

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter is None or self._exporter.force_flush(timeout_millis)


def _log_exporter(resource: Resource, destination: Destination) -> LogRecordExporter:
    if destination.protocol == "file":
        assert destination.directory is not None
        path = signal_path(destination.directory, "logs", _service_name(resource))
        return JsonLinesLogExporter(path)
    if destination.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=_http_url(destination, "logs"))
    try:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogExporter,
        )
    except ImportError:
        return _log_exporter(resource, _grpc_missing())
    return GrpcLogExporter(endpoint=destination.endpoint, insecure=_insecure(destination))


def _is_tenant_key(key: str) -> bool:
    return key == semconv.TENANT_ID


def _service_name(resource: Resource) -> str:
    return str(resource.attributes.get("service.name", "unknown_service"))


def _span_exporter(resource: Resource, destination: Destination) -> SpanExporter:
    if destination.protocol == "file":
        assert destination.directory is not None
        path = signal_path(destination.directory, "traces", _service_name(resource))
        return JsonLinesSpanExporter(path)
    if destination.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=_http_url(destination, "traces"))
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )
    except ImportError:
        return _span_exporter(resource, _grpc_missing())
    return GrpcSpanExporter(endpoint=destination.endpoint, insecure=_insecure(destination))


def _metric_exporter(resource: Resource, destination: Destination) -> MetricExporter:
    if destination.protocol == "file":
        assert destination.directory is not None
        path = signal_path(destination.directory, "metrics", _service_name(resource))
        return JsonLinesMetricExporter(path)
    if destination.protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=_http_url(destination, "metrics"))
    try:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )
    except ImportError:
        return _metric_exporter(resource, _grpc_missing())
    return GrpcMetricExporter(endpoint=destination.endpoint, insecure=_insecure(destination))


def _grpc_missing() -> Destination:
    return _fall_back(
        "OTLP/gRPC needs the gRPC exporter: pip install 'otel-ml[otlp-grpc]' "
        "(or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)"
    )


def _http_url(destination: Destination, signal: str) -> str:
    if destination.exact_url and destination.endpoint:
        return destination.endpoint
    base = (destination.endpoint or "").rstrip("/")
    if "://" not in base:
        base = f"http://{base}"
    if base.endswith(f"/v1/{signal}"):
        return base
    return f"{base}/v1/{signal}"


def _insecure(destination: Destination) -> bool:
    return not (destination.endpoint or "").startswith("https://")


# --- time per output chunk: one measurement per stream --------------------------
#
# The OTel API has no batched record and the Python SDK spends several µs per
# Histogram.record (a Measurement, attribute cleaning and hashing, the exemplar
# filter and reservoir), so the chunk gaps of a stream reach the histogram as
# one measurement: otel_ml.metrics.record_gaps puts the other gaps in its
# context and this aggregation merges them into the same point. The SDK still
# owns everything else (views, temporality, cardinality limit, collection).

_MERGED_FIELDS = ("_lock", "_value", "_boundaries", "_sum", "_min", "_max", "_record_min_max")


class _GapBatchHistogram(_ExplicitBucketHistogramAggregation):
    """The SDK's explicit-bucket histogram, plus batches of chunk gaps."""

    def aggregate(self, measurement: Any, should_sample_exemplar: bool = True) -> None:
        super().aggregate(measurement, should_sample_exemplar)
        batch = measurement.context.get(GAP_BATCH_KEY)
        if type(batch) is GapBatch and batch.rest:
            self._merge(batch.rest)
            batch.claimed = True

    def _merge(self, gaps: list[float]) -> None:
        # The SDK puts a value in bucket bisect_left(boundaries, value): the
        # values up to bucket i are those <= boundaries[i]. Counted on the
        # sorted gaps with one bisect per boundary, all in C.
        ordered = sorted(gaps)
        below = [bisect_right(ordered, bound) for bound in self._boundaries]
        below.append(len(ordered))
        total = sum(ordered)
        with self._lock:
            value: list[int] | None = self._value
            if value is None:
                value = self._get_empty_bucket_counts()
                self._value = value  # type: ignore[assignment]  # the SDK types it None
            previous = 0
            for index, upto in enumerate(below):
                value[index] += upto - previous
                previous = upto
            self._sum += total  # type: ignore[assignment]  # typed int, holds floats too
            if self._record_min_max:
                self._min = min(self._min, ordered[0])
                self._max = max(self._max, ordered[-1])


class GapBatchAggregation(ExplicitBucketHistogramAggregation):
    """Explicit buckets (the instrument's advisory boundaries), taking chunk-gap
    batches. Built by the SDK's own code; if that ever stops producing the
    aggregation this subclass expects, the SDK's is used unchanged and
    record_gaps, finding its batch unclaimed, records gap by gap."""

    def _create_aggregation(self, *args: Any, **kwargs: Any) -> Any:
        aggregation = super()._create_aggregation(*args, **kwargs)
        if type(aggregation) is _ExplicitBucketHistogramAggregation and all(
            hasattr(aggregation, name) for name in _MERGED_FIELDS
        ):
            aggregation.__class__ = _GapBatchHistogram
        return aggregation


def chunk_gap_views() -> list[View]:
    """The views that let otel-ml's time-per-output-chunk histograms take a
    stream's gaps in one measurement (both GenAI names, otel-ml's meter only).

    None when the OTLP exporter is told to export histograms as exponential
    (``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``): a view
    would override that choice, so the gaps are then recorded one by one.
    """
    preferred = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "")
    if preferred.strip().lower() == "base2_exponential_bucket_histogram":
        return []
    return [
        View(instrument_name=name, meter_name=SCOPE, aggregation=GapBatchAggregation())
        for name in (
            semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
            semconv.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK,
        )
    ]
