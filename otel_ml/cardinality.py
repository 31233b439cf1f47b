"""Bounding the distinct values of a metric attribute."""

from __future__ import annotations

import threading


class CardinalityCap:
    """Keeps the first ``limit`` distinct values; later ones fold into ``overflow``.

    Metric backends create one time series per distinct attribute set, so an
    unbounded attribute (tenant ids, prediction labels) must be capped in the
    process, before export. Spans are not capped: they always carry the real value.
    """

    def __init__(self, limit: int, overflow: str) -> None:
        self.limit = max(0, limit)
        self.overflow = overflow
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def fold(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return self.overflow

    def __len__(self) -> int:
        return len(self._seen)
