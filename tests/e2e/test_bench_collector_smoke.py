"""CI smoke run of ``bench/bench_collector.py``: one shape, one low rate, a few seconds.

It times nothing: it proves the benchmark still runs end to end against the
real programs (our collector from ``otelcol.yaml``, the pass-through one, the
sink, telemetrygen), that not one span is lost at a rate far below either
pipeline's limit, and that every figure the docs report is in the JSON.

Like the rest of the e2e suite it fails, never skips, when a program is
missing: the benchmark exits non-zero naming it, and this test shows why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_collector.py"
RATE = 1000
SECONDS = 3


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-collector") / "collector.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--shapes", "three", "--rates", str(RATE),
         "--duration", str(SECONDS), "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    if run.returncode != 0:
        pytest.fail(
            f"bench_collector.py exited {run.returncode}:\n{run.stderr[-3000:]}", pytrace=False
        )
    loaded: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("pipeline", ["passthrough", "ours"])
def test_every_span_arrives_at_a_low_rate(results: dict[str, Any], pipeline: str) -> None:
    (step,) = [s for s in results["steps"] if s["pipeline"] == pipeline]
    assert step["shape"] == "three"
    # telemetrygen makes 2 spans per trace and reaches most of the offered rate.
    assert step["generated"] >= 0.75 * RATE * SECONDS
    assert step["accepted"] == step["generated"]
    assert step["lost"] == 0, step["losses"]
    assert step["sustained"] is True
    if pipeline == "ours":
        # Through memory limiter, redaction, batch and the disk queue to the sink.
        assert step["delivered"] == step["accepted"]
        assert step["losses"]["not_delivered"] == 0


@pytest.mark.parametrize("pipeline", ["passthrough", "ours"])
def test_the_reported_figures_are_present(results: dict[str, Any], pipeline: str) -> None:
    best = results["best"]["three"][pipeline]
    assert best is not None, "no rate was sustained"
    assert best["offered_per_s"] == RATE
    assert best["cpu_s"] > 0
    assert best["spans_per_cpu_s"] == round(best["accepted"] / best["cpu_s"])
    # A running collector is tens of MiB; a zero would mean the wrong process was read.
    assert 10 < best["peak_rss_mib"] < 2048
    assert results["ratios"]["three"] == pytest.approx(
        results["best"]["three"]["ours"]["spans_per_cpu_s"]
        / results["best"]["three"]["passthrough"]["spans_per_cpu_s"],
        abs=0.001,
    )


def test_a_missing_program_fails_the_run_naming_it(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--shapes", "three", "--rates", str(RATE),
         "--duration", "1", "--json", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "TELEMETRYGEN_BIN": str(tmp_path / "no-such-program")},
    )
    assert run.returncode == 2
    assert "TELEMETRYGEN_BIN" in run.stderr
    assert not (tmp_path / "out.json").exists()


def test_the_forward_floor_variant_delivers_every_span(tmp_path: Path) -> None:
    """``--ours-variant forward`` (otelcol.yaml with no processor and an in-memory
    queue, docs/performance.md "The floor") runs and loses nothing either."""
    out = tmp_path / "forward.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--pipelines", "ours", "--ours-variant", "forward",
         "--shapes", "three", "--rates", str(RATE), "--duration", str(SECONDS),
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(out.read_text(encoding="utf-8"))
    assert loaded["settings"]["ours"] == "forward"
    (step,) = loaded["steps"]
    assert step["lost"] == 0 and step["delivered"] == step["accepted"] > 0, step
