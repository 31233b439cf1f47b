"""Which GenAI span of a nested group counts a call, so that a call seen by
otel-ml and by one or more other instrumentations is counted once.

The rules, in order:
1. otel-ml's own generation span always counts (it records its own metrics);
   a peer span inside one, at any depth, does not.
2. Otherwise the innermost peer span that reports usage counts, and every
   GenAI span above it does not: an outer span (a framework's LLM span, a
   second instrumentation of the same client) reports the same tokens again,
   or their sum over the calls below it.

Only live spans inside a GenAI span are tracked, each until it ends: memory
grows with the spans open at one moment inside LLM calls, not with traffic,
and a hard cap evicts the oldest entry should spans be leaked (never ended).
An evicted entry costs at most one call's deduplication, never a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LIVE_SPANS = 10_000


@dataclass(eq=False)
class Call:
    """One GenAI span: otel-ml's own, or another instrumentation's."""

    own: bool
    parent: Call | None
    tenant: str | None
    # Inside an otel-ml generation span: that span counts the call.
    under_own: bool
    # A span below this one counts the call (or will: an otel-ml span marks its
    # ancestors when it starts, since it counts itself whatever happens).
    covered: bool = False
    # Request attributes of this span and the calls above it, at their start:
    # an inner span of the same call may lack them (OpenInference has no
    # request model, only the response's).
    hints: Mapping[str, Any] = field(default_factory=dict)

    def counts(self) -> bool:
        """Whether this peer span, once it reports usage, is the one to count."""
        return not (self.own or self.under_own or self.covered)


class Lineage:
    """Live spans inside GenAI calls, by span id, each mapped to the nearest
    GenAI call enclosing it (itself, for the call's own span)."""

    def __init__(self, max_live: int = MAX_LIVE_SPANS) -> None:
        self._max_live = max_live
        self._live: dict[int, tuple[Call, bool]] = {}  # span id -> (call, is the call's span)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._live)

    def start(
        self,
        span_id: int,
        parent_id: int | None,
        *,
        genai: bool,
        own: bool,
        tenant: str | None,
        hints: Mapping[str, Any] | None = None,
    ) -> Call | None:
        """Register a started span; returns its :class:`Call` if it is a GenAI span."""
        if not genai and (parent_id is None or parent_id not in self._live):
            return None  # most spans: no lock (a dict read is atomic in CPython)
        with self._lock:
            entry = self._live.get(parent_id) if parent_id is not None else None
            enclosing = entry[0] if entry is not None else None
            if not genai:
                if enclosing is not None:
                    self._put(span_id, (enclosing, False))
                return None
            call = Call(
                own=own,
                parent=enclosing,
                tenant=tenant,
                under_own=enclosing is not None and (enclosing.own or enclosing.under_own),
                hints={**(enclosing.hints if enclosing is not None else {}), **(hints or {})},
            )
            if own:
                _cover(enclosing)
            self._put(span_id, (call, True))
            return call

    def end(self, span_id: int) -> Call | None:
        """Forget an ended span; returns its Call if it was a GenAI span."""
        if span_id not in self._live:
            return None
        with self._lock:
            entry = self._live.pop(span_id, None)
        return entry[0] if entry is not None and entry[1] else None

    def counted(self, call: Call) -> None:
        """``call`` was counted: no span above it may count it again."""
        with self._lock:
            _cover(call.parent)

    def _put(self, span_id: int, entry: tuple[Call, bool]) -> None:
        if len(self._live) >= self._max_live:
            del self._live[next(iter(self._live))]  # the oldest: a span never ended
        self._live[span_id] = entry


def _cover(call: Call | None) -> None:
    # Stops at the first covered ancestor: everything above it is covered already.
    while call is not None and not call.covered:
        call.covered = True
        call = call.parent
