"""Cost of the drift monitor: feeding one value, and one recompute of 20 features.

    .venv/bin/python bench/bench_drift.py [--features 20] [--window 10000] [--repeat 15]

Feeding is what request handlers pay on every request; recomputing is what the background
thread pays once per interval. Each recompute scenario fills every window (``--window``
values per feature) and uses a reference of the same size, then times ``compute()``,
reporting the median and the spread over ``--repeat`` runs. No metric reader is attached:
export cost belongs to the OTel SDK, not to the monitor.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from opentelemetry.sdk.metrics import MeterProvider

from otel_ml.drift import DriftMonitor, Method

CATEGORIES = [f"cat-{i}" for i in range(12)]


def per_call_ns(call: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter_ns()
    for i in range(calls):
        call(i)
    return (time.perf_counter_ns() - start) / calls


def bench_feed(features: int, window: int, calls: int) -> dict[str, float]:
    """ns per fed value: numeric and categorical feed(), and observe() of a whole record."""
    rng = np.random.default_rng(0)
    monitor = DriftMonitor(MeterProvider().get_meter("bench"), window=window)
    names = [f"f{i}" for i in range(features)]
    for name in names:
        monitor.add_feature(name, rng.normal(size=1000))
    monitor.add_feature("c", CATEGORIES)
    values = rng.normal(size=calls).tolist()
    record: dict[str, object] = {name: 0.5 for name in names}
    record["c"] = CATEGORIES[0]
    results = {
        "feed numeric": per_call_ns(lambda i: monitor.feed("f0", values[i]), calls),
        "feed categorical": per_call_ns(lambda i: monitor.feed("c", CATEGORIES[i % 12]), calls),
        "feed None (missing)": per_call_ns(lambda i: monitor.feed("f0", None), calls),
        f"observe {features + 1}-field record": per_call_ns(
            lambda i: monitor.observe(record), calls // 10
        ),
        "record_prediction with id": per_call_ns(
            lambda i: monitor.record_prediction(i & 1, prediction_id=i), calls
        ),
    }
    monitor.close()
    return results


def filled_monitor(
    features: int, window: int, method: Method | None, categorical: bool
) -> DriftMonitor:
    rng = np.random.default_rng(1)
    monitor = DriftMonitor(MeterProvider().get_meter("bench"), window=window)
    for i in range(features):
        name = f"f{i}"
        if categorical:
            monitor.add_feature(name, rng.choice(CATEGORIES, window).tolist(), method=method)
            monitor.feed_many(name, rng.choice(CATEGORIES, window).tolist())
        else:
            monitor.add_feature(name, rng.normal(size=window), method=method)
            monitor.feed_many(name, rng.normal(0.1, 1.0, window).tolist())
    return monitor


def bench_compute(
    features: int, window: int, repeat: int, method: Method | None, categorical: bool
) -> tuple[str, list[float]]:
    monitor = filled_monitor(features, window, method, categorical)
    monitor.compute()  # warm caches and lazy imports
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        report = monitor.compute()
        timings.append((time.perf_counter() - start) * 1000)
    methods = {f.drift.method for f in report.features.values() if f.drift}
    monitor.close()
    return "+".join(sorted(methods)) + " + psi", timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")

    print(f"\nfeeding (window {args.window}, {args.calls} calls)")
    for name, ns in bench_feed(args.features, args.window, args.calls).items():
        print(f"  {name:32} {ns / 1000:8.2f} us per call")

    print(f"\none compute(): {args.features} features, {args.window}-value windows and references")
    scenarios: list[tuple[str, Method | None, bool]] = [
        ("numeric, default method", None, False),
        ("numeric, KS forced", "ks", False),
        ("categorical (12), default method", None, True),
    ]
    for label, method, categorical in scenarios:
        methods, ms = bench_compute(args.features, args.window, args.repeat, method, categorical)
        spread = f"min {min(ms):.1f}, max {max(ms):.1f}"
        print(f"  {label:34} [{methods}] median {statistics.median(ms):7.1f} ms ({spread})")


if __name__ == "__main__":
    main()
