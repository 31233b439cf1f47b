"""Run the real backends natively: OTel Collector, Jaeger, Prometheus, Alertmanager.

``otel-ml stack up`` starts the four programs with the project's configs from
``collector-config/``, waits for each health endpoint and then stays in the
foreground until Ctrl-C (or ``otel-ml stack down`` from another terminal, or
SIGTERM), stopping them in order. ``--detach`` runs that same foreground
runner in the background and returns once the stack is healthy. One runner
owns the processes in both modes, so there is a single shutdown path and the
backends die with it (Linux parent-death signal) rather than being orphaned.

The e2e tests use the Python API::

    with Stack(tmp_dir, ports=Ports.free()) as stack:
        otlp = stack.urls.otlp_grpc              # http://127.0.0.1:<port>
        ...

Binaries come from ``OTELCOL_BIN``/``JAEGER_BIN``/``PROMETHEUS_BIN``/
``ALERTMANAGER_BIN``, else ``PATH``, else the cache that ``make backends``
fills (``$OTEL_ML_CACHE`` or ``~/.cache/otel-ml``). Only the standard library
is used, so the command needs none of the demo's extras.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final

HOST: Final = "127.0.0.1"
STATE_FILE: Final = "stack.json"
LOG_TAIL_LINES: Final = 30
_POLL_S: Final = 0.1
_PR_SET_PDEATHSIG: Final = 1

Progress = Callable[[str], None]


class StackError(RuntimeError):
    """The stack could not start or stop; the message says which program and why."""


# --- ports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """Every port the stack listens on, all bound to 127.0.0.1.

    The defaults are the ones in ``collector-config/``; each field can be
    overridden by the environment variable the configs themselves read
    (:data:`PORT_ENV`), so one variable moves a port everywhere.
    """

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    collector_health: int = 13133
    collector_zpages: int = 55679
    collector_pprof: int = 1777
    collector_metrics: int = 8889  # prometheus exporter: the SDK and span metrics
    collector_telemetry: int = 8888  # the collector's own metrics
    jaeger_otlp_grpc: int = 24317
    jaeger_otlp_http: int = 24318
    jaeger_health: int = 23133
    jaeger_query_http: int = 16686
    jaeger_query_grpc: int = 16685
    prometheus: int = 9090
    alertmanager: int = 9093

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Ports:
        """Defaults, overridden by any ``*_PORT`` variable set in ``environ``."""
        values: dict[str, int] = {}
        for name, var in PORT_ENV.items():
            raw = environ.get(var)
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise StackError(f"{var}={raw!r} is not a port number") from None
        return cls(**values)

    @classmethod
    def free(cls) -> Ports:
        """Ports the kernel reports free right now, for tests next to a running stack.

        All sockets are held open together so no two fields get the same port;
        another process could still take one before the stack binds it, which
        the start-up check then reports.
        """
        sockets = [socket.socket() for _ in dataclasses.fields(cls)]
        try:
            for sock in sockets:
                sock.bind((HOST, 0))
            numbers = [int(sock.getsockname()[1]) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        return cls(*numbers)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


# The variable names the configs expand (otelcol.yaml, jaeger.yaml); the last
# two are this runner's own (Prometheus and Alertmanager take flags).
PORT_ENV: Final[Mapping[str, str]] = {
    "otlp_grpc": "OTELCOL_OTLP_GRPC_PORT",
    "otlp_http": "OTELCOL_OTLP_HTTP_PORT",
    "collector_health": "OTELCOL_HEALTH_PORT",
    "collector_zpages": "OTELCOL_ZPAGES_PORT",
    "collector_pprof": "OTELCOL_PPROF_PORT",
    "collector_metrics": "OTELCOL_PROMETHEUS_PORT",
    "collector_telemetry": "OTELCOL_TELEMETRY_PORT",
    "jaeger_otlp_grpc": "JAEGER_OTLP_GRPC_PORT",
    "jaeger_otlp_http": "JAEGER_OTLP_HTTP_PORT",
    "jaeger_health": "JAEGER_HEALTH_PORT",
    "jaeger_query_http": "JAEGER_QUERY_HTTP_PORT",
    "jaeger_query_grpc": "JAEGER_QUERY_GRPC_PORT",
    "prometheus": "PROMETHEUS_PORT",
    "alertmanager": "ALERTMANAGER_PORT",
}


@dataclass(frozen=True)
class Urls:
    """Where to reach the running stack."""

    otlp_grpc: str
    otlp_http: str
    jaeger: str
    prometheus: str
    alertmanager: str

    @classmethod
    def for_ports(cls, ports: Ports) -> Urls:
        return cls(
            otlp_grpc=f"http://{HOST}:{ports.otlp_grpc}",
            otlp_http=f"http://{HOST}:{ports.otlp_http}",
            jaeger=f"http://{HOST}:{ports.jaeger_query_http}",
            prometheus=f"http://{HOST}:{ports.prometheus}",
            alertmanager=f"http://{HOST}:{ports.alertmanager}",
        )


# --- binaries ---------------------------------------------------------------------------------


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
}


@dataclass(frozen=True)
class Binaries:
    otelcol: Path
    jaeger: Path
    prometheus: Path
    alertmanager: Path

    @classmethod
    def resolve(
        cls, environ: Mapping[str, str] = os.environ, config_dir: Path | None = None
    ) -> Binaries:
        """Find all four programs, or fail naming every missing one at once."""
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
        return cls(**found)


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The build cache of scripts/backends.sh."""
    if environ.get("OTEL_ML_CACHE"):
        return Path(environ["OTEL_ML_CACHE"])
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "otel-ml"


