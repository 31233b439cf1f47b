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
from otel_ml.instrumentation._chroma._operation import OperationSpan, record_count
from otel_ml.instrumentation._chroma._query import QuerySpan, query_text, top_k
from otel_ml.telemetry import current

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Span = QuerySpan | OperationSpan

# Set while an instrumented call runs: a call that reaches a second wrapper
# (a subclass method calling the base one) makes one span, not two.
_in_call: ContextVar[bool] = ContextVar("otel_ml_chroma_in_call", default=False)

# The signatures of the wrapped methods, to read arguments however they were passed.
_signatures: dict[Any, inspect.Signature] = {}


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
        recorder = (options.telemetry or current())._recorder
        arguments = _arguments(wrapped, args, kwargs)
        name = str(collection.name)
        attributes = db_attributes(collection, operation)
        if operation == semconv.DB_OP_QUERY:
            return QuerySpan(
                recorder,
                name,
                attributes,
                space_of(collection),
                query=query_text(arguments.get("query_texts")),
                top_k=top_k(arguments.get("n_results")),
            )
        count = None if operation == semconv.DB_OP_GET else record_count(arguments.get("ids"))
        return OperationSpan(recorder, operation, name, attributes, record_count=count)
    except Exception as exc:  # telemetry never breaks the app
        report(f"chroma {operation} span", exc)
        return None


def _arguments(
    wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name, defaults included (``n_results``)."""
    key = getattr(wrapped, "__func__", wrapped)
    signature = _signatures.get(key)
    if signature is None:
        signature = _signatures.setdefault(key, inspect.signature(wrapped))
    bound = signature.bind_partial(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)
