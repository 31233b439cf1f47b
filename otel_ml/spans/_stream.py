"""Iterating a stream for a generation span: the request path.

Per item, the generators here append a ``perf_counter()`` stamp and the item
itself, and nothing more: no parsing, no attribute read, no SDK call. What
the items carry (text, usage, finish reasons, ids) is read once, when the
stream has ended, by whoever owns the :class:`StreamState`.

:func:`wrap` also ends its span exactly once: when the stream is exhausted,
fails, is closed, or is garbage-collected without ever being iterated (a
response handed to a web framework that never started it). The owner counts
open streams; this module only tells it when one closes, and how.

:func:`tap` serves the provider proxies, which end their spans themselves
(on ``close()``, their ``with`` block, or their finalizer) and so take no
action when the loop over them is left early.
"""

from __future__ import annotations

import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from time import perf_counter
from typing import Any, TypeVar

T = TypeVar("T")


class StreamState:
    """One stream: when each item arrived (``stamps``), the items, and how it
    ended; ``closed`` guards against a second report."""

    __slots__ = ("closed", "error", "finished", "items", "stamps")

    def __init__(self) -> None:
        self.finished = False
        self.closed = False
        self.error: Exception | None = None
        self.stamps: list[float] = []
        self.items: list[Any] = []


OnClose = Callable[[StreamState], None]


def wrap(stream: Iterable[T], on_close: OnClose) -> Generator[T, None, None]:
    """Yield ``stream``'s items unchanged, stamping and keeping each."""
    state = StreamState()
    iterator = _iterate(stream, state, on_close)
    # From creation, not first next(): a stream dropped unstarted still closes.
    weakref.finalize(iterator, on_close, state)
    return iterator


def wrap_async(stream: AsyncIterable[T], on_close: OnClose) -> AsyncGenerator[T, None]:
    """Async version of :func:`wrap`."""
    state = StreamState()
    iterator = _iterate_async(stream, state, on_close)
    weakref.finalize(iterator, on_close, state)
    return iterator


def _iterate(
    stream: Iterable[T], state: StreamState, on_close: OnClose
) -> Generator[T, None, None]:
    stamp, keep = state.stamps.append, state.items.append
    try:
        for item in stream:
            stamp(perf_counter())
            keep(item)
            yield item
        state.finished = True
    except Exception as exc:
        state.error = exc
        raise
    finally:
        on_close(state)


async def _iterate_async(
    stream: AsyncIterable[T], state: StreamState, on_close: OnClose
) -> AsyncGenerator[T, None]:
    stamp, keep = state.stamps.append, state.items.append
    try:
        async for item in stream:
            stamp(perf_counter())
            keep(item)
            yield item
        state.finished = True
    except Exception as exc:
        state.error = exc
        raise
    finally:
        on_close(state)


def tap(
    iterator: Iterator[T], state: StreamState, end: Callable[[], None], owner: object
) -> Generator[T, None, None]:
    """Yield ``iterator``'s items, stamping and keeping each in ``state``;
    ``end()`` once it is exhausted or fails. ``owner`` (the proxy) is held so
    that it lives while a loop over this generator does: its finalizer is
    what ends an abandoned stream."""
    stamp, keep = state.stamps.append, state.items.append
    try:
        for item in iterator:
            stamp(perf_counter())
            keep(item)
            yield item
    except Exception as exc:
        state.error = exc
        end()
        raise
    state.finished = True
    end()


async def tap_async(
    iterator: AsyncIterator[T], state: StreamState, end: Callable[[], None], owner: object
) -> AsyncGenerator[T, None]:
    """Async version of :func:`tap`."""
    stamp, keep = state.stamps.append, state.items.append
    try:
        async for item in iterator:
            stamp(perf_counter())
            keep(item)
            yield item
    except Exception as exc:
        state.error = exc
        end()
        raise
    state.finished = True
    end()
