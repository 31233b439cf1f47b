"""Every metric and label name the rules, dashboards and runbooks use is one the stack emits.

The names the SDK emits are derived, not listed: the instruments otel-ml creates
(``otel_ml/metrics.py``, the drift monitor, the evaluations, the demo's server
instruments), read with their units and kinds by a recording meter, are run
through the translation the collector's prometheus exporter applies with
``translation_strategy: UnderscoreEscapingWithSuffixes`` (prometheus/otlptranslator
``normalizeName``: dots to underscores, a unit suffix unless the unit is an
annotation in braces or already a name token, ``_total`` on counters, ``_ratio``
on gauges of unit ``1``, ``_bucket``/``_sum``/``_count`` on histograms). Labels are
the attribute names in ``otel_ml/semconv.py`` with dots to underscores. The
span-metrics names come from ``otelcol.yaml``; names from outside the SDK
(Prometheus' own, the collector's telemetry, process metrics) are listed below.

So a rename in ``otel_ml/semconv.py`` (or a unit change in ``metrics.py``) that is
not carried to the rules, their promtool tests, the dashboards and the runbooks'
PromQL fails here, before the e2e tests find an empty panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cfg_support import CONFIG, PROMETHEUS_DIR, REPO, load_yaml
from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    NoOpMeter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)

from otel_ml import semconv

RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARDS = sorted((CONFIG / "grafana" / "dashboards").glob("*.json"))
RUNBOOKS = REPO / "docs" / "runbooks.md"

# --- the collector's translation (prometheus/otlptranslator, metric_namer.go) ------------------

# OTel (UCUM) unit -> Prometheus unit word.
UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds",
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}
PER_UNIT_WORDS = {
    "s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year",
}
COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"


def _clean(word: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:]", "_", word)).lstrip("_")


def _unit_suffixes(unit: str) -> tuple[str, str]:
    main, _, per = (part.strip() for part in unit.partition("/"))
    main_word = "" if not main or "{" in main or "}" in main else UNIT_WORDS.get(main, main)
    per_word = ""
    if per and "{" not in per and "}" not in per:
        per_word = "per_" + PER_UNIT_WORDS.get(per, per)
    return _clean(main_word), _clean(per_word)


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """The metric family name the collector's prometheus exporter writes."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]", name) if t]
    main, per = _unit_suffixes(unit)
    if main in tokens:
        main = ""
    if per == "per_":
        per = ""
    else:
        per = per.removesuffix("_")
        if per in tokens:
            per = ""
    if per:
        main = main.removesuffix("_")
    tokens += [word for word in (main, per) if word]
    if kind == COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == GAUGE:
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    joined = "_".join(tokens)
    return f"_{joined}" if joined[:1].isdigit() else joined


