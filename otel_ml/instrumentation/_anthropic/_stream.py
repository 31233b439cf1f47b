"""Proxies for the client's ``Stream``/``AsyncStream`` that keep the generation
span open while the application reads the events, and end it once: when the
stream is exhausted, fails, is closed, or is garbage-collected unread.

Everything else (``response``, ``close()``'s effect on the connection, the
stream helper reading through it) reaches the real stream unchanged.

Per event, :class:`StreamRecord` takes what the event carries as it passes
(a text delta: its stamp and text), in :func:`otel_ml.spans._stream.tap` for
loops and in ``__next__`` for direct calls; no event object is kept alive
(kept, they would cost the garbage collector more than reading them).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator, Generator
from typing import Any

import wrapt

from otel_ml._safety import guard, report
from otel_ml.instrumentation._anthropic._messages import StreamRecord
from otel_ml.spans._generation import GenerationSpan
from otel_ml.spans._stream import tap, tap_async


class HeldCall:
    """A generation span held open past its ``with`` block for one stream."""

    __slots__ = ("_event", "_g", "record", "state")

    def __init__(self, g: GenerationSpan) -> None:
        self._g = g
        self.state = g.hold()
        self.record = StreamRecord(g)
        self._event = self.record.event

    def finish(self) -> None:
        self.state.finished = True
        self.end()

    def fail(self, exc: Exception) -> None:
        self.state.error = exc
        self.end()

    def observe(self, stamp: float, event: Any) -> None:
        try:
            self._event(event)
        except Exception as exc:  # an event this version does not know: keep streaming
            report("anthropic stream event", exc)

    def end(self) -> None:
        """Report what the events carried and release the span; once."""
        state = self.state
        if state.closed:
            return
        with guard("anthropic stream end"):
            if self.record.ended:
                state.finished = True  # message_stop came: only the transport was left
            self.record.report(self._g)
        self._g.release(state)


class StreamProxy(wrapt.ObjectProxy[Any]):
    """A sync ``anthropic.Stream`` whose events a :class:`StreamRecord` reads at its end."""

    def __init__(self, stream: Any, held: HeldCall) -> None:
        super().__init__(stream)
        self._self_held = held
        self._self_tap = (stream.__next__, held.observe)
        weakref.finalize(self, held.end)

    def __iter__(self) -> Generator[Any, None, None]:
        held = self._self_held
        return tap(iter(self.__wrapped__), held.observe, held.state, held.end, self)

    def __next__(self) -> Any:
        next_item, observe = self._self_tap
        try:
            event = next_item()
        except StopIteration:
            self._self_held.finish()
            raise
        except Exception as exc:
            self._self_held.fail(exc)
            raise
        observe(0.0, event)  # StreamRecord stamps a text delta itself
        return event

    def __enter__(self) -> StreamProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_held.end()


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    """An ``anthropic.AsyncStream`` whose events a :class:`StreamRecord` reads at its end."""

    def __init__(self, stream: Any, held: HeldCall) -> None:
        super().__init__(stream)
        self._self_held = held
        self._self_tap = (stream.__anext__, held.observe)
        weakref.finalize(self, held.end)

    def __aiter__(self) -> AsyncGenerator[Any, None]:
        held = self._self_held
        return tap_async(aiter(self.__wrapped__), held.observe, held.state, held.end, self)

    async def __anext__(self) -> Any:
        next_item, observe = self._self_tap
        try:
            event = await next_item()
        except StopAsyncIteration:
            self._self_held.finish()
            raise
        except Exception as exc:
            self._self_held.fail(exc)
            raise
        observe(0.0, event)  # StreamRecord stamps a text delta itself
        return event

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_held.end()