def _find_binary(
    spec: BinarySpec, environ: Mapping[str, str], config_dir: Path | None
) -> Path | None:
    explicit = environ.get(spec.env)
    if explicit:
        path = Path(explicit)
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


def find_config_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$OTEL_ML_CONFIG_DIR``, else the checkout this module runs from, else ./collector-config."""
    candidates = [
        Path(environ["OTEL_ML_CONFIG_DIR"]) if environ.get("OTEL_ML_CONFIG_DIR") else None,
        Path(__file__).resolve().parents[2] / "collector-config",
        Path.cwd() / "collector-config",
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "otelcol.yaml").is_file():
            return candidate
    raise StackError(
        "collector-config/ not found: run from the otel-ml checkout or set OTEL_ML_CONFIG_DIR"
    )


# --- what each program runs with --------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One backend program: its command line, environment and health endpoint."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    health_url: str
    ports: Mapping[str, int]


def _collector(binary: Path, config_dir: Path, work: Path, ports: Ports) -> Component:
    env = {
        "OTELCOL_HOST": HOST,
        "OTELCOL_STORAGE_DIR": str(work / "otelcol-storage"),
        "JAEGER_OTLP_ENDPOINT": f"{HOST}:{ports.jaeger_otlp_grpc}",
    }
    env |= _port_env(ports, prefix="OTELCOL_")
    return Component(
        name="otelcol",
        argv=(str(binary), f"--config=file:{config_dir / 'otelcol.yaml'}"),
        env=env,
        health_url=f"http://{HOST}:{ports.collector_health}/",
        ports=_ports_of(ports, "otlp_", "collector_"),
    )


def _jaeger(binary: Path, config_dir: Path, ports: Ports) -> Component:
    return Component(
        name="jaeger",
        argv=(str(binary), f"--config=file:{config_dir / 'jaeger.yaml'}"),
        env={"JAEGER_LISTEN_HOST": HOST} | _port_env(ports, prefix="JAEGER_"),
        health_url=f"http://{HOST}:{ports.jaeger_health}/status",
        ports=_ports_of(ports, "jaeger_"),
    )


def _prometheus(binary: Path, prometheus_dir: Path, work: Path, ports: Ports) -> Component:
    return Component(
        name="prometheus",
        argv=(
            str(binary),
            f"--config.file={prometheus_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'prometheus-data'}",
            f"--web.listen-address={HOST}:{ports.prometheus}",
            # Exemplars (trace ids on histogram buckets) are dropped without it.
            "--enable-feature=exemplar-storage",
            # POST /-/reload: tests swap rule files without a restart.
            "--web.enable-lifecycle",
        ),
        env={},
        health_url=f"http://{HOST}:{ports.prometheus}/-/ready",
        ports={"prometheus": ports.prometheus},
    )


def _alertmanager(binary: Path, config_dir: Path, work: Path, ports: Ports) -> Component:
    return Component(
        name="alertmanager",
        argv=(
            str(binary),
            f"--config.file={config_dir / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={work / 'alertmanager-data'}",
            f"--web.listen-address={HOST}:{ports.alertmanager}",
            # Empty: no gossip cluster (its default binds 0.0.0.0:9094).
            "--cluster.listen-address=",
        ),
        env={},
        health_url=f"http://{HOST}:{ports.alertmanager}/-/ready",
        ports={"alertmanager": ports.alertmanager},
    )


def _port_env(ports: Ports, prefix: str) -> dict[str, str]:
    values = ports.as_dict()
    return {var: str(values[name]) for name, var in PORT_ENV.items() if var.startswith(prefix)}


def _ports_of(ports: Ports, *prefixes: str) -> dict[str, int]:
    return {k: v for k, v in ports.as_dict().items() if k.startswith(prefixes)}


_LOOPBACK_ADDRESS: Final = re.compile(r"127\.0\.0\.1:(\d+)\b")


def materialize_prometheus(config_dir: Path, target: Path, ports: Ports) -> Path:
    """Copy prometheus.yml, its rules and native targets into ``target``, with our ports.

    Prometheus expands no environment variables, so non-default ports are
    written into a copy; the copy is also where tests add rule files. It is
    rebuilt at every start so no stale override survives a restart.
    """
    source = config_dir / "prometheus"
    defaults, actual = Ports().as_dict(), ports.as_dict()
    moved = {str(defaults[k]): str(actual[k]) for k in defaults}

    def relocate(text: str) -> str:
        return _LOOPBACK_ADDRESS.sub(lambda m: f"{HOST}:{moved.get(m.group(1), m.group(1))}", text)

    shutil.rmtree(target, ignore_errors=True)
    (target / "rules").mkdir(parents=True)
    (target / "targets").mkdir()
    (target / "prometheus.yml").write_text(relocate((source / "prometheus.yml").read_text()))
    for rule in sorted((source / "rules").glob("*.yml")):
        shutil.copyfile(rule, target / "rules" / rule.name)
    for targets in sorted((source / "targets").glob("*.yml")):
        (target / "targets" / targets.name).write_text(relocate(targets.read_text()))
    return target


# --- processes --------------------------------------------------------------------------------


def _pdeathsig() -> Callable[[], None] | None:
    """A preexec hook making the kernel SIGTERM the child when this process dies.

    Without it a SIGKILLed runner (or test session) would leave the backends
    running and holding their ports. Linux only; resolved here, in the
    parent, so the child runs no imports between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