def series_names(name: str, unit: str, kind: str) -> set[str]:
    """What a query can select: histograms are _bucket, _sum and _count series."""
    family = prometheus_name(name, unit, kind)
    if kind == HISTOGRAM:
        return {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
    return {family}


def label_name(attribute: str) -> str:
    """An attribute key as a Prometheus label (otlptranslator LabelNamer, escaping)."""
    label = re.sub(r"[^a-zA-Z0-9_]", "_", attribute)
    return f"key_{label}" if label[:1].isdigit() else label


# --- what otel-ml creates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instrument:
    name: str
    unit: str
    kind: str


class RecordingMeter(NoOpMeter):
    """A no-op meter that remembers every instrument created on it."""

    def __init__(self) -> None:
        super().__init__("otel-ml-metric-names")
        self.created: list[Instrument] = []

    def _add(self, name: str, unit: str, kind: str) -> None:
        self.created.append(Instrument(name, unit, kind))

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        self._add(name, unit, COUNTER)
        return super().create_counter(name, unit, description)

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> UpDownCounter:
        self._add(name, unit, GAUGE)  # a non-monotonic sum is a Prometheus gauge
        return super().create_up_down_counter(name, unit, description)

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Any:
        self._add(name, unit, GAUGE)  # the synchronous gauge (not exported by the API's __init__)
        return super().create_gauge(name, unit, description)

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        self._add(name, unit, HISTOGRAM)
        return super().create_histogram(
            name, unit, description,
            explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
        )

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        self._add(name, unit, COUNTER)
        return super().create_observable_counter(name, callbacks, unit, description)

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableUpDownCounter:
        self._add(name, unit, GAUGE)
        return super().create_observable_up_down_counter(name, callbacks, unit, description)

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        self._add(name, unit, GAUGE)
        return super().create_observable_gauge(name, callbacks, unit, description)


def sdk_instruments() -> list[Instrument]:
    """Every instrument the SDK, its drift monitor and the demo services create."""
    from demo_rag.llm import ServerInstruments
    from otel_ml.drift import DriftMonitor
    from otel_ml.evaluation import EvaluationRecorder
    from otel_ml.metrics import Instruments

    meter = RecordingMeter()
    Instruments.create(meter)
    with DriftMonitor(meter):  # the shared gauges and the schema-violation counter
        pass
    ServerInstruments.create(meter)
    EvaluationRecorder.create_instruments(meter)  # otel_ml.evaluation, on first use
    return meter.created


def sdk_series() -> set[str]:
    return {s for i in sdk_instruments() for s in series_names(i.name, i.unit, i.kind)}


def span_metrics_series() -> set[str]:
    """The span_metrics connector's RED series, from its otelcol.yaml configuration."""
    connector = load_yaml(CONFIG / "otelcol.yaml")["connectors"]["span_metrics"]
    namespace = connector.get("namespace", "traces.span.metrics")
    unit = connector.get("histogram", {}).get("unit", "ms")
    return series_names(f"{namespace}.calls", "", COUNTER) | series_names(
        f"{namespace}.duration", unit, HISTOGRAM
    )


def span_metrics_labels() -> set[str]:
    connector = load_yaml(CONFIG / "otelcol.yaml")["connectors"]["span_metrics"]
    dimensions = {label_name(d["name"]) for d in connector.get("dimensions", [])}
    return dimensions | {"span_name", "span_kind", "status_code", "otel_metric_overflow"}


# Process metrics of the demo services (opentelemetry-instrumentation-system-metrics,
# configured in demo_rag/service.py), as that package creates them: (unit, kind).
PROCESS_METRICS = {
    "process.cpu.time": ("s", COUNTER),
    "process.cpu.utilization": ("1", GAUGE),
    "process.memory.usage": ("By", GAUGE),
    "process.memory.virtual": ("By", GAUGE),
    "process.thread.count": ("", GAUGE),
}

# Names that come from outside the SDK.
EXTERNAL_SERIES = {
    # Prometheus
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    # the prometheus exporter's resource info series
    "target_info",
    # the collector's own telemetry (job "otelcol", :8888, no _total suffix)
    "otelcol_receiver_accepted_spans",
    "otelcol_receiver_refused_spans",
    "otelcol_receiver_failed_spans",
    "otelcol_receiver_accepted_metric_points",
    "otelcol_receiver_refused_metric_points",
    "otelcol_exporter_sent_spans",
    "otelcol_exporter_send_failed_spans",
    "otelcol_exporter_enqueue_failed_spans",
    "otelcol_exporter_queue_size",
    "otelcol_exporter_queue_capacity",
    "otelcol_process_memory_rss",
    "otelcol_process_runtime_heap_alloc_bytes",
    "otelcol_process_cpu_seconds",
}
EXTERNAL_LABELS = {
    # Prometheus: scrape target, histogram bucket, alerts
    "job", "instance", "le", "quantile", "alertname", "alertstate",
    # resource attributes the exporter turns into labels
    "service_name", "service_instance_id", "service_namespace", "service_version",
    "deployment_environment",
    # the collector's own telemetry
    "receiver", "exporter", "processor", "transport", "data_type",
}


def emitted_series() -> set[str]:
    process = {
        s for name, (unit, kind) in PROCESS_METRICS.items() for s in series_names(name, unit, kind)
    }
    return sdk_series() | span_metrics_series() | process | EXTERNAL_SERIES


def semconv_labels() -> set[str]:
    """Every name in otel_ml/semconv.py as a label: a superset of the attributes emitted."""
    return {
        label_name(value)
        for key, value in vars(semconv).items()
        if key.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z][a-z0-9_.]*", value)
    }


