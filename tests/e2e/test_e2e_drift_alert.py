"""Drift alerting: the demo's drift phase fires FeatureDriftDetected, end to end.

The three demo services run against the session's collector with a 1 s drift
recompute and metric export. A baseline phase of the driver's ordinary
workload comes first, then the driver's drift phase of out-of-corpus
questions (``otel-ml demo --drift``). The project's real drift.yml is loaded
into the running Prometheus with only its ``for:`` durations shortened (15 min
is a production value), so the real expressions, labels and annotations are
what fires. The alert must then show in Prometheus, reach the real
Alertmanager, and be delivered to the webhook its alertmanager.yml names,
while after the baseline alone ``ml_drift_detected`` is 0 and nothing fired.

These services are this test's own, with a resource attribute ``e2e.run``
(label ``e2e_run``) unique to the test, so the series and alerts asserted
here are told apart from any other rag-api in the session. Their answers are
added to the session's :class:`~e2e_demo.Traffic` ledger: the metric tests
compare every rag-api series with that ledger.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_clients import (
    ALERT_TIMEOUT_S,
    METRIC_TIMEOUT_S,
    Alertmanager,
    Prometheus,
    WebhookReceiver,
    poll,
)
from e2e_demo import Asked, Traffic
from e2e_rules import alert_rules, fast_rules

from demo_rag import api, driver
from demo_rag.launcher import Services, launch
from otel_ml import semconv
from otel_ml.cli.stack import Stack
from otel_ml.drift import RAG_FEATURES

pytestmark = pytest.mark.e2e

ALERT = "FeatureDriftDetected"
RULES_FILE = "drift.yml"
# Two rule evaluations (5 s each): the alert still goes pending, then firing, as in
# production, but within seconds.
FAST_FOR_S = 10
RUN_LABEL = "e2e_run"  # the resource attribute e2e.run, as the collector's exporter names it
FEATURE_LABEL = semconv.DRIFT_FEATURE.replace(".", "_")  # ml.feature.name, likewise
# Not the session traffic's tenants: this test's spend and votes stay apart in
# every per-tenant series.
TENANTS = ("drift-north", "drift-south")
# Above the monitor's min_samples (30), so the baseline gets a verdict.
PHASE_REQUESTS = 40
SEED = 3
DRIFT_INTERVAL_S = 1.0
EXPORT_INTERVAL_MS = 1000
# From the last answer fed to a scrape that carries a verdict over it: a
# recompute starts within one interval and ends within another, then the SDK
# export (1 s) and the collector's batch (1 s), plus margin.
VERDICT_LAG_S = 2 * DRIFT_INTERVAL_S + EXPORT_INTERVAL_MS / 1000 + 1.0 + 1.0
ENV = {
    api.DRIFT_INTERVAL_ENV: str(DRIFT_INTERVAL_S),
    "OTEL_METRIC_EXPORT_INTERVAL": str(EXPORT_INTERVAL_MS),
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    # Seeded, so both phases' answers are the same on every run. Delays shortened
    # (they change none of the four signals); no failures or stalls, because the
    # metric tests expect no failed /ask in the session.
    "LLM_SIM_SEED": "11",
    "LLM_SIM_ERROR_RATE": "0",
    "LLM_SIM_SLOW_RATE": "0",
    "LLM_SIM_TTFT_MS": "5",
    "LLM_SIM_TTFT_SIGMA": "0",
    "LLM_SIM_TBT_MS": "1",
    "LLM_SIM_TBT_SIGMA": "0",
}
# Out-of-corpus questions move these for certain (tests/integration/test_demo_drift.py).
MUST_FIRE = (semconv.RAG_RETRIEVAL_SCORE_MAX, semconv.RAG_GROUNDEDNESS_SCORE)


# --- the rules ---------------------------------------------------------------------------------


def _evaluated_at(groups: list[dict[str, Any]]) -> float:
    """When the group holding the drift rule was last evaluated (unix seconds)."""
    for group in groups:
        if any(rule["name"] == ALERT for rule in group["rules"]):
            return _unix(group["lastEvaluation"])
    raise AssertionError(f"no rule group holds {ALERT}: {groups}")


def _unix(rfc3339: str) -> float:
    # Prometheus writes nanoseconds; datetime parses at most microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", rfc3339).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


@pytest.fixture
def fast_drift_rules(stack: Stack, http: httpx.Client) -> Iterator[None]:
    """The real drift.yml with short ``for:``, loaded into the running Prometheus, then restored."""
    with fast_rules(stack, http, RULES_FILE, [ALERT], FAST_FOR_S):
        yield


# --- the demo and its webhook ------------------------------------------------------------------


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def drift_services(stack: Stack, run_id: str, tmp_path: Path) -> Iterator[Services]:
    env = {**ENV, "OTEL_RESOURCE_ATTRIBUTES": f"e2e.run={run_id}"}
    with launch(
        otlp_endpoint=stack.urls.otlp_http, tenants=TENANTS, env=env, log_dir=tmp_path / "logs"
    ) as running:
        yield running


def send_phase(services: Services, jobs: Sequence[driver.Job], traffic: Traffic) -> float:
    """Send one phase through the driver; returns when (unix s) a verdict covers all of it."""
    summary = asyncio.run(driver.run_workload(services, jobs, concurrency=4, seed=SEED))
    # Into the session ledger first, so the metric tests stay exact even if this fails.
    traffic.record(
        Asked(o.job.tenant, o.trace_id, o.job.stream, o.input_tokens, o.output_tokens)
        for o in summary.outcomes if o.ok and o.trace_id
    )
    assert summary.failed == 0, [o for o in summary.outcomes if not o.ok]
    return time.time() + VERDICT_LAG_S


# --- reading the verdicts and alerts -----------------------------------------------------------


def verdicts_after(
    prometheus: Prometheus, run_id: str, after: float, done: Callable[[dict[str, float]], bool]
) -> dict[str, float]:
    """Each feature's ml_drift_detected from scrapes after ``after``, polled until ``done``."""
    series = f'ml_drift_detected{{service_name="{api.SERVICE_NAME}", {RUN_LABEL}="{run_id}"}}'
    fresh = f"{series} and (timestamp({series}) >= {after:.3f})"

    def fetch() -> dict[str, float]:
        return {feature: v for (feature,), v in prometheus.values(fresh, (FEATURE_LABEL,)).items()}

    return poll(fetch, done, timeout=METRIC_TIMEOUT_S, what=f"drift verdicts: {fresh}")


