"""Drift statistics: agreement with scipy, hand-computed PSI, error rates, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from otel_ml.drift import _stats as ds
from otel_ml.drift._stats import Bins, DriftDefaults, PreparedReference

SQRT_LN2 = math.sqrt(math.log(2))


def normal(seed: int, n: int, loc: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, 1.0, n)


def reference_bin_shares(
    reference: np.ndarray, current: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Independent binning with np.histogram: cut points at reference quantiles, open ends."""
    cuts = np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    ref = np.histogram(reference, edges)[0] / reference.size
    cur = np.histogram(current, edges)[0] / current.size
    return ref, cur


# --- agreement with scipy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "n_ref", "n_cur", "shift"), [(1, 300, 200, 0.0), (2, 1000, 700, 0.3)]
)
def test_ks_matches_scipy(seed: int, n_ref: int, n_cur: int, shift: float) -> None:
    reference, current = normal(seed, n_ref), normal(seed + 100, n_cur, shift)
    expected = stats.ks_2samp(reference, current)
    statistic, p_value = ds.ks_test(reference, current)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (normal(3, 800) * 4.0 + 10.0, normal(4, 500, 0.2) * 4.0 + 10.0),
        # ties and unequal sizes: the CDF steps must line up exactly as scipy's do
        (np.array([1.0, 1.0, 2.0, 2.0, 3.0, 7.0]), np.array([1.0, 2.0, 2.0, 5.0])),
    ],
)
def test_wasserstein_is_scipy_distance_over_reference_std(
    reference: np.ndarray, current: np.ndarray
) -> None:
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert ds.wasserstein_normed(reference, current) == pytest.approx(expected, rel=1e-12)


def test_jensen_shannon_matches_scipy_on_reference_quantile_bins() -> None:
    # 1000 reference values: the decile positions (99.9, 199.8, ...) fall between data points,
    # so np.histogram's [a, b) bins and our (a, b] bins hold the same values.
    reference, current = normal(5, 1000), normal(6, 600, 0.4)
    ref, cur = reference_bin_shares(reference, current, 10)
    expected = distance.jensenshannon(ref, cur)
    assert ds.jensen_shannon(reference, current) == pytest.approx(expected, rel=1e-12)


def test_kl_divergence_matches_scipy_entropy_on_smoothed_bins() -> None:
    reference, current = normal(7, 1000), normal(8, 400, 3.0)
    ref, cur = reference_bin_shares(reference, current, 10)
    assert (cur == 0).any(), "the check needs an empty bin, where smoothing matters"
    smooth = [np.maximum(p, 1e-4) / np.maximum(p, 1e-4).sum() for p in (ref, cur)]
    expected = stats.entropy(smooth[0], smooth[1])
    assert ds.kl_divergence(reference, current) == pytest.approx(expected, rel=1e-12)


def test_chi_square_matches_scipy_contingency_table() -> None:
    rng = np.random.default_rng(9)
    reference = rng.choice(["a", "b", "c"], 500, p=[0.5, 0.3, 0.2])
    current = rng.choice(["a", "b", "c"], 300, p=[0.4, 0.3, 0.3])
    table = np.array([[np.sum(s == c) for c in "abc"] + [0] for s in (reference, current)])
    expected = stats.chi2_contingency(table[:, :3], correction=False)
    statistic, p_value = ds.chi_square_test(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi_square_on_two_categories_is_the_pooled_two_proportion_z_test() -> None:
    reference = [1] * 120 + [0] * 280
    current = [1] * 90 + [0] * 110
    p1, p2, pooled = 120 / 400, 90 / 200, 210 / 600
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 400 + 1 / 200))
    statistic, p_value = ds.chi_square_test(reference, current, kind="categorical")
    assert statistic == pytest.approx(z**2, rel=1e-12)
    assert p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


# --- PSI by hand --------------------------------------------------------------------------------


def test_psi_matches_hand_computation() -> None:
    # Reference 1..8 with 4 bins: quartile cuts 2.75, 4.5, 6.25 -> 2 values (25%) per bin.
    # Current [1,1,1,3,5,7,7,7] -> 3/8, 1/8, 1/8, 3/8 (no empty bin: smoothing is inert).
    # PSI = 2 * (3/8 - 1/4) ln(3/2) + 2 * (1/8 - 1/4) ln(1/2) = (ln 1.5 + ln 2) / 4 = ln(3) / 4
    reference = [1, 2, 3, 4, 5, 6, 7, 8]
    current = [1, 1, 1, 3, 5, 7, 7, 7]
    assert ds.psi(reference, current, n_bins=4) == pytest.approx(math.log(3) / 4, rel=1e-12)


