"""``otel-ml report DIR``: a terminal report built only from exported telemetry.

It reads the OTLP JSON lines that the embedded default (or a collector's ``file``
exporter) wrote, and answers the questions a platform engineer asks first: where
did a typical request spend its time, what did each tenant use and cost, how fast
and how reliable were answers, and what did users say. Nothing comes from the
application's own counters, so a right report is evidence that the telemetry is
right.

Definitions (the numbers in tests are recomputed from these):

- a *request* is the root span of a trace that contains at least one GenAI
  operation (a span with ``gen_ai.operation.name``), or of a failed trace entering
  at the same place (service and root span name) before any GenAI step; its
  duration is the latency, and it is an error when its status is ERROR;
- the root is the earliest span whose parent is not in the data (a trace started
  by an uninstrumented client, or continued from another system, has no local root);
- TTFT and TBT come from CLIENT spans with ``gen_ai.response.time_to_first_chunk``
  (the caller's view, network included); TBT is each span's mean time per chunk;
- tokens and cost per tenant come from the final cumulative values of the
  ``gen_ai.client.token.usage`` and ``llm.cost.usd`` metrics, the numbers dashboards
  show; span totals are computed too and compared with them;
- feedback comes from the ``feedback {kind}`` spans; it is *linked* when the trace
  id it names is a request in the data;
- evaluations (groundedness, relevance: :mod:`otel_ml.evaluation`) come from the final
  values of the ``llm.evaluation.score`` histogram: per evaluation name, the number of
  evaluated answers, their mean score and the count per label; the hallucination rate
  is the share of groundedness evaluations labelled ``unsupported``;
- drift comes from the final values of the ``ml.drift.*`` gauges that drift monitors
  (``otel_ml.drift``) export, one row per service and monitored feature: whether its
  primary test fired at the last recompute, its p-value, and every score by method.

``build_report`` is pure (files in, dataclasses out); ``render`` formats it; the
command needs no extra dependency.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from otel_ml import semconv

SPAN_KIND_SERVER: Final = 2
SPAN_KIND_CLIENT: Final = 3
STATUS_ERROR: Final = 2
TEMPORALITY_DELTA: Final = 1
NO_TENANT: Final = "(none)"
_DATA_DIR_ENV: Final = "OTEL_ML_DATA_DIR"
_DEFAULT_DIR: Final = "otel-ml-data"
_COST_TOLERANCE: Final = 1e-9

AttributeValue = Any  # str | bool | int | float | tuple of those | dict


# --- reading OTLP JSON ---------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: Mapping[str, AttributeValue]
    status_code: int = 0
    links: tuple[tuple[str, str], ...] = ()

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    @property
    def is_error(self) -> bool:
        return self.status_code == STATUS_ERROR


@dataclass(frozen=True)
class MetricPoint:
    """One metric stream's final value: a sum's value, or a histogram's sum and count."""

    service: str
    name: str
    attributes: Mapping[str, AttributeValue]
    value: float
    count: int = 0
    time_ns: int = 0


@dataclass
class Exported:
    """Everything read from a folder."""

    spans: list[Span] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)
    files: int = 0
    unreadable_lines: int = 0


