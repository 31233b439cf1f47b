"""DriftMonitor's group-aware mode: per-group rates, disparities, caps, labels, gauges."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fairlearn import metrics as fl
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_ml import semconv
from otel_ml.drift import (
    DEMOGRAPHIC_PARITY_DIFFERENCE,
    DEMOGRAPHIC_PARITY_RATIO,
    EQUAL_OPPORTUNITY_DIFFERENCE,
    DriftMonitor,
)

Points = dict[frozenset[tuple[str, Any]], float]
MIN = 20


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
    with DriftMonitor(
        provider.get_meter("test"), min_samples=MIN, group_by="region", max_groups=3,
        attributes={semconv.ML_MODEL: "loan-v1"},
    ) as monitor:
        yield monitor


def points(reader: InMemoryMetricReader, name: str) -> Points:
    data = reader.get_metrics_data()
    out: Points = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[frozenset((point.attributes or {}).items())] = point.value  # type: ignore[union-attr]
    return out


def group(value: str) -> frozenset[tuple[str, Any]]:
    return frozenset({
        (semconv.ML_MODEL, "loan-v1"), (semconv.GROUP_ATTRIBUTE, "region"),
        (semconv.GROUP_VALUE, value),
    })


def measure(name: str) -> frozenset[tuple[str, Any]]:
    return frozenset({
        (semconv.ML_MODEL, "loan-v1"), (semconv.GROUP_ATTRIBUTE, "region"),
        (semconv.FAIRNESS_MEASURE, name),
    })


def block(positives: int, total: int) -> list[int]:
    """``positives`` ones then zeros: a group's predictions with an exact rate."""
    return [1] * positives + [0] * (total - positives)


def serve(monitor: DriftMonitor, by_group: dict[str, list[int]], prefix: str = "p") -> None:
    for name, predictions in by_group.items():
        for i, prediction in enumerate(predictions):
            monitor.record_prediction(prediction, prediction_id=f"{prefix}-{name}-{i}", group=name)


