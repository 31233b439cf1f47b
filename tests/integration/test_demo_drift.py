"""The api's RAG drift monitor over real HTTP: quiet on ordinary traffic, firing on drift.

The three services run with a short recompute interval and a fast metric export. A
baseline phase of the driver's ordinary workload must leave ``ml.drift.detected`` at 0;
a drift phase of out-of-corpus questions must set it to 1 for the retrieval top score,
the groundedness score and the answer length. Verdicts are read from the api's exported
metrics files (every line, not only the last, since the services are still running),
keeping only points collected after the phase ended plus two recompute intervals, so
each verdict covers every answer of the phase.

The simulator keeps its default error and hallucination rates (those of the committed
reference); only its delays are shortened, which change none of the four signals.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from demo_files import attrs_of

from demo_rag import api, driver
from demo_rag.launcher import Services, launch
from otel_ml import semconv
from otel_ml.cli import report

TENANTS = ("acme", "globex")
DRIFT_INTERVAL_S = 0.5
EXPORT_INTERVAL_MS = 250
PHASE_REQUESTS = 40
SEED = 3
ENV = {
    "LLM_SIM_TTFT_MS": "5",
    "LLM_SIM_TTFT_SIGMA": "0",
    "LLM_SIM_TBT_MS": "1",
    "LLM_SIM_TBT_SIGMA": "0",
    "LLM_SIM_SEED": "11",
    api.DRIFT_INTERVAL_ENV: str(DRIFT_INTERVAL_S),
    "OTEL_METRIC_EXPORT_INTERVAL": str(EXPORT_INTERVAL_MS),
}
FEATURES = (
    semconv.RAG_RETRIEVAL_SCORE_MAX,
    semconv.RAG_RETRIEVAL_DOCUMENT_COUNT,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.RAG_GROUNDEDNESS_SCORE,
)
# Out-of-corpus questions move these for certain; the document count only sometimes.
MUST_DRIFT = (
    semconv.RAG_RETRIEVAL_SCORE_MAX,
    semconv.RAG_GROUNDEDNESS_SCORE,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
)
WAIT_S = 15.0


def _detected_in(line: str) -> list[tuple[int, str, float]]:
    """(collection time, feature, value) of the ml.drift.detected points of one line."""
    try:
        document: dict[str, Any] = json.loads(line)
    except ValueError:  # a line being written right now
        return []
    points = []
    for rm in document["resourceMetrics"]:
        for sm in rm["scopeMetrics"]:
            for metric in sm["metrics"]:
                if metric["name"] != semconv.METRIC_DRIFT_DETECTED:
                    continue
                for p in metric["gauge"]["dataPoints"]:
                    feature = attrs_of(p.get("attributes", []))[semconv.DRIFT_FEATURE]
                    points.append((int(p["timeUnixNano"]), feature, _number(p)))
    return points


def _api_lines(out_dir: Path) -> list[str]:
    (path,) = out_dir.glob(f"metrics-{api.SERVICE_NAME}-*.jsonl")
    return path.read_text(encoding="utf-8").splitlines()


def _number(point: Mapping[str, Any]) -> float:
    return float(point["asDouble"]) if "asDouble" in point else float(point["asInt"])


def _verdicts_after(out_dir: Path, after_ns: int) -> dict[str, float]:
    """Each feature's latest verdict collected after ``after_ns``, waiting for all four."""
    deadline = time.monotonic() + WAIT_S
    while True:
        latest: dict[str, tuple[int, float]] = {}
        exported = [point for line in _api_lines(out_dir) for point in _detected_in(line)]
        for at, feature, value in exported:
            if at >= after_ns and at >= latest.get(feature, (0, 0.0))[0]:
                latest[feature] = (at, value)
        if set(FEATURES) <= set(latest) or time.monotonic() > deadline:
            return {feature: value for feature, (_, value) in latest.items()}
        time.sleep(EXPORT_INTERVAL_MS / 1000)


def _phase(services: Services, jobs: list[driver.Job]) -> int:
    """Send one phase; returns the time after which a verdict covers all of it."""
    summary = asyncio.run(driver.run_workload(services, jobs, concurrency=4, seed=SEED))
    # Each answer is fed before its response is sent, so every value is in the window
    # now; a recompute starts within one interval, and finishes well within another.
    answered = sum(o.ok for o in summary.outcomes)
    assert answered >= 30, f"only {answered} answers: below the monitor's min_samples"
    return time.time_ns() + round(2 * DRIFT_INTERVAL_S * 1e9)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out_dir = tmp_path_factory.mktemp("drift-telemetry")
    baseline_jobs = driver.plan_jobs(PHASE_REQUESTS, TENANTS, SEED)
    drift_jobs = driver.plan_drift_jobs(PHASE_REQUESTS, TENANTS, SEED, start=PHASE_REQUESTS)
    with launch(out_dir=out_dir, tenants=TENANTS, env=ENV) as services:
        baseline = _verdicts_after(out_dir, _phase(services, baseline_jobs))
        drifted = _verdicts_after(out_dir, _phase(services, drift_jobs))
    return {"out_dir": out_dir, "baseline": baseline, "drifted": drifted}


def test_baseline_traffic_does_not_drift(verdicts: dict[str, Any]) -> None:
    assert verdicts["baseline"] == dict.fromkeys(FEATURES, 0)


def test_out_of_corpus_questions_drift(verdicts: dict[str, Any]) -> None:
    drifted = verdicts["drifted"]
    assert set(drifted) == set(FEATURES)
    assert {feature: drifted[feature] for feature in MUST_DRIFT} == dict.fromkeys(MUST_DRIFT, 1)


def test_final_verdict_is_exported_at_shutdown_and_reported(verdicts: dict[str, Any]) -> None:
    out_dir: Path = verdicts["out_dir"]
    # The api computes once more on its way out and keeps its gauges for the last export.
    final = {feature: value for _, feature, value in _detected_in(_api_lines(out_dir)[-1])}
    assert {feature: final.get(feature) for feature in MUST_DRIFT} == dict.fromkeys(MUST_DRIFT, 1)

    built = report.build_report(out_dir)
    assert {row.feature for row in built.drifted} >= set(MUST_DRIFT)
    assert all(row.service == api.SERVICE_NAME for row in built.drift)
