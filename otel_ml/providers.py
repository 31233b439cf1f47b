"""Building the tracer and meter providers ``configure()`` owns.

Endpoint resolution per signal, in order: the ``endpoint`` argument,
``OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`` (used as the full URL, as the
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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_ml import semconv
from otel_ml._version import __version__
from otel_ml.local_export import (
    JsonLinesMetricExporter,
    JsonLinesSpanExporter,
    data_dir,
    signal_path,
)

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
    """Where ``signal`` ("traces" or "metrics") goes."""
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
) -> TracerProvider:
    """``wrap_export``: puts a processor in front of the exporting one (the
    enrichment, which hands the exporter spans with attributes added)."""
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BaggageSpanProcessor(_is_tenant_key))
    export: SpanProcessor = BatchSpanProcessor(_span_exporter(resource, destination))
    provider.add_span_processor(wrap_export(export) if wrap_export is not None else export)
    return provider


def build_meter_provider(
    resource: Resource, destination: Destination, views: Sequence[View] = ()
) -> MeterProvider:
    reader = PeriodicExportingMetricReader(_metric_exporter(resource, destination))
    return MeterProvider(resource=resource, metric_readers=[reader], views=list(views))


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
