"""Wrapping a sync or async stream so that the span it belongs to ends exactly
once: when the stream is exhausted, fails, is closed, or is garbage-collected
without ever being iterated (a response handed to a web framework that never
started it). The owner counts open streams; this module only tells it when
one closes, and how."""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class StreamState:
    """How one wrapped stream ended: ``closed`` guards against a second report."""

    __slots__ = ("closed", "error", "finished")

    def __init__(self) -> None:
        self.finished = False
        self.closed = False
        self.error: Exception | None = None


Observer = Callable[[Any], None]
OnClose = Callable[[StreamState], None]


def wrap(
    stream: Iterable[T], observe: Observer, on_close: OnClose
) -> Generator[T, None, None]:
    """Yield ``stream``'s items unchanged, passing each to ``observe`` first."""
    state = StreamState()
    iterator = _iterate(stream, state, observe, on_close)
    # From creation, not first next(): a stream dropped unstarted still closes.
    weakref.finalize(iterator, on_close, state)
    return iterator


def wrap_async(
    stream: AsyncIterable[T], observe: Observer, on_close: OnClose
) -> AsyncGenerator[T, None]:
    """Async version of :func:`wrap`."""
    state = StreamState()
    iterator = _iterate_async(stream, state, observe, on_close)
    weakref.finalize(iterator, on_close, state)
    return iterator


def _iterate(
    stream: Iterable[T], state: StreamState, observe: Observer, on_close: OnClose
) -> Generator[T, None, None]:
    try:
        for item in stream:
            observe(item)
            yield item
        state.finished = True
    except Exception as exc:
        state.error = exc
        raise
    finally:
        on_close(state)


async def _iterate_async(
    stream: AsyncIterable[T], state: StreamState, observe: Observer, on_close: OnClose
) -> AsyncGenerator[T, None]:
    try:
        async for item in stream:
            observe(item)
            yield item
        state.finished = True
    except Exception as exc:
        state.error = exc
        raise
    finally:
        on_close(state)
