"""Classic-model inference spans and user feedback linked to an answer's trace."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture


def _attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


def _prediction_counts(capture: Capture, model: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for point in capture.points(semconv.METRIC_PREDICTION_COUNT, {semconv.ML_MODEL: model}):
        assert point.attributes is not None and not isinstance(point, HistogramDataPoint)
        counts[str(point.attributes[semconv.ML_PREDICTION])] = point.value
    return counts


# --- inference -----------------------------------------------------------------------------------


def test_inference_span_and_metrics(otel_capture: Capture) -> None:
    with otel_ml.tenant("acme"), otel_ml.inference(model="fraud-v3") as p:
        p.prediction("fraud")

    span = otel_capture.span("inference fraud-v3")
    assert span.kind is SpanKind.INTERNAL
    assert _attr(span, semconv.ML_MODEL) == "fraud-v3"
    assert _attr(span, semconv.ML_PREDICTION) == "fraud"
    assert _attr(span, semconv.TENANT_ID) == "acme"
    assert _prediction_counts(otel_capture, "fraud-v3") == {"fraud": 1}
    latency = otel_capture.points(semconv.METRIC_INFERENCE_LATENCY)
    assert len(latency) == 1
    point = latency[0]
    assert isinstance(point, HistogramDataPoint)
    assert point.attributes == {semconv.ML_MODEL: "fraud-v3"}
    assert point.count == 1
    assert point.sum >= 0


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        ("approve", "approve"),
        (0.87, "0.9"),  # scores become one-decimal buckets
        (0.04, "0.0"),
        (np.int64(2), "2"),
        (np.float32(0.25), "0.2"),  # float32(0.25) rounds half to even
        (np.bool_(True), "true"),
    ],
)
def test_prediction_values_become_bounded_labels(
    otel_capture: Capture, value: Any, label: str
) -> None:
    with otel_ml.inference(model="m") as p:
        p.prediction(value)

    assert _prediction_counts(otel_capture, "m") == {label: 1}


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        None,
        "",
        object(),
        [1, 2],
        np.array([[0.1, 0.9]]),  # what predict_proba returns for one row
        np.array([]),
    ],
    ids=["nan", "inf", "none", "empty", "object", "list", "proba_array", "empty_array"],
)
def test_unusable_predictions_are_ignored(otel_capture: Capture, value: Any) -> None:
    with otel_ml.inference(model="m") as p:
        p.prediction(value)

    span = otel_capture.span("inference m")
    assert _attr(span, semconv.ML_PREDICTION) is None
    assert _prediction_counts(otel_capture, "m") == {}
    assert otel_capture.metric_count(semconv.METRIC_INFERENCE_LATENCY) == 1


def test_several_predictions_in_one_span_are_all_counted(otel_capture: Capture) -> None:
    with otel_ml.inference(model="m") as p:
        for label in ("a", "b", "a"):
            p.prediction(label)

    assert _prediction_counts(otel_capture, "m") == {"a": 2, "b": 1}
    assert _attr(otel_capture.span("inference m"), semconv.ML_PREDICTION) == "a"


def test_prediction_labels_are_capped_per_model(otel_capture: Capture) -> None:
    for i in range(80):
        with otel_ml.inference(model="free-text-model") as p:
            p.prediction(f"label-{i}")

    counts = _prediction_counts(otel_capture, "free-text-model")
    assert len(counts) == 51  # 50 real labels and the overflow label
    assert counts[semconv.LABEL_OVERFLOW] == 30
    assert counts["label-0"] == 1
    assert sum(counts.values()) == 80
    # Spans keep the real label even once metrics fold it.
    assert otel_capture.spans(attributes={semconv.ML_PREDICTION: "label-79"})


def test_long_labels_are_truncated(otel_capture: Capture) -> None:
    with otel_ml.inference(model="m") as p:
        p.prediction("x" * 1000)

    assert _prediction_counts(otel_capture, "m") == {"x" * 64: 1}


async def test_inference_async_with(otel_capture: Capture) -> None:
    async with otel_ml.inference(model="m") as p:
        p.prediction(1)

    assert _prediction_counts(otel_capture, "m") == {"1": 1}


def test_model_exception_propagates_and_marks_the_span(otel_capture: Capture) -> None:
    error = ValueError("feature 'amount' is missing")
    with pytest.raises(ValueError) as raised, otel_ml.inference(model="m"):
        raise error
    assert raised.value is error

    span = otel_capture.span("inference m")
    assert span.status.status_code is StatusCode.ERROR
    assert _attr(span, semconv.ERROR_TYPE) == "ValueError"
    assert otel_capture.metric_count(semconv.METRIC_INFERENCE_LATENCY) == 1


# --- feedback ------------------------------------------------------------------------------------


def _answer(capture: Capture) -> tuple[str, str]:
    """Produce an answer span; return its trace and span id as hex."""
    with capture.telemetry.generation("gpt-4o-mini", "openai") as g:
        g.usage(input_tokens=1, output_tokens=1)
    span = capture.span("chat gpt-4o-mini")
    assert span.context is not None
    return format_trace_id(span.context.trace_id), format_span_id(span.context.span_id)


@pytest.mark.parametrize("kind", ["thumbs_up", "thumbs_down", "copy_to_clipboard"])
def test_feedback_span_and_counter(otel_capture: Capture, kind: str) -> None:
    trace_id, _ = _answer(otel_capture)
    with otel_ml.tenant("acme"):
        otel_ml.feedback(trace_id=trace_id, kind=kind)

    span = otel_capture.span(f"feedback {kind}")
    assert _attr(span, semconv.RAG_FEEDBACK_KIND) == kind
    assert _attr(span, semconv.RAG_FEEDBACK_TRACE_ID) == trace_id
    assert _attr(span, semconv.TENANT_ID) == "acme"
    assert _attr(span, semconv.RAG_FEEDBACK_SCORE) is None
    attributes = {semconv.FEEDBACK_KIND: kind, semconv.TENANT_ID: "acme"}
    assert otel_capture.metric_sum(semconv.METRIC_FEEDBACK, attributes) == 1


def test_feedback_links_to_the_answer_span(otel_capture: Capture) -> None:
    trace_id, span_id = _answer(otel_capture)
    otel_ml.feedback(trace_id=trace_id, kind="thumbs_down", span_id=span_id)

    span = otel_capture.span("feedback thumbs_down")
    assert len(span.links) == 1
    target = span.links[0].context
    assert format_trace_id(target.trace_id) == trace_id
    assert format_span_id(target.span_id) == span_id


def test_feedback_is_a_root_span_even_inside_another_request(otel_capture: Capture) -> None:
    trace_id, _ = _answer(otel_capture)
    with otel_capture.telemetry.tracer.start_as_current_span("POST /feedback") as request:
        otel_ml.feedback(trace_id=trace_id, kind="thumbs_up")

    span = otel_capture.span("feedback thumbs_up")
    assert span.parent is None
    assert span.context is not None
    assert span.context.trace_id != request.get_span_context().trace_id


def test_score_feedback(otel_capture: Capture) -> None:
    trace_id, _ = _answer(otel_capture)
    otel_ml.feedback(trace_id=trace_id, score=0.25)

    span = otel_capture.span("feedback score")
    assert _attr(span, semconv.RAG_FEEDBACK_SCORE) == 0.25
    assert otel_capture.metric_sum(semconv.METRIC_FEEDBACK, {semconv.FEEDBACK_KIND: "score"}) == 1


def test_trace_id_may_be_an_int(otel_capture: Capture) -> None:
    trace_int = 0x0AF7651916CD43DD8448EB211C80319C
    otel_ml.feedback(trace_id=trace_int, kind="thumbs_up")

    span = otel_capture.span("feedback thumbs_up")
    assert _attr(span, semconv.RAG_FEEDBACK_TRACE_ID) == "0af7651916cd43dd8448eb211c80319c"


VALID_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    "arguments",
    [
        {"trace_id": VALID_TRACE, "kind": "love_it"},
        {"trace_id": VALID_TRACE, "kind": None},
        {"trace_id": VALID_TRACE, "kind": "score"},  # a score kind needs a score
        {"trace_id": VALID_TRACE, "score": 1.5},
        {"trace_id": VALID_TRACE, "score": -0.1},
        {"trace_id": VALID_TRACE, "score": float("nan")},
        {"trace_id": VALID_TRACE, "score": True},
        {"trace_id": VALID_TRACE, "score": "0.5"},
        {"trace_id": "0" * 32, "kind": "thumbs_up"},  # the invalid all-zero id
        {"trace_id": "xyz", "kind": "thumbs_up"},
        {"trace_id": "g" * 32, "kind": "thumbs_up"},
        {"trace_id": 2**128, "kind": "thumbs_up"},
        {"trace_id": None, "kind": "thumbs_up"},
        {"trace_id": 3.5, "kind": "thumbs_up"},
    ],
)
def test_invalid_feedback_is_dropped_without_raising(
    otel_capture: Capture, arguments: dict[str, Any]
) -> None:
    otel_ml.feedback(**arguments)

    assert otel_capture.spans() == []
    assert otel_capture.points(semconv.METRIC_FEEDBACK) == []


def test_invalid_span_id_drops_only_the_link(otel_capture: Capture) -> None:
    otel_ml.feedback(trace_id=VALID_TRACE, kind="thumbs_down", span_id="not-a-span")

    span = otel_capture.span("feedback thumbs_down")
    assert span.links == ()
    assert otel_capture.metric_sum(semconv.METRIC_FEEDBACK) == 1
