"""The demo under load with telemetry on against telemetry off: client latency p50 and p99.

Issue 12, goal 6 (p50 at most 3% higher with telemetry on, p99 at most 5%). Each
*launch* starts the three demo services the way ``otel-ml demo`` does
(:func:`demo_rag.launcher.launch`: native processes, free ports, fresh API keys)
with one variant:

* ``on``: the embedded default, OTLP JSON lines written to a temp dir.
* ``off``: the same, plus ``OTEL_SDK_DISABLED=true`` (the OTel spec's switch, which
  ``configure()`` honours: no provider, exporter or file).

It warms up, sends the same requests (:func:`demo_rag.driver.plan_jobs`, one seed)
at a fixed concurrency with the driver's own client (:func:`demo_rag.driver.run_workload`,
feedback included), records each answered request's client latency, and stops the
services. The simulated model is seeded (``LLM_SIM_SEED``), so a question gets the
same simulated delays, errors and answer in both variants. A *round* is one ``on``
and one ``off`` launch, their order alternating across rounds; ratios are paired
within a round and the reported ratio is their median. A run fails if an ``on``
launch wrote no spans for a service or an ``off`` launch wrote any file: a variant
that silently records nothing must not win.

    python bench/bench_demo.py [--rounds 6] [--requests 200] [--concurrency 4]
        [--warmup 20] [--env LLM_SIM_TBT_MS=5 ...] [--json build/bench/demo.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from demo_rag.driver import SERVICE_NAMES, Job, Outcome, plan_jobs, run_workload
from demo_rag.launcher import CHROMA_DATA_DIR, DEFAULT_TENANTS, launch
from otel_ml.cli import report
from otel_ml.cli.report import percentile

VARIANTS: Final = ("on", "off")
SDK_DISABLED_ENV: Final = "OTEL_SDK_DISABLED"  # the OTel spec's name, not an attribute
SIM_SEED_ENV: Final = "LLM_SIM_SEED"
GOAL_P50: Final = 1.03
GOAL_P99: Final = 1.05
# Warm-up questions come from another seed, so the measured ones are not cached answers.
WARMUP_SEED_OFFSET: Final = 1000


@dataclass(frozen=True)
class Launch:
    """One variant's launch: what the client saw and what telemetry landed on disk."""

    round: int
    variant: str
    latencies_s: list[float]
    failed: int
    service_cpu_ms_per_request: float
    wall_s: float
    spans: dict[str, int]
    metric_points: int
    files: int

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_s, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_s, 99) * 1000


class TelemetryCheckError(RuntimeError):
    """An ``on`` launch recorded nothing, or an ``off`` launch recorded something."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    jobs = plan_jobs(args.requests, DEFAULT_TENANTS, args.seed)
    warmup = plan_jobs(args.warmup, DEFAULT_TENANTS, args.seed + WARMUP_SEED_OFFSET)
    load_before = os.getloadavg()
    launches: list[Launch] = []
    try:
        for index in range(args.rounds):
            order = VARIANTS if index % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                _progress(f"round {index + 1}/{args.rounds} {variant}: starting")
                done = run_launch(index, variant, jobs, warmup, args)
                _check_telemetry(done)
                launches.append(done)
                _progress(f"round {index + 1}/{args.rounds} {variant}: p50 {done.p50_ms:.1f} "
                          f"ms, p99 {done.p99_ms:.1f} ms, services' CPU "
                          f"{done.service_cpu_ms_per_request:.1f} ms/request, "
                          f"{done.failed} failed, "
                          f"{sum(done.spans.values())} spans, {done.metric_points} metric points, "
                          f"{done.wall_s:.0f} s")
    except TelemetryCheckError as exc:
        print(f"bench_demo: {exc}", file=sys.stderr)
        return 1
    summary = summarize(launches)
    print(render(summary, args, load_before))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_document(summary, launches, args, load_before), indent=2))
        _progress(f"wrote {args.json}")
    return 0


def run_launch(
    index: int, variant: str, jobs: Sequence[Job], warmup: Sequence[Job], args: argparse.Namespace
) -> Launch:
    """Start the services with ``variant``, warm up, measure ``jobs``, stop them."""
    env = {SIM_SEED_ENV: str(args.seed), **args.env,
           SDK_DISABLED_ENV: "true" if variant == "off" else "false"}
    with tempfile.TemporaryDirectory(prefix=f"bench-demo-{variant}-") as scratch:
        out_dir, log_dir = Path(scratch) / "telemetry", Path(scratch) / "logs"
        started = time.perf_counter()
        with launch(out_dir=out_dir, env=env, log_dir=log_dir) as services:
            if warmup:
                asyncio.run(run_workload(services, warmup, args.concurrency, args.seed))
            cpu_before = _cpu_seconds(services.pids.values())
            summary = asyncio.run(run_workload(services, jobs, args.concurrency, args.seed))
            cpu_s = _cpu_seconds(services.pids.values()) - cpu_before
        # Read after the stop: the services flush their telemetry on SIGTERM.
        # Telemetry only: the demo's Chroma keeps its database under out_dir too.
        files = [p for p in out_dir.rglob("*") if p.is_file()
                 and p.relative_to(out_dir).parts[0] != CHROMA_DATA_DIR]
        exported = report.load(out_dir) if out_dir.is_dir() else report.Exported()
        return Launch(
            round=index, variant=variant, latencies_s=_latencies(summary.outcomes),
            failed=sum(1 for o in summary.outcomes if not o.ok),
            service_cpu_ms_per_request=cpu_s * 1000 / len(jobs),
            wall_s=time.perf_counter() - started, spans=_spans_by_service(exported),
            metric_points=len(exported.points), files=len(files),
        )


def _cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the services so far, from ``/proc`` (0 where there is none).

    CPU time per request tells telemetry's own cost apart from the queueing it causes
    on a busy machine, which the latencies mix.
    """
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def _latencies(outcomes: Sequence[Outcome]) -> list[float]:
    # Failed requests (the simulator's seeded errors) fail fast in both variants alike;
    # the goal is about answers.
    latencies = [o.latency_s for o in outcomes if o.ok]
    if not latencies:
        raise TelemetryCheckError("no request was answered: see the services' logs")
    return latencies


