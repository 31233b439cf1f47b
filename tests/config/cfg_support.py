"""Shared helpers for the configuration tests: paths, real binaries, YAML.

The binaries are the real programs the stack runs (built or installed by
scripts/backends.sh). A missing one fails the test that needs it: checking a
config without the program that reads it would prove nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "collector-config"
PROMETHEUS_DIR = CONFIG / "prometheus"
SCRIPTS = REPO / "scripts"

# The collector's port contract (otelcol.yaml defaults), which the stack
# runner, the Prometheus targets and docker-compose.yml rely on.
COLLECTOR_PORTS = {
    "OTELCOL_OTLP_GRPC_PORT": 4317,
    "OTELCOL_OTLP_HTTP_PORT": 4318,
    "OTELCOL_PROMETHEUS_PORT": 8889,
    "OTELCOL_TELEMETRY_PORT": 8888,
    "OTELCOL_HEALTH_PORT": 13133,
    "OTELCOL_ZPAGES_PORT": 55679,
    "OTELCOL_PPROF_PORT": 1777,
}

_ENV_REF = re.compile(r"\$\{env:(\w+)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Program:
    """Where to look for one backend binary."""

    env_var: str
    path_name: str
    cache_globs: tuple[str, ...] = ()


def _cache_dir() -> Path:
    explicit = os.environ.get("OTEL_ML_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "otel-ml"


def _collector_build_dir() -> str:
    # scripts/backends.sh keys the build by the manifest's hash: a binary
    # built from an older manifest may lack a component otelcol.yaml uses.
    digest = hashlib.sha256((CONFIG / "builder.yaml").read_bytes()).hexdigest()[:12]
    return f"otelcol-*-{digest}/otelcol-otel-ml"


OTELCOL = Program("OTELCOL_BIN", "otelcol-otel-ml", (_collector_build_dir(),))
JAEGER = Program("JAEGER_BIN", "jaeger", ("jaeger-*/jaeger",))
PROMTOOL = Program("PROMTOOL_BIN", "promtool")
AMTOOL = Program("AMTOOL_BIN", "amtool")


def find_binary(program: Program) -> Path:
    """$ENV_VAR, else PATH, else the scripts/backends.sh cache; fail if none."""
    explicit = os.environ.get(program.env_var)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{program.env_var}={explicit} is not an executable file", pytrace=False)
        return path
    on_path = shutil.which(program.path_name)
    if on_path:
        return Path(on_path)
    for pattern in program.cache_globs:
        found = sorted(_cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    pytest.fail(
        f"{program.path_name} not found (${program.env_var}, PATH, {_cache_dir()}): "
        "run scripts/backends.sh to build/install the backends",
        pytrace=False,
    )


def run(cmd: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a program; its output is kept for the assertion message."""
    return subprocess.run(
        [str(part) for part in cmd], capture_output=True, text=True, timeout=120, **kwargs
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def env_default(value: str, env: dict[str, str] | None = None) -> str:
    """Expand ``${env:VAR:-default}`` the way the collector does, from ``env`` only."""
    env = env or {}
    return _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)


def env_refs(value: str) -> list[tuple[str, str]]:
    """The (variable, default) pairs referenced in a config value."""
    return [(m.group(1), m.group(2) or "") for m in _ENV_REF.finditer(value)]


def port_of(endpoint: str) -> int:
    """The port of ``host:port`` or ``scheme://host:port/path``."""
    match = re.search(r":(\d+)(?:/|$)", endpoint)
    assert match, f"no port in {endpoint!r}"
    return int(match.group(1))


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve annotations through sys.modules
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
