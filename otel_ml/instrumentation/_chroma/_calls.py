"""The wrappers around the collection methods: each instrumented call opens
its span (a retrieval span for ``query``, a database span otherwise) on the
telemetry of its client, runs the real method inside it and reads the
result. otel-ml's faults are logged and the call runs as if uninstrumented;
Chroma's exceptions propagate unchanged, recorded on the span."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from otel_ml import semconv
from otel_ml._safety import guard, report
from otel_ml.instrumentation._chroma import _registry
from otel_ml.instrumentation._chroma._db import db_attributes
from otel_ml.instrumentation._chroma._distance import space_of
from otel_ml.instrumentation._chroma._metrics import operation_duration
from otel_ml.instrumentation._chroma._operation import OperationSpan, record_count
from otel_ml.instrumentation._chroma._query import QuerySpan, query_text, top_k
from otel_ml.telemetry import current

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Span = QuerySpan | OperationSpan

# Set while an instrumented call runs: a call that reaches a second wrapper
# (a subclass method calling the base one) makes one span, not two.
_in_call: ContextVar[bool] = ContextVar("otel_ml_chroma_in_call", default=False)

# Per wrapped method: each parameter's position and default, to read an argument
# however it was passed (Signature.bind costs ~20 us a call; this, ~1 us).
_parameters: dict[Any, tuple[dict[str, int], dict[str, Any]]] = {}


def sync_call(operation: str) -> Wrapper:
    """The wrapt wrapper of a sync collection method."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        span = _span(operation, wrapped, instance, args, kwargs)
        if span is None:
            return wrapped(*args, **kwargs)
        token = _in_call.set(True)
        try:
            with span:
                result = wrapped(*args, **kwargs)
                with guard(f"chroma {operation} result"):
                    span.read(result)
                return result
        finally:
            _in_call.reset(token)

    return wrapper


def async_call(operation: str) -> Wrapper:
    """The wrapt wrapper of an ``AsyncCollection`` method: returns a coroutine."""

    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        span = _span(operation, wrapped, instance, args, kwargs)
        if span is None:
            return await wrapped(*args, **kwargs)
        token = _in_call.set(True)
        try:
            async with span:
                result = await wrapped(*args, **kwargs)
                with guard(f"chroma {operation} result"):
                    span.read(result)
                return result
        finally:
            _in_call.reset(token)

    return wrapper


def _span(
    operation: str,
    wrapped: Callable[..., Any],
    collection: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Span | None:
    """The span of one call, not yet started; None when the call is not
    instrumented (its client is not, or it runs inside another instrumented
    call) or when otel-ml failed."""
    if _in_call.get():
        return None
    try:
        options = _registry.options_for(collection)
        if options is None:
            return None
        telemetry = options.telemetry or current()
        recorder, duration = telemetry._recorder, operation_duration(telemetry.meter)
        name = str(collection.name)
        attributes = db_attributes(collection, operation)
        if operation == semconv.DB_OP_QUERY:
            return QuerySpan(
                recorder,
                name,
                attributes,
                duration,
                space_of(collection),
                query=query_text(_argument(wrapped, args, kwargs, "query_texts")),
                top_k=top_k(_argument(wrapped, args, kwargs, "n_results")),
            )
        ids = None if operation == semconv.DB_OP_GET else _argument(wrapped, args, kwargs, "ids")
        count = record_count(ids)
        return OperationSpan(recorder, operation, name, attributes, duration, record_count=count)
    except Exception as exc:  # telemetry never breaks the app
        report(f"chroma {operation} span", exc)
        return None


def _argument(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> Any:
    """One argument of the call by name, or its default (``n_results``: 10)."""
    if name in kwargs:
        return kwargs[name]
    key = getattr(wrapped, "__func__", wrapped)
    parameters = _parameters.get(key)
    if parameters is None:
        signature = inspect.signature(wrapped)  # of the bound method: no self
        positions = {param: index for index, param in enumerate(signature.parameters)}
        defaults = {
            param: value.default
            for param, value in signature.parameters.items()
            if value.default is not inspect.Parameter.empty
        }
        parameters = _parameters.setdefault(key, (positions, defaults))
    positions, defaults = parameters
    index = positions.get(name)
    if index is not None and index < len(args):
        return args[index]
    return defaults.get(name)
