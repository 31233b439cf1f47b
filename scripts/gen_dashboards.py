#!/usr/bin/env python3
"""Generate the Grafana dashboards of the otel-ml stack.

Dashboards are written here as data (sections of panels of PromQL queries)
and rendered to the JSON Grafana provisions from
``collector-config/grafana/dashboards/``. Keeping them as code means one
place holds every metric name, the layout stays consistent, and the queries
can be listed: :func:`promql_exprs` gives each panel query with Grafana's
variables filled in, so the e2e tests run every one against the real
Prometheus and prove no panel is empty.

    python scripts/gen_dashboards.py            # rewrite the JSON files
    python scripts/gen_dashboards.py --check    # exit 1 if they are stale
    python scripts/gen_dashboards.py --list     # print every query

Metric names are the Prometheus names the collector's prometheus exporter
writes for the otel-ml SDK (dots to underscores, unit and ``_total``
suffixes), and so are label names (attribute names, dots to underscores);
tests/config/test_metric_names.py checks them against otel_ml/semconv.py.
Durations are seconds everywhere, including span metrics (``otelcol.yaml``:
span_metrics histogram unit ``s``). This module needs no otel_ml import and
only the standard library, so it runs in any checkout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
DASHBOARD_DIR: Final = REPO / "collector-config" / "grafana" / "dashboards"

PROMETHEUS_UID: Final = "prometheus"
JAEGER_UID: Final = "jaeger"
GRID_WIDTH: Final = 24

# --- metric names (as exported by the collector's prometheus exporter) -------
TOKENS: Final = "gen_ai_client_token_usage"
COST: Final = "llm_cost_usd_total"
DURATION: Final = "gen_ai_client_operation_duration_seconds"
TTFT: Final = "gen_ai_client_operation_time_to_first_chunk_seconds"
TBT: Final = "gen_ai_client_operation_time_per_output_chunk_seconds"
SERVER_TTFT: Final = "gen_ai_server_time_to_first_token_seconds"
DOC_COUNT: Final = "rag_retrieval_document_count"
SCORE: Final = "rag_retrieval_score"
EVALUATION: Final = "llm_evaluation_score"
FEEDBACK: Final = "rag_feedback_total"
CALLS: Final = "traces_span_metrics_calls_total"
SPAN_DURATION: Final = "traces_span_metrics_duration_seconds"
DRIFT_SCORE: Final = "ml_drift_score"
DRIFT_P_VALUE: Final = "ml_drift_p_value"
DRIFT_DETECTED: Final = "ml_drift_detected"
NULL_RATE: Final = "ml_data_null_rate"
SCHEMA_VIOLATIONS: Final = "ml_data_schema_violations_total"
POSITIVE_RATE: Final = "ml_prediction_positive_rate"
ACCURACY: Final = "ml_model_accuracy"
# labels: attribute names with dots -> underscores (otel_ml/semconv.py)
FEEDBACK_KIND: Final = "rag_feedback_kind"
FEATURE_NAME: Final = "ml_feature_name"
DRIFT_METHOD: Final = "ml_drift_method"
VIOLATION_KIND: Final = "ml_data_schema_violation_kind"
ML_MODEL: Final = "ml_model_name"
# recording rules (collector-config/prometheus/rules/)
TENANT_SPEND_1D: Final = "tenant:llm_cost_usd:increase1d"
TENANT_BUDGET: Final = "otel_ml:tenant_budget_usd"
DEFAULT_BUDGET: Final = "otel_ml:tenant_budget_default_usd"
EMPTY_RETRIEVALS: Final = "datasource:rag_retrieval_empty:ratio_rate10m"
THUMBS_DOWN_RATIO: Final = "tenant:rag_feedback_thumbs_down:ratio_rate30m"
HALLUCINATION_RATIO: Final = "tenant_model:llm_evaluation_unsupported:ratio_rate30m"
EVALUATION_NAME: Final = "gen_ai_evaluation_name"

SLO_ERROR_BUDGET: Final = 0.01  # rules/slo.yml: 99% availability
SERVER: Final = 'span_kind="SPAN_KIND_SERVER"'
NOT_ERROR: Final = 'status_code!="STATUS_CODE_ERROR"'
RATE: Final = "$__rate_interval"


# --- the model ----------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    # Ask Prometheus for exemplars (trace ids on buckets): Grafana links them
    # to Jaeger through the datasource's exemplarTraceIdDestinations.
    exemplar: bool = False
    fmt: str = "time_series"


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    description: str = ""
    kind: str = "timeseries"  # timeseries | stat | bargauge | heatmap
    unit: str = "short"
    width: int = 12
    height: int = 8
    # Series whose legend starts with this prefix are drawn dashed, without
    # fill: budget and threshold lines over the measured series.
    dashed_prefix: str | None = None
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class Section:
    """A collapsible row of panels; panels wrap at the grid width."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    """A multi-select dashboard variable filled from a label's values."""

    name: str
    label: str
    metric: str
    label_name: str

    @property
    def definition(self) -> str:
        return f"label_values({self.metric}, {self.label_name})"


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    sections: tuple[Section, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = field(default=("otel-ml",))

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"


# --- variables ------------------------------------------------------------------

TENANT: Final = Variable("tenant", "Tenant", COST, "tenant_id")
MODEL: Final = Variable("model", "Model", f"{TOKENS}_count", "gen_ai_request_model")
SERVICE: Final = Variable("service", "Service", CALLS, "service_name")
DATA_SOURCE: Final = Variable(
    "data_source", "Data source", f"{SCORE}_count", "gen_ai_data_source_id"
)
FEATURE: Final = Variable("feature", "Feature", DRIFT_P_VALUE, FEATURE_NAME)


def _quantiles(metric: str, selector: str, by: str, title: str, **kwargs: Any) -> Panel:
    """p50/p95/p99 of a seconds histogram, one series per ``by`` value."""
    queries = tuple(
        Query(
            f"histogram_quantile({q}, "
            f"sum by (le, {by}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
            exemplar=q == 0.99,
        )
        for q in (0.5, 0.95, 0.99)
    )
    return Panel(title, queries, unit="s", **kwargs)


def _ratio_with_default_budget(spend: str) -> str:
    """Spend over budget, using the default budget for tenants without one."""
    return (
        f"({spend} / on (tenant_id) {TENANT_BUDGET})"
        f" or (({spend} unless on (tenant_id) {TENANT_BUDGET})"
        f" / on () group_left () {DEFAULT_BUDGET})"
    )


# --- 1. LLM tokens and cost per tenant ------------------------------------------


def llm_cost_dashboard() -> Dashboard:
    tenant = 'tenant_id=~"$tenant"'
    tenant_model = f'{tenant}, gen_ai_request_model=~"$model"'
    spend = f"{TENANT_SPEND_1D}{{{tenant}}}"
    headline = Section(
        "Spend per tenant (rolling 24h)",
        (
            Panel(
                "Spend per tenant, last 24h",
                (Query(spend, "{{tenant_id}}"),),
                "LLM cost per tenant over a rolling 24h window, from llm.cost.usd (USD).",
                kind="bargauge",
                unit="currencyUSD",
                width=12,
            ),
            Panel(
                "Budget used, last 24h",
                (Query(_ratio_with_default_budget(spend), "{{tenant_id}}"),),
                "Spend over the tenant's daily budget (collector-config/budgets.yaml); "
                "over 100% fires TenantDailyCostOverBudget.",
                kind="bargauge",
                unit="percentunit",
                width=12,
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Spend vs budget (rolling 24h)",
                (
                    Query(spend, "{{tenant_id}}"),
                    Query(f"{TENANT_BUDGET}{{{tenant}}}", "budget {{tenant_id}}"),
                ),
                "Each tenant's 24h spend with its budget line (dashed).",
                unit="currencyUSD",
                width=24,
                dashed_prefix="budget ",
            ),
        ),
    )
    breakdown = Section(
        "Tokens and cost breakdown",
        (
            Panel(
                "Cost rate per tenant",
                (
                    Query(
                        f"sum by (tenant_id) (rate({COST}{{{tenant_model}}}[{RATE}])) * 3600",
                        "{{tenant_id}}",
                    ),
                ),
                "USD per hour at the current rate.",
                unit="currencyUSD",
            ),
            Panel(
                "Cost rate per model",
                (
                    Query(
                        f"sum by (gen_ai_request_model) "
                        f"(rate({COST}{{{tenant_model}}}[{RATE}])) * 3600",
                        "{{gen_ai_request_model}}",
                    ),
                ),
                "USD per hour at the current rate.",
                unit="currencyUSD",
            ),
            Panel(
                "Tokens per tenant",
                (
                    Query(
                        f"sum by (tenant_id, gen_ai_token_type) "
                        f"(rate({TOKENS}_sum{{{tenant_model}}}[{RATE}]))",
                        "{{tenant_id}} {{gen_ai_token_type}}",
                    ),
                ),
                "Input and output tokens per second (gen_ai.client.token.usage).",
                unit="short",
            ),
            Panel(
                "Tokens per model, last 24h",
                (
                    Query(
                        f"sum by (gen_ai_request_model, gen_ai_token_type) "
                        f"(increase({TOKENS}_sum{{{tenant_model}}}[24h]))",
                        "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                    ),
                ),
                kind="bargauge",
                unit="short",
            ),
        ),
    )
    return Dashboard(
        "otel-ml-llm-cost",
        "otel-ml / LLM tokens and cost per tenant",
        "Who spends what on which model, against the budgets in collector-config/budgets.yaml.",
        (headline, breakdown),
        (TENANT, MODEL),
    )


# --- 2. Streaming latency -------------------------------------------------------------


def streaming_dashboard() -> Dashboard:
    selector = 'tenant_id=~"$tenant", gen_ai_request_model=~"$model"'
    model = "gen_ai_request_model"
    client = Section(
        "Client side (measured by the caller's SDK)",
        (
            _quantiles(
                TTFT, selector, model, "Time to first token (TTFT)",
                description="From request start to the first non-empty streamed chunk.",
            ),
            _quantiles(
                TBT, selector, model, "Time between tokens (TBT)",
                description="Gap between consecutive streamed chunks after the first.",
            ),
            _quantiles(
                DURATION, selector, model, "Operation duration",
                description="Whole GenAI operation, first byte sent to last chunk received.",
            ),
            Panel(
                "TTFT distribution",
                (
                    Query(
                        f"sum by (le) (increase({TTFT}_bucket{{{selector}}}[{RATE}]))",
                        "{{le}}",
                        fmt="heatmap",
                    ),
                ),
                kind="heatmap",
                unit="s",
            ),
        ),
    )
    server = Section(
        "Server side vs client side",
        (
            Panel(
                "TTFT p95: LLM server vs client",
                (
                    Query(
                        f"histogram_quantile(0.95, sum by (le, {model}) "
                        f'(rate({SERVER_TTFT}_bucket{{gen_ai_request_model=~"$model"}}[{RATE}])))',
                        "server {{gen_ai_request_model}}",
                    ),
                    Query(
                        f"histogram_quantile(0.95, sum by (le, {model}) "
                        f"(rate({TTFT}_bucket{{{selector}}}[{RATE}])))",
                        "client {{gen_ai_request_model}}",
                    ),
                ),
                "The gap between the two is network, queueing and the API service's own work.",
                unit="s",
                width=24,
            ),
        ),
    )
    return Dashboard(
        "otel-ml-streaming",
        "otel-ml / Streaming latency",
        "Time to first token and between tokens, per model.",
        (client, server),
        (TENANT, MODEL),
    )


# --- 3. RAG quality -----------------------------------------------------------------------


def rag_quality_dashboard() -> Dashboard:
    source = 'gen_ai_data_source_id=~"$data_source"'
    tenant = 'tenant_id=~"$tenant"'
    retrieval = Section(
        "Retrieval",
        (
            Panel(
                "Documents per retrieval (mean)",
                (
                    Query(
                        f"sum by (gen_ai_data_source_id) "
                        f"(rate({DOC_COUNT}_sum{{{source}, {tenant}}}[{RATE}]))"
                        f" / sum by (gen_ai_data_source_id) "
                        f"(rate({DOC_COUNT}_count{{{source}, {tenant}}}[{RATE}]))",
                        "{{gen_ai_data_source_id}}",
                    ),
                ),
                unit="short",
                width=8,
            ),
            Panel(
                "Retrievals with no document",
                (Query(f"{EMPTY_RETRIEVALS}{{{source}}}", "{{gen_ai_data_source_id}}"),),
                "Share over 10 minutes; above 10% fires RetrievalReturnsNoDocuments.",
                unit="percentunit",
                width=8,
                min_value=0,
            ),
            Panel(
                "Similarity score (p50, p10)",
                tuple(
                    Query(
                        f"histogram_quantile({q}, sum by (le, gen_ai_data_source_id) "
                        f"(rate({SCORE}_bucket{{{source}}}[{RATE}])))",
                        f"p{round(q * 100)} {{{{gen_ai_data_source_id}}}}",
                    )
                    for q in (0.5, 0.1)
                ),
                "Median below 0.2 for 15 minutes fires RetrievalSimilarityLow.",
                unit="short",
                width=8,
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Similarity score distribution",
                (
                    Query(
                        f"sum by (le) (increase({SCORE}_bucket{{{source}}}[{RATE}]))",
                        "{{le}}",
                        fmt="heatmap",
                    ),
                ),
                kind="heatmap",
                unit="short",
                width=24,
            ),
        ),
    )
    answers = Section(
        "Answers and users",
        (
            Panel(
                "Groundedness (p50, p10)",
                tuple(
                    Query(
                        f"histogram_quantile({q}, sum by (le, tenant_id) "
                        f"(rate({EVALUATION}_bucket{{{EVALUATION_NAME}=\"groundedness\", "
                        f"{tenant}}}[{RATE}])))",
                        f"p{round(q * 100)} {{{{tenant_id}}}}",
                    )
                    for q in (0.5, 0.1)
                ),
                "Share of each answer's claims its retrieved context supports (1 = all), "
                "from the groundedness evaluation (llm.evaluation.score).",
                unit="short",
                width=8,
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Feedback per kind",
                (
                    Query(
                        f"sum by ({FEEDBACK_KIND}) (rate({FEEDBACK}{{{tenant}}}[{RATE}])) * 60",
                        f"{{{{{FEEDBACK_KIND}}}}}",
                    ),
                ),
                "Feedback events per minute: thumbs up/down, copy to clipboard, scores.",
                unit="short",
                width=8,
            ),
            Panel(
                "Thumbs-down share of votes",
                (Query(f"{THUMBS_DOWN_RATIO}{{{tenant}}}", "{{tenant_id}}"),),
                "Over 30 minutes; above 30% (with 10+ votes) fires ThumbsDownRateHigh.",
                unit="percentunit",
                width=8,
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Hallucination rate",
                (Query(f"{HALLUCINATION_RATIO}{{{tenant}}}",
                       "{{tenant_id}} {{gen_ai_request_model}}"),),
                "Share of evaluated answers labelled unsupported by the groundedness "
                "evaluation, over 30 minutes, per tenant and model; above 25% (with 20+ "
                "answers) fires HallucinationRateHigh.",
                unit="percentunit",
                width=12,
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Evaluation scores (mean)",
                (
                    Query(
                        f"sum by ({EVALUATION_NAME}) (rate({EVALUATION}_sum{{{tenant}}}[{RATE}]))"
                        f" / sum by ({EVALUATION_NAME}) "
                        f"(rate({EVALUATION}_count{{{tenant}}}[{RATE}]))",
                        f"{{{{{EVALUATION_NAME}}}}}",
                    ),
                ),
                "Mean score of each evaluation (groundedness, answer and context "
                "relevance; 1 = best). See docs/evaluations.md.",
                unit="short",
                width=12,
                min_value=0,
                max_value=1,
            ),
        ),
    )
    return Dashboard(
        "otel-ml-rag-quality",
        "otel-ml / RAG quality",
        "Retrieval health, answer groundedness and what users think of the answers.",
        (retrieval, answers),
        (TENANT, DATA_SOURCE),
    )


# --- 4. Service RED and SLO -----------------------------------------------------------


def _calls(extra: str = "") -> str:
    return f'{CALLS}{{{SERVER}, service_name=~"$service"{extra}}}'


def _availability(window: str) -> str:
    """Share of SERVER spans not in error; 1 for a service without errors."""
    return (
        f"sum by (service_name) (rate({_calls(', ' + NOT_ERROR)}[{window}]))"
        f" / sum by (service_name) (rate({_calls()}[{window}]))"
    )


def red_slo_dashboard() -> Dashboard:
    red = Section(
        "RED (from span metrics)",
        (
            Panel(
                "Requests",
                (Query(f"sum by (service_name) (rate({_calls()}[{RATE}]))", "{{service_name}}"),),
                "SERVER spans per second.",
                unit="reqps",
                width=8,
            ),
            Panel(
                "Error ratio",
                (Query(f"1 - ({_availability(RATE)})", "{{service_name}}"),),
                "Share of SERVER spans with status ERROR.",
                unit="percentunit",
                width=8,
                min_value=0,
            ),
            _quantiles(
                SPAN_DURATION, f'{SERVER}, service_name=~"$service"', "service_name", "Duration",
                description="SERVER span duration. p99 above 10s for 10 minutes fires "
                "ServiceLatencyP99High. Exemplars link to the trace in Jaeger.",
                width=8,
            ),
            Panel(
                "Operations",
                (
                    Query(
                        f"sum by (service_name, span_name) (rate({_calls()}[{RATE}]))",
                        "{{service_name}} {{span_name}}",
                    ),
                ),
                "Calls per second per SERVER operation.",
                unit="reqps",
                width=24,
            ),
        ),
    )
    slo = Section(
        "SLO: 99% of requests succeed",
        (
            Panel(
                "Availability, last 24h",
                (Query(_availability("1d"), "{{service_name}}"),),
                kind="stat",
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Error budget burn rate",
                (
                    Query(
                        f"(1 - ({_availability('1h')})) / {SLO_ERROR_BUDGET}",
                        "1h {{service_name}}",
                    ),
                    Query(
                        f"(1 - ({_availability('5m')})) / {SLO_ERROR_BUDGET}",
                        "5m {{service_name}}",
                    ),
                ),
                "1 = spending the budget exactly over 30 days; both windows above 14.4 page "
                "(ServiceErrorBudgetBurnFast).",
                unit="short",
                width=16,
            ),
        ),
    )
    return Dashboard(
        "otel-ml-red-slo",
        "otel-ml / Services: RED and SLO",
        "Rate, errors and duration of every service from the collector's span metrics.",
        (red, slo),
        (SERVICE,),
    )


# --- 5. Collector health ------------------------------------------------------------


def _with_zero_for_active(failures: str, activity: str, by: str) -> str:
    """Failure rate, or 0 for components that are active and never failed.

    The collector creates a failure counter only at the first failure, so a
    healthy exporter has no series; its real traffic supplies the zero.
    """
    return (
        f"sum by ({by}) (rate({failures}[{RATE}]))"
        f" or sum by ({by}) (rate({activity}[{RATE}])) * 0"
    )


def collector_dashboard() -> Dashboard:
    pipeline = Section(
        "Pipeline",
        (
            Panel(
                "Spans accepted / refused",
                (
                    Query(
                        f"sum by (receiver, transport) "
                        f"(rate(otelcol_receiver_accepted_spans[{RATE}]))",
                        "accepted {{receiver}}/{{transport}}",
                    ),
                    Query(
                        f"sum by (receiver, transport) "
                        f"(rate(otelcol_receiver_refused_spans[{RATE}]))",
                        "refused {{receiver}}/{{transport}}",
                    ),
                ),
                "Refused spans mean memory pressure (memory_limiter); clients retry them.",
                unit="short",
            ),
            Panel(
                "Metric points accepted / refused",
                (
                    Query(
                        f"sum by (receiver, transport) "
                        f"(rate(otelcol_receiver_accepted_metric_points[{RATE}]))",
                        "accepted {{receiver}}/{{transport}}",
                    ),
                    Query(
                        f"sum by (receiver, transport) "
                        f"(rate(otelcol_receiver_refused_metric_points[{RATE}]))",
                        "refused {{receiver}}/{{transport}}",
                    ),
                ),
                unit="short",
            ),
            Panel(
                "Spans sent / failed per exporter",
                (
                    Query(
                        f"sum by (exporter) (rate(otelcol_exporter_sent_spans[{RATE}]))",
                        "sent {{exporter}}",
                    ),
                    Query(
                        _with_zero_for_active(
                            "otelcol_exporter_send_failed_spans",
                            "otelcol_exporter_sent_spans",
                            "exporter",
                        ),
                        "failed {{exporter}}",
                    ),
                ),
                "Failed: given up after retries. The Jaeger exporter retries from a disk "
                "queue, so watch its queue first.",
                unit="short",
            ),
            Panel(
                "Exporter queue",
                (
                    Query("sum by (exporter) (otelcol_exporter_queue_size)", "size {{exporter}}"),
                    Query(
                        "sum by (exporter) (otelcol_exporter_queue_capacity)",
                        "capacity {{exporter}}",
                    ),
                ),
                "Batches waiting to be sent; above 80% of capacity fires "
                "OtelcolExporterQueueFilling.",
                unit="short",
                dashed_prefix="capacity ",
            ),
        ),
    )
    process = Section(
        "Process",
        (
            Panel(
                "Memory",
                (
                    Query("otelcol_process_memory_rss", "RSS {{instance}}"),
                    Query("otelcol_process_runtime_heap_alloc_bytes", "heap {{instance}}"),
                ),
                "memory_limiter refuses data above its limit (OTELCOL_MEMORY_LIMIT_MIB).",
                unit="bytes",
                width=8,
            ),
            Panel(
                "CPU",
                (Query(f"rate(otelcol_process_cpu_seconds[{RATE}])", "{{instance}}"),),
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Up",
                (Query('up{job=~"otelcol|otelcol-exporter"}', "{{job}}"),),
                "1 when Prometheus can scrape the collector's telemetry and its exporter.",
                kind="stat",
                width=8,
            ),
        ),
    )
    return Dashboard(
        "otel-ml-collector",
        "otel-ml / Collector health",
        "Is telemetry getting through: receivers, exporters, queue, memory.",
        (pipeline, process),
    )


# --- 6. Model and data drift -------------------------------------------------------------


def drift_dashboard() -> Dashboard:
    feature = f'{FEATURE_NAME}=~"$feature"'
    drift = Section(
        "Feature drift",
        (
            Panel(
                "Drift score",
                (
                    Query(
                        f"{DRIFT_SCORE}{{{feature}}}",
                        f"{{{{{FEATURE_NAME}}}}} {{{{{DRIFT_METHOD}}}}}",
                    ),
                ),
                "Distance between the live window and the reference, per method "
                "(PSI, KS statistic, ...).",
                unit="short",
            ),
            Panel(
                "Drift test p-value",
                (Query(f"{DRIFT_P_VALUE}{{{feature}}}", f"{{{{{FEATURE_NAME}}}}}"),),
                "Low p-values mean the live distribution differs from the reference.",
                unit="short",
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Features drifting",
                (
                    Query(
                        f"max by ({FEATURE_NAME}) ({DRIFT_DETECTED}{{{feature}}})",
                        f"{{{{{FEATURE_NAME}}}}}",
                    ),
                ),
                "1 when the feature's primary drift test fires.",
                kind="stat",
                width=24,
                height=5,
            ),
        ),
    )
    quality = Section(
        "Data and model quality",
        (
            Panel(
                "Null rate",
                (Query(f"{NULL_RATE}{{{feature}}}", f"{{{{{FEATURE_NAME}}}}}"),),
                unit="percentunit",
                width=8,
                min_value=0,
            ),
            Panel(
                "Schema violations",
                (
                    Query(
                        f"sum by ({FEATURE_NAME}, {VIOLATION_KIND}) "
                        f"(increase({SCHEMA_VIOLATIONS}{{{feature}}}[1h]))",
                        f"{{{{{FEATURE_NAME}}}}} {{{{{VIOLATION_KIND}}}}}",
                    ),
                ),
                "Fields that appeared, disappeared or changed type, over the last hour.",
                unit="short",
                width=8,
            ),
            Panel(
                "Positive prediction rate",
                (Query(POSITIVE_RATE, f"{{{{{ML_MODEL}}}}}"),),
                "A shift in the share of positive predictions often precedes accuracy loss.",
                unit="percentunit",
                width=8,
                min_value=0,
                max_value=1,
            ),
            Panel(
                "Model accuracy",
                (Query(ACCURACY, f"{{{{{ML_MODEL}}}}}"),),
                "Accuracy over the window of predictions whose true label is known.",
                unit="percentunit",
                width=24,
                min_value=0,
                max_value=1,
            ),
        ),
    )
    return Dashboard(
        "otel-ml-drift",
        "otel-ml / Model and data drift",
        "Feature drift, data quality and model quality from otel_ml.drift monitors.",
        (drift, quality),
        (FEATURE,),
    )


def dashboards() -> tuple[Dashboard, ...]:
    """Every dashboard the stack provisions, in display order."""
    return (
        llm_cost_dashboard(),
        streaming_dashboard(),
        rag_quality_dashboard(),
        red_slo_dashboard(),
        collector_dashboard(),
        drift_dashboard(),
    )


# --- rendering to Grafana JSON ------------------------------------------------------

_DATASOURCE: Final = {"type": "prometheus", "uid": PROMETHEUS_UID}


def _target(query: Query, ref_id: str) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "datasource": _DATASOURCE,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": True,
        "instant": False,
        "exemplar": query.exemplar,
        "format": query.fmt,
    }


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.min_value is not None:
        defaults["min"] = panel.min_value
    if panel.max_value is not None:
        defaults["max"] = panel.max_value
    overrides: list[dict[str, Any]] = []
    if panel.dashed_prefix is not None:
        overrides.append(
            {
                "matcher": {"id": "byRegexp", "options": f"^{re.escape(panel.dashed_prefix)}.*"},
                "properties": [
                    {
                        "id": "custom.lineStyle",
                        "value": {"fill": "dash", "dash": [10, 10]},
                    },
                    {"id": "custom.fillOpacity", "value": 0},
                ],
            }
        )
    return {"defaults": defaults, "overrides": overrides}


def _panel_options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "bargauge":
        return {"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True}
    if panel.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    if panel.kind == "heatmap":
        return {"calculate": False, "yAxis": {"unit": panel.unit}, "cellGap": 1}
    return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}


def _render_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": _DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [_target(q, chr(ord("A") + i)) for i, q in enumerate(panel.queries)],
        "fieldConfig": _field_config(panel),
        "options": _panel_options(panel),
    }
    if panel.description:
        rendered["description"] = panel.description
    if panel.kind in ("bargauge", "stat"):
        # instant: these show the latest value, not a range
        for target in rendered["targets"]:
            target["range"], target["instant"] = False, True
    return rendered


