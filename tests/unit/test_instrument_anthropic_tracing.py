"""The anthropic client's own OpenTelemetry tracing (on by default since 2.x)
and instrument_anthropic() together, with otel-ml's providers installed as the
global ones: one call gives one generation span, counted once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.util._once import Once
from test_instrument_anthropic_wire import INPUT_WITH_CACHE, MODEL, PRICES, REQUEST, Factory, Server

import otel_ml
from otel_ml import semconv
from otel_ml.testing import Capture

CLIENT_SPAN = "anthropic.messages.create"  # the name the client gives its own call span
GENERATION = f"chat {MODEL}"


@pytest.fixture
def global_capture(otel_capture_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> Capture:
    """otel-ml's providers as the process-wide tracer provider, as configure()
    installs them, so that the client's default path (no tracer_provider
    option) records into the same exporter."""
    capture: Capture = otel_capture_factory(pricing=PRICES)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    trace.set_tracer_provider(capture.telemetry.tracer_provider)
    return capture


@pytest.fixture
def instrumented() -> Iterator[None]:
    otel_ml.instrument_anthropic()
    try:
        yield
    finally:
        otel_ml.uninstrument_anthropic()


def names(capture: Capture) -> list[str]:
    return sorted(span.name for span in capture.spans())


def test_without_otel_ml_the_client_emits_its_own_chat_span(global_capture: Capture) -> None:
    # The evidence for the decision: the client's span carries usage of its own,
    # which a span-based cost pipeline would count a second time.
    Server().client().messages.create(**REQUEST)
    (span,) = global_capture.spans()
    assert span.name == CLIENT_SPAN
    assert (span.attributes or {})[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT_WITH_CACHE


def test_an_instrumented_call_gives_one_generation_span(
    global_capture: Capture, instrumented: None
) -> None:
    server = Server()
    server.client().messages.create(**REQUEST)
    for _ in server.client().messages.create(stream=True, **REQUEST):
        pass
    with server.client().messages.stream(**REQUEST) as stream:
        stream.get_final_message()

    assert names(global_capture) == [GENERATION] * 3
    input_tokens = {semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
    assert global_capture.metric_sum(semconv.METRIC_TOKEN_USAGE, input_tokens) == (
        3 * INPUT_WITH_CACHE
    )
    # Each request carries the generation span's context, not a span that was never exported.
    sent = {request.headers["traceparent"].split("-")[2] for request in server.requests}
    assert sent == {f"{span.context.span_id:016x}" for span in global_capture.spans()}


async def test_an_instrumented_async_call_gives_one_generation_span(
    global_capture: Capture, instrumented: None
) -> None:
    client = Server().async_client()
    await client.messages.create(**REQUEST)
    async with client.messages.stream(**REQUEST) as stream:
        await stream.get_final_message()
    assert names(global_capture) == [GENERATION] * 2


def test_a_client_given_its_own_tracer_provider_gives_one_span(
    otel_capture_factory: Factory, instrumented: None
) -> None:
    capture: Capture = otel_capture_factory(pricing=PRICES)
    options = {"tracer_provider": capture.telemetry.tracer_provider}
    Server().client(open_telemetry=options).messages.create(**REQUEST)
    assert names(capture) == [GENERATION]


def test_the_client_keeps_its_spans_for_calls_otel_ml_does_not_make(
    global_capture: Capture, instrumented: None
) -> None:
    server = Server(body={"input_tokens": 14})
    server.client().messages.count_tokens(model=MODEL, messages=REQUEST["messages"])
    assert names(global_capture) == ["anthropic.messages.count_tokens"]


def test_after_uninstrument_the_client_s_own_span_is_back(global_capture: Capture) -> None:
    otel_ml.instrument_anthropic()
    otel_ml.uninstrument_anthropic()
    Server().client().messages.create(**REQUEST)
    assert names(global_capture) == [CLIENT_SPAN]
