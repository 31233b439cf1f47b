"""Grafana panels: every query of every provisioned dashboard returns data from the real Prometheus.

Grafana itself cannot run here, so each panel query is taken from the
dashboard JSON that Grafana provisions (collector-config/grafana/dashboards)
and sent to Prometheus the way Grafana would: dashboard variables at "All"
(``.*``) and ``$__rate_interval`` at 1m. A panel passes when its query
returns at least one series with a finite value, i.e. it would draw
something. The drift dashboard needs a drift monitor's metrics, which the
demo does not produce: the ``drift_emitted`` fixture exports them.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from e2e_clients import METRIC_TIMEOUT_S, Prometheus, Series, poll
from e2e_demo import Traffic

from otel_ml.cli.stack import find_config_dir

pytestmark = pytest.mark.e2e

DASHBOARD_DIR = find_config_dir() / "grafana" / "dashboards"
# What Grafana substitutes for its built-in interval variables at the default
# zoom with a 5s scrape interval (at least 4 scrapes).
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
PANELS_TIMEOUT_S = 60.0
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref_id}"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows nest theirs


def _substitute(expr: str, values: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def _load() -> tuple[list[PanelQuery], list[tuple[str, str, str]]]:
    """Panel queries, and (dashboard, metric, label) of every label_values variable."""
    queries: list[PanelQuery] = []
    variables: list[tuple[str, str, str]] = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        uid = dashboard["uid"]
        values = dict(BUILTINS)
        for variable in dashboard.get("templating", {}).get("list", []):
            values[variable["name"]] = variable.get("allValue") or ".*"
            match = _LABEL_VALUES.search(variable.get("definition", ""))
            if match:
                variables.append((uid, match["metric"].strip(), match["label"]))
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append(PanelQuery(uid, panel["title"], target.get("refId", "?"),
                                              _substitute(target["expr"], values)))
    return queries, variables


QUERIES, VARIABLES = _load()


def _draws_something(series: Series) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in series)


@pytest.fixture(scope="module")
def panel_results(
    traffic: Traffic, drift_emitted: dict[str, str], prometheus: Prometheus
) -> dict[str, Series]:
    """Every panel query's result once all draw something, or at the deadline.

    First a fresh burst of answers and votes, so rate() and
    histogram_quantile() over the 1m rate interval see traffic. It is sent
    only once Prometheus has scraped the counters: rate() and increase()
    ignore what a counter counted before its first scrape, so votes sent
    only at session start would leave the thumbs-down ratio at 0/0.
    All queries share one deadline and only the ones still empty are
    re-run, so a broken panel costs the suite one wait, not one each.
    """
    poll(
        lambda: prometheus.query("rag_feedback_total") and prometheus.query("llm_cost_usd_total"),
        bool,
        timeout=METRIC_TIMEOUT_S,
        what="the feedback and cost counters in Prometheus",
    )
    recent = traffic.ask_many([("acme", True), ("globex", True), ("initech", False)])
    for asked, kind in zip(recent, ("thumbs_down", "thumbs_up", "thumbs_up"), strict=True):
        traffic.feedback(asked.tenant, asked.trace_id, kind)
    results: dict[str, Series] = {}
    pending = {q.id: q for q in QUERIES}
    deadline = time.monotonic() + PANELS_TIMEOUT_S
    while pending and time.monotonic() < deadline:
        for key, query in list(pending.items()):
            results[key] = prometheus.query(query.expr)
            if _draws_something(results[key]):
                del pending[key]
        if pending:
            time.sleep(2)
    return results


def test_dashboards_are_provisioned() -> None:
    names = sorted(p.name for p in DASHBOARD_DIR.glob("*.json"))
    assert len(names) >= 5, f"dashboards in {DASHBOARD_DIR}: {names}"
    assert len(QUERIES) >= len(names)


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_panel_query_returns_data(query: PanelQuery, panel_results: dict[str, Series]) -> None:
    series = panel_results[query.id]
    assert series, f"empty panel: {query.expr}"
    assert _draws_something(series), f"only NaN/Inf values for {query.expr}: {series[:3]}"


@pytest.mark.parametrize(
    ("dashboard", "metric", "label"), VARIABLES, ids=[f"{d}/{lbl}" for d, _, lbl in VARIABLES]
)
def test_dashboard_variable_has_values(
    dashboard: str,
    metric: str,
    label: str,
    prometheus: Prometheus,
    panel_results: dict[str, Series],  # waited for the data the panels need
) -> None:
    values = prometheus.values(f"count by ({label}) ({metric})", (label,))
    assert [v for (v,) in values if v], f"{dashboard}: label_values({metric}, {label}) is empty"
