"""Proxies for the client's ``Stream``/``AsyncStream`` that keep the generation
span open while the application reads the events, and end it once: when the
stream is exhausted, fails, is closed, or is garbage-collected unread.

Everything else (``response``, ``close()``'s effect on the connection, the
stream helper reading through it) reaches the real stream unchanged.
"""

from __future__ import annotations

import weakref
from typing import Any

import wrapt

from otel_ml._safety import guard, report
from otel_ml.instrumentation._anthropic._messages import StreamRecord
from otel_ml.spans._generation import GenerationSpan


class HeldCall:
    """A generation span held open past its ``with`` block for one stream."""

    __slots__ = ("_g", "_state", "record")

    def __init__(self, g: GenerationSpan) -> None:
        self._g = g
        self._state = g.hold()
        self.record = StreamRecord(g)

    def finish(self) -> None:
        self._state.finished = True
        self.end()

    def fail(self, exc: Exception) -> None:
        self._state.error = exc
        self.end()

    def end(self) -> None:
        """Report what the events carried and release the span; once."""
        state = self._state
        if state.closed:
            return
        with guard("anthropic stream end"):
            if self.record.ended:
                state.finished = True  # message_stop came: only the transport was left
            self.record.report(self._g)
        self._g.release(state)


class StreamProxy(wrapt.ObjectProxy[Any]):
    """A sync ``anthropic.Stream`` whose events pass through :class:`StreamRecord`."""

    def __init__(self, stream: Any, held: HeldCall) -> None:
        super().__init__(stream)
        self._self_held = held
        self._self_event = held.record.event
        weakref.finalize(self, held.end)

    def __iter__(self) -> StreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            event = self.__wrapped__.__next__()
        except StopIteration:
            self._self_held.finish()
            raise
        except Exception as exc:
            self._self_held.fail(exc)
            raise
        try:
            self._self_event(event)
        except Exception as exc:  # an event this version does not know: keep streaming
            report("anthropic stream event", exc)
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
    """An ``anthropic.AsyncStream`` whose events pass through :class:`StreamRecord`."""

    def __init__(self, stream: Any, held: HeldCall) -> None:
        super().__init__(stream)
        self._self_held = held
        self._self_event = held.record.event
        weakref.finalize(self, held.end)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_held.finish()
            raise
        except Exception as exc:
            self._self_held.fail(exc)
            raise
        try:
            self._self_event(event)
        except Exception as exc:
            report("anthropic stream event", exc)
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