def _ours(alerts: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    return [
        a for a in alerts
        if a["labels"].get("alertname") == ALERT and a["labels"].get(RUN_LABEL) == run_id
    ]


def _features(alerts: list[dict[str, Any]]) -> set[str]:
    return {a["labels"][FEATURE_LABEL] for a in alerts}


def test_drift_phase_fires_the_drift_alert_into_alertmanager(
    fast_drift_rules: None,
    drift_services: Services,
    run_id: str,
    webhook: WebhookReceiver,
    traffic: Traffic,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    stack: Stack,
    http: httpx.Client,
) -> None:
    baseline = driver.plan_jobs(PHASE_REQUESTS, TENANTS, SEED)
    drift = driver.plan_drift_jobs(PHASE_REQUESTS, TENANTS, SEED, start=PHASE_REQUESTS)

    # Baseline alone: every feature has a verdict, and it is "no drift" ...
    after = send_phase(drift_services, baseline, traffic)
    verdict = verdicts_after(prometheus, run_id, after, lambda got: set(RAG_FEATURES) <= set(got))
    assert verdict == dict.fromkeys(RAG_FEATURES, 0.0)
    # ... and the shortened rule, evaluated over those verdicts, is quiet and never fired.
    seen = time.time()
    poll(lambda: _evaluated_at(alert_rules(http, stack.urls.prometheus)), lambda at: at > seen,
         timeout=METRIC_TIMEOUT_S, what=f"an evaluation of {ALERT} after the baseline verdicts")
    assert _ours(prometheus.alerts(), run_id) == []
    fired = f'ALERTS{{alertname="{ALERT}", alertstate="firing", {RUN_LABEL}="{run_id}"}}'
    assert prometheus.query(f"max_over_time({fired}[5m])") == []

    # The drift phase: the verdicts flip ...
    after = send_phase(drift_services, drift, traffic)
    verdict = verdicts_after(
        prometheus, run_id, after, lambda got: all(got.get(f) == 1.0 for f in MUST_FIRE)
    )
    drifted = {feature for feature, value in verdict.items() if value == 1.0}
    # ... and the alert fires in Prometheus, once for each drifted feature and only for those.
    firing = poll(
        lambda: [a for a in _ours(prometheus.alerts(), run_id) if a["state"] == "firing"],
        lambda alerts: set(MUST_FIRE) <= _features(alerts),
        timeout=ALERT_TIMEOUT_S,
        what=f"{ALERT} firing in Prometheus for {MUST_FIRE}",
    )
    assert _features(firing) <= drifted
    assert len(firing) == len(_features(firing))
    for alert in firing:
        labels = alert["labels"]
        assert labels["service_name"] == api.SERVICE_NAME and labels["severity"] == "warning"
        assert labels[FEATURE_LABEL] in alert["annotations"]["summary"]

    # ... reaches Alertmanager ...
    held = poll(
        lambda: [a for a in _ours(alertmanager.alerts(ALERT), run_id)
                 if a["status"]["state"] == "active"],
        lambda alerts: set(MUST_FIRE) <= _features(alerts),
        timeout=ALERT_TIMEOUT_S,
        what=f"{ALERT} active in Alertmanager for {MUST_FIRE}",
    )
    assert all(a["labels"]["service_name"] == api.SERVICE_NAME for a in held)

    # ... and is delivered to the webhook, as firing.
    received = poll(
        lambda: [a for a in _ours(webhook.alerts(), run_id) if a["status"] == "firing"],
        lambda alerts: set(MUST_FIRE) <= _features(alerts),
        timeout=ALERT_TIMEOUT_S,
        what=f"a firing {ALERT} for {MUST_FIRE} at the webhook",
    )
    assert all(a["labels"]["severity"] == "warning" for a in received)
