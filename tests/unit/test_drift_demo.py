"""``otel-ml drift-demo``: it detects the Month 2 shift and writes its plot and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from otel_ml import cli, semconv
from otel_ml.cli import drift_demo
from otel_ml.cli.drift_demo import Month, generate_month


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

    image = imread(out / drift_demo.PLOT_NAME)
    assert image.shape[0] > 500 and image.shape[1] > 1000
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
