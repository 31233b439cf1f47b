"""Model quality: proxy metrics without labels, and delayed labels joined to predictions.

Labels usually arrive hours or weeks after a prediction (chargebacks, reviews, user
feedback). Until then the prediction distribution is the only signal, so the positive-class
rate is compared with the reference; once labels arrive they are joined to their predictions
by id, and accuracy, precision and recall are computed over a window of joined pairs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np

from otel_ml.drift._stats import Sample, StatResult

# ml.drift.score method for the prediction feature: current minus reference positive rate.
POSITIVE_RATE_DELTA: Final = "positive_rate_delta"
# A joined prediction: (predicted key, actual key, group or None).
Joined: TypeAlias = "tuple[str, str, str | None]"


@dataclass(frozen=True)
class ModelReport:
    """Proxy and delayed-label metrics: undefined values are None, never a made-up 0."""

    positive_rate: float | None = None
    reference_positive_rate: float | None = None
    n_labelled: int = 0
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    pending_labels: int = 0
    evicted_predictions: int = 0
    unmatched_labels: int = 0


class LabelJoin:
    """Joins delayed ground-truth labels to predictions by id, in bounded memory.

    Unlabelled predictions wait in an insertion-ordered map capped at ``max_pending``; the
    oldest are evicted (and counted) first, because labels for them are the least likely to
    still arrive. Joined pairs live in a window of the last ``window`` labelled predictions,
    each with the prediction's group (None outside the monitor's group-aware mode).
    """

    def __init__(self, max_pending: int, window: int) -> None:
        self._pending: OrderedDict[Hashable, tuple[str, str | None]] = OrderedDict()
        self._pairs: deque[Joined] = deque(maxlen=window)
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self.evicted = 0
        self.unmatched = 0

    def predicted(self, prediction_id: Hashable, key: str, group: str | None = None) -> None:
        with self._lock:
            self._pending[prediction_id] = (key, group)
            self._pending.move_to_end(prediction_id)
            while len(self._pending) > self._max_pending:
                self._pending.popitem(last=False)
                self.evicted += 1

    def labelled(self, prediction_id: Hashable, key: str) -> None:
        with self._lock:
            predicted = self._pending.pop(prediction_id, None)
            if predicted is None:
                self.unmatched += 1
                return
            self._pairs.append((predicted[0], key, predicted[1]))

    def snapshot(self) -> tuple[list[Joined], int]:
        with self._lock:
            return list(self._pairs), len(self._pending)


def label_quality(
    pairs: list[Joined], positive: str
) -> tuple[float, float | None, float | None]:
    """Accuracy, and precision/recall of the positive class (None when undefined)."""
    correct = sum(p == a for p, a, _ in pairs)
    true_positive = sum(p == positive and a == positive for p, a, _ in pairs)
    predicted_positive = sum(p == positive for p, _, _ in pairs)
    actual_positive = sum(a == positive for _, a, _ in pairs)
    precision = true_positive / predicted_positive if predicted_positive else None
    recall = true_positive / actual_positive if actual_positive else None
    return correct / len(pairs), precision, recall


def model_report(
    labels: LabelJoin,
    predictions: Sample,
    reference: Sample | None,
    *,
    positive: str,
    min_samples: int,
) -> ModelReport:
    """The positive rate of the prediction window and the quality of the joined labels.

    ``predictions`` are the valid prediction keys of the window, ``reference`` those of the
    reference data (None when no prediction reference was set). Rates and scores need
    ``min_samples`` values, as drift does: a rate over three predictions is noise.
    """
    pairs, pending = labels.snapshot()
    enough = predictions.size >= min_samples
    accuracy, precision, recall = (
        label_quality(pairs, positive) if len(pairs) >= min_samples else (None,) * 3
    )
    return ModelReport(
        positive_rate=float(np.mean(predictions == positive)) if enough else None,
        reference_positive_rate=(
            float(np.mean(reference == positive)) if reference is not None else None
        ),
        n_labelled=len(pairs),
        accuracy=accuracy,
        precision=precision,
        recall=recall,
        pending_labels=pending,
        evicted_predictions=labels.evicted,
        unmatched_labels=labels.unmatched,
    )


def rate_shift(
    reference: Sample, current: Sample, *, positive: str, threshold: float
) -> StatResult:
    """Current minus reference positive-class rate; drifted when it moved ``threshold`` or more."""
    delta = float(np.mean(current == positive) - np.mean(reference == positive))
    return StatResult(POSITIVE_RATE_DELTA, delta, None, threshold, abs(delta) >= threshold)
