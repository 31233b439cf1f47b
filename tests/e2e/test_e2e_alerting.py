"""Alerting: a tenant over a tiny budget fires TenantDailyCostOverBudget, end to end.

The budget rules are generated from a budgets file by the project's own
script (scripts/gen_budget_rules.py), written over the running Prometheus'
budgets.yml and loaded with POST /-/reload. The project's real alert rule
then fires, Prometheus sends it to the real Alertmanager, and Alertmanager
notifies the webhook its alertmanager.yml names (127.0.0.1:5001/alerts),
which this test serves.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_clients import (
    ALERT_TIMEOUT_S,
    METRIC_TIMEOUT_S,
    Alertmanager,
    Prometheus,
    WebhookReceiver,
    poll,
)
from e2e_demo import Traffic

from otel_ml.cli.stack import Stack

pytestmark = pytest.mark.e2e

ALERT = "TenantDailyCostOverBudget"
OVER, UNDER = "acme", "globex"
# Far below one answer's cost (about $7e-5), and far above the suite's spend.
BUDGETS = {"currency": "USD", "tenants": {OVER: 0.000001, UNDER: 1000}}
GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "gen_budget_rules.py"


@pytest.fixture
def tiny_budget(stack: Stack, tmp_path: Path, prometheus: Prometheus) -> Iterator[None]:
    """The budget rules of BUDGETS, loaded into the running Prometheus; restored after."""
    rules = stack.prometheus_rules_dir / "budgets.yml"
    original = rules.read_text()
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump(BUDGETS))
    subprocess.run(
        [sys.executable, str(GENERATOR), "--budgets", str(budgets), "--out", str(rules)],
        check=True, capture_output=True, text=True,
    )
    stack.reload_prometheus()
    try:
        poll(
            lambda: prometheus.values("otel_ml:tenant_budget_usd", ("tenant_id",)),
            lambda got: got == {(OVER,): 0.000001, (UNDER,): 1000.0},
            timeout=METRIC_TIMEOUT_S,
            what="the tiny budget rules",
        )
        yield
    finally:
        rules.write_text(original)
        stack.reload_prometheus()


def _firing(alerts: list[dict[str, Any]], tenant: str) -> list[dict[str, Any]]:
    return [
        a for a in alerts
        if a["labels"].get("alertname") == ALERT
        and a["labels"].get("tenant_id") == tenant
        and a.get("status") == "firing"
    ]


def test_cost_budget_alert_fires_and_reaches_the_webhook(
    webhook: WebhookReceiver,  # listening before the budget can make the alert fire
    tiny_budget: None,
    traffic: Traffic,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
) -> None:
    # increase() only sees spend between two scrapes of the tenant's cost
    # series: spend before its first scrape never counts (rules/llm.yml). So
    # wait for Prometheus to have the series, then spend.
    poll(
        lambda: prometheus.query(f'llm_cost_usd_total{{tenant_id="{OVER}"}}'),
        bool,
        timeout=METRIC_TIMEOUT_S,
        what=f"{OVER}'s cost series in Prometheus",
    )
    traffic.ask_many([(OVER, False), (OVER, True)])
    received = poll(
        webhook.alerts,
        lambda alerts: bool(_firing(alerts, OVER)),
        timeout=ALERT_TIMEOUT_S,
        what=f"a firing {ALERT} for {OVER} at the webhook",
    )
    (alert, *_) = _firing(received, OVER)
    assert alert["labels"]["severity"] == "warning"
    assert OVER in alert["annotations"]["summary"]
    # It went through Alertmanager (which still holds it) ...
    held = alertmanager.alerts(ALERT)
    assert any(
        a["labels"].get("tenant_id") == OVER and a["status"]["state"] == "active" for a in held
    )
    # ... and only the tenant over its budget fired, in Prometheus' own record
    # of the last minutes (ALERTS), not just at this instant.
    # Prometheus notifies at once but writes ALERTS samples only from the
    # group's next evaluation: poll for them.
    alerts = f'ALERTS{{alertname="{ALERT}", alertstate="firing"}}'
    fired = poll(
        lambda: prometheus.values(
            f"max by (tenant_id) (max_over_time({alerts}[5m]))", ("tenant_id",)
        ),
        bool,
        timeout=METRIC_TIMEOUT_S,
        what=f"ALERTS samples of {ALERT}",
    )
    assert set(fired) == {(OVER,)}, (fired, prometheus.alerts())
    assert not _firing(webhook.alerts(), UNDER)
