"""A collector outage (issue 13, item 8): spans sent while the collector
answers 503 or is down arrive once it is back, within the retry window and the
buffer; past either, what is lost is counted on ``otel_ml.export.dropped``
and said once per outage.

The stand-in collector is a real OTLP/HTTP receiver on localhost (protobuf
bodies, as the collector's ``otlp`` receiver takes them); the pipeline is the
one ``configure()`` builds (BatchSpanProcessor, OTLP/HTTP exporter). The
SDK's per-export timeout is cut to 1 s (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s
by default) so that a 2.5 s outage plays the part of the 15 s one measured
against the stack: without otel-ml's retry, every batch in it was lost.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util._once import Once

import otel_ml
from otel_ml import semconv
from otel_ml import telemetry as telemetry_module
from otel_ml._delivery import QUEUE_FULL, RETRY_WINDOW, CountingBatchSpanProcessor, Delivery
from otel_ml.telemetry import Telemetry

OUTAGE = 2.5  # seconds: longer than the 1 s the SDK alone retries for


class StandInCollector:
    """OTLP/HTTP receiver that can answer 503 (``refusing``) or go away (``down``)."""

    def __init__(self) -> None:
        self.refusing = False
        self.spans = 0
        self.refused = 0
        self.metric_requests: list[ExportMetricsServiceRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = collector.receive(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def receive(self, path: str, body: bytes) -> int:
        with self._lock:
            if self.refusing:
                self.refused += 1
                return 503
            if path.endswith("/v1/traces"):
                request = ExportTraceServiceRequest.FromString(body)
                self.spans += sum(
                    len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
                )
            elif path.endswith("/v1/metrics"):
                self.metric_requests.append(ExportMetricsServiceRequest.FromString(body))
            return 200

    def dropped(self) -> dict[str, int]:
        """The last reported value of otel_ml.export.dropped, by error.type."""
        counts: dict[str, int] = {}
        for request in self.metric_requests:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != semconv.METRIC_EXPORT_DROPPED:
                            continue
                        for point in metric.sum.data_points:
                            attrs = {a.key: a.value.string_value for a in point.attributes}
                            counts[attrs[semconv.ERROR_TYPE]] = point.as_int
        return counts

    def close(self) -> None:
        if self._server is not None:
            self.down()


@pytest.fixture
def collector() -> Iterator[StandInCollector]:
    stand_in = StandInCollector()
    yield stand_in
    stand_in.close()


@pytest.fixture
def make_telemetry(
    monkeypatch: pytest.MonkeyPatch, collector: StandInCollector
) -> Iterator[Callable[..., Telemetry]]:
    """configure() against the stand-in, with fresh OTel globals, shut down after."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(telemetry_module, "_configured", {})
    monkeypatch.setattr(telemetry_module, "_default", None)
    for name in (
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_ML_EXPORT_RETRY_SECONDS",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # metrics at shutdown only
    made: list[Telemetry] = []

    def make(**options: Any) -> Telemetry:
        telemetry = otel_ml.configure(
            service_name="outage", endpoint=collector.endpoint, flush_on_sigterm=False, **options
        )
        made.append(telemetry)
        return telemetry

    yield make
    for telemetry in made:
        telemetry.shutdown()
        atexit.unregister(telemetry.shutdown)


def _send_during(telemetry: Telemetry, count: int, seconds: float) -> None:
    """``count`` spans spread over ``seconds``, as a service under load sends them."""
    for index in range(count):
        telemetry.tracer.start_span(f"request {index}").end()
        time.sleep(seconds / count)


def _wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _drop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropping telemetry" in r.getMessage()]


def test_spans_sent_while_the_collector_answers_503_all_arrive(
    make_telemetry: Callable[..., Telemetry],
    collector: StandInCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "otel_ml")
    telemetry = make_telemetry()
    collector.refusing = True
    _send_during(telemetry, 120, OUTAGE)
    collector.refusing = False
    _wait_for(lambda: collector.spans == 120)

    assert collector.refused > 0  # the outage was seen by the exporter
    assert collector.spans == 120
    assert telemetry.shutdown() is True
    assert collector.dropped() == {}
    assert _drop_warnings(caplog) == []


def test_spans_sent_while_the_collector_is_down_all_arrive(
    make_telemetry: Callable[..., Telemetry], collector: StandInCollector
) -> None:
    telemetry = make_telemetry()
    telemetry.tracer.start_span("before").end()
    _wait_for(lambda: collector.spans == 1)
    collector.down()  # connection refused
    _send_during(telemetry, 120, OUTAGE)
    collector.up()
    _wait_for(lambda: collector.spans == 121)

    assert collector.spans == 121
    assert telemetry.shutdown() is True
    assert collector.dropped() == {}


def test_past_the_retry_window_spans_are_dropped_counted_and_said_once(
    make_telemetry: Callable[..., Telemetry],
    collector: StandInCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What the SDK alone did: one window of retries (here 0 s past the SDK's own),
    # then the batch is gone.
    caplog.set_level(logging.WARNING, "otel_ml")
    telemetry = make_telemetry(export_retry_seconds=0)
    collector.refusing = True
    _send_during(telemetry, 60, OUTAGE)
    collector.refusing = False
    telemetry.tracer.start_span("after").end()
    assert telemetry.shutdown() is True

    lost = 61 - collector.spans
    assert lost > 0
    assert collector.dropped() == {RETRY_WINDOW: lost}
    assert len(_drop_warnings(caplog)) == 1


def test_past_the_buffer_spans_are_dropped_counted_and_said_once(
    make_telemetry: Callable[..., Telemetry],
    collector: StandInCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "otel_ml")
    telemetry = make_telemetry(max_queue_size=16)
    collector.refusing = True
    _send_during(telemetry, 50, 1.0)
    collector.refusing = False
    _wait_for(lambda: collector.spans >= 16)
    assert telemetry.shutdown() is True

    # The batch the retrying exporter held, and the 16 the queue held, arrive;
    # every other span is counted, none lost silently.
    dropped = collector.dropped()
    assert 16 < collector.spans < 50
    assert dropped == {QUEUE_FULL: 50 - collector.spans}
    assert len(_drop_warnings(caplog)) == 1


def test_the_buffer_and_window_honour_the_environment(
    make_telemetry: Callable[..., Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_ML_EXPORT_RETRY_SECONDS", "7.5")
    telemetry = make_telemetry(enrich=False)
    assert telemetry.delivery is not None
    assert telemetry.delivery.retry_seconds == 7.5
    processor = telemetry.tracer_provider._active_span_processor._span_processors[-1]  # type: ignore[attr-defined]
    assert processor._queue.maxlen == 64


def test_the_defaults_cover_a_15_s_outage_at_the_demos_rate(
    make_telemetry: Callable[..., Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 960 spans in 15 s (64/s), the outage measured against the stack.
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TIMEOUT")
    telemetry = make_telemetry(enrich=False)
    assert telemetry.delivery is not None
    assert telemetry.delivery.retry_seconds >= 15 + 10  # the outage + one attempt's timeout
    processor = telemetry.tracer_provider._active_span_processor._span_processors[-1]  # type: ignore[attr-defined]
    assert processor._queue.maxlen >= 960


def test_a_full_queue_counts_exactly_the_spans_it_drops() -> None:
    # The worker takes batches while the app ends spans into a full queue. Checking
    # "full" before the SDK appended was racy: a batch taken in between turned a
    # queued span into a counted drop (5,104 to 5,345 exported + counted for 5,000
    # ended, every trial; 2,241 for 2,240 against the real collector). A tiny switch
    # interval makes the threads interleave at every few bytecodes.
    delivery = Delivery(30.0, "test")
    exported = 0

    class Counting(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            nonlocal exported
            exported += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(CountingBatchSpanProcessor(Counting(), delivery, max_queue_size=8))
    tracer = provider.get_tracer("race")
    ended = 3000
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(ended):
            tracer.start_span("s").end()
    finally:
        sys.setswitchinterval(interval)
    provider.shutdown()

    dropped = delivery.dropped()
    assert set(dropped) == {QUEUE_FULL} and dropped[QUEUE_FULL] > 0
    assert exported + dropped[QUEUE_FULL] == ended
