"""Spans per CPU-second that our collector pipeline sustains, against a pass-through one.

Issue 12, goal 5. ``telemetrygen`` (collector-contrib, the collector's release)
sends spans over OTLP/gRPC at increasing rates to one collector at a time:

* ``ours``: ``collector-config/otelcol.yaml``, copied as it is into a temp dir
  and run with only its endpoint variables changed (free ports; the disk queue in
  the temp dir). Memory limiter, redaction, batch, span metrics, the persistent
  queue and the debug exporter all run. Its Jaeger exporter points at a *sink*:
  a second collector (OTLP in, debug out), so the figure is the pipeline's,
  not Jaeger's storage. The sink also proves delivery: every accepted span
  must reach it.
* ``passthrough``: OTLP in, debug out (verbosity basic, like ours), nothing
  between.

The collector under test is pinned to CPU 0 with ``taskset`` (when it exists
and there are 2 cores); telemetrygen and the sink share CPU 1. A rate is
*sustained* when nothing is lost anywhere (spans telemetrygen generated but the
receiver never accepted, refused, failed, export failures, enqueue failures,
spans accepted but not delivered to the sink) and telemetrygen generated at
least 75% of the offered rate (below that the generator is the limit). CPU
time comes from ``/proc/<pid>/stat`` over the step and its drain; memory is
the peak resident set sampled during it.

    python bench/bench_collector.py [--shapes three,ours] [--rates 2000,4000,...]
        [--duration 10] [--json build/bench/collector.json] [--profile]

Two span shapes: ``three`` (telemetrygen's two attributes plus ``tenant.id``)
and ``ours`` (20 attributes, as a chat span of the SDK carries them with content
capture off, plus a retrieval query text).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from otel_ml import semconv
from otel_ml.cli.stack.discovery import cache_dir
from otel_ml.cli.stack.ports import free_ports

REPO: Final = Path(__file__).resolve().parents[1]
OTELCOL_YAML: Final = REPO / "collector-config" / "otelcol.yaml"
HOST: Final = "127.0.0.1"
# telemetrygen sleeps between spans and one worker reaches about 1,700 spans/s
# here (less when CPU 1 is busy), so the rate is spread over workers of at most
# this many each; the achieved rate is what telemetrygen reports, not the offer.
RATE_PER_WORKER: Final = 500
# Spans per OTLP request, as the Python SDK's batch processor sends them
# (OTEL_BSP_MAX_EXPORT_BATCH_SIZE default 512).
CLIENT_BATCH: Final = 512
DEFAULT_RATES: Final = (2000, 4000, 8000, 12000, 16000, 24000, 32000, 48000, 64000)
DRAIN_TIMEOUT_S: Final = 60.0
MIN_GENERATED_SHARE: Final = 0.75

# The collector's own metrics (v0.155 names, no _total suffix).
ACCEPTED: Final = "otelcol_receiver_accepted_spans"
LOSS_METRICS: Final = (
    "otelcol_receiver_refused_spans",
    "otelcol_receiver_failed_spans",
    "otelcol_exporter_send_failed_spans",
    "otelcol_exporter_enqueue_failed_spans",
    "otelcol_processor_dropped_spans",
)
SENT: Final = "otelcol_exporter_sent_spans"
QUEUE_SIZE: Final = "otelcol_exporter_queue_size"
JAEGER_EXPORTER: Final = "otlp_grpc/jaeger"  # ours' exporter, pointed at the sink

SHAPES: Final[Mapping[str, Mapping[str, str | int | bool]]] = {
    # telemetrygen always sets network.peer.address and service.peer.name.
    "three": {semconv.TENANT_ID: "acme"},
    "ours": {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
        semconv.GEN_AI_PROVIDER_NAME: semconv.PROVIDER_OPENAI,
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-AbC123dEf456GhI789jKl",
        semconv.GEN_AI_REQUEST_STREAM: True,
        semconv.GEN_AI_RESPONSE_FINISH_REASONS: '["stop"]',
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 812,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 233,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 512,
        semconv.GEN_AI_USAGE_COST_CURRENCY: "USD",
        semconv.GEN_AI_DATA_SOURCE_ID: "kb-support-articles",
        semconv.TENANT_ID: "acme",
        semconv.SERVER_ADDRESS: "api.openai.com",
        semconv.SERVER_PORT: 443,
        semconv.LLM_OUTPUT_CHUNK_COUNT: 200,
        semconv.LLM_USAGE_ESTIMATED: False,
        semconv.GEN_AI_RETRIEVAL_QUERY_TEXT: (
            "why is my bill so high this month? I was charged twice for the premium plan"
        ),
    },
}


def progress(message: str) -> None:
    print(f"[bench-collector {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- programs ---------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A setup problem to report in one line (missing program, collector not starting)."""


