"""The wrappers of ``messages.create`` and ``messages.stream``, sync and async.

Each call opens the span that ``otel_ml.generation()`` opens, by using it, so
spans and metrics are the context manager's, name for name. A stream keeps
the span held until the application has read, closed or dropped it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from anthropic import AsyncStream, Stream
from anthropic.types import Message
from opentelemetry import context as otel_context

from otel_ml import semconv
from otel_ml._safety import guard
from otel_ml.instrumentation._anthropic._messages import record_message, request_model
from otel_ml.instrumentation._anthropic._request import OWNED, owning
from otel_ml.instrumentation._anthropic._stream import AsyncStreamProxy, HeldCall, StreamProxy
from otel_ml.instrumentation._endpoint import server_of
from otel_ml.spans._generation import GenerationSpan
from otel_ml.telemetry import Telemetry, current

Wrapped = Callable[..., Any]


def _prompt(kwargs: Mapping[str, Any]) -> Any:
    """The messages, for content capture and a local count, only when reading
    them cannot consume them: an iterator belongs to the request body."""
    messages = kwargs.get("messages")
    return messages if isinstance(messages, (list, tuple)) else None


class CallPatch:
    """The wrappers for one scope: every client (global) or one client.

    ``enabled`` goes False on uninstrument, so a wrapper that someone still
    holds (a bound method taken earlier) passes calls through untouched.
    """

    def __init__(self, telemetry: Telemetry | None) -> None:
        self.telemetry = telemetry
        self.enabled = True

    def _skip(self) -> bool:
        # A call already run by another otel-ml wrapper (global + per-client): once only.
        return not self.enabled or OWNED.get() is not None

    def _start(
        self, resource: Any, kwargs: Mapping[str, Any], stream: bool
    ) -> GenerationSpan | None:
        with guard("anthropic call start"):
            telemetry = self.telemetry or current()
            g = telemetry.generation(
                request_model(kwargs),
                provider=semconv.PROVIDER_ANTHROPIC,
                prompt=_prompt(kwargs),
                stream=stream,
                operation=semconv.OP_CHAT,
            )
            g.server(*server_of(getattr(resource, "_client", None)))
            return g
        return None

    # --- messages.create ----------------------------------------------------
    def create(
        self, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._skip():
            return wrapped(*args, **kwargs)
        g = self._start(instance, kwargs, kwargs.get("stream") is True)
        if g is None:
            return wrapped(*args, **kwargs)
        with g:
            with owning(otel_context.get_current()):
                result = wrapped(*args, **kwargs)
            if isinstance(result, Stream):
                return StreamProxy(result, HeldCall(g))
            _record(g, result)
            return result

    async def acreate(
        self, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._skip():
            return await wrapped(*args, **kwargs)
        g = self._start(instance, kwargs, kwargs.get("stream") is True)
        if g is None:
            return await wrapped(*args, **kwargs)
        with g:
            with owning(otel_context.get_current()):
                result = await wrapped(*args, **kwargs)
            if isinstance(result, AsyncStream):
                return AsyncStreamProxy(result, HeldCall(g))
            _record(g, result)
            return result

    # --- messages.stream (the helper) -----------------------------------------
    def stream(
        self, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._skip():
            return wrapped(*args, **kwargs)
        with owning(None):  # an inner otel-ml wrapper leaves this call to us
            manager = wrapped(*args, **kwargs)
        return StreamManagerProxy(manager, lambda: self._start(instance, kwargs, True))

    def astream(
        self, wrapped: Wrapped, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._skip():
            return wrapped(*args, **kwargs)
        with owning(None):
            manager = wrapped(*args, **kwargs)
        return AsyncStreamManagerProxy(manager, lambda: self._start(instance, kwargs, True))


def _record(g: GenerationSpan, result: Any) -> None:
    # Only a parsed Message: a raw or streaming-response wrapper is the app's to read.
    if isinstance(result, Message):
        with guard("anthropic response"):
            record_message(g, result)


def _proxy_raw_stream(message_stream: Any, g: GenerationSpan, proxy: type[Any]) -> None:
    """Route the helper's reading (iteration, ``text_stream``,
    ``get_final_message()``, ``close()``) through a proxy of its raw stream:
    every way the helper reads the events goes through that one object."""
    with guard("anthropic stream helper"):
        raw = message_stream._raw_stream
        message_stream._raw_stream = proxy(raw, HeldCall(g))


class StreamManagerProxy(wrapt.ObjectProxy[Any]):
    """``MessageStreamManager``: the request, and so the span, starts on ``__enter__``."""

    def __init__(self, manager: Any, start: Callable[[], GenerationSpan | None]) -> None:
        super().__init__(manager)
        self._self_start = start

    def __enter__(self) -> Any:
        g = self._self_start()
        if g is None:
            return self.__wrapped__.__enter__()
        with g:
            with owning(otel_context.get_current()):
                message_stream = self.__wrapped__.__enter__()
            _proxy_raw_stream(message_stream, g, StreamProxy)
            return message_stream

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)


class AsyncStreamManagerProxy(wrapt.ObjectProxy[Any]):
    """``AsyncMessageStreamManager``: the request, and the span, start on ``__aenter__``."""

    def __init__(self, manager: Any, start: Callable[[], GenerationSpan | None]) -> None:
        super().__init__(manager)
        self._self_start = start

    async def __aenter__(self) -> Any:
        g = self._self_start()
        if g is None:
            return await self.__wrapped__.__aenter__()
        with g:
            with owning(otel_context.get_current()):
                message_stream = await self.__wrapped__.__aenter__()
            _proxy_raw_stream(message_stream, g, AsyncStreamProxy)
            return message_stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc_info)
