"""``otel-ml drift-demo``: it detects the Month 2 shift and writes its plot and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from otel_ml import cli, semconv
from otel_ml.cli import drift_bias, drift_demo
from otel_ml.cli.drift_demo import Month, generate_month
from otel_ml.drift import (
    DEMOGRAPHIC_PARITY_DIFFERENCE,
    DEMOGRAPHIC_PARITY_RATIO,
    EQUAL_OPPORTUNITY_DIFFERENCE,
)


def test_drift_demo_detects_the_shift_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert cli.main(["drift-demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / drift_demo.REPORT_NAME).read_text())

    # The control week of Month 1 raises nothing; Month 2 flags the amount and the predictions.
    assert report["control"]["drifted"] == []
    assert report["month2"]["drifted"] == ["amount", semconv.ML_PREDICTION]
    amount = report["month2"]["features"]["amount"]
    assert amount["method"] == "ks" and amount["p_value"] < 1e-6 and amount["psi"] >= 0.2
    # Without labels: the predicted-fraud rate jumps. With labels: quality drops.
    rates = report["positive_rate"]
    assert rates["month2"] > rates["reference"] + 0.1
    quality = report["quality"]
    assert quality["month2"]["accuracy"] < quality["holdout"]["accuracy"] - 0.05
    assert quality["month2"]["precision"] < quality["holdout"]["precision"] - 0.1

    assert f"Drift detected in: amount, {semconv.ML_PREDICTION}" in printed
    assert 'ml_drift_detected{ml_feature_name="amount",ml_model_name="fraud-v3"} 1' in printed
    # Every served prediction went through otel_ml.inference (control + Month 2).
    assert 'inference_latency_seconds_count{ml_model_name="fraud-v3"} 2000' in printed

    # The bias scenario: only the per-region view moves, and its alerts would fire.
    bias = report["bias"]
    assert bias["alerts"] == [drift_bias.RATIO_ALERT, drift_bias.SHIFT_ALERT]
    assert "Alerts the rules would raise: DemographicParityRatioLow, FairnessDisparityShift" in (
        printed
    )
    assert (
        'ml_group_positive_rate{ml_group_attribute="region",ml_group_value="east",'
        'ml_model_name="fraud-v3"} 0.725'
    ) in printed

    image = imread(out / drift_demo.PLOT_NAME)
    assert image.shape[0] > 1000 and image.shape[1] > 1000  # three rows: the bias row too
    assert np.std(image) > 0.05  # a drawn figure, not a blank canvas


def test_month_two_moves_amounts_but_not_fraud() -> None:
    rng = np.random.default_rng(0)
    before: Month = generate_month(rng, 20_000)
    after: Month = generate_month(rng, 20_000, amount_shift_std=1.0)
    log_shift = np.mean(np.log(after.amount)) - np.mean(np.log(before.amount))
    assert log_shift == pytest.approx(drift_demo.LOG_AMOUNT_STD, abs=0.03)
    assert np.mean(after.fraud) == pytest.approx(np.mean(before.fraud), abs=0.02)


def test_too_few_rows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--rows"):
        cli.main(["drift-demo", "--out", str(tmp_path), "--rows", "50"])


@pytest.fixture(scope="module")
def bias() -> drift_bias.BiasResult:
    """The demo's bias scenario with its default seed and size (the model trained as in the
    demo), without the main scenario's instrumented predictions."""
    training, reference, _, _ = drift_demo.months(7, 1000, 0.75)
    model = drift_demo.train(training)
    return drift_demo.run_bias_scenario(model, reference, seed=7, rows=1000)


def test_bias_moves_one_region_and_leaves_the_overall_rate_flat(
    bias: drift_bias.BiasResult,
) -> None:
    model, fairness = bias.unlabelled.model, bias.fairness
    assert model.positive_rate is not None and model.reference_positive_rate is not None
    overall_move = model.positive_rate - model.reference_positive_rate
    east = fairness.groups["east"]
    assert east.positive_rate is not None and east.reference_positive_rate is not None
    east_move = east.positive_rate - east.reference_positive_rate
    # Measured (seed 7): overall 30.4 % -> 30.3 %; east 30.0 % -> 72.5 %.
    assert abs(overall_move) < 0.02
    assert east_move > 0.35
    assert (model.reference_positive_rate, model.positive_rate) == pytest.approx((0.304, 0.303))
    assert (east.reference_positive_rate, east.positive_rate) == pytest.approx((0.30, 0.725))
    # The other regions move the other way, which keeps the total flat.
    for region in ("north", "south"):
        stats = fairness.groups[region]
        assert stats.positive_rate is not None and stats.reference_positive_rate is not None
        assert stats.positive_rate < stats.reference_positive_rate - 0.05


def test_bias_is_invisible_to_the_feature_and_rate_views(bias: drift_bias.BiasResult) -> None:
    # No feature drifts (the Month 2 is drawn like Month 1), PredictionRateShift stays quiet,
    # the regions' shares are unchanged: only the per-group view catches it.
    assert bias.unlabelled.drifted == []
    assert drift_bias.RATE_ALERT not in bias.alerts()
    ref_shares = {r: np.mean(bias.reference_regions == r) for r in drift_bias.REGIONS}
    cur_shares = {r: np.mean(bias.current_regions == r) for r in drift_bias.REGIONS}
    assert ref_shares == cur_shares == {"north": 0.4, "south": 0.4, "east": 0.2}


def test_bias_fails_the_four_fifths_rule_only_in_month_two(bias: drift_bias.BiasResult) -> None:
    fairness = bias.fairness
    assert fairness.reference_disparity[DEMOGRAPHIC_PARITY_RATIO] > 0.9
    assert fairness.disparity[DEMOGRAPHIC_PARITY_RATIO] < 0.3
    assert set(fairness.shifted) == {
        DEMOGRAPHIC_PARITY_DIFFERENCE, DEMOGRAPHIC_PARITY_RATIO, EQUAL_OPPORTUNITY_DIFFERENCE,
    }
    # With the labels, the east's true-positive rate runs ahead of the others'.
    east, north = fairness.groups["east"], fairness.groups["north"]
    assert east.true_positive_rate is not None and north.true_positive_rate is not None
    assert east.true_positive_rate > north.true_positive_rate + 0.2


def test_regions_follow_amounts_only_when_skewed() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=20_000)
    for skew, expected in ((0.0, 0.0), (drift_bias.SKEW, 1.0)):
        regions = drift_bias.assign_regions(rng, z, skew)
        east_mean = float(np.mean(z[regions == "east"]))
        assert np.mean(regions == "east") == 0.2
        if skew == 0.0:
            assert abs(east_mean) < 0.05
        else:
            assert east_mean > expected
