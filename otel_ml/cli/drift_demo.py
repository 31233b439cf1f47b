"""``otel-ml drift-demo``: the Month 1 / Month 2 drift scenario, end to end, in seconds.

1. Month 1: synthetic card transactions; a scikit-learn logistic regression learns fraud.
2. Every prediction runs inside ``otel_ml.inference`` (``prediction_count``,
   ``inference_latency``), and the monitor sees each transaction's features.
3. A last Month 1 week is served as a control: nothing should fire.
4. Month 2: purchase amounts rise for everyone (a mean shift of the log-amount, in reference
   standard deviations) while fraud itself does not change. The model, which learned that big
   amounts are risky, now flags many more transactions.
5. The monitor detects the amount drift (KS and PSI) and the jump in the positive-prediction
   rate without any label; when the delayed labels arrive, accuracy and precision drop.
6. The bias scenario (:mod:`otel_ml.cli.drift_bias`): another Month 2 in which nothing drifts
   but the region the large purchases come from; one region's positive rate jumps while the
   overall rate stays flat, and only the monitor's group-aware mode catches it.

Everything runs on an in-memory OpenTelemetry pipeline (no global state, nothing sent), is
seeded, and writes a PNG comparing reference and current distributions per feature.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from rich import box
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_score, recall_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import otel_ml
from otel_ml import semconv
from otel_ml.cli import drift_bias
from otel_ml.cli.drift_bias import BiasResult
from otel_ml.drift import DriftMonitor, DriftReport, FeatureReport, psi_band

MODEL_NAME = "fraud-v3"
CHANNELS = ("app", "web", "pos")
FEATURES = ("amount", "account_age_days", "tx_last_24h", "channel")
LOG_AMOUNT_MEAN, LOG_AMOUNT_STD = 3.5, 0.8
PLOT_NAME = "drift_report.png"
REPORT_NAME = "drift_report.json"

FloatArray = npt.NDArray[np.float64]
Predict = Callable[[Pipeline, FloatArray], int]


# --- data and model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    """One period of transactions; ``fraud`` is the ground truth that arrives late."""

    amount: FloatArray
    account_age_days: FloatArray
    tx_last_24h: FloatArray
    channel: npt.NDArray[np.str_]
    fraud: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.amount.size)

    def design(self) -> FloatArray:
        """The model's inputs: log amount, log account age, recent count, channel one-hot."""
        return np.column_stack(
            [
                np.log(self.amount),
                np.log1p(self.account_age_days),
                self.tx_last_24h,
                self.channel == "app",
                self.channel == "web",
            ]
        ).astype(np.float64)

    def records(self) -> Iterator[dict[str, object]]:
        """Rows as a request handler would see them."""
        for i in range(len(self)):
            yield {
                "amount": float(self.amount[i]),
                "account_age_days": float(self.account_age_days[i]),
                "tx_last_24h": int(self.tx_last_24h[i]),
                "channel": str(self.channel[i]),
            }

    def column(self, feature: str) -> npt.NDArray[Any]:
        return np.asarray(getattr(self, feature))

    def log_amount_z(self) -> FloatArray:
        """Log amounts in Month 1 standard deviations from the Month 1 mean."""
        return (np.log(self.amount) - LOG_AMOUNT_MEAN) / LOG_AMOUNT_STD


def generate_month(rng: np.random.Generator, rows: int, amount_shift_std: float = 0.0) -> Month:
    """Transactions; the shift moves observed amounts but not the fraud risk behind them."""
    log_amount = rng.normal(LOG_AMOUNT_MEAN, LOG_AMOUNT_STD, rows)
    age = rng.gamma(2.0, 200.0, rows)
    tx = rng.poisson(3.0, rows).astype(np.float64)
    channel = rng.choice(np.array(CHANNELS), rows, p=(0.5, 0.3, 0.2))
    logit = (
        -1.3
        + 2.0 * (log_amount - LOG_AMOUNT_MEAN) / LOG_AMOUNT_STD
        - 0.8 * (np.log1p(age) - 5.6)
        + 0.35 * (tx - 3.0)
        + 0.9 * (channel == "web")
    )
    fraud = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    amount = np.exp(log_amount + amount_shift_std * LOG_AMOUNT_STD)
    return Month(amount, age, tx, channel, fraud)


def train(month: Month) -> Pipeline:
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(month.design(), month.fraud)
    return model


def predict_instrumented(model: Pipeline, row: FloatArray) -> int:
    """One prediction inside ``otel_ml.inference``: the only otel-ml SDK call of the demo."""
    with otel_ml.inference(model=MODEL_NAME) as span:
        label = int(model.predict(row.reshape(1, -1))[0])
        span.prediction(label)
    return label


