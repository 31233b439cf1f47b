"""alertmanager/alertmanager.yml: valid, and routed the way the e2e test expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfg_support import CONFIG, PROMETHEUS_DIR, assert_ok, load_yaml, run

ALERTMANAGER_YAML = CONFIG / "alertmanager" / "alertmanager.yml"


@pytest.fixture(scope="module")
def config() -> Any:
    return load_yaml(ALERTMANAGER_YAML)


def test_amtool_accepts_the_config(amtool_bin: Path) -> None:
    assert_ok(run([amtool_bin, "check-config", ALERTMANAGER_YAML]))


def test_amtool_rejects_a_route_to_an_unknown_receiver(amtool_bin: Path, tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    text = ALERTMANAGER_YAML.read_text(encoding="utf-8")
    broken.write_text(text.replace("receiver: otel-ml-webhook", "receiver: nobody", 1), "utf-8")
    assert run([amtool_bin, "check-config", broken]).returncode != 0


def test_every_alert_reaches_the_e2e_webhook_quickly(config: Any) -> None:
    route = config["route"]
    assert "routes" not in route, "a sub-route could divert alerts from the webhook"
    (receiver,) = [r for r in config["receivers"] if r["name"] == route["receiver"]]
    assert [hook["url"] for hook in receiver["webhook_configs"]] == [
        "http://127.0.0.1:5001/alerts"
    ]
    assert route["group_wait"] in ("0s", "1s", "2s", "5s")


def test_inhibit_rules_name_real_alerts(config: Any) -> None:
    alerts = {
        rule["alert"]
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            if matcher.startswith('alertname="'):
                assert matcher.split('"')[1] in alerts, matcher
