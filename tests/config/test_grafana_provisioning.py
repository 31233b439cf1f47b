"""Grafana provisioning: datasources link traces and metrics both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cfg_support import CONFIG, assert_ok, load_yaml, run

PROVISIONING = CONFIG / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def datasources() -> dict[str, Any]:
    document = load_yaml(PROVISIONING / "datasources" / "datasources.yml")
    return {d["uid"]: d for d in document["datasources"]}


def test_prometheus_is_default_and_links_exemplars_to_jaeger(datasources: dict[str, Any]) -> None:
    prometheus = datasources["prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["isDefault"] is True
    # trace_id is the exemplar label the collector's prometheus exporter writes.
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "jaeger"}
    ]
    assert datasources["jaeger"]["type"] == "jaeger"


def test_traces_to_metrics_targets_prometheus_with_span_metrics_labels(
    datasources: dict[str, Any],
) -> None:
    traces_to_metrics = datasources["jaeger"]["jsonData"]["tracesToMetrics"]
    assert traces_to_metrics["datasourceUid"] == "prometheus"
    assert {t["key"]: t["value"] for t in traces_to_metrics["tags"]} == {
        "service.name": "service_name",
        "tenant.id": "tenant_id",
    }
    assert traces_to_metrics["queries"]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def test_grafana_variables_are_escaped_from_env_expansion(datasources: dict[str, Any]) -> None:
    # Grafana expands $VAR in provisioning values; none is meant here, so
    # every $ must be the $$ escape (Grafana's own ${__tags} is written $${__tags}).
    values = _strings(datasources)
    assert any("$${__tags}" in value for value in values)
    for value in values:
        assert "$" not in value.replace("$$", ""), value


def test_traces_to_metrics_queries_are_valid_promql(
    datasources: dict[str, Any], promtool_bin: Path, tmp_path: Path
) -> None:
    queries = datasources["jaeger"]["jsonData"]["tracesToMetrics"]["queries"]
    rules = [
        {
            "record": f"traces_to_metrics_{i}",
            # what Grafana sends for a span of rag-api / acme
            "expr": q["query"].replace("$${__tags}", 'service_name="rag-api", tenant_id="acme"'),
        }
        for i, q in enumerate(queries)
    ]
    path = tmp_path / "traces_to_metrics.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "t2m", "rules": rules}]}), "utf-8")
    assert_ok(run([promtool_bin, "check", "rules", path]))


def test_dashboard_provider_reads_the_generated_files() -> None:
    provider = load_yaml(PROVISIONING / "dashboards" / "dashboards.yml")["providers"][0]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
    compose = load_yaml(CONFIG.parent / "docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./collector-config/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_victoriametrics_datasource_reads_the_long_term_store(
    datasources: dict[str, Any],
) -> None:
    victoriametrics = datasources["victoriametrics"]
    # VictoriaMetrics serves the Prometheus query API: Grafana's own datasource type.
    assert victoriametrics["type"] == "prometheus"
    assert victoriametrics.get("isDefault") is not True
    compose = load_yaml(CONFIG.parent / "docker-compose.yml")["services"]["victoriametrics"]
    # It runs in Prometheus's network namespace, so Prometheus's service name reaches it.
    host = compose["network_mode"].removeprefix("service:")
    (listen,) = [a for a in compose["command"] if a.startswith("-httpListenAddr=")]
    assert victoriametrics["url"] == f"http://{host}:{listen.rsplit(':', 1)[1]}"


def test_victorialogs_datasource_and_the_trace_to_logs_link(
    datasources: dict[str, Any],
) -> None:
    victorialogs = datasources["victorialogs"]
    assert victorialogs["type"] == "victoriametrics-logs-datasource"  # the plugin's id
    compose = load_yaml(CONFIG.parent / "docker-compose.yml")["services"]["victorialogs"]
    (listen,) = [a for a in compose["command"] if a.startswith("-httpListenAddr=")]
    assert victorialogs["url"] == f"http://victorialogs:{listen.rsplit(':', 1)[1]}"
    link = datasources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert link["datasourceUid"] == "victorialogs"
    assert link["customQuery"] is True
    # Grafana's span variable, $$-escaped from env expansion; the e2e test
    # (tests/e2e/test_e2e_logs.py) runs the query on a real VictoriaLogs.
    assert link["query"].startswith('trace_id:="$${__span.traceId}"')
