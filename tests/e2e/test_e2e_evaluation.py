"""Evaluations end to end: the demo api's groundedness and relevance evaluations reach
Prometheus as ``llm.evaluation.score``, their events reach the collector's logs
pipeline, and answers that hallucinate fire HallucinationRateHigh into Alertmanager.

The demo services here are this test's own, with the simulated model hallucinating in
every answer and a resource attribute ``e2e.run`` unique to the run; the tenant name is
unique too (the hallucination rule aggregates by tenant and model). The project's real
rag.yml is loaded into the running Prometheus with only its ``for:`` durations shortened.
The answers go into the session's :class:`~e2e_demo.Traffic` ledger, which the metric
tests compare every rag-api series with.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
from e2e_demo import Traffic
from e2e_rules import fast_rules

from demo_rag import api
from demo_rag.launcher import Services, launch
from otel_ml.cli.stack import Stack

pytestmark = pytest.mark.e2e

ALERT = "HallucinationRateHigh"
RULES_FILE = "rag.yml"
FAST_FOR_S = 10
# The rule needs 20 evaluated answers per tenant and model within increase(): a first
# few make the series exist and get scraped (increase() ignores what a counter counted
# before its first scrape), then the rest.
FIRST = 4
ANSWERS = 28
RUN_LABEL = "e2e_run"
ENV = {
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
    "LLM_SIM_SEED": "5",
    "LLM_SIM_ERROR_RATE": "0",
    "LLM_SIM_SLOW_RATE": "0",
    "LLM_SIM_HALLUCINATION_RATE": "1",
    "LLM_SIM_TTFT_MS": "5",
    "LLM_SIM_TBT_MS": "1",
}


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def tenant(run_id: str) -> str:
    return f"halluc-{run_id[:8]}"


@pytest.fixture
def fast_rag_rules(stack: Stack, http: httpx.Client) -> Iterator[None]:
    """The real rag.yml with every ``for:`` at 10s, loaded into Prometheus, then restored."""
    with fast_rules(stack, http, RULES_FILE, [ALERT], FAST_FOR_S):
        yield


@pytest.fixture
def hallucinating(stack: Stack, run_id: str, tenant: str, tmp_path: Path) -> Iterator[Services]:
    env = {**ENV, "OTEL_RESOURCE_ATTRIBUTES": f"e2e.run={run_id}"}
    with launch(otlp_endpoint=stack.urls.otlp_http, tenants=(tenant,), env=env,
                log_dir=tmp_path / "logs") as running:
        yield running


def _accepted_log_records(prometheus: Prometheus) -> float:
    series = prometheus.query(
        'sum({__name__=~"otelcol_receiver_accepted_log_records(_total)?", receiver="otlp"})')
    return float(series[0]["value"][1]) if series else 0.0


def test_evaluations_reach_prometheus_and_fire_the_hallucination_alert(
    fast_rag_rules: None,
    hallucinating: Services,
    run_id: str,
    tenant: str,
    http: httpx.Client,
    traffic: Traffic,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    webhook: WebhookReceiver,
) -> None:
    logs_before = _accepted_log_records(prometheus)
    ours = f'{RUN_LABEL}="{run_id}", service_name="{api.SERVICE_NAME}"'
    mine = Traffic(http, hallucinating)
    try:
        mine.ask_many([(tenant, i % 2 == 0) for i in range(FIRST)])
        poll(lambda: prometheus.query(f"llm_evaluation_score_count{{{ours}}}"), bool,
             timeout=METRIC_TIMEOUT_S, what="the first evaluations scraped")
        mine.ask_many([(tenant, i % 2 == 0) for i in range(ANSWERS - FIRST)])
    finally:
        traffic.record(mine.ledger)  # the session's metric tests count every answer
    assert len(mine.ledger) == ANSWERS

    # Every answer evaluated for groundedness (inline) and relevance (off the request
    # path), per tenant and model, in Prometheus.
    counts = poll(
        lambda: prometheus.values(
            f"sum by (gen_ai_evaluation_name, gen_ai_evaluation_score_label, tenant_id) "
            f"(llm_evaluation_score_count{{{ours}}})",
            ("gen_ai_evaluation_name", "gen_ai_evaluation_score_label", "tenant_id")),
        lambda got: {name: sum(v for (n, _, _), v in got.items() if n == name)
                     for name in ("groundedness", "answer_relevance", "context_relevance")}
        == dict.fromkeys(("groundedness", "answer_relevance", "context_relevance"),
                         float(ANSWERS)),
        timeout=METRIC_TIMEOUT_S,
        what="llm_evaluation_score_count for every answer and evaluation",
    )
    assert {t for _, _, t in counts} == {tenant}
    # The simulated model added a fabricated sentence to every answer: all unsupported.
    assert counts[("groundedness", "unsupported", tenant)] == float(ANSWERS)
    ratio = poll(
        lambda: prometheus.values(
            f'tenant_model:llm_evaluation_unsupported:ratio_rate30m{{tenant_id="{tenant}"}}',
            ("gen_ai_request_model",)),
        bool, timeout=METRIC_TIMEOUT_S, what="the hallucination-rate recording rule")
    assert list(ratio.values()) == [1.0]
    # The gen_ai.evaluation.result events (3 per answer) reached the collector's logs pipeline.
    poll(lambda: _accepted_log_records(prometheus) - logs_before,
         lambda got: got >= 3 * ANSWERS, timeout=METRIC_TIMEOUT_S,
         what="the evaluation events accepted by the collector's logs pipeline")

    # HallucinationRateHigh fires in Prometheus for this tenant ...
    def ours_firing(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in alerts if a["labels"].get("alertname") == ALERT
                and a["labels"].get("tenant_id") == tenant]

    firing = poll(lambda: [a for a in ours_firing(prometheus.alerts()) if a["state"] == "firing"],
                  bool, timeout=ALERT_TIMEOUT_S, what=f"{ALERT} firing for {tenant}")
    [alert] = firing
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["gen_ai_request_model"] in alert["annotations"]["summary"]
    assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#hallucinationratehigh"
    # ... reaches Alertmanager ...
    poll(lambda: [a for a in ours_firing(alertmanager.alerts(ALERT))
                  if a["status"]["state"] == "active"],
         bool, timeout=ALERT_TIMEOUT_S, what=f"{ALERT} active in Alertmanager")
    # ... and is delivered to the webhook, as firing.
    poll(lambda: [a for a in ours_firing(webhook.alerts()) if a["status"] == "firing"],
         bool, timeout=ALERT_TIMEOUT_S, what=f"a firing {ALERT} at the webhook")
