"""The drift demo's bias scenario: one region's rate moves, the overall rate does not.

Transactions come from three regions (north 40 %, south 40 %, east 20 %). In Month 1 the
region says nothing about a transaction. In Month 2 a partner in the east starts sending its
big-ticket purchases through the model: the east now gets the largest amounts, while the
amounts overall, every other feature, the regions' shares and the fraud behind them keep
their Month 1 distributions. The model, which flags large amounts, flags far more of the
east's transactions and fewer of the others': the overall positive rate stays flat (so
``PredictionRateShift`` stays quiet and no feature drifts), and only the per-group view of a
``DriftMonitor(group_by="region")`` sees it (demographic parity ratio under the four-fifths
rule, disparity shifted beyond its band).

Its own in-memory MeterProvider keeps its series apart from the main scenario's. Seeded
from the demo's seed through a separate generator, so the main scenario's numbers do not
change when this one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from sklearn.pipeline import Pipeline

from otel_ml import semconv
from otel_ml.drift import (
    DEMOGRAPHIC_PARITY_RATIO,
    DriftMonitor,
    DriftReport,
    FairnessReport,
)

if TYPE_CHECKING:  # drift_demo imports this module
    from otel_ml.cli.drift_demo import Month

GROUP_BY = "region"
REGIONS = ("north", "south", "east")
SHIFTED_REGION = "east"
EAST_SHARE = 0.2
# How strongly Month 2 routes large amounts to the east: the east takes the rows with the
# highest skew * z(log amount) + N(0, 1); 0 = regions independent of the amount (Month 1).
SKEW = 1.5
FOUR_FIFTHS = 0.8
DISPARITY_BAND = 0.1
WEEKS = 4  # per month, for the timeline
# Alert names of collector-config/prometheus/rules/fairness.yml (and of drift.yml's rate rule).
RATIO_ALERT = "DemographicParityRatioLow"
SHIFT_ALERT = "FairnessDisparityShift"
RATE_ALERT = "PredictionRateShift"
RATE_ALERT_THRESHOLD = 0.1

StrArray = npt.NDArray[np.str_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BiasResult:
    """The bias scenario: regions and predictions of both months, and the monitor's reports."""

    reference_regions: StrArray
    current_regions: StrArray
    reference_predictions: IntArray
    current_predictions: IntArray
    unlabelled: DriftReport
    labelled: DriftReport
    metrics: MetricsData | None

    @property
    def fairness(self) -> FairnessReport:
        fairness = self.labelled.fairness
        assert fairness is not None, "the bias monitor is group-aware"
        return fairness

    def alerts(self) -> list[str]:
        """The alerts the rules would raise on these numbers (held for their ``for:``)."""
        fairness, model = self.fairness, self.unlabelled.model
        fired = []
        if fairness.disparity.get(DEMOGRAPHIC_PARITY_RATIO, 1.0) < FOUR_FIFTHS:
            fired.append(RATIO_ALERT)
        if fairness.shifted:
            fired.append(SHIFT_ALERT)
        if (
            model.positive_rate is not None and model.reference_positive_rate is not None
            and abs(model.positive_rate - model.reference_positive_rate) > RATE_ALERT_THRESHOLD
        ):
            fired.append(RATE_ALERT)
        return fired