# --- the scenario -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    accuracy: float
    precision: float
    recall: float
    positive_rate: float


@dataclass(frozen=True)
class ScenarioResult:
    holdout: Quality
    control: DriftReport
    unlabelled: DriftReport
    labelled: DriftReport
    reference: Month
    current: Month
    metrics: MetricsData | None
    plot: Path | None
    bias: BiasResult | None = None


def serve(
    month: Month, model: Pipeline, monitor: DriftMonitor, predict: Predict, id_prefix: str | None
) -> None:
    """Serve a month: the monitor sees each request's features and the model's answer."""
    design = month.design()
    for i, record in enumerate(month.records()):
        monitor.observe(record)
        label = predict(model, design[i])
        prediction_id = f"{id_prefix}-{i}" if id_prefix else None
        monitor.record_prediction(label, prediction_id=prediction_id)


def build_monitor(reference: Month, model: Pipeline, meter_provider: MeterProvider) -> DriftMonitor:
    """KS/chi-square on a 1000-row reference (Evidently's small-reference default) plus PSI."""
    monitor = DriftMonitor(
        meter_provider.get_meter("otel_ml.drift"),
        window=len(reference),
        min_samples=100,
        attributes={semconv.ML_MODEL: MODEL_NAME},
    )
    for feature in FEATURES:
        monitor.add_feature(feature, reference.column(feature).tolist())
    monitor.set_prediction_reference(model.predict(reference.design()).tolist())
    return monitor


def holdout_quality(model: Pipeline, month: Month) -> Quality:
    predicted = model.predict(month.design())
    return Quality(
        accuracy=float(accuracy_score(month.fraud, predicted)),
        precision=float(precision_score(month.fraud, predicted, zero_division=0)),
        recall=float(recall_score(month.fraud, predicted, zero_division=0)),
        positive_rate=float(np.mean(predicted)),
    )


def months(seed: int, rows: int, shift: float) -> tuple[Month, Month, Month, Month]:
    """Training (4 x rows), reference, control week and the shifted Month 2."""
    rng = np.random.default_rng(seed)
    training, reference, control = (generate_month(rng, n) for n in (4 * rows, rows, rows))
    return training, reference, control, generate_month(rng, rows, amount_shift_std=shift)


def run_bias_scenario(model: Pipeline, reference: Month, *, seed: int, rows: int) -> BiasResult:
    """The bias scenario. Its Month 2 is drawn like Month 1, from its own generator, so the
    main scenario's numbers do not depend on it."""
    bias_month = generate_month(np.random.default_rng([seed, 2]), rows)
    return drift_bias.run_bias(model, reference, bias_month, seed=seed, features=FEATURES)


def run_scenario(
    *, seed: int, rows: int, shift: float, out: Path | None, predict: Predict = predict_instrumented
) -> ScenarioResult:
    """Run Months 1 and 2; ``out`` None skips the PNG and JSON files."""
    training, reference, control, current = months(seed, rows, shift)
    model = train(training)

    reader = InMemoryMetricReader()
    resource = Resource.create({"service.name": "otel-ml-drift-demo"})
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
    telemetry = otel_ml.configure(
        service_name="otel-ml-drift-demo",
        tracer_provider=TracerProvider(resource=resource),
        meter_provider=meter_provider,
    )
    try:
        with build_monitor(reference, model, meter_provider) as monitor:
            serve(control, model, monitor, predict, id_prefix=None)
            control_report = monitor.compute()
            serve(current, model, monitor, predict, id_prefix="m2")
            unlabelled = monitor.compute()
            for i, fraud in enumerate(current.fraud.tolist()):  # the delayed labels arrive
                monitor.record_label(f"m2-{i}", fraud)
            labelled = monitor.compute()
            metrics = reader.get_metrics_data()
    finally:  # leave no demo pipeline behind as otel-ml's current Telemetry
        telemetry.shutdown()
        meter_provider.shutdown()
    bias = run_bias_scenario(model, reference, seed=seed, rows=rows)
    holdout = holdout_quality(model, reference)
    plot = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        plot = plot_distributions(reference, current, labelled, holdout, out / PLOT_NAME, bias)
    return ScenarioResult(
        holdout, control_report, unlabelled, labelled, reference, current, metrics, plot, bias
    )


# --- the plot ---------------------------------------------------------------------------------


