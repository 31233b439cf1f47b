"""Drop-in instrumentation of the official ``openai``client (work in progress)."""

from __future__ import annotations

from typing import Any

from otel_ml.telemetry import Telemetry


def instrument_openai(client: Any = None, telemetry: Telemetry | None = None) -> None:
    """Instrument every ``openai`` client, or only ``client``."""
    raise NotImplementedError


def uninstrument_openai(client: Any = None) -> None:
    """Undo :func:`instrument_openai`."""
    raise NotImplementedError