def test_psi_smooths_empty_bins_with_epsilon() -> None:
    # Current [1,1,1,1,7,7,7,7] leaves the middle bins empty: they get epsilon, then all four
    # shares are renormalised to sum to one.
    eps = 1e-4
    cur = np.array([0.5, eps, eps, 0.5]) / (1 + 2 * eps)
    ref = np.full(4, 0.25)
    by_hand = float(np.sum((cur - ref) * np.log(cur / ref)))
    value = ds.psi([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 1, 1, 7, 7, 7, 7], n_bins=4, epsilon=eps)
    assert value == pytest.approx(by_hand, rel=1e-12)


def test_psi_is_the_sum_of_both_kl_directions_on_the_same_bins() -> None:
    rng = np.random.default_rng(12)
    reference, current = rng.integers(0, 50, 10), rng.integers(0, 50, 10)
    current[3] = 0  # an empty bin: the identity holds after smoothing too
    psi = ds.psi_from_counts(reference, current, 1e-4)
    both = ds.kl_from_counts(reference, current, 1e-4) + ds.kl_from_counts(current, reference, 1e-4)
    assert psi == pytest.approx(both, rel=1e-12)


# --- error rates ----------------------------------------------------------------------------------


def test_ks_false_positive_rate_without_shift_is_near_alpha() -> None:
    trials = 400
    hits = sum(
        ds.compare(normal(seed, 200), normal(seed + 10_000, 200), "ks").drifted
        for seed in range(trials)
    )
    # 3 binomial standard deviations around alpha = 0.05 (sd = 0.011 at 400 trials).
    assert 0.017 <= hits / trials <= 0.083


def test_chi_square_false_positive_rate_without_shift_is_near_alpha() -> None:
    trials = 400
    shares = [0.5, 0.3, 0.15, 0.05]
    hits = 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        reference = rng.choice(list("abcd"), 400, p=shares)
        current = rng.choice(list("abcd"), 300, p=shares)
        hits += ds.compare(reference, current).drifted
    assert 0.017 <= hits / trials <= 0.083


def test_half_std_shift_is_detected_with_1000_values() -> None:
    for seed in range(30):
        reference, current = normal(seed, 1000), normal(seed + 500, 1000, 0.5)
        assert ds.compare(reference, current, "ks").drifted
        assert ds.psi(reference, current) >= 0.1


def test_half_std_shift_is_detected_by_the_large_reference_default() -> None:
    reference, current = normal(1, 5000), normal(2, 1000, 0.5)
    result = ds.compare(reference, current)
    assert result.method == "wasserstein"
    assert result.drifted
    assert result.score == pytest.approx(0.5, abs=0.1)


# --- default methods ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        (np.arange(1000.0), "numeric", "ks"),
        (np.arange(1001.0), "numeric", "wasserstein"),
        (np.tile([0.0, 1.0, 2.0], 100), "numeric", "chisquare"),
        (np.tile([0.0, 1.0, 2.0], 1000), "numeric", "jensenshannon"),
        (np.array(["a", "b"] * 500), "categorical", "chisquare"),
        (np.array(["a", "b"] * 501), "categorical", "jensenshannon"),
    ],
)
def test_default_method_follows_evidently(values: np.ndarray, kind: str, expected: str) -> None:
    assert ds.default_method(kind, values, DriftDefaults()) == expected  # type: ignore[arg-type]


def test_thresholds_are_configurable() -> None:
    reference, current = normal(1, 1000), normal(2, 1000, 0.1)
    loose = ds.compare(reference, current, "psi", threshold=10.0)
    strict = ds.compare(reference, current, "psi", threshold=0.0)
    assert (loose.drifted, strict.drifted) == (False, True)
    assert loose.score == strict.score
    assert DriftDefaults(psi=0.25).threshold("psi") == 0.25
    assert DriftDefaults().threshold("ks") == 0.05


def test_method_validation() -> None:
    with pytest.raises(ValueError, match="numeric"):
        ds.check_method("categorical", "ks")
    with pytest.raises(ValueError, match="unknown"):
        ds.check_method("numeric", "t_test")


# --- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ds.METHODS)
def test_empty_current_gives_nan_and_no_drift(method: str) -> None:
    result = ds.compare([1.0, 2.0, 3.0], [], method)
    assert math.isnan(result.score)
    assert result.drifted is False
    if method in ds.P_VALUE_METHODS:
        assert result.p_value is not None and math.isnan(result.p_value)
    else:
        assert result.p_value is None


def test_empty_reference_and_all_missing_values_give_nan() -> None:
    assert math.isnan(ds.psi([], [1.0, 2.0]))
    assert math.isnan(ds.ks_test([None, math.nan], [1.0])[0])
    assert math.isnan(ds.wasserstein_normed([1.0, 2.0], [math.inf, -math.inf, None]))


