"""Keeping the SDK's own faults away from the application.

Telemetry must never break the app: every entry point that does otel-ml work
runs under :func:`guard`, which logs the fault on the ``otel_ml`` logger (at
most once per place and kind of error, so a broken exporter cannot flood the
logs) and carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("otel_ml")

_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()
_MAX_REPORTED = 256


@contextmanager
def guard(where: str) -> Iterator[None]:
    """Swallow and log any exception raised by otel-ml code inside the block."""
    try:
        yield
    except Exception as exc:  # the point is to catch everything
        report(where, exc)


def report(where: str, exc: BaseException) -> None:
    """Log an SDK fault once per (place, exception type)."""
    key = (where, type(exc).__name__)
    with _reported_lock:
        if key in _reported or len(_reported) >= _MAX_REPORTED:
            logger.debug("otel-ml: %s failed again: %s", where, _redacted(exc))
            return
        _reported.add(key)
    logger.warning(
        "otel-ml: %s failed; telemetry for this call is incomplete: %s", where, _redacted(exc)
    )


def _redacted(exc: BaseException) -> str:
    """``repr(exc)`` with secrets masked: an exporter's error may quote a URL with an
    API key, and the application's log handlers may ship this line anywhere."""
    try:
        from otel_ml._redaction import redact

        return redact(repr(exc))
    except Exception:  # reporting a fault must never raise one
        return f"<{type(exc).__name__}>"


def warn_input(message: str) -> None:
    """Report bad input from the caller once per distinct message."""
    key = ("input", message)
    with _reported_lock:
        if key in _reported or len(_reported) >= _MAX_REPORTED:
            return
        _reported.add(key)
    logger.warning("otel-ml: %s", message)


def missing_extra(feature: str, exc: ImportError, extra: str, instead: str = "") -> None:
    """Report, once per feature, that an optional dependency is not installed,
    naming the extra that brings it and what otel-ml does ``instead``.

    When the missing package is the one the extra is named for (``openai``
    for ``instrument_openai()``), the app simply does not use that library:
    the extra would not bring it, so say so instead of giving an install line.
    """
    key = ("extra", feature)
    with _reported_lock:
        if key in _reported:
            return
        _reported.add(key)
    if exc.name == extra:  # the instrumented library itself: the app does not use it
        logger.warning(
            "otel-ml: %s found no %s package: nothing to instrument", feature, extra
        )
        return
    logger.error(
        "otel-ml: %s needs %s, which is not installed: pip install 'otel-ml[%s]'%s",
        feature, exc.name or "an optional dependency", extra, f"; {instead}" if instead else "",
    )
