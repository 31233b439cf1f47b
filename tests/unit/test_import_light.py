"""``import otel_ml`` costs about what opentelemetry-api costs: no OTel SDK,
exporter, protobuf, tokenizer, YAML, client library or wrapt until a feature
that needs one is used. A fresh interpreter checks it, so earlier imports of
the test session cannot hide a regression."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation",
    "google.protobuf", "grpc", "tiktoken", "yaml", "numpy", "scipy",
    "openai", "anthropic", "httpx2", "wrapt", "fastapi", "starlette",
)


def test_import_otel_ml_loads_nothing_heavy() -> None:
    code = (
        "import json, sys, otel_ml\n"
        "otel_ml.edge, otel_ml.instrument_openai, otel_ml.flush_on_shutdown\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "      if any(m == h or m.startswith(h + '.') for h in heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []


def test_configure_with_the_apps_own_providers_loads_no_protobuf() -> None:
    # protobuf and the OTLP encoders serve the embedded default's files only
    # (about 5 MB resident): bringing your own providers must not load them.
    code = (
        "import json, sys, otel_ml\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "otel_ml.configure(tracer_provider=TracerProvider(), meter_provider=MeterProvider())\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "      if m.startswith(('google.protobuf', 'opentelemetry.exporter', 'grpc')))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
