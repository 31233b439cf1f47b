"""`otel-ml stack up|status|down` and the runner's failure paths, with the real programs.

These start their own short-lived stacks on free ports (passed the way a
user would, through the same ``*_PORT`` variables the configs read), next
to the session's stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otel_ml.cli.stack import (
    BINARY_SPECS,
    PORT_ENV,
    Binaries,
    Ports,
    Stack,
    StackError,
    Urls,
    find_config_dir,
    http_ok,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Chroma too: this venv has chromadb, so the stack runs its server (issue 14).
NAMES = ("otelcol", "jaeger", "prometheus", "alertmanager", "chroma", "victoriametrics",
         "victorialogs")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_ml.cli", "stack", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


def _env(**extra: str) -> dict[str, str]:
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie answers kill(0) until its parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[1].startswith("Z")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args and _alive(int(cmdline.parent.name)):
            found.append(args)
    return found


def test_up_detached_status_and_down(tmp_path: Path) -> None:
    ports = Ports.free()
    env = _env(**{PORT_ENV[name]: str(port) for name, port in ports.as_dict().items()})
    workdir = str(tmp_path / "stack")
    up = _cli("up", "--detach", "--workdir", workdir, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((tmp_path / "stack" / "stack.json").read_text())
    pids = [state["runner_pid"], *(c["pid"] for c in state["components"].values())]
    try:
        assert state["ports"] == ports.as_dict()
        assert sorted(state["components"]) == sorted(NAMES)
        urls = Urls.for_ports(ports)
        for url in (f"{urls.jaeger}/api/services", f"{urls.prometheus}/-/ready",
                    f"{urls.alertmanager}/-/ready", f"{urls.chroma}/api/v2/heartbeat",
                    f"{urls.victoriametrics}/health", f"{urls.victorialogs}/health"):
            assert http_ok(url), url
        status = _cli("status", "--workdir", workdir, env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("healthy") == len(NAMES)
        again = _cli("up", "--workdir", workdir, env=env)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = _cli("down", "--workdir", workdir, env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert [pid for pid in pids if _alive(pid)] == []
    assert not (tmp_path / "stack" / "stack.json").exists()
    assert _cli("status", "--workdir", workdir, env=env).returncode == 3


def test_missing_backends_are_named_with_the_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in _env().items() if not k.endswith("_BIN")}
    env |= {"PATH": str(empty), "OTEL_ML_CACHE": str(empty), "OTEL_ML_STACK_DIR": str(tmp_path)}
    up = _cli("up", env=env)
    assert up.returncode == 1
    for name in BINARY_SPECS:  # chroma is optional: the stack runs without it
        assert f"{name}: set {BINARY_SPECS[name].env}" in up.stderr
    assert "make backends" in up.stderr


def test_a_program_failing_at_start_is_reported_with_its_log_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    config_dir = tmp_path / "collector-config"
    shutil.copytree(find_config_dir(), config_dir)
    (config_dir / "prometheus" / "prometheus.yml").write_text("global: {scrape_interval: nope}\n")
    stack = Stack(tmp_path / "work", ports=Ports.free(), config_dir=config_dir,
                  binaries=Binaries.resolve(config_dir=config_dir), progress=lambda _: None)
    with pytest.raises(StackError) as failure:
        stack.start()
    message = str(failure.value)
    assert "prometheus exited with code" in message
    assert "nope" in message, "the tail of prometheus' own log explains why"
    for name in NAMES:
        assert stack.log_path(name).exists(), f"{name} was started"
    # Every command line names a path under tmp_path (config or storage).
    assert _processes_mentioning(str(tmp_path)) == []
