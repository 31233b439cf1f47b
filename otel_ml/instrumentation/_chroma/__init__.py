"""Drop-in instrumentation of the ``chromadb`` client (Chroma).

Importing this module loads neither ``chromadb`` nor ``wrapt`` nor
``opentelemetry.instrumentation``: :func:`instrument_chroma` does, and names
the extra to install if they are missing. See docs/instrument-chroma.md.
"""

from __future__ import annotations

from typing import Any

from otel_ml._safety import guard, missing_extra
from otel_ml.telemetry import Telemetry


def instrument_chroma(client: Any = None, telemetry: Telemetry | None = None) -> None:
    """Give every ``Collection.query`` the span and metrics of
    ``otel_ml.retrieval()`` (scores converted from Chroma's distances) plus
    the OTel database attributes, and every ``get``, ``add`` and ``upsert`` a
    database client span; sync and async collections.

    Without ``client`` every chromadb client in the process is instrumented,
    else only ``client`` (a ``Client``/``HttpClient``/``EphemeralClient``/
    ``PersistentClient`` or an ``AsyncHttpClient``'s client). ``telemetry``
    defaults to otel-ml's current one at each call. A second call does nothing.
    """
    try:
        import chromadb.api.models.Collection  # noqa: F401  (the library to instrument)
    except ImportError as exc:  # the app does not use Chroma: nothing to instrument
        missing_extra("instrument_chroma()", exc, "chromadb")
        return
    try:
        from otel_ml.instrumentation._chroma import _instrumentor, _registry
    except ImportError as exc:  # wrapt or opentelemetry-instrumentation
        missing_extra("instrument_chroma()", exc, "chroma")
        return
    with guard("instrument_chroma()"):
        _instrumentor.instrument(client, _registry.Options(telemetry=telemetry))


def uninstrument_chroma(client: Any = None) -> None:
    """Undo :func:`instrument_chroma`, globally or for ``client``."""
    try:
        from otel_ml.instrumentation._chroma import _instrumentor
    except ImportError as exc:
        missing_extra("uninstrument_chroma()", exc, "chroma")
        return
    with guard("uninstrument_chroma()"):
        _instrumentor.uninstrument(client)
