"""configure(logs=...): Python logging through the OTel logs SDK (issue 15, part 3).

Records carry the current trace and span ids and tenant.id, are redacted with
the SDK's rules, go to the logger provider configure() uses (the caller's
when given), and the handler is off by default, never added twice and gone
after shutdown().
"""

from __future__ import annotations

import atexit
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from evaluation_support import fresh_globals
from opentelemetry import context as otel_context
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv.attributes import code_attributes, exception_attributes

import otel_ml
from otel_ml import semconv
from otel_ml._logging import LOGS_ENV, LogBridge, severity
from otel_ml.telemetry import Telemetry

# A key of the shape the redaction rules mask (openai_key), made up here.
SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0"


class Mine:
    """The caller's own providers, logs kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        self.tracer_provider = TracerProvider()

    def configure(self, **kwargs: object) -> Telemetry:
        return otel_ml.configure(
            tracer_provider=self.tracer_provider, meter_provider=MeterProvider(),
            logger_provider=self.logger_provider, flush_on_sigterm=False, **kwargs,  # type: ignore[arg-type]
        )

    def records(self, logger_name: str = "app") -> list[ReadableLogRecord]:
        return [r for r in self.exporter.get_finished_logs()
                if r.instrumentation_scope is not None
                and r.instrumentation_scope.name == logger_name]


@pytest.fixture
def mine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mine]:
    monkeypatch.delenv(LOGS_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.INFO)
    yield Mine()
    root.handlers[:] = handlers
    root.setLevel(level)


def _bridges(name: str | None = None) -> list[logging.Handler]:
    return [h for h in logging.getLogger(name).handlers if isinstance(h, LogBridge)]


def test_off_by_default(mine: Mine) -> None:
    tel = mine.configure()
    try:
        logging.getLogger("app").warning("not exported")
        assert _bridges() == []
        assert mine.records() == []
    finally:
        tel.shutdown()


def test_a_record_carries_trace_span_tenant_and_severity(mine: Mine) -> None:
    tel = mine.configure(logs=True)
    try:
        assert tel.logger_provider is mine.logger_provider  # the caller's, as given
        tracer = mine.tracer_provider.get_tracer("t")
        with otel_ml.tenant("acme"), tracer.start_as_current_span("answer") as span:
            logging.getLogger("app").warning("retrieved %d documents", 4,
                                             extra={"collection": "docs"})
            expected = span.get_span_context()
    finally:
        tel.shutdown()
    [record] = mine.records()
    log = record.log_record
    assert log.body == "retrieved 4 documents"
    assert log.trace_id == expected.trace_id != 0
    assert log.span_id == expected.span_id != 0
    assert log.severity_number == SeverityNumber.WARN
    assert log.severity_text == "WARN"
    attributes = dict(log.attributes or {})
    assert attributes[semconv.TENANT_ID] == "acme"
    assert attributes["collection"] == "docs"
    assert attributes[semconv.CODE_FUNCTION_NAME] == (
        "test_a_record_carries_trace_span_tenant_and_severity")
    assert attributes[semconv.CODE_FILE_PATH] == __file__


def test_outside_a_span_and_tenant_there_are_no_ids(mine: Mine) -> None:
    tel = mine.configure(logs=True)
    try:
        logging.getLogger("app").info("started")
    finally:
        tel.shutdown()
    [record] = mine.records()
    assert record.log_record.trace_id == 0
    assert semconv.TENANT_ID not in (record.log_record.attributes or {})


def test_secrets_in_body_extra_fields_and_exceptions_are_masked(mine: Mine) -> None:
    tel = mine.configure(logs=True)
    try:
        try:
            raise ValueError(f"upstream refused key {SECRET}")
        except ValueError:
            logging.getLogger("app").exception(
                "calling the LLM with %s", SECRET, extra={"api_key": "plain-value-123",
                                                          "note": f"key={SECRET}"})
    finally:
        tel.shutdown()
    [record] = mine.records()
    log = record.log_record
    attributes = dict(log.attributes or {})
    assert log.body == "calling the LLM with ****"
    assert attributes["api_key"] == "****"  # a secret-named field: the whole value
    assert attributes["note"] == "key=****"
    assert attributes[semconv.EXCEPTION_TYPE] == "ValueError"
    assert attributes[semconv.EXCEPTION_MESSAGE] == "upstream refused key ****"
    stacktrace = str(attributes[semconv.EXCEPTION_STACKTRACE])
    assert "ValueError: upstream refused key ****" in stacktrace
    assert SECRET not in json.dumps(attributes)
    assert log.severity_number == SeverityNumber.ERROR


def test_the_handler_is_added_once_and_removed_at_shutdown(mine: Mine) -> None:
    first = mine.configure(logs=True)
    second = mine.configure(logs=True, service_name="other")  # another Telemetry
    try:
        assert first is not second
        assert len(_bridges()) == 1
        logging.getLogger("app").info("once")
        assert len(mine.records()) == 1
        second.shutdown()
        assert len(_bridges()) == 1  # the first one's handler stays
    finally:
        first.shutdown()
    assert _bridges() == []
    logging.getLogger("app").info("after shutdown")
    assert len(mine.records()) == 1


def test_an_sdk_logging_handler_already_there_is_not_doubled(mine: Mine) -> None:
    class LoggingHandler(logging.Handler):  # as the SDK's is named and placed
        def emit(self, record: logging.LogRecord) -> None:
            pass

    LoggingHandler.__module__ = "opentelemetry.sdk._logs._internal"
    logging.getLogger().addHandler(LoggingHandler())
    tel = mine.configure(logs=True)
    try:
        assert _bridges() == []
    finally:
        tel.shutdown()


def test_a_named_logger_and_the_environment_switch(
    mine: Mine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tel = mine.configure(logs="app")
    try:
        assert _bridges() == [] and len(_bridges("app")) == 1
        logging.getLogger("app.sub").info("through the named logger")
        logging.getLogger("elsewhere").warning("not through it")
    finally:
        tel.shutdown()
    assert [r.log_record.body for r in mine.records("app.sub")] == ["through the named logger"]
    assert mine.records("elsewhere") == []
    assert _bridges("app") == []

    monkeypatch.setenv(LOGS_ENV, "true")
    tel = mine.configure()
    try:
        assert len(_bridges()) == 1
    finally:
        tel.shutdown()
    tel = mine.configure(logs=False)  # the argument wins over the variable
    try:
        assert _bridges() == []
    finally:
        tel.shutdown()


def test_a_bad_setting_is_off_with_a_warning(
    mine: Mine, caplog: pytest.LogCaptureFixture
) -> None:
    tel = mine.configure(logs=3)
    try:
        assert _bridges() == []
        assert "configure(logs=...) must be a bool or a logger name" in caplog.text
    finally:
        tel.shutdown()


def test_records_logged_while_exporting_are_dropped(mine: Mine) -> None:
    tel = mine.configure(logs=True)
    try:
        token = otel_context.attach(
            otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            logging.getLogger("app").warning("from inside an export")
        finally:
            otel_context.detach(token)
    finally:
        tel.shutdown()
    assert mine.records() == []


def test_a_failing_provider_never_breaks_logging(
    mine: Mine, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken(LoggerProvider):
        def get_logger(self, name: str, *args: object, **kwargs: object) -> Logger:
            logger = super().get_logger(name)
            if name == "app":  # otel-ml's own logger works: only the app's records fail
                logger.emit = lambda *a, **k: 1 / 0  # type: ignore[method-assign,assignment]
            return logger

    tel = otel_ml.configure(tracer_provider=TracerProvider(), meter_provider=MeterProvider(),
                            logger_provider=Broken(), logs=True, flush_on_sigterm=False)
    try:
        logging.getLogger("app").warning("first")
        logging.getLogger("app").warning("second")
    finally:
        tel.shutdown()
    assert capsys.readouterr().err.count("could not be sent through OpenTelemetry") == 1


def test_otel_ml_owned_provider_writes_records_to_the_embedded_default(
    mine: Mine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fresh_globals(monkeypatch, tmp_path)
    tel = otel_ml.configure(service_name="rag-api", logs=True, flush_on_sigterm=False)
    try:
        tracer = tel.tracer_provider.get_tracer("t")
        with otel_ml.tenant("globex"), tracer.start_as_current_span("request") as span:
            logging.getLogger("app").info("answered")
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        tel.shutdown()
        atexit.unregister(tel.shutdown)
    [path] = tmp_path.glob("logs-rag-api-*.jsonl")
    records = [r for line in path.read_text().splitlines()
               for rl in json.loads(line)["resourceLogs"]
               for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    [record] = [r for r in records if r["body"] == {"stringValue": "answered"}]
    assert record["traceId"] == trace_id
    attributes = {a["key"]: a["value"] for a in record["attributes"]}
    assert attributes[semconv.TENANT_ID] == {"stringValue": "globex"}


@pytest.mark.parametrize(("level", "number"), [
    (logging.DEBUG, SeverityNumber.DEBUG), (logging.INFO, SeverityNumber.INFO),
    (logging.INFO + 2, SeverityNumber.INFO3), (logging.WARNING, SeverityNumber.WARN),
    (logging.ERROR, SeverityNumber.ERROR), (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.CRITICAL + 9, SeverityNumber.FATAL4), (5, SeverityNumber.TRACE),
])
def test_python_levels_map_to_otel_severities(level: int, number: SeverityNumber) -> None:
    assert severity(level) == number


def test_log_attribute_names_are_the_stable_conventions() -> None:
    assert semconv.CODE_FILE_PATH == code_attributes.CODE_FILE_PATH
    assert semconv.CODE_FUNCTION_NAME == code_attributes.CODE_FUNCTION_NAME
    assert semconv.CODE_LINE_NUMBER == code_attributes.CODE_LINE_NUMBER
    assert semconv.EXCEPTION_TYPE == exception_attributes.EXCEPTION_TYPE
    assert semconv.EXCEPTION_MESSAGE == exception_attributes.EXCEPTION_MESSAGE
    assert semconv.EXCEPTION_STACKTRACE == exception_attributes.EXCEPTION_STACKTRACE
