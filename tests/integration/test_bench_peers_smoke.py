"""The peer benchmark (bench/bench_peers.py) at a tiny size, so that it cannot rot:
the uninstrumented client, otel-ml both ways and one peer (the official
openai-v2), one round, 20 and 200 chunks. Nothing is timed against a
threshold; what is checked is that every variant recorded its telemetry and
that the results carry the paired ratios the docs quote.

The venvs are cached under ``~/.cache/otel-ml/venvs`` (bench_peers builds them);
building them needs the package index: without it the test skips locally and
fails in CI (``CI=true``), where a skipped benchmark would hide that it broke.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_ml import semconv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_peers.py"
PEER = "openai-v2 2.4b0"
OTEL_ML = ("otel-ml wrap", "otel-ml instrument_openai")
ENV_UNAVAILABLE = 3  # bench_peers' exit status when a venv cannot be built


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"peer benchmark venvs: {reason}")
    pytest.skip(f"peer benchmark venvs: {reason} (no package index?)")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "peers.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--variants",
            ",".join((*OTEL_ML, PEER)),
            "--rounds",
            "1",
            "--requests",
            "10",
            "--warmup",
            "2",
            "--sizes",
            "20,200",
            "--json",
            str(out),
            "--plot",
            "",
            "--no-tiktoken",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode == ENV_UNAVAILABLE:
        _unavailable(done.stderr[-2000:])
    assert done.returncode == 0, done.stderr[-4000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_every_variant_ran_and_recorded(results: dict[str, Any]) -> None:
    variants = results["variants"]
    assert set(variants) == {"uninstrumented", *OTEL_ML, PEER}
    for entry in variants.values():
        assert entry["ok"], entry["failures"]
        assert entry["rounds_completed"] == 1
        assert entry["us_per_request"]["200"] > entry["us_per_request"]["20"] > 0
    for name in (*OTEL_ML, PEER):
        assert variants[name]["spans_per_request"]["200"] >= 1, name
        assert variants[name]["metrics_recorded"][semconv.METRIC_TOKEN_USAGE] > 0, name
    for name in OTEL_ML:
        recorded = variants[name]["metrics_recorded"]
        assert recorded[semconv.METRIC_COST] > 0
        # Every inter-chunk gap of every stream reaches the histogram.
        assert recorded[semconv.METRIC_TIME_PER_OUTPUT_CHUNK] >= 199
        assert variants[name]["tiktoken_loaded"] is False  # usage came from the provider


def test_results_carry_paired_ratios_and_per_chunk_cost(results: dict[str, Any]) -> None:
    variants = results["variants"]
    assert "ratio" not in variants["uninstrumented"]
    for name in (*OTEL_ML, PEER):
        entry = variants[name]
        assert entry["baseline"] == "uninstrumented"
        assert set(entry["ratio"]) == {"20", "200"}
        assert entry["ratio"]["200"] > 0
        assert isinstance(entry["overhead_us_per_extra_chunk"], float)
        assert isinstance(entry["rss_over_baseline_mb"], float)
    assert results["sizes"] == [20, 200]
    assert results["envs"]["openai-v2"]["freeze"], "the resolved versions are recorded"
    assert any(
        line.startswith("opentelemetry-instrumentation-openai-v2==2.4b0")
        for line in results["envs"]["openai-v2"]["freeze"]
    )


def test_a_variant_that_records_nothing_fails(results: dict[str, Any], tmp_path: Path) -> None:
    """The same peer runner with the SDK disabled (OTEL_SDK_DISABLED, which the
    SDK honours): no span reaches the exporter, so the runner must fail, not
    report a cheap request."""
    sys.path.insert(0, str(BENCH.parent))
    import bench_peers

    workload = bench_peers.write_workload(tmp_path, [20, 200])
    python = bench_peers.env_root("openai-v2") / "bin" / "python"
    done = subprocess.run(
        [
            str(python),
            str(bench_peers.PEERS / "openai_v2.py"),
            "--workload",
            str(workload),
            "--requests",
            "5",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OTEL_SDK_DISABLED": "true"},
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "0 spans for" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["problems"]
