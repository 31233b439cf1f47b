"""The state file through which `stack down` and `status` find a running stack.

The runner writes ``<workdir>/stack.json`` once everything is healthy; other
processes read it. Pids in it may be stale or reused, hence :func:`alive`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from otel_ml.cli.stack.errors import StackError

STATE_FILE: Final = "stack.json"


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    # Written atomically: `stack up --detach` treats its existence as "ready".
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def read_state(workdir: Path) -> dict[str, Any] | None:
    """The state of the stack running from ``workdir``; None if none (or unreadable)."""
    try:
        state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state


def cmdline(pid: int) -> list[str] | None:
    """A process' argv from /proc, or None where there is no /proc."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def alive(pid: int, binary: str | None = None, argv: Sequence[str] | None = None) -> bool:
    """Whether ``pid`` still runs what the state file recorded.

    Pids are reused: where /proc exists, the executable (``binary``) or the
    command line (``argv``) must match too, so `stack down` never signals
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
    return argv is None or cmdline(pid) == list(argv)


def runner_alive(state: Mapping[str, Any]) -> bool:
    return alive(int(state["runner_pid"]), argv=state.get("runner_cmdline"))


def refuse_if_running(workdir: Path) -> None:
    """Fail if a live runner owns ``workdir``: two would fight over ports and files."""
    state = read_state(workdir)
    if state and runner_alive(state):
        raise StackError(
            f"a stack is already running from {workdir} (runner pid {state['runner_pid']}); "
            "`otel-ml stack down` stops it"
        )