def rule_labels() -> set[str]:
    """Labels the rules add (``labels:`` of alerts and recording rules)."""
    return {
        key
        for path in RULES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        for key in rule.get("labels", {})
    }


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in RULES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def known_labels() -> set[str]:
    return semconv_labels() | span_metrics_labels() | EXTERNAL_LABELS | rule_labels()


# --- reading names out of PromQL ------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*""')
_SELECTOR = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", re.IGNORECASE
)
_RANGE = re.compile(r"\[[^\[\]]*\]")
_OFFSET = re.compile(r"\b(?:offset)\s+-?[0-9a-z]+", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w:.])(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)", re.I)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "inf", "nan",
}


@dataclass(frozen=True)
class Names:
    metrics: frozenset[str]
    labels: frozenset[str]


def promql_names(expr: str) -> Names:
    """Metric and label names a PromQL expression selects or groups by."""
    labels: set[str] = set()
    text = _STRING.sub('""', expr)  # braces or keywords inside values are not syntax
    for selector in _SELECTOR.findall(text):
        labels.update(_MATCHER.findall(selector))
    text = _SELECTOR.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables left outside strings
    for grouping in _GROUPING.findall(text):
        labels.update(name.strip() for name in grouping.split(",") if name.strip())
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    metrics = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        if word.lower() in _KEYWORDS or re.match(r"\s*\(", text[match.end():]):
            continue  # a keyword, or a function / aggregation call
        metrics.add(word)
    return Names(frozenset(metrics), frozenset(labels))


def series_selector_names(series: str) -> Names:
    """A promtool series or exp_samples label string: ``metric{a="b"}`` or ``{a="b"}``."""
    return promql_names(series)


_TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
_LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


# --- the sources ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    where: str
    names: Names


