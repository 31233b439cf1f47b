"""``import otel_ml`` costs about what opentelemetry-api costs: no OTel SDK,
exporter, protobuf, tokenizer, YAML, client library or wrapt until a feature
that needs one is used. A fresh interpreter checks it, so earlier imports of
the test session cannot hide a regression."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_the_log_exporter_loads_only_when_a_record_is_exported(tmp_path: Path) -> None:
    # configure() builds a logger provider for evaluation events; its OTLP
    # exporter (about 4 MB) must wait until there is a record to send.
    code = (
        "import sys, otel_ml\n"
        "from opentelemetry._logs import LogRecord\n"
        "LOG = 'opentelemetry.exporter.otlp.proto.http._log_exporter'\n"
        "tel = otel_ml.configure(service_name='t', endpoint='http://127.0.0.1:9')\n"
        "print(LOG in sys.modules)\n"
        "tel.logger_provider.get_logger('t').emit(LogRecord(body='x'))\n"
        "import time\n"
        "deadline = time.monotonic() + 20\n"
        "while LOG not in sys.modules and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)  # the batch thread exports after OTEL_BLRP_SCHEDULE_DELAY\n"
        "print(LOG in sys.modules, flush=True)\n"
        "os._exit(0)  # skip the shutdown flush towards the closed port\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import os\n" + code], capture_output=True, text=True,
        check=True, timeout=60, cwd=tmp_path, env={**os.environ, "OTEL_BLRP_SCHEDULE_DELAY": "20"},
    )
    assert result.stdout.split() == ["False", "True"]
