"""Review finding on otel_ml.cli.report: the drift verdict of a restarted service.

Each process writes its own ``metrics-<service>-<pid>.jsonl`` with its own
``service.instance.id``, so after a restart the folder holds one ``ml.drift.detected``
stream per process. ``_drift_rows`` keys rows by (service, labels) and keeps the point
it meets last, and points are met in file-name order, i.e. in pid order as text, not in
time. The report then shows a dead process's verdict as "at the last recompute".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from otel_ml import semconv
from otel_ml.cli import report


def _attribute(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _drift_line(instance: str, time_ns: int, detected: float, p_value: float) -> str:
    feature = [_attribute(semconv.DRIFT_FEATURE, "retrieval.top_score")]

    def gauge(name: str, value: float) -> dict[str, Any]:
        return {"name": name, "gauge": {"dataPoints": [
            {"attributes": feature, "timeUnixNano": str(time_ns), "asDouble": value}]}}

    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [_attribute("service.name", "rag-api"),
                                    _attribute("service.instance.id", instance)]},
        "scopeMetrics": [{"scope": {"name": "otel_ml.drift"}, "metrics": [
            gauge(semconv.METRIC_DRIFT_DETECTED, detected),
            gauge(semconv.METRIC_DRIFT_P_VALUE, p_value),
        ]}],
    }]})


def test_after_a_restart_the_drift_row_is_the_newest_process_verdict(tmp_path: Path) -> None:
    # pid 9999 ran first and saw drift; it was restarted as pid 10001, which sees none.
    (tmp_path / "metrics-rag-api-9999.jsonl").write_text(
        _drift_line("old-instance", 1_000_000_000, detected=1.0, p_value=0.001) + "\n")
    (tmp_path / "metrics-rag-api-10001.jsonl").write_text(
        _drift_line("new-instance", 2_000_000_000, detected=0.0, p_value=0.62) + "\n")

    rows = report.build_report(tmp_path).drift

    assert [(r.feature, r.detected, r.p_value) for r in rows] == [
        ("retrieval.top_score", False, 0.62)
    ]


# --- a request that fails before any GenAI operation is not counted -----------------------
#
# A request is "a trace that contains at least one GenAI operation". When the vectordb is
# down the api answers 502 retrieval_unreachable before any GenAI span exists, so in an
# outage the report shows no requests and a 0.0% error rate.


def _span(trace: str, span: str, name: str, *, kind: int, start: int, end: int,
          parent: str = "", error: bool = False, operation: str | None = None) -> dict[str, Any]:
    attributes = [_attribute(semconv.TENANT_ID, "acme")]
    if operation is not None:
        attributes.append(_attribute(semconv.GEN_AI_OPERATION_NAME, operation))
    raw: dict[str, Any] = {
        "traceId": trace, "spanId": span, "name": name, "kind": kind,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
        "attributes": attributes, "status": {"code": 2} if error else {},
    }
    if parent:
        raw["parentSpanId"] = parent
    return raw


def _trace_line(spans: list[dict[str, Any]]) -> str:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [_attribute("service.name", "rag-api")]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
    }]})


def test_a_request_failing_at_retrieval_counts_as_a_failed_request(tmp_path: Path) -> None:
    ok, failed = "a" * 32, "b" * 32
    lines = [
        _trace_line([
            _span(ok, "1" * 16, "POST /ask", kind=2, start=0, end=900),
            _span(ok, "2" * 16, "chat m", kind=3, start=100, end=800, parent="1" * 16,
                  operation="chat"),
        ]),
        _trace_line([  # vectordb unreachable: 502, no GenAI span was ever started
            _span(failed, "3" * 16, "POST /ask", kind=2, start=0, end=50, error=True),
            _span(failed, "4" * 16, "POST", kind=3, start=5, end=45, parent="3" * 16,
                  error=True),
        ]),
    ]
    (tmp_path / "traces-rag-api-1.jsonl").write_text("\n".join(lines) + "\n")

    built = report.build_report(tmp_path)

    assert (built.requests, built.errors) == (2, 1)
