"""What an instrumented call changes in the client's request path: the
requests carry the generation span's trace context, and the client's own
call span (``anthropic.messages.create``, anthropic >= 2.x) is not started.

Both are keyed on :data:`OWNED`, set only while otel-ml runs a call, so the
client's other methods and uninstrumented calls keep the client's tracing.
Why the client's span is suppressed rather than enriched: docs/instrument-anthropic.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context

from otel_ml._safety import guard


class Owned:
    """An API call that otel-ml runs. ``context`` holds the generation span
    (and the baggage) to send; None while a ``stream()`` helper is only built."""

    __slots__ = ("context",)

    def __init__(self, context: Context | None) -> None:
        self.context = context


OWNED: ContextVar[Owned | None] = ContextVar("otel_ml_anthropic_call", default=None)


@contextmanager
def owning(context: Context | None) -> Iterator[None]:
    """Mark the call run inside as otel-ml's."""
    token = OWNED.set(Owned(context))
    try:
        yield
    finally:
        OWNED.reset(token)


def suppress_client_span(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps ``anthropic._base_client.start_api_call_span``: None, which the
    client reads as "no span for this call", when otel-ml runs the call."""
    if OWNED.get() is not None:
        return None
    return wrapped(*args, **kwargs)


def inject_trace_context(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps ``BaseClient._build_request``: each attempt of an otel-ml call
    carries ``traceparent``/``tracestate``/``baggage`` from the registered
    propagator, in place of any already there, as HTTP instrumentations do.
    The request body is not touched."""
    request = wrapped(*args, **kwargs)
    owned = OWNED.get()
    if owned is not None and owned.context is not None:
        with guard("anthropic trace context"):
            propagate.inject(request.headers, context=owned.context)
    return request
