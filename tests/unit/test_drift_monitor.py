"""DriftMonitor: exported gauges, data quality, labels, files, threads and memory bounds."""

from __future__ import annotations

import logging
import math
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from scipy import stats

from otel_ml import semconv
from otel_ml.drift import (
    RAG_FEATURES,
    DriftMonitor,
    FeatureSpec,
    feed_rag,
    load_reference,
    psi,
    rag_monitor,
    save_reference,
)

Points = dict[frozenset[tuple[str, Any]], float]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


@pytest.fixture
def monitor(provider: MeterProvider) -> Iterator[DriftMonitor]:
    with DriftMonitor(provider.get_meter("test"), min_samples=20) as monitor:
        yield monitor


def points(reader: InMemoryMetricReader, name: str) -> Points:
    """Exported values of metric ``name``, keyed by attribute set."""
    data = reader.get_metrics_data()
    out: Points = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[frozenset((point.attributes or {}).items())] = point.value  # type: ignore[union-attr]
    return out


# Short keyword -> attribute name, so keys read key(feature="x", method="ks").
_ATTRIBUTE = {
    "feature": semconv.DRIFT_FEATURE,
    "method": semconv.DRIFT_METHOD,
    "kind": semconv.SCHEMA_VIOLATION_KIND,
    "model": semconv.ML_MODEL,
}


def key(**attributes: Any) -> frozenset[tuple[str, Any]]:
    return frozenset((_ATTRIBUTE.get(k, k), v) for k, v in attributes.items())


def normal(seed: int, n: int, loc: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, 1.0, n)


# --- drift gauges -------------------------------------------------------------------------------