def find_program(env: str, names: Sequence[str], cache_glob: str) -> Path:
    """``$ENV``, else ``PATH``, else the newest build in the ``make backends`` cache."""
    explicit = os.environ.get(env)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BenchError(f"{env}={explicit} is not an executable file")
        return path
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    cached = [p for p in cache_dir().glob(cache_glob) if os.access(p, os.X_OK)]
    if cached:
        return max(cached, key=lambda p: p.stat().st_mtime)
    raise BenchError(f"{names[0]} not found: set {env} or run `make backends` (builds it)")


def cpu_pinning() -> tuple[list[str], list[str]]:
    """taskset prefixes: the collector under test on CPU 0, the load and the sink on CPU 1."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], []
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"]


# --- one collector process --------------------------------------------------------------------


@dataclass
class Collector:
    """A running collector: its pid, OTLP endpoint and own-metrics URL."""

    name: str
    process: subprocess.Popen[bytes]
    otlp: str
    metrics_url: str
    pprof_url: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        # utime + stime, fields 14 and 15 of /proc/<pid>/stat (after the comm in parens).
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def metrics(self) -> dict[str, float]:
        """The collector's own metrics, each summed over its label sets."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        totals: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_and_labels, _, value = line.rpartition(" ")
            name = name_and_labels.split("{", 1)[0]
            totals[name] = totals.get(name, 0.0) + float(value)
        return totals

    def exporter_metric(self, metric: str, exporter: str) -> float:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        label = f'exporter="{exporter}"'
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith(metric + "{") and label in line
        )


