"""Start, watch and stop the native backends: collector, Jaeger, Prometheus, Alertmanager
(and the demo's Chroma server where chromadb is installed).

``otel-ml stack up`` starts the four programs, waits for each health endpoint and then
stays in the foreground until Ctrl-C (or ``otel-ml stack down`` from another
terminal, or SIGTERM), stopping them in order. ``--detach`` runs that same
foreground runner in the background and returns once the stack is healthy.
One runner owns the processes in both modes, so there is a single shutdown
path and the backends die with it rather than being orphaned.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from otel_ml.cli.stack.discovery import default_workdir, find_config_dir
from otel_ml.cli.stack.errors import StackError
from otel_ml.cli.stack.ports import Ports
from otel_ml.cli.stack.runner import Stack, stderr_progress
from otel_ml.cli.stack.scale import TOPOLOGIES, Topology
from otel_ml.cli.stack.state import (
    STATE_FILE,
    alive,
    cmdline,
    read_state,
    refuse_if_running,
    runner_alive,
    write_state,
)
from otel_ml.cli.supervisor import POLL_S, http_ok, log_tail, terminate_pid


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
        help="the project's collector-config/ (default: $OTEL_ML_CONFIG_DIR, else "
        "collector-config/ in the current directory or a parent, else the checkout's)",
    )
    parser.add_argument(
        "--detach", action="store_true",
        help="up: run in the background, return once healthy; stop with `stack down`",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for health (default 60)"
    )
    parser.add_argument(
        "--topology", choices=TOPOLOGIES, default="default",
        help="default: one collector; scale: 2 gateways and 2 tail-sampling collectors "
        "(collector-config/scale/, docs/scale-out.md)",
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
        # A situation to fix, not a bug: the message, no traceback.
        print(f"otel-ml stack: {exc}", file=sys.stderr)
        return 1


class _Shutdown(Exception):
    """SIGTERM/SIGHUP received: stop like Ctrl-C."""


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise _Shutdown(signal.Signals(signum).name)


def _up(workdir: Path, args: argparse.Namespace) -> int:
    refuse_if_running(workdir)
    ports = Ports.from_env()
    topology = Topology.scale(ports) if getattr(args, "topology", "default") == "scale" else None
    stack = Stack(workdir, ports=ports, config_dir=args.config_dir,
                  startup_timeout=args.timeout, topology=topology)
    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, _raise_shutdown) for s in signals}
    state_file = workdir / STATE_FILE
    try:
        stack.start()
        _print_ready(stack)
        # Last: `up --detach` reads the file's appearance as "ready".
        write_state(state_file, {**stack.state(), "runner_cmdline": cmdline(os.getpid())})
        return _watch(stack)
    except (KeyboardInterrupt, _Shutdown):
        stderr_progress("stopping")
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


def _watch(stack: Stack) -> int:
    """Wait until interrupted; a program dying on its own ends the run with its log."""
    while True:
        exited = stack.exited()
        if exited:
            for name, code in exited.items():
                stderr_progress(f"{name} exited unexpectedly with code {code}")
                print(log_tail(stack.log_path(name)), file=sys.stderr)
            return 1
        time.sleep(0.5)


def _print_ready(stack: Stack) -> None:
    urls = stack.urls
    print(
        "otel-ml stack is up\n"
        f"  OTLP HTTP     {urls.otlp_http}  (OTEL_EXPORTER_OTLP_ENDPOINT={urls.otlp_http})\n"
        f"  OTLP gRPC     {urls.otlp_grpc}  (with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)\n"
        f"  Jaeger        {urls.jaeger}\n"
        f"  Prometheus    {urls.prometheus}\n"
        f"  Alertmanager  {urls.alertmanager}\n"
        + (f"  VictoriaMetrics {urls.victoriametrics}  (Prometheus remote-writes here)\n"
           if stack.binaries.victoriametrics is not None else "")
        + (f"  VictoriaLogs  {urls.victorialogs}  (the collector's logs, LogsQL)\n"
           if stack.binaries.victorialogs is not None else "")
        + (f"  Chroma        {urls.chroma}  (its traces go to the collector)\n"
           if stack.binaries.chroma is not None else
           "  Chroma        not started: chromadb is not installed (see `make demo`)\n")
        + "".join(f"  {m.name:<13} OTLP {m.otlp_http} / grpc {m.otlp_grpc}\n"
                  for m in (stack.topology.members if stack.topology else ()))
        + f"  logs          {stack.workdir / 'logs'}\n"
        "Ctrl-C (or `otel-ml stack down`) stops it.",
        flush=True,
    )


def _up_detached(workdir: Path, args: argparse.Namespace) -> int:
    """Run the foreground runner in its own session, return once it reports ready."""
    refuse_if_running(workdir)
    # Found here, not only in the runner: a missing config is reported at once,
    # in one line, rather than as "did not start" with the runner's log.
    config_dir = find_config_dir(args.config_dir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "otel_ml.cli.stack", "up", "--workdir", str(workdir),
            "--timeout", str(args.timeout), "--config-dir", str(config_dir),
            "--topology", getattr(args, "topology", "default")]
    runner_log = workdir / "logs" / "runner.log"
    runner_log.parent.mkdir(parents=True, exist_ok=True)
    (workdir / STATE_FILE).unlink(missing_ok=True)
    with runner_log.open("wb") as out:
        # Not through the Supervisor: this child must outlive us (own session,
        # no parent-death signal), and its health is the state file, not a URL.
        runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + args.timeout + 15
    while not (workdir / STATE_FILE).exists():
        if runner.poll() is not None or time.monotonic() > deadline:
            # Our own child: SIGTERM lets it stop whatever it started.
            terminate_pid(runner.pid, args.timeout, lambda: runner.poll() is None)
            raise StackError("stack did not start\n" + log_tail(runner_log, 60))
        time.sleep(POLL_S)
    print(runner_log.read_text(errors="replace"), end="")
    print(f"running in the background (runner pid {runner.pid}); stop with `otel-ml stack down`")
    return 0


def _down(workdir: Path, timeout: float) -> int:
    """Ask the runner to stop (it stops the programs in order); kill leftovers ourselves."""
    state = read_state(workdir)
    if state is None:
        print(f"no stack running from {workdir}")
        return 0
    runner = int(state["runner_pid"])
    if runner_alive(state):
        print(f"stopping the stack (runner pid {runner})")
        # The runner stops each program with its own timeout, in order.
        terminate_pid(runner, timeout + 30, lambda: runner_alive(state))
    for name, info in state["components"].items():
        pid, binary = int(info["pid"]), str(info["binary"])
        if alive(pid, binary):
            print(f"stopping leftover {name} (pid {pid})")
            terminate_pid(pid, timeout, functools.partial(alive, pid, binary))
    (workdir / STATE_FILE).unlink(missing_ok=True)
    print("stack stopped")
    return 0


def _status(workdir: Path) -> int:
    """Print each program's pid and health; exit 0 only when all are healthy."""
    state = read_state(workdir)
    if state is None:
        print(f"no stack running from {workdir}")
        return 3
    healthy = True
    for name, info in state["components"].items():
        running = alive(int(info["pid"]), info["binary"])
        ok = running and http_ok(info["health_url"])
        healthy &= ok
        status = "healthy" if ok else ("UNHEALTHY" if running else "NOT RUNNING")
        print(f"{name:<13} pid {info['pid']:<8} {status:<12} {info['health_url']}")
    for name, url in state["urls"].items():
        print(f"{name:<13} {url}")
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m otel_ml.cli.stack``: the same command without the otel-ml CLI around it.

    `stack up --detach` starts its background runner this way, so the runner
    needs nothing but this package.
    """
    parser = argparse.ArgumentParser(prog="otel-ml stack", description=(__doc__ or "").strip())
    add_arguments(parser)
    return run(parser.parse_args(argv))
