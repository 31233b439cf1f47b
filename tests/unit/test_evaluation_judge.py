"""Judge mode of the built-in evaluators: the real ``openai`` client over a mock
transport answering in OpenAI's chat.completions wire format, with canned judge
replies (well-formed, malformed, refusals, scores out of range). The judge's
call is its own generation span, billed to the evaluation tenant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from evaluation_support import EvalCapture

import otel_ml
from otel_ml import semconv
from otel_ml.evaluation import (
    DEFAULT_JUDGE_TENANT,
    ERROR_INVALID_REPLY,
    ERROR_OUT_OF_RANGE,
    ERROR_REFUSAL,
    SUPPORTED,
    UNSUPPORTED,
    AnswerRelevance,
    EvaluationInput,
    EvaluationResult,
    Groundedness,
    parse_reply,
)
from otel_ml.evaluation._builtin import GROUNDEDNESS_INSTRUCTION

MODEL = "gpt-4o-mini"
DATA = EvaluationInput(
    answer="The Object Storage SLA guarantees 99.99% monthly uptime.",
    contexts=("The Object Storage SLA guarantees 99.95% monthly uptime.",),
    question="What uptime does the Object Storage SLA guarantee?",
    model="sim-gpt",
)


def completion(content: str | None, refusal: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-judge-1", "object": "chat.completion", "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content,
                                             "refusal": refusal, "annotations": []},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
        "service_tier": "default", "system_fingerprint": "fp_06737a9306",
    }


class Judge:
    """The provider: replies with canned content and keeps the request bodies."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self.bodies: list[dict[str, Any]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        return self.response

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="test", base_url="https://api.openai.test/v1", max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(self.handle)))


def judged(content: str | None, refusal: str | None = None) -> tuple[EvaluationResult, Judge]:
    judge = Judge(httpx2.Response(200, json=completion(content, refusal)))
    result = Groundedness(judge=judge.client(), judge_model=MODEL).evaluate(DATA)
    return result, judge


@pytest.fixture
def cap() -> Iterator[EvalCapture]:
    capture = EvalCapture()
    yield capture
    capture.shutdown()


def test_well_formed_json_verdict_and_the_prompt_sent() -> None:
    reply = json.dumps({"score": 0.4, "label": "unsupported",
                        "explanation": "99.99% is not in the context"})
    result, judge = judged(reply)
    assert result == EvaluationResult("groundedness", 0.4, UNSUPPORTED,
                                      "99.99% is not in the context")
    [body] = judge.bodies
    assert body["model"] == MODEL and body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].startswith(GROUNDEDNESS_INSTRUCTION)
    assert '"score"' in system["content"]
    assert user["content"] == (
        "QUESTION:\nWhat uptime does the Object Storage SLA guarantee?\n\n"
        "CONTEXT:\nThe Object Storage SLA guarantees 99.95% monthly uptime.\n\n"
        "ANSWER:\nThe Object Storage SLA guarantees 99.99% monthly uptime.")


@pytest.mark.parametrize(("reply", "score", "label"), [
    ("1", 1.0, SUPPORTED),                       # a bare number is a verdict
    (" 0.5\n", 0.5, UNSUPPORTED),                # groundedness: anything short of 1
    ('```json\n{"score": 1.0}\n```', 1.0, SUPPORTED),  # fenced JSON, label from score
])
def test_other_well_formed_replies(reply: str, score: float, label: str) -> None:
    result, _ = judged(reply)
    assert (result.score, result.label, result.error_type) == (score, label, None)