def _layout(sections: Sequence[Section]) -> list[dict[str, Any]]:
    """Rows and panels with grid positions: left to right, wrapping at 24."""
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for section in sections:
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": section.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for panel in section.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_render_panel(panel, next_id, x, y))
            next_id, x, row_height = next_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    return panels


def _render_variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": _DATASOURCE,
        "definition": variable.definition,
        "query": {"query": variable.definition, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,  # on time range change: new tenants appear without a reload
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The Grafana JSON model of a dashboard."""
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "links": [
            {
                "title": "otel-ml dashboards",
                "type": "dashboards",
                "tags": ["otel-ml"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": [_render_variable(v) for v in dashboard.variables]},
        "panels": _layout(dashboard.sections),
    }


def render_text(dashboard: Dashboard) -> str:
    """Deterministic file content, so ``--check`` can compare bytes."""
    return json.dumps(render(dashboard), indent=2, ensure_ascii=False) + "\n"


# --- queries for tests ----------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    """A panel query as Grafana would send it, for running against Prometheus."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str


_VARIABLE: Final = re.compile(r"\$(\w+)")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (``$name``) in ``expr``; unknown ones raise KeyError."""
    return _VARIABLE.sub(lambda m: values[m.group(1)], expr)


def promql_exprs(rate_interval: str = "1m") -> list[PanelQuery]:
    """Every panel query of every dashboard, with variables at "All".

    ``rate_interval`` stands in for ``$__rate_interval``, which Grafana derives
    from the scrape interval and the zoom level.
    """
    queries: list[PanelQuery] = []
    for dashboard in dashboards():
        values = {"__rate_interval": rate_interval}
        values.update({variable.name: ".*" for variable in dashboard.variables})
        for section in dashboard.sections:
            for panel in section.panels:
                for i, query in enumerate(panel.queries):
                    expr = substitute(query.expr, values)
                    queries.append(PanelQuery(dashboard.uid, panel.title, chr(ord("A") + i), expr))
    return queries


def variable_sources() -> list[tuple[str, Variable]]:
    """(dashboard uid, variable) for every dashboard variable: its metric must exist."""
    return [(d.uid, v) for d in dashboards() for v in d.variables]


# --- CLI ------------------------------------------------------------------------------------


def stale(out_dir: Path = DASHBOARD_DIR) -> list[str]:
    """Problems with the JSON files in ``out_dir``: missing, extra or out of date."""
    expected = {d.filename: render_text(d) for d in dashboards()}
    present = {p.name for p in out_dir.glob("*.json")}
    problems = [f"{name}: missing" for name in sorted(expected.keys() - present)]
    problems += [f"{name}: not generated here" for name in sorted(present - expected.keys())]
    problems += [
        f"{name}: out of date"
        for name, text in sorted(expected.items())
        if name in present and (out_dir / name).read_text(encoding="utf-8") != text
    ]
    return problems


def _write(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for dashboard in dashboards():
        (out_dir / dashboard.filename).write_text(render_text(dashboard), encoding="utf-8")


def _iter_listing(rate_interval: str) -> Iterator[str]:
    for query in promql_exprs(rate_interval):
        yield f"{query.dashboard}\t{query.panel}\t{query.ref_id}\t{query.expr}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the otel-ml Grafana dashboards.")
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="dashboard directory")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    action.add_argument("--list", action="store_true", help="print every panel query")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(_iter_listing("1m")))
        return 0
    if args.check:
        problems = stale(args.out)
        for problem in problems:
            print(f"{args.out}/{problem}: run scripts/gen_dashboards.py", file=sys.stderr)
        return 1 if problems else 0
    _write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
