"""Scale of the cost (issue 12, goal 4): how otel-ml's cost grows with the work.

In process, with the providers ``configure()`` builds (its views included)
exporting to a discarding span exporter and an in-memory metric reader
(``bench_sdk.providers``), three sweeps:

- chunks per stream: one ``generation()`` + ``wrap()`` over real OpenAI
  ``ChatCompletionChunk`` objects with usage in the last chunk (no local token
  counting), minus the bare loop over the same objects: time per request and
  per chunk. Expected: a constant per request plus a constant per chunk.
- concurrent open streams in asyncio: N tasks each consuming a ``wrap_async``
  over an async generator that yields to the loop between chunks, so all N
  spans are open at once. Time per request and peak traced memory must be
  linear in N; once they end, after a flush and ``gc``, nothing may remain
  (no live span object, traced memory back near where it started).
- distinct tenants and models: N requests, request i in ``tenant("t{i}")``
  and/or on model ``m{i}`` (priced by a pricing override), then one collect:
  data points per metric. Tenants fold into ``__overflow__`` past
  ``max_tenants`` (100), so series must stay bounded by the cap.

    python bench/bench_scale.py [--chunks 20,200,2000] [--streams 1,100,1000]
        [--cardinality 1,10,100,1000,10000] [--runs 50] [--json out.json]
        [--png docs/img/scale.png]

Progress goes to stderr, tables to stdout. Not exercised here: the
collector's span-metrics cardinality limit (an end-to-end case).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from bench_sdk import openai_chunks, providers
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otel_ml
from otel_ml import semconv
from otel_ml.pricing import PriceTable
from otel_ml.spans import GenerationSpan

MODEL = "gpt-4o-mini"
STREAM_CHUNKS = 20  # chunks per stream in the concurrency sweep
CARDINALITY_CHUNKS = 3
# The OTel Python SDK's default per-metric cardinality limit (1.45): past it,
# new attribute sets fold into one point with otel.metric.overflow=true.
SDK_CARDINALITY_LIMIT = 2000


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def build(pricing: Any = None) -> tuple[otel_ml.Telemetry, InMemoryMetricReader]:
    tracer_provider, meter_provider = providers()
    tel = otel_ml.Telemetry(
        tracer_provider, meter_provider, owns_providers=True, prices=PriceTable.load(pricing)
    )
    return tel, reader_of(meter_provider)


def reader_of(meter_provider: MeterProvider) -> InMemoryMetricReader:
    # bench_sdk.providers() keeps its reader only inside the provider.
    reader = meter_provider._metric_readers[0]
    assert isinstance(reader, InMemoryMetricReader)
    return reader


# --- (a) chunks per stream -------------------------------------------------------


def chunk_sweep(tel: otel_ml.Telemetry, counts: Sequence[int], runs: int) -> list[dict[str, Any]]:
    """Median over ``runs`` alternated runs of one instrumented stream and the
    bare loop over the same chunk objects, at each stream length."""
    streams = {count: openai_chunks(count) for count in counts}

    def bare(chunks: list[Any]) -> None:
        for _ in iter(chunks):
            pass

    def wrapped(chunks: list[Any]) -> None:
        with tel.tenant("acme"), tel.generation(MODEL, "openai", stream=True) as g:
            for _ in g.wrap(iter(chunks)):
                pass

    times: dict[tuple[str, int], list[float]] = {}
    for run in range(runs + max(runs // 10, 2)):  # the first runs warm up
        for count in counts:
            for name, fn in (("bare", bare), ("wrap", wrapped)):
                start = time.perf_counter()
                fn(streams[count])
                if run >= max(runs // 10, 2):
                    times.setdefault((name, count), []).append(time.perf_counter() - start)
    rows = []
    for count in counts:
        overhead = statistics.median(times["wrap", count]) - statistics.median(times["bare", count])
        rows.append(
            {
                "chunks": count,
                "us_per_request": overhead * 1e6,
                "us_per_chunk": overhead / count * 1e6,
                "bare_us_per_request": statistics.median(times["bare", count]) * 1e6,
            }
        )
    # The marginal cost: the slope between consecutive sizes.
    for small, large in itertools.pairwise(rows):
        large["us_per_extra_chunk"] = (large["us_per_request"] - small["us_per_request"]) / (
            large["chunks"] - small["chunks"]
        )
    return rows


# --- (b) concurrent open streams -------------------------------------------------


async def chunk_source(chunks: list[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        await asyncio.sleep(0)  # let every other stream advance: all stay open
        yield chunk


async def one_stream(tel: otel_ml.Telemetry | None, chunks: list[Any], index: int) -> None:
    if tel is None:
        async for _ in chunk_source(chunks):
            pass
        return
    with tel.tenant(f"t{index % 10}"), tel.generation(MODEL, "openai", stream=True) as g:
        async for _ in g.wrap_async(chunk_source(chunks)):
            pass


async def many_streams(tel: otel_ml.Telemetry | None, chunks: list[Any], count: int) -> None:
    await asyncio.gather(*(one_stream(tel, chunks, i) for i in range(count)))


def live_generation_spans() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, GenerationSpan))


def concurrency_sweep(
    tel: otel_ml.Telemetry, counts: Sequence[int], runs: int
) -> list[dict[str, Any]]:
    chunks = openai_chunks(STREAM_CHUNKS)
    asyncio.run(many_streams(tel, chunks, max(counts)))  # warm-up: caches, series
    rows = []
    for count in counts:
        repeats = max(3, runs * 10 // max(count, 1))
        timed: dict[str, list[float]] = {"bare": [], "otel_ml": []}
        for _ in range(repeats):
            for name, target in (("bare", None), ("otel_ml", tel)):
                start = time.perf_counter()
                asyncio.run(many_streams(target, chunks, count))
                timed[name].append((time.perf_counter() - start) / count)
        memory = traced_memory(tel, chunks, count)
        bare, ours = statistics.median(timed["bare"]), statistics.median(timed["otel_ml"])
        rows.append(
            {
                "streams": count,
                "us_per_request": ours * 1e6,
                "bare_us_per_request": bare * 1e6,
                "overhead_us_per_request": (ours - bare) * 1e6,
                **memory,
            }
        )
        progress(
            f"  {count} streams: {ours * 1e6:.0f} µs/request, "
            f"peak {memory['peak_kib_over_bare']:.0f} KiB over bare, "
            f"retained {memory['retained_kib']:.1f} KiB, "
            f"live spans {memory['live_generation_spans_after']}"
        )
    return rows


def traced_memory(tel: otel_ml.Telemetry, chunks: list[Any], count: int) -> dict[str, Any]:
    """Peak traced memory of ``count`` concurrent streams, instrumented and
    bare, and what the instrumented run leaves behind once its spans are
    exported and garbage is collected: after a first run (exemplar cells
    refilled, containers at their high-water size) and after the same run
    again, which must add nothing if nothing accumulates."""
    result: dict[str, Any] = {}
    for name, target in (("bare", None), ("otel_ml", tel)):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        asyncio.run(many_streams(target, chunks, count))
        peak = tracemalloc.get_traced_memory()[1]
        result[f"peak_kib_{name}"] = (peak - before) / 1024
        if target is not None:
            after_first = settled(tel)
            asyncio.run(many_streams(target, chunks, count))
            result["retained_kib"] = (after_first - before) / 1024
            result["repeat_growth_kib"] = (settled(tel) - after_first) / 1024
        tracemalloc.stop()
    result["peak_kib_over_bare"] = result["peak_kib_otel_ml"] - result["peak_kib_bare"]
    result["peak_kib_per_stream_over_bare"] = result["peak_kib_over_bare"] / count
    result["live_generation_spans_after"] = live_generation_spans()
    return result


def flush_spans(tel: otel_ml.Telemetry) -> None:
    """Export ended spans: the batch queue holds them until then."""
    provider = tel.tracer_provider
    assert isinstance(provider, TracerProvider)
    provider.force_flush()


def settled(tel: otel_ml.Telemetry) -> int:
    """Traced bytes once ended spans are exported (the batch queue holds them
    until then) and garbage is collected."""
    flush_spans(tel)
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


# --- (c) distinct tenants and models ---------------------------------------------


def cardinality_run(count: int, mode: str) -> dict[str, Any]:
    """``count`` requests, each on a distinct tenant, model or both (``mode``),
    with a fresh Telemetry, then one collect. Timed without tracemalloc; the
    memory held comes from a second, identical run under tracemalloc."""
    models = [f"m{i}" for i in range(count)] if mode in ("models", "both") else [MODEL]
    pricing = {"models": {name: {"input": 1.0, "output": 2.0} for name in models}}
    chunks = openai_chunks(CARDINALITY_CHUNKS)

    def requests(tel: otel_ml.Telemetry) -> None:
        for i in range(count):
            tenant = f"t{i}" if mode in ("tenants", "both") else "acme"
            with (
                tel.tenant(tenant),
                tel.generation(models[i % len(models)], "openai", stream=True) as g,
            ):
                for _ in g.wrap(iter(chunks)):
                    pass

    tel, reader = build(pricing)
    start = time.perf_counter()
    requests(tel)
    elapsed = time.perf_counter() - start
    series = series_per_metric(reader)
    tel.shutdown()
    tel, _ = build(pricing)
    gc.collect()
    tracemalloc.start()
    requests(tel)
    flush_spans(tel)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tel.shutdown()
    return {
        "mode": mode,
        "distinct": count,
        "us_per_request": elapsed / count * 1e6,
        "held_kib_after": held / 1024,
        "max_series_per_metric": max(s["points"] for s in series.values()),
        "series": series,
    }


def series_per_metric(reader: InMemoryMetricReader) -> dict[str, dict[str, int]]:
    """Data points per otel-ml metric, and how many distinct tenant and model
    values, and SDK overflow points, they carry."""
    found: dict[str, dict[str, int]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = list(metric.data.data_points)
                attrs = [dict(getattr(point, "attributes", None) or {}) for point in points]
                found[metric.name] = {
                    "points": len(points),
                    "tenants": len({a.get(semconv.TENANT_ID) for a in attrs} - {None}),
                    "models": len({a.get(semconv.GEN_AI_REQUEST_MODEL) for a in attrs} - {None}),
                    "sdk_overflow_points": sum(1 for a in attrs if a.get("otel.metric.overflow")),
                }
    return found


def cardinality_sweep(counts: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for mode in ("tenants", "models", "both"):
        for count in counts:
            row = cardinality_run(count, mode)
            progress(
                f"  {mode} x{count}: {row['max_series_per_metric']} series at most per "
                f"metric, {row['us_per_request']:.0f} µs/request"
            )
            rows.append(row)
    return rows


# --- output ------------------------------------------------------------------------


def table(title: str, header: Sequence[str], rows: Iterator[Sequence[Any]]) -> None:
    print(f"\n{title}\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(fmt(cell) for cell in row) + " |")


def fmt(cell: Any) -> str:
    if isinstance(cell, float):
        return f"{cell:.2f}" if abs(cell) < 10 else f"{cell:.0f}"
    return str(cell)


def print_tables(results: dict[str, Any]) -> None:
    table(
        "(a) chunks per stream: generation() + wrap(), overhead over the bare loop",
        ["chunks", "µs per request", "µs per chunk", "µs per extra chunk", "bare µs"],
        (
            (
                r["chunks"],
                r["us_per_request"],
                r["us_per_chunk"],
                r.get("us_per_extra_chunk", "-"),
                r["bare_us_per_request"],
            )
            for r in results["chunks"]
        ),
    )
    table(
        f"(b) concurrent open streams in asyncio ({STREAM_CHUNKS} chunks each, wrap_async)",
        [
            "streams",
            "µs per request",
            "overhead µs",
            "peak KiB over bare",
            "KiB per stream",
            "retained KiB after",
            "growth KiB on repeat",
            "live spans after",
        ],
        (
            (
                r["streams"],
                r["us_per_request"],
                r["overhead_us_per_request"],
                r["peak_kib_over_bare"],
                r["peak_kib_per_stream_over_bare"],
                r["retained_kib"],
                r["repeat_growth_kib"],
                r["live_generation_spans_after"],
            )
            for r in results["streams"]
        ),
    )
    names = (semconv.METRIC_COST, semconv.METRIC_OPERATION_DURATION, semconv.METRIC_TOKEN_USAGE)
    table(
        "(c) distinct tenants / models: data points per metric after one collect "
        f"(max_tenants={results['max_tenants']}, SDK limit {SDK_CARDINALITY_LIMIT})",
        [
            "distinct",
            "mode",
            "max series/metric",
            *(f"{n} points" for n in names),
            "tenant values",
            "model values",
            "SDK overflow pts",
            "µs/request",
            "KiB held",
        ],
        (
            (
                r["distinct"],
                r["mode"],
                r["max_series_per_metric"],
                *(r["series"].get(n, {}).get("points", 0) for n in names),
                max(s["tenants"] for s in r["series"].values()),
                max(s["models"] for s in r["series"].values()),
                max(s["sdk_overflow_points"] for s in r["series"].values()),
                r["us_per_request"],
                r["held_kib_after"],
            )
            for r in results["cardinality"]
        ),
    )


def plot(results: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    chunks = results["chunks"]
    axes[0].plot([r["chunks"] for r in chunks], [r["us_per_request"] for r in chunks], "o-")
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="chunks per stream",
        ylabel="overhead µs per request",
        title="(a) chunks per stream",
    )
    streams = results["streams"]
    xs = [r["streams"] for r in streams]
    axes[1].plot(xs, [r["peak_kib_over_bare"] for r in streams], "o-", label="peak KiB over bare")
    axes[1].plot(
        xs, [max(r["retained_kib"], 0.1) for r in streams], "s--", label="KiB retained after"
    )
    axes[1].plot(
        xs,
        [max(r["repeat_growth_kib"], 0.1) for r in streams],
        "x-.",
        label="KiB growth on a repeat",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="concurrent open streams",
        title="(b) concurrent streams: traced memory",
    )
    twin = axes[1].twinx()
    twin.plot(
        xs, [r["us_per_request"] for r in streams], "^:", color="gray", label="µs per request"
    )
    twin.set_ylabel("µs per request")
    axes[1].legend(loc="upper left", fontsize=8)
    twin.legend(loc="lower right", fontsize=8)
    for mode, style in (("tenants", "o-"), ("models", "s--"), ("both", "^:")):
        rows = [r for r in results["cardinality"] if r["mode"] == mode]
        axes[2].plot(
            [r["distinct"] for r in rows],
            [r["max_series_per_metric"] for r in rows],
            style,
            label=f"distinct {mode}",
        )
    axes[2].axhline(results["max_tenants"], color="gray", lw=0.8, label="max_tenants")
    axes[2].axhline(SDK_CARDINALITY_LIMIT, color="red", lw=0.8, label="SDK cardinality limit")
    axes[2].set(
        xscale="log",
        yscale="log",
        xlabel="distinct tenants / models",
        ylabel="series (points) per metric, max",
        title="(c) metric series",
    )
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", default="20,200,2000", help="chunks per stream")
    parser.add_argument("--streams", default="1,100,1000", help="concurrent open streams")
    parser.add_argument(
        "--cardinality", default="1,10,100,1000,10000", help="distinct tenants / models"
    )
    parser.add_argument("--runs", type=int, default=50, help="runs per size (a, b)")
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--png", help="also plot the three curves into this PNG")
    args = parser.parse_args()

    tel, _ = build()
    progress("(a) chunks per stream")
    chunk_rows = chunk_sweep(tel, sizes(args.chunks), args.runs)
    progress("(b) concurrent open streams")
    stream_rows = concurrency_sweep(tel, sizes(args.streams), args.runs)
    tel.shutdown()
    progress("(c) distinct tenants and models")
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown cpu'}",
        "runs": args.runs,
        "max_tenants": 100,
        "chunks": chunk_rows,
        "streams": stream_rows,
        "cardinality": cardinality_sweep(sizes(args.cardinality)),
    }
    print_tables(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    if args.png:
        plot(results, args.png)
    return 0 if checks(results) else 1


def checks(results: dict[str, Any]) -> bool:
    """The run fails when a bound the docs promise does not hold."""
    ok = True
    for row in results["streams"]:
        if row["live_generation_spans_after"]:
            progress(
                f"FAIL: {row['live_generation_spans_after']} spans alive after "
                f"{row['streams']} streams ended"
            )
            ok = False
    limit = results["max_tenants"] + 1  # the kept tenants plus __overflow__
    for row in results["cardinality"]:
        tenants = max(s["tenants"] for s in row["series"].values())
        if tenants > limit:
            progress(f"FAIL: {tenants} tenant values on one metric, cap {limit}")
            ok = False
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
