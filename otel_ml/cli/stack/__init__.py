"""Run the real backends natively: OTel Collector, Jaeger, Prometheus, Alertmanager,
VictoriaMetrics, and Chroma when chromadb is installed.

``otel-ml stack up`` starts these programs with the project's configs from
``collector-config/`` and stays in the foreground until Ctrl-C or ``otel-ml
stack down``; ``--detach`` runs the same runner in the background. The e2e
tests use the Python API::

    with Stack(tmp_dir, ports=Ports.free()) as stack:
        otlp = stack.urls.otlp_http              # http://127.0.0.1:<port>
        ...

One module per job: :mod:`.ports` (every port, from the environment or
free), :mod:`.discovery` (programs, configs, cache), :mod:`.components` (each
program's command line and rendered config), :mod:`.runner` (:class:`Stack`),
:mod:`.state` (the state file `down`/`status` read) and :mod:`.command` (the
CLI). Spawning, health polling and the process-group stop are
:mod:`otel_ml.cli.supervisor`'s, shared with the demo launcher. Only the
standard library is used, so the command needs none of the demo's extras.
"""

from __future__ import annotations

from otel_ml.cli.stack.command import add_arguments, main, run
from otel_ml.cli.stack.components import Component, materialize_prometheus
from otel_ml.cli.stack.discovery import (
    BINARY_SPECS,
    Binaries,
    BinarySpec,
    cache_dir,
    default_workdir,
    find_config_dir,
)
from otel_ml.cli.stack.errors import StackError
from otel_ml.cli.stack.ports import HOST, PORT_ENV, Ports, Urls
from otel_ml.cli.stack.runner import Stack
from otel_ml.cli.stack.state import STATE_FILE
from otel_ml.cli.supervisor import LOG_TAIL_LINES, Progress, http_ok, log_tail

__all__ = [
    "BINARY_SPECS",
    "HOST",
    "LOG_TAIL_LINES",
    "PORT_ENV",
    "STATE_FILE",
    "Binaries",
    "BinarySpec",
    "Component",
    "Ports",
    "Progress",
    "Stack",
    "StackError",
    "Urls",
    "add_arguments",
    "cache_dir",
    "default_workdir",
    "find_config_dir",
    "http_ok",
    "log_tail",
    "main",
    "materialize_prometheus",
    "run",
]
