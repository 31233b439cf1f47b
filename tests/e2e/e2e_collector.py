"""A collector a test may SIGKILL and restart, and a sender that keeps the collector's receipts.

The session's stack collector is shared by every e2e test, so the durability
tests run one of their own: the same binary and ``otelcol.yaml``, on free
ports, with its own disk queue, exporting to the session's Jaeger. It can be
SIGKILLed and started again on the same storage directory, which is what a
crash and a supervisor's restart do.

:class:`OtlpSender` posts OTLP/HTTP requests from several threads and records
which spans the collector acknowledged (HTTP 200 with no rejected span): the
promise under test is that an acknowledged span is never lost.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
from e2e_clients import Jaeger, Timeout
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME

from otel_ml.cli.stack import Stack, materialize_prometheus
from otel_ml.cli.stack.ports import HOST, PORT_ENV, Ports
from otel_ml.cli.supervisor import ProcessSpec, Supervisor

PROTOBUF: Final = {"Content-Type": "application/x-protobuf"}
START_TIMEOUT_S: Final = 60.0
JAEGER_EXPORTER: Final = "otlp_grpc/jaeger"
# The persistent queue's start-up log lines (exporterhelper v0.155.0), the last
# of which ends its recovery.
QUEUE_UP: Final = (
    "Loaded queue metadata",
    "Moved items for dispatching back to queue",
    "Initializing new persistent queue",
    "Successfully migrated to consolidated metadata format",
)


# --- the collector under test ------------------------------------------------------------------


@dataclass
class OwnCollector:
    """otelcol.yaml run as a separate process on free ports; killable, restartable."""

    binary: Path
    config: Path
    workdir: Path
    jaeger_otlp: str
    ports: Ports = field(default_factory=Ports.free)
    env: Mapping[str, str] = field(default_factory=dict)
    starts: int = 0
    _supervisor: Supervisor | None = None

    @classmethod
    def for_stack(cls, stack: Stack, workdir: Path, **env: str) -> OwnCollector:
        """The stack's collector binary and config, exporting to the stack's Jaeger."""
        return cls(
            binary=stack.binaries.otelcol,
            config=stack.config_dir / "otelcol.yaml",
            workdir=workdir,
            jaeger_otlp=f"{HOST}:{stack.ports.jaeger_otlp_grpc}",
            env=env,
        )

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "otelcol-storage"

    @property
    def otlp_http(self) -> str:
        return f"http://{HOST}:{self.ports.otlp_http}"

    @property
    def metrics_target(self) -> str:
        """Where Prometheus scrapes span metrics (the prometheus exporter)."""
        return f"{HOST}:{self.ports.collector_metrics}"

    @property
    def pid(self) -> int:
        assert self._supervisor is not None, "not started"
        return self._supervisor.pids["otelcol"]

    def log_path(self, start: int) -> Path:
        return self.workdir / "logs" / f"otelcol-{start}.log"

    def logs(self) -> str:
        return "\n".join(
            self.log_path(n).read_text(errors="replace") for n in range(1, self.starts + 1)
        )

    def start(self) -> None:
        """Start (again, on the same storage directory) and wait until healthy."""
        assert self._supervisor is None, "already running"
        self.starts += 1
        env = {
            **os.environ,
            "OTELCOL_HOST": HOST,
            "OTELCOL_STORAGE_DIR": str(self.storage_dir),
            "JAEGER_OTLP_ENDPOINT": self.jaeger_otlp,
            **{
                var: str(self.ports.as_dict()[name])
                for name, var in PORT_ENV.items()
                if var.startswith("OTELCOL_")
            },
            **self.env,
        }
        spec = ProcessSpec(
            "otelcol",
            (str(self.binary), f"--config=file:{self.config}"),
            env=env,
            log=self.log_path(self.starts),
            health_url=f"http://{HOST}:{self.ports.collector_health}/",
            die_with_parent=True,
        )
        self._supervisor = Supervisor()
        self._supervisor.spawn(spec)
        self._supervisor.await_healthy(START_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in an OOM kill or a node loss."""
        assert self._supervisor is not None, "not running"
        child = self._supervisor.children["otelcol"]
        os.kill(child.pid, signal.SIGKILL)
        child.process.wait()
        self._supervisor = None

    def stop(self) -> None:
        """SIGTERM and wait: a graceful stop, as a rolling restart does."""
        if self._supervisor is not None:
            self._supervisor.stop(timeout=30.0)
            self._supervisor = None

    def served_before_queue(self, start: int) -> bool:
        """Whether start ``start`` served OTLP before the Jaeger exporter's disk queue was up.

        The collector (v0.155.0) starts the shared ``otlp`` receiver when the
        first pipeline using it starts, and the pipelines' order is random: in
        one restart of five (119 of 562 measured) the metrics pipeline's comes first,
        so the HTTP server takes trace requests before the traces exporter's
        persistent queue has loaded its metadata and re-queued the items in
        flight at the kill. Its ``Offer`` then races that recovery (which runs
        without the queue's lock): it can overwrite the stored metadata (every
        queued and re-queued item lost) or share an item key with a re-queued
        item (one of them lost). docs/reliability.md has the evidence. The log
        shows the window: ``Starting HTTP server`` before the queue's last
        start-up line.
        """
        lines = self.log_path(start).read_text(errors="replace").splitlines()
        served = next((n for n, line in enumerate(lines) if "Starting HTTP server" in line), None)
        queue_up = [n for n, line in enumerate(lines) if any(mark in line for mark in QUEUE_UP)]
        return served is not None and bool(queue_up) and served < max(queue_up)

    def loaded_write_index(self, start: int) -> int:
        """The write index start ``start`` loaded from the disk queue (0 for a new queue).

        Indexes only grow, so one lower than the previous start's means the
        stored metadata was overwritten: every item on disk was forgotten.
        """
        text = self.log_path(start).read_text(errors="replace")
        found = re.search(r'Loaded queue metadata.*?"writeIndex": (\d+)', text)
        return int(found.group(1)) if found else 0

    def telemetry(self, metric: str, **labels: str) -> float:
        """One of the collector's own metrics, summed over the series matching ``labels``."""
        text = httpx.get(f"http://{HOST}:{self.ports.collector_telemetry}/metrics").text
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for line in text.splitlines():
            name, _, rest = line.partition("{")
            if name == metric and all(w in rest for w in wanted):
                total += float(line.rpartition(" ")[2])
        return total


