"""pytest plugin: isolated in-memory capture of otel-ml spans and metrics.

Registered through the ``pytest11`` entry point, so installing otel-ml makes
the ``otel_capture`` fixture available in any test suite::

    def test_answer_is_priced(otel_capture):
        answer_question("what is RAG?")          # your code, using otel_ml
        span = otel_capture.span("chat gpt-4o-mini")
        assert span.attributes["gen_ai.usage.cost.amount"] > 0
        assert otel_capture.metric_sum("llm.cost.usd") > 0

Each test gets fresh providers (no global state is touched) and the module
level functions (``otel_ml.generation`` ...) use them for the test's duration.

pytest imports this module at start-up wherever otel-ml is installed, so it
imports nothing heavy: the OTel SDK (``otel-ml[otlp]``) loads with the first
capture, and a suite that never asks for one runs without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from otel_ml.telemetry import set_current

if TYPE_CHECKING:
    from otel_ml._capture import Capture

__all__ = ["Capture", "otel_capture", "otel_capture_factory"]


def __getattr__(name: str) -> Any:
    if name == "Capture":  # ``from otel_ml.testing import Capture`` keeps working
        from otel_ml._capture import Capture

        return Capture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def otel_capture() -> Iterator[Capture]:
    """A fresh in-memory :class:`Capture`, installed as otel-ml's current Telemetry."""
    from otel_ml._capture import Capture

    capture = Capture()
    previous = set_current(capture.telemetry)
    try:
        yield capture
    finally:
        set_current(previous)
        capture.shutdown()


@pytest.fixture
def otel_capture_factory() -> Iterator[Any]:
    """Build captures with options: ``otel_capture_factory(capture_content=True)``."""
    from otel_ml._capture import Capture

    made: list[Capture] = []
    previous = set_current(None)

    def make(**options: Any) -> Capture:
        capture = Capture(**options)
        made.append(capture)
        set_current(capture.telemetry)
        return capture

    try:
        yield make
    finally:
        set_current(previous)
        for capture in made:
            capture.shutdown()