def _rule_uses(path: Path) -> Iterator[Use]:
    for group in load_yaml(path)["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            where = f"{path.name}: {name}"
            yield Use(where, promql_names(rule["expr"]))
            templates = " ".join(str(v) for v in rule.get("annotations", {}).values())
            yield Use(where, Names(frozenset(), frozenset(_TEMPLATE_LABEL.findall(templates))))


def _rule_test_uses(path: Path) -> Iterator[Use]:
    document: Any = load_yaml(path)
    for i, test in enumerate(document.get("tests", [])):
        where = f"{path.name}: test {i}"
        for series in test.get("input_series", []):
            yield Use(f"{where} input_series", series_selector_names(series["series"]))
        for case in test.get("promql_expr_test", []):
            yield Use(f"{where} promql_expr_test", promql_names(case["expr"]))
            for sample in case.get("exp_samples", []):
                yield Use(f"{where} exp_samples", series_selector_names(sample.get("labels", "")))
        for case in test.get("alert_rule_test", []):
            for alert in case.get("exp_alerts", []):
                labels = frozenset(alert.get("exp_labels", {}))
                yield Use(f"{where} {case['alertname']} exp_labels", Names(frozenset(), labels))


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_uses(path: Path) -> Iterator[Use]:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            where = f"{path.name}: {panel['title']} {target.get('refId', '')}"
            if target.get("expr"):
                yield Use(where, promql_names(target["expr"]))
            legend = frozenset(_LEGEND_LABEL.findall(target.get("legendFormat", "")))
            yield Use(f"{where} legend", Names(frozenset(), legend))
    for variable in dashboard.get("templating", {}).get("list", []):
        where = f"{path.name}: variable {variable['name']}"
        for metric, label in _LABEL_VALUES.findall(variable.get("definition", "")):
            names = promql_names(metric)
            yield Use(where, Names(names.metrics, names.labels | {label}))


def _runbook_promql(text: str) -> Iterator[tuple[int, str]]:
    """(line number, PromQL) of every ```promql block, comments removed."""
    block: list[str] | None = None
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if block is None and line.strip() == "```promql":
            block, start = [], number + 1
        elif block is not None and line.strip() == "```":
            yield start, "\n".join(block)
            block = None
        elif block is not None:
            block.append(_STRING.sub(lambda m: m.group().replace("#", " "), line).split("#")[0])


def _runbook_uses(path: Path) -> Iterator[Use]:
    for line, promql in _runbook_promql(path.read_text(encoding="utf-8")):
        yield Use(f"{path.name}:{line}", promql_names(promql))


def uses() -> dict[str, list[Use]]:
    """Every use of a name, per source file."""
    sources: dict[str, list[Use]] = {}
    for path in RULES:
        sources[f"rules/{path.name}"] = list(_rule_uses(path))
    for path in RULE_TESTS:
        sources[f"tests/{path.name}"] = list(_rule_test_uses(path))
    for path in DASHBOARDS:
        sources[f"dashboards/{path.name}"] = list(_dashboard_uses(path))
    sources["docs/runbooks.md"] = list(_runbook_uses(RUNBOOKS))
    return sources


USES = uses()


def unknown_metrics(source: Iterable[Use], emitted: set[str], recorded: set[str]) -> list[str]:
    return sorted(
        f"{use.where}: {name}"
        for use in source
        for name in use.names.metrics
        if name not in (recorded if ":" in name else emitted)
    )


def unknown_labels(source: Iterable[Use], labels: set[str]) -> list[str]:
    return sorted(
        f"{use.where}: {name}" for use in source for name in use.names.labels if name not in labels
    )


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        # examples of prometheus/otlptranslator's metric_namer_test.go
        ("http.server.request.duration", "s", HISTOGRAM, "http_server_request_duration_seconds"),
        ("requests.count", "1", COUNTER, "requests_count_total"),
        ("memory.usage", "By", GAUGE, "memory_usage_bytes"),
        ("system.cpu.utilization", "1", GAUGE, "system_cpu_utilization_ratio"),
        ("network.io", "By/s", GAUGE, "network_io_bytes_per_second"),
        ("foo.seconds", "s", GAUGE, "foo_seconds"),
        ("requests.total", "", COUNTER, "requests_total"),
        # annotations add no suffix
        ("gen_ai.client.token.usage", "{token}", HISTOGRAM, "gen_ai_client_token_usage"),
        ("llm.cost.usd", "{USD}", COUNTER, "llm_cost_usd_total"),
        # an unknown unit is kept as written: the reason llm.cost was llm_cost_USD_total
        ("llm.cost", "USD", COUNTER, "llm_cost_USD_total"),
        # unit 1 gives _ratio on gauges only
        ("rag.retrieval.score", "1", HISTOGRAM, "rag_retrieval_score"),
        ("traces.span.metrics.duration", "s", HISTOGRAM, "traces_span_metrics_duration_seconds"),
    ],
)
def test_translation_follows_the_collector(name: str, unit: str, kind: str, expected: str) -> None:
    assert prometheus_name(name, unit, kind) == expected


def test_the_collector_translates_as_assumed_here() -> None:
    config = load_yaml(CONFIG / "otelcol.yaml")
    exporter = config["exporters"]["prometheus"]
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert exporter["resource_to_telemetry_conversion"]["enabled"] is True
    assert "namespace" not in exporter, "a namespace would prefix every name"
    assert "span_metrics" in config["service"]["pipelines"]["metrics"]["receivers"]