@dataclass
class _Running:
    component: Component
    process: subprocess.Popen[bytes]
    log: Path
    started: float


def _spawn(component: Component, log: Path) -> _Running:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            component.argv,
            env={**os.environ, **component.env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: a terminal Ctrl-C reaches the runner only, which
            # then stops the programs in order (collector before Jaeger).
            start_new_session=True,
            preexec_fn=_pdeathsig(),
        )
    return _Running(component, process, log, time.monotonic())


def _terminate(running: _Running, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL: never returns with it alive."""
    process = running.process
    if process.poll() is not None:
        return
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a program's log, framed for an error message."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return f"--- last {lines} lines of {path} ---\n" + "\n".join(content[-lines:])


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 200; any connection error is just "not yet"."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _busy_ports(components: Sequence[Component]) -> list[str]:
    busy = []
    for component in components:
        for name, port in component.ports.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    busy.append(f"{HOST}:{port} ({component.name} {name})")
    return busy


# --- the stack --------------------------------------------------------------------------------


def _stderr(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


class Stack:
    """The four backends as child processes of this one.

    Start order is Jaeger, collector, Alertmanager, Prometheus (each one's
    downstream first); all are launched at once and then awaited in that
    order. Stop order is Prometheus, collector, Jaeger, Alertmanager, so the
    collector's last batches still reach a running Jaeger.
    """

    START_ORDER: Final = ("jaeger", "otelcol", "alertmanager", "prometheus")
    STOP_ORDER: Final = ("prometheus", "otelcol", "jaeger", "alertmanager")

    def __init__(
        self,
        workdir: Path,
        *,
        ports: Ports | None = None,
        binaries: Binaries | None = None,
        config_dir: Path | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        progress: Progress = _stderr,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.ports = ports or Ports()
        self.config_dir = (config_dir or find_config_dir()).resolve()
        self.binaries = binaries or Binaries.resolve(config_dir=self.config_dir)
        self.urls = Urls.for_ports(self.ports)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._progress = progress
        self._running: dict[str, _Running] = {}

    # -- paths --
    @property
    def prometheus_dir(self) -> Path:
        return self.workdir / "prometheus"

    @property
    def prometheus_rules_dir(self) -> Path:
        """Rule files here are evaluated after :meth:`reload_prometheus` (or at start)."""
        return self.prometheus_dir / "rules"

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    @property
    def pids(self) -> dict[str, int]:
        return {name: r.process.pid for name, r in self._running.items()}

    def components(self) -> dict[str, Component]:
        b, c, w, p = self.binaries, self.config_dir, self.workdir, self.ports
        return {
            "jaeger": _jaeger(b.jaeger, c, p),
            "otelcol": _collector(b.otelcol, c, w, p),
            "alertmanager": _alertmanager(b.alertmanager, c, w, p),
            "prometheus": _prometheus(b.prometheus, self.prometheus_dir, w, p),
        }

    # -- lifecycle --
    def start(self) -> None:
        """Start every program and return once all are healthy; on failure stop them all."""
        if self._running:
            raise StackError("stack already started")
        components = self.components()
        busy = _busy_ports(list(components.values()))
        if busy:
            raise StackError(
                "ports already in use (another stack? try `otel-ml stack status`):\n  "
                + "\n  ".join(busy)
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        materialize_prometheus(self.config_dir, self.prometheus_dir, self.ports)
        try:
            for name in self.START_ORDER:
                self._progress(f"starting {name}: {' '.join(components[name].argv)}")
                self._running[name] = _spawn(components[name], self.log_path(name))
            deadline = time.monotonic() + self.startup_timeout
            for name in self.START_ORDER:
                self._await_healthy(self._running[name], deadline)
        except BaseException:
            self.stop()
            raise

    def _await_healthy(self, running: _Running, deadline: float) -> None:
        component = running.component
        while not http_ok(component.health_url):
            code = running.process.poll()
            if code is not None:
                raise StackError(
                    f"{component.name} exited with code {code} during start-up\n"
                    + log_tail(running.log)
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{component.name} not healthy at {component.health_url} after "
                    f"{self.startup_timeout:.0f}s\n" + log_tail(running.log)
                )
            time.sleep(_POLL_S)
        elapsed = time.monotonic() - running.started
        self._progress(f"{component.name} ready in {elapsed:.1f}s (pid {running.process.pid})")

    def stop(self) -> None:
        """Stop every started program, in order; safe to call twice."""
        try:
            for name in self.STOP_ORDER:
                running = self._running.get(name)
                if running is not None and running.process.poll() is None:
                    self._progress(f"stopping {name} (pid {running.process.pid})")
                    _terminate(running, self.stop_timeout)
        finally:
            # An interrupt during the orderly stop must still leave nothing alive.
            for running in self._running.values():
                _terminate(running, 0)
            self._running.clear()

    def exited(self) -> dict[str, int]:
        """Programs that died since start, with their exit codes."""
        return {
            name: code
            for name, running in self._running.items()
            if (code := running.process.poll()) is not None
        }

    def reload_prometheus(self) -> None:
        """Make Prometheus re-read its config and rule files (needs --web.enable-lifecycle)."""
        request = urllib.request.Request(f"{self.urls.prometheus}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if int(response.status) == 200:
                    return
                body = response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
        except OSError as exc:
            body = str(exc)
        tail = log_tail(self.log_path("prometheus"))
        raise StackError(f"Prometheus reload failed: {body}\n{tail}")

    def state(self) -> dict[str, Any]:
        """What `stack down`/`status` need to find this stack from another process."""
        components = self.components()
        return {
            "runner_pid": os.getpid(),
            "ports": self.ports.as_dict(),
            "urls": dataclasses.asdict(self.urls),
            "components": {
                name: {
                    "pid": running.process.pid,
                    "binary": components[name].argv[0],
                    "health_url": components[name].health_url,
                    "log": str(running.log),
                }
                for name, running in self._running.items()
            },
        }

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- the command ------------------------------------------------------------------------------


def default_workdir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where `stack up` keeps logs, Prometheus data and the collector's disk queue."""
    if environ.get("OTEL_ML_STACK_DIR"):
        return Path(environ["OTEL_ML_STACK_DIR"])
    return cache_dir(environ) / "stack"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``otel-ml stack``."""
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--workdir", type=Path, default=None,
        help="logs, Prometheus data, the collector queue and the state file "
        "(default: $OTEL_ML_STACK_DIR or ~/.cache/otel-ml/stack)",
    )
    parser.add_argument(
        "--config-dir", type=Path, default=None,
        help="the project's collector-config/ (default: found from the checkout)",
    )
    parser.add_argument(
        "--detach", action="store_true",
        help="up: run in the background, return once healthy; stop with `stack down`",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for health (default 60)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``otel-ml stack up|down|status``; returns the exit code."""
    workdir = (args.workdir or default_workdir()).resolve()
    try:
        if args.action == "status":
            return _status(workdir)
        if args.action == "down":
            return _down(workdir, args.timeout)
        if args.detach:
            return _up_detached(workdir, args)
        return _up(workdir, args)
    except StackError as exc:
        print(f"otel-ml stack: {exc}", file=sys.stderr)
        return 1


class _Shutdown(Exception):
    """SIGTERM/SIGHUP received: stop like Ctrl-C."""


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise _Shutdown(signal.Signals(signum).name)


def _up(workdir: Path, args: argparse.Namespace) -> int:
    _refuse_if_running(workdir)
    stack = Stack(workdir, ports=Ports.from_env(), config_dir=args.config_dir,
                  startup_timeout=args.timeout)
    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, _raise_shutdown) for s in signals}
    state_file = workdir / STATE_FILE
    try:
        stack.start()
        _print_ready(stack)
        # Last: `up --detach` reads the file's appearance as "ready".
        _write_state(state_file, {**stack.state(), "runner_cmdline": _cmdline(os.getpid())})
        return _supervise(stack)
    except (KeyboardInterrupt, _Shutdown):
        _stderr("stopping")
        return 0
    finally:
        for sig in signals:  # already stopping: a repeated `stack down` must not cut it short
            signal.signal(sig, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            state_file.unlink(missing_ok=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _supervise(stack: Stack) -> int:
    """Wait until interrupted; a program dying on its own ends the run with its log."""
    while True:
        exited = stack.exited()
        if exited:
            for name, code in exited.items():
                _stderr(f"{name} exited unexpectedly with code {code}")
                print(log_tail(stack.log_path(name)), file=sys.stderr)
            return 1
        time.sleep(0.5)


def _print_ready(stack: Stack) -> None:
    urls = stack.urls
    print(
        "otel-ml stack is up\n"
        f"  OTLP gRPC     {urls.otlp_grpc}  (OTEL_EXPORTER_OTLP_ENDPOINT={urls.otlp_grpc})\n"
        f"  OTLP HTTP     {urls.otlp_http}\n"
        f"  Jaeger        {urls.jaeger}\n"
        f"  Prometheus    {urls.prometheus}\n"
        f"  Alertmanager  {urls.alertmanager}\n"
        f"  logs          {stack.workdir / 'logs'}\n"
        "Ctrl-C (or `otel-ml stack down`) stops it.",
        flush=True,
    )


def _up_detached(workdir: Path, args: argparse.Namespace) -> int:
    """Run the foreground runner in its own session, return once it reports ready."""
    _refuse_if_running(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "otel_ml.cli.stack", "up", "--workdir", str(workdir),
            "--timeout", str(args.timeout)]
    if args.config_dir:
        argv += ["--config-dir", str(args.config_dir.resolve())]
    runner_log = workdir / "logs" / "runner.log"
    runner_log.parent.mkdir(parents=True, exist_ok=True)
    (workdir / STATE_FILE).unlink(missing_ok=True)
    with runner_log.open("wb") as out:
        runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + args.timeout + 15
    while not (workdir / STATE_FILE).exists():
        if runner.poll() is not None or time.monotonic() > deadline:
            # Our own child: SIGTERM lets it stop whatever it started.
            _terminate_pid(runner.pid, args.timeout, lambda: runner.poll() is None)
            raise StackError("stack did not start\n" + log_tail(runner_log, 60))
        time.sleep(_POLL_S)
    print(runner_log.read_text(errors="replace"), end="")
    print(f"running in the background (runner pid {runner.pid}); stop with `otel-ml stack down`")
    return 0


def _write_state(path: Path, state: Mapping[str, Any]) -> None:
    # Written atomically: `stack up --detach` treats its existence as "ready".
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def _read_state(workdir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def _cmdline(pid: int) -> list[str] | None:
    """A process' argv from /proc, or None where there is no /proc."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def _alive(pid: int, binary: str | None = None, cmdline: Sequence[str] | None = None) -> bool:
    """Whether ``pid`` still runs what the state file recorded.

    Pids are reused: where /proc exists, the executable (``binary``) or the
    command line (``cmdline``) must match too, so `stack down` never signals
    an unrelated process that inherited a recorded pid.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not one we started
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS): trust the pid
    try:
        if (proc / "stat").read_text().rsplit(") ", 1)[1].startswith("Z"):
            return False  # exited, waiting to be reaped
        if binary is not None and Path(os.readlink(proc / "exe")) != Path(binary).resolve():
            return False
    except OSError:
        return False  # vanished while we looked
    return cmdline is None or _cmdline(pid) == list(cmdline)


def _runner_alive(state: Mapping[str, Any]) -> bool:
    return _alive(int(state["runner_pid"]), cmdline=state.get("runner_cmdline"))


def _refuse_if_running(workdir: Path) -> None:
    state = _read_state(workdir)
    if state and _runner_alive(state):
        raise StackError(
            f"a stack is already running from {workdir} (runner pid {state['runner_pid']}); "
            "`otel-ml stack down` stops it"
        )


def _terminate_pid(pid: int, timeout: float, is_ours: Callable[[], bool]) -> None:
    """SIGTERM, wait up to ``timeout``, SIGKILL; only while ``is_ours()`` holds."""
    if not is_ours():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_ours() and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    if is_ours():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _down(workdir: Path, timeout: float) -> int:
    """Ask the runner to stop (it stops the programs in order); kill leftovers ourselves."""
    state = _read_state(workdir)
    if state is None:
        print(f"no stack running from {workdir}")
        return 0
    runner = int(state["runner_pid"])
    if _runner_alive(state):
        print(f"stopping the stack (runner pid {runner})")
        # The runner stops each program with its own timeout, in order.
        _terminate_pid(runner, timeout + 30, lambda: _runner_alive(state))
    for name, info in state["components"].items():
        pid, binary = int(info["pid"]), str(info["binary"])
        if _alive(pid, binary):
            print(f"stopping leftover {name} (pid {pid})")
            _terminate_pid(pid, timeout, functools.partial(_alive, pid, binary))
    (workdir / STATE_FILE).unlink(missing_ok=True)
    print("stack stopped")
    return 0


def _status(workdir: Path) -> int:
    """Print each program's pid and health; exit 0 only when all are healthy."""
    state = _read_state(workdir)
    if state is None:
        print(f"no stack running from {workdir}")
        return 3
    healthy = True
    for name, info in state["components"].items():
        alive = _alive(int(info["pid"]), info["binary"])
        ok = alive and http_ok(info["health_url"])
        healthy &= ok
        status = "healthy" if ok else ("UNHEALTHY" if alive else "NOT RUNNING")
        print(f"{name:<13} pid {info['pid']:<8} {status:<12} {info['health_url']}")
    for name, url in state["urls"].items():
        print(f"{name:<13} {url}")
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m otel_ml.cli.stack``: the same command without the otel-ml CLI around it.

    `stack up --detach` starts its background runner this way, so the runner
    needs nothing but this module.
    """
    parser = argparse.ArgumentParser(prog="otel-ml stack", description=(__doc__ or "").strip())
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