def assign_regions(
    rng: np.random.Generator, log_amount_z: npt.NDArray[np.float64], skew: float
) -> StrArray:
    """Regions with fixed shares; ``skew`` > 0 sends the largest amounts to the east."""
    n = log_amount_z.size
    score = skew * log_amount_z + rng.normal(size=n)
    order = np.argsort(-score, kind="stable")
    n_east = round(n * EAST_SHARE)
    rest = np.array(["north"] * ((n - n_east) // 2) + ["south"] * (n - n_east - (n - n_east) // 2))
    rng.shuffle(rest)
    regions = np.empty(n, dtype="<U5")
    regions[order[:n_east]] = SHIFTED_REGION
    regions[order[n_east:]] = rest
    return regions


def inputs(
    model: Pipeline, reference: Month, current: Month, *, seed: int
) -> tuple[StrArray, StrArray, IntArray, IntArray]:
    """Regions (independent in the reference, skewed in ``current``) and predictions."""
    rng = np.random.default_rng([seed, 1])
    ref_regions = assign_regions(rng, reference.log_amount_z(), 0.0)
    cur_regions = assign_regions(rng, current.log_amount_z(), SKEW)
    ref_pred = model.predict(reference.design()).astype(np.int64)
    cur_pred = model.predict(current.design()).astype(np.int64)
    return ref_regions, cur_regions, ref_pred, cur_pred


def run_bias(
    model: Pipeline,
    reference: Month,
    current: Month,
    *,
    seed: int,
    features: Sequence[str],
) -> BiasResult:
    """Serve ``current`` (a Month 2 drawn like ``reference``) with regions skewed, to a
    group-aware monitor, features included; then the delayed labels arrive."""
    ref_regions, cur_regions, ref_pred, cur_pred = inputs(model, reference, current, seed=seed)

    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "otel-ml-drift-demo"}),
    )
    try:
        with build_monitor(
            provider.get_meter("otel_ml.drift"), reference, ref_regions, ref_pred, features
        ) as monitor:
            serve(monitor, current, cur_regions, cur_pred, prefix="bias")
            unlabelled = monitor.compute()
            for i, fraud in enumerate(current.fraud.tolist()):  # the delayed labels arrive
                monitor.record_label(f"bias-{i}", fraud)
            labelled = monitor.compute()
            metrics = reader.get_metrics_data()
    finally:
        provider.shutdown()
    return BiasResult(ref_regions, cur_regions, ref_pred, cur_pred, unlabelled, labelled, metrics)


def build_monitor(
    meter: Meter,
    reference: Month,
    regions: StrArray,
    predictions: IntArray,
    features: Sequence[str],
) -> DriftMonitor:
    """A group-aware monitor with the reference's features, predictions, regions and labels."""
    monitor = DriftMonitor(
        meter,
        window=len(reference),
        min_samples=100,
        attributes={semconv.ML_MODEL: "fraud-v3"},
        group_by=GROUP_BY,
        disparity_band=DISPARITY_BAND,
    )
    for feature in features:
        monitor.add_feature(feature, reference.column(feature).tolist())
    monitor.set_prediction_reference(
        predictions.tolist(), groups=regions.tolist(), labels=reference.fraud.tolist()
    )
    return monitor


def serve(
    monitor: DriftMonitor, month: Month, regions: StrArray, predictions: IntArray, prefix: str
) -> None:
    """Each transaction's features, then its prediction with its region (id for the label)."""
    for i, record in enumerate(month.records()):
        monitor.observe(record)
        monitor.record_prediction(
            int(predictions[i]), prediction_id=f"{prefix}-{i}", group=str(regions[i])
        )


# --- timeline and plot ---------------------------------------------------------------------------


def weekly_rates(
    regions: StrArray, predictions: IntArray
) -> dict[str, list[float]]:
    """Positive rate per week (``WEEKS`` equal slices), per region and overall."""
    slices = np.array_split(np.arange(predictions.size), WEEKS)
    out: dict[str, list[float]] = {"overall": [float(np.mean(predictions[s])) for s in slices]}
    for region in REGIONS:
        out[region] = [
            float(np.mean(predictions[s][regions[s] == region])) for s in slices
        ]
    return out


