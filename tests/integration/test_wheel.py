"""The built otel-ml wheel in a clean venv, as a production service would take it.

- the wheel holds the SDK only: no ``demo_rag``, no tests, no configs;
- ``import otel_ml`` with the base install loads no OTel SDK, protobuf, grpc,
  tiktoken or yaml (none of them is even installed), and ``configure()`` says
  which extra it needs instead of raising;
- with the user's own OTel SDK providers, a span and its metrics round-trip
  through an in-memory exporter, and still none of the heavy modules loads;
- a CLI subcommand whose dependencies are missing names the extra.

Builds and installs from PyPI's index, so it needs the package registry, as
``make`` itself does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf", "grpc", "tiktoken",
         "yaml", "numpy", "requests", "otel_ml.cli", "otel_ml.drift", "demo_rag")

_LOADED_HEAVY = f"""
import sys
heavy = {HEAVY!r}
loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
          str(REPO)])
    (built,) = out.glob("otel_ml-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with the wheel and its base dependencies only."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=True)
    python = root / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)])
    yield python


def test_the_wheel_holds_the_sdk_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"otel_ml"}
    assert "otel_ml/data/prices.json" in names
    assert "otel_ml/py.typed" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert [line.split()[1] for line in requires] == ["opentelemetry-api<2,>=1.45"]


def test_base_install_has_no_heavy_dependency(clean_venv: Path) -> None:
    installed = _run([str(clean_venv), "-m", "pip", "list", "--format=json"])
    names = {package["name"].lower() for package in json.loads(installed)}
    assert "demo_rag" not in names and "otel-ml-demo-rag" not in names
    for heavy in ("opentelemetry-sdk", "protobuf", "grpcio", "tiktoken", "pyyaml", "requests"):
        assert heavy not in names


def test_import_and_configure_without_the_sdk(clean_venv: Path) -> None:
    code = "import logging\n" + _LOADED_HEAVY + """
logging.basicConfig(level=logging.ERROR, format="%(message)s")
import otel_ml
loaded_at_import = sorted(m for m in sys.modules
                          if any(m == h or m.startswith(h + ".") for h in heavy))
tel = otel_ml.configure(service_name="no-sdk", endpoint="http://collector:abc")
with otel_ml.tenant("acme"), tel.generation(model="gpt-4o", provider="openai") as g:
    g.usage(input_tokens=10, output_tokens=5)
tel.shutdown()
print(loaded_at_import)
"""
    result = subprocess.run([str(clean_venv), "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "pip install 'otel-ml[otlp]'" in result.stderr


def test_a_span_round_trips_through_the_users_own_providers(clean_venv: Path) -> None:
    _run([str(clean_venv), "-m", "pip", "install", "--quiet", "opentelemetry-sdk>=1.45,<2"])
    code = "import json\n" + _LOADED_HEAVY + """
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
before = set(sys.modules)
import otel_ml
exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
tel = otel_ml.configure(tracer_provider=tracer_provider,
                        meter_provider=MeterProvider(metric_readers=[reader]))
with otel_ml.tenant("acme"):
    with otel_ml.generation(model="gpt-4o-mini", provider="openai", stream=True) as g:
        for piece in g.wrap(["Hel", "lo"]):
            pass
        g.usage(input_tokens=1000, output_tokens=500)
(span,) = exporter.get_finished_spans()
names = {m.name for rm in reader.get_metrics_data().resource_metrics
         for sm in rm.scope_metrics for m in sm.metrics}
new = sorted(m for m in set(sys.modules) - before
             if any(m == h or m.startswith(h + ".") for h in heavy if h != "opentelemetry.sdk"))
print(json.dumps({"name": span.name, "attributes": dict(span.attributes), "metrics": sorted(names),
                  "loaded": new}))
"""
    result = json.loads(_run([str(clean_venv), "-c", code]))
    attributes = result["attributes"]
    assert result["name"] == "chat gpt-4o-mini"
    assert attributes["tenant.id"] == "acme"
    assert attributes["gen_ai.usage.input_tokens"] == 1000
    assert attributes["gen_ai.usage.output_tokens"] == 500
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(0.00045)
    assert "gen_ai.client.operation.time_to_first_chunk" in result["metrics"]
    assert "gen_ai.client.token.usage" in result["metrics"]
    assert result["loaded"] == []


def test_a_subcommand_names_the_extra_it_needs(clean_venv: Path) -> None:
    script = clean_venv.with_name("otel-ml")
    result = subprocess.run([str(script), "drift-demo"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode != 0
    assert "pip install 'otel-ml[drift-demo]'" in result.stderr
    assert "Traceback" not in result.stderr
    demo = subprocess.run([str(script), "demo"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert "pip install ./demo_rag" in demo.stderr


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    return result.stdout
