"""Group fairness measures: fairlearn's disparity metrics, in numpy.

For a classifier or scorer with a group attribute (a protected attribute, or any segment such
as region or plan), the measures compare a rate across groups:

- the **selection rate** (share of positive predictions) for demographic parity;
- the **true-positive rate** (recall: share of actual positives predicted positive) for equal
  opportunity.

The three public functions give the same results as ``fairlearn.metrics`` 0.15 functions of
the same names on the same inputs (the tests compare them on random inputs), without pandas
or fairlearn at run time. :func:`selection_rates` and :func:`true_positive_rates` give the
per-group and overall rates the measures are built from. Inputs are one-dimensional: one
sensitive feature, binary outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

DisparityMethod = Literal["between_groups", "to_overall"]
BETWEEN_GROUPS: Final = "between_groups"
TO_OVERALL: Final = "to_overall"

# Values of ml.fairness.measure: the names of the functions below (and of fairlearn's).
DEMOGRAPHIC_PARITY_DIFFERENCE: Final = "demographic_parity_difference"
DEMOGRAPHIC_PARITY_RATIO: Final = "demographic_parity_ratio"
EQUAL_OPPORTUNITY_DIFFERENCE: Final = "equal_opportunity_difference"

_Array: TypeAlias = npt.NDArray[np.generic]
# The rate of the rows selected by a boolean mask.
_RateOf: TypeAlias = Callable[[npt.NDArray[np.bool_]], float]


@dataclass(frozen=True)
class GroupRates:
    """A rate overall and per group, and fairlearn's aggregates of it.

    ``by_group`` maps each group value (as given) to its rate. As in fairlearn, a NaN rate
    (a group whose weights sum to 0) is skipped by the aggregates.
    """

    overall: float
    by_group: Mapping[Hashable, float]

    def difference(self, method: DisparityMethod = BETWEEN_GROUPS) -> float:
        """Largest minus smallest group rate, or the largest |group - overall|."""
        _check_method(method)
        rates = self._rates()
        base = _nanmin(rates) if method == BETWEEN_GROUPS else self.overall
        return _nanmax(np.abs(rates - base))

    def ratio(self, method: DisparityMethod = BETWEEN_GROUPS) -> float:
        """Smallest over largest group rate, or the smallest group/overall ratio (<= 1).

        NaN when the denominator is 0 (no group selected anything): no ratio exists, and
        an alert comparing it must not see a made-up value.
        """
        _check_method(method)
        rates = self._rates()
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == BETWEEN_GROUPS:
                return float(np.nanmin(rates) / np.nanmax(rates)) if _any(rates) else np.nan
            ratios = rates / self.overall
            # fairlearn's ratio_sub_one: a ratio above 1 is turned around (inf becomes 0).
            ratios = np.where(ratios > 1, 1 / ratios, ratios)
        return _nanmin(ratios)

    def _rates(self) -> npt.NDArray[np.float64]:
        return np.fromiter(self.by_group.values(), dtype=np.float64, count=len(self.by_group))


def selection_rates(
    y_pred: Iterable[object],
    *,
    sensitive_features: Iterable[object],
    pos_label: object = 1,
    sample_weight: Iterable[float] | None = None,
) -> GroupRates:
    """Share of predictions equal to ``pos_label``, overall and per group (fairlearn's
    ``selection_rate`` in a ``MetricFrame``)."""
    pred, groups, weight = _arrays(y_pred, sensitive_features, sample_weight)
    selected = (pred == pos_label).astype(np.float64)
    return _per_group(groups, lambda rows: _weighted_mean(selected[rows], weight[rows]))


def true_positive_rates(
    y_true: Iterable[object],
    y_pred: Iterable[object],
    *,
    sensitive_features: Iterable[object],
    pos_label: object = 1,
    sample_weight: Iterable[float] | None = None,
) -> GroupRates:
    """Recall of ``pos_label``, overall and per group (fairlearn's ``true_positive_rate``).

    A group without any actual positive gets 0, not NaN: fairlearn takes the rate from
    scikit-learn's normalised confusion matrix, which turns 0/0 into 0. Outcomes must be
    binary, as fairlearn requires: ValueError for more than two distinct labels, or two
    that do not include ``pos_label``.
    """
    pred, groups, weight = _arrays(y_pred, sensitive_features, sample_weight)
    true = _array(y_true)
    if true.shape != pred.shape:
        raise ValueError("y_true and y_pred must have the same length")
    actual = true == pos_label
    hit = (actual & (pred == pos_label)).astype(np.float64)

    def rate(rows: npt.NDArray[np.bool_]) -> float:
        _check_binary(true[rows], pred[rows], pos_label)
        positives = float(np.sum(weight[rows] * actual[rows]))
        return float(np.sum(weight[rows] * hit[rows]) / positives) if positives else 0.0

    return _per_group(groups, rate)


def demographic_parity_difference(
    y_true: Iterable[object] | None,
    y_pred: Iterable[object],
    *,
    sensitive_features: Iterable[object],
    method: DisparityMethod = BETWEEN_GROUPS,
    sample_weight: Iterable[float] | None = None,
    pos_label: object = 1,
) -> float:
    """Largest minus smallest group selection rate (0: every group selected alike).

    ``y_true`` is ignored, as in fairlearn (None is accepted: no labels are needed).
    """
    rates = selection_rates(
        y_pred, sensitive_features=sensitive_features, pos_label=pos_label,
        sample_weight=sample_weight,
    )
    return rates.difference(method)


def demographic_parity_ratio(
    y_true: Iterable[object] | None,
    y_pred: Iterable[object],
    *,
    sensitive_features: Iterable[object],
    method: DisparityMethod = BETWEEN_GROUPS,
    sample_weight: Iterable[float] | None = None,
    pos_label: object = 1,
) -> float:
    """Smallest over largest group selection rate (1: parity; < 0.8 fails the four-fifths
    rule). NaN when no group selected anything."""
    rates = selection_rates(
        y_pred, sensitive_features=sensitive_features, pos_label=pos_label,
        sample_weight=sample_weight,
    )
    return rates.ratio(method)


def equal_opportunity_difference(
    y_true: Iterable[object],
    y_pred: Iterable[object],
    *,
    sensitive_features: Iterable[object],
    method: DisparityMethod = BETWEEN_GROUPS,
    sample_weight: Iterable[float] | None = None,
    pos_label: object = 1,
) -> float:
    """Largest minus smallest group true-positive rate (0: equal recall in every group)."""
    rates = true_positive_rates(
        y_true, y_pred, sensitive_features=sensitive_features, pos_label=pos_label,
        sample_weight=sample_weight,
    )
    return rates.difference(method)


# --- helpers -------------------------------------------------------------------------------------


def _array(values: Iterable[object]) -> _Array:
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    if array.ndim != 1:
        raise ValueError("expected one-dimensional inputs (one sensitive feature)")
    return array


def _arrays(
    y_pred: Iterable[object],
    sensitive_features: Iterable[object],
    sample_weight: Iterable[float] | None,
) -> tuple[_Array, _Array, npt.NDArray[np.float64]]:
    pred, groups = _array(y_pred), _array(sensitive_features)
    if pred.size == 0:
        raise ValueError("empty input: no predictions")
    if groups.shape != pred.shape:
        raise ValueError("sensitive_features and y_pred must have the same length")
    weight = (
        np.ones(pred.size) if sample_weight is None
        else np.asarray(list(sample_weight), dtype=np.float64)
    )
    if weight.shape != pred.shape:
        raise ValueError("sample_weight and y_pred must have the same length")
    return pred, groups, weight


def _per_group(groups: _Array, rate: _RateOf) -> GroupRates:
    overall = rate(np.ones(groups.size, dtype=np.bool_))
    values, inverse = np.unique(groups, return_inverse=True)
    by_group = {_plain(value): rate(inverse == i) for i, value in enumerate(values)}
    return GroupRates(overall, by_group)


def _weighted_mean(values: npt.NDArray[np.float64], weight: npt.NDArray[np.float64]) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.dot(values, weight) / weight.sum())


def _check_binary(true: _Array, pred: _Array, pos_label: object) -> None:
    labels = np.unique(np.concatenate([true, pred]))
    if labels.size > 2:
        raise ValueError("true_positive_rate needs binary outcomes: more than two labels")
    if labels.size == 2 and not np.any(labels == pos_label):
        raise ValueError(f"pos_label {pos_label!r} is not one of the two labels {labels.tolist()}")


def _check_method(method: str) -> None:
    if method not in (BETWEEN_GROUPS, TO_OVERALL):
        raise ValueError(f"method must be {BETWEEN_GROUPS!r} or {TO_OVERALL!r}, got {method!r}")


def _plain(value: np.generic) -> Hashable:
    """A numpy scalar as the Python value it came from (``"north"``, ``3``)."""
    plain: Hashable = value.item()
    return plain


def _any(rates: npt.NDArray[np.float64]) -> bool:
    finite = rates[~np.isnan(rates)]
    return bool(finite.size) and float(np.max(finite)) != 0.0


def _nanmax(values: npt.NDArray[np.float64]) -> float:
    finite = values[~np.isnan(values)]
    return float(np.max(finite)) if finite.size else np.nan


def _nanmin(values: npt.NDArray[np.float64]) -> float:
    finite = values[~np.isnan(values)]
    return float(np.min(finite)) if finite.size else np.nan