@contextmanager
def run_collector(
    name: str,
    binary: Path,
    config: Path,
    env: Mapping[str, str],
    *,
    ports: Mapping[str, int],
    pin: Sequence[str],
    log_dir: Path,
    pprof_port: int | None = None,
) -> Iterator[Collector]:
    log = (log_dir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [*pin, str(binary), f"--config=file:{config}"],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    collector = Collector(
        name,
        process,
        otlp=f"{HOST}:{ports['otlp']}",
        metrics_url=f"http://{HOST}:{ports['telemetry']}/metrics",
        pprof_url=f"http://{HOST}:{pprof_port}/debug/pprof/profile" if pprof_port else None,
    )
    try:
        _wait_ready(collector, log_dir / f"{name}.log")
        yield collector
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(collector: Collector, log: Path) -> None:
    """Up when its own metrics answer and the OTLP port takes connections."""
    host, port = collector.otlp.rsplit(":", 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if collector.process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise BenchError(f"collector {collector.name} exited at start:\n{tail}")
        try:
            collector.metrics()
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise BenchError(f"collector {collector.name} did not answer on {collector.metrics_url}")


# --- configs ----------------------------------------------------------------------------------

PASSTHROUGH_YAML: Final = """\
# Pass-through: OTLP in, debug out (verbosity basic, as in otelcol.yaml).
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{otlp}
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
  telemetry:
    logs:
      level: warn
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: {host}
                port: {telemetry}
"""


def passthrough_config(work: Path, name: str) -> tuple[Path, dict[str, str], dict[str, int]]:
    # free_ports: distinct, and outside the ephemeral range, so that telemetrygen's
    # and the sink's own connections cannot take one before the collector binds it.
    otlp, telemetry = free_ports(2)
    ports = {"otlp": otlp, "telemetry": telemetry}
    path = work / f"{name}.yaml"
    path.write_text(PASSTHROUGH_YAML.format(host=HOST, **ports), encoding="utf-8")
    return path, {}, ports


def ours_config(
    work: Path, sink_otlp: str, source: Path = OTELCOL_YAML
) -> tuple[Path, dict[str, str], dict[str, int]]:
    """otelcol.yaml verbatim; only the endpoint (and queue directory) variables change."""
    path = work / "ours.yaml"
    shutil.copyfile(source, path)
    storage = work / "ours-storage"
    storage.mkdir(exist_ok=True)
    otlp, telemetry, pprof, otlp_http, health, zpages, prometheus = free_ports(7)
    ports = {"otlp": otlp, "telemetry": telemetry, "pprof": pprof}
    env = {
        "OTELCOL_HOST": HOST,
        "OTELCOL_OTLP_GRPC_PORT": str(otlp),
        "OTELCOL_OTLP_HTTP_PORT": str(otlp_http),
        "OTELCOL_HEALTH_PORT": str(health),
        "OTELCOL_ZPAGES_PORT": str(zpages),
        "OTELCOL_PPROF_PORT": str(pprof),
        "OTELCOL_PROMETHEUS_PORT": str(prometheus),
        "OTELCOL_TELEMETRY_PORT": str(telemetry),
        "OTELCOL_STORAGE_DIR": str(storage),
        "JAEGER_OTLP_ENDPOINT": sink_otlp,
    }
    return path, env, ports


# otelcol.yaml with its traces pipeline cut down: what a pipeline that delivers spans
# costs at the least (docs/performance.md, "The floor"). Measured as ``ours``.
VARIANTS: Final[Mapping[str, str]] = {
    "forward": "no processor, in-memory sending queue: nothing but forwarding",
    "forward-disk": "no processor, the disk queue as shipped",
    "no-redaction": "as shipped without the two redaction processors",
}


def variant_config(name: str, work: Path) -> Path:
    """otelcol.yaml as the variant ``name`` (:data:`VARIANTS`) changes it, written to ``work``."""
    import yaml  # the dev extra; only this option needs it

    document: dict[str, Any] = yaml.safe_load(OTELCOL_YAML.read_text(encoding="utf-8"))
    pipelines = document["service"]["pipelines"]
    if name in ("forward", "forward-disk"):
        pipelines["traces"]["processors"] = []
        pipelines["traces"]["exporters"] = [JAEGER_EXPORTER, "debug"]
        # The span_metrics connector is gone from traces, so from metrics too.
        pipelines["metrics"]["receivers"] = ["otlp"]
    if name == "forward":
        del document["exporters"][JAEGER_EXPORTER]["sending_queue"]["storage"]
    if name == "no-redaction":
        pipelines["traces"]["processors"] = [
            p for p in pipelines["traces"]["processors"] if "redaction" not in p]
    path = work / f"otelcol-{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# --- one rate step ----------------------------------------------------------------------------


@dataclass
class Step:
    """What one rate did to one collector."""

    pipeline: str
    shape: str
    offered_per_s: int
    duration_s: float
    generated: int = 0
    accepted: int = 0
    delivered: int | None = None
    lost: int = 0
    losses: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    sustained: bool = False
    # Why the ladder stopped here: "loss" (a span lost anywhere), "generator"
    # (telemetrygen made under MIN_GENERATED_SHARE of the offer: CPU 1 is full,
    # and its own batch queue then drops spans too), or "" when sustained.
    limited_by: str = ""

    @property
    def generated_per_s(self) -> float:
        return self.generated / self.duration_s

    @property
    def spans_per_cpu_s(self) -> float:
        return self.accepted / self.cpu_s if self.cpu_s else 0.0

    @property
    def cpu_percent(self) -> float:
        """CPU per second of load (the drain's CPU counts: it is work for these spans)."""
        return 100 * self.cpu_s / self.duration_s

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "generated_per_s": round(self.generated_per_s),
            "spans_per_cpu_s": round(self.spans_per_cpu_s),
            "cpu_percent_of_one_core": round(self.cpu_percent, 1),
        }


def telemetrygen_argv(
    binary: Path, endpoint: str, shape: str, rate: int, seconds: float
) -> list[str]:
    workers = max(1, math.ceil(rate / RATE_PER_WORKER))
    argv = [
        str(binary),
        "traces",
        "--otlp-endpoint",
        endpoint,
        "--otlp-insecure",
        "--workers",
        str(workers),
        "--rate",
        f"{rate / workers:.3f}",
        "--duration",
        f"{seconds}s",
        "--batch-size",
        str(CLIENT_BATCH),
        "--service",
        "bench-collector",
    ]
    for key, value in SHAPES[shape].items():
        argv += ["--telemetry-attributes", f"{key}={_tg_value(value)}"]
    return argv


def _tg_value(value: str | int | bool) -> str:
    # telemetrygen's syntax: key="string", key=<int>, key=true|false.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def generated_spans(log: str) -> int:
    """Spans telemetrygen made: its workers log ``traces generated`` (2 spans per trace)."""
    traces = 0
    for line in log.splitlines():
        if "traces generated" in line:
            traces += int(json.loads(line[line.index("{") :])["traces"])
    return traces * 2


def run_step(
    collector: Collector,
    sink: Collector | None,
    telemetrygen: Path,
    pin: Sequence[str],
    shape: str,
    rate: int,
    seconds: float,
    log_dir: Path,
) -> Step:
    step = Step(collector.name, shape, rate, seconds)
    before, sink_before = collector.metrics(), sink.metrics() if sink else {}
    cpu_before, start = collector.cpu_seconds(), time.monotonic()
    log_path = log_dir / f"telemetrygen-{collector.name}-{shape}-{rate}.log"
    with log_path.open("wb") as log:
        load = subprocess.Popen(
            [*pin, *telemetrygen_argv(telemetrygen, collector.otlp, shape, rate, seconds)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        while load.poll() is None:
            step.peak_rss_mib = max(step.peak_rss_mib, collector.rss_mib())
            time.sleep(0.1)
    step.generated = generated_spans(log_path.read_text(errors="replace"))
    after = _drain(collector, sink, step)
    step.wall_s = time.monotonic() - start
    step.cpu_s = collector.cpu_seconds() - cpu_before
    step.accepted = int(after[ACCEPTED] - before.get(ACCEPTED, 0))
    step.losses = {
        name.removeprefix("otelcol_"): int(after.get(name, 0) - before.get(name, 0))
        for name in LOSS_METRICS
    }
    step.losses["not_accepted"] = max(0, step.generated - step.accepted)
    if sink is not None:
        step.delivered = int(sink.metrics().get(ACCEPTED, 0) - sink_before.get(ACCEPTED, 0))
        step.losses["not_delivered"] = max(0, step.accepted - step.delivered)
    step.lost = sum(step.losses.values())
    # Below this share of the offer the generator, not the collector, is the limit:
    # a higher offer would measure nothing new.
    generating = step.generated >= MIN_GENERATED_SHARE * rate * seconds
    step.sustained = step.lost == 0 and generating and load.returncode == 0
    if not step.sustained:
        step.limited_by = "generator" if not generating else "loss"
    return step


def _drain(collector: Collector, sink: Collector | None, step: Step) -> dict[str, float]:
    """Wait until the counts stop moving, the queue is empty and ours has sent all it accepted.

    telemetrygen flushes before it exits, so what has not arrived by then never will;
    the wait covers the collector's batch timeout (1 s) and its exporter queue.
    """
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    previous: float | None = None
    while True:
        time.sleep(1.0)
        step.peak_rss_mib = max(step.peak_rss_mib, collector.rss_mib())
        after = collector.metrics()
        settled = after.get(ACCEPTED) == previous and after.get(QUEUE_SIZE, 0) == 0
        if settled and sink is not None:
            sent = collector.exporter_metric(SENT, JAEGER_EXPORTER)
            settled = sent >= after.get(ACCEPTED, 0)
        if settled or time.monotonic() > deadline:
            return after
        previous = after.get(ACCEPTED)


# --- a ladder of rates per pipeline and shape --------------------------------------------------


def ladder(
    collector: Collector,
    sink: Collector | None,
    telemetrygen: Path,
    pin: Sequence[str],
    shape: str,
    rates: Sequence[int],
    seconds: float,
    log_dir: Path,
) -> list[Step]:
    """Rates upwards until the first one that loses spans or cannot be generated."""
    steps = []
    for rate in rates:
        step = run_step(collector, sink, telemetrygen, pin, shape, rate, seconds, log_dir)
        steps.append(step)
        verdict = "ok" if step.sustained else f"stop ({step.limited_by}): lost {step.lost}"
        if step.lost:
            verdict += f" {_nonzero(step.losses)}"
        progress(
            f"{collector.name:11} {shape:5} {rate:>6}/s: generated {step.generated_per_s:>7.0f}/s, "
            f"{step.spans_per_cpu_s:>7.0f} spans/CPU-s, CPU {step.cpu_percent:5.1f}%, "
            f"RSS {step.peak_rss_mib:5.0f} MiB, {verdict}"
        )
        if not step.sustained:
            break
    return steps


def _nonzero(losses: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in losses.items() if v}


def best(steps: Sequence[Step]) -> Step | None:
    """The highest sustained rate."""
    sustained = [s for s in steps if s.sustained]
    return max(sustained, key=lambda s: s.offered_per_s, default=None)


# --- profile ----------------------------------------------------------------------------------


def capture_profile(
    collector: Collector,
    telemetrygen: Path,
    pin: Sequence[str],
    shape: str,
    rate: int,
    seconds: int,
    out: Path,
) -> Path | None:
    """A CPU profile of ours under load, for `go tool pprof -top FILE`."""
    if collector.pprof_url is None:
        return None
    argv = telemetrygen_argv(telemetrygen, collector.otlp, shape, rate, seconds + 2)
    load = subprocess.Popen([*pin, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        url = f"{collector.pprof_url}?seconds={seconds}"
        with urllib.request.urlopen(url, timeout=seconds + 30) as response:
            out.write_bytes(response.read())
    finally:
        load.wait()
    progress(f"CPU profile of ours ({shape}, {rate}/s) in {out}")
    return out


# --- run --------------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    otelcol = find_program("OTELCOL_BIN", ("otelcol-otel-ml",), "otelcol-*/otelcol-otel-ml")
    telemetrygen = find_program(
        "TELEMETRYGEN_BIN", ("telemetrygen",), "telemetrygen-*/telemetrygen"
    )
    pin_collector, pin_load = cpu_pinning()
    progress(f"collector {otelcol}; telemetrygen {telemetrygen}")
    progress(
        "pinning: collector under test on CPU 0, telemetrygen and sink on CPU 1"
        if pin_collector
        else "no pinning (taskset missing or one CPU)"
    )
    results: dict[str, Any] = {"steps": [], "best": {}, "profiles": []}
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        work = Path(tmp)
        log_dir = Path(args.logs) if args.logs else work
        log_dir.mkdir(parents=True, exist_ok=True)
        for shape in args.shapes:
            for pipeline in args.pipelines:
                steps = _run_pipeline(
                    pipeline,
                    shape,
                    otelcol,
                    telemetrygen,
                    (pin_collector, pin_load),
                    work,
                    log_dir,
                    args,
                    results,
                )
                results["steps"] += [s.as_json() for s in steps]
                top = best(steps)
                results["best"].setdefault(shape, {})[pipeline] = top.as_json() if top else None
    results["ratios"] = {
        shape: _ratio(by_pipeline) for shape, by_pipeline in results["best"].items()
    }
    return results


def _run_pipeline(
    pipeline: str,
    shape: str,
    otelcol: Path,
    telemetrygen: Path,
    pins: tuple[list[str], list[str]],
    work: Path,
    log_dir: Path,
    args: argparse.Namespace,
    results: dict[str, Any],
) -> list[Step]:
    pin_collector, pin_load = pins
    # A fresh collector (and sink) per pipeline and shape: the peak RSS is this run's.
    sink_cfg, _, sink_ports = passthrough_config(work, f"sink-{shape}")
    with run_collector(
        f"sink-{shape}", otelcol, sink_cfg, {}, ports=sink_ports, pin=pin_load, log_dir=log_dir
    ) as sink:
        if pipeline == "ours":
            source = (variant_config(args.ours_variant, work) if args.ours_variant
                      else Path(args.ours_config))
            config, env, ports = ours_config(_fresh_dir(work / f"ours-{shape}"), sink.otlp, source)
        else:
            config, env, ports = passthrough_config(work, f"passthrough-{shape}")
        with run_collector(
            pipeline,
            otelcol,
            config,
            env,
            ports=ports,
            pin=pin_collector,
            log_dir=log_dir,
            pprof_port=ports.get("pprof"),
        ) as collector:
            progress(f"{pipeline} ({shape}) up, pid {collector.pid}")
            steps = ladder(
                collector,
                sink if pipeline == "ours" else None,
                telemetrygen,
                pin_load,
                shape,
                args.rates,
                args.duration,
                log_dir,
            )
            top = best(steps)
            if args.profile and pipeline == "ours" and top is not None:
                out = Path(args.json).with_suffix(f".{shape}.pprof")
                out.parent.mkdir(parents=True, exist_ok=True)
                capture_profile(
                    collector, telemetrygen, pin_load, shape, top.offered_per_s, 10, out
                )
                results["profiles"].append(str(out))
    return steps


def _fresh_dir(path: Path) -> Path:
    path.mkdir()
    return path


def _ratio(by_pipeline: Mapping[str, Any]) -> float | None:
    ours, passthrough = by_pipeline.get("ours"), by_pipeline.get("passthrough")
    if not ours or not passthrough:
        return None
    return round(float(ours["spans_per_cpu_s"]) / float(passthrough["spans_per_cpu_s"]), 3)


def table(results: Mapping[str, Any]) -> str:
    rows = [
        "| shape | pipeline | highest rate with 0 lost (offered → generated spans/s) "
        "| spans per CPU-second "
        "| CPU (% of one core) | peak RSS (MiB) | ours / pass-through |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, by_pipeline in results["best"].items():
        for pipeline, step in by_pipeline.items():
            ratio = results["ratios"].get(shape) if pipeline == "ours" else None
            if step is None:
                rows.append(f"| {shape} | {pipeline} | none sustained | | | | |")
                continue
            rows.append(
                f"| {shape} | {pipeline} | {step['offered_per_s']:,} → {step['generated_per_s']:,} "
                f"| {step['spans_per_cpu_s']:,} | {step['cpu_percent_of_one_core']} "
                f"| {step['peak_rss_mib']:.0f} | {'' if ratio is None else f'{ratio:.2f}x'} |"
            )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="three,ours", type=lambda s: s.split(","))
    parser.add_argument("--pipelines", default="passthrough,ours", type=lambda s: s.split(","))
    parser.add_argument(
        "--rates",
        default=",".join(map(str, DEFAULT_RATES)),
        type=lambda s: [int(r) for r in s.split(",")],
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--json", default=str(REPO / "build" / "bench" / "collector.json"))
    parser.add_argument(
        "--ours-config",
        default=str(OTELCOL_YAML),
        help="another pipeline to measure as ours (e.g. a wider redaction); same env variables",
    )
    parser.add_argument(
        "--ours-variant",
        choices=sorted(VARIANTS),
        default=None,
        help="measure as ours otelcol.yaml cut down: "
        + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()),
    )
    parser.add_argument("--logs", default=None, help="keep collector/telemetrygen logs here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="take a 10 s CPU profile of ours at its best rate (pprof extension)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.shapes) - set(SHAPES) | set(args.pipelines) - {"ours", "passthrough"}
    if unknown:
        parser.error(f"unknown shape or pipeline: {sorted(unknown)}")
    if args.ours_variant and args.ours_config != str(OTELCOL_YAML):
        parser.error("give --ours-config or --ours-variant, not both")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = bench(args)
    except BenchError as exc:
        print(f"bench-collector: {exc}", file=sys.stderr)
        return 2
    results["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
        "pinned": bool(cpu_pinning()[0]),
    }
    results["settings"] = {
        "duration_s": args.duration,
        "rates": args.rates,
        "client_batch": CLIENT_BATCH,
        "attributes": {shape: 2 + len(attrs) for shape, attrs in SHAPES.items()},
        "ours": args.ours_variant or args.ours_config,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(table(results))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