@contextmanager
def running(collector: OwnCollector) -> Iterator[OwnCollector]:
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


@contextmanager
def own_prometheus(stack: Stack, collector: OwnCollector) -> Iterator[str]:
    """The project's prometheus.yml, scraping ``collector``; yields its base URL.

    The config is the real one with the collector's ports written in, as the
    stack runner renders it, so scrape interval and ``honor_labels`` are the
    ones users get.
    """
    ports = collector.ports
    config = materialize_prometheus(stack.config_dir, collector.workdir / "prometheus", ports)
    url = f"http://{HOST}:{ports.prometheus}"
    spec = ProcessSpec(
        "prometheus",
        (
            str(stack.binaries.prometheus),
            f"--config.file={config / 'prometheus.yml'}",
            f"--storage.tsdb.path={collector.workdir / 'prometheus-data'}",
            f"--web.listen-address={HOST}:{ports.prometheus}",
        ),
        env=dict(os.environ),
        log=collector.workdir / "logs" / "prometheus.log",
        health_url=f"{url}/-/ready",
        die_with_parent=True,
    )
    supervisor = Supervisor()
    supervisor.spawn(spec)
    try:
        supervisor.await_healthy(START_TIMEOUT_S)
        yield url
    finally:
        supervisor.stop()


# --- spans ---------------------------------------------------------------------------------------


