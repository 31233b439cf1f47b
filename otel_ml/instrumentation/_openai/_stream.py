"""Proxies for the streams an instrumented call returns.

A proxy is the openai ``Stream``/``AsyncStream`` for every purpose
(``.response``, ``close()``, ``with``, any other attribute), and ends the
generation span exactly once: when the stream is exhausted, fails, is closed,
leaves its ``with`` block, or is garbage-collected unread. Per chunk it only
takes a ``perf_counter()`` stamp and the chunk's text (``StreamState.take``;
``for`` loops run in the generator :func:`otel_ml.spans._stream.tap`, a direct
``next()`` goes through ``__next__``); the few chunks that carry more (the
first, finish reasons, usage) and Responses API events are kept and read
once, at the end. An abandoned stream keeps what
it had read, with finish reason ``error`` (see GenerationSpan).

The ``.stream()`` helpers (``ChatCompletionStreamManager`` and friends) close
the HTTP response, not the raw stream they iterate; their proxy tells the raw
streams created inside its ``with`` block that they are done.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncGenerator, Generator
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

import wrapt

from otel_ml._safety import guard
from otel_ml.instrumentation._openai._api import CHAT, Api
from otel_ml.spans._generation import GenerationSpan
from otel_ml.spans._stream import Observer, StreamState, tap, tap_async

# wrapt 2 types ObjectProxy as a generic; wrapt 1 cannot subscript it at run time.
if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy

# The raw stream proxies created while a stream manager enters (its request).
_entering: ContextVar[list[Any] | None] = ContextVar("otel_ml_openai_entering", default=None)


def _end(span: GenerationSpan, state: StreamState, api: Api) -> None:
    """Read the chunks the stream kept whole and end the span (which takes
    the text chunks); runs once per stream. It holds no reference to the
    proxy, so that the proxy can be collected unread (and this then runs
    from its finalizer)."""
    if state.closed:
        return
    kept, state.kept = state.kept, []  # read once: do not keep them alive with the span
    with guard("openai stream end"):
        api.read_stream(span, state.kept_stamps, kept)
    span.release(state)


def _observer(api: Api, state: StreamState) -> Observer:
    """Chat chunks are read as they pass (text chunks are not kept whole);
    the Responses API's events are kept and read at the end."""
    return state.take if api.name == CHAT.name else state.keep


class StreamProxy(_Proxy):
    """A sync openai ``Stream`` that ends its generation span once."""

    def __init__(self, stream: Any, span: GenerationSpan, state: StreamState, api: Api) -> None:
        super().__init__(stream)
        self._self_state = state
        self._self_end = partial(_end, span, state, api)
        self._self_observe = _observer(api, state)
        # One attribute read per next() call: each read through the proxy costs ~150 ns.
        self._self_tap = (stream.__next__, self._self_observe)
        weakref.finalize(self, self._self_end)
        streams = _entering.get()
        if streams is not None:
            streams.append(self)

    def __iter__(self) -> Generator[Any, None, None]:
        return tap(
            iter(self.__wrapped__), self._self_observe, self._self_state, self._self_end, self
        )

    def __next__(self) -> Any:
        next_item, observe = self._self_tap
        try:
            item = next_item()
        except StopIteration:
            self._self_state.finished = True
            self._self_end()
            raise
        except Exception as exc:
            self._self_state.error = exc
            self._self_end()
            raise
        observe(time.perf_counter(), item)
        return item

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end()

    def __enter__(self) -> StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_end()

    def _otel_ml_end(self) -> None:
        self._self_end()


class AsyncStreamProxy(_Proxy):
    """An openai ``AsyncStream`` that ends its generation span once."""

    def __init__(self, stream: Any, span: GenerationSpan, state: StreamState, api: Api) -> None:
        super().__init__(stream)
        self._self_state = state
        self._self_end = partial(_end, span, state, api)
        self._self_observe = _observer(api, state)
        self._self_tap = (stream.__anext__, self._self_observe)
        weakref.finalize(self, self._self_end)
        streams = _entering.get()
        if streams is not None:
            streams.append(self)

    def __aiter__(self) -> AsyncGenerator[Any, None]:
        return tap_async(
            aiter(self.__wrapped__), self._self_observe, self._self_state, self._self_end, self
        )

    async def __anext__(self) -> Any:
        next_item, observe = self._self_tap
        try:
            item = await next_item()
        except StopAsyncIteration:
            self._self_state.finished = True
            self._self_end()
            raise
        except Exception as exc:
            self._self_state.error = exc
            self._self_end()
            raise
        observe(time.perf_counter(), item)
        return item

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_end()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_end()

    def _otel_ml_end(self) -> None:
        self._self_end()


class StreamManagerProxy(_Proxy):
    """A ``.stream()`` helper's manager: leaving its ``with`` block ends the
    spans of the raw streams its request opened (read to the end or not)."""

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self._self_streams: list[Any] = []

    def __enter__(self) -> Any:
        token = _entering.set(self._self_streams)
        try:
            return self.__wrapped__.__enter__()
        finally:
            _entering.reset(token)

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._otel_ml_end()

    async def __aenter__(self) -> Any:
        token = _entering.set(self._self_streams)
        try:
            return await self.__wrapped__.__aenter__()
        finally:
            _entering.reset(token)

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._otel_ml_end()

    def _otel_ml_end(self) -> None:
        streams, self._self_streams = self._self_streams, []
        for stream in streams:
            stream._otel_ml_end()
