"""What every peer runner shares: the mock client, the discarding sinks, the
timing loop, resident memory and the proof that telemetry was recorded.

Each runner script (one per variant, in this folder) runs in a venv of its own
(bench/bench_peers.py builds them) and imports only the standard library, the
``openai`` client and, except the uninstrumented one, the OTel SDK: it must load
in any of the peer venvs, whose OTel and openai versions differ. The workload
(model, messages and the canned SSE bodies, built by bench/bench_openai.py) comes
from a JSON file the parent writes, so every variant streams the same bytes.

A runner prints one JSON object on its last stdout line; it exits 2 when the
variant recorded nothing it should have (a silent variant must fail the run,
not win it).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# Set by run(): the workload every variant sends.
MODEL = ""
MESSAGES: list[dict[str, str]] = []


@dataclass
class Workload:
    model: str
    messages: list[dict[str, str]]
    bodies: dict[int, bytes]
    prompt_tokens: int

    @classmethod
    def load(cls, path: str) -> Workload:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        bodies = {int(chunks): Path(body).read_bytes() for chunks, body in data["bodies"].items()}
        return cls(data["model"], data["messages"], bodies, data["prompt_tokens"])


def http_module() -> Any:
    """openai 3.x is built on httpx2, 1.x and 2.x on httpx (OpenLIT needs < 3)."""
    import openai

    if int(openai.__version__.split(".")[0]) >= 3:
        import httpx2

        return httpx2
    import httpx

    return httpx


def client(body: bytes) -> Any:
    """The official client over a mock transport answering with ``body``."""
    import openai

    http = http_module()

    def handler(request: Any) -> Any:
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return openai.OpenAI(
        api_key="bench",
        base_url="https://api.openai.test/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )


def stream(raw: Any) -> Any:
    """The request every variant sends: a streamed chat completion asking for
    usage, as an app must to get provider token counts."""
    return raw.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )


def plain_request(raw: Any) -> Callable[[], None]:
    def request() -> None:
        for _ in stream(raw):
            pass

    return request


# --- where telemetry goes: counted, then dropped ------------------------------


class Sink:
    """Counts exported spans and metric points and keeps the newest span's
    attributes; the exporters built from it do no I/O."""

    def __init__(self) -> None:
        self.spans = 0
        self.last_attributes: dict[str, Any] = {}
        self.metrics: dict[str, int] = {}
        self.events = 0
        self._lock = threading.Lock()

    def span_exporter(self, inner: Any = None) -> Any:
        """Counting, then handing the spans to ``inner`` (if any) or dropping them."""
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        sink = self

        class CountingSpanExporter(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                with sink._lock:
                    sink.spans += len(spans)
                    if spans:
                        sink.last_attributes = dict(spans[-1].attributes or {})
                return inner.export(spans) if inner else SpanExportResult.SUCCESS

            def shutdown(self) -> None:
                if inner:
                    inner.shutdown()

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return inner.force_flush(timeout_millis) if inner else True

        return CountingSpanExporter()

    def metric_exporter(self, inner: Any = None) -> Any:
        """Counting, then handing the points to ``inner`` (if any, with its
        temporality and aggregation) or dropping them."""
        from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

        sink = self

        class CountingMetricExporter(MetricExporter):
            def export(
                self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any
            ) -> MetricExportResult:
                with sink._lock:
                    sink.metrics = _measurements(metrics_data)
                if inner:
                    return inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
                return MetricExportResult.SUCCESS

            def force_flush(self, timeout_millis: float = 10_000) -> bool:
                return inner.force_flush(timeout_millis) if inner else True

            def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
                if inner:
                    inner.shutdown(timeout_millis=timeout_millis, **kwargs)

        if inner is None:
            return CountingMetricExporter()
        return CountingMetricExporter(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )

    def log_exporter(self) -> Any:
        """Counting log records (events), then dropping them."""
        from opentelemetry.sdk._logs import export

        base = getattr(export, "LogRecordExporter", None) or export.LogExporter
        success = getattr(export, "LogRecordExportResult", None) or export.LogExportResult
        sink = self

        class CountingLogExporter(base):  # type: ignore[misc, valid-type]
            def export(self, batch: Sequence[Any]) -> Any:
                with sink._lock:
                    sink.events += len(batch)
                return success.SUCCESS

            def shutdown(self) -> None:
                pass

            def force_flush(self, timeout_millis: int = 30000) -> bool:
                return True

        return CountingLogExporter()

    def metric_reader(self) -> Any:
        """A periodic reader, as an app runs (60 s by default): collection is
        forced once per size, outside the timed loop."""
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        return PeriodicExportingMetricReader(self.metric_exporter())


def _measurements(metrics_data: Any) -> dict[str, int]:
    """Measurements per metric name: a histogram's count, a sum's value, a
    gauge's points (all cumulative, the SDK's default temporality)."""
    found: dict[str, int] = {}
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                total = 0
                for point in metric.data.data_points:
                    count = getattr(point, "count", None)
                    value = getattr(point, "value", 1)
                    total += int(count if count is not None else max(int(value), 1))
                found[metric.name] = found.get(metric.name, 0) + total
    return found


@dataclass
class Providers:
    """The SDK providers a variant records into, and how to flush them."""

    tracer_provider: Any
    meter_provider: Any
    sink: Sink = field(default_factory=Sink)
    logger_provider: Any = None

    def flush_spans(self) -> None:
        self.tracer_provider.force_flush()
        if self.logger_provider is not None:
            self.logger_provider.force_flush()

    def flush_metrics(self) -> None:
        self.meter_provider.force_flush()


def sdk_providers(logs: bool = False) -> Providers:
    """What every peer gets, as its docs set it up: a TracerProvider with a
    BatchSpanProcessor and a MeterProvider with a periodic reader; with
    ``logs``, a LoggerProvider with a batch processor for its events."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    sink = Sink()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(sink.span_exporter()))
    meter_provider = MeterProvider(metric_readers=[sink.metric_reader()])
    logger_provider = None
    if logs:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(sink.log_exporter()))
    return Providers(tracer_provider, meter_provider, sink, logger_provider)