def decode_value(value: Mapping[str, Any]) -> AttributeValue:
    """An OTLP/JSON ``AnyValue`` as a Python value (int64 arrive as strings)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return tuple(decode_value(v) for v in value["arrayValue"].get("values", []))
    if "kvlistValue" in value:
        return decode_attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return str(value["bytesValue"])
    return None


def decode_attributes(attributes: Iterable[Mapping[str, Any]]) -> dict[str, AttributeValue]:
    return {a["key"]: decode_value(a.get("value", {})) for a in attributes}


def load(directory: Path) -> Exported:
    """Read every ``*.jsonl`` / ``*.json`` file directly in ``directory``.

    Lines that are not valid OTLP JSON (a line cut short by a killed process) are
    counted and skipped. Metric points are reduced to each stream's final value: the
    latest point for cumulative streams, the total for delta ones.
    """
    exported = Exported()
    latest: dict[tuple[Any, ...], tuple[int, MetricPoint]] = {}
    deltas: dict[tuple[Any, ...], MetricPoint] = {}
    for path in sorted(directory.glob("*.json*")):
        if not path.is_file() or path.suffix not in (".jsonl", ".json"):
            continue
        exported.files += 1
        for line in _lines(path):
            try:
                document = json.loads(line)
                exported.spans.extend(_spans(document))
                for key, time_ns, point, delta in _points(document):
                    if delta:
                        deltas[key] = _add(deltas.get(key), point)
                    elif key not in latest or time_ns >= latest[key][0]:
                        latest[key] = (time_ns, point)
            except (ValueError, KeyError, TypeError, AttributeError):
                exported.unreadable_lines += 1
    exported.points = [point for _, point in latest.values()] + list(deltas.values())
    return exported


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                yield line


def _service(resource: Mapping[str, Any]) -> tuple[str, dict[str, AttributeValue]]:
    attributes = decode_attributes(resource.get("attributes", []))
    return str(attributes.get("service.name", "unknown_service")), attributes


def _spans(document: Mapping[str, Any]) -> Iterator[Span]:
    for resource_spans in document.get("resourceSpans", []):
        service, _ = _service(resource_spans.get("resource", {}))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                yield Span(
                    service=service,
                    trace_id=raw["traceId"],
                    span_id=raw["spanId"],
                    parent_span_id=raw.get("parentSpanId", ""),
                    name=raw.get("name", ""),
                    kind=int(raw.get("kind", 0)),
                    start_ns=int(raw["startTimeUnixNano"]),
                    end_ns=int(raw["endTimeUnixNano"]),
                    attributes=decode_attributes(raw.get("attributes", [])),
                    status_code=int(raw.get("status", {}).get("code", 0)),
                    links=tuple((ln["traceId"], ln["spanId"]) for ln in raw.get("links", [])),
                )


def _points(
    document: Mapping[str, Any],
) -> Iterator[tuple[tuple[Any, ...], int, MetricPoint, bool]]:
    for resource_metrics in document.get("resourceMetrics", []):
        service, resource = _service(resource_metrics.get("resource", {}))
        resource_key = _freeze(resource)
        for scope_metrics in resource_metrics.get("scopeMetrics", []):
            scope = scope_metrics.get("scope", {}).get("name", "")
            for metric in scope_metrics.get("metrics", []):
                name = metric["name"]
                for kind in ("sum", "histogram", "gauge"):
                    data = metric.get(kind)
                    if data is None:
                        continue
                    delta = int(data.get("aggregationTemporality", 2)) == TEMPORALITY_DELTA
                    for raw in data.get("dataPoints", []):
                        attributes = decode_attributes(raw.get("attributes", []))
                        if kind == "histogram":
                            value, count = float(raw.get("sum", 0.0)), int(raw.get("count", 0))
                        else:
                            value, count = _number(raw), 0
                        key = (resource_key, scope, name, _freeze(attributes))
                        time_ns = int(raw.get("timeUnixNano", 0))
                        point = MetricPoint(service, name, attributes, value, count, time_ns)
                        yield key, time_ns, point, delta


def _number(raw: Mapping[str, Any]) -> float:
    if "asDouble" in raw:
        return float(raw["asDouble"])
    return float(int(raw.get("asInt", 0)))


def _add(total: MetricPoint | None, point: MetricPoint) -> MetricPoint:
    if total is None:
        return point
    return MetricPoint(point.service, point.name, point.attributes,
                       total.value + point.value, total.count + point.count)


def _freeze(attributes: Mapping[str, AttributeValue]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in attributes.items()))


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float
    p99: float


@dataclass(frozen=True)
class WaterfallRow:
    depth: int
    service: str
    name: str
    offset_s: float
    duration_s: float
    error: bool
    ttft_s: float | None = None
    tbt_s: float | None = None
    chunks: int | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Waterfall:
    trace_id: str
    tenant: str
    duration_s: float
    rows: tuple[WaterfallRow, ...]


@dataclass(frozen=True)
class TenantRow:
    tenant: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class FeedbackSummary:
    total: int
    by_kind: Mapping[str, int]
    score_count: int
    score_mean: float | None
    linked: int


@dataclass(frozen=True)
class Consistency:
    """Token and cost totals from GenAI client spans, next to the metric totals."""

    span_input_tokens: int
    span_output_tokens: int
    span_cost_usd: float
    metric_input_tokens: int
    metric_output_tokens: int
    metric_cost_usd: float

    @property
    def consistent(self) -> bool:
        return (
            self.span_input_tokens == self.metric_input_tokens
            and self.span_output_tokens == self.metric_output_tokens
            and math.isclose(self.span_cost_usd, self.metric_cost_usd,
                             rel_tol=1e-9, abs_tol=_COST_TOLERANCE)
        )


@dataclass(frozen=True)
class DriftRow:
    """One monitored feature at its monitor's last recompute, from the ml.drift.* gauges.

    ``labels`` are the monitor's own attributes besides ``ml.feature.name`` (e.g.
    ``ml.model.name``), so two monitors in one service stay apart.
    """

    service: str
    feature: str
    labels: Mapping[str, AttributeValue]
    detected: bool
    p_value: float | None
    scores: Mapping[str, float]


@dataclass(frozen=True)
class EvaluationRow:
    """One evaluation (``gen_ai.evaluation.name``) over the whole run."""

    name: str
    count: int
    mean: float | None
    labels: Mapping[str, int]


@dataclass(frozen=True)
class Report:
    directory: str
    files: int
    unreadable_lines: int
    spans_by_service: Mapping[str, int]
    requests: int
    errors: int
    latency: Percentiles | None
    ttft: Percentiles | None
    tbt: Percentiles | None
    tenants: tuple[TenantRow, ...]
    feedback: FeedbackSummary
    groundedness_mean: float | None
    groundedness_count: int
    consistency: Consistency
    waterfall: Waterfall | None
    drift: tuple[DriftRow, ...] = ()
    evaluations: tuple[EvaluationRow, ...] = ()

    @property
    def hallucination_rate(self) -> float | None:
        """Share of groundedness evaluations labelled unsupported."""
        row = next((r for r in self.evaluations if r.name == _GROUNDEDNESS), None)
        if row is None or not row.count:
            return None
        return row.labels.get(_UNSUPPORTED, 0) / row.count

    @property
    def drifted(self) -> list[DriftRow]:
        return [row for row in self.drift if row.detected]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_rate"] = self.error_rate
        data["hallucination_rate"] = self.hallucination_rate
        data["consistency"]["consistent"] = self.consistency.consistent
        return data


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks
    (numpy's default method), so results can be checked against numpy."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _percentiles(values: Sequence[float]) -> Percentiles | None:
    if not values:
        return None
    return Percentiles(len(values), percentile(values, 50), percentile(values, 99))


def build_report(directory: Path) -> Report:
    """Compute the report from the OTLP JSON files in ``directory``."""
    exported = load(directory)
    traces = _by_trace(exported.spans)
    requests = _requests(traces)
    roots = list(requests.values())
    client_genai = [s for s in exported.spans if _is_client_generation(s)]
    metrics = _metric_totals(exported.points)
    evaluations = _evaluation_rows(exported.points)
    grounded = next((r for r in evaluations if r.name == _GROUNDEDNESS), None)
    return Report(
        directory=str(directory),
        files=exported.files,
        unreadable_lines=exported.unreadable_lines,
        spans_by_service=dict(sorted(Counter(s.service for s in exported.spans).items())),
        requests=len(roots),
        errors=sum(1 for r in roots if r.is_error),
        latency=_percentiles([r.duration_s for r in roots]),
        ttft=_percentiles(_values(client_genai, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
        tbt=_percentiles(_values(client_genai, semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN)),
        tenants=_tenant_rows(roots, metrics),
        feedback=_feedback(exported.spans, set(requests)),
        groundedness_mean=grounded.mean if grounded else None,
        groundedness_count=grounded.count if grounded else 0,
        consistency=_consistency(client_genai, metrics),
        waterfall=_waterfall(traces, roots),
        drift=_drift_rows(exported.points),
        evaluations=evaluations,
    )


_GROUNDEDNESS: Final = "groundedness"
_UNSUPPORTED: Final = "unsupported"


def _evaluation_rows(points: Iterable[MetricPoint]) -> tuple[EvaluationRow, ...]:
    """Per evaluation name, from the final ``llm.evaluation.score`` histogram points."""
    sums: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for point in points:
        if point.name != semconv.METRIC_EVALUATION_SCORE:
            continue
        name = str(point.attributes.get(semconv.GEN_AI_EVALUATION_NAME, "(unnamed)"))
        sums[name] += point.value
        counts[name] += point.count
        label = point.attributes.get(semconv.GEN_AI_EVALUATION_SCORE_LABEL)
        if label is not None:
            labels[name][str(label)] += point.count
    return tuple(
        EvaluationRow(name, counts[name], sums[name] / counts[name] if counts[name] else None,
                      dict(sorted(labels[name].items())))
        for name in sorted(counts)
    )


def _by_trace(spans: Iterable[Span]) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    return dict(traces)


def _root(spans: Sequence[Span]) -> Span:
    ids = {s.span_id for s in spans}
    candidates = [s for s in spans if not s.parent_span_id or s.parent_span_id not in ids]
    return min(candidates or spans, key=lambda s: (s.start_ns, s.span_id))


def _requests(traces: Mapping[str, list[Span]]) -> dict[str, Span]:
    """Root span per request trace: a trace with a GenAI step, or a failed one whose
    root is the same entry point (service and span name) as such a trace, so that
    a request failing before any GenAI step (e.g. the vector DB is down) still
    counts. A rejected call (401, 4xx: status not ERROR) is not a request."""
    roots = {trace_id: _root(spans) for trace_id, spans in traces.items()}
    genai = {trace_id for trace_id, spans in traces.items() if _is_genai(spans)}
    entry_points = {(roots[trace_id].service, roots[trace_id].name) for trace_id in genai}
    return {
        trace_id: root for trace_id, root in roots.items()
        if trace_id in genai or (root.is_error and (root.service, root.name) in entry_points)
    }


def _is_genai(spans: Iterable[Span]) -> bool:
    return any(semconv.GEN_AI_OPERATION_NAME in s.attributes for s in spans)


def _is_client_generation(span: Span) -> bool:
    operation = span.attributes.get(semconv.GEN_AI_OPERATION_NAME)
    return span.kind == SPAN_KIND_CLIENT and operation not in (
        None, semconv.OP_RETRIEVAL, semconv.OP_EMBEDDINGS
    )


def _has(span: Span, key: str) -> bool:
    return isinstance(span.attributes.get(key), (int, float))


def _float(span: Span, key: str) -> float:
    return float(span.attributes[key])


def _optional(span: Span, key: str) -> float | None:
    return _float(span, key) if _has(span, key) else None


def _values(spans: Iterable[Span], key: str) -> list[float]:
    """The numeric values of attribute ``key`` on the spans that have it."""
    return [_float(s, key) for s in spans if _has(s, key)]


def _tenant(attributes: Mapping[str, AttributeValue]) -> str:
    value = attributes.get(semconv.TENANT_ID)
    return str(value) if value else NO_TENANT


@dataclass
class _Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


def _metric_totals(points: Iterable[MetricPoint]) -> dict[str, _Usage]:
    """Tokens and cost by tenant from the final metric values."""
    totals: dict[str, _Usage] = defaultdict(_Usage)
    for point in points:
        usage = totals[_tenant(point.attributes)]
        if point.name == semconv.METRIC_TOKEN_USAGE:
            token_type = point.attributes.get(semconv.GEN_AI_TOKEN_TYPE)
            if token_type == semconv.TOKEN_TYPE_INPUT:
                usage.input_tokens += round(point.value)
            elif token_type == semconv.TOKEN_TYPE_OUTPUT:
                usage.output_tokens += round(point.value)
        elif point.name == semconv.METRIC_COST:
            usage.cost_usd += point.value
    return {t: u for t, u in totals.items() if u.input_tokens or u.output_tokens or u.cost_usd}


def _tenant_rows(roots: Iterable[Span], metrics: Mapping[str, _Usage]) -> tuple[TenantRow, ...]:
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for root in roots:
        tenant = _tenant(root.attributes)
        requests[tenant] += 1
        errors[tenant] += root.is_error
    rows = []
    for tenant in sorted(set(requests) | set(metrics)):
        usage = metrics.get(tenant, _Usage())
        rows.append(TenantRow(tenant, requests[tenant], errors[tenant], usage.input_tokens,
                              usage.output_tokens, usage.cost_usd))
    return tuple(rows)


def _consistency(client_genai: Iterable[Span], metrics: Mapping[str, _Usage]) -> Consistency:
    spans = list(client_genai)

    def total(key: str) -> float:
        return math.fsum(float(s.attributes[key]) for s in spans if _has(s, key))

    return Consistency(
        span_input_tokens=round(total(semconv.GEN_AI_USAGE_INPUT_TOKENS)),
        span_output_tokens=round(total(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)),
        span_cost_usd=total(semconv.GEN_AI_USAGE_COST_AMOUNT),
        metric_input_tokens=sum(u.input_tokens for u in metrics.values()),
        metric_output_tokens=sum(u.output_tokens for u in metrics.values()),
        metric_cost_usd=math.fsum(u.cost_usd for u in metrics.values()),
    )


def _feedback(spans: Iterable[Span], request_traces: set[str]) -> FeedbackSummary:
    kinds: Counter[str] = Counter()
    scores: list[float] = []
    linked = 0
    for span in spans:
        kind = span.attributes.get(semconv.RAG_FEEDBACK_KIND)
        if not isinstance(kind, str):
            continue
        kinds[kind] += 1
        score = span.attributes.get(semconv.RAG_FEEDBACK_SCORE)
        if isinstance(score, (int, float)):
            scores.append(float(score))
        linked += span.attributes.get(semconv.RAG_FEEDBACK_TRACE_ID) in request_traces
    return FeedbackSummary(
        total=sum(kinds.values()),
        by_kind=dict(sorted(kinds.items())),
        score_count=len(scores),
        score_mean=math.fsum(scores) / len(scores) if scores else None,
        linked=linked,
    )


def _drift_rows(points: Iterable[MetricPoint]) -> tuple[DriftRow, ...]:
    """One row per feature that has a drift verdict (windows below ``min_samples`` have none).

    Per feature, the newest process's values win: after a restart, the old
    process's last verdict is stale whatever order the files are read in.
    """
    detected: dict[tuple[Any, ...], MetricPoint] = {}
    p_values: dict[tuple[Any, ...], float] = {}
    scores: dict[tuple[Any, ...], dict[str, float]] = defaultdict(dict)
    for point in sorted(points, key=lambda p: p.time_ns):
        labels = {k: v for k, v in point.attributes.items() if k != semconv.DRIFT_METHOD}
        key = (point.service, _freeze(labels))
        if point.name == semconv.METRIC_DRIFT_DETECTED:
            detected[key] = point
        elif point.name == semconv.METRIC_DRIFT_P_VALUE:
            p_values[key] = point.value
        elif point.name == semconv.METRIC_DRIFT_SCORE:
            method = point.attributes.get(semconv.DRIFT_METHOD)
            scores[key][str(method)] = point.value
    rows = []
    for key, point in detected.items():
        labels = {k: v for k, v in point.attributes.items() if k != semconv.DRIFT_FEATURE}
        rows.append(DriftRow(
            service=point.service,
            feature=str(point.attributes.get(semconv.DRIFT_FEATURE, "")),
            labels=labels,
            detected=point.value >= 1,
            p_value=p_values.get(key),
            scores=dict(sorted(scores[key].items())),
        ))
    return tuple(sorted(rows, key=lambda r: (r.service, r.feature, _freeze(r.labels))))


def _waterfall(traces: Mapping[str, list[Span]], roots: Sequence[Span]) -> Waterfall | None:
    """The trace of the successful request whose latency is closest to the median,
    preferring streamed answers (they show TTFT and TBT)."""
    ok = [r for r in roots if not r.is_error] or list(roots)
    if not ok:
        return None
    streamed = [r for r in ok if any(_has(s, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
                                     for s in traces[r.trace_id])]
    pool = streamed or ok
    median = percentile([r.duration_s for r in pool], 50)
    root = min(pool, key=lambda r: (abs(r.duration_s - median), r.trace_id))
    spans = traces[root.trace_id]
    children: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        children[span.parent_span_id].append(span)
    rows: list[WaterfallRow] = []

    def visit(span: Span, depth: int) -> None:
        rows.append(_row(span, depth, root.start_ns))
        for child in sorted(children.get(span.span_id, []), key=lambda s: (s.start_ns, s.span_id)):
            visit(child, depth + 1)

    visit(root, 0)
    seen = {row_span for row_span in _walk(root, children)}
    for orphan in sorted((s for s in spans if s.span_id not in seen), key=lambda s: s.start_ns):
        rows.append(_row(orphan, 1, root.start_ns))
    return Waterfall(root.trace_id, _tenant(root.attributes), root.duration_s, tuple(rows))


def _walk(span: Span, children: Mapping[str, list[Span]]) -> Iterator[str]:
    yield span.span_id
    for child in children.get(span.span_id, []):
        yield from _walk(child, children)


def _row(span: Span, depth: int, origin_ns: int) -> WaterfallRow:
    a = span.attributes
    notes: list[str] = []
    if semconv.GEN_AI_USAGE_INPUT_TOKENS in a or semconv.GEN_AI_USAGE_OUTPUT_TOKENS in a:
        notes.append(f"tokens {a.get(semconv.GEN_AI_USAGE_INPUT_TOKENS, '?')} in / "
                     f"{a.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, '?')} out")
    if _has(span, semconv.GEN_AI_USAGE_COST_AMOUNT):
        notes.append(f"${_float(span, semconv.GEN_AI_USAGE_COST_AMOUNT):.6f}")
    if _has(span, semconv.RAG_RETRIEVAL_DOCUMENT_COUNT):
        notes.append(f"{a[semconv.RAG_RETRIEVAL_DOCUMENT_COUNT]} docs")
        if _has(span, semconv.RAG_RETRIEVAL_SCORE_MAX):
            notes.append(f"top score {_float(span, semconv.RAG_RETRIEVAL_SCORE_MAX):.2f}")
    if _has(span, semconv.RAG_GROUNDEDNESS_SCORE):
        notes.append(f"groundedness {_float(span, semconv.RAG_GROUNDEDNESS_SCORE):.2f}")
    chunks = a.get(semconv.LLM_OUTPUT_CHUNK_COUNT)
    return WaterfallRow(
        depth=depth,
        service=span.service,
        name=span.name,
        offset_s=max(0, span.start_ns - origin_ns) / 1e9,
        duration_s=span.duration_s,
        error=span.is_error,
        ttft_s=_optional(span, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK),
        tbt_s=_optional(span, semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN),
        chunks=int(chunks) if isinstance(chunks, (int, float)) else None,
        notes=tuple(notes),
    )


# --- rendering -----------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _bar(row: WaterfallRow, total: float, width: int, full: str) -> str:
    if total <= 0:
        return " " * width
    start = min(width - 1, int(row.offset_s / total * width))
    length = max(1, round(row.duration_s / total * width))
    length = min(length, width - start)
    return (" " * start + full * length).ljust(width)


def _waterfall_lines(waterfall: Waterfall, unicode_ok: bool) -> list[str]:
    full = "█" if unicode_ok else "#"
    width = 24
    lines = [f"Representative trace {waterfall.trace_id}: the median successful request, "
             f"{_ms(waterfall.duration_s)}, tenant {waterfall.tenant}", ""]
    rows = []
    for row in waterfall.rows:
        timing = []
        if row.ttft_s is not None:
            timing.append(f"TTFT {_ms(row.ttft_s)}")
        if row.tbt_s is not None:
            timing.append(f"TBT {_ms(row.tbt_s)}" + (f" x{row.chunks}" if row.chunks else ""))
        details = (" · " if unicode_ok else "; ").join([*timing, *row.notes])
        rows.append([
            row.service,
            "  " * row.depth + row.name + (" [ERROR]" if row.error else ""),
            _ms(row.offset_s),
            _ms(row.duration_s),
            _bar(row, waterfall.duration_s, width, full),
            details,
        ])
    lines += _table(["service", "span", "start", "duration", "timeline", "details"], rows, {2, 3})
    return lines


def render(report: Report, out: TextIO | None = None) -> None:
    """Write the report as plain text (no colours, so it reads the same in CI logs)."""
    out = out or sys.stdout
    encoding = (getattr(out, "encoding", None) or "utf-8").lower()
    unicode_ok = "utf" in encoding
    lines = [
        f"otel-ml report: {report.directory}",
        f"{report.files} files, "
        + ", ".join(f"{n} spans from {s}" for s, n in report.spans_by_service.items()),
    ]
    if report.unreadable_lines:
        lines.append(f"warning: {report.unreadable_lines} unreadable lines skipped")
    lines.append("")
    if report.waterfall is not None:
        lines += [*_waterfall_lines(report.waterfall, unicode_ok), ""]
    lines += _summary_lines(report)
    lines += ["", *_tenant_lines(report), "", *_feedback_lines(report)]
    if report.drift:
        lines += ["", *_drift_lines(report)]
    out.write("\n".join(lines) + "\n")


def _summary_lines(report: Report) -> list[str]:
    lines = [f"Requests: {report.requests}, errors: {report.errors} "
             f"({report.error_rate:.1%} error rate)"]
    for label, stats in (("latency", report.latency), ("TTFT", report.ttft),
                         ("TBT (mean per answer)", report.tbt)):
        if stats is not None:
            lines.append(f"{label}: p50 {_ms(stats.p50)}, p99 {_ms(stats.p99)} "
                         f"({stats.count} samples)")
    for row in report.evaluations:
        if row.mean is None:
            continue
        labels = ", ".join(f"{label} {count}" for label, count in row.labels.items())
        lines.append(f"{row.name}: mean {row.mean:.3f} over {row.count} answers"
                     + (f" ({labels})" if labels else ""))
    if report.hallucination_rate is not None:
        lines.append(f"hallucination rate: {report.hallucination_rate:.1%} "
                     f"of evaluated answers unsupported")
    return lines


def _tenant_lines(report: Report) -> list[str]:
    rows = [[t.tenant, str(t.requests), str(t.errors), f"{t.input_tokens:,}",
             f"{t.output_tokens:,}", f"${t.cost_usd:.6f}"] for t in report.tenants]
    if len(report.tenants) > 1:
        rows.append(["total", str(sum(t.requests for t in report.tenants)),
                     str(sum(t.errors for t in report.tenants)),
                     f"{sum(t.input_tokens for t in report.tenants):,}",
                     f"{sum(t.output_tokens for t in report.tenants):,}",
                     f"${math.fsum(t.cost_usd for t in report.tenants):.6f}"])
    lines = ["Per tenant (requests from traces; tokens and cost from metrics)"]
    lines += _table(["tenant", "requests", "errors", "input tokens", "output tokens", "cost"],
                    rows, {1, 2, 3, 4, 5})
    c = report.consistency
    if c.consistent:
        lines.append(f"check: span totals match the metrics ({c.span_input_tokens:,} in, "
                     f"{c.span_output_tokens:,} out, ${c.span_cost_usd:.6f})")
    else:
        lines.append(f"check: span totals differ from the metrics: spans {c.span_input_tokens:,} "
                     f"in / {c.span_output_tokens:,} out / ${c.span_cost_usd:.6f}, metrics "
                     f"{c.metric_input_tokens:,} / {c.metric_output_tokens:,} / "
                     f"${c.metric_cost_usd:.6f} (sampled spans, or a process that did not "
                     f"flush?)")
    return lines


def _feedback_lines(report: Report) -> list[str]:
    f = report.feedback
    if not f.total:
        return ["Feedback: none"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in f.by_kind.items())
    line = f"Feedback: {f.total} ({kinds})"
    if f.score_mean is not None:
        line += f", mean score {f.score_mean:.2f} over {f.score_count}"
    return [line, f"{f.linked} of {f.total} linked to a request trace in this data"]


def _score(value: float) -> str:
    # Distances sit in 0..1 and need three decimals; a chi-square statistic can be 1e4.
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"


def _drift_lines(report: Report) -> list[str]:
    lines = [f"Drift (ml.drift.* gauges at the last recompute): {len(report.drifted)} of "
             f"{len(report.drift)} features drifted"]
    rows = []
    for row in report.drift:
        extra = "".join(f" {k}={v}" for k, v in sorted(row.labels.items()))
        p_value = "-" if row.p_value is None else f"{row.p_value:.3g}"
        scores = ", ".join(f"{method} {_score(value)}" for method, value in row.scores.items())
        rows.append([row.service, row.feature + extra, "YES" if row.detected else "no",
                     p_value, scores])
    lines += _table(["service", "feature", "drifted", "p-value", "scores"], rows, {3})
    return lines


# --- command line --------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", nargs="?", type=Path,
        default=Path(os.environ.get(_DATA_DIR_ENV) or _DEFAULT_DIR),
        help=f"folder of OTLP JSON lines (default: ${_DATA_DIR_ENV} or ./{_DEFAULT_DIR})",
    )
    parser.add_argument("--json", action="store_true", help="print the report data as JSON")


def run(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        print(f"otel-ml report: {directory} is not a folder", file=sys.stderr)
        return 2
    report = build_report(directory)
    if not report.spans_by_service and not report.tenants:
        print(f"otel-ml report: no OTLP JSON telemetry in {directory}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        render(report)
    return 0
