"""Grafana dashboards: generated, in sync, laid out, and every query valid PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cfg_support import CONFIG, PROMETHEUS_DIR, assert_ok, load_yaml, run

DASHBOARDS = CONFIG / "grafana" / "dashboards"
EXPECTED_UIDS = {
    "otel-ml-llm-cost",
    "otel-ml-streaming",
    "otel-ml-rag-quality",
    "otel-ml-red-slo",
    "otel-ml-collector",
    "otel-ml-drift",
}


def _files() -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_json_files_are_the_generator_output(gen_dashboards: ModuleType) -> None:
    assert gen_dashboards.stale() == [], "run scripts/gen_dashboards.py"


def test_check_reports_a_hand_edited_file(gen_dashboards: ModuleType, tmp_path: Path) -> None:
    assert gen_dashboards.main(["--out", str(tmp_path)]) == 0
    edited = tmp_path / "otel-ml-drift.json"
    edited.write_text(edited.read_text("utf-8").replace("ml_drift_score", "ml_drift"), "utf-8")
    (tmp_path / "extra.json").write_text("{}", "utf-8")
    assert sorted(gen_dashboards.stale(tmp_path)) == [
        "extra.json: not generated here",
        "otel-ml-drift.json: out of date",
    ]


def test_the_six_dashboards_exist() -> None:
    dashboards = _files()
    assert set(dashboards) == EXPECTED_UIDS
    assert {d["uid"] for d in dashboards.values()} == EXPECTED_UIDS


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
        or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"]
    )


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_layout_has_unique_ids_and_no_overlap(uid: str) -> None:
    panels = _files()[uid]["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    boxes = [p["gridPos"] for p in panels]
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24, box
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not _overlaps(a, b), (a, b)


def _datasource_uids() -> dict[str, str]:
    provisioning = load_yaml(CONFIG / "grafana/provisioning/datasources/datasources.yml")
    return {d["uid"]: d["type"] for d in provisioning["datasources"]}


def test_every_query_targets_the_provisioned_prometheus() -> None:
    uids = _datasource_uids()
    for uid, dashboard in _files().items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                assert uids.get(target["datasource"]["uid"]) == "prometheus", (uid, panel["title"])
        for variable in dashboard["templating"]["list"]:
            assert uids.get(variable["datasource"]["uid"]) == "prometheus", (uid, variable["name"])


def test_exprs_cover_every_target_and_leave_no_variable(gen_dashboards: ModuleType) -> None:
    exprs = gen_dashboards.promql_exprs("2m")
    targets = sum(len(p.get("targets", [])) for d in _files().values() for p in d["panels"])
    assert len(exprs) == targets
    for query in exprs:
        assert "$" not in query.expr, query
    assert any("[2m]" in query.expr for query in exprs)


def test_substitute_refuses_unknown_variables(gen_dashboards: ModuleType) -> None:
    assert gen_dashboards.substitute('up{job=~"$job"}', {"job": "a|b"}) == 'up{job=~"a|b"}'
    with pytest.raises(KeyError):
        gen_dashboards.substitute("rate(x[$__interval])", {"job": "a"})


def test_every_query_is_valid_promql(
    gen_dashboards: ModuleType, promtool_bin: Path, tmp_path: Path
) -> None:
    # promtool parses each expression as a recording rule: the real parser.
    rules = [
        {"record": f"dashboard_query_{i}", "expr": query.expr}
        for i, query in enumerate(gen_dashboards.promql_exprs())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), "utf-8")
    assert_ok(run([promtool_bin, "check", "rules", path]))


def _recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def test_recording_rules_used_by_panels_exist(gen_dashboards: ModuleType) -> None:
    used = {
        name
        for query in gen_dashboards.promql_exprs()
        for name in re.findall(r"\b[a-z_]+:[a-z0-9_:]+", query.expr)
    }
    assert used, "no recording rule used: the test would prove nothing"
    assert used <= _recorded_names()


def test_variables_read_labels_the_panels_filter_on(gen_dashboards: ModuleType) -> None:
    for uid, variable in gen_dashboards.variable_sources():
        dashboard = next(d for d in gen_dashboards.dashboards() if d.uid == uid)
        exprs = [q.expr for s in dashboard.sections for p in s.panels for q in p.queries]
        assert any(f'{variable.label_name}=~"${variable.name}"' in e for e in exprs), variable
