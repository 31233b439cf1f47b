"""``inference {model}`` spans for classic models: ``prediction_count`` and
``inference_latency``, with prediction labels under a cardinality cap."""

from __future__ import annotations

import math
import time
from typing import Any

from opentelemetry.trace import Span, SpanKind

from otel_ml import semconv
from otel_ml._safety import warn_input
from otel_ml.cardinality import CardinalityCap
from otel_ml.spans._scope import Recorder, SpanScope
from otel_ml.spans._validate import name_or

_MAX_PREDICTION_LABELS = 50


class InferenceSpan(SpanScope):
    """``inference {model}``: one classic-model prediction."""

    def __init__(self, recorder: Recorder, model: str, labels: CardinalityCap) -> None:
        super().__init__(recorder)
        self.model = name_or(model, "unknown", "inference model")
        self._labels = labels
        self._predictions: list[str] = []

    def _start(self) -> None:
        self._start_span(
            semconv.SPAN_INFERENCE.format(model=self.model),
            SpanKind.INTERNAL,
            {semconv.ML_MODEL: self.model},
        )

    def prediction(self, value: Any) -> None:
        """Record the model's output: a label (str/int/bool) or a score (float)."""
        label = _prediction_label(value)
        if label is not None:
            self._predictions.append(label)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        latency = time.perf_counter() - self._t0
        instruments = self._recorder.instruments
        instruments.inference_latency.record(latency, {semconv.ML_MODEL: self.model})
        if self._predictions:
            span.set_attribute(semconv.ML_PREDICTION, self._predictions[-1])
        for label in self._predictions:
            instruments.prediction_count.add(
                1, {semconv.ML_MODEL: self.model, semconv.ML_PREDICTION: self._labels.fold(label)}
            )


def _prediction_label(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value[:64] if value else None
    if isinstance(value, float) and math.isfinite(value):
        # Scores become one-decimal buckets so the label set stays small.
        return f"{value:.1f}"
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy scalars
        return _prediction_label(value.item())
    warn_input(
        "inference prediction must be a label or a finite score (one value, not an array), "
        f"got {type(value).__name__}; ignored"
    )
    return None


def new_label_cap() -> CardinalityCap:
    """The prediction-label cap of one model."""
    return CardinalityCap(_MAX_PREDICTION_LABELS, semconv.LABEL_OVERFLOW)
