"""The in-process benchmarks run at a tiny size, so that a change that breaks
one fails CI rather than the next `make bench`. Nothing here is timed: the
figures belong in docs/performance.md, from full runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str, out: Path) -> dict:
    subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json", str(out)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    result: dict = json.loads(out.read_text())
    return result


def test_bench_openai_runs_every_variant(tmp_path: Path) -> None:
    result = _run("bench_openai.py", "--requests", "10", "--rounds", "1",
                  out=tmp_path / "openai.json")
    assert result["uninstrumented_us_per_request_200_chunks"] > 0
    for variant in ("generation+wrap", "instrument_openai"):
        assert result[variant]["ratio_200_chunks"] > 0
        assert "overhead_us_per_extra_chunk" in result[variant]


def test_bench_scale_runs_every_dimension(tmp_path: Path) -> None:
    result = _run("bench_scale.py", "--chunks", "20,200", "--streams", "1,10",
                  "--cardinality", "10,200", "--runs", "2", out=tmp_path / "scale.json")
    assert set(result) >= {"chunks", "streams", "cardinality"}, sorted(result)


def test_bench_demo_runs_on_and_off(tmp_path: Path) -> None:
    # The demo's three services and its Chroma server, once with telemetry and once
    # with OTEL_SDK_DISABLED=true; the script itself fails if "on" exported nothing
    # or "off" wrote a telemetry file.
    result = _run("bench_demo.py", "--rounds", "1", "--requests", "6", "--warmup", "2",
                  "--env", "LLM_SIM_TTFT_MS=5", "--env", "LLM_SIM_TBT_MS=1",
                  out=tmp_path / "demo.json")
    assert len(result["launches"]) == 2, sorted(result)
    by_variant = {launch["variant"]: launch for launch in result["launches"]}
    assert set(by_variant) == {"on", "off"}
    assert sum(by_variant["on"]["spans"].values()) > 0
    assert by_variant["off"]["files"] == 0
    assert set(by_variant["off"]["spans"].values()) == {0}
