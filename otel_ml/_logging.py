"""Python ``logging`` through the OpenTelemetry logs SDK (``configure(logs=True)``).

A :class:`LogBridge` handler on the root logger (or a named one) turns each
``logging`` record into an OTel log record on the logger provider
``configure()`` uses, so logs reach the collector over OTLP next to the spans.
Each record carries the current trace and span ids (the Logs API reads them
from the context) and ``tenant.id`` from the baggage, so a log search by trace
id finds every service's lines of one request.

Why a handler of our own: the OTel SDK's ``LoggingHandler`` is deprecated
since SDK 1.39 (it warns on construction and points to
``opentelemetry-instrumentation-logging``, one more dependency). This one uses
only the Logs API (``Logger.emit``), and adds what otel-ml needs there: the
body, extra fields and exception text are redacted with the SDK's rules
(``otel_ml._redaction``) before they leave the process, and the tenant is set.

Off by default: apps that ship their logs another way (a sidecar reading
stdout, say) would send each line twice. The handler never changes levels or
other handlers: records reach it as the app's logging configuration lets them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, LoggerProvider, SeverityNumber
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._redaction import redactor
from otel_ml.tenancy import current_tenant

LOGS_ENV: Final = "OTEL_ML_LOGS"
_SCOPE_FALLBACK: Final = "otel_ml.logs"
_MAX_LOGGERS: Final = 1000  # distinct logger names given their own OTel logger (scope)

# LogRecord fields that are not user-supplied ``extra`` fields.
_RESERVED: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)
# Python level names as the OTel data model displays them.
_SEVERITY_TEXT: Final = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_SEVERITY_FLOORS: Final = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
)

logger = logging.getLogger("otel_ml")


def logs_setting(value: object) -> bool | str:
    """``configure(logs=...)`` validated: False (off), True (the root logger) or
    a logger name. None reads ``OTEL_ML_LOGS`` (``true``/``1``: on)."""
    if value is None:
        raw = os.environ.get(LOGS_ENV, "").strip().lower()
        return raw in ("true", "1", "yes", "on")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        return value
    logger.warning("otel-ml: configure(logs=...) must be a bool or a logger name; got %r, "
                   "logs are not routed through OpenTelemetry", value)
    return False


def severity(levelno: int) -> SeverityNumber:
    """The OTel severity of a Python level; levels between two named ones keep
    their offset (INFO+5 -> INFO4), as the data model's ranges allow."""
    for floor, number in _SEVERITY_FLOORS:
        if levelno >= floor:
            return SeverityNumber(min(number.value + levelno - floor, number.value + 3))
    return SeverityNumber.TRACE


class LogBridge(logging.Handler):
    """``logging`` records to OTel log records on ``logger_provider``."""

    def __init__(self, logger_provider: LoggerProvider, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.logger_provider = logger_provider
        self._loggers: dict[str, Logger] = {}
        self._loggers_lock = threading.Lock()
        self._failed = False
        self.attached_to: logging.Logger | None = None  # set by attach()

    def emit(self, record: logging.LogRecord) -> None:
        # Records logged while an exporter runs (urllib3, otel-ml's retry
        # warnings) would feed the pipeline that is exporting: dropped.
        if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
            return
        try:
            self._logger(record.name).emit(
                timestamp=int(record.created * 1e9),
                severity_number=severity(record.levelno),
                severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
                body=redactor().redact(record.getMessage()),
                attributes=attributes(record),
            )
        except Exception as exc:  # telemetry never breaks the app's logging
            if not self._failed:
                self._failed = True
                # Straight to stderr: logging it would come back here.
                sys.stderr.write(f"otel-ml: a log record could not be sent through "
                                 f"OpenTelemetry ({type(exc).__name__}: {exc}); further "
                                 f"failures are silent\n")

    def flush(self) -> None:
        """Nothing: the logger provider's batch processor exports on its own
        schedule, and ``Telemetry.shutdown()`` flushes it (bounded)."""

    def _logger(self, name: str) -> Logger:
        found = self._loggers.get(name)
        if found is not None:
            return found
        with self._loggers_lock:
            if name not in self._loggers and len(self._loggers) >= _MAX_LOGGERS:
                name = _SCOPE_FALLBACK  # generated logger names: bound the scopes
            if name not in self._loggers:
                self._loggers[name] = self.logger_provider.get_logger(name)
            return self._loggers[name]


def attributes(record: logging.LogRecord) -> dict[str, AttributeValue]:
    """The record's ``extra`` fields (redacted), where it was logged, its
    exception (redacted) and the current tenant."""
    rules = redactor()
    result: dict[str, AttributeValue] = {}
    for key, value in vars(record).items():
        if key not in _RESERVED and not key.startswith("_"):
            result[key] = rules.value(key, _attribute_value(value))
    result[semconv.CODE_FILE_PATH] = record.pathname
    result[semconv.CODE_FUNCTION_NAME] = record.funcName
    result[semconv.CODE_LINE_NUMBER] = record.lineno
    if record.exc_info and record.exc_info[0] is not None:
        kind, exc, trace = record.exc_info
        result[semconv.EXCEPTION_TYPE] = kind.__name__
        if exc is not None:
            result[semconv.EXCEPTION_MESSAGE] = rules.redact(str(exc))
        result[semconv.EXCEPTION_STACKTRACE] = rules.redact(
            "".join(traceback.format_exception(kind, exc, trace))
        )
    tenant = current_tenant()
    if tenant is not None:
        result[semconv.TENANT_ID] = tenant
    return result


def _attribute_value(value: Any) -> AttributeValue:
    """An OTel attribute value: str, bool, int, float, or a list of one of
    them; anything else as its str()."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return str(value)


_attach_lock = threading.Lock()


def attach(logger_provider: LoggerProvider, target: bool | str) -> LogBridge | None:
    """A :class:`LogBridge` on the root logger (``target`` True) or the named
    one; None when that logger already sends to OpenTelemetry (ours, or the
    SDK's ``LoggingHandler``): a second handler would export every line twice."""
    name = None if target is True else str(target)
    target_logger = logging.getLogger(name)
    with _attach_lock:
        existing = next((h for h in target_logger.handlers if _is_otel_handler(h)), None)
        if existing is not None:
            logger.info("otel-ml: logger %r already sends its records to OpenTelemetry "
                        "(%s); not adding another handler", name or "root",
                        type(existing).__name__)
            return None
        handler = LogBridge(logger_provider)
        target_logger.addHandler(handler)
        handler.attached_to = target_logger
        return handler


def detach(handler: LogBridge) -> None:
    """Remove ``handler`` from the logger :func:`attach` put it on."""
    with _attach_lock:
        if handler.attached_to is not None:
            handler.attached_to.removeHandler(handler)
            handler.attached_to = None


def _is_otel_handler(handler: logging.Handler) -> bool:
    if isinstance(handler, LogBridge):
        return True
    # The SDK's (deprecated) handler and the instrumentation package's, by name:
    # importing either module to check would load it for nothing.
    kind = type(handler)
    return kind.__name__ == "LoggingHandler" and kind.__module__.startswith("opentelemetry.")