def plot_distributions(
    reference: Month,
    current: Month,
    report: DriftReport,
    holdout: Quality,
    path: Path,
    bias: BiasResult | None = None,
) -> Path:
    """One panel per feature (plus predictions): reference vs Month 2, titled with the verdict;
    with ``bias``, a third row: per-region rates over time and against the reference."""
    rows = 3 if bias is not None else 2
    figure = Figure(figsize=(15, 4.25 * rows), layout="constrained")
    axes = figure.subplots(rows, 3).ravel()
    for ax, feature in zip(axes, FEATURES, strict=False):
        ref, cur = reference.column(feature), current.column(feature)
        if ref.dtype.kind == "U" or _is_count(ref):
            _bars(ax, ref.tolist(), cur.tolist())
        else:
            _histograms(ax, ref, cur, log=feature == "amount")
        _title(ax, report.features[feature])
    _prediction_bars(axes[4], report)
    _title(axes[4], report.features[semconv.ML_PREDICTION])
    axes[5].axis("off")
    axes[5].text(0.0, 0.5, _summary_text(report, holdout), family="monospace", va="center")
    if bias is not None:
        drift_bias.plot_timeline(axes[6], bias)
        drift_bias.plot_groups(axes[7], bias)
        axes[8].axis("off")
        axes[8].text(
            0.0, 0.5, drift_bias.summary_text(bias), family="monospace", va="center", fontsize=9
        )
    figure.suptitle(f"{MODEL_NAME}: Month 1 reference vs Month 2", fontsize=14)
    figure.savefig(path, dpi=90)
    return path


def _is_count(values: npt.NDArray[Any]) -> bool:
    return bool(np.all(values == np.round(values))) and np.unique(values).size <= 30


def _histograms(ax: Axes, ref: FloatArray, cur: FloatArray, *, log: bool) -> None:
    both = np.concatenate([ref, cur])
    edges = (
        np.geomspace(both.min(), both.max(), 41) if log else np.histogram_bin_edges(both, bins=40)
    )
    # Shares per bin rather than densities: comparable on a log axis too.
    for values, name in ((ref, "Month 1 (reference)"), (cur, "Month 2")):
        weights = np.full(values.size, 1.0 / values.size)
        ax.hist(values, bins=edges.tolist(), weights=weights, alpha=0.55, label=name)
    if log:
        ax.set_xscale("log")
    ax.set_ylabel("share of transactions")
    ax.legend(fontsize=8)


def _bars(ax: Axes, ref: list[Any], cur: list[Any]) -> None:
    categories = sorted(set(ref) | set(cur))
    x = np.arange(len(categories))
    for offset, values, name in ((-0.2, ref, "Month 1 (reference)"), (0.2, cur, "Month 2")):
        shares = [values.count(c) / len(values) for c in categories]
        ax.bar(x + offset, shares, width=0.4, alpha=0.8, label=name)
    ax.set_xticks(x, [f"{c:g}" if isinstance(c, float) else str(c) for c in categories])
    ax.set_ylabel("share of transactions")
    ax.legend(fontsize=8)


def _prediction_bars(ax: Axes, report: DriftReport) -> None:
    model = report.model
    shares = [model.reference_positive_rate or 0.0, model.positive_rate or 0.0]
    bars = ax.bar([0, 1], shares, color=["tab:blue", "tab:orange"], alpha=0.8)
    ax.bar_label(bars, labels=[f"{share:.1%}" for share in shares])
    ax.set_xticks([0, 1], ["Month 1 (reference)", "Month 2"])
    ax.set_ylabel("share predicted fraud")


def _title(ax: Axes, verdict: FeatureReport) -> None:
    ax.set_title(_panel_title(verdict), color="firebrick" if verdict.detected else "black")


def _panel_title(verdict: FeatureReport) -> str:
    if verdict.drift is None:
        return f"{verdict.feature}: not enough data"
    psi = verdict.score("psi")
    psi_text = f", PSI {psi.score:.2f}" if psi else ""
    state = "DRIFT" if verdict.detected else "ok"
    return (
        f"{verdict.feature}: {state}\n{verdict.drift.method} {verdict.drift.score:.3f}, "
        f"p={_p(verdict.drift.p_value)}{psi_text}"
    )


def _summary_text(report: DriftReport, holdout: Quality) -> str:
    model = report.model
    rows = [
        ("positive rate", holdout.positive_rate, model.positive_rate),
        ("accuracy", holdout.accuracy, model.accuracy),
        ("precision", holdout.precision, model.precision),
        ("recall", holdout.recall, model.recall),
    ]
    lines = [f"drifted: {', '.join(report.drifted) or 'none'}", "", f"{'':15}Month 1  Month 2"]
    lines += [f"{name:15}{_pct(before):>7}  {_pct(after):>7}" for name, before, after in rows]
    return "\n".join(lines)


