"""Iterating a stream for a generation span: the request path.

Per item, the generators here take one ``perf_counter()`` stamp and hand it
with the item to the stream's observer, and do nothing else: no SDK call, no
lock, no metric. The observers of :class:`StreamState` keep a text chunk as
its stamp and its text (a ``str``, which the garbage collector does not
track) and keep any other item whole, to be read once when the stream ends.

Why not keep every item and read them all at the end: a stream's chunk
objects (about 17 tracked objects each for an OpenAI chunk) kept alive until
the end survive young-generation collections and trigger full ones; measured
through the real openai client, that cost 25 to 30 µs per chunk, more than
reading the text of each chunk as it passes (a few attribute reads).

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

Observer = Callable[[float, Any], None]


class StreamState:
    """One stream: its text chunks (``stamps``/``pieces``), the items kept
    whole for the end (``kept_stamps``/``kept``), and how it ended;
    ``closed`` guards against a second report."""

    __slots__ = ("closed", "error", "finished", "kept", "kept_stamps", "pieces", "stamps")

    def __init__(self) -> None:
        self.finished = False
        self.closed = False
        self.error: Exception | None = None
        self.stamps: list[float] = []
        self.pieces: list[str] = []
        self.kept_stamps: list[float] = []
        self.kept: list[Any] = []

    def keep(self, stamp: float, item: Any) -> None:
        """Read at the end: the Responses API's events, raw mappings."""
        self.kept_stamps.append(stamp)
        self.kept.append(item)

    def take(self, stamp: float, item: Any) -> None:
        """A ``str`` piece or an OpenAI SDK chat chunk. A piece, or a plain
        text chunk (one choice, text, no finish reason, no usage), is kept as
        its text; the first chunk (the response's id and model) and any other
        item are kept whole, for the end-of-stream reader."""
        if type(item) is str:
            if item:
                self.stamps.append(stamp)
                self.pieces.append(item)
            return
        try:
            choices = item.choices
            if self.kept and len(choices) == 1 and item.usage is None:
                first = choices[0]
                text = first.delta.content
                if type(text) is str and text and first.finish_reason is None:
                    self.stamps.append(stamp)
                    self.pieces.append(text)
                    return
        except (AttributeError, TypeError):  # not the chunk shape: read it at the end
            pass
        self.kept_stamps.append(stamp)
        self.kept.append(item)


OnClose = Callable[[StreamState], None]


def wrap(stream: Iterable[T], on_close: OnClose) -> Generator[T, None, None]:
    """Yield ``stream``'s items unchanged, each observed by ``StreamState.take``."""
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
    observe = state.take
    try:
        for item in stream:
            observe(perf_counter(), item)
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
    observe = state.take
    try:
        async for item in stream:
            observe(perf_counter(), item)
            yield item
        state.finished = True
    except Exception as exc:
        state.error = exc
        raise
    finally:
        on_close(state)


def tap(
    iterator: Iterator[T],
    observe: Observer,
    state: StreamState,
    end: Callable[[], None],
    owner: object,
) -> Generator[T, None, None]:
    """Yield ``iterator``'s items, each stamped and passed to ``observe``;
    ``end()`` once it is exhausted or fails. ``owner`` (the proxy) is held so
    that it lives while a loop over this generator does: its finalizer is
    what ends an abandoned stream."""
    try:
        for item in iterator:
            observe(perf_counter(), item)
            yield item
    except Exception as exc:
        state.error = exc
        end()
        raise
    state.finished = True
    end()


async def tap_async(
    iterator: AsyncIterator[T],
    observe: Observer,
    state: StreamState,
    end: Callable[[], None],
    owner: object,
) -> AsyncGenerator[T, None]:
    """Async version of :func:`tap`."""
    try:
        async for item in iterator:
            observe(perf_counter(), item)
            yield item
    except Exception as exc:
        state.error = exc
        end()
        raise
    state.finished = True
    end()
