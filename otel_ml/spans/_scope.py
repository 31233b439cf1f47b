"""The lifecycle every otel-ml span shares: start it, make it current for a
``with`` block, record an application exception, and end it exactly once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._redaction import record_exception
from otel_ml._safety import guard
from otel_ml.cardinality import CardinalityCap
from otel_ml.content import ContentPolicy
from otel_ml.metrics import Instruments
from otel_ml.pricing import PriceTable
from otel_ml.spans._validate import describe, error_type
from otel_ml.tenancy import TenantCap, current_tenant

_Scope = TypeVar("_Scope", bound="SpanScope")

# Distinct request models kept on generation metrics; later ones fold into
# LABEL_OVERFLOW there (spans always carry the real name, and cost uses it).
MAX_METRIC_MODELS = 100


@dataclass
class Recorder:
    """What every span needs from its :class:`otel_ml.Telemetry`."""

    tracer: Tracer
    instruments: Instruments
    tenants: TenantCap
    prices: PriceTable
    content: ContentPolicy
    # Model names on generation metrics: like tenants, a client may choose them
    # (an OpenAI-compatible gateway passes them through), and each is a series.
    models: CardinalityCap = field(
        default_factory=lambda: CardinalityCap(MAX_METRIC_MODELS, semconv.LABEL_OVERFLOW)
    )

    def tenant_attribute(self, attributes: dict[str, AttributeValue]) -> None:
        """Add the capped tenant id of the current context to metric attributes."""
        folded = self.tenants.fold_tenant(current_tenant())
        if folded is not None:
            attributes[semconv.TENANT_ID] = folded


class SpanScope:
    """A span made current for the duration of a ``with`` block."""

    _span: Span | None = None

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._token: object | None = None
        self._t0 = 0.0
        self._ended = threading.Lock()  # acquired once, by the first _end()

    def _start_span(self, name: str, kind: SpanKind, attributes: dict[str, AttributeValue]) -> None:
        tenant_id = current_tenant()
        if tenant_id is not None:
            attributes[semconv.TENANT_ID] = tenant_id
        self._span = self._recorder.tracer.start_span(name, kind=kind, attributes=attributes)
        self._token = context.attach(trace.set_span_in_context(self._span))
        self._t0 = time.perf_counter()

    def _detach(self) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            context.detach(token)  # type: ignore[arg-type]

    def _end(self, exc: BaseException | None) -> None:
        """Record everything and end the span; runs at most once.

        Only ``Exception`` marks a failure, as in OpenTelemetry itself:
        ``GeneratorExit`` (a client went away), ``KeyboardInterrupt`` and
        task cancellation end the span without calling it an error.
        """
        if self._span is None or not self._ended.acquire(blocking=False):
            return
        if not isinstance(exc, Exception):
            exc = None
        span = self._span
        try:
            if exc is not None:
                record_exception(span, exc)  # message and stack trace redacted
                span.set_status(Status(StatusCode.ERROR, describe(exc)))
                span.set_attribute(semconv.ERROR_TYPE, error_type(exc))
            # Current while metrics are recorded, so their exemplars point at
            # this span, also when a stream ends it after the with-block.
            token = context.attach(trace.set_span_in_context(span))
            try:
                self._finish(span, exc)
            finally:
                context.detach(token)
        finally:
            span.end()

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        """Set final attributes and record metrics (subclasses)."""

    def __enter__(self: _Scope) -> _Scope:
        with guard(f"{type(self).__name__} start"):
            self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with guard(f"{type(self).__name__} end"):
            self._detach()
        with guard(f"{type(self).__name__} end"):
            self._exit(exc)

    async def __aenter__(self: _Scope) -> _Scope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _start(self) -> None:
        raise NotImplementedError

    def _exit(self, exc: BaseException | None) -> None:
        self._end(exc)
