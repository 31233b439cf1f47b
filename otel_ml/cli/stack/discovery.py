"""Where the stack's programs, configs and working files are.

Programs come from ``OTELCOL_BIN``/``JAEGER_BIN``/``PROMETHEUS_BIN``/
``ALERTMANAGER_BIN``/``VICTORIAMETRICS_BIN``/``VICTORIALOGS_BIN``, else ``PATH``, else the cache
that ``make backends`` fills (``$OTEL_ML_CACHE`` or ``~/.cache/otel-ml``). Chroma's ``chroma`` comes
from ``CHROMA_BIN``, else next to this Python (the venv that has chromadb),
else ``PATH``; it is optional for the stack and required by the demo.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otel_ml.cli.stack.errors import StackError

# otel_ml/cli/stack/discovery.py -> the checkout (when not installed from a wheel).
_CHECKOUT: Final = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class BinarySpec:
    """How to find one program: env var, then names on PATH, then the build cache."""

    env: str
    path_names: tuple[str, ...]
    cache_glob: str | None = None


BINARY_SPECS: Final[Mapping[str, BinarySpec]] = {
    # A stock `otelcol` lacks redaction/span_metrics/file_storage, so only our
    # build or the contrib distribution are accepted from PATH.
    "otelcol": BinarySpec(
        "OTELCOL_BIN", ("otelcol-otel-ml", "otelcol-contrib"), "otelcol-*/otelcol-otel-ml"
    ),
    "jaeger": BinarySpec("JAEGER_BIN", ("jaeger",), "jaeger-*/jaeger"),
    "prometheus": BinarySpec("PROMETHEUS_BIN", ("prometheus",)),
    "alertmanager": BinarySpec("ALERTMANAGER_BIN", ("prometheus-alertmanager", "alertmanager")),
    # The single-node build scripts/backends.sh caches, keyed by version.
    "victoriametrics": BinarySpec(
        "VICTORIAMETRICS_BIN", ("victoria-metrics",), "victoria-metrics-*/victoria-metrics"
    ),
    # The log store (single node), built and cached the same way.
    "victorialogs": BinarySpec(
        "VICTORIALOGS_BIN", ("victoria-logs",), "victoria-logs-*/victoria-logs"
    ),
}


@dataclass(frozen=True)
class Binaries:
    otelcol: Path
    jaeger: Path
    prometheus: Path
    alertmanager: Path
    # Optional: the stack runs a Chroma server only where chromadb is installed.
    chroma: Path | None = None
    # resolve() requires it (BINARY_SPECS); None only in a hand-made Binaries.
    victoriametrics: Path | None = None
    victorialogs: Path | None = None  # as victoriametrics

    @classmethod
    def resolve(
        cls, environ: Mapping[str, str] = os.environ, config_dir: Path | None = None
    ) -> Binaries:
        """Find every required program, or fail naming every missing one at once.

        All at once: on a fresh machine every one is missing, and one error
        per run would take four runs to learn that.
        """
        found: dict[str, Path] = {}
        missing: list[str] = []
        for name, spec in BINARY_SPECS.items():
            path = _find_binary(spec, environ, config_dir)
            if path is None:
                names = " / ".join(spec.path_names)
                missing.append(f"  {name}: set {spec.env}, or put {names} on PATH")
            else:
                found[name] = path
        if missing:
            raise StackError(
                "backend programs not found:\n" + "\n".join(missing)
                + f"\nRun `make backends` (builds/installs them; cache: {cache_dir(environ)})."
            )
        return cls(**found, chroma=find_chroma(environ))


CHROMA_BIN_ENV: Final = "CHROMA_BIN"
CHROMA_MISSING: Final = (
    "Chroma's server program `chroma` was not found: set CHROMA_BIN, or install chromadb "
    "into this Python (pip install 'chromadb>=1.5.9,<1.6'; `make demo` does)"
)


def find_chroma(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The ``chroma`` program: ``$CHROMA_BIN``, next to this Python, or on ``PATH``.

    Next to this Python first: the chromadb installed with the demo is the one
    its client speaks to, where a ``chroma`` on PATH may be another version.
    """
    explicit = environ.get(CHROMA_BIN_ENV)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(f"{CHROMA_BIN_ENV}={explicit} is not an executable file")
        return path
    beside = Path(sys.executable).parent / "chroma"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which("chroma", path=environ.get("PATH"))
    return Path(on_path) if on_path else None