def resource_spans(service: str, instance: str, spans: Sequence[Span]) -> ResourceSpans:
    """One resource (a service instance) holding ``spans`` in one scope."""
    out = ResourceSpans()
    for key, value in ((SERVICE_NAME, service), (SERVICE_INSTANCE_ID, instance)):
        out.resource.attributes.append(KeyValue(key=key))
        out.resource.attributes[-1].value.string_value = value
    out.scope_spans.add().spans.extend(spans)
    return out


def server_span(name: str, trace_id: bytes | None = None) -> Span:
    """A finished SERVER span of 2 ms ending now: one request, as span metrics count it."""
    now = time.time_ns()
    return Span(
        trace_id=trace_id or os.urandom(16),
        span_id=os.urandom(8),
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 2_000_000,
        end_time_unix_nano=now,
    )


def copies(template: Sequence[Span], trace_id: bytes) -> list[Span]:
    """The template spans with fresh span ids in trace ``trace_id``, parents remapped."""
    ids = {span.span_id: os.urandom(8) for span in template}
    out = []
    for span in template:
        copy = Span()
        copy.CopyFrom(span)
        copy.trace_id = trace_id
        copy.span_id = ids[span.span_id]
        copy.parent_span_id = ids.get(span.parent_span_id, b"")
        out.append(copy)
    return out


def post(client: httpx.Client, url: str, resources: Sequence[ResourceSpans]) -> bool:
    """Send one OTLP/HTTP request; True when the collector took every span of it."""
    request = ExportTraceServiceRequest(resource_spans=resources)
    response = client.post(
        f"{url}/v1/traces", content=request.SerializeToString(), headers=PROTOBUF
    )
    if response.status_code != 200:
        return False
    answer = ExportTraceServiceResponse.FromString(response.content)
    rejected: int = answer.partial_success.rejected_spans
    return rejected == 0


# --- load with receipts -------------------------------------------------------------------------


@dataclass
class OtlpSender:
    """Threads sending one new trace per request, at a fixed rate, keeping the receipts.

    ``make_spans(trace_id)`` builds one request's spans. ``acknowledged`` maps
    each trace the collector took (200, nothing rejected) to its span ids, and
    ``sent_at`` to when that request was sent (``time.monotonic()``);
    ``refused`` counts requests answered otherwise or not at all, which a real
    SDK would retry and which the collector never promised to keep.
    """

    url: str
    service: str
    make_spans: Callable[[bytes], list[Span]]
    requests_per_s: float
    threads: int = 3
    acknowledged: dict[str, set[str]] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"otlp-sender-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @property
    def acknowledged_spans(self) -> int:
        with self._lock:
            return sum(len(spans) for spans in self.acknowledged.values())

    def _run(self) -> None:
        interval = self.threads / self.requests_per_s
        with httpx.Client(timeout=10.0) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                trace_id = os.urandom(16)
                spans = self.make_spans(trace_id)
                sent = time.monotonic()
                try:
                    taken = post(
                        client, self.url, [resource_spans(self.service, "sender-1", spans)]
                    )
                except httpx.TransportError:
                    taken = False
                with self._lock:
                    if taken:
                        self.acknowledged[trace_id.hex()] = {s.span_id.hex() for s in spans}
                        self.sent_at[trace_id.hex()] = sent
                    else:
                        self.refused += 1
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))


def missing_from_jaeger(
    jaeger: Jaeger, expected: Mapping[str, set[str]], timeout: float
) -> dict[str, set[str]]:
    """Span ids of ``expected`` Jaeger still lacks once ``timeout`` has passed (or none)."""
    missing = {trace: set(spans) for trace, spans in expected.items()}
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        for trace_id in list(missing):
            stored = jaeger.trace(trace_id)
            if stored is not None:
                missing[trace_id] -= {span.span_id for span in stored.spans}
            if not missing[trace_id]:
                del missing[trace_id]
        if missing:
            time.sleep(1.0)
    return missing


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)
