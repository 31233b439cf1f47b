"""Bias alerting: the drift demo's bias scenario fires the fairness alerts, end to end.

A group-aware ``DriftMonitor`` (the drift demo's, :mod:`otel_ml.cli.drift_bias`) exports
through this test's own MeterProvider (OTLP/HTTP to the session's collector, every second,
with a resource attribute ``e2e.run`` unique to the test; no global OpenTelemetry state).
It first serves the demo's Month 1 control week, whose regions are independent of the amounts:
the demographic parity ratio is near 1 and nothing fires. Then it serves the bias scenario's
Month 2, where the east region gets the largest purchases: the overall positive rate stays
flat, the ratio drops far under the four-fifths line. The project's real fairness.yml is loaded
into the running Prometheus with only its ``for:`` shortened, so the real expressions, labels
and annotations fire: in Prometheus, then in the real Alertmanager, then at the webhook its
alertmanager.yml names.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from e2e_clients import (
    ALERT_TIMEOUT_S,
    METRIC_TIMEOUT_S,
    Alertmanager,
    Prometheus,
    WebhookReceiver,
    poll,
)
from e2e_rules import fast_rules
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otel_ml.cli import drift_bias, drift_demo
from otel_ml.cli.stack import Stack
from otel_ml.drift import DEMOGRAPHIC_PARITY_RATIO, DriftMonitor

pytestmark = pytest.mark.e2e

RULES_FILE = "fairness.yml"
RATIO_ALERT = drift_bias.RATIO_ALERT  # DemographicParityRatioLow
SHIFT_ALERT = drift_bias.SHIFT_ALERT  # FairnessDisparityShift
FAST_FOR_S = 10
SERVICE = "e2e-bias"
RUN_LABEL = "e2e_run"
SEED, ROWS = 7, 1000  # the drift demo's defaults
EXPORT_INTERVAL_MS = 1000
RATIO = 'ml_fairness_disparity{{ml_fairness_measure="demographic_parity_ratio", {run}}}'


# --- the rules ---------------------------------------------------------------------------------


@pytest.fixture
def fast_fairness_rules(stack: Stack, http: httpx.Client) -> Iterator[None]:
    """The real fairness.yml with short ``for:``, loaded into the running Prometheus."""
    with fast_rules(stack, http, RULES_FILE, [RATIO_ALERT, SHIFT_ALERT], FAST_FOR_S):
        yield


# --- the scenario ------------------------------------------------------------------------------


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def provider(stack: Stack, run_id: str) -> Iterator[MeterProvider]:
    """This test's own pipeline to the collector: nothing global is touched."""
    exporter = OTLPMetricExporter(endpoint=f"{stack.urls.otlp_http}/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS)
    resource = Resource.create({"service.name": SERVICE, "e2e.run": run_id})
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    yield provider
    provider.shutdown()


def _ratio(prometheus: Prometheus, run_id: str, after: float) -> float | None:
    series = RATIO.format(run=f'{RUN_LABEL}="{run_id}"')
    fresh = f"{series} and (timestamp({series}) >= {after:.3f})"
    values = [float(s["value"][1]) for s in prometheus.query(fresh)]
    return values[0] if len(values) == 1 else None


def _ours(alerts: list[dict[str, Any]], run_id: str, name: str) -> list[dict[str, Any]]:
    return [
        a for a in alerts
        if a["labels"].get("alertname") == name and a["labels"].get(RUN_LABEL) == run_id
    ]


def test_bias_scenario_fires_the_fairness_alerts_into_alertmanager(
    fast_fairness_rules: None,
    provider: MeterProvider,
    run_id: str,
    webhook: WebhookReceiver,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
) -> None:
    training, reference, control, _ = drift_demo.months(SEED, ROWS, 0.75)
    model = drift_demo.train(training)
    bias_month = drift_demo.generate_month(np.random.default_rng([SEED, 2]), ROWS)
    ref_regions, cur_regions, ref_pred, cur_pred = drift_bias.inputs(
        model, reference, bias_month, seed=SEED
    )
    control_regions = drift_bias.assign_regions(
        np.random.default_rng([SEED, 3]), control.log_amount_z(), 0.0
    )
    control_pred = model.predict(control.design()).astype(np.int64)

    monitor: DriftMonitor = drift_bias.build_monitor(
        provider.get_meter("otel_ml.drift"), reference, ref_regions, ref_pred, drift_demo.FEATURES
    )
    with monitor:
        # Month 1's control week: parity holds, and nothing fires.
        drift_bias.serve(monitor, control, control_regions, control_pred, prefix="control")
        baseline = monitor.compute().fairness
        assert baseline is not None
        assert baseline.disparity[DEMOGRAPHIC_PARITY_RATIO] > 0.8
        assert baseline.shifted == []
        after = time.time() + 1.0
        ratio = poll(lambda: _ratio(prometheus, run_id, after), lambda r: r is not None,
                     timeout=METRIC_TIMEOUT_S, what="the control week's parity ratio")
        assert ratio == pytest.approx(baseline.disparity[DEMOGRAPHIC_PARITY_RATIO])
        time.sleep(2 * FAST_FOR_S)  # long enough for a wrong rule to have fired
        assert _ours(prometheus.alerts(), run_id, RATIO_ALERT) == []
        assert _ours(prometheus.alerts(), run_id, SHIFT_ALERT) == []

        # Month 2 of the bias scenario: the window fills with it (window = ROWS).
        drift_bias.serve(monitor, bias_month, cur_regions, cur_pred, prefix="bias")
        report = monitor.compute()
        fairness = report.fairness
        assert fairness is not None
        model_report = report.model
        assert model_report.positive_rate is not None
        assert model_report.reference_positive_rate is not None
        assert abs(model_report.positive_rate - model_report.reference_positive_rate) < 0.02
        expected = fairness.disparity[DEMOGRAPHIC_PARITY_RATIO]
        assert expected < 0.3
        after = time.time() + 1.0
        ratio = poll(lambda: _ratio(prometheus, run_id, after), lambda r: r is not None,
                     timeout=METRIC_TIMEOUT_S, what="Month 2's parity ratio")
        assert ratio == pytest.approx(expected)

        # The four-fifths alert fires in Prometheus, with the rule's labels and annotations ...
        firing = poll(
            lambda: [a for a in _ours(prometheus.alerts(), run_id, RATIO_ALERT)
                     if a["state"] == "firing"],
            lambda alerts: len(alerts) == 1,
            timeout=ALERT_TIMEOUT_S,
            what=f"{RATIO_ALERT} firing in Prometheus",
        )
        labels = firing[0]["labels"]
        assert labels["job"] == SERVICE and labels["severity"] == "warning"
        assert labels["ml_group_attribute"] == drift_bias.GROUP_BY
        assert labels["ml_model_name"] == "fraud-v3"
        assert firing[0]["annotations"]["summary"] == (
            "Positive rates across region of fraud-v3 fail the four-fifths rule"
        )
        # ... so does the disparity shift, for each measure that moved beyond the band ...
        shifted = poll(
            lambda: {a["labels"]["ml_fairness_measure"]
                     for a in _ours(prometheus.alerts(), run_id, SHIFT_ALERT)
                     if a["state"] == "firing"},
            lambda measures: measures == set(fairness.shifted),
            timeout=ALERT_TIMEOUT_S,
            what=f"{SHIFT_ALERT} firing for {fairness.shifted}",
        )
        assert DEMOGRAPHIC_PARITY_RATIO in shifted

        # ... reaches Alertmanager ...
        poll(
            lambda: [a for a in _ours(alertmanager.alerts(RATIO_ALERT), run_id, RATIO_ALERT)
                     if a["status"]["state"] == "active"],
            lambda alerts: len(alerts) == 1,
            timeout=ALERT_TIMEOUT_S,
            what=f"{RATIO_ALERT} active in Alertmanager",
        )
        # ... and is delivered to the webhook, as firing.
        received = poll(
            lambda: [a for a in _ours(webhook.alerts(), run_id, RATIO_ALERT)
                     if a["status"] == "firing"],
            lambda alerts: len(alerts) >= 1,
            timeout=ALERT_TIMEOUT_S,
            what=f"a firing {RATIO_ALERT} at the webhook",
        )
        assert received[0]["labels"]["ml_group_attribute"] == drift_bias.GROUP_BY