def require_chroma(environ: Mapping[str, str] = os.environ) -> Path:
    """:func:`find_chroma`, or a :class:`StackError` saying how to install it."""
    found = find_chroma(environ)
    if found is None:
        raise StackError(CHROMA_MISSING)
    return found


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The build cache of scripts/backends.sh."""
    if environ.get("OTEL_ML_CACHE"):
        return Path(environ["OTEL_ML_CACHE"])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "otel-ml"


def default_workdir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where `stack up` keeps logs, Prometheus data and the collector's disk queue."""
    if environ.get("OTEL_ML_STACK_DIR"):
        return Path(environ["OTEL_ML_STACK_DIR"])
    return cache_dir(environ) / "stack"


def _find_binary(
    spec: BinarySpec, environ: Mapping[str, str], config_dir: Path | None
) -> Path | None:
    explicit = environ.get(spec.env)
    if explicit:
        path = Path(explicit)
        # Fail rather than fall back: a wrong explicit path is a typo to report.
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(f"{spec.env}={explicit} is not an executable file")
        return path
    for name in spec.path_names:
        on_path = shutil.which(name, path=environ.get("PATH"))
        if on_path:
            return Path(on_path)
    if spec.cache_glob is None:
        return None
    candidates = [p for p in cache_dir(environ).glob(spec.cache_glob) if os.access(p, os.X_OK)]
    return _prefer_current_manifest(candidates, config_dir)


def _prefer_current_manifest(candidates: list[Path], config_dir: Path | None) -> Path | None:
    # backends.sh keys collector builds by the manifest's hash: a build of an
    # older manifest may lack a component the config now uses.
    manifest = config_dir / "builder.yaml" if config_dir else None
    if manifest is not None and manifest.is_file():
        digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
        current = [p for p in candidates if p.parent.name.endswith(digest)]
        candidates = current or candidates
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def find_config_dir(
    explicit: Path | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Path:
    """The project's ``collector-config/``: the configs the four programs run with.

    Looked for in this order: ``explicit`` (``--config-dir``),
    ``$OTEL_ML_CONFIG_DIR``, ``collector-config/`` in the current directory
    or any parent (so any folder of a checkout works), and the checkout this
    package runs from (an editable install). The configs are not in the
    wheel, so an installed ``otel-ml`` needs one of the first three; the
    error says so in one line, without a traceback.
    """
    if explicit is not None:
        return _explicit_config_dir(f"--config-dir {explicit}", explicit)
    from_env = environ.get("OTEL_ML_CONFIG_DIR")
    if from_env:
        return _explicit_config_dir(f"OTEL_ML_CONFIG_DIR={from_env}", Path(from_env))
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents, _CHECKOUT):
        if _is_config_dir(folder / "collector-config"):
            return folder / "collector-config"
    raise StackError(
        f"collector-config/ not found in {here} or its parents, nor next to the installed "
        "package (the configs are not in the wheel): clone the otel-ml repository and run "
        "from it, or pass --config-dir DIR (or set OTEL_ML_CONFIG_DIR) pointing at its "
        "collector-config/"
    )


def _explicit_config_dir(given_as: str, path: Path) -> Path:
    # Fail rather than search on: a named folder without the configs is a typo
    # to report, and silently using another checkout's configs would hide it.
    if not _is_config_dir(path):
        raise StackError(
            f"{given_as}: no otelcol.yaml there; it must be the collector-config/ "
            "folder of an otel-ml checkout"
        )
    return path


def _is_config_dir(path: Path) -> bool:
    return (path / "otelcol.yaml").is_file()
