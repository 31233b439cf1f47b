"""``configure()``: destinations and protocols, environment variables, resource,
global state, idempotence, isolation, shutdown, the embedded JSON-lines default
and an unreachable endpoint."""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id
from opentelemetry.util._once import Once

import otel_ml
from otel_ml import providers, semconv
from otel_ml import telemetry as telemetry_module
from otel_ml.local_export import DEFAULT_DATA_DIR
from otel_ml.pricing import PriceTable
from otel_ml.telemetry import Telemetry
from otel_ml.tokens import count_tokens

ExportTraceServiceRequest = trace_service_pb2.ExportTraceServiceRequest
ExportMetricsServiceRequest = metrics_service_pb2.ExportMetricsServiceRequest

OTEL_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_SERVICE_VERSION",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_ML_DATA_DIR",
)


@pytest.fixture
def fresh_globals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Unset OTel globals, an empty otel_ml registry and a clean environment,
    all restored after the test. Returns the embedded default's data folder."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(telemetry_module, "_configured", {})
    monkeypatch.setattr(telemetry_module, "_default", None)
    for name in OTEL_ENV:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "otel-data"
    monkeypatch.setenv("OTEL_ML_DATA_DIR", str(data))
    return data


@pytest.fixture
def make_telemetry(fresh_globals: Path) -> Iterator[Callable[..., Telemetry]]:
    """``otel_ml.configure`` whose instances are shut down after the test."""
    made: list[Telemetry] = []

    def make(**kwargs: Any) -> Telemetry:
        telemetry = otel_ml.configure(**kwargs)
        made.append(telemetry)
        return telemetry

    yield make
    for telemetry in made:
        telemetry.shutdown()
        atexit.unregister(telemetry.shutdown)


@dataclass
class Pipeline:
    """User-owned providers with in-memory export."""

    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    tracer_provider: TracerProvider = field(default_factory=TracerProvider)
    meter_provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def span_names(self) -> list[str]:
        return [span.name for span in self.exporter.get_finished_spans()]

    def metric_sum(self, name: str) -> float:
        data = self.reader.get_metrics_data()
        total = 0.0
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            is_histogram = isinstance(point, HistogramDataPoint)
                            total += point.sum if is_histogram else point.value  # type: ignore[union-attr]
        return total


def _priced_call(telemetry: Telemetry, model: str = "gpt-4o-mini") -> None:
    with telemetry.generation(model, "openai") as g:
        g.usage(input_tokens=1_000, output_tokens=100)


def _attributes(pairs: Any) -> dict[str, Any]:
    """OTLP KeyValue list -> plain dict."""
    result: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        kind = pair.value.WhichOneof("value")
        result[pair.key] = getattr(pair.value, kind) if kind else None
    return result


# --- destination and protocol --------------------------------------------------------------------


PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"