def test_per_group_rates_and_disparities_against_the_reference(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    # Reference: north 30/100, south 30/100. Window: north 60/100, south 15/100.
    reference = {"north": block(30, 100), "south": block(30, 100)}
    monitor.set_prediction_reference(
        [p for ps in reference.values() for p in ps],
        groups=[g for g, ps in reference.items() for _ in ps],
    )
    serve(monitor, {"north": block(60, 100), "south": block(15, 100)})

    fairness = monitor.compute().fairness
    assert fairness is not None
    assert fairness.groups["north"].positive_rate == 0.6
    assert fairness.groups["south"].positive_rate == 0.15
    assert fairness.groups["north"].reference_positive_rate == 0.3
    assert fairness.disparity[DEMOGRAPHIC_PARITY_DIFFERENCE] == pytest.approx(0.45)
    assert fairness.disparity[DEMOGRAPHIC_PARITY_RATIO] == pytest.approx(0.25)
    assert fairness.reference_disparity == {
        DEMOGRAPHIC_PARITY_DIFFERENCE: 0.0, DEMOGRAPHIC_PARITY_RATIO: 1.0,
    }
    assert EQUAL_OPPORTUNITY_DIFFERENCE not in fairness.disparity  # no labels yet
    assert fairness.shifted == [DEMOGRAPHIC_PARITY_DIFFERENCE, DEMOGRAPHIC_PARITY_RATIO]

    assert points(reader, semconv.METRIC_GROUP_POSITIVE_RATE) == {
        group("north"): 0.6, group("south"): 0.15,
    }
    assert points(reader, semconv.METRIC_GROUP_REFERENCE_POSITIVE_RATE) == {
        group("north"): 0.3, group("south"): 0.3,
    }
    disparity = points(reader, semconv.METRIC_FAIRNESS_DISPARITY)
    assert disparity[measure(DEMOGRAPHIC_PARITY_RATIO)] == pytest.approx(0.25)
    assert points(reader, semconv.METRIC_FAIRNESS_REFERENCE_DISPARITY)[
        measure(DEMOGRAPHIC_PARITY_RATIO)] == 1.0
    assert points(reader, semconv.METRIC_FAIRNESS_DISPARITY_BAND) == {
        measure(DEMOGRAPHIC_PARITY_DIFFERENCE): 0.1, measure(DEMOGRAPHIC_PARITY_RATIO): 0.1,
    }
    assert points(reader, semconv.METRIC_GROUP_TRUE_POSITIVE_RATE) == {}


def test_a_group_shift_that_leaves_the_overall_rate_flat(monitor: DriftMonitor) -> None:
    # north doubles its rate, south halves it: the overall rate does not move at all.
    reference = {"north": block(20, 100), "south": block(40, 100)}
    monitor.set_prediction_reference(
        [p for ps in reference.values() for p in ps],
        groups=[g for g, ps in reference.items() for _ in ps],
    )
    serve(monitor, {"north": block(40, 100), "south": block(20, 100)})
    result = monitor.compute()
    model, fairness = result.model, result.fairness
    assert fairness is not None and model.reference_positive_rate is not None
    assert model.positive_rate == model.reference_positive_rate == 0.3
    assert fairness.groups["north"].positive_rate == 0.4  # from 0.2
    # The difference is the same 0.2, but the other way round; the ratio stays 0.5.
    assert fairness.disparity[DEMOGRAPHIC_PARITY_DIFFERENCE] == pytest.approx(0.2)
    assert fairness.reference_disparity[DEMOGRAPHIC_PARITY_DIFFERENCE] == pytest.approx(0.2)


def test_disparities_equal_fairlearn_on_the_window(monitor: DriftMonitor) -> None:
    rng = np.random.default_rng(5)
    groups = rng.choice(["a", "b", "c"], 600)
    predictions = (rng.random(600) < np.where(groups == "a", 0.5, 0.3)).astype(int)
    truth = (rng.random(600) < 0.4).astype(int)
    for i, (g, p, y) in enumerate(zip(groups, predictions, truth, strict=True)):
        monitor.record_prediction(int(p), prediction_id=i, group=str(g))
        monitor.record_label(i, int(y))
    fairness = monitor.compute().fairness
    assert fairness is not None
    data = {"y_true": truth, "y_pred": predictions, "sensitive_features": groups}
    assert fairness.disparity[DEMOGRAPHIC_PARITY_DIFFERENCE] == pytest.approx(
        fl.demographic_parity_difference(**data))
    assert fairness.disparity[DEMOGRAPHIC_PARITY_RATIO] == pytest.approx(
        fl.demographic_parity_ratio(**data))
    assert fairness.disparity[EQUAL_OPPORTUNITY_DIFFERENCE] == pytest.approx(
        fl.equal_opportunity_difference(**data))
    recall = fl.MetricFrame(metrics=fl.true_positive_rate, **data).by_group
    for name in ("a", "b", "c"):
        assert fairness.groups[name].true_positive_rate == pytest.approx(recall[name])
        assert fairness.groups[name].n_labelled == int(np.sum(groups == name))


def test_groups_beyond_the_cap_fold_into_other(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    # max_groups=3: the fourth and fifth regions share "__other__".
    serve(monitor, {"r1": block(10, 30), "r2": block(10, 30), "r3": block(10, 30),
                    "r4": block(15, 15), "r5": block(0, 15)})
    fairness = monitor.compute().fairness
    assert fairness is not None
    assert set(fairness.groups) == {"r1", "r2", "r3", semconv.LABEL_OVERFLOW}
    assert fairness.groups[semconv.LABEL_OVERFLOW].positive_rate == 0.5
    exported = points(reader, semconv.METRIC_GROUP_POSITIVE_RATE)
    values = {dict(k)[semconv.GROUP_VALUE] for k in exported}
    assert values == {"r1", "r2", "r3", semconv.LABEL_OVERFLOW}


def test_small_groups_have_no_rate_and_do_not_count_in_disparities(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    serve(monitor, {"big": block(10, 40), "tiny": block(5, MIN - 1)})
    fairness = monitor.compute().fairness
    assert fairness is not None
    assert fairness.groups["tiny"].n == MIN - 1
    assert fairness.groups["tiny"].positive_rate is None
    assert fairness.disparity == {}  # one eligible group compares with nothing
    assert points(reader, semconv.METRIC_GROUP_POSITIVE_RATE) == {group("big"): 0.25}
    assert points(reader, semconv.METRIC_FAIRNESS_DISPARITY) == {}


def test_true_positive_rate_per_group_with_delayed_labels(
    monitor: DriftMonitor, reader: InMemoryMetricReader
) -> None:
    # north: 20 actual positives, 15 predicted positive (recall 0.75); south: 20 actual
    # positives, 5 predicted positive (0.25); east: no actual positive (recall undefined).
    cases = {
        "north": [(1, 1)] * 15 + [(0, 1)] * 5,
        "south": [(1, 1)] * 5 + [(0, 1)] * 15,
        "east": [(1, 0)] * 10 + [(0, 0)] * 10,
    }
    for name, pairs in cases.items():
        for i, (predicted, actual) in enumerate(pairs):
            monitor.record_prediction(predicted, prediction_id=f"{name}-{i}", group=name)
            monitor.record_label(f"{name}-{i}", actual)
    fairness = monitor.compute().fairness
    assert fairness is not None
    assert fairness.groups["north"].true_positive_rate == 0.75
    assert fairness.groups["south"].true_positive_rate == 0.25
    assert fairness.groups["east"].true_positive_rate is None
    assert fairness.groups["east"].n_labelled == 20
    assert fairness.disparity[EQUAL_OPPORTUNITY_DIFFERENCE] == 0.5
    assert points(reader, semconv.METRIC_GROUP_TRUE_POSITIVE_RATE) == {
        group("north"): 0.75, group("south"): 0.25,
    }


def test_reference_labels_give_the_reference_equal_opportunity(monitor: DriftMonitor) -> None:
    predicted = [1] * 15 + [0] * 5 + [1] * 10 + [0] * 10
    actual = [1] * 40
    groups = ["north"] * 20 + ["south"] * 20
    monitor.set_prediction_reference(predicted, groups=groups, labels=actual)
    fairness = monitor.compute().fairness
    assert fairness is not None
    assert fairness.reference_disparity[EQUAL_OPPORTUNITY_DIFFERENCE] == 0.25
    assert fairness.groups["south"].reference_true_positive_rate == 0.5


def test_a_monitor_without_group_by_ignores_groups(
    provider: MeterProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with DriftMonitor(provider.get_meter("plain"), min_samples=MIN) as plain:
        with caplog.at_level(logging.WARNING, logger="otel_ml"):
            plain.record_prediction(1, group="north")
        assert plain.compute().fairness is None
        assert plain.compute().model.positive_rate is None  # recorded, below min_samples
        with pytest.raises(ValueError, match="group_by"):
            plain.set_prediction_reference([1, 0], groups=["a", "b"])
    assert "group_by" in caplog.text


def test_bad_groups_never_raise(monitor: DriftMonitor) -> None:
    monitor.record_prediction(1, group=["not", "a", "group"])
    monitor.record_prediction(1, group=1.5)
    monitor.record_prediction(1, group=None)
    fairness = monitor.compute().fairness
    assert fairness is not None and fairness.groups == {}


def test_group_values_are_canonical_strings(monitor: DriftMonitor) -> None:
    serve(monitor, {"x": block(1, MIN)})
    for _ in range(MIN):
        monitor.record_prediction(1, group=np.int64(7))
        monitor.record_prediction(0, group=True)
    fairness = monitor.compute().fairness
    assert fairness is not None
    assert set(fairness.groups) == {"x", "7", "1"}
    assert all(type(name) is str for name in fairness.groups)


def test_reference_length_mismatch_is_a_setup_error(monitor: DriftMonitor) -> None:
    with pytest.raises(ValueError, match="same length"):
        monitor.set_prediction_reference([1, 0, 1], groups=["a", "b"])


def test_the_group_window_is_bounded(provider: MeterProvider) -> None:
    with DriftMonitor(
        provider.get_meter("bounded"), window=100, min_samples=MIN, group_by="region"
    ) as bounded:
        serve(bounded, {"north": block(0, 5000)})
        serve(bounded, {"south": block(60, 60), "east": block(0, 40)})
        fairness = bounded.compute().fairness
    assert fairness is not None
    # Only the last 100 grouped predictions count: north has left the window entirely.
    assert {name: stats.n for name, stats in fairness.groups.items()} == {"south": 60, "east": 40}
    assert fairness.disparity[DEMOGRAPHIC_PARITY_DIFFERENCE] == 1.0
