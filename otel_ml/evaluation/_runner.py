"""``Evaluations``: evaluation off the request path.

``submit()`` never blocks and never raises: it samples (``sample_rate``), then
puts the job on a bounded queue (``max_queue``); a full queue drops the job and
counts it on ``llm.evaluation.dropped{error.type="queue_full"}``. ``concurrency``
worker threads run the jobs, each evaluator under ``timeout`` seconds: past it
the result is an error (``error.type="timeout"``) and the late verdict is
discarded. A timed-out call keeps its worker until it returns, so at most
``concurrency`` evaluations (judge calls) are ever in flight; give the judge
client a timeout too (the built-ins pass ``judge_timeout``). Each job runs in
the context captured at ``submit()``: the request's tenant and span.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import random
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from otel_ml.evaluation._emit import EvaluationRecorder
from otel_ml.evaluation._run import Target, default_evaluators, resolve_target, run_one
from otel_ml.evaluation._types import EvaluationInput, EvaluationResult, Evaluator

logger = logging.getLogger("otel_ml")

DROP_QUEUE_FULL: Final = "queue_full"
DROP_SHUTDOWN: Final = "shutdown"
ERROR_TIMEOUT: Final = "timeout"
_STOP: Final = object()


class _Job:
    __slots__ = ("context", "data", "target")

    def __init__(self, target: Target, data: EvaluationInput) -> None:
        self.target = target
        self.data = data
        self.context = contextvars.copy_context()


class Evaluations:
    """A background evaluation runner on one Telemetry (see the module doc).

    Use ``otel_ml.current().evaluations(...)`` or ``Telemetry.evaluations``;
    ``shutdown()`` it (or let the Telemetry's shutdown do it) to stop the
    workers.
    """

    def __init__(
        self,
        emitter: EvaluationRecorder,
        evaluators: Sequence[Evaluator] | None = None,
        *,
        sample_rate: float = 1.0,
        max_queue: int = 1000,
        concurrency: int = 2,
        timeout: float = 30.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be in [0, 1]")
        if max_queue < 1 or concurrency < 1 or not timeout > 0:
            raise ValueError("max_queue and concurrency must be >= 1, timeout > 0")
        self._emitter = emitter
        self.evaluators = list(evaluators) if evaluators is not None else default_evaluators()
        self.sample_rate = sample_rate
        self.timeout = timeout
        self._random = random.Random(seed)
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"otel-ml-evaluation-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, target: Target, data: EvaluationInput) -> bool:
        """Queue ``data`` for evaluation; True if queued, False if sampled out,
        dropped (queue full) or shut down."""
        try:
            if self._closed:
                self._emitter.dropped(DROP_SHUTDOWN)
                return False
            if self.sample_rate < 1.0 and self._random.random() >= self.sample_rate:
                return False
            with self._idle:
                self._pending += 1
            try:
                self._queue.put_nowait(_Job(target, data))
            except queue.Full:
                self._done()
                self._emitter.dropped(DROP_QUEUE_FULL)
                return False
            return True
        except Exception as exc:  # telemetry never breaks the app
            logger.debug("otel-ml: submitting an evaluation failed: %r", exc)
            return False

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued evaluation is done; False at the bound."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Finish what is queued within ``timeout``; what is left is counted as
        dropped (``error.type="shutdown"``). Stops the workers."""
        if self._closed:
            return True
        finished = self.flush(timeout)
        self._closed = True
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left += 1
                self._done()
        if left:
            self._emitter.dropped(DROP_SHUTDOWN, left)
        for _ in self._workers:
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                break
        return finished

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if not self._pending:
                self._idle.notify_all()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            try:
                job.context.run(self._run, job)
            except Exception as exc:  # pragma: no cover - _run guards itself
                logger.debug("otel-ml: evaluation job failed: %r", exc)
            finally:
                self._done()

    def _run(self, job: _Job) -> None:
        event_context, response_id = resolve_target(job.target, job.data)
        for evaluator in self.evaluators:
            result, late = self._bounded(evaluator, job.data)
            try:
                self._emitter.emit(result, context=event_context, model=job.data.model,
                                   response_id=response_id)
            except Exception as exc:
                logger.debug("otel-ml: emitting an evaluation failed: %r", exc)
            if late is not None:
                late.join()  # hold the concurrency slot until the call really ends

    def _bounded(
        self, evaluator: Evaluator, data: EvaluationInput
    ) -> tuple[EvaluationResult, threading.Thread | None]:
        """run_one under the timeout: its result, or a timeout result and the
        thread still running the call."""
        box: list[EvaluationResult] = []
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=lambda: box.append(context.run(run_one, evaluator, data)),
            name="otel-ml-evaluation-call", daemon=True,
        )
        thread.start()
        thread.join(self.timeout)
        if box:
            return box[0], None
        name = str(getattr(evaluator, "name", type(evaluator).__name__))
        return EvaluationResult(name=name, error_type=ERROR_TIMEOUT), thread
