"""Bias drift: the drift monitor's group-aware mode.

A model can keep its overall positive rate while treating one group very differently: a
shift in one region offset by the others leaves ``ml.prediction.positive_rate`` flat. So,
per group of a grouping attribute (a protected attribute, or a segment such as region or
plan), the monitor keeps the window's predictions and computes, at each recompute:

- the group's positive-prediction rate, beside the same rate on the reference data;
- the disparity measures of :mod:`otel_ml.drift._fairness` across the groups (demographic
  parity difference and ratio; equal opportunity difference once delayed labels arrive),
  in the window and in the reference;
- with delayed labels, the group's true-positive rate.

Group values come from the data, so they are capped like tenants: the first ``max_groups``
keep their value, later ones fold into :data:`otel_ml.semconv.LABEL_OVERFLOW`. A group
needs ``min_samples`` predictions (or labelled predictions, for its true-positive rate)
before its rates count, and disparities need two such groups: a rate over three requests is
noise, and a disparity of one group is no comparison.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from otel_ml.drift._fairness import (
    DEMOGRAPHIC_PARITY_DIFFERENCE,
    DEMOGRAPHIC_PARITY_RATIO,
    EQUAL_OPPORTUNITY_DIFFERENCE,
    GroupRates,
    selection_rates,
    true_positive_rates,
)
from otel_ml.drift._labels import Joined

# A joined prediction of a known group: (predicted key, actual key, group).
_Grouped: TypeAlias = "tuple[str, str, str]"

MEASURES: Final = (
    DEMOGRAPHIC_PARITY_DIFFERENCE,
    DEMOGRAPHIC_PARITY_RATIO,
    EQUAL_OPPORTUNITY_DIFFERENCE,
)


@dataclass(frozen=True)
class GroupStats:
    """One group at one recompute; undefined rates are None, never a made-up 0.

    ``true_positive_rate`` is None until the group has ``min_samples`` labelled predictions
    with at least one actual positive (fairlearn would report 0 for a group without actual
    positives; an alert must not read that as a group the model fails).
    """

    group: str
    n: int
    positive_rate: float | None
    reference_positive_rate: float | None
    n_labelled: int = 0
    true_positive_rate: float | None = None
    reference_true_positive_rate: float | None = None


@dataclass(frozen=True)
class FairnessReport:
    """Per-group rates and the disparity measures across groups, window and reference.

    ``disparity`` and ``reference_disparity`` map a measure name (``MEASURES``) to its value;
    a measure that cannot be computed (fewer than two eligible groups, no labels, a ratio
    with no positive prediction at all) is absent. ``band`` is how far a measure may move from
    its reference value before :attr:`shifted` lists it.
    """

    attribute: str
    groups: Mapping[str, GroupStats]
    disparity: Mapping[str, float] = field(default_factory=dict)
    reference_disparity: Mapping[str, float] = field(default_factory=dict)
    band: float = 0.1

    @property
    def shifted(self) -> list[str]:
        """Measures whose disparity moved more than ``band`` away from the reference."""
        return [
            measure
            for measure, value in self.disparity.items()
            if measure in self.reference_disparity
            and abs(value - self.reference_disparity[measure]) > self.band
        ]


@dataclass(frozen=True)
class GroupReference:
    """Per-group rates and disparities of the reference data (fixed once set)."""

    positive_rate: Mapping[str, float]
    true_positive_rate: Mapping[str, float]
    disparity: Mapping[str, float]


class GroupWindow:
    """The last ``window`` predictions with their (capped) group, safe from any thread."""

    def __init__(self, window: int) -> None:
        self._values: deque[tuple[str, str]] = deque(maxlen=window)
        self._lock = threading.Lock()

    def append(self, group: str, key: str) -> None:
        with self._lock:
            self._values.append((group, key))

    def snapshot(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._values)


def group_reference(
    keys: Sequence[str],
    groups: Sequence[str],
    labels: Sequence[str] | None,
    *,
    positive: str,
    min_samples: int,
) -> GroupReference:
    """The reference's per-group rates and disparities (``labels`` None: no true-positive
    rates and no equal opportunity)."""
    joined: list[_Grouped] = list(zip(keys, labels, groups, strict=True)) if labels else []
    rates = _eligible_rates(list(zip(groups, keys, strict=True)), positive, min_samples)
    recall = _eligible_recall(joined, positive, min_samples)
    return GroupReference(
        positive_rate=_by_name(rates),
        true_positive_rate=_by_name(recall),
        disparity=_disparities(rates, recall),
    )


def fairness_report(
    attribute: str,
    window: list[tuple[str, str]],
    labelled: list[Joined],
    reference: GroupReference | None,
    *,
    positive: str,
    min_samples: int,
    band: float,
) -> FairnessReport:
    """The window's per-group rates and disparities, against ``reference``."""
    rates = _eligible_rates(window, positive, min_samples)
    grouped: list[_Grouped] = [(p, a, g) for p, a, g in labelled if g is not None]
    recall = _eligible_recall(grouped, positive, min_samples)
    counts = _counts(group for group, _ in window)
    label_counts = _counts(pair[2] for pair in grouped)
    ref_rate = reference.positive_rate if reference else {}
    ref_recall = reference.true_positive_rate if reference else {}
    names = sorted(set(counts) | set(ref_rate))
    groups = {
        name: GroupStats(
            group=name,
            n=counts.get(name, 0),
            positive_rate=_rate(rates, name),
            reference_positive_rate=ref_rate.get(name),
            n_labelled=label_counts.get(name, 0),
            true_positive_rate=_rate(recall, name),
            reference_true_positive_rate=ref_recall.get(name),
        )
        for name in names
    }
    return FairnessReport(
        attribute=attribute,
        groups=groups,
        disparity=_disparities(rates, recall),
        reference_disparity=dict(reference.disparity) if reference else {},
        band=band,
    )


