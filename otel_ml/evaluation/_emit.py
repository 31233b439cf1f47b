"""Evaluation results as telemetry: a ``gen_ai.evaluation.result`` event each,
and the ``llm.evaluation.score`` histogram.

The event goes through the OTel Logs API (``Logger.emit(event_name=...)``, the
API the spec recommends for events now that the separate Events API is gone
from opentelemetry-api) with the context of the evaluated span, so the SDK
stamps it with that span's trace and span ids. Evaluated later, with only a
response id, it carries ``gen_ai.response.id`` and no span.
"""

from __future__ import annotations

import threading
from typing import Final

from opentelemetry._logs import Logger
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml.cardinality import CardinalityCap
from otel_ml.evaluation._builtin import CONTENT_FREE
from otel_ml.evaluation._types import EvaluationResult
from otel_ml.spans import Recorder

# Evaluation names and labels are chosen in code, but a user's evaluator could
# make them up per call: each is a metric label, so each is capped.
_MAX_NAMES: Final = 50
_MAX_LABELS: Final = 50


class EvaluationRecorder:
    """Emits results; one per Telemetry, instruments made on first use."""

    def __init__(self, logger: Logger, meter: Meter, recorder: Recorder) -> None:
        self._logger = logger
        self._meter = meter
        self._recorder = recorder
        self._names = CardinalityCap(_MAX_NAMES, semconv.LABEL_OVERFLOW)
        self._labels = CardinalityCap(_MAX_LABELS, semconv.LABEL_OVERFLOW)
        self._lock = threading.Lock()
        self._scores: Histogram | None = None
        self._dropped: Counter | None = None

    @staticmethod
    def create_instruments(meter: Meter) -> tuple[Histogram, Counter]:
        """The score histogram and the drop counter (also for tests that derive
        the Prometheus names from the instruments)."""
        scores = meter.create_histogram(
            semconv.METRIC_EVALUATION_SCORE, unit="1",
            description="Evaluation scores of generations (1 = best), by evaluation, "
                        "label, model and tenant.",
            explicit_bucket_boundaries_advisory=semconv.SCORE_BUCKETS,
        )
        dropped = meter.create_counter(
            semconv.METRIC_EVALUATION_DROPPED, unit="{evaluation}",
            description="Evaluations not run: queue full or shut down, by error.type.",
        )
        return scores, dropped

    def _instruments(self) -> tuple[Histogram, Counter]:
        if self._scores is None or self._dropped is None:
            with self._lock:
                if self._scores is None or self._dropped is None:
                    self._scores, self._dropped = self.create_instruments(self._meter)
        return self._scores, self._dropped

    def dropped(self, reason: str, count: int = 1) -> None:
        self._instruments()[1].add(count, {semconv.ERROR_TYPE: reason})

    def emit(
        self,
        result: EvaluationResult,
        *,
        context: Context,
        model: str | None,
        response_id: str | None,
    ) -> None:
        attributes: dict[str, AttributeValue] = {semconv.GEN_AI_EVALUATION_NAME: result.name}
        if result.score is not None:
            attributes[semconv.GEN_AI_EVALUATION_SCORE_VALUE] = result.score
        if result.label is not None:
            attributes[semconv.GEN_AI_EVALUATION_SCORE_LABEL] = result.label
        if result.explanation and (
            result.details.get(CONTENT_FREE) is True or self._recorder.content.enabled
        ):
            attributes[semconv.GEN_AI_EVALUATION_EXPLANATION] = result.explanation
        if result.error_type is not None:
            attributes[semconv.ERROR_TYPE] = result.error_type
        if response_id:
            attributes[semconv.GEN_AI_RESPONSE_ID] = response_id
        self._logger.emit(
            event_name=semconv.EVENT_GEN_AI_EVALUATION_RESULT, attributes=attributes,
            context=context,
        )
        if result.score is not None:
            self._record(result, model)

    def _record(self, result: EvaluationResult, model: str | None) -> None:
        assert result.score is not None
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_EVALUATION_NAME: self._names.fold(result.name),
        }
        if result.label is not None:
            attributes[semconv.GEN_AI_EVALUATION_SCORE_LABEL] = self._labels.fold(result.label)
        if model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = self._recorder.models.fold(model)
        self._recorder.tenant_attribute(attributes)
        self._instruments()[0].record(result.score, attributes)