# --- measuring ----------------------------------------------------------------


def status_kb(field_name: str) -> int:
    """A ``kB`` line of /proc/self/status (VmRSS: resident now, VmHWM: peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def cpu_per_request(request: Callable[[], None], n: int, flush: Callable[[], None]) -> float:
    """CPU seconds per request, all threads of the process (the export thread
    too); the spans still queued are exported inside the window."""
    start = time.process_time()
    for _ in range(n):
        request()
    flush()
    return (time.process_time() - start) / n


@dataclass
class Variant:
    """What a runner script sets up: a request per stream size, the providers
    it records into (None: uninstrumented), the metrics it must have recorded,
    and whether its spans carry the provider's usage."""

    request: Callable[[Any], Callable[[], None]]
    providers: Providers | None
    metrics: tuple[str, ...] = ()
    usage_on_span: bool = True


def requests_for(chunks: int, requests_200: int) -> int:
    """The same streamed chunks per size: fewer requests for longer streams."""
    return max(requests_200 * 200 // chunks, 5)


def verify(
    variant: Variant, workload: Workload, chunks: int, spans_before: int, requests: int
) -> list[str]:
    """What is missing from what the variant should have recorded at this size."""
    if variant.providers is None:
        return []
    sink = variant.providers.sink
    problems = []
    if sink.spans - spans_before < requests:
        problems.append(
            f"{chunks} chunks: {sink.spans - spans_before} spans for {requests} requests"
        )
    if variant.usage_on_span:
        values = {v for k, v in sink.last_attributes.items() if "token" in k.lower()}
        for expected in (workload.prompt_tokens, chunks):
            if expected not in values:
                problems.append(
                    f"{chunks} chunks: no token attribute equal to {expected} "
                    f"(usage not seen): {sorted(sink.last_attributes)}"
                )
    return problems


def verify_metrics(variant: Variant) -> list[str]:
    if variant.providers is None:
        return []
    found = variant.providers.sink.metrics
    return [
        f"metric {name}: no measurements (exported: {sorted(found)})"
        for name in variant.metrics
        if found.get(name, 0) <= 0
    ]


def versions(names: Sequence[str]) -> dict[str, str]:
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def run(setup: Callable[[Workload, str], Variant], packages: Sequence[str] = ()) -> None:
    """Parse the runner's arguments, measure the variant, print its JSON."""
    global MODEL, MESSAGES
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--requests", type=int, default=50, help="requests at 200 chunks")
    parser.add_argument("--warmup", type=int, default=5, help="requests per size before timing")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per size")
    parser.add_argument(
        "--providers",
        default="configure",
        help="otel-ml only: configure, sdk or default (otel_ml_setup.py)",
    )
    args = parser.parse_args()
    workload = Workload.load(args.workload)
    MODEL, MESSAGES = workload.model, workload.messages
    variant = setup(workload, args.providers)
    requests = {chunks: variant.request(client(body)) for chunks, body in workload.bodies.items()}
    for request in requests.values():
        for _ in range(args.warmup):
            request()
    flush = variant.providers.flush_spans if variant.providers else (lambda: None)
    flush()
    gc.collect()
    rss_kb = status_kb("VmRSS")
    sizes: dict[str, Any] = {}
    problems: list[str] = []
    # The sizes take turns, batch by batch: a load that comes and goes on a
    # shared machine then weighs on every size alike, and the per-chunk cost
    # (a difference between sizes) keeps its sign.
    batches: dict[int, list[float]] = {chunks: [] for chunks in requests}
    for _ in range(args.batches):
        for chunks, request in requests.items():
            n = max(requests_for(chunks, args.requests) // args.batches, 1)
            spans_before = variant.providers.sink.spans if variant.providers else 0
            batches[chunks].append(cpu_per_request(request, n, flush) * 1e6)
            problems += verify(variant, workload, chunks, spans_before, n)
            entry = sizes.setdefault(str(chunks), {"requests": 0, "spans": 0})
            entry["requests"] += n
            if variant.providers:
                entry["spans"] += variant.providers.sink.spans - spans_before
    for chunks, values in batches.items():
        sizes[str(chunks)]["cpu_us_per_request"] = statistics.median(values)
        sizes[str(chunks)]["batches_us"] = values
    if variant.providers is not None:
        variant.providers.flush_metrics()
        problems += verify_metrics(variant)
    result = {
        "sizes": sizes,
        "rss_kb_after_warmup": rss_kb,
        "hwm_kb": status_kb("VmHWM"),
        "tiktoken_loaded": "tiktoken" in sys.modules,
        "modules": len(sys.modules),
        "metrics": variant.providers.sink.metrics if variant.providers else {},
        "events": variant.providers.sink.events if variant.providers else 0,
        "versions": versions(["openai", "opentelemetry-sdk", *packages]),
        "problems": problems,
    }
    print(json.dumps(result))
    if problems:
        print("recorded nothing it should have:\n  " + "\n  ".join(problems), file=sys.stderr)
        raise SystemExit(2)
