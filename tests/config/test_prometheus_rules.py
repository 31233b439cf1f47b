"""Prometheus config and alert rules: promtool accepts them, and every alert is unit-tested."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cfg_support import PROMETHEUS_DIR, assert_ok, load_yaml, run

RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def test_native_config_is_valid(promtool_bin: Path) -> None:
    assert_ok(run([promtool_bin, "check", "config", PROMETHEUS_DIR / "prometheus.yml"]))


def test_compose_config_is_valid(promtool_bin: Path, tmp_path: Path) -> None:
    # The layout docker-compose.yml mounts: compose-targets/ over targets/.
    shutil.copy(PROMETHEUS_DIR / "prometheus.yml", tmp_path)
    shutil.copytree(PROMETHEUS_DIR / "rules", tmp_path / "rules")
    shutil.copytree(PROMETHEUS_DIR / "compose-targets", tmp_path / "targets")
    assert_ok(run([promtool_bin, "check", "config", tmp_path / "prometheus.yml"]))


@pytest.mark.parametrize("rule_file", RULES, ids=lambda p: p.name)
def test_rule_file_is_valid(promtool_bin: Path, rule_file: Path) -> None:
    assert_ok(run([promtool_bin, "check", "rules", rule_file]))


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(promtool_bin: Path, test_file: Path) -> None:
    assert_ok(run([promtool_bin, "test", "rules", test_file], cwd=test_file.parent))


def test_a_wrong_expectation_fails(promtool_bin: Path, tmp_path: Path) -> None:
    # Guards the test above: promtool must fail when an alert does not fire.
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups: [{name: g, rules: [{alert: Never, expr: vector(1) < 0}]}]\n", encoding="utf-8"
    )
    test = tmp_path / "test.yml"
    test.write_text(
        "rule_files: [rules.yml]\n"
        "tests: [{interval: 1m, alert_rule_test: "
        "[{eval_time: 1m, alertname: Never, exp_alerts: [{exp_labels: {}}]}]}]\n",
        encoding="utf-8",
    )
    assert run([promtool_bin, "test", "rules", test], cwd=tmp_path).returncode != 0


def _alerts(rule_file: Path) -> set[str]:
    groups = load_yaml(rule_file)["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def _tested_alerts(test_file: Path) -> set[str]:
    """Alerts some test expects to fire (an empty exp_alerts proves nothing alone)."""
    document: Any = load_yaml(test_file)
    return {
        case["alertname"]
        for test in document.get("tests", [])
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }


def test_every_alert_has_a_firing_unit_test() -> None:
    alerts = set().union(*(_alerts(f) for f in RULES))
    tested = set().union(*(_tested_alerts(f) for f in RULE_TESTS))
    assert alerts, "no alert rules found"
    assert alerts - tested == set()


def test_config_loads_every_rule_file_and_alerts_to_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    assert config["rule_files"] == ["rules/*.yml"]
    alertmanagers = config["alerting"]["alertmanagers"]
    assert [am["file_sd_configs"][0]["files"] for am in alertmanagers] == [
        ["targets/alertmanager.yml"]
    ]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The exporter derives job/instance from service.name/instance.id.
    assert jobs["otelcol-exporter"]["honor_labels"] is True
    assert "honor_labels" not in jobs["otelcol"]
