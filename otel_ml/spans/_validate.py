"""Checking what callers pass in: bad input is logged once and replaced or
ignored, never raised, because telemetry must not break the app."""

from __future__ import annotations

import math
from typing import Any

from otel_ml._redaction import redact
from otel_ml._safety import warn_input

# Larger counts are not real usage, and their float sums would overflow the
# cumulative histograms, breaking every later metric export of the process.
MAX_COUNT = 2**53


def name_or(value: Any, default: str, what: str) -> str:
    """``value`` stripped and capped at 256 characters, or ``default`` if it is no name."""
    if isinstance(value, str) and value.strip():
        return value.strip()[:256]
    warn_input(f"{what} must be a non-empty str, got {type(value).__name__}; using {default!r}")
    return default


def non_negative_int(value: Any, what: str) -> int | None:
    """A token or document count, or None (logged) if ``value`` cannot be one."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        warn_input(f"{what} must be a non-negative int, got {type(value).__name__}; ignored")
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        warn_input(f"{what} must be a non-negative int, got {value!r}; ignored")
        return None
    if not 0 <= value <= MAX_COUNT:
        warn_input(f"{what} must be between 0 and 2**53, got {value!r}; ignored")
        return None
    return int(value)


def finite_float(value: Any, what: str) -> float | None:
    """A score, or None (logged) if ``value`` is no finite number."""
    if value is None:
        return None
    try:
        number = float(value)
    except Exception:  # float() runs arbitrary __float__ code
        warn_input(f"{what} must be a number, got {type(value).__name__}; ignored")
        return None
    if not math.isfinite(number):
        warn_input(f"{what} must be finite, got {number!r}; ignored")
        return None
    return number


def describe(exc: BaseException) -> str:
    """The span status description of an application exception."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the original error
        text = "<unprintable>"
    # Exception text is written by libraries and applications (a failed login
    # echoes the e-mail): redacted before it becomes the status description.
    return redact(f"{type(exc).__name__}: {text}")[:512]


def error_type(exc: BaseException) -> str:
    """``error.type``: the exception's fully qualified class name."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