# http/protobuf unless OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL says otherwise: the
# default of the OTLP exporter specification, whatever the port.
@pytest.mark.parametrize(
    ("argument", "env", "expected"),
    [
        ("http://collector:4318", {}, ("http://collector:4318", "http/protobuf")),
        ("collector:4318", {}, ("collector:4318", "http/protobuf")),
        ("https://otlp.example.com", {}, ("https://otlp.example.com", "http/protobuf")),
        ("http://gateway:8080/v1", {}, ("http://gateway:8080/v1", "http/protobuf")),
        (
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"},
            ("http://env:4318", "http/protobuf"),
        ),
        (
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317", PROTOCOL: "grpc"},
            ("http://env:4317", "grpc"),
        ),
        (
            "http://arg:4317",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318", PROTOCOL: "grpc"},
            ("http://arg:4317", "grpc"),
        ),
        (
            "http://c:4317",
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ("http://c:4317", "http/protobuf"),
        ),
        (
            "http://c:4318",
            {PROTOCOL: "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            ("http://c:4318", "grpc"),
        ),
        ("http://c:4318", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ("http://c:4318", "grpc")),
        (
            "http://c:4318",
            {"OTEL_EXPORTER_OTLP_PROTOCOL": " HTTP/PROTOBUF "},
            ("http://c:4318", "http/protobuf"),
        ),
    ],
)
def test_endpoint_and_protocol_resolution(
    fresh_globals: Path,
    monkeypatch: pytest.MonkeyPatch,
    argument: str | None,
    env: dict[str, str],
    expected: tuple[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    destination = providers.resolve_destination(argument)
    assert (destination.endpoint, destination.protocol) == expected
    assert destination.directory is None
    assert destination.describe() == f"OTLP {expected[1]} to {expected[0]}"


def test_unsupported_protocol_falls_back_to_the_default_with_a_warning(
    fresh_globals: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    caplog.set_level(logging.WARNING, logger="otel_ml")
    destination = providers.resolve_destination("http://c:4317")
    assert destination.protocol == "http/protobuf"
    messages = [record.getMessage() for record in caplog.records]
    assert any("http/json" in message for message in messages)
    assert any("4317, the OTLP/gRPC port" in message for message in messages)


@pytest.mark.parametrize(
    "endpoint",
    ["http://collector:abc", "http://collector:99999", "ftp://collector:4318", "http://",
     "http://coll ector:4318", "http://collector:4318\n", "://nohost"],
)
def test_an_endpoint_that_is_not_a_url_falls_back_to_the_embedded_default(
    fresh_globals: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    endpoint: str,
) -> None:
    caplog.set_level(logging.ERROR, logger="otel_ml")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    from_env = providers.resolve_destination(None)
    from_argument = providers.resolve_destination(endpoint)
    for destination in (from_env, from_argument):
        assert (destination.protocol, destination.directory) == ("file", fresh_globals)
    assert any("is not a valid URL" in record.getMessage() for record in caplog.records)


def test_no_endpoint_means_the_embedded_default(fresh_globals: Path) -> None:
    destination = providers.resolve_destination(None)
    assert destination.protocol == "file"
    assert destination.endpoint is None
    assert destination.directory == fresh_globals


def test_default_data_folder_is_relative_to_the_working_directory(
    fresh_globals: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OTEL_ML_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    destination = providers.resolve_destination(None)
    assert destination.directory == Path(DEFAULT_DATA_DIR)
    assert DEFAULT_DATA_DIR == "otel-ml-data"


# --- real receivers ------------------------------------------------------------------------------


@dataclass
class HttpReceiver:
    """A minimal OTLP/HTTP receiver: records every POST."""

    server: ThreadingHTTPServer
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        found: list[tuple[dict[str, Any], Any]] = []
        for path, _, body in self.received:
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    resource = _attributes(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        found.extend((resource, span) for span in scope_spans.spans)
        return found

    def metric_names(self) -> set[str]:
        names: set[str] = set()
        for path, _, body in self.received:
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for resource_metrics in request.resource_metrics:
                    for scope_metrics in resource_metrics.scope_metrics:
                        names.update(metric.name for metric in scope_metrics.metrics)
        return names


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver: HttpReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.received.append((self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = HttpReceiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()


class _TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsSink(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@dataclass
class GrpcReceiver:
    endpoint: str
    traces: _TraceSink
    metrics: _MetricsSink

    def span_names(self) -> list[str]:
        return [
            span.name
            for request in self.traces.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    traces, metrics_sink = _TraceSink(), _MetricsSink()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(traces, server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics_sink, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield GrpcReceiver(f"http://127.0.0.1:{port}", traces, metrics_sink)
    server.stop(grace=None)


# Receivers come first in the signatures: set up before, torn down after the
# Telemetry, so that its final export at shutdown has somewhere to go.
def test_grpc_when_the_protocol_variable_says_so(
    grpc_receiver: GrpcReceiver,
    make_telemetry: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    telemetry = make_telemetry(service_name="rag-api", endpoint=grpc_receiver.endpoint)
    assert telemetry.destination is not None
    assert telemetry.destination.protocol == "grpc"
    _priced_call(telemetry)
    assert telemetry.force_flush()

    assert grpc_receiver.span_names() == ["chat gpt-4o-mini"]
    names = {
        metric.name
        for request in grpc_receiver.metrics.requests
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert {semconv.METRIC_TOKEN_USAGE, semconv.METRIC_COST} <= names


def test_http_protobuf_is_the_default_protocol(
    http_receiver: HttpReceiver,
    make_telemetry: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret")
    telemetry = make_telemetry(service_name="rag-api", endpoint=http_receiver.endpoint)
    _priced_call(telemetry)
    assert telemetry.force_flush()

    received = http_receiver.spans()
    assert [span.name for _, span in received] == ["chat gpt-4o-mini"]
    resource, span = received[0]
    assert resource["service.name"] == "rag-api"
    assert _attributes(span.attributes)[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1_000
    assert {semconv.METRIC_TOKEN_USAGE, semconv.METRIC_COST} <= http_receiver.metric_names()
    paths = {path for path, _, _ in http_receiver.received}
    assert paths == {"/v1/traces", "/v1/metrics"}
    for _, headers, _ in http_receiver.received:
        assert headers.get("x-api-key") == "s3cret"  # OTEL_EXPORTER_OTLP_HEADERS honoured


def test_endpoint_from_the_environment(
    http_receiver: HttpReceiver,
    make_telemetry: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    telemetry = make_telemetry(service_name="rag-api")
    assert telemetry.destination is not None
    assert telemetry.destination.endpoint == http_receiver.endpoint
    _priced_call(telemetry)
    assert telemetry.force_flush()
    assert [span.name for _, span in http_receiver.spans()] == ["chat gpt-4o-mini"]


def test_signal_specific_endpoint_variables_are_honoured(
    http_receiver: HttpReceiver,
    make_telemetry: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    fresh_globals: Path,
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT are standard too
    (the OpenTelemetry Operator and many Helm charts set only these)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{http_receiver.endpoint}/v1/traces")
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"{http_receiver.endpoint}/v1/metrics"
    )
    telemetry = make_telemetry(service_name="rag-api")
    _priced_call(telemetry)
    telemetry.force_flush()

    assert [span.name for _, span in http_receiver.spans()] == ["chat gpt-4o-mini"]
    assert not fresh_globals.exists()  # nothing went to the embedded default


# --- an unreachable endpoint never blocks --------------------------------------------------------


class _SeenOnEnd(SimpleSpanProcessor):
    """Records the spans that got past every processor before it."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        super().__init__(self.exporter)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A localhost port that refuses connections: bound, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_unreachable_endpoint_never_blocks_the_request_path(
    make_telemetry: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
    protocol: str,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # keeps teardown short
    telemetry = make_telemetry(service_name="rag-api", endpoint=f"http://127.0.0.1:{closed_port}")
    seen = _SeenOnEnd()
    provider = telemetry.tracer_provider
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(seen)  # runs after otel_ml's BatchSpanProcessor

    completed = []
    for request in range(3):
        with otel_ml.generation(model="gpt-4o-mini", provider="openai", stream=True) as g:
            for piece in g.wrap(iter(["an", " answer"])):
                assert piece
        completed.append(request)

    assert completed == [0, 1, 2]
    finished = seen.exporter.get_finished_spans()
    assert [span.name for span in finished] == ["chat gpt-4o-mini"] * 3
    assert all(span.end_time is not None for span in finished)


# --- resource ------------------------------------------------------------------------------------


def _resource(telemetry: Telemetry) -> dict[str, Any]:
    provider = telemetry.tracer_provider
    assert isinstance(provider, TracerProvider)
    return dict(provider.resource.attributes)


def test_resource_attributes(
    make_telemetry: Callable[..., Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_VERSION", "1.2.3")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=ml")
    resource = _resource(make_telemetry(service_name="rag-api"))

    assert resource["service.name"] == "rag-api"
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment"] == "staging"
    assert resource["team"] == "ml"
    assert str(uuid.UUID(str(resource["service.instance.id"]))) == resource["service.instance.id"]
    assert resource["telemetry.distro.name"] == "otel-ml"
    assert resource["telemetry.distro.version"] == version("otel-ml")


def test_service_name_from_the_environment_unless_given(
    make_telemetry: Callable[..., Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert _resource(make_telemetry())["service.name"] == "from-env"
    assert _resource(make_telemetry(service_name="from-arg"))["service.name"] == "from-arg"


def test_each_instance_gets_its_own_instance_id(make_telemetry: Callable[..., Telemetry]) -> None:
    first = _resource(make_telemetry(service_name="a"))
    second = _resource(make_telemetry(service_name="b"))
    assert first["service.instance.id"] != second["service.instance.id"]


def test_meter_provider_shares_the_resource(make_telemetry: Callable[..., Telemetry]) -> None:
    telemetry = make_telemetry(service_name="rag-api")
    meter_provider = telemetry.meter_provider
    assert isinstance(meter_provider, MeterProvider)
    assert dict(meter_provider._sdk_config.resource.attributes) == _resource(telemetry)


# --- global state --------------------------------------------------------------------------------


def test_owned_providers_become_the_global_ones(make_telemetry: Callable[..., Telemetry]) -> None:
    telemetry = make_telemetry(service_name="rag-api")
    assert trace.get_tracer_provider() is telemetry.tracer_provider
    assert metrics.get_meter_provider() is telemetry.meter_provider

    second = make_telemetry(service_name="other")
    assert second is not telemetry
    assert trace.get_tracer_provider() is telemetry.tracer_provider  # the first one stays


def test_global_tracer_spans_carry_the_tenant(
    make_telemetry: Callable[..., Telemetry], fresh_globals: Path
) -> None:
    """Auto-instrumentation uses the global provider: its spans get tenant.id
    through the BaggageSpanProcessor configure() installs."""
    telemetry = make_telemetry(service_name="rag-api")
    with otel_ml.tenant("acme"), trace.get_tracer("some.library").start_as_current_span("query"):
        pass
    telemetry.shutdown()

    spans = _read_spans(fresh_globals)
    assert [(span.name, _attributes(span.attributes)) for span in spans] == [
        ("query", {semconv.TENANT_ID: "acme"})
    ]


def test_user_providers_touch_no_global_state(fresh_globals: Path) -> None:
    pipeline = Pipeline()  # the SDK providers register their own atexit hooks
    tracer_before, meter_before = trace.get_tracer_provider(), metrics.get_meter_provider()
    callbacks_before = atexit._ncallbacks()

    telemetry = otel_ml.configure(
        service_name="rag-api",
        tracer_provider=pipeline.tracer_provider,
        meter_provider=pipeline.meter_provider,
    )
    _priced_call(telemetry)

    assert trace.get_tracer_provider() is tracer_before
    assert metrics.get_meter_provider() is meter_before
    assert atexit._ncallbacks() == callbacks_before
    assert telemetry.destination is None
    assert not fresh_globals.exists()  # no embedded default either
    assert pipeline.span_names() == ["chat gpt-4o-mini"]
    telemetry.shutdown()


def test_shutdown_flushes_but_never_shuts_down_user_providers(fresh_globals: Path) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    telemetry = otel_ml.configure(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
    )
    _priced_call(telemetry)
    assert exporter.get_finished_spans() == ()  # still queued in the batch processor

    telemetry.shutdown()
    assert [span.name for span in exporter.get_finished_spans()] == ["chat gpt-4o-mini"]

    with tracer_provider.get_tracer("app").start_as_current_span("after otel_ml shutdown"):
        pass
    tracer_provider.force_flush()
    assert [span.name for span in exporter.get_finished_spans()][-1] == "after otel_ml shutdown"
    tracer_provider.shutdown()


# --- idempotence and isolation -------------------------------------------------------------------


def test_configure_is_idempotent(make_telemetry: Callable[..., Telemetry]) -> None:
    first = make_telemetry(service_name="rag-api")
    again = make_telemetry(service_name="rag-api")
    assert again is first
    assert again.tracer_provider is first.tracer_provider

    other = make_telemetry(service_name="rag-api", capture_content=True)
    assert other is not first
    assert telemetry_module.current() is other


def test_configure_after_shutdown_builds_a_new_instance(
    make_telemetry: Callable[..., Telemetry],
) -> None:
    first = make_telemetry(service_name="rag-api")
    first.shutdown()
    second = make_telemetry(service_name="rag-api")
    assert second is not first
    first.shutdown()  # a second shutdown is harmless


def test_idempotent_with_user_providers(fresh_globals: Path) -> None:
    pipeline = Pipeline()
    kwargs: dict[str, Any] = {
        "tracer_provider": pipeline.tracer_provider,
        "meter_provider": pipeline.meter_provider,
    }
    first = otel_ml.configure(**kwargs)
    assert otel_ml.configure(**kwargs) is first
    first.shutdown()


def test_two_instances_do_not_interfere(fresh_globals: Path) -> None:
    a, b = Pipeline(), Pipeline()
    negotiated = {"models": {"gpt-4o-mini": {"input": 0.0, "output": 1.0}}}
    tel_a = otel_ml.configure(
        tracer_provider=a.tracer_provider,
        meter_provider=a.meter_provider,
        max_tenants=1,
        pricing=negotiated,
    )
    tel_b = otel_ml.configure(tracer_provider=b.tracer_provider, meter_provider=b.meter_provider)
    try:
        for tenant_id in ("t1", "t2"):
            with otel_ml.tenant(tenant_id):
                _priced_call(tel_a)
                _priced_call(tel_b)
        with tel_b.retrieval("docs") as r:
            r.record([("d", 0.5)])

        assert a.span_names() == ["chat gpt-4o-mini"] * 2
        assert b.span_names() == ["chat gpt-4o-mini", "chat gpt-4o-mini", "retrieval docs"]
        bundled = PriceTable.load().lookup("gpt-4o-mini")
        assert bundled is not None
        assert a.metric_sum(semconv.METRIC_COST) == pytest.approx(2 * 100 * 1.0 / 1e6)
        assert b.metric_sum(semconv.METRIC_COST) == pytest.approx(2 * bundled.cost(1_000, 100))
        assert a.metric_sum(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT) == 0
        assert b.metric_sum(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT) == 1
        tenants_a = _metric_tenants(a, semconv.METRIC_COST)
        assert tenants_a == {"t1", semconv.TENANT_OVERFLOW}  # A's cap of 1
        assert _metric_tenants(b, semconv.METRIC_COST) == {"t1", "t2"}
        # Module-level functions use the most recently configured instance.
        with otel_ml.generation(model="gpt-4o-mini", provider="openai"):
            pass
        assert len(b.span_names()) == 4 and len(a.span_names()) == 2
    finally:
        tel_a.shutdown()
        tel_b.shutdown()


def _metric_tenants(pipeline: Pipeline, name: str) -> set[Any]:
    data = pipeline.reader.get_metrics_data()
    assert data is not None
    return {
        (point.attributes or {}).get(semconv.TENANT_ID)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


def test_options_are_applied(make_telemetry: Callable[..., Telemetry]) -> None:
    telemetry = make_telemetry(capture_content=True, pricing={"aliases": {"eu-chat": "gpt-4o"}})
    assert telemetry.capture_content is True
    assert telemetry.prices.lookup("eu-chat") == telemetry.prices.lookup("gpt-4o")


def test_invalid_max_tenants_falls_back_to_the_default(
    fresh_globals: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_ml")
    pipeline = Pipeline()
    telemetry = otel_ml.configure(
        tracer_provider=pipeline.tracer_provider,
        meter_provider=pipeline.meter_provider,
        max_tenants=-5,
    )
    try:
        assert any("max_tenants" in record.getMessage() for record in caplog.records)
        for i in range(101):
            with otel_ml.tenant(f"t{i}"):
                _priced_call(telemetry)
        tenants = _metric_tenants(pipeline, semconv.METRIC_COST)
        assert len(tenants) == 101  # 100 kept + overflow
        assert semconv.TENANT_OVERFLOW in tenants
    finally:
        telemetry.shutdown()


# --- the embedded default: OTLP JSON lines -------------------------------------------------------

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON files carry hex ids; protobuf's JSON mapping expects base64."""
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(value)).decode()
            if key in _ID_KEYS and isinstance(value, str)
            else _hex_ids_to_base64(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def _lines(folder: Path, pattern: str) -> list[dict[str, Any]]:
    files = sorted(folder.glob(pattern))
    assert files, f"no {pattern} in {folder}"
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def _read_spans(folder: Path) -> list[Any]:
    spans = []
    for document in _lines(folder, "traces-*.jsonl"):
        request = json_format.Parse(
            json.dumps(_hex_ids_to_base64(document)), ExportTraceServiceRequest()
        )
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


def test_embedded_default_writes_otlp_json_lines_that_round_trip(
    make_telemetry: Callable[..., Telemetry],
    fresh_globals: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="otel_ml")
    telemetry = make_telemetry(service_name="rag api")  # a space, to check the file name
    assert any(str(fresh_globals) in record.getMessage() for record in caplog.records)
    answer = ("Grounded", " answer", " text")
    with otel_ml.tenant("acme"):
        with telemetry.retrieval("docs", top_k=2) as r:
            r.record([("doc-1", 0.9), ("doc-2", 0.4)])
            retrieval_ids = trace.get_current_span().get_span_context()
        with telemetry.generation("gpt-4o-mini", "openai", stream=True) as g:
            for piece in g.wrap(iter(answer)):
                assert piece
            generation_ids = trace.get_current_span().get_span_context()
    telemetry.shutdown()  # no force_flush: shutdown must flush

    pid = os.getpid()
    assert (fresh_globals / f"traces-rag_api-{pid}.jsonl").is_file()
    assert (fresh_globals / f"metrics-rag_api-{pid}.jsonl").is_file()
    raw = _lines(fresh_globals, "traces-*.jsonl")[0]
    raw_span = raw["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert raw_span["traceId"] == format_trace_id(retrieval_ids.trace_id)  # hex, as on disk
    assert isinstance(raw_span["kind"], int)  # enums as integers

    spans = {span.name: span for span in _read_spans(fresh_globals)}
    assert set(spans) == {"retrieval docs", "chat gpt-4o-mini"}
    for name, ids in (("retrieval docs", retrieval_ids), ("chat gpt-4o-mini", generation_ids)):
        span = spans[name]
        assert span.trace_id.hex() == format_trace_id(ids.trace_id)
        assert span.span_id.hex() == format_span_id(ids.span_id)
        assert span.kind == span.SPAN_KIND_CLIENT
        assert _attributes(span.attributes)[semconv.TENANT_ID] == "acme"
    generation = _attributes(spans["chat gpt-4o-mini"].attributes)
    assert generation[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert generation[semconv.LLM_OUTPUT_CHUNK_COUNT] == 3
    expected_tokens = count_tokens("".join(answer), "gpt-4o-mini")
    assert generation[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == expected_tokens
    assert generation[semconv.LLM_USAGE_ESTIMATED] is True

    token_sums = _metric_request_sums(fresh_globals, semconv.METRIC_TOKEN_USAGE)
    assert token_sums == [expected_tokens]
    documents = _metric_request_sums(fresh_globals, semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT)
    assert documents == [2]


def _metric_request_sums(folder: Path, name: str) -> list[float]:
    """Histogram sums of ``name`` across all exported metric requests (last export wins)."""
    sums: list[float] = []
    for document in _lines(folder, "metrics-*.jsonl"):
        request = json_format.Parse(json.dumps(document), ExportMetricsServiceRequest())
        for resource_metrics in request.resource_metrics:
            resource = _attributes(resource_metrics.resource.attributes)
            assert resource["service.name"] == "rag api"
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        sums = [point.sum for point in metric.histogram.data_points]
    return sums


def test_unwritable_data_folder_never_raises(
    make_telemetry: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("OTEL_ML_DATA_DIR", str(blocker / "data"))
    telemetry = make_telemetry(service_name="rag-api")
    _priced_call(telemetry)
    telemetry.force_flush()
    telemetry.shutdown()
    assert blocker.read_text() == "not a folder"


def test_otel_sdk_disabled_turns_telemetry_off(
    make_telemetry: Callable[..., Telemetry],
    fresh_globals: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The OTel spec's OTEL_SDK_DISABLED: no spans, metrics, files or globals;
    the app's code runs unchanged (the benchmark's telemetry-off switch)."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        tel = make_telemetry(service_name="off")
    with otel_ml.tenant("acme"), tel.generation("gpt-4o-mini", "openai") as g:
        g.usage(input_tokens=10, output_tokens=5)
        assert not trace.get_current_span().is_recording()
    assert tel.force_flush()
    assert not fresh_globals.exists()
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert "OTEL_SDK_DISABLED=true: telemetry is off" in caplog.text
