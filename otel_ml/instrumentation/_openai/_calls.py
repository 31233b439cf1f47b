"""The wrappers around the openai resource methods: each call opens the span
that ``otel_ml.generation()`` opens, with the same telemetry, and reads the
provider's response into it (a stream through a proxy, see ``_stream``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from openai import AsyncStream, Stream

from otel_ml import semconv
from otel_ml._safety import guard, report
from otel_ml.instrumentation._endpoint import server_of
from otel_ml.instrumentation._openai._api import Api
from otel_ml.instrumentation._openai._request import request_kwargs
from otel_ml.instrumentation._openai._stream import (
    AsyncStreamProxy,
    StreamManagerProxy,
    StreamProxy,
)
from otel_ml.spans._generation import GenerationSpan
from otel_ml.telemetry import Telemetry, current

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

# Set while an instrumented call runs: a call that reaches a second wrapper
# (one client instrumented on its own and globally) makes one span, not two.
_in_call: ContextVar[bool] = ContextVar("otel_ml_openai_in_call", default=False)


@dataclass(frozen=True)
class Options:
    """What ``instrument_openai()`` was given."""

    telemetry: Telemetry | None = None  # None: otel_ml's current telemetry, per call
    include_usage: bool = False  # add stream_options.include_usage to chat streams


def sync_call(api: Api, options: Options) -> Wrapper:
    """The wrapt wrapper of a sync resource method (``create``)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if _in_call.get():
            return wrapped(*args, **kwargs)
        span = _span(api, options, instance, kwargs)
        if span is None:
            return wrapped(*args, **kwargs)
        token = _in_call.set(True)
        try:
            with span:
                result = wrapped(*args, **_kwargs(api, options, instance, kwargs))
                return _result(api, span, result, Stream, StreamProxy)
        finally:
            _in_call.reset(token)

    return wrapper


def async_call(api: Api, options: Options) -> Wrapper:
    """The wrapt wrapper of an async resource method: returns a coroutine."""

    async def wrapper(
        wrapped: Callable[..., Awaitable[Any]],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if _in_call.get():
            return await wrapped(*args, **kwargs)
        span = _span(api, options, instance, kwargs)
        if span is None:
            return await wrapped(*args, **kwargs)
        token = _in_call.set(True)
        try:
            with span:
                result = await wrapped(*args, **_kwargs(api, options, instance, kwargs))
                return _result(api, span, result, AsyncStream, AsyncStreamProxy)
        finally:
            _in_call.reset(token)

    return wrapper


def stream_manager(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The wrapper of a ``.stream()`` helper: its request goes through the
    wrapped ``create`` (one span); its manager is proxied to end that span."""
    manager = wrapped(*args, **kwargs)
    try:
        return StreamManagerProxy(manager)
    except Exception as exc:  # telemetry never breaks the app
        report("openai stream helper", exc)
        return manager


def _span(
    api: Api, options: Options, resource: Any, kwargs: dict[str, Any]
) -> GenerationSpan | None:
    """The generation span of one call, not yet started, or None if otel-ml failed."""
    try:
        telemetry = options.telemetry or current()
        model = kwargs.get("model")
        prompt = kwargs.get(api.prompt_key)
        span = telemetry.generation(
            model if isinstance(model, str) and model else "unknown",
            provider=semconv.PROVIDER_OPENAI,
            # Only what can be read twice: a generator of messages is the SDK's to consume.
            prompt=prompt if isinstance(prompt, (str, list, tuple)) else None,
            stream=kwargs.get("stream") is True,
            operation=api.operation,
        )
        span.server(*server_of(getattr(resource, "_client", None)))
        return span
    except Exception as exc:
        report(f"openai {api.name} span", exc)
        return None


def _kwargs(api: Api, options: Options, resource: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The real call's kwargs, made while the span is current (trace headers)."""
    with guard(f"openai {api.name} request"):
        add_usage = options.include_usage and api.takes_stream_options
        return request_kwargs(kwargs, resource, add_usage)
    return kwargs


def _result(
    api: Api, span: GenerationSpan, result: Any, stream_type: type, proxy_type: type
) -> Any:
    """Read a response into the span, or hand back a stream proxy that will."""
    if isinstance(result, stream_type):
        state = span.hold()
        try:
            return proxy_type(result, span, state, api)
        except Exception as exc:
            report(f"openai {api.name} stream", exc)
            span.release(state)
            return result
    with guard(f"openai {api.name} response"):
        api.read_result(span, result)
    return result
