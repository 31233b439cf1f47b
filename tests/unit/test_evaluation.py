"""otel_ml.evaluation: the offline evaluators on real answers from the demo
corpus, and each result as a gen_ai.evaluation.result event (right parent,
right attributes) and a point on llm.evaluation.score."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from evaluation_support import EvalCapture, fresh_globals
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

import otel_ml
from otel_ml import semconv
from otel_ml.evaluation import (
    IRRELEVANT,
    RELEVANT,
    SUPPORTED,
    UNSUPPORTED,
    AnswerRelevance,
    ContextRelevance,
    EvaluationInput,
    EvaluationResult,
    Evaluator,
    Groundedness,
)

# kb-0002 and kb-0004 of demo_rag/data/corpus.jsonl.
QUOTAS = ("By default each project can create up to 17 buckets in Object Storage. The quota "
          "can be raised to 187 by opening a support ticket in the quota increase category; "
          "increases are usually approved within 48 business hours.")
SLA = ("The Object Storage SLA guarantees 99.95% monthly uptime. Below that, customers "
       "receive a 23% service credit, and credits must be claimed within 25 days of the "
       "incident.")
VOLUMES_SLA = ("The Block Volumes SLA guarantees 99.9% monthly uptime. Below that, customers "
               "receive a 10% service credit, and credits must be claimed within 30 days of "
               "the incident.")
CONTEXTS = (QUOTAS, SLA, VOLUMES_SLA)


@pytest.fixture
def cap() -> Iterator[EvalCapture]:
    capture = EvalCapture()
    yield capture
    capture.shutdown()


@pytest.mark.parametrize(("answer", "label", "score"), [
    # quoted: supported, citations are not claims
    ("By default each project can create up to 17 buckets in Object Storage. [kb-0002]",
     SUPPORTED, 1.0),
    # paraphrased with the same facts
    ("Each project can create 17 buckets by default; the quota can be raised to 187 "
     "with a support ticket. [kb-0002]", SUPPORTED, 1.0),
    # a changed number that the same document holds elsewhere
    ("By default each project can create up to 187 buckets in Object Storage.",
     UNSUPPORTED, 0.0),
    # a changed number the contexts do not hold
    ("The Object Storage SLA guarantees 99.99% monthly uptime.", UNSUPPORTED, 0.0),
    # a changed name: another retrieved article has the product, not this figure
    ("The Block Volumes SLA guarantees 99.95% monthly uptime.", UNSUPPORTED, 0.0),
    # one fabricated sentence of two
    ("The Object Storage SLA guarantees 99.95% monthly uptime. Enterprise customers "
     "receive a dedicated support engineer at no extra cost.", UNSUPPORTED, 0.5),
    ("", SUPPORTED, 1.0),  # claims nothing
    # an abstention is not a claim: nothing wrong, nothing grounded either
    ("I could not find this in the documentation I was given.", "abstained", 0.0),
    # a negation the context does not make
    ("Credits must not be claimed within 25 days of the incident.", UNSUPPORTED, 0.0),
    # the same number with another unit
    ("Credits must be claimed within 25 weeks of the incident.", UNSUPPORTED, 0.0),
])
def test_groundedness_offline_catches_near_misses(answer: str, label: str, score: float) -> None:
    result = Groundedness().evaluate(EvaluationInput(answer, CONTEXTS, "question"))
    assert (result.name, result.label, result.score) == ("groundedness", label, score)


def test_groundedness_explanation_names_reasons_not_text() -> None:
    answer = "The Object Storage SLA guarantees 99.99% monthly uptime. Credits are free."
    result = Groundedness().evaluate(EvaluationInput(answer, CONTEXTS))
    assert result.explanation == ("0 of 2 claims supported; unsupported: "
                                  "changed or unknown number/name, low word overlap")
    assert result.details["unsupported_claims"] == [
        "The Object Storage SLA guarantees 99.99% monthly uptime.", "Credits are free."]


def test_relevance_evaluators_offline() -> None:
    question = "How many buckets can a project create in Object Storage?"
    on_topic = EvaluationInput("A project can create up to 17 buckets in Object Storage.",
                               CONTEXTS, question)
    off_topic = EvaluationInput("The SLA guarantees 99.95% uptime.", (SLA,), question)
    assert AnswerRelevance().evaluate(on_topic).label == RELEVANT
    assert AnswerRelevance().evaluate(off_topic).label == IRRELEVANT
    assert ContextRelevance().evaluate(on_topic).score == 1.0
    assert ContextRelevance().evaluate(off_topic).label == IRRELEVANT
    assert ContextRelevance().evaluate(off_topic).explanation == "0 of 1 contexts relevant"


def test_inline_event_is_parented_to_the_generation_span(cap: EvalCapture) -> None:
    tel = cap.telemetry
    with tel.tenant("acme"), tel.generation("gpt-4o-mini", "openai") as generation:
        results = tel.evaluate(generation, EvaluationInput(
            "The Block Volumes SLA guarantees 99.95% monthly uptime.", CONTEXTS,
            model="gpt-4o-mini"))
    span = cap.spans.get_finished_spans()[0]
    [event] = cap.events()
    record = event.log_record
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    assert dict(record.attributes or {}) == {
        semconv.GEN_AI_EVALUATION_NAME: "groundedness",
        semconv.GEN_AI_EVALUATION_SCORE_VALUE: 0.0,
        semconv.GEN_AI_EVALUATION_SCORE_LABEL: UNSUPPORTED,
        semconv.GEN_AI_EVALUATION_EXPLANATION:
            "0 of 1 claims supported; unsupported: changed or unknown number/name",
    }
    assert results == [EvaluationResult("groundedness", 0.0, UNSUPPORTED, record.attributes[
        semconv.GEN_AI_EVALUATION_EXPLANATION])]
    [(attributes, point)] = cap.points(semconv.METRIC_EVALUATION_SCORE)
    assert attributes == {
        semconv.GEN_AI_EVALUATION_NAME: "groundedness",
        semconv.GEN_AI_EVALUATION_SCORE_LABEL: UNSUPPORTED,
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.TENANT_ID: "acme",
    }
    assert (point.count, point.sum) == (1, 0.0)


def test_later_evaluation_carries_the_response_id_and_no_span(cap: EvalCapture) -> None:
    tel = cap.telemetry
    with tel.generation("gpt-4o-mini", "openai"):  # a span current elsewhere: not the parent
        tel.evaluate("chatcmpl-123", EvaluationInput(
            "By default each project can create up to 17 buckets in Object Storage.",
            CONTEXTS))
    [event] = cap.events()
    assert event.log_record.attributes[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-123"
    assert (event.log_record.trace_id, event.log_record.span_id) == (0, 0)
    [(attributes, point)] = cap.points(semconv.METRIC_EVALUATION_SCORE)
    assert semconv.TENANT_ID not in attributes and point.sum == 1.0


def test_a_failing_evaluator_gives_an_error_result_and_others_still_run(
    cap: EvalCapture,
) -> None:
    class Broken:
        name = "toxicity"

        def evaluate(self, data: EvaluationInput) -> EvaluationResult:
            raise TimeoutError("model down")

    class Custom:
        name = "politeness"

        def evaluate(self, data: EvaluationInput) -> EvaluationResult:
            return EvaluationResult(self.name, 0.25, "rude", "says 'no'")

    assert isinstance(Custom(), Evaluator)
    results = cap.telemetry.evaluate(None, EvaluationInput("No."), [Broken(), Custom()])
    assert results == [EvaluationResult("toxicity", error_type="TimeoutError"),
                       EvaluationResult("politeness", 0.25, "rude", "says 'no'")]
    broken, custom = (dict(e.log_record.attributes or {}) for e in cap.events())
    assert broken == {semconv.GEN_AI_EVALUATION_NAME: "toxicity",
                      semconv.ERROR_TYPE: "TimeoutError"}
    # A custom evaluator's explanation may quote content: not exported without capture.
    assert semconv.GEN_AI_EVALUATION_EXPLANATION not in custom
    assert custom[semconv.GEN_AI_EVALUATION_SCORE_VALUE] == 0.25
    # Only scored results reach the histogram.
    assert [a[semconv.GEN_AI_EVALUATION_NAME]
            for a, _ in cap.points(semconv.METRIC_EVALUATION_SCORE)] == ["politeness"]


def test_custom_explanation_is_exported_with_content_capture() -> None:
    capture = EvalCapture(capture_content=True)
    try:
        class Custom:
            name = "politeness"

            def evaluate(self, data: EvaluationInput) -> EvaluationResult:
                return EvaluationResult(self.name, 1.0, "polite", "says please")

        capture.telemetry.evaluate(None, EvaluationInput("Yes please."), [Custom()])
        [event] = capture.events()
        assert event.log_record.attributes[semconv.GEN_AI_EVALUATION_EXPLANATION] == \
            "says please"
    finally:
        capture.shutdown()


def test_scores_out_of_range_are_errors(cap: EvalCapture) -> None:
    class Sloppy:
        name = "sloppy"

        def evaluate(self, data: EvaluationInput) -> EvaluationResult:
            return EvaluationResult(self.name, 7.0, "great")

    assert cap.telemetry.evaluate(None, EvaluationInput("x"), [Sloppy()]) == [
        EvaluationResult("sloppy", error_type="score_out_of_range")]
    assert cap.points(semconv.METRIC_EVALUATION_SCORE) == []


def test_tenants_on_the_metric_are_capped() -> None:
    capture = EvalCapture(max_tenants=1)
    try:
        for tenant in ("acme", "globex"):
            with capture.telemetry.tenant(tenant):
                capture.telemetry.evaluate(None, EvaluationInput("", CONTEXTS))
        tenants = sorted(a[semconv.TENANT_ID]
                         for a, _ in capture.points(semconv.METRIC_EVALUATION_SCORE))
        assert tenants == [semconv.TENANT_OVERFLOW, "acme"]
    finally:
        capture.shutdown()


def test_module_level_evaluate_uses_the_current_telemetry(cap: EvalCapture) -> None:
    from otel_ml.telemetry import set_current

    previous = set_current(cap.telemetry)
    try:
        otel_ml.evaluate(None, EvaluationInput("", CONTEXTS))
    finally:
        set_current(previous)
    assert len(cap.events()) == 1


def test_configure_uses_the_callers_logger_provider_and_sets_no_global() -> None:
    from opentelemetry import _logs
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    before = _logs.get_logger_provider()
    mine = LoggerProvider()
    tel = otel_ml.configure(tracer_provider=TracerProvider(), meter_provider=MeterProvider(),
                            logger_provider=mine)
    try:
        assert tel.logger_provider is mine
        assert _logs.get_logger_provider() is before
    finally:
        tel.shutdown()
    # Not shut down by otel-ml: a record emitted now still reaches its processor.
    seen: list[object] = []

    class Keep(SimpleLogRecordProcessor):
        def on_emit(self, log_record: object) -> None:  # type: ignore[override]
            seen.append(log_record)

    mine.add_log_record_processor(Keep(InMemoryLogRecordExporter()))
    mine.get_logger("after").emit(body="still open")
    assert len(seen) == 1


def test_the_embedded_default_writes_events_as_otlp_json_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from opentelemetry import metrics, trace

    fresh_globals(monkeypatch, tmp_path)
    tel = otel_ml.configure(service_name="rag-api", flush_on_sigterm=False)
    try:
        from opentelemetry import _logs

        assert _logs.get_logger_provider() is tel.logger_provider  # otel-ml owns all three
        with tel.generation("gpt-4o-mini", "openai") as generation:
            tel.evaluate(generation, EvaluationInput("", CONTEXTS))
            span_id = format(trace.get_current_span().get_span_context().span_id, "016x")
    finally:
        tel.shutdown()
        import atexit

        atexit.unregister(tel.shutdown)
    assert metrics.get_meter_provider() is tel.meter_provider
    [path] = tmp_path.glob("logs-rag-api-*.jsonl")
    [line] = path.read_text().splitlines()
    resource_logs = json.loads(line)["resourceLogs"][0]
    [record] = resource_logs["scopeLogs"][0]["logRecords"]
    assert record["eventName"] == "gen_ai.evaluation.result"
    assert record["spanId"] == span_id
    assert {a["key"]: a["value"] for a in record["attributes"]}[
        semconv.GEN_AI_EVALUATION_SCORE_LABEL] == {"stringValue": SUPPORTED}
    service = {a["key"]: a["value"] for a in resource_logs["resource"]["attributes"]}
    assert service["service.name"] == {"stringValue": "rag-api"}