# --- helpers -------------------------------------------------------------------------------------


def _counts(groups: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for group in groups:
        out[group] = out.get(group, 0) + 1
    return out


def _eligible_rates(
    window: list[tuple[str, str]], positive: str, min_samples: int
) -> GroupRates | None:
    """Selection rates of the groups with at least ``min_samples`` predictions."""
    counts = _counts(group for group, _ in window)
    kept = [(g, k) for g, k in window if counts[g] >= min_samples]
    if not kept:
        return None
    groups, keys = zip(*kept, strict=True)
    return selection_rates(keys, sensitive_features=groups, pos_label=positive)


def _eligible_recall(
    labelled: list[_Grouped], positive: str, min_samples: int
) -> GroupRates | None:
    """True-positive rates of the groups with ``min_samples`` labelled predictions, one of
    them an actual positive."""
    counts = _counts(group for _, _, group in labelled)
    positives = _counts(group for _, actual, group in labelled if actual == positive)
    kept = [j for j in labelled if counts[j[2]] >= min_samples and positives.get(j[2], 0)]
    if not kept:
        return None
    predicted, actual, groups = zip(*kept, strict=True)
    try:
        return true_positive_rates(
            actual, predicted, sensitive_features=groups, pos_label=positive
        )
    except ValueError:  # more than two classes: recall of "the" positive class is undefined
        return None


def _disparities(rates: GroupRates | None, recall: GroupRates | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if rates is not None and len(rates.by_group) >= 2:
        out[DEMOGRAPHIC_PARITY_DIFFERENCE] = rates.difference()
        out[DEMOGRAPHIC_PARITY_RATIO] = rates.ratio()
    if recall is not None and len(recall.by_group) >= 2:
        out[EQUAL_OPPORTUNITY_DIFFERENCE] = recall.difference()
    return {measure: value for measure, value in out.items() if math.isfinite(value)}


def _by_name(rates: GroupRates | None) -> dict[str, float]:
    return {} if rates is None else {str(group): v for group, v in rates.by_group.items()}


def _rate(rates: GroupRates | None, group: str) -> float | None:
    if rates is None:
        return None
    value = rates.by_group.get(group)
    return None if value is None or math.isnan(value) else float(value)
