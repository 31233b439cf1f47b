"""Two-sample drift statistics with explicit, documented edge-case rules.

Each statistic compares a *reference* sample (the data a model was trained or validated on)
with a *current* sample (a recent window of production values). The scipy functions are the
references; this module adds what production monitoring needs around them: one binning shared
by PSI, KL and Jensen-Shannon, epsilon smoothing, defaults taken from Evidently, and rules
for the inputs scipy rejects or answers with warnings:

- missing values (``None``, NaN, +-inf) are dropped before any statistic is computed; the
  monitor reports them separately as the null rate;
- an empty sample on either side gives a NaN score, no p-value verdict, and ``drifted=False``:
  absence of data is a data-quality signal, not evidence of drift;
- a constant reference is binned as a single category plus an "unseen" bin, so any other
  current value is visible to PSI, KL and Jensen-Shannon; Wasserstein divides by
  ``max(std, min_std)`` instead of zero;
- categories (or discrete numeric values) absent from the reference land in one trailing
  "unseen" bin, which epsilon smoothing keeps finite for PSI and KL.

Pure functions plus :class:`PreparedReference`, which caches everything derived from the
reference so a monitor recomputing every minute pays only for the current window.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast, get_args

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.spatial import distance

FeatureKind = Literal["numeric", "categorical"]
Method = Literal["ks", "chisquare", "wasserstein", "jensenshannon", "psi", "kl_div"]
PsiBand = Literal["stable", "moderate", "significant"]

NUMERIC: Final = "numeric"
CATEGORICAL: Final = "categorical"
METHODS: Final[tuple[str, ...]] = get_args(Method)
# Methods whose verdict is "p-value below alpha"; the others compare a distance to a threshold.
P_VALUE_METHODS: Final = frozenset({"ks", "chisquare"})
NUMERIC_ONLY_METHODS: Final = frozenset({"ks", "wasserstein"})

FloatArray: TypeAlias = npt.NDArray[np.float64]
StrArray: TypeAlias = npt.NDArray[np.str_]
# A cleaned sample: float64 values for numeric features, str_ values for categorical ones.
Sample: TypeAlias = npt.NDArray[Any]
Counts: TypeAlias = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DriftDefaults:
    """Method choice and thresholds; every value can be overridden.

    The defaults follow Evidently's ``_get_default_stattest``: a reference of at most
    ``small_reference_max`` values gets a hypothesis test (KS for numeric data, chi-square
    for categorical or low-cardinality data, drift when p < ``p_value``); a larger reference
    gets a distance (Wasserstein normalised by the reference std, or Jensen-Shannon, drift when
    >= 0.1), because with thousands of values every negligible difference is "significant".
    PSI drift starts at 0.1 as in Evidently; 0.1-0.2 is the conventional "moderate" band and
    >= ``psi_significant`` (0.2) "significant".
    """

    small_reference_max: int = 1000
    low_cardinality: int = 5
    p_value: float = 0.05
    wasserstein: float = 0.1
    jensenshannon: float = 0.1
    psi: float = 0.1
    psi_significant: float = 0.2
    kl_div: float = 0.1
    n_bins: int = 10
    epsilon: float = 1e-4
    min_std: float = 1e-3

    def threshold(self, method: Method) -> float:
        """The default threshold for ``method``."""
        if method in P_VALUE_METHODS:
            return self.p_value
        return cast(float, getattr(self, method))


@dataclass(frozen=True)
class StatResult:
    """One statistic's verdict.

    ``score`` is the statistic (KS D, chi-square, PSI, KL) or distance (normalised Wasserstein,
    Jensen-Shannon); NaN when it could not be computed. ``p_value`` is set only for the
    p-value methods. ``drifted`` compares the p-value (< threshold) or the score
    (>= threshold) with ``threshold``.
    """

    method: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool


# --- input cleaning -----------------------------------------------------------------------


def numeric_value(value: object) -> float:
    """``value`` as a float: NaN when missing (None, NaN, +-inf).

    Raises TypeError for anything that is not a real number (strings included: a number that
    arrives as text is a schema change, not a value to parse).
    """
    if type(value) is float:  # the hot path first: ABC isinstance checks cost ~0.3 us each
        return value if math.isfinite(value) else math.nan
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else math.nan
    raise TypeError(f"expected a real number, got {type(value).__name__}")


def category_key(value: object) -> str | None:
    """Canonical string for a categorical value, or None when missing.

    Booleans become "0"/"1" and integral floats become integers, so ``True``, ``1``, ``1.0`` and
    ``"1"`` are one category: JSON round trips and numpy casts must not look like drift.
    Raises TypeError for values that are not categories (non-integral floats, containers).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
    raise TypeError(f"expected a category (str, int or bool), got {type(value).__name__}")