def test_missing_values_are_dropped_before_computing() -> None:
    reference, current = normal(1, 300), normal(2, 300, 0.2)
    dirty_ref = [*reference.tolist(), None, math.nan]
    dirty_cur = [math.inf, *current.tolist(), None]
    assert ds.ks_test(dirty_ref, dirty_cur) == ds.ks_test(reference, current)
    assert ds.psi(dirty_ref, dirty_cur) == ds.psi(reference, current)


def test_identical_constant_samples_show_no_drift() -> None:
    for method in ("ks", "psi", "kl_div", "jensenshannon", "chisquare", "wasserstein"):
        result = ds.compare([5.0] * 100, [5.0] * 80, method)
        assert not result.drifted, method
        assert result.score == pytest.approx(0.0, abs=1e-12)


def test_constant_reference_sees_any_other_value() -> None:
    reference, below, above = [5.0] * 100, [4.0] * 100, [6.0] * 100
    for current in (below, above):
        for method in ("ks", "psi", "jensenshannon", "chisquare", "wasserstein"):
            assert ds.compare(reference, current, method).drifted, method
    # Zero spread: Wasserstein divides by min_std instead of 0.
    assert ds.wasserstein_normed(reference, above) == pytest.approx(1.0 / 1e-3)


def test_unseen_categories_land_in_one_bin_and_stay_finite() -> None:
    reference = ["a", "b"] * 200
    current = ["a", "b", "new-1", "new-2"] * 100
    bins = Bins.from_reference(np.array(reference), 10)
    assert bins.counts(np.array(current)).tolist() == [100, 100, 200]
    assert math.isfinite(ds.psi(reference, current)) and ds.psi(reference, current) > 0.2
    assert ds.compare(reference, current).drifted
    assert 0 < ds.jensen_shannon(reference, current) < SQRT_LN2


def test_disjoint_distributions_reach_the_maximum_jensen_shannon_distance() -> None:
    assert ds.jensen_shannon(["a"] * 50, ["b"] * 50) == pytest.approx(SQRT_LN2)


def test_categories_are_canonical_across_types() -> None:
    assert {ds.category_key(v) for v in (1, 1.0, True, "1", np.int64(1), np.True_)} == {"1"}
    assert ds.category_key(None) is None and ds.category_key(math.nan) is None
    with pytest.raises(TypeError):
        ds.category_key(1.5)
    with pytest.raises(TypeError):
        ds.category_key(["a"])


def test_numbers_are_coerced_and_text_is_rejected() -> None:
    assert ds.numeric_value(np.float32(2.5)) == 2.5
    assert ds.numeric_value(True) == 1.0
    assert math.isnan(ds.numeric_value(None)) and math.isnan(ds.numeric_value(-math.inf))
    with pytest.raises(TypeError):
        ds.numeric_value("3.5")


def test_kind_inference() -> None:
    assert ds.infer_kind([1, 2.5, None, np.float64(3)]) == "numeric"
    assert ds.infer_kind([True, False]) == "categorical"
    assert ds.infer_kind(["a", 1]) == "categorical"


def test_quantile_bins_keep_out_of_range_values_in_the_outer_bins() -> None:
    reference = np.sort(normal(1, 1000))
    bins = Bins.from_reference(reference, 10)
    assert bins.categories is None and bins.size == 10
    counts = bins.counts(np.array([-1e9, 1e9]))
    assert counts[0] == 1 and counts[-1] == 1


def test_low_cardinality_numeric_data_is_binned_by_value() -> None:
    reference = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 2.0])
    bins = Bins.from_reference(reference, 10)
    assert bins.categories is not None
    assert bins.counts(np.array([0.0, 2.0, 3.0, 0.5])).tolist() == [1, 0, 1, 2]


def test_reference_needs_a_value_and_bins_need_two() -> None:
    with pytest.raises(ValueError):
        PreparedReference(np.array([]), "numeric", DriftDefaults())
    with pytest.raises(ValueError):
        Bins.from_reference(np.arange(10.0), 1)


def test_psi_bands() -> None:
    assert [ds.psi_band(v) for v in (0.05, 0.1, 0.19, 0.2)] == [
        "stable",
        "moderate",
        "moderate",
        "significant",
    ]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


# ks_2samp falls back from its exact p-value on some tied samples, with a RuntimeWarning.
@pytest.mark.filterwarnings("ignore:ks_2samp:RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.lists(finite, min_size=1, max_size=60))
def test_divergences_are_bounded_for_any_sample(
    reference: list[float], current: list[float]
) -> None:
    assert ds.psi(reference, current) >= -1e-12
    assert ds.kl_divergence(reference, current) >= -1e-12
    assert -1e-12 <= ds.jensen_shannon(reference, current) <= SQRT_LN2 + 1e-12
    statistic, p_value = ds.ks_test(reference, current)
    assert 0.0 <= statistic <= 1.0 and 0.0 <= p_value <= 1.0
