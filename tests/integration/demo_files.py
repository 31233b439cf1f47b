"""Reading the exported OTLP JSON lines, independently of otel_ml.cli.report.

The tests check the report against numbers computed here, so this module must not
share code with it: it follows the file contract directly (one
ExportTraceServiceRequest / ExportMetricsServiceRequest per line; for metrics, the
last line of each process's file holds the final cumulative values).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER, CLIENT = 2, 3
STATUS_ERROR = 2


@dataclass(frozen=True)
class FileSpan:
    service: str
    trace_id: str
    span_id: str
    parent: str
    name: str
    kind: int
    start: int
    end: int
    attrs: dict[str, Any]
    status: int
    links: tuple[tuple[str, str], ...]

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e9


def value_of(raw: dict[str, Any]) -> Any:
    (kind, value), = raw.items()
    if kind == "intValue":
        return int(value)
    if kind == "arrayValue":
        return [value_of(v) for v in value.get("values", [])]
    return value


def attrs_of(raw: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: value_of(a["value"]) for a in raw}


def load_spans(out_dir: Path) -> list[FileSpan]:
    spans = []
    for path in sorted(out_dir.glob("traces-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            for rs in json.loads(line)["resourceSpans"]:
                service = attrs_of(rs["resource"]["attributes"])["service.name"]
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        spans.append(FileSpan(
                            service, s["traceId"], s["spanId"], s.get("parentSpanId", ""),
                            s["name"], s["kind"], int(s["startTimeUnixNano"]),
                            int(s["endTimeUnixNano"]), attrs_of(s.get("attributes", [])),
                            s.get("status", {}).get("code", 0),
                            tuple((k["traceId"], k["spanId"]) for k in s.get("links", [])),
                        ))
    return spans


def by_trace(spans: list[FileSpan]) -> dict[str, list[FileSpan]]:
    traces: dict[str, list[FileSpan]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    return traces


@dataclass(frozen=True)
class FinalPoint:
    service: str
    metric: str
    attrs: dict[str, Any]
    point: dict[str, Any]


def final_points(out_dir: Path) -> list[FinalPoint]:
    """Every data point of the last line of each metrics file."""
    points = []
    for path in sorted(out_dir.glob("metrics-*.jsonl")):
        last = path.read_text(encoding="utf-8").strip().splitlines()[-1]
        for rm in json.loads(last)["resourceMetrics"]:
            service = attrs_of(rm["resource"]["attributes"])["service.name"]
            for sm in rm["scopeMetrics"]:
                for metric in sm["metrics"]:
                    data = metric.get("sum") or metric.get("histogram") or metric.get("gauge")
                    for p in data["dataPoints"]:
                        points.append(FinalPoint(service, metric["name"],
                                                 attrs_of(p.get("attributes", [])), p))
    return points
