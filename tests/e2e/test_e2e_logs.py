"""Logs through OTLP into VictoriaLogs, found by trace id (issue 15, part 3).

For one demo request, the query Grafana's trace-to-logs link runs (the
Jaeger datasource's ``tracesToLogsV2`` LogsQL, with the request's trace id
put in as Grafana would) returns log lines of all three services from the
real VictoriaLogs, through the real collector. Secrets are masked on both
paths a log body can take: the demo's access line carries a token in its URL
(masked by the SDK before export), and a record sent over OTLP without the
SDK carries one in its body (masked by the collector's redaction processor).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
import yaml
from e2e_clients import poll
from e2e_demo import SERVICES, Traffic

from otel_ml.cli.stack import Stack
from otel_ml.cli.stack.discovery import find_config_dir

pytestmark = pytest.mark.e2e

# Shapes the redaction rules mask (openai_key, github_token), made up here.
URL_SECRET = "sk-proj-" + "E2eLogs0Token1Abc2Def3"
BODY_SECRET = "ghp_" + "E2eLogsBodySecret0123456789abcdefgh"
RAW_SERVICE = "e2e-raw-otlp"  # the record sent without the SDK
LOGS_TIMEOUT_S = 60.0
GRAFANA_TRACE_ID = "$${__span.traceId}"  # Grafana's span variable, $$-escaped in provisioning


def _trace_to_logs_query(trace_id: str) -> str:
    """The LogsQL of the Jaeger datasource's trace-to-logs link, for ``trace_id``."""
    path = find_config_dir() / "grafana" / "provisioning" / "datasources" / "datasources.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    (jaeger,) = [d for d in document["datasources"] if d["uid"] == "jaeger"]
    query: str = jaeger["jsonData"]["tracesToLogsV2"]["query"]
    assert GRAFANA_TRACE_ID in query
    return query.replace(GRAFANA_TRACE_ID, trace_id)


def _logsql(http: httpx.Client, url: str, query: str) -> list[dict[str, Any]]:
    """Rows of VictoriaLogs' /select/logsql/query (one JSON object per line)."""
    response = http.post(f"{url}/select/logsql/query", data={"query": query})
    assert response.status_code == 200, f"{query}: {response.status_code} {response.text}"
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def _raw_record(trace_id: str, span_id: str) -> dict[str, Any]:
    """One OTLP/JSON log record in ``trace_id``, its body holding a secret."""
    return {"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": RAW_SERVICE}}]},
        "scopeLogs": [{"scope": {"name": "e2e"}, "logRecords": [{
            "timeUnixNano": str(time.time_ns()),
            "severityNumber": 9, "severityText": "INFO",
            "body": {"stringValue": f"deploy key {BODY_SECRET} rotated"},
            "traceId": trace_id, "spanId": span_id,
        }]}],
    }]}


def test_one_request_logs_of_all_three_services_by_trace_id(
    stack: Stack, traffic: Traffic, http: httpx.Client
) -> None:
    if "victorialogs" not in stack.pids:
        pytest.fail("the stack runs no VictoriaLogs: run `make backends` or set "
                    "VICTORIALOGS_BIN", pytrace=False)
    # Through the shared ledger: the metric tests count this answer too.
    trace_id = traffic.ask("acme", params={"debug_token": URL_SECRET}).trace_id
    raw = _raw_record(trace_id, "00f067aa0ba902b7")
    sent = http.post(f"{stack.urls.otlp_http}/v1/logs", json=raw)
    assert sent.status_code == 200, sent.text

    query = _trace_to_logs_query(trace_id)
    wanted = {*SERVICES, RAW_SERVICE}
    def complete(got: list[dict[str, str]]) -> bool:
        # Every service's access line (its last line, written as the response ends),
        # not just any line of it: the api logs before its access line, which can
        # arrive a batch later.
        accessed = {row.get("service.name") for row in got if " -> 200" in row.get("_msg", "")}
        return set(SERVICES) <= accessed and RAW_SERVICE in {r.get("service.name") for r in got}

    rows = poll(
        lambda: _logsql(http, stack.urls.victorialogs, query), complete,
        timeout=LOGS_TIMEOUT_S, what=f"log lines of {sorted(wanted)} in VictoriaLogs",
    )
    assert {row["trace_id"] for row in rows} == {trace_id}
    assert [row["_time"] for row in rows] == sorted(row["_time"] for row in rows)
    by_service = {s: [row for row in rows if row.get("service.name") == s] for s in wanted}

    # Each service's access line, in its server span: the span ids differ.
    access = {s: [r for r in by_service[s] if " -> 200" in r["_msg"]] for s in SERVICES}
    assert all(access.values()), access
    assert len({r["span_id"] for lines in access.values() for r in lines}) >= len(SERVICES)
    # The token in the api's URL, masked by the SDK before it left the process.
    (api_line,) = [r for r in access["rag-api"] if r["_msg"].startswith("POST /ask")]
    assert api_line["_msg"] == "POST /ask?debug_token=**** -> 200"
    # The internal services continue the api's baggage: their lines carry the tenant.
    for service in ("rag-vectordb", "rag-llm"):
        assert {r.get("tenant.id") for r in access[service]} == {"acme"}, service
    # The record that bypassed the SDK: masked by the collector's redaction processor.
    (raw,) = by_service[RAW_SERVICE]
    assert raw["_msg"] == "deploy key **** rotated"
    text = json.dumps(rows)
    assert URL_SECRET not in text and BODY_SECRET not in text