def test_the_sdk_names_are_the_documented_ones() -> None:
    # Guards the derivation itself: these are the names docs/sdk.md lists.
    emitted = sdk_series()
    assert {
        "llm_cost_usd_total",
        "llm_cost_unpriced_total",
        "gen_ai_client_token_usage_sum",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_operation_time_to_first_chunk_seconds_count",
        "gen_ai_client_operation_time_per_output_chunk_seconds_count",
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "rag_retrieval_document_count_bucket",
        "rag_retrieval_score_bucket",
        "llm_evaluation_score_bucket",
        "llm_evaluation_dropped_total",
        "rag_feedback_total",
        "prediction_count_total",
        "inference_latency_seconds_count",
        "ml_drift_score",
        "ml_drift_p_value",
        "ml_drift_detected",
        "ml_data_null_rate",
        "ml_data_out_of_range_rate",
        "ml_data_schema_violations_total",
        "ml_prediction_positive_rate",
        "ml_model_accuracy",
        "ml_group_positive_rate",
        "ml_group_reference_positive_rate",
        "ml_group_true_positive_rate",
        "ml_fairness_disparity",
        "ml_fairness_reference_disparity",
        "ml_fairness_disparity_band",
    } <= emitted
    assert not {name for name in emitted if name != name.lower()}, "uppercase unit suffix"
    assert span_metrics_series() == {
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_seconds_bucket",
        "traces_span_metrics_duration_seconds_sum",
        "traces_span_metrics_duration_seconds_count",
    }


def test_own_attributes_are_namespaced_labels() -> None:
    labels = semconv_labels()
    assert {
        "ml_model_name", "ml_prediction_label", "rag_feedback_kind", "ml_feature_name",
        "ml_drift_method", "ml_data_schema_violation_kind", "tenant_id",
        "ml_group_attribute", "ml_group_value", "ml_fairness_measure",
    } <= labels
    assert not {"model", "prediction", "kind", "feature", "method"} & labels


def test_process_metrics_table_matches_the_demo_configuration() -> None:
    from demo_rag import service

    assert set(service._PROCESS_METRICS) == set(PROCESS_METRICS)


def test_the_extraction_finds_metrics_and_labels() -> None:
    names = promql_names(
        'sum by (tenant_id) (rate(llm_cost_usd_total{tenant_id=~"$tenant", x!="a{b}"}[5m]))'
        " / on (tenant_id) group_left () otel_ml:tenant_budget_usd offset 1d"
        " > 1e-3 and histogram_quantile(0.9,"
        ' sum by (le) (rate(h_bucket{le="0.5"}[$__rate_interval])))'
    )
    assert names.metrics == {"llm_cost_usd_total", "otel_ml:tenant_budget_usd", "h_bucket"}
    assert names.labels == {"tenant_id", "x", "le"}


def test_every_source_uses_names() -> None:
    # Guards the extraction: a source read as empty would pass the tests below vacuously.
    # rules/budgets.yml only holds constants (vector(...)).
    empty = [name for name, source in USES.items() if not any(u.names.metrics for u in source)]
    assert empty == ["rules/budgets.yml"]
    unlabelled = [name for name, source in USES.items() if not any(u.names.labels for u in source)]
    assert unlabelled == ["rules/budgets.yml"]


@pytest.mark.parametrize("source", sorted(USES))
def test_metric_names_are_emitted(source: str) -> None:
    assert unknown_metrics(USES[source], emitted_series(), recorded_names()) == []


@pytest.mark.parametrize("source", sorted(USES))
def test_label_names_are_emitted(source: str) -> None:
    assert unknown_labels(USES[source], known_labels()) == []


def test_a_rename_in_semconv_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # What this test file is for: the old cost name and old attribute names, if they came
    # back in semconv.py, would no longer match the rules and dashboards.
    monkeypatch.setattr(semconv, "METRIC_COST", "llm.cost")
    monkeypatch.setattr(semconv, "FEEDBACK_KIND", "kind")
    monkeypatch.setattr(semconv, "RAG_FEEDBACK_KIND", "kind")
    every_use = [use for source in USES.values() for use in source]
    assert "llm_cost_usd_total" not in emitted_series()
    assert any(
        m.endswith(": llm_cost_usd_total")
        for m in unknown_metrics(every_use, emitted_series(), recorded_names())
    )
    assert any(
        m.endswith(": rag_feedback_kind") for m in unknown_labels(every_use, known_labels())
    )
