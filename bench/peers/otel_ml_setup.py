"""otel-ml's set-up for the benchmark, in one of three provider modes.

- ``configure`` (the default): the providers ``otel_ml.configure()`` builds
  (baggage processor, enrichment, its views and periodic reader), with the two
  exporters it would build swapped for discarding ones, so what is measured is
  otel-ml's own provider set-up without network or disk.
- ``sdk``: ``configure(tracer_provider=..., meter_provider=...)`` with the plain
  SDK providers every peer gets, so the user's SDK decides the per-record cost.
- ``default``: ``configure()`` with nothing, as the README starts: the embedded
  default writing OTLP JSON lines to a temporary folder (real disk I/O).

The exporter factories patched here are private to ``otel_ml.providers``: if
they are renamed, this fails loudly rather than measuring something else.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

import harness

PACKAGES = ("otel-ml", "opentelemetry-instrumentation", "wrapt")


def telemetry(mode: str) -> tuple[Any, harness.Providers]:
    import otel_ml

    if mode == "sdk":
        providers = harness.sdk_providers()
        tel = otel_ml.configure(
            tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
        )
        return tel, providers
    from otel_ml import providers as builders

    sink = harness.Sink()
    if mode == "configure":
        # Any endpoint: the exporters built for it are replaced below.
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
        builders._span_exporter = lambda resource, destination: sink.span_exporter()
        builders._metric_exporter = lambda resource, destination: sink.metric_exporter()
    elif mode == "default":
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        folder = tempfile.mkdtemp(prefix="otel-ml-bench-")
        # Registered before configure() registers its shutdown: runs after it.
        atexit.register(shutil.rmtree, folder, True)
        os.environ["OTEL_ML_DATA_DIR"] = folder
        span_exporter, metric_exporter = builders._span_exporter, builders._metric_exporter
        builders._span_exporter = lambda resource, destination: sink.span_exporter(
            span_exporter(resource, destination)
        )
        builders._metric_exporter = lambda resource, destination: sink.metric_exporter(
            metric_exporter(resource, destination)
        )
    else:
        raise SystemExit(f"unknown provider mode {mode!r}")
    tel = otel_ml.configure(service_name="bench")
    return tel, harness.Providers(tel.tracer_provider, tel.meter_provider, sink)


def metrics() -> tuple[str, ...]:
    """What otel-ml records for each streamed call with provider usage."""
    from otel_ml import semconv

    return (
        semconv.METRIC_TOKEN_USAGE,
        semconv.METRIC_OPERATION_DURATION,
        semconv.METRIC_TIME_TO_FIRST_CHUNK,
        semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
        semconv.METRIC_COST,
    )
