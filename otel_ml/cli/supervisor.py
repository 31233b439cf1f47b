"""Child processes that start together, report healthy, and never outlive their stop.

One implementation for the two places that run real processes: the native
backend stack (:mod:`otel_ml.cli.stack`) and the demo launcher
(:mod:`demo_rag.launcher`)::

    supervisor = Supervisor(progress=print)
    supervisor.spawn(ProcessSpec("api", argv, env=env, log=logs / "api.log",
                                 health_url="http://127.0.0.1:8000/healthz"))
    try:
        supervisor.await_healthy(timeout=30)
        ...
    finally:
        supervisor.stop([("api",), ("vectordb", "llm")], timeout=15)

Each child gets its own session, so a terminal's Ctrl-C reaches the parent
only and the parent decides the stop order (dependents first, so they can
drain into services that are still up). Being a session leader also makes the
child a process-group leader: SIGTERM and SIGKILL go to the group, so
whatever the child spawned itself (a worker, a shell's command) stops with it.
Output goes to a log file per child, whose tail explains any start-up failure.

Why not mirakuru (3.1) or psutil: mirakuru needs Python >= 3.11 (otel-ml
supports 3.10), replaces ``preexec_fn`` with its own ``os.setsid`` (so no
parent-death signal) and starts one executor at a time, blocking until it is
up, where we launch everything first and then await it; and ``otel-ml stack``
must run with the standard library alone. The process-group kill below is
what psutil's tree walk would add, without the dependency.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

LOG_TAIL_LINES: Final = 30
POLL_S: Final = 0.05
_PR_SET_PDEATHSIG: Final = 1

Progress = Callable[[str], None]

logger = logging.getLogger(__name__)
# Health endpoints are on loopback: an http_proxy from the environment must not see them.
_NO_PROXY: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StartupError(RuntimeError):
    """A child exited or was not healthy in time; the message ends with its log tail."""


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one child.

    ``env`` is the complete environment (callers decide what to inherit).
    ``pass_fds`` lets a child inherit a socket its parent already bound, so
    no other process can take the port between choosing and listening.
    ``die_with_parent`` asks the kernel to SIGTERM the child when the
    spawning *thread* dies (Linux): spawn from a long-lived thread only.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log: Path
    health_url: str
    pass_fds: Sequence[int] = ()
    die_with_parent: bool = False


@dataclass(frozen=True)
class Child:
    """A started child; ``started`` is on the monotonic clock."""

    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    started: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.spec.log

    def running(self) -> bool:
        return self.process.poll() is None


def _silent(message: str) -> None:
    """The default progress sink: libraries print nothing unless asked."""


def _warn_killed(child: Child, why: str) -> None:
    logger.warning("%s (pid %d) killed: %s", child.name, child.pid, why)


class Supervisor:
    """The children of this process, in start order, and the one way to stop them.

    ``progress`` receives one line per start, ready and stop; ``on_killed``
    is told about every child that needed SIGKILL (by default a logged
    warning), because a killed child may have lost data it had not flushed.
    """

    def __init__(
        self,
        progress: Progress = _silent,
        on_killed: Callable[[Child, str], None] = _warn_killed,
    ) -> None:
        self._progress = progress
        self._on_killed = on_killed
        self.children: dict[str, Child] = {}

    @property
    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self.children.items()}

    def spawn(self, spec: ProcessSpec) -> Child:
        """Start ``spec`` now, without waiting for it; see :meth:`await_healthy`."""
        if spec.name in self.children:
            raise ValueError(f"{spec.name} was already started")
        self._progress(f"starting {spec.name}: {' '.join(spec.argv)}")
        child = _popen(spec)
        self.children[spec.name] = child
        return child

    def await_healthy(self, timeout: float) -> None:
        """Return once every child's health URL answers 200.

        Raises :class:`StartupError` as soon as one exits, or when the
        deadline passes, with the log tails that say why. Children are polled
        together (a late exit of the last one is not hidden behind a slow
        first one), in start order so ready lines read in that order.
        """
        deadline = time.monotonic() + timeout
        pending = list(self.children.values())
        while pending:
            for child in list(pending):
                _raise_if_exited(child)
                if http_ok(child.spec.health_url):
                    pending.remove(child)
                    elapsed = time.monotonic() - child.started
                    self._progress(f"{child.name} ready in {elapsed:.1f}s (pid {child.pid})")
            if pending and time.monotonic() > deadline:
                raise StartupError(_not_healthy(pending, timeout))
            if pending:
                time.sleep(POLL_S)

    def exited(self) -> dict[str, int]:
        """Children that died since they started, with their exit codes."""
        return {
            name: code
            for name, child in self.children.items()
            if (code := child.process.poll()) is not None
        }

    def stop(self, stages: Sequence[Sequence[str]] | None = None, timeout: float = 10.0) -> None:
        """Stop every child: stage by stage, SIGTERM then SIGKILL after ``timeout``.

        A stage's children get SIGTERM together and share one deadline; the
        next stage starts once they are gone, so put dependents in earlier
        stages than what they depend on. Children in no stage stop last, in
        reverse start order. Safe to call twice. Never returns, not even by an
        exception (a second Ctrl-C), with a child still running.
        """
        named = [name for stage in stages or () for name in stage]
        rest = [(name,) for name in reversed(self.children) if name not in named]
        try:
            for stage in [*(stages or ()), *rest]:
                self._stop_stage([self.children[n] for n in stage if n in self.children], timeout)
        finally:
            for child in self.children.values():
                if child.running():
                    _kill_group(child)
                    self._on_killed(child, "its stop was interrupted")
            self.children.clear()

    def _stop_stage(self, stage: Sequence[Child], timeout: float) -> None:
        running = [child for child in stage if child.running()]
        for child in running:
            self._progress(f"stopping {child.name} (pid {child.pid})")
            signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(0.0, deadline - time.monotonic()))
        for child in running:
            if child.running():
                _kill_group(child)
                self._on_killed(child, f"still running {timeout:.0f}s after SIGTERM")

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _popen(spec: ProcessSpec) -> Child:
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with spec.log.open("wb") as out:  # truncated: a log describes one run
        process = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(spec.pass_fds),
            start_new_session=True,
            preexec_fn=parent_death_signal() if spec.die_with_parent else None,
        )
    return Child(spec, process, time.monotonic())


def _raise_if_exited(child: Child) -> None:
    code = child.process.poll()
    if code is not None:
        raise StartupError(
            f"{child.name} exited with code {code} during start-up\n" + log_tail(child.log)
        )


def _not_healthy(pending: Sequence[Child], timeout: float) -> str:
    names = ", ".join(f"{child.name} at {child.spec.health_url}" for child in pending)
    tails = "\n".join(log_tail(child.log) for child in pending)
    return f"not healthy after {timeout:.0f}s: {names}\n{tails}"


def _kill_group(child: Child) -> None:
    signal_group(child.pid, signal.SIGKILL)
    child.process.wait()  # reaped: its pid is not reported as a zombie survivor


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group ``pid`` leads; one already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def parent_death_signal() -> Callable[[], None] | None:
    """A preexec hook making the kernel SIGTERM the child when its parent dies.

    Without it a SIGKILLed parent (or test session) would leave the children
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


def terminate_pid(pid: int, timeout: float, is_ours: Callable[[], bool]) -> None:
    """SIGTERM, wait up to ``timeout``, SIGKILL, for a process that is not our child.

    There is no Popen to wait on, so liveness is polled; and since its pid
    may have been reused, nothing is sent unless ``is_ours()`` still holds.
    """
    if not is_ours():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_ours() and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if is_ours():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a child's log, framed for an error message."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return f"--- last {lines} lines of {path} ---\n" + "\n".join(content[-lines:])


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 200; any connection error is just "not yet"."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False
