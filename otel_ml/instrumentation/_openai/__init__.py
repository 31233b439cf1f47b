"""Drop-in instrumentation of the official ``openai`` client.

Importing this module loads neither ``openai`` nor ``wrapt`` nor
``opentelemetry.instrumentation``: :func:`instrument_openai` does, and names
the extra to install if they are missing. See docs/instrument-openai.md.
"""

from __future__ import annotations

from typing import Any

from otel_ml._safety import guard, missing_extra
from otel_ml.telemetry import Telemetry


def instrument_openai(
    client: Any = None, telemetry: Telemetry | None = None, *, include_usage: bool = False
) -> None:
    """Give every ``chat.completions``, ``responses`` and ``embeddings`` call
    (``create``, and the ``.stream()`` helpers) the span and metrics of
    ``otel_ml.generation()``.

    Without ``client`` every openai client in the process is instrumented,
    else only ``client`` (an ``OpenAI`` or ``AsyncOpenAI``). ``telemetry``
    defaults to otel-ml's current one at each call. ``include_usage=True``
    adds ``stream_options={"include_usage": True}`` to streamed chat requests
    that lack it, so that they report usage; otherwise the request body is
    never changed. A second call does nothing.
    """
    try:
        from otel_ml.instrumentation._openai import _calls, _instrumentor
    except ImportError as exc:
        missing_extra("instrument_openai()", exc, "openai")
        return
    with guard("instrument_openai()"):
        options = _calls.Options(telemetry=telemetry, include_usage=include_usage is True)
        _instrumentor.instrument(client, options)


def uninstrument_openai(client: Any = None) -> None:
    """Undo :func:`instrument_openai`, globally or for ``client``."""
    try:
        from otel_ml.instrumentation._openai import _instrumentor
    except ImportError as exc:
        missing_extra("uninstrument_openai()", exc, "openai")
        return
    with guard("uninstrument_openai()"):
        _instrumentor.uninstrument(client)
