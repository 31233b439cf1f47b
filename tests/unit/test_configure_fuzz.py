"""``configure()`` never raises: fuzzed arguments and every ``OTEL_*`` variable it
or the OTel SDK reads while building providers.

Each example configures real providers and exporters (nothing is mocked), checks
that the returned Telemetry records a span, and shuts it down. Nothing is
recorded on the owned providers before shutdown, so no export goes to whatever
endpoint the example made up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

import otel_ml
from otel_ml import telemetry as telemetry_module

ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
PROTOCOL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
)
# Read by otel-ml itself, or by the OTel SDK inside the providers configure() builds.
OTHER_VARIABLES = (
    "OTEL_SERVICE_NAME",
    "OTEL_SERVICE_VERSION",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_ML_CONTENT_MAX_LENGTH",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
)
ALL_VARIABLES = (*ENDPOINT_VARIABLES, *PROTOCOL_VARIABLES, *OTHER_VARIABLES, "OTEL_ML_DATA_DIR")

# Environment values cannot hold NUL; everything else is fair game.
env_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]),
                   max_size=40)
endpoints = st.one_of(
    st.sampled_from([
        "http://collector:abc", "http://collector:99999", "http://", "://x", "ftp://c:4318",
        "127.0.0.1:1", "http://127.0.0.1:1", "https://127.0.0.1:1/v1/traces", "http://[::1:1",
        "http://127.0.0.1:1\n", " http://127.0.0.1:1", "http://user:pw@127.0.0.1:1",
    ]),
    st.builds(lambda port, path: f"http://127.0.0.1:{port}{path}",
              st.one_of(st.integers(-5, 70000).map(str), env_text), env_text),
    env_text,
)
numbers = st.one_of(st.integers(-(10**12), 10**12).map(str),
                    st.sampled_from(["1e400", "nan", "-inf", "", " 5 ", "0x10"]), env_text)
protocols = st.one_of(st.sampled_from(["grpc", "http/protobuf", "http/json", "GRPC", ""]),
                      env_text)
environments = st.fixed_dictionaries(
    {},
    optional={
        **{name: endpoints for name in ENDPOINT_VARIABLES},
        **{name: protocols for name in PROTOCOL_VARIABLES},
        **{name: st.one_of(numbers, env_text) for name in OTHER_VARIABLES},
        "OTEL_ML_DATA_DIR": st.sampled_from(["data", "", "a/../b", "\u00e9t\u00e9"]),
    },
)
arguments = st.fixed_dictionaries(
    {},
    optional={
        "service_name": st.one_of(st.none(), env_text, st.integers(), st.just(b"x")),
        "endpoint": st.one_of(st.none(), endpoints, st.integers()),
        "capture_content": st.one_of(st.booleans(), st.none(), st.text(max_size=3)),
        "pricing": st.one_of(st.none(), st.just({"models": {"m": {"input": "x"}}}),
                             st.just("/nonexistent/prices.yaml"), st.integers(), env_text),
        "max_tenants": st.one_of(st.integers(-5, 10**6), st.none(), st.floats(), st.text()),
        "tracer_provider": st.sampled_from([None, "not a provider", object()]),
        "meter_provider": st.sampled_from([None, 3, object()]),
    },
)


# Real providers take a few ms each: no deadline; the fixture only resets state.
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def clean_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(telemetry_module, "_configured", {})
    monkeypatch.setattr(telemetry_module, "_default", None)
    monkeypatch.chdir(tmp_path)  # a relative OTEL_ML_DATA_DIR lands here
    logging.getLogger("otel_ml").setLevel(logging.CRITICAL)  # thousands of expected warnings
    yield tmp_path
    logging.getLogger("otel_ml").setLevel(logging.NOTSET)


@settings(FUZZ, max_examples=150)
@given(environment=environments, kwargs=arguments)
def test_configure_never_raises(
    clean_state: Path, environment: dict[str, str], kwargs: dict[str, Any]
) -> None:
    with _environment(clean_state, environment):
        telemetry = otel_ml.configure(**kwargs)
        assert isinstance(telemetry, otel_ml.Telemetry)
        telemetry.shutdown()


@settings(FUZZ, max_examples=60)
@given(environment=environments, endpoint=st.one_of(st.none(), endpoints))
def test_configure_with_the_users_tracer_still_records(
    clean_state: Path, environment: dict[str, str], endpoint: str | None
) -> None:
    """Whatever the environment says, the caller's tracer provider gets the span."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with _environment(clean_state, environment):
        telemetry = otel_ml.configure(endpoint=endpoint, tracer_provider=provider,
                                      meter_provider=metrics.NoOpMeterProvider())
        with telemetry.generation(model="gpt-4o-mini", provider="openai") as g:
            g.usage(input_tokens=3, output_tokens=2)
        telemetry.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes is not None and span.attributes["gen_ai.usage.output_tokens"] == 2


@contextmanager
def _environment(folder: Path, environment: dict[str, str]) -> Iterator[None]:
    """Exactly ``environment`` for the variables under test, restored afterwards
    (monkeypatch is function-scoped, and hypothesis runs many examples per call)."""
    saved = {name: os.environ.get(name) for name in ALL_VARIABLES}
    try:
        for name in ALL_VARIABLES:
            os.environ.pop(name, None)
        os.environ["OTEL_ML_DATA_DIR"] = str(folder / "otel-data")
        os.environ.update(environment)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
