"""instrument_anthropic(): messages.create through the real ``anthropic``
client over a mock transport; span, usage with the cache, cost, errors,
trace context, and instrumenting globally, per client, twice, and undoing it."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic import _base_client
from anthropic.resources.messages import AsyncMessages, Messages
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from test_instrument_anthropic_wire import (
    ANSWER,
    HOST,
    INPUT_WITH_CACHE,
    MESSAGE,
    MODEL,
    PRICES,
    RATE_LIMIT_BODY,
    REQUEST,
    RESPONSE_MODEL,
    Factory,
    Server,
    cost,
)

import otel_ml
from otel_ml import semconv
from otel_ml.spans._validate import error_type
from otel_ml.testing import Capture

ORIGINAL_CREATE = Messages.create
ORIGINAL_START_SPAN = _base_client.start_api_call_span


@pytest.fixture
def instrumented() -> Iterator[None]:
    otel_ml.instrument_anthropic()
    try:
        yield
    finally:
        otel_ml.uninstrument_anthropic()


@pytest.fixture
def capture(otel_capture_factory: Factory) -> Capture:
    capture: Capture = otel_capture_factory(pricing=PRICES)
    return capture


def only_span(capture: Capture) -> ReadableSpan:
    spans = capture.spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_create_gives_the_generation_span_with_usage_including_the_cache(
    capture: Capture, instrumented: None
) -> None:
    with otel_ml.tenant("acme"):
        message = Server().client().messages.create(**REQUEST)

    assert message.content[0].text == ANSWER  # type: ignore[union-attr]
    span = only_span(capture)
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = attrs(span)
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is False
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == RESPONSE_MODEL
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.SERVER_ADDRESS] == HOST
    assert attributes[semconv.SERVER_PORT] == 443
    assert attributes[semconv.TENANT_ID] == "acme"
    # 12 uncached + 1000 read from the cache + 200 written to it.
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_WITH_CACHE == 1212
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attributes[semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == 200
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert attributes[semconv.LLM_USAGE_ESTIMATED] is False
    expected = cost(12, 1000, 200, 9)
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.001221, abs=1e-9)  # not 1212 * $3 + 9 * $15 = 0.003771


def test_create_records_the_generation_metrics_per_tenant(
    capture: Capture, instrumented: None
) -> None:
    client = Server().client()
    with otel_ml.tenant("acme"):
        client.messages.create(**REQUEST)
        client.messages.create(**REQUEST)
    with otel_ml.tenant("globex"):
        client.messages.create(**REQUEST)

    acme = {semconv.TENANT_ID: "acme", semconv.GEN_AI_PROVIDER_NAME: "anthropic"}
    tokens = semconv.METRIC_TOKEN_USAGE
    input_type = {semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
    output_type = {semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT}
    assert capture.metric_sum(tokens, {**acme, **input_type}) == 2 * 1212
    assert capture.metric_sum(tokens, {**acme, **output_type}) == 2 * 9
    assert capture.metric_sum(semconv.METRIC_COST, acme) == pytest.approx(
        2 * cost(12, 1000, 200, 9), abs=1e-9
    )
    globex = {semconv.TENANT_ID: "globex"}
    assert capture.metric_sum(semconv.METRIC_COST, globex) == pytest.approx(
        cost(12, 1000, 200, 9), abs=1e-9
    )
    assert capture.metric_count(semconv.METRIC_OPERATION_DURATION, acme) == 2


async def test_async_create_gives_the_same_span(capture: Capture, instrumented: None) -> None:
    message = await Server().async_client().messages.create(**REQUEST)

    assert message.id == MESSAGE["id"]
    attributes = attrs(only_span(capture))
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1212
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        cost(12, 1000, 200, 9), abs=1e-9
    )


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("max_tokens", "length"),
        ("tool_use", "tool_call"),
        ("stop_sequence", "stop"),
        ("refusal", "refusal"),
    ],
)
def test_stop_reasons_map_to_the_conventions_finish_reasons(
    capture: Capture, instrumented: None, stop_reason: str, finish_reason: str
) -> None:
    Server(body={**MESSAGE, "stop_reason": stop_reason}).client().messages.create(**REQUEST)
    assert attrs(only_span(capture))[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == (finish_reason,)


def test_the_request_body_is_the_one_the_app_sends(capture: Capture) -> None:
    plain = Server()
    plain.client().messages.create(**REQUEST)
    otel_ml.instrument_anthropic()
    try:
        traced = Server()
        traced.client().messages.create(**REQUEST)
    finally:
        otel_ml.uninstrument_anthropic()
    assert traced.bodies() == plain.bodies()
    assert json.loads(traced.bodies()[0]) == REQUEST
    assert len(capture.spans()) == 1


def test_requests_carry_the_generation_span_s_trace_context_and_a_server_continues_it(
    capture: Capture, instrumented: None
) -> None:
    server = Server()
    with otel_ml.tenant("acme"):
        server.client().messages.create(**REQUEST)

    generation = only_span(capture)
    headers = server.requests[0].headers
    parent = TraceContextTextMapPropagator().extract(dict(headers))
    with capture.telemetry.tracer.start_as_current_span(
        "POST /v1/messages", context=parent, kind=SpanKind.SERVER
    ):
        pass
    served = capture.spans("POST /v1/messages")[0]
    assert served.parent is not None
    assert served.parent.span_id == generation.context.span_id
    assert served.context.trace_id == generation.context.trace_id
    assert headers["traceparent"].split("-")[2] == f"{generation.context.span_id:016x}"
    assert "tenant.id=acme" in headers["baggage"]


def test_the_trace_context_is_sent_when_the_client_s_own_tracing_is_off(
    capture: Capture, instrumented: None
) -> None:
    server = Server()
    server.client(open_telemetry=False).messages.create(**REQUEST)
    generation = only_span(capture)
    assert server.requests[0].headers["traceparent"].split("-")[2] == (
        f"{generation.context.span_id:016x}"
    )


def test_a_rate_limit_error_propagates_unchanged_and_marks_the_span(
    capture: Capture, instrumented: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Server(status=429, body=RATE_LIMIT_BODY).client()
    made: list[Exception] = []
    make = client._make_status_error

    def recording(*args: Any, **kwargs: Any) -> Any:
        made.append(make(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(client, "_make_status_error", recording)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(**REQUEST)

    assert raised.value is made[0]  # the client's own object, not a copy or a wrapper
    assert raised.value.body == RATE_LIMIT_BODY
    span = only_span(capture)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[semconv.ERROR_TYPE] == error_type(raised.value)
    assert attrs(span)[semconv.ERROR_TYPE] == "anthropic.RateLimitError"
    duration = capture.points(semconv.METRIC_OPERATION_DURATION)
    assert [p.attributes[semconv.ERROR_TYPE] for p in duration] == ["anthropic.RateLimitError"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("transport_error", "client_error"),
    [
        (httpx2.ReadTimeout("timed out"), anthropic.APITimeoutError),
        (httpx2.ConnectError("connection refused"), anthropic.APIConnectionError),
    ],
)
def test_timeouts_and_connection_errors_propagate_and_mark_the_span(
    capture: Capture, instrumented: None, transport_error: Exception, client_error: type[Exception]
) -> None:
    with pytest.raises(client_error) as raised:
        Server(error=transport_error).client().messages.create(**REQUEST)

    assert type(raised.value) is client_error
    assert raised.value.__cause__ is transport_error
    span = only_span(capture)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[semconv.ERROR_TYPE] == f"anthropic.{client_error.__name__}"


async def test_async_errors_propagate_and_mark_the_span(
    capture: Capture, instrumented: None
) -> None:
    with pytest.raises(anthropic.RateLimitError):
        await Server(status=429, body=RATE_LIMIT_BODY).async_client().messages.create(**REQUEST)
    assert attrs(only_span(capture))[semconv.ERROR_TYPE] == "anthropic.RateLimitError"


def test_content_stays_off_the_span_by_default(capture: Capture, instrumented: None) -> None:
    Server().client().messages.create(**REQUEST)
    attributes = attrs(only_span(capture))
    assert semconv.GEN_AI_INPUT_MESSAGES not in attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in attributes
    assert ANSWER not in json.dumps(attributes)


def test_content_is_on_the_span_when_capture_is_on(
    otel_capture_factory: Factory, instrumented: None
) -> None:
    capture = otel_capture_factory(pricing=PRICES, capture_content=True)
    Server().client().messages.create(**REQUEST)
    attributes = attrs(only_span(capture))
    prompt = json.loads(attributes[semconv.GEN_AI_INPUT_MESSAGES])
    assert prompt[0]["parts"][0]["content"] == REQUEST["messages"][0]["content"]
    output = json.loads(attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"][0]["content"] == ANSWER
    assert output[0]["finish_reason"] == "stop"


# --- instrumenting and undoing it ---------------------------------------------------------


def test_instrumenting_twice_gives_one_span_per_call(capture: Capture) -> None:
    otel_ml.instrument_anthropic()
    otel_ml.instrument_anthropic()
    try:
        Server().client().messages.create(**REQUEST)
        assert len(capture.spans()) == 1
        # One wrapper layer over the client's own method, not two.
        assert vars(Messages)["create"].__wrapped__ is ORIGINAL_CREATE
    finally:
        otel_ml.uninstrument_anthropic()


def test_uninstrument_restores_the_client(capture: Capture) -> None:
    otel_ml.instrument_anthropic()
    otel_ml.uninstrument_anthropic()
    otel_ml.uninstrument_anthropic()  # a second undo changes nothing

    server = Server()
    server.client().messages.create(**REQUEST)
    assert capture.spans() == []
    assert vars(Messages)["create"] is ORIGINAL_CREATE
    assert _base_client.start_api_call_span is ORIGINAL_START_SPAN
    assert not hasattr(_base_client.BaseClient._build_request, "__wrapped__")


def test_one_client_only(capture: Capture) -> None:
    server = Server()
    traced, other = server.client(), server.client()
    otel_ml.instrument_anthropic(traced)
    otel_ml.instrument_anthropic(traced)  # idempotent per client too
    try:
        traced.messages.create(**REQUEST)
        other.messages.create(**REQUEST)
        assert len(capture.spans()) == 1
    finally:
        otel_ml.uninstrument_anthropic(traced)
    traced.messages.create(**REQUEST)
    assert len(capture.spans()) == 1
    assert "create" not in vars(traced.messages)
    assert _base_client.start_api_call_span is ORIGINAL_START_SPAN


def test_a_collected_client_turns_the_request_hooks_off(capture: Capture) -> None:
    server = Server()
    client = server.client()
    otel_ml.instrument_anthropic(client)
    client.messages.create(**REQUEST)
    assert len(capture.spans()) == 1
    assert hasattr(_base_client.BaseClient._build_request, "__wrapped__")
    del client
    gc.collect()
    # Without uninstrument_anthropic(client): the hooks went with the last client.
    assert not hasattr(_base_client.BaseClient._build_request, "__wrapped__")
    assert _base_client.start_api_call_span is ORIGINAL_START_SPAN
    server.client().messages.create(**REQUEST)
    assert len(capture.spans()) == 1


async def test_one_async_client_only(capture: Capture) -> None:
    server = Server()
    traced, other = server.async_client(), server.async_client()
    otel_ml.instrument_anthropic(traced)
    try:
        await traced.messages.create(**REQUEST)
        await other.messages.create(**REQUEST)
        assert len(capture.spans()) == 1
        assert isinstance(traced.messages, AsyncMessages)
    finally:
        otel_ml.uninstrument_anthropic(traced)


@pytest.mark.parametrize("order", ["global first", "client first"])
def test_global_and_per_client_instrument_a_call_once(
    otel_capture_factory: Factory, order: str
) -> None:
    global_capture = otel_capture_factory(pricing=PRICES)
    client_capture = otel_capture_factory(pricing=PRICES)
    client = Server().client()
    steps = [
        lambda: otel_ml.instrument_anthropic(telemetry=global_capture.telemetry),
        lambda: otel_ml.instrument_anthropic(client, telemetry=client_capture.telemetry),
    ]
    for step in steps if order == "global first" else reversed(steps):
        step()
    try:
        client.messages.create(**REQUEST)
        Server().client().messages.create(**REQUEST)
    finally:
        otel_ml.uninstrument_anthropic(client)
        otel_ml.uninstrument_anthropic()
    # The client's call went to its own telemetry, once; the other client's to the global one.
    assert len(client_capture.spans()) == 1
    assert len(global_capture.spans()) == 1


def test_a_non_client_is_refused_with_a_warning(
    capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        otel_ml.instrument_anthropic(object())
    assert "instrument_anthropic() takes an anthropic client, got object" in caplog.text


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("wrapt", "instrument_anthropic() needs wrapt, which is not installed: "
                  "pip install 'otel-ml[anthropic]'"),
        # Without the client there is nothing to instrument, and the extra would not bring it.
        ("anthropic", "instrument_anthropic() found no anthropic package: nothing to instrument"),
    ],
)
def test_a_missing_dependency_is_named_and_nothing_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, missing: str, expected: str
) -> None:
    package = sys.modules["otel_ml.instrumentation._anthropic"]
    for name in [n for n in sys.modules if n.startswith("otel_ml.instrumentation._anthropic.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(package, "_instrumentor", raising=False)
    monkeypatch.setitem(sys.modules, missing, None)  # type: ignore[arg-type]
    monkeypatch.setattr("otel_ml._safety._reported", set())
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        otel_ml.instrument_anthropic()
        otel_ml.uninstrument_anthropic()
    assert expected in caplog.text


def test_import_otel_ml_loads_neither_the_client_nor_wrapt() -> None:
    code = (
        "import sys, otel_ml; "
        "print(sorted(m for m in ('anthropic', 'wrapt', 'opentelemetry.instrumentation') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