def test_shift_is_exported_with_the_scipy_values(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    reference, current = normal(1, 500), normal(2, 300, 0.6)
    monitor.add_feature("x", reference)
    monitor.feed_many("x", current)
    report = monitor.compute()

    expected = stats.ks_2samp(reference, current)
    assert report.drifted == ["x"]
    assert points(reader, semconv.METRIC_DRIFT_DETECTED) == {key(feature="x"): 1}
    scores = points(reader, semconv.METRIC_DRIFT_SCORE)
    assert scores[key(feature="x", method="ks")] == pytest.approx(expected.statistic)
    expected_psi = psi(reference, current)
    assert scores[key(feature="x", method="psi")] == pytest.approx(expected_psi)
    p_values = points(reader, semconv.METRIC_DRIFT_P_VALUE)
    assert p_values[key(feature="x")] == pytest.approx(expected.pvalue)


def test_no_shift_exports_zero(monitor: DriftMonitor, reader: InMemoryMetricReader) -> None:
    monitor.add_feature("x", normal(1, 500))
    monitor.feed_many("x", normal(2, 300))
    assert monitor.compute().drifted == []
    assert points(reader, semconv.METRIC_DRIFT_DETECTED) == {key(feature="x"): 0}


def test_large_reference_uses_wasserstein_and_exports_no_p_value(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    monitor.add_feature("x", normal(1, 3000))
    monitor.feed_many("x", normal(2, 500, 0.5))
    assert monitor.compute().features["x"].drift.method == "wasserstein"  # type: ignore[union-attr]
    assert points(reader, semconv.METRIC_DRIFT_DETECTED) == {key(feature="x"): 1}
    assert points(reader, semconv.METRIC_DRIFT_P_VALUE) == {}


def test_method_and_threshold_overrides(monitor: DriftMonitor) -> None:
    monitor.add_feature("x", normal(1, 500), method="psi", threshold=5.0)
    monitor.feed_many("x", normal(2, 300, 0.6))
    drift = monitor.compute().features["x"].drift
    assert drift is not None and drift.method == "psi" and drift.threshold == 5.0
    assert not drift.drifted


def test_monitor_attributes_are_on_every_point(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    meter = provider.get_meter("a")
    with DriftMonitor(meter, min_samples=5, attributes={semconv.ML_MODEL: "m"}) as m:
        m.add_feature("x", [1.0, 2.0, 3.0])
        m.feed_many("x", [1.0, 2.0, 3.0, 2.0, 1.0])
        m.compute()
        assert set(points(reader, semconv.METRIC_DATA_NULL_RATE)) == {key(model="m", feature="x")}


def test_windows_below_min_samples_export_quality_but_no_drift(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    monitor.add_feature("x", normal(1, 100))
    monitor.feed_many("x", [5.0] * 19)  # min_samples is 20
    feature = monitor.compute().features["x"]
    assert feature.drift is None and not feature.detected
    assert points(reader, semconv.METRIC_DRIFT_DETECTED) == {}
    assert points(reader, semconv.METRIC_DATA_NULL_RATE) == {key(feature="x"): 0.0}


def test_empty_window_exports_nothing(monitor: DriftMonitor, reader: InMemoryMetricReader) -> None:
    monitor.add_feature("x", [1.0, 2.0])
    feature = monitor.compute().features["x"]
    assert (feature.n_window, feature.null_rate, feature.out_of_range_rate) == (0, None, None)
    assert points(reader, semconv.METRIC_DATA_NULL_RATE) == {}


def test_window_slides(provider: MeterProvider) -> None:
    with DriftMonitor(provider.get_meter("w"), window=50, min_samples=10) as monitor:
        monitor.add_feature("x", normal(1, 200))
        monitor.feed_many("x", [100.0] * 50)
        assert monitor.compute().features["x"].detected
        monitor.feed_many("x", normal(3, 50))  # the shifted values leave the window
        feature = monitor.compute().features["x"]
        assert feature.n_window == 50 and not feature.detected


# --- data quality -------------------------------------------------------------------------------


def test_null_rate_counts_none_nan_and_infinity(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    monitor.add_feature("x", normal(1, 100))
    monitor.feed_many("x", [*normal(2, 36), None, math.nan, math.inf, -math.inf])
    feature = monitor.compute().features["x"]
    assert (feature.n_window, feature.n_valid) == (40, 36)
    assert points(reader, semconv.METRIC_DATA_NULL_RATE) == {key(feature="x"): 0.1}


def test_out_of_range_rate_uses_reference_range_or_valid_range(monitor: DriftMonitor) -> None:
    monitor.add_feature("x", [0.0, 10.0])
    monitor.add_feature("y", [0.0, 10.0], valid_range=(0.0, 100.0))
    monitor.add_feature("c", ["a", "b"])
    for value in [-1.0, 5.0, 11.0, 50.0]:
        monitor.feed("x", value)
        monitor.feed("y", value)
    monitor.feed_many("c", ["a", "b", "z", None])
    features = monitor.compute().features
    assert features["x"].out_of_range_rate == 0.75
    assert features["y"].out_of_range_rate == 0.25
    assert features["c"].out_of_range_rate == pytest.approx(1 / 3)
    assert features["c"].null_rate == 0.25


def test_schema_violations_are_counted(monitor: DriftMonitor, reader: InMemoryMetricReader) -> None:
    monitor.add_feature("amount", [1.0, 2.0])
    monitor.add_feature("country", ["de", "fr"])
    monitor.observe({"amount": 3.0, "country": "de", "coupon": "X"})  # new field
    monitor.observe({"amount": "3.0", "country": "fr"})  # type change: text for a number
    monitor.observe({"country": "de"})  # missing field
    report = monitor.compute()

    expected = {
        ("coupon", "new_field"): 1,
        ("amount", "type_change"): 1,
        ("amount", "missing_field"): 1,
    }
    assert report.schema_violations == expected
    exported = points(reader, semconv.METRIC_DATA_SCHEMA_VIOLATIONS)
    assert exported == {key(feature=f, kind=k): n for (f, k), n in expected.items()}
    # The type change added nothing; the missing field added a missing value.
    assert (report.features["amount"].n_window, report.features["amount"].n_valid) == (2, 1)


def test_unknown_field_names_are_capped(provider: MeterProvider) -> None:
    with DriftMonitor(provider.get_meter("cap"), max_unknown_fields=2) as monitor:
        for i in range(5):
            monitor.feed(f"field-{i}", 1.0)
        violations = monitor.compute().schema_violations
    assert violations == {
        ("field-0", "new_field"): 1,
        ("field-1", "new_field"): 1,
        (semconv.LABEL_OVERFLOW, "new_field"): 3,
    }


def test_feeding_never_raises_and_logs_once(
    monitor: DriftMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    monitor.add_feature("robust_feature", [1.0, 2.0])
    caplog.set_level(logging.WARNING, logger="otel_ml")
    for _ in range(3):
        monitor.feed("robust_feature", object())
    monitor.feed("robust_feature", [1, 2])
    monitor.observe(None)  # type: ignore[arg-type]
    monitor.record_label(["unhashable"], 1)  # type: ignore[arg-type]
    monitor.record_label("no-such-prediction", {"a": 1})
    monitor.record_prediction(object())
    type_warnings = [r for r in caplog.records if "robust_feature" in r.getMessage()]
    assert len(type_warnings) == 2  # one per (feature, type): object, list
    assert all(r.name.startswith("otel_ml") for r in caplog.records)
    assert monitor.compute().schema_violations[("robust_feature", "type_change")] == 4


def test_a_failing_feature_does_not_hide_the_others(
    monitor: DriftMonitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor.add_feature("good", normal(1, 100))
    monitor.add_feature("bad", normal(1, 100))
    monitor.feed_many("good", normal(2, 50))
    monitor.feed_many("bad", normal(2, 50))
    bad_state = monitor._features["bad"]
    monkeypatch.setattr(bad_state, "valid", lambda raw: 1 / 0)
    assert set(monitor.compute().features) == {"good"}


# --- predictions and delayed labels --------------------------------------------------------------


def test_prediction_rate_shift_without_labels(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    monitor.set_prediction_reference([1] * 30 + [0] * 70)
    for i in range(100):
        monitor.record_prediction(0.9 if i < 60 else 0.2)  # scores: 60% positive at 0.5
    report = monitor.compute()
    assert report.model.reference_positive_rate == 0.3
    assert report.model.positive_rate == 0.6
    prediction = report.features[semconv.ML_PREDICTION]
    assert prediction.detected and prediction.drift.method == "chisquare"  # type: ignore[union-attr]
    delta = prediction.score("positive_rate_delta")
    assert delta is not None and delta.score == pytest.approx(0.3) and delta.drifted
    assert points(reader, semconv.METRIC_PREDICTION_RATE) == {key(): 0.6}
    scores = points(reader, semconv.METRIC_DRIFT_SCORE)
    rate_delta = key(feature=semconv.ML_PREDICTION, method="positive_rate_delta")
    assert scores[rate_delta] == pytest.approx(0.3)


def test_delayed_labels_give_accuracy_precision_recall(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    # 40 predictions: 10 TP, 5 FP, 5 FN, 20 TN.
    truth = [(1, 1)] * 10 + [(1, 0)] * 5 + [(0, 1)] * 5 + [(0, 0)] * 20
    for i, (predicted, _) in enumerate(truth):
        monitor.record_prediction(predicted, prediction_id=i)
    assert monitor.compute().model.accuracy is None  # labels have not arrived
    for i, (_, actual) in enumerate(truth):
        monitor.record_label(i, bool(actual))
    monitor.record_label("unknown-id", 1)
    model = monitor.compute().model
    assert (model.accuracy, model.precision, model.recall) == (0.75, 10 / 15, 10 / 15)
    assert (model.n_labelled, model.pending_labels, model.unmatched_labels) == (40, 0, 1)
    assert points(reader, semconv.METRIC_MODEL_ACCURACY) == {key(): 0.75}
    assert points(reader, semconv.METRIC_MODEL_RECALL) == {key(): pytest.approx(10 / 15)}


def test_undefined_precision_is_not_exported(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    for i in range(30):
        monitor.record_prediction(0, prediction_id=i)
        monitor.record_label(i, i % 2)
    model = monitor.compute().model
    assert model.accuracy == 0.5 and model.precision is None and model.recall == 0.0
    assert points(reader, semconv.METRIC_MODEL_PRECISION) == {}


def test_unlabelled_predictions_and_labelled_pairs_are_bounded(provider: MeterProvider) -> None:
    with DriftMonitor(
        provider.get_meter("b"), max_pending_labels=100, label_window=50, min_samples=1
    ) as monitor:
        for i in range(1000):
            monitor.record_prediction(1, prediction_id=i)
        for i in range(900, 1000):
            monitor.record_label(i, 1)
        model = monitor.compute().model
    assert (model.pending_labels, model.evicted_predictions) == (0, 900)
    assert model.n_labelled == 50


# --- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_reference_round_trip(monitor: DriftMonitor, tmp_path: Path, suffix: str) -> None:
    monitor.add_feature("x", normal(1, 200), method="psi", threshold=0.3, valid_range=(-5, 5))
    monitor.add_feature("c", ["a", "b", "b"])
    monitor.add_feature("quality_only", None, kind="numeric")
    path = tmp_path / f"reference{suffix}"
    monitor.save_reference(path)

    specs = {spec.name: spec for spec in load_reference(path)}
    original = {spec.name: spec for spec in monitor.specs()}
    assert specs.keys() == original.keys()
    for name, spec in specs.items():
        want = original[name]
        assert (spec.kind, spec.method, spec.threshold, spec.valid_range) == (
            want.kind,
            want.method,
            want.threshold,
            want.valid_range,
        )
        if want.reference is None:
            assert spec.reference is None
        else:
            assert spec.reference is not None
            np.testing.assert_array_equal(spec.reference, want.reference)


def test_loaded_reference_gives_the_same_verdict(
    monitor: DriftMonitor, provider: MeterProvider, tmp_path: Path
) -> None:
    monitor.add_feature("x", normal(1, 300))
    monitor.save_reference(tmp_path / "ref.npz")
    with DriftMonitor(provider.get_meter("other"), min_samples=20) as loaded:
        loaded.load_reference(tmp_path / "ref.npz")
        current = normal(2, 200, 0.4)
        monitor.feed_many("x", current)
        loaded.feed_many("x", current)
        assert loaded.compute().features["x"] == monitor.compute().features["x"]


def test_foreign_files_are_rejected(tmp_path: Path) -> None:
    json_path, npz_path = tmp_path / "other.json", tmp_path / "other.npz"
    json_path.write_text('{"features": []}')
    np.savez(npz_path, values_0=np.arange(3.0))
    for path in (json_path, npz_path):
        with pytest.raises(ValueError, match="not an otel-ml drift reference"):
            load_reference(path)


def test_save_reference_function_accepts_specs(tmp_path: Path) -> None:
    spec = FeatureSpec("n", "numeric", np.array([1.0, 2.0]))
    save_reference(tmp_path / "r.json", [spec])
    assert load_reference(tmp_path / "r.json")[0].name == "n"


# --- setup ---------------------------------------------------------------------------------


def test_setup_errors_are_raised(monitor: DriftMonitor) -> None:
    with pytest.raises(ValueError, match="reference or a kind"):
        monitor.add_feature("x")
    with pytest.raises(ValueError, match="no non-missing"):
        monitor.add_feature("x", [None, math.nan])
    with pytest.raises(ValueError, match="numeric"):
        monitor.add_feature("c", ["a", "b"], method="ks")
    with pytest.raises(ValueError):
        DriftMonitor(window=0)


def test_replacing_a_reference_keeps_the_window(monitor: DriftMonitor) -> None:
    monitor.add_feature("x", normal(1, 200))
    monitor.feed_many("x", normal(2, 100, 3.0))
    assert monitor.compute().features["x"].detected
    monitor.add_feature("x", normal(3, 200, 3.0))  # a new, shifted reference
    feature = monitor.compute().features["x"]
    assert feature.n_window == 100 and not feature.detected


def test_monitors_sharing_a_meter_all_export(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    meter = provider.get_meter("shared")
    with (
        DriftMonitor(meter, min_samples=1, attributes={semconv.ML_MODEL: "a"}) as first,
        DriftMonitor(meter, min_samples=1, attributes={semconv.ML_MODEL: "b"}) as second,
    ):
        for m in (first, second):
            m.add_feature("x", [1.0, 2.0])
            m.feed("x", None)
            m.compute()
        assert set(points(reader, semconv.METRIC_DATA_NULL_RATE)) == {
            key(model="a", feature="x"),
            key(model="b", feature="x"),
        }
        first.close()
        assert set(points(reader, semconv.METRIC_DATA_NULL_RATE)) == {key(model="b", feature="x")}


def test_default_meter_is_the_global_one() -> None:
    with DriftMonitor(min_samples=1) as monitor:
        monitor.add_feature("x", [1.0])
        monitor.feed("x", 1.0)
        assert monitor.compute().features["x"].n_valid == 1


# --- threads and memory --------------------------------------------------------------------


def test_background_recompute_runs_and_stops(provider: MeterProvider) -> None:
    monitor = DriftMonitor(provider.get_meter("bg"), min_samples=1, interval_s=0.01)
    monitor.add_feature("x", [1.0, 2.0])
    monitor.feed("x", 1.0)
    deadline = time.monotonic() + 10
    while monitor.last_report is None or "x" not in monitor.last_report.features:
        assert time.monotonic() < deadline, "the recompute thread never ran"
        time.sleep(0.01)
    with pytest.raises(RuntimeError):
        monitor.start(1.0)
    monitor.close()
    assert not any(t.name == "otel-ml-drift" and t.is_alive() for t in threading.enumerate())


def test_stop_ends_the_thread_but_keeps_exporting_the_last_report(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    monitor = DriftMonitor(provider.get_meter("stop"), min_samples=1, interval_s=60)
    monitor.add_feature("x", [1.0, 2.0])
    monitor.feed_many("x", [1.0, None])
    monitor.stop()
    assert not any(t.name == "otel-ml-drift" and t.is_alive() for t in threading.enumerate())
    monitor.compute()  # the final verdict a service computes on its way out
    assert points(reader, semconv.METRIC_DATA_NULL_RATE) == {key(feature="x"): 0.5}
    monitor.start(60)  # a stopped monitor can be restarted
    monitor.close()
    assert points(reader, semconv.METRIC_DATA_NULL_RATE) == {}


def test_concurrent_feeding_and_computing(provider: MeterProvider) -> None:
    window, threads, per_thread = 2000, 8, 3000
    monitor = DriftMonitor(provider.get_meter("mt"), window=window, min_samples=10)
    monitor.add_feature("x", normal(1, 500))
    monitor.add_feature("c", ["a", "b"])
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def feeder(seed: int) -> None:
        try:
            start.wait()
            values = normal(seed, per_thread)
            for i, value in enumerate(values):
                # Every 4th value is missing, so the null rate is exactly 0.25 at any moment
                # a whole number of 4-value cycles per thread has landed.
                monitor.observe({"x": None if i % 4 == 3 else value, "c": "ab"[i % 2]})
                monitor.record_prediction(i % 2, prediction_id=(seed, i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=feeder, args=(s,)) for s in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    while any(w.is_alive() for w in workers):
        monitor.compute()  # recomputing while feeding must neither fail nor block feeders
    for worker in workers:
        worker.join()
    report = monitor.compute()
    monitor.close()

    assert errors == []
    assert report.features["x"].n_window == window
    assert report.features["c"].n_window == window
    assert report.model.pending_labels == threads * per_thread
    assert report.features["x"].null_rate == pytest.approx(0.25, abs=0.01)


def test_memory_stays_bounded_by_the_window(provider: MeterProvider) -> None:
    monitor = DriftMonitor(provider.get_meter("mem"), window=1000, max_pending_labels=1000)
    monitor.add_feature("x", normal(1, 100))
    monitor.add_feature("c", ["a", "b"])

    def feed(n: int) -> None:
        for i in range(n):
            monitor.feed("x", float(i))
            monitor.feed("c", f"value-{i % 50}")
            monitor.record_prediction(i % 2, prediction_id=f"id-{i}")

    tracemalloc.start()
    try:
        feed(5000)  # fill every bounded structure with objects tracemalloc tracks
        before = tracemalloc.take_snapshot()
        feed(50_000)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    monitor.close()
    # Keeping 50k more values of three streams would take megabytes (~50 B each).
    assert growth < 50_000


# --- RAG --------------------------------------------------------------------------------------


def rag_reference(seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {
        semconv.RAG_RETRIEVAL_SCORE_MAX: rng.beta(8, 2, 400).tolist(),
        semconv.RAG_RETRIEVAL_DOCUMENT_COUNT: rng.integers(1, 9, 400).astype(float).tolist(),
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: rng.normal(180, 40, 400).round().tolist(),
        semconv.RAG_GROUNDEDNESS_SCORE: rng.beta(9, 1, 400).tolist(),
    }


def test_rag_monitor_flags_retrieval_drift(
    provider: MeterProvider, reader: InMemoryMetricReader, tmp_path: Path
) -> None:
    reference = rag_reference(1)
    with rag_monitor(reference, provider.get_meter("rag"), min_samples=50) as monitor:
        assert monitor.features == RAG_FEATURES
        rng = np.random.default_rng(2)
        for _ in range(300):
            feed_rag(
                monitor,
                top_score=float(rng.beta(4, 4)),  # retrieval got worse
                document_count=int(rng.integers(1, 9)),
                answer_tokens=int(rng.normal(180, 40)),
                groundedness=None,  # not measured for these requests
            )
        report = monitor.compute()
        monitor.save_reference(tmp_path / "rag.json")
    assert report.drifted == [semconv.RAG_RETRIEVAL_SCORE_MAX]
    assert report.features[semconv.RAG_GROUNDEDNESS_SCORE].null_rate == 1.0
    assert report.schema_violations == {}
    with rag_monitor(tmp_path / "rag.json", provider.get_meter("rag2")) as loaded:
        assert loaded.features == RAG_FEATURES


def test_rag_monitor_needs_all_four_references() -> None:
    reference = rag_reference(1)
    del reference[semconv.RAG_GROUNDEDNESS_SCORE]
    with pytest.raises(ValueError, match="groundedness"):
        rag_monitor(reference)