# --- the printed report -------------------------------------------------------------------------


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _table(title: str) -> Table:
    # Light borders keep both tables inside 80 columns, the width of a pipe or CI log.
    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)


def drift_table(title: str, report: DriftReport) -> Table:
    table = _table(title)
    for column in ("feature", "test", "stat", "p-value", "PSI", "drift?"):
        table.add_column(column)
    for verdict in report.features.values():
        if verdict.drift is None:
            table.add_row(verdict.feature, "-", "-", "-", "-", "not enough data")
            continue
        psi = verdict.score("psi")
        psi_text = f"{psi.score:.3f} {psi_band(psi.score)}" if psi else "-"
        flag = "[bold red]DRIFT[/]" if verdict.detected else "[green]no[/]"
        table.add_row(
            verdict.feature,
            verdict.drift.method,
            f"{verdict.drift.score:.3f}",
            _p(verdict.drift.p_value),
            psi_text,
            flag,
        )
    return table


def quality_table(result: ScenarioResult) -> Table:
    table = _table("Model quality (fraud = positive class)")
    for column in ("", "Month 1 holdout", "Month 2, no labels", "Month 2, labelled"):
        table.add_column(column)
    holdout, before, after = result.holdout, result.unlabelled.model, result.labelled.model
    table.add_row(
        "positive rate",
        _pct(holdout.positive_rate),
        _pct(before.positive_rate),
        _pct(after.positive_rate),
    )
    for name in ("accuracy", "precision", "recall"):
        table.add_row(name, _pct(getattr(holdout, name)), "pending", _pct(getattr(after, name)))
    return table


def exported_lines(metrics: MetricsData | None) -> list[str]:
    """What Prometheus will store, in its names: the demo's model and drift series."""
    return _lines(metrics, {
        semconv.METRIC_DRIFT_DETECTED,
        semconv.METRIC_PREDICTION_RATE,
        semconv.METRIC_MODEL_ACCURACY,
        semconv.METRIC_MODEL_PRECISION,
        semconv.METRIC_PREDICTION_COUNT,
        semconv.METRIC_INFERENCE_LATENCY,
    })


def _lines(metrics: MetricsData | None, wanted: set[str]) -> list[str]:
    if metrics is None:
        return []
    lines = []
    for resource in metrics.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in wanted:
                    lines += [_prometheus_line(metric, point) for point in metric.data.data_points]
    return sorted(lines)


def _prometheus_line(metric: Metric, point: Any) -> str:
    # Our gauges carry no unit, so dots -> underscores is the whole translation (of metric and
    # attribute names); counters get _total, and the latency histogram is summarised by its
    # _count series.
    name = metric.name.replace(".", "_")
    labels = ",".join(
        f'{k.replace(".", "_")}="{v}"' for k, v in sorted((point.attributes or {}).items())
    )
    if isinstance(metric.data, Histogram):
        return f"{name}_seconds_count{{{labels}}} {point.count}"
    if isinstance(metric.data, Sum) and metric.data.is_monotonic:
        name += "_total"
    return f"{name}{{{labels}}} {point.value:.4g}"


def print_report(result: ScenarioResult, console: Console) -> None:
    console.rule(f"[bold]otel-ml drift-demo: {MODEL_NAME}")
    console.print(
        f"Month 1: trained a logistic regression on {4 * len(result.reference)} transactions; "
        f"reference = {len(result.reference)} held-out rows."
    )
    console.print(drift_table("Control: last Month 1 week (no drift expected)", result.control))
    console.print(drift_table("Month 2: amounts shifted", result.unlabelled))
    model = result.unlabelled.model
    console.print(
        f"Without labels: predicted-fraud rate {_pct(model.reference_positive_rate)} (reference) "
        f"-> {_pct(model.positive_rate)} (Month 2)."
    )
    console.print(quality_table(result))
    drifted = result.unlabelled.drifted
    console.print(f"Drift detected in: {', '.join(drifted) if drifted else 'nothing'}")
    console.print("Exported metrics, as Prometheus names them:")
    for line in exported_lines(result.metrics):
        console.print(f"  {line}", markup=False, highlight=False)
    if result.bias is not None:
        print_bias(result.bias, console)
    if result.plot is not None:
        console.print(f"Plot: {result.plot}")


