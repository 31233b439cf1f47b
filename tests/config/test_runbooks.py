"""Every alert links to its section of docs/runbooks.md, and that section exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "collector-config" / "prometheus" / "rules"
RUNBOOKS = REPO / "docs" / "runbooks.md"


def _alerts() -> list[dict[str, Any]]:
    alerts = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts.extend(rule for rule in group["rules"] if "alert" in rule)
    return alerts


def _anchors(markdown: str) -> set[str]:
    """GitHub-style heading anchors, outside fenced code blocks."""
    anchors = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_has_a_runbook_section() -> None:
    alerts = _alerts()
    anchors = _anchors(RUNBOOKS.read_text())
    assert len(alerts) >= 17
    for alert in alerts:
        url = alert["annotations"].get("runbook_url", "")
        assert url == f"docs/runbooks.md#{alert['alert'].lower()}", alert["alert"]
        assert url.split("#", 1)[1] in anchors, f"docs/runbooks.md has no section {url}"
