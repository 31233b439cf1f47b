"""Start the demo's Chroma server and its three services as real processes, and stop
them without orphans.

Usage::

    from demo_rag.launcher import launch

    with launch(out_dir=Path("otel-ml-data")) as services:       # or otlp_endpoint="http://..."
        httpx.post(f"{services.api}/ask", json={"question": "..."},
                   headers={"X-API-Key": services.api_keys["acme"]})

Each service runs as ``python -m demo_rag.<name>`` in its own process group, on a
socket the launcher bound to a free localhost port and passed down (no port race).
The vector database is a Chroma server (``chroma run``, from the chromadb package
installed next to this Python, or ``$CHROMA_BIN``) on a free port with its data in
``out_dir/chroma`` (or a temporary folder), unless ``chroma_url`` names a running
one (``otel-ml stack`` starts one); the retrieval service loads the corpus into it.
``launch`` returns once every ``/healthz`` answers. On exit, normal or not (an
exception, Ctrl-C), every service gets SIGTERM, so it drains requests and flushes its
telemetry, then SIGKILL after ``stop_timeout``. The services also watch the launcher's
pid and shut down if it dies without cleaning up. Spawning, health polling and the
stop are :mod:`otel_ml.cli.supervisor`'s, shared with ``otel-ml stack``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import demo_rag
import otel_ml
from demo_rag import tenants as tenants_config
from demo_rag.chroma_store import CHROMA_URL_ENV
from demo_rag.service import PARENT_PID_ENV
from otel_ml.cli.stack.components import chroma_component, write_chroma_config
from otel_ml.cli.stack.discovery import require_chroma
from otel_ml.cli.stack.errors import StackError
from otel_ml.cli.stack.ports import free_ports
from otel_ml.cli.supervisor import Child, ProcessSpec, StartupError, Supervisor

SERVICES: Final = ("vectordb", "llm", "api")  # start order; api depends on the other two
# The api stops first: while it drains its in-flight answers, vectordb and llm
# are still there to finish them; Chroma last, once nothing queries it.
STOP_STAGES: Final = (("api",), ("vectordb", "llm"), ("chroma",))
# Under out_dir, beside the telemetry: the started Chroma server's database.
CHROMA_DATA_DIR: Final = "chroma"
DEFAULT_TENANTS: Final = ("acme", "globex", "initech")
# Variables that would send a child's telemetry elsewhere than asked.
_DESTINATION_VARS: Final = (
    "OTEL_ML_DATA_DIR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
)


logger = logging.getLogger(__name__)


class LaunchError(RuntimeError):
    """A service exited or did not become healthy; the message has its log tail."""


@dataclass(frozen=True)
class Services:
    """Base URLs of the running services, the API key of each tenant, and the logs."""

    api: str
    vectordb: str
    llm: str
    api_keys: Mapping[str, str]
    log_dir: Path
    pids: Mapping[str, int] = field(default_factory=dict)
    chroma: str = ""  # the Chroma server's base URL

    def log(self, service: str) -> Path:
        """Path of a service's JSON log (stdout and stderr)."""
        return self.log_dir / f"{service}.log"


@contextlib.contextmanager
def launch(
    *,
    out_dir: Path | None = None,
    otlp_endpoint: str | None = None,
    tenants: Sequence[str] = DEFAULT_TENANTS,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    startup_timeout: float = 90.0,  # Chroma and the corpus load come first; CI is slow
    stop_timeout: float = 15.0,
    chroma_url: str | None = None,
    chroma_otlp_endpoint: str | None = None,
) -> Iterator[Services]:
    """Run Chroma, vectordb, llm and api until the ``with`` block exits.

    Exactly one of ``out_dir`` (OTLP JSON lines, the embedded default) and
    ``otlp_endpoint`` (a collector) must be given. ``tenants`` get fresh random API
    keys. ``env`` adds variables for every service (``LLM_SIM_*``, ``LLM_BASE_URL``,
    ``OTEL_METRIC_EXPORT_INTERVAL`` ...). Logs go to ``log_dir``, by default
    ``out_dir/logs`` or a temporary folder removed on exit.

    ``chroma_url``: use that Chroma server instead of starting one.
    ``chroma_otlp_endpoint``: an OTLP/gRPC endpoint for the started Chroma's own
    traces (its exporter speaks gRPC only); by default ``otlp_endpoint`` when
    ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``, else none (with files, nothing takes them).
    """
    if (out_dir is None) == (otlp_endpoint is None):
        raise ValueError("give exactly one of out_dir and otlp_endpoint")
    if not tenants:
        raise ValueError("at least one tenant is needed")
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="demo-rag-")))
        logs = log_dir or (out_dir / "logs" if out_dir is not None else scratch / "logs")
        logs.mkdir(parents=True, exist_ok=True)
        api_keys = {tenant: f"demo-{tenant}-{secrets.token_urlsafe(12)}" for tenant in tenants}
        tenants_file = scratch / "tenants.json"
        tenants_file.write_text(json.dumps(tenants_config.document_for(api_keys)))
        sockets = {name: _listen() for name in SERVICES}
        for sock in sockets.values():
            stack.callback(sock.close)  # the children keep their own copies
        urls = {name: _url(sock) for name, sock in sockets.items()}
        supervisor = Supervisor(on_killed=_warn_killed)
        stack.callback(supervisor.stop, STOP_STAGES, stop_timeout)
        if chroma_url is None:
            grpc = chroma_otlp_endpoint or _grpc_endpoint(otlp_endpoint)
            data = (out_dir or scratch) / CHROMA_DATA_DIR
            chroma_url = _spawn_chroma(supervisor, scratch, data, logs, grpc)
        urls["chroma"] = chroma_url.rstrip("/")
        base_env = _child_env(out_dir, otlp_endpoint, env, tenants_file, urls)
        for name in SERVICES:
            supervisor.spawn(_service(name, sockets[name], base_env, logs, urls[name]))
            sockets[name].close()
        try:
            supervisor.await_healthy(startup_timeout)
        except StartupError as exc:
            raise LaunchError(str(exc)) from None
        yield Services(
            api=urls["api"], vectordb=urls["vectordb"], llm=urls["llm"], api_keys=api_keys,
            log_dir=logs, pids=supervisor.pids, chroma=urls["chroma"],
        )