def plot_timeline(ax: Axes, bias: BiasResult) -> None:
    """Weekly positive rates through both months: the regions split, the overall stays flat."""
    before = weekly_rates(bias.reference_regions, bias.reference_predictions)
    after = weekly_rates(bias.current_regions, bias.current_predictions)
    weeks = np.arange(1, 2 * WEEKS + 1)
    for region in REGIONS:
        shifted = region == SHIFTED_REGION
        ax.plot(
            weeks, before[region] + after[region], marker="o", linewidth=2.5 if shifted else 1.2,
            color="firebrick" if shifted else None, label=f"{GROUP_BY}={region}",
        )
    ax.plot(weeks, before["overall"] + after["overall"], color="black", linewidth=3,
            label="overall (ml_prediction_positive_rate)")
    ax.axvline(WEEKS + 0.5, color="grey", linestyle="--")
    ax.text(WEEKS + 0.6, 0.02, "Month 2", color="grey", transform=ax.get_xaxis_transform())
    ax.set_xticks(weeks, [f"M{1 + (w - 1) // WEEKS}w{1 + (w - 1) % WEEKS}" for w in weeks])
    ax.set_ylabel("share predicted fraud")
    ax.set_title("Bias scenario: positive rate per region, weekly")
    ax.legend(fontsize=8)


def plot_groups(ax: Axes, bias: BiasResult) -> None:
    """Per-region rate, reference vs Month 2, with the overall rates as lines."""
    fairness, model = bias.fairness, bias.unlabelled.model
    x = np.arange(len(REGIONS))
    ref = [fairness.groups[r].reference_positive_rate or 0.0 for r in REGIONS]
    cur = [fairness.groups[r].positive_rate or 0.0 for r in REGIONS]
    for offset, shares, name in ((-0.2, ref, "Month 1 (reference)"), (0.2, cur, "Month 2")):
        bars = ax.bar(x + offset, shares, width=0.4, alpha=0.8, label=name)
        ax.bar_label(bars, labels=[f"{s:.0%}" for s in shares], fontsize=8)
    for rate, style in ((model.reference_positive_rate, ":"), (model.positive_rate, "-")):
        if rate is not None:
            ax.axhline(rate, color="black", linestyle=style, linewidth=1)
    ax.set_xticks(x, [f"{GROUP_BY}={r}" for r in REGIONS])
    ax.set_ylabel("share predicted fraud")
    ratio = fairness.disparity.get(DEMOGRAPHIC_PARITY_RATIO)
    ax.set_title(
        f"Per region (overall: black lines)\nparity ratio {_num(ratio)} "
        f"(reference {_num(fairness.reference_disparity.get(DEMOGRAPHIC_PARITY_RATIO))})",
        color="firebrick" if bias.alerts() else "black",
    )
    ax.legend(fontsize=8)


def summary_text(bias: BiasResult) -> str:
    fairness, model = bias.fairness, bias.unlabelled.model
    lines = [
        "Bias scenario (group_by=region)",
        f"overall rate  {_pct(model.reference_positive_rate)} -> {_pct(model.positive_rate)}",
        f"features drifted: {', '.join(bias.unlabelled.drifted) or 'none'}",
        "",
        f"{'measure':30}  ref    now",
    ]
    for measure in sorted(set(fairness.disparity) | set(fairness.reference_disparity)):
        lines.append(
            f"{measure:30} {_num(fairness.reference_disparity.get(measure)):>5}  "
            f"{_num(fairness.disparity.get(measure)):>5}"
        )
    lines += ["", f"alerts: {', '.join(bias.alerts()) or 'none'}"]
    return "\n".join(lines)


def report_json(bias: BiasResult) -> dict[str, Any]:
    fairness, model = bias.fairness, bias.unlabelled.model
    return {
        "group_by": GROUP_BY,
        "overall_positive_rate": {
            "reference": model.reference_positive_rate, "month2": model.positive_rate,
        },
        "features_drifted": bias.unlabelled.drifted,
        "groups": {
            name: {
                "n": stats.n,
                "reference_positive_rate": stats.reference_positive_rate,
                "positive_rate": stats.positive_rate,
                "reference_true_positive_rate": stats.reference_true_positive_rate,
                "true_positive_rate": stats.true_positive_rate,
            }
            for name, stats in fairness.groups.items()
        },
        "disparity": dict(fairness.disparity),
        "reference_disparity": dict(fairness.reference_disparity),
        "shifted": fairness.shifted,
        "alerts": bias.alerts(),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