def bias_table(bias: BiasResult) -> Table:
    table = _table(f"Bias scenario: positive rate per {drift_bias.GROUP_BY}")
    for column in (drift_bias.GROUP_BY, "Month 1", "Month 2", "TPR Month 1", "TPR Month 2"):
        table.add_column(column)
    for name, stats in bias.fairness.groups.items():
        moved = (
            stats.positive_rate is not None and stats.reference_positive_rate is not None
            and abs(stats.positive_rate - stats.reference_positive_rate) > 0.1
        )
        table.add_row(
            f"[bold red]{name}[/]" if moved else name,
            _pct(stats.reference_positive_rate),
            _pct(stats.positive_rate),
            _pct(stats.reference_true_positive_rate),
            _pct(stats.true_positive_rate),
        )
    model = bias.unlabelled.model
    table.add_row("[bold]overall[/]", _pct(model.reference_positive_rate),
                  _pct(model.positive_rate), "", "")
    return table


def disparity_table(bias: BiasResult) -> Table:
    fairness = bias.fairness
    table = _table("Disparity across regions (fairlearn's measures)")
    for column in ("measure", "Month 1", "Month 2", "moved > band?"):
        table.add_column(column)
    for measure in sorted(set(fairness.disparity) | set(fairness.reference_disparity)):
        flag = "[bold red]yes[/]" if measure in fairness.shifted else "[green]no[/]"
        table.add_row(measure, _num(fairness.reference_disparity.get(measure)),
                      _num(fairness.disparity.get(measure)), flag)
    return table


def print_bias(bias: BiasResult, console: Console) -> None:
    console.rule("[bold]Bias scenario: the east gets the large purchases")
    console.print(
        "Month 2 again, drawn like Month 1 except that the region sending the largest "
        "amounts is now the east."
    )
    console.print(bias_table(bias))
    console.print(disparity_table(bias))
    drifted = bias.unlabelled.drifted
    console.print(f"Features drifted: {', '.join(drifted) if drifted else 'none'}")
    alerts = bias.alerts()
    console.print(f"Alerts the rules would raise: {', '.join(alerts) if alerts else 'none'}")
    console.print("Exported group metrics, as Prometheus names them:")
    for line in group_lines(bias.metrics):  # one series a line, even past 80 columns
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def group_lines(metrics: MetricsData | None) -> list[str]:
    """The bias monitor's per-group and disparity series, in Prometheus' names."""
    return _lines(metrics, {
        semconv.METRIC_PREDICTION_RATE,
        semconv.METRIC_GROUP_POSITIVE_RATE,
        semconv.METRIC_GROUP_REFERENCE_POSITIVE_RATE,
        semconv.METRIC_GROUP_TRUE_POSITIVE_RATE,
        semconv.METRIC_FAIRNESS_DISPARITY,
        semconv.METRIC_FAIRNESS_REFERENCE_DISPARITY,
    })


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_json(result: ScenarioResult) -> dict[str, Any]:
    """The numbers of the report, for machines (CI checks, notebooks)."""

    def features(report: DriftReport) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, verdict in report.features.items():
            out[name] = {
                "detected": verdict.detected,
                "method": verdict.drift.method if verdict.drift else None,
                "score": verdict.drift.score if verdict.drift else None,
                "p_value": verdict.drift.p_value if verdict.drift else None,
                "psi": psi.score if (psi := verdict.score("psi")) else None,
            }
        return out

    after = result.labelled.model
    return {
        "model": MODEL_NAME,
        "control": {"drifted": result.control.drifted, "features": features(result.control)},
        "month2": {"drifted": result.unlabelled.drifted, "features": features(result.unlabelled)},
        "positive_rate": {
            "reference": result.unlabelled.model.reference_positive_rate,
            "month2": result.unlabelled.model.positive_rate,
        },
        "quality": {
            "holdout": result.holdout.__dict__,
            "month2": {
                "accuracy": after.accuracy,
                "precision": after.precision,
                "recall": after.recall,
            },
        },
        "bias": drift_bias.report_json(result.bias) if result.bias else None,
        "plot": str(result.plot) if result.plot else None,
    }


# --- command line ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("drift-demo"),
        help="folder for the PNG plot and the JSON report (default: drift-demo)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument(
        "--rows",
        type=int,
        default=1000,
        help="transactions per period; training uses 4x (default: 1000)",
    )
    parser.add_argument(
        "--shift",
        type=float,
        default=0.75,
        help="Month 2 log-amount mean shift in reference std (default: 0.75)",
    )


def run(args: argparse.Namespace) -> int:
    if args.rows < 200:
        raise SystemExit("otel-ml drift-demo: --rows must be at least 200")
    result = run_scenario(seed=args.seed, rows=args.rows, shift=args.shift, out=args.out)
    (args.out / REPORT_NAME).write_text(json.dumps(report_json(result), indent=2))
    print_report(result, Console())
    return 0