def _spawn_chroma(
    supervisor: Supervisor, scratch: Path, data: Path, logs: Path, otlp_grpc: str | None
) -> str:
    """Start ``chroma run`` on a free port; returns its URL. Awaited with the services."""
    try:
        binary = require_chroma()
    except StackError as exc:
        raise LaunchError(str(exc)) from None
    # Chroma binds its own port (it cannot inherit a socket): a small window in
    # which another listener could take it, reported by the health check's log tail.
    (port,) = free_ports(1)
    config = write_chroma_config(scratch / "chroma.yaml", data.resolve(), port)
    component = chroma_component(binary, config, port, otlp_grpc_endpoint=otlp_grpc)
    supervisor.spawn(ProcessSpec(
        "chroma", component.argv, env=component.environment(os.environ),
        log=logs / "chroma.log", health_url=component.health_url,
        # Chroma does not watch the launcher's pid as the services do: the kernel
        # stops it if the launching thread dies, when that thread lives as long
        # as the process (the main one); see ProcessSpec.die_with_parent.
        die_with_parent=threading.current_thread() is threading.main_thread(),
    ))
    return f"http://127.0.0.1:{port}"


def _grpc_endpoint(otlp_endpoint: str | None) -> str | None:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    return otlp_endpoint if otlp_endpoint and protocol == "grpc" else None


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def _child_env(
    out_dir: Path | None,
    otlp_endpoint: str | None,
    extra: Mapping[str, str] | None,
    tenants_file: Path,
    urls: Mapping[str, str],
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DESTINATION_VARS}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        env["OTEL_ML_DATA_DIR"] = str(out_dir.resolve())
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = str(otlp_endpoint)
    # The services import demo_rag and otel_ml from wherever this process does, which
    # may be a source checkout rather than an installed package.
    roots = {str(Path(m.__file__ or "").resolve().parent.parent) for m in (demo_rag, otel_ml)}
    env["PYTHONPATH"] = os.pathsep.join([*sorted(roots), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONUNBUFFERED"] = "1"
    env[PARENT_PID_ENV] = str(os.getpid())
    env["VECTORDB_URL"] = urls["vectordb"]
    env["LLM_URL"] = urls["llm"]
    env[CHROMA_URL_ENV] = urls["chroma"]
    env[tenants_config.TENANTS_FILE_ENV] = str(tenants_file)
    env.update(extra or {})
    return env


def _service(
    name: str, sock: socket.socket, env: Mapping[str, str], logs: Path, url: str
) -> ProcessSpec:
    fd = sock.fileno()
    return ProcessSpec(
        name,
        [sys.executable, "-m", f"demo_rag.{name}", "--fd", str(fd)],
        env=env,
        log=logs / f"{name}.log",
        health_url=f"{url}/healthz",
        pass_fds=(fd,),
        # No parent-death signal: launch() may run in a short-lived thread, and
        # the services already watch the launcher's pid (service.PARENT_PID_ENV).
    )


def _warn_killed(child: Child, why: str) -> None:
    logger.warning("%s killed (%s): its last telemetry may be lost (is the OTLP endpoint "
                   "reachable?)", child.name, why)
