"""Drop-in instrumentation of the official ``anthropic`` client.

``messages.create`` (sync, async, streamed or not) and the ``messages.stream``
helper open the span that ``otel_ml.generation()`` opens, with the usage, cost,
TTFT and time per chunk that the provider's response and events carry. The
client package and wrapt are imported only when instrumenting.
"""

from __future__ import annotations

from typing import Any

from otel_ml._safety import guard, missing_extra
from otel_ml.telemetry import Telemetry


def instrument_anthropic(client: Any = None, telemetry: Telemetry | None = None) -> None:
    """Instrument every ``anthropic`` client, or only ``client``.

    Calls record to ``telemetry``, else to otel-ml's current one at call
    time. Calling it again changes nothing; undo with
    :func:`uninstrument_anthropic` (with the same ``client``).
    """
    try:
        from otel_ml.instrumentation._anthropic import _instrumentor
    except ImportError as exc:
        missing_extra("instrument_anthropic()", exc, "anthropic")
        return
    with guard("instrument_anthropic()"):
        _instrumentor.instrument(client, telemetry)


def uninstrument_anthropic(client: Any = None) -> None:
    """Undo :func:`instrument_anthropic` for every client, or for ``client``."""
    try:
        from otel_ml.instrumentation._anthropic import _instrumentor
    except ImportError:
        return  # nothing can have been instrumented
    with guard("uninstrument_anthropic()"):
        _instrumentor.uninstrument(client)
