"""Drop-in instrumentation of the official ``anthropic``client (work in progress)."""

from __future__ import annotations

from typing import Any

from otel_ml.telemetry import Telemetry


def instrument_anthropic(client: Any = None, telemetry: Telemetry | None = None) -> None:
    """Instrument every ``anthropic`` client, or only ``client``."""
    raise NotImplementedError


def uninstrument_anthropic(client: Any = None) -> None:
    """Undo :func:`instrument_anthropic`."""
    raise NotImplementedError
