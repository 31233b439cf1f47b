"""The distance-to-score conversion of instrument_chroma() at its edges (the
main table is checked against numpy on a real Chroma in test_instrument_chroma.py)."""

from __future__ import annotations

import math

import pytest

from otel_ml.instrumentation._chroma._distance import similarity


@pytest.mark.parametrize(
    ("space", "distance", "score"),
    [
        ("cosine", 0.0, 1.0),
        ("cosine", 1.0, 0.0),
        ("cosine", 2.0, -1.0),
        ("cosine", -1.2e-7, 1.0),  # float32 rounding of an exact match: clamped
        ("ip", -1.0, 2.0),  # 1 - q.x: an inner product of 2
        ("ip", 1.5, -0.5),
        ("l2", 0.0, 1.0),
        ("l2", 3.0, 0.25),
        ("l2", -2.0e-7, 1.0),  # clamped: a squared distance is never negative
    ],
)
def test_scores_of_each_distance_function(space: str, distance: float, score: float) -> None:
    assert similarity(space, distance) == pytest.approx(score)


@pytest.mark.parametrize("distance", [math.nan, math.inf, -math.inf])
def test_no_score_for_a_distance_that_is_no_number(distance: float) -> None:
    assert similarity("cosine", distance) is None


def test_no_score_for_an_unknown_distance_function() -> None:
    assert similarity("hamming", 0.5) is None
