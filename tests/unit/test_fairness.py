"""otel_ml.drift's fairness measures equal fairlearn 0.15's on the same inputs.

fairlearn is the reference (a dev dependency only). Its demographic parity and equal
opportunity functions take no ``pos_label``: with another positive label they are compared
with a ``MetricFrame`` of ``selection_rate`` / ``true_positive_rate`` given that label, which
is how fairlearn itself builds them.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fairlearn import metrics as fl
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_ml.drift import (
    DisparityMethod,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    selection_rates,
    true_positive_rates,
)

METHODS: tuple[DisparityMethod, ...] = ("between_groups", "to_overall")


def _same(ours: float, theirs: Any) -> None:
    theirs = float(theirs)
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)


def _frame(metric: Callable[..., float], pos_label: object, **data: Any) -> fl.MetricFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fl.MetricFrame(metrics=functools.partial(metric, pos_label=pos_label), **data)


@st.composite
def classified(draw: st.DrawFn, labels: tuple[object, object] = (0, 1)) -> dict[str, Any]:
    """Binary predictions and truths of a few groups (some may be tiny or one-sided)."""
    n = draw(st.integers(1, 60))
    outcome = st.sampled_from(labels)
    groups = draw(st.lists(st.sampled_from("abcd"), min_size=n, max_size=n))
    return {
        "y_true": draw(st.lists(outcome, min_size=n, max_size=n)),
        "y_pred": draw(st.lists(outcome, min_size=n, max_size=n)),
        "sensitive_features": groups,
    }


@settings(max_examples=50, deadline=None)
@given(data=classified(), method=st.sampled_from(METHODS))
def test_demographic_parity_equals_fairlearn(data: dict[str, Any], method: DisparityMethod) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fairlearn's 0/0 ratio warns
        diff = fl.demographic_parity_difference(**data, method=method)
        ratio = fl.demographic_parity_ratio(**data, method=method)
    _same(demographic_parity_difference(**data, method=method), diff)
    _same(demographic_parity_ratio(**data, method=method), ratio)


@settings(max_examples=50, deadline=None)
@given(data=classified(), method=st.sampled_from(METHODS))
def test_equal_opportunity_equals_fairlearn(data: dict[str, Any], method: DisparityMethod) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = fl.equal_opportunity_difference(**data, method=method)
    _same(equal_opportunity_difference(**data, method=method), theirs)


@settings(max_examples=40, deadline=None)
@given(data=classified(("deny", "grant")), pos=st.sampled_from(("deny", "grant")))
def test_string_labels_and_pos_label_equal_fairlearn(data: dict[str, Any], pos: str) -> None:
    selection = _frame(fl.selection_rate, pos, **data)
    recall = _frame(fl.true_positive_rate, pos, **data)
    ours = selection_rates(
        data["y_pred"], sensitive_features=data["sensitive_features"], pos_label=pos
    )
    assert ours.by_group == pytest.approx(selection.by_group.to_dict())
    _same(ours.overall, selection.overall)
    for method in METHODS:
        _same(demographic_parity_difference(**data, pos_label=pos, method=method),
              selection.difference(method=method))
        _same(demographic_parity_ratio(**data, pos_label=pos, method=method),
              selection.ratio(method=method))
        _same(equal_opportunity_difference(**data, pos_label=pos, method=method),
              recall.difference(method=method))


@settings(max_examples=30, deadline=None)
@given(data=classified(), weights=st.lists(st.floats(0.1, 10.0), min_size=60, max_size=60))
def test_sample_weights_equal_fairlearn(data: dict[str, Any], weights: list[float]) -> None:
    weight = weights[: len(data["y_pred"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dpd = fl.demographic_parity_difference(**data, sample_weight=weight)
        dpr = fl.demographic_parity_ratio(**data, sample_weight=weight)
        eod = fl.equal_opportunity_difference(**data, sample_weight=weight)
    _same(demographic_parity_difference(**data, sample_weight=weight), dpd)
    _same(demographic_parity_ratio(**data, sample_weight=weight), dpr)
    _same(equal_opportunity_difference(**data, sample_weight=weight), eod)


# --- fixed cases, computed by hand (and checked against fairlearn) --------------------------------

# Group a: 3 of 4 selected (0.75); b: 1 of 4 (0.25); overall 4/8 = 0.5.
GROUPS = ["a"] * 4 + ["b"] * 4
PRED = [1, 1, 1, 0, 1, 0, 0, 0]
# a: actual positives rows 0, 1, 3 -> predicted 1, 1, 0: TPR 2/3; b: rows 4, 5 -> 1, 0: 1/2.
TRUE = [1, 1, 0, 1, 1, 1, 0, 0]


def test_hand_computed_values() -> None:
    rates = selection_rates(PRED, sensitive_features=GROUPS)
    assert rates.by_group == {"a": 0.75, "b": 0.25}
    assert rates.overall == 0.5
    assert demographic_parity_difference(TRUE, PRED, sensitive_features=GROUPS) == 0.5
    assert demographic_parity_ratio(TRUE, PRED, sensitive_features=GROUPS) == pytest.approx(1 / 3)
    # to_overall: max |0.75 - 0.5|, and min(0.5/0.75, 0.25/0.5)
    assert demographic_parity_difference(
        TRUE, PRED, sensitive_features=GROUPS, method="to_overall") == 0.25
    assert demographic_parity_ratio(
        TRUE, PRED, sensitive_features=GROUPS, method="to_overall") == 0.5
    recall = true_positive_rates(TRUE, PRED, sensitive_features=GROUPS)
    assert recall.by_group == pytest.approx({"a": 2 / 3, "b": 0.5})
    assert recall.overall == pytest.approx(3 / 5)
    assert equal_opportunity_difference(TRUE, PRED, sensitive_features=GROUPS) == pytest.approx(
        2 / 3 - 0.5
    )
    for ours, theirs in (
        (demographic_parity_difference, fl.demographic_parity_difference),
        (demographic_parity_ratio, fl.demographic_parity_ratio),
        (equal_opportunity_difference, fl.equal_opportunity_difference),
    ):
        _same(ours(TRUE, PRED, sensitive_features=GROUPS), theirs(
            TRUE, PRED, sensitive_features=GROUPS))


def test_a_group_without_actual_positives_has_recall_0_as_in_fairlearn() -> None:
    # Group c has no actual positive: fairlearn (via scikit-learn's normalised confusion
    # matrix) gives it a true-positive rate of 0, which makes the difference 2/3.
    true, pred, groups = [0, 0, 1, 1, 0, 1], [1, 0, 1, 0, 1, 1], list("aabbcb")
    recall = true_positive_rates(true, pred, sensitive_features=groups)
    assert recall.by_group == pytest.approx({"a": 0.0, "b": 2 / 3, "c": 0.0})
    ours = equal_opportunity_difference(true, pred, sensitive_features=groups)
    assert ours == pytest.approx(2 / 3)
    _same(ours, fl.equal_opportunity_difference(true, pred, sensitive_features=groups))


def test_a_single_group_has_no_disparity() -> None:
    groups = ["only"] * 5
    pred, true = [1, 0, 1, 1, 0], [1, 1, 0, 1, 0]
    assert demographic_parity_difference(true, pred, sensitive_features=groups) == 0.0
    assert demographic_parity_ratio(true, pred, sensitive_features=groups) == 1.0
    assert equal_opportunity_difference(true, pred, sensitive_features=groups) == 0.0


def test_all_negative_predictions_have_no_ratio() -> None:
    true, pred, groups = [0, 0, 1, 1, 0, 1], [0] * 6, list("aabbab")
    assert demographic_parity_difference(true, pred, sensitive_features=groups) == 0.0
    # 0 / 0: fairlearn gives NaN, and so do we (never a made-up 1 or 0).
    assert math.isnan(demographic_parity_ratio(true, pred, sensitive_features=groups))
    assert math.isnan(demographic_parity_ratio(
        true, pred, sensitive_features=groups, method="to_overall"))
    assert math.isnan(fl.demographic_parity_ratio(true, pred, sensitive_features=groups))


def test_all_positive_predictions_are_parity() -> None:
    true, pred, groups = [1, 0, 1, 1, 0, 1], [1] * 6, list("aabbab")
    assert demographic_parity_difference(true, pred, sensitive_features=groups) == 0.0
    assert demographic_parity_ratio(true, pred, sensitive_features=groups) == 1.0
    assert equal_opportunity_difference(true, pred, sensitive_features=groups) == 0.0
    # Without an actual positive in group a its recall is 0 (fairlearn's convention), so
    # even all-positive predictions show the largest possible difference.
    no_positive_in_a = [0, 0, 1, 1, 0, 1]
    assert equal_opportunity_difference(no_positive_in_a, pred, sensitive_features=groups) == 1.0
    assert fl.equal_opportunity_difference(no_positive_in_a, pred, sensitive_features=groups) == 1.0


def test_string_labels_with_pos_label() -> None:
    pred = ["grant", "deny", "grant", "grant", "deny", "deny"]
    true = ["grant", "grant", "deny", "grant", "deny", "grant"]
    groups = ["north", "north", "north", "south", "south", "south"]
    # north: 2/3 granted, south: 1/3; recall of "grant": north 1/2, south 1/2.
    assert demographic_parity_difference(
        true, pred, sensitive_features=groups, pos_label="grant") == pytest.approx(1 / 3)
    assert demographic_parity_ratio(
        true, pred, sensitive_features=groups, pos_label="grant") == pytest.approx(0.5)
    assert equal_opportunity_difference(
        true, pred, sensitive_features=groups, pos_label="grant") == 0.0
    # The default positive label 1 never matches a string: nothing is selected.
    assert demographic_parity_difference(true, pred, sensitive_features=groups) == 0.0
    # pos_label "deny": north 1/3, south 2/3.
    assert demographic_parity_ratio(
        true, pred, sensitive_features=groups, pos_label="deny") == pytest.approx(0.5)


def test_integer_groups_and_numpy_inputs() -> None:
    pred = np.array([1, 0, 1, 0, 1, 1])
    rates = selection_rates(pred, sensitive_features=np.array([1, 2, 1, 2, 3, 3]))
    assert rates.by_group == {1: 1.0, 2: 0.0, 3: 1.0}
    assert demographic_parity_difference(None, pred, sensitive_features=[1, 2, 1, 2, 3, 3]) == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: demographic_parity_difference([], [], sensitive_features=[]), "empty"),
        (lambda: demographic_parity_ratio([1], [1, 0], sensitive_features=["a", "b"]), None),
        (lambda: selection_rates([1, 0], sensitive_features=["a"]), "same length"),
        (lambda: equal_opportunity_difference([0, 1, 2], [0, 1, 2], sensitive_features="aaa"),
         "binary"),
        (lambda: equal_opportunity_difference(["x", "y"], ["x", "y"], sensitive_features="aa"),
         "pos_label"),
        (lambda: demographic_parity_difference([1], [1], sensitive_features=["a"], method="x"),  # type: ignore[arg-type]
         "method"),
    ],
)
def test_bad_inputs_raise(call: Callable[[], object], message: str | None) -> None:
    # The second case is fine: y_true is ignored by demographic parity, as in fairlearn.
    if message is None:
        assert call() == 0.0
        return
    with pytest.raises(ValueError, match=message):
        call()


def test_fairlearn_also_rejects_labels_without_the_positive_one() -> None:
    with pytest.raises(ValueError):
        fl.equal_opportunity_difference(["x", "y"], ["x", "y"], sensitive_features=["a", "a"])
