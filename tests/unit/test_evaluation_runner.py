"""The off-request-path runner: submit() returns at once, a bounded queue with
drops counted, sampling, a concurrency limit, a timeout per evaluator, and the
context (tenant, span) of the submitting request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from evaluation_support import EvalCapture

from otel_ml import semconv
from otel_ml.evaluation import EvaluationInput, EvaluationResult, Groundedness

WAIT = 30.0  # generous: the machine is shared; no test asserts a duration
DATA = EvaluationInput("By default each project can create up to 17 buckets.",
                       ("By default each project can create up to 17 buckets.",),
                       model="gpt-4o-mini")


class Gate:
    """An evaluator that blocks until released, counting calls in flight."""

    name = "gate"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = 0

    def evaluate(self, data: EvaluationInput) -> EvaluationResult:
        with self.lock:
            self.in_flight += 1
            self.started += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.release.wait(WAIT)
            return EvaluationResult(self.name, 1.0, "ok")
        finally:
            with self.lock:
                self.in_flight -= 1

    def wait_started(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.started < count:
            assert time.monotonic() < deadline, f"{self.started} of {count} started"
            time.sleep(0.01)


def dropped(cap: EvalCapture) -> dict[str, int]:
    return {a[semconv.ERROR_TYPE]: p.value
            for a, p in cap.points(semconv.METRIC_EVALUATION_DROPPED)}


@pytest.fixture
def cap() -> Iterator[EvalCapture]:
    capture = EvalCapture()
    yield capture
    capture.shutdown()


def test_results_carry_the_submitting_requests_tenant_and_span(cap: EvalCapture) -> None:
    tel = cap.telemetry
    runner = tel.evaluations([Groundedness()])
    with tel.tenant("acme"), tel.generation("gpt-4o-mini", "openai") as generation:
        assert runner.submit(generation, DATA) is True
    assert runner.flush(WAIT)
    span = cap.spans.get_finished_spans()[0]
    [event] = cap.events()
    assert event.log_record.span_id == span.context.span_id
    assert event.log_record.attributes[semconv.GEN_AI_EVALUATION_SCORE_LABEL] == "supported"
    [(attributes, point)] = cap.points(semconv.METRIC_EVALUATION_SCORE)
    assert attributes[semconv.TENANT_ID] == "acme" and point.count == 1


def test_a_full_queue_drops_and_counts(cap: EvalCapture) -> None:
    gate = Gate()
    runner = cap.telemetry.evaluations([gate], max_queue=2, concurrency=1, timeout=WAIT)
    assert runner.submit(None, DATA)
    gate.wait_started(1)  # the worker holds the first; the queue is empty again
    accepted = [runner.submit(None, DATA) for _ in range(5)]
    assert accepted == [True, True, False, False, False]
    assert dropped(cap) == {"queue_full": 3}
    gate.release.set()
    assert runner.flush(WAIT)
    assert len(cap.events()) == 3


def test_at_most_concurrency_evaluations_run_at_once(cap: EvalCapture) -> None:
    gate = Gate()
    runner = cap.telemetry.evaluations([gate], concurrency=2, timeout=WAIT)
    for _ in range(6):
        assert runner.submit(None, DATA)
    gate.wait_started(2)
    time.sleep(0.2)  # room for a third to start, were the limit not enforced
    assert (gate.started, gate.in_flight) == (2, 2)
    gate.release.set()
    assert runner.flush(WAIT)
    assert gate.max_in_flight == 2 and gate.started == 6
    assert len(cap.events()) == 6


def test_sampling(cap: EvalCapture) -> None:
    none = cap.telemetry.evaluations([Groundedness()], sample_rate=0.0)
    assert [none.submit(None, DATA) for _ in range(20)] == [False] * 20
    some = cap.telemetry.evaluations([Groundedness()], sample_rate=0.5)
    some._random.seed(7)
    accepted = [some.submit(None, DATA) for _ in range(200)]
    assert some.flush(WAIT)
    assert 0 < sum(accepted) < 200
    assert len(cap.events()) == sum(accepted)
    assert dropped(cap) == {}  # sampled out is not dropped


def test_an_evaluator_past_its_timeout_gives_a_timeout_result(cap: EvalCapture) -> None:
    gate = Gate()
    runner = cap.telemetry.evaluations([gate, Groundedness()], concurrency=1, timeout=0.1)
    assert runner.submit("chatcmpl-1", DATA)
    deadline = time.monotonic() + WAIT
    while not cap.events():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    [event] = cap.events()  # before the late call returns
    assert dict(event.log_record.attributes or {}) == {
        semconv.GEN_AI_EVALUATION_NAME: "gate", semconv.ERROR_TYPE: "timeout",
        semconv.GEN_AI_RESPONSE_ID: "chatcmpl-1"}
    gate.release.set()
    assert runner.flush(WAIT)
    names = [e.log_record.attributes[semconv.GEN_AI_EVALUATION_NAME] for e in cap.events()]
    assert names == ["gate", "groundedness"]  # the late verdict is discarded


def test_shutdown_counts_what_is_left_and_refuses_more(cap: EvalCapture) -> None:
    gate = Gate()
    runner = cap.telemetry.evaluations([gate], concurrency=1, timeout=WAIT)
    for _ in range(4):
        runner.submit(None, DATA)
    gate.wait_started(1)
    threading.Timer(0.3, gate.release.set).start()
    assert runner.shutdown(timeout=0.05) is False  # the first is still running
    assert dropped(cap) == {"shutdown": 3}
    assert runner.submit(None, DATA) is False
    assert dropped(cap) == {"shutdown": 4}


def test_telemetry_shutdown_finishes_its_runners() -> None:
    capture = EvalCapture()
    runner = capture.telemetry.evaluations([Groundedness()])
    runner.submit(None, DATA)
    capture.telemetry.shutdown()
    assert len(capture.events()) == 1
    assert runner.submit(None, DATA) is False


def test_bad_settings_fall_back_to_the_defaults(cap: EvalCapture) -> None:
    runner = cap.telemetry.evaluations(sample_rate=1.5)  # telemetry never raises
    assert (runner.sample_rate, runner.timeout, len(runner._workers)) == (1.0, 30.0, 2)
    with pytest.raises(ValueError, match="max_queue"):  # the class itself is strict
        type(runner)(cap.telemetry._evaluation_recorder(), concurrency=0)