def _spans_by_service(exported: report.Exported) -> dict[str, int]:
    counts = dict.fromkeys(SERVICE_NAMES, 0)
    for span in exported.spans:
        counts[span.service] = counts.get(span.service, 0) + 1
    return counts


def _check_telemetry(done: Launch) -> None:
    if done.variant == "on":
        silent = [service for service, count in done.spans.items() if count == 0]
        if silent or not done.metric_points:
            raise TelemetryCheckError(
                f"round {done.round + 1} on: no spans from {', '.join(silent) or '-'}, "
                f"{done.metric_points} metric points")
    elif done.files:
        raise TelemetryCheckError(
            f"round {done.round + 1} off: {done.files} telemetry files written with "
            f"{SDK_DISABLED_ENV}=true")


def summarize(launches: Sequence[Launch]) -> dict[str, Any]:
    """Medians over rounds per variant, and the median of the paired on/off ratios."""
    by_round: dict[int, dict[str, Launch]] = {}
    for done in launches:
        by_round.setdefault(done.round, {})[done.variant] = done
    pairs = [r for r in by_round.values() if set(r) == set(VARIANTS)]
    variants = {
        v: {"p50_ms": statistics.median(r[v].p50_ms for r in pairs),
            "p99_ms": statistics.median(r[v].p99_ms for r in pairs),
            "failed": sum(r[v].failed for r in pairs),
            "service_cpu_ms_per_request": statistics.median(
                r[v].service_cpu_ms_per_request for r in pairs)}
        for v in VARIANTS
    }
    ratios = {q: [getattr(r["on"], q) / getattr(r["off"], q) for r in pairs]
              for q in ("p50_ms", "p99_ms")}
    return {
        "variants": variants,
        "paired_ratio": {q: statistics.median(values) for q, values in ratios.items()},
        "paired_ratio_by_round": ratios,
        "goal_met": {"p50": statistics.median(ratios["p50_ms"]) <= GOAL_P50,
                     "p99": statistics.median(ratios["p99_ms"]) <= GOAL_P99},
    }


def render(summary: Mapping[str, Any], args: argparse.Namespace,
           load_before: tuple[float, float, float]) -> str:
    variants, ratio = summary["variants"], summary["paired_ratio"]
    by_round = summary["paired_ratio_by_round"]
    lines = [
        f"{args.rounds} rounds x {args.requests} requests at concurrency {args.concurrency} "
        f"(load average before: {load_before[0]:.2f})",
        "| telemetry | p50 ms (median of rounds) | p99 ms (median of rounds) "
        "| services' CPU ms per request | failed (all rounds) |",
        "|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        v = variants[variant]
        lines.append(f"| {variant} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} "
                     f"| {v['service_cpu_ms_per_request']:.1f} | {v['failed']} |")
    for q, goal, key in (("p50_ms", GOAL_P50, "p50"), ("p99_ms", GOAL_P99, "p99")):
        spread = ", ".join(f"{r:.3f}" for r in by_round[q])
        verdict = "met" if summary["goal_met"][key] else "NOT met"
        lines.append(f"on/off {key}: {ratio[q]:.3f} (goal <= {goal:.2f}, {verdict}; "
                     f"rounds: {spread})")
    return "\n".join(lines)


def _document(summary: Mapping[str, Any], launches: Sequence[Launch], args: argparse.Namespace,
              load_before: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "benchmark": "demo end to end, telemetry on vs off (issue 12, goal 6)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_before": load_before,
                    "load_after": os.getloadavg()},
        "settings": {"rounds": args.rounds, "requests": args.requests,
                     "concurrency": args.concurrency, "warmup": args.warmup,
                     "seed": args.seed, "env": args.env},
        "summary": summary,
        "launches": [{**asdict(done), "p50_ms": done.p50_ms, "p99_ms": done.p99_ms}
                     for done in launches],
    }


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=_positive, default=6,
                        help="on/off pairs, order alternating (default 6)")
    parser.add_argument("--requests", type=_positive, default=200,
                        help="measured requests per launch (default 200)")
    parser.add_argument("--concurrency", type=_positive, default=4,
                        help="requests in flight (default 4)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="unmeasured requests after each start (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="workload and simulator seed")
    parser.add_argument("--env", type=_assignment, action="append", default=[],
                        metavar="KEY=VALUE", help="extra variable for the services, e.g. "
                        "LLM_SIM_TBT_MS=5 (repeatable)")
    parser.add_argument("--json", type=Path, default=Path("build/bench/demo.json"),
                        help="where to write the results (default build/bench/demo.json)")
    args = parser.parse_args(argv)
    args.env = dict(args.env)
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key == SDK_DISABLED_ENV:
        raise argparse.ArgumentTypeError(f"{SDK_DISABLED_ENV} is what this benchmark varies")
    return key, value


def _progress(message: str) -> None:
    print(f"[bench_demo {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