@pytest.mark.parametrize(("reply", "refusal", "error"), [
    ("The answer is mostly grounded, I'd say 0.8.", None, ERROR_INVALID_REPLY),
    ('{"score": "high"}', None, ERROR_INVALID_REPLY),
    ('{"score": true}', None, ERROR_INVALID_REPLY),
    ('{"score": 0.9, "label": "great"}', None, ERROR_INVALID_REPLY),
    ("[0.9]", None, ERROR_INVALID_REPLY),
    ('{"score": 0.9', None, ERROR_INVALID_REPLY),  # truncated by max_tokens
    ("1.5", None, ERROR_OUT_OF_RANGE),
    ("85", None, ERROR_OUT_OF_RANGE),            # a percentage is not a [0, 1] score
    ('{"score": -0.1}', None, ERROR_OUT_OF_RANGE),
    ('{"score": NaN}', None, ERROR_INVALID_REPLY),
    (None, "I can't help with grading this.", ERROR_REFUSAL),
    ("", None, ERROR_REFUSAL),
    ("I'm sorry, but I can't assist with that.", None, ERROR_INVALID_REPLY),
])
def test_bad_replies_are_errors_never_guessed_scores(
    cap: EvalCapture, reply: str | None, refusal: str | None, error: str
) -> None:
    judge = Judge(httpx2.Response(200, json=completion(reply, refusal)))
    evaluator = Groundedness(judge=judge.client(), judge_model=MODEL)
    [result] = cap.telemetry.evaluate("chatcmpl-answer", DATA, [evaluator])
    assert result == EvaluationResult("groundedness", error_type=error)
    [event] = cap.events()
    assert dict(event.log_record.attributes or {}) == {
        semconv.GEN_AI_EVALUATION_NAME: "groundedness", semconv.ERROR_TYPE: error,
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-answer"}
    assert cap.points(semconv.METRIC_EVALUATION_SCORE) == []


def test_a_failing_judge_call_is_an_error_result(cap: EvalCapture) -> None:
    judge = Judge(httpx2.Response(500, json={"error": {
        "message": "The server had an error", "type": "server_error", "param": None,
        "code": None}}))
    evaluator = AnswerRelevance(judge=judge.client(), judge_model=MODEL)
    assert cap.telemetry.evaluate(None, DATA, [evaluator]) == [
        EvaluationResult("answer_relevance", error_type="InternalServerError")]


def test_parse_reply_is_strict_on_its_own() -> None:
    rubric = Groundedness.rubric
    assert parse_reply('{"score": 0, "label": "unsupported"}', rubric) == (0.0, UNSUPPORTED, None)
    with pytest.raises(Exception, match="outside"):
        parse_reply("2", rubric)


def test_judge_explanation_is_content_exported_only_with_capture() -> None:
    reply = json.dumps({"score": 0.0, "explanation": "99.99% vs 99.95%"})
    for capture_content, exported in ((False, False), (True, True)):
        capture = EvalCapture(capture_content=capture_content)
        try:
            judge = Judge(httpx2.Response(200, json=completion(reply)))
            capture.telemetry.evaluate(
                None, DATA, [Groundedness(judge=judge.client(), judge_model=MODEL)])
            [event] = capture.events()
            attributes = event.log_record.attributes or {}
            assert (semconv.GEN_AI_EVALUATION_EXPLANATION in attributes) is exported
        finally:
            capture.shutdown()


def test_judge_call_is_a_generation_span_billed_to_the_evaluation_tenant(
    cap: EvalCapture,
) -> None:
    judge = Judge(httpx2.Response(200, json=completion('{"score": 1}')))
    client = judge.client()
    otel_ml.instrument_openai(client, telemetry=cap.telemetry)
    try:
        with cap.telemetry.tenant("acme"):
            cap.telemetry.evaluate(None, DATA, [Groundedness(judge=client, judge_model=MODEL)])
    finally:
        otel_ml.uninstrument_openai(client)
    [span] = [s for s in cap.spans.get_finished_spans() if s.name == f"chat {MODEL}"]
    attributes = span.attributes or {}
    assert attributes[semconv.TENANT_ID] == DEFAULT_JUDGE_TENANT
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] > 0
    costs = {a.get(semconv.TENANT_ID): p.value
             for a, p in cap.points(semconv.METRIC_COST)}
    assert set(costs) == {DEFAULT_JUDGE_TENANT}  # nothing billed to acme
    [(scored, _)] = cap.points(semconv.METRIC_EVALUATION_SCORE)
    assert scored[semconv.TENANT_ID] == "acme"  # the verdict is about acme's answer


def test_judge_tenant_none_bills_the_evaluated_tenant(cap: EvalCapture) -> None:
    judge = Judge(httpx2.Response(200, json=completion('{"score": 1}')))
    client = judge.client()
    otel_ml.instrument_openai(client, telemetry=cap.telemetry)
    try:
        with cap.telemetry.tenant("acme"):
            cap.telemetry.evaluate(None, DATA, [
                Groundedness(judge=client, judge_model=MODEL, judge_tenant=None)])
    finally:
        otel_ml.uninstrument_openai(client)
    costs = {a.get(semconv.TENANT_ID) for a, _ in cap.points(semconv.METRIC_COST)}
    assert costs == {"acme"}


def test_judge_needs_a_model() -> None:
    with pytest.raises(ValueError, match="judge_model"):
        Groundedness(judge=object())