def clean_numeric(values: Iterable[object]) -> FloatArray:
    """Finite floats from ``values``; missing values are dropped."""
    array = np.fromiter((numeric_value(v) for v in values), dtype=np.float64)
    return array[np.isfinite(array)]


def clean_categorical(values: Iterable[object]) -> StrArray:
    """Canonical category strings from ``values``; missing values are dropped."""
    keys = [key for key in (category_key(v) for v in values) if key is not None]
    return np.array(keys, dtype=np.str_)


def infer_kind(values: Iterable[object]) -> FeatureKind:
    """Numeric if every non-missing value is a real number (bools excluded), else categorical."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            return CATEGORICAL
    return NUMERIC


def clean(values: Iterable[object], kind: FeatureKind) -> Sample:
    """Clean ``values`` for a feature of ``kind``."""
    return clean_numeric(values) if kind == NUMERIC else clean_categorical(values)


# --- binning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """Histogram bins derived from the reference alone, so the current window cannot move them.

    Discrete mode (categorical data, or numeric data with at most ``n_bins`` distinct values):
    one bin per reference value plus a trailing "unseen" bin. Quantile mode: interior cut
    points at the reference quantiles (duplicates merged); bin ``i`` holds
    ``(cuts[i-1], cuts[i]]`` and the outer bins are open-ended, so current values outside the
    reference range still land in a bin.
    """

    categories: Sample | None
    cuts: FloatArray | None

    @classmethod
    def from_reference(cls, reference: Sample, n_bins: int) -> Bins:
        if n_bins < 2:
            raise ValueError("n_bins must be at least 2")
        unique = np.unique(reference)
        if reference.dtype.kind == "U" or unique.size <= n_bins:
            return cls(categories=unique, cuts=None)
        quantiles = np.quantile(reference, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
        return cls(categories=None, cuts=np.unique(quantiles))

    @property
    def size(self) -> int:
        if self.categories is not None:
            return int(self.categories.size) + 1
        assert self.cuts is not None
        return int(self.cuts.size) + 1

    def counts(self, values: Sample) -> Counts:
        """How many of ``values`` fall into each bin."""
        if self.categories is None:
            assert self.cuts is not None
            index = np.searchsorted(self.cuts, values, side="left")
            return np.bincount(index, minlength=self.size).astype(np.int64)
        categories = self.categories
        index = np.searchsorted(categories, values)
        # searchsorted gives an insertion point; the value is known only if it sits there.
        known = categories[np.minimum(index, categories.size - 1)] == values
        counts = np.bincount(index[known], minlength=self.size).astype(np.int64)
        counts[-1] = int(values.size - np.count_nonzero(known))
        return counts


def smoothed_proportions(counts: Counts, epsilon: float) -> FloatArray:
    """Proportions with every bin floored at ``epsilon`` and renormalised to sum to one.

    The floor keeps ln(p/q) finite when a bin is empty on one side; renormalising keeps the
    result a distribution, so KL equals ``scipy.stats.entropy`` on the same vectors.
    """
    total = counts.sum()
    proportions = counts / total if total else np.full(counts.size, 1.0 / counts.size)
    floored = np.maximum(proportions, epsilon)
    return cast(FloatArray, floored / floored.sum())


def psi_from_counts(reference: Counts, current: Counts, epsilon: float) -> float:
    """PSI = sum((c - r) * ln(c / r)) over smoothed bin proportions."""
    ref = smoothed_proportions(reference, epsilon)
    cur = smoothed_proportions(current, epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def kl_from_counts(reference: Counts, current: Counts, epsilon: float) -> float:
    """KL(reference || current) in nats over smoothed bin proportions (Evidently's direction)."""
    ref = smoothed_proportions(reference, epsilon)
    cur = smoothed_proportions(current, epsilon)
    return float(np.sum(ref * np.log(ref / cur)))


def js_from_counts(reference: Counts, current: Counts) -> float:
    """Jensen-Shannon distance (natural log, range [0, sqrt(ln 2)]) over raw proportions."""
    return float(distance.jensenshannon(reference / reference.sum(), current / current.sum()))


def wasserstein_sorted(reference: FloatArray, current: FloatArray) -> float:
    """First Wasserstein distance: the area between the two empirical CDFs.

    ``reference`` must be sorted. The arithmetic of ``scipy.stats.wasserstein_distance`` (the
    tests check equality) minus its final ``np.vecdot``, which runs on OpenBLAS's thread
    pool: a monitor recomputing beside request handlers must not fan out over every core, and
    on a busy 2-core host that dot product made recomputes up to 10x slower.
    """
    ordered = np.sort(current)
    values = np.sort(np.concatenate([reference, ordered]))
    points = values[:-1]
    ref_cdf = np.searchsorted(reference, points, side="right") / reference.size
    cur_cdf = np.searchsorted(ordered, points, side="right") / ordered.size
    return float(np.sum(np.abs(ref_cdf - cur_cdf) * np.diff(values)))


def chi_square_from_counts(reference: Counts, current: Counts) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x bins table: (statistic, p-value).

    A two-sample test rather than Evidently's goodness-of-fit against reference frequencies,
    because the reference is itself a sample; for two categories it equals the pooled
    two-proportion z-test Evidently uses for binary data (no Yates correction). Bins empty on
    both sides are dropped; with fewer than two bins left both samples are one category.
    """
    table = np.vstack([reference, current])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


# --- the reference ------------------------------------------------------------------------------


def default_method(kind: FeatureKind, reference: Sample, defaults: DriftDefaults) -> Method:
    """Evidently's default test for a reference (decided once, so the metric label is stable).

    Evidently counts distinct values over reference and current together at every run; we count
    them in the reference only, so a feature's ``method`` label never flips between recomputes.
    """
    small = reference.size <= defaults.small_reference_max
    if kind == CATEGORICAL or np.unique(reference).size <= defaults.low_cardinality:
        return "chisquare" if small else "jensenshannon"
    return "ks" if small else "wasserstein"


def check_method(kind: FeatureKind, method: str) -> Method:
    """``method`` validated for ``kind``; ValueError for unknown or inapplicable methods."""
    if method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; expected one of {METHODS}")
    if kind == CATEGORICAL and method in NUMERIC_ONLY_METHODS:
        raise ValueError(f"method {method!r} needs numeric data")
    return cast(Method, method)


class PreparedReference:
    """A cleaned reference sample with its bins, counts and moments computed once."""

    def __init__(self, values: Sample, kind: FeatureKind, defaults: DriftDefaults) -> None:
        if values.size == 0:
            raise ValueError("a reference needs at least one non-missing value")
        self.kind: FeatureKind = kind
        self.values: Sample = np.sort(values)
        self.defaults = defaults
        self.bins = Bins.from_reference(self.values, defaults.n_bins)
        self.counts = self.bins.counts(self.values)
        # Range and spread only mean something for numbers; categories have their unique set.
        self.std = math.nan
        self.low = self.high = math.nan
        self.categories: Sample = np.unique(self.values)
        if kind == NUMERIC:
            self.std = float(np.std(self.values))
            self.low, self.high = float(self.values[0]), float(self.values[-1])

    @property
    def size(self) -> int:
        return int(self.values.size)

    def default_method(self) -> Method:
        return default_method(self.kind, self.values, self.defaults)

    def compare(
        self, current: Sample, method: Method, threshold: float | None = None
    ) -> StatResult:
        """Run ``method`` on a cleaned current sample; an empty sample gives a NaN score."""
        limit = self.defaults.threshold(method) if threshold is None else threshold
        if current.size == 0:
            p_value = math.nan if method in P_VALUE_METHODS else None
            return StatResult(method, math.nan, p_value, limit, False)
        if method in P_VALUE_METHODS:
            score, p_value = self._test(current, method)
            return StatResult(method, score, p_value, limit, p_value < limit)
        score = self._distance(current, method)
        return StatResult(method, score, None, limit, score >= limit)

    def _test(self, current: Sample, method: Method) -> tuple[float, float]:
        if method == "ks":
            result = stats.ks_2samp(self.values, current)
            return float(result.statistic), float(result.pvalue)
        return chi_square_from_counts(self.counts, self.bins.counts(current))

    def _distance(self, current: Sample, method: Method) -> float:
        if method == "wasserstein":
            norm = max(self.std, self.defaults.min_std)
            return wasserstein_sorted(self.values, current) / norm
        counts = self.bins.counts(current)
        if method == "psi":
            return psi_from_counts(self.counts, counts, self.defaults.epsilon)
        if method == "kl_div":
            return kl_from_counts(self.counts, counts, self.defaults.epsilon)
        return js_from_counts(self.counts, counts)


# --- one-shot functions on raw samples -----------------------------------------------------------


def _prepare(
    reference: Iterable[object],
    current: Iterable[object],
    kind: FeatureKind | None,
    defaults: DriftDefaults,
) -> tuple[PreparedReference, Sample] | None:
    reference = list(reference)
    resolved = kind or infer_kind(reference)
    ref = clean(reference, resolved)
    cur = clean(current, resolved)
    if ref.size == 0 or cur.size == 0:
        return None
    return PreparedReference(ref, resolved, defaults), cur


def compare(
    reference: Iterable[object],
    current: Iterable[object],
    method: str | None = None,
    *,
    kind: FeatureKind | None = None,
    threshold: float | None = None,
    defaults: DriftDefaults | None = None,
) -> StatResult:
    """Compare two raw samples with ``method`` (default: Evidently's choice for the reference)."""
    settings = defaults or DriftDefaults()
    prepared = _prepare(reference, current, kind, settings)
    if prepared is None:
        chosen = check_method(kind or NUMERIC, method or "ks")
        limit = settings.threshold(chosen) if threshold is None else threshold
        p_value = math.nan if chosen in P_VALUE_METHODS else None
        return StatResult(chosen, math.nan, p_value, limit, False)
    ref, cur = prepared
    chosen = check_method(ref.kind, method) if method else ref.default_method()
    return ref.compare(cur, chosen, threshold)


def ks_test(reference: Iterable[object], current: Iterable[object]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov (statistic D, p-value) via ``scipy.stats.ks_2samp``.

    D is the largest gap between the two empirical CDFs (0..1); the p-value is the chance of a
    gap at least this large if both samples came from one distribution.
    """
    result = compare(reference, current, "ks", kind=NUMERIC)
    return result.score, cast(float, result.p_value)


def chi_square_test(
    reference: Iterable[object],
    current: Iterable[object],
    *,
    kind: FeatureKind | None = None,
    n_bins: int = 10,
) -> tuple[float, float]:
    """Chi-square test of homogeneity over categories (or reference bins): (statistic, p-value)."""
    defaults = DriftDefaults(n_bins=n_bins)
    result = compare(reference, current, "chisquare", kind=kind, defaults=defaults)
    return result.score, cast(float, result.p_value)


def wasserstein_normed(
    reference: Iterable[object],
    current: Iterable[object],
    *,
    min_std: float = 1e-3,
) -> float:
    """Earth mover's distance divided by ``max(reference std, min_std)``.

    In units of reference standard deviations: 0.1 means the current distribution moved about
    a tenth of a std. ``min_std`` keeps a constant reference from dividing by zero.
    """
    defaults = DriftDefaults(min_std=min_std)
    return compare(reference, current, "wasserstein", kind=NUMERIC, defaults=defaults).score


def psi(
    reference: Iterable[object],
    current: Iterable[object],
    *,
    kind: FeatureKind | None = None,
    n_bins: int = 10,
    epsilon: float = 1e-4,
) -> float:
    """Population Stability Index on reference-quantile bins with epsilon smoothing.

    Symmetric (it equals KL(r||c) + KL(c||r)); < 0.1 stable, 0.1-0.2 moderate, >= 0.2
    significant shift.
    """
    defaults = DriftDefaults(n_bins=n_bins, epsilon=epsilon)
    return compare(reference, current, "psi", kind=kind, defaults=defaults).score


def kl_divergence(
    reference: Iterable[object],
    current: Iterable[object],
    *,
    kind: FeatureKind | None = None,
    n_bins: int = 10,
    epsilon: float = 1e-4,
) -> float:
    """KL(reference || current) in nats on the PSI bins (the same direction as Evidently)."""
    defaults = DriftDefaults(n_bins=n_bins, epsilon=epsilon)
    return compare(reference, current, "kl_div", kind=kind, defaults=defaults).score


def jensen_shannon(
    reference: Iterable[object],
    current: Iterable[object],
    *,
    kind: FeatureKind | None = None,
    n_bins: int = 10,
) -> float:
    """Jensen-Shannon distance on the PSI bins (natural log): 0 identical, sqrt(ln 2) disjoint."""
    defaults = DriftDefaults(n_bins=n_bins)
    return compare(reference, current, "jensenshannon", kind=kind, defaults=defaults).score


def psi_band(value: float, defaults: DriftDefaults | None = None) -> PsiBand:
    """The conventional reading of a PSI value."""
    settings = defaults or DriftDefaults()
    if value >= settings.psi_significant:
        return "significant"
    return "moderate" if value >= settings.psi else "stable"
