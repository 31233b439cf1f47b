"""The process supervisor with real (short, pure-Python) child processes.

The children are ``python -c`` scripts: an HTTP server on a socket the test
bound and passed down (as the demo launcher does), one that exits at once,
one that ignores SIGTERM, and one that starts a grandchild, so start-up,
health polling, the process-group kill and the log tails are exercised the
way the stack and the launcher use them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otel_ml.cli.supervisor import (
    Child,
    ProcessSpec,
    StartupError,
    Supervisor,
    http_ok,
    log_tail,
    terminate_pid,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")

# Serves 200 on any path from the listening socket whose fd is argv[1].
SERVER = textwrap.dedent("""
    import http.server, socket, sys
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Ok, bind_and_activate=False)
    server.socket = socket.socket(fileno=int(sys.argv[1]))
    print("serving", flush=True)
    server.serve_forever()
""")
# Starts a grandchild (same process group), records its pid, then idles.
PARENT_OF_GRANDCHILD = textwrap.dedent("""
    import pathlib, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    pathlib.Path(sys.argv[1]).write_text(str(grandchild.pid))
    time.sleep(300)
""")
STUBBORN = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    time.sleep(300)
""")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    with sock:
        yield sock


def _url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/health"


def _dead_url() -> str:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return _url(sock)


def _spec(name: str, code: str, tmp_path: Path, health_url: str, *args: str,
          pass_fds: tuple[int, ...] = ()) -> ProcessSpec:
    return ProcessSpec(
        name, [sys.executable, "-c", code, *args], env=dict(os.environ),
        log=tmp_path / "logs" / f"{name}.log", health_url=health_url, pass_fds=pass_fds,
    )


def _server(tmp_path: Path, sock: socket.socket, name: str = "web") -> ProcessSpec:
    fd = sock.fileno()
    return _spec(name, SERVER, tmp_path, _url(sock), str(fd), pass_fds=(fd,))


def _alive(pid: int) -> bool:
    """Running and not a zombie (a zombie answers kill(pid, 0) until it is reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return not stat.rsplit(") ", 1)[1].startswith("Z")


def _wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_spawn_await_healthy_and_stop(tmp_path: Path, listener: socket.socket) -> None:
    lines: list[str] = []
    supervisor = Supervisor(progress=lines.append)
    child = supervisor.spawn(_server(tmp_path, listener))
    try:
        supervisor.await_healthy(timeout=20)
        assert http_ok(_url(listener))
        assert supervisor.pids == {"web": child.pid}
        assert supervisor.exited() == {}
    finally:
        supervisor.stop(timeout=10)
    assert child.process.returncode == -signal.SIGTERM
    assert supervisor.children == {}
    assert lines[0].startswith("starting web: ")
    assert lines[1].startswith("web ready in ") and f"(pid {child.pid})" in lines[1]
    assert lines[2] == f"stopping web (pid {child.pid})"
    assert "serving" in child.log.read_text()


def test_a_child_exiting_at_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    code = "import sys; print('bad setting: FOO=bogus', file=sys.stderr); sys.exit(3)"
    with Supervisor() as supervisor:
        supervisor.spawn(_spec("broken", code, tmp_path, _dead_url()))
        with pytest.raises(StartupError) as failure:
            supervisor.await_healthy(timeout=20)
    message = str(failure.value)
    assert message.startswith("broken exited with code 3 during start-up\n")
    assert "bad setting: FOO=bogus" in message


def test_not_healthy_in_time_names_the_child_and_its_url(tmp_path: Path) -> None:
    url = _dead_url()
    with Supervisor() as supervisor:
        child = supervisor.spawn(_spec("mute", STUBBORN, tmp_path, url))
        with pytest.raises(StartupError) as failure:
            supervisor.await_healthy(timeout=0.5)
        supervisor.stop(timeout=0.2)  # ignores SIGTERM: killed
    assert str(failure.value).startswith(f"not healthy after 0s: mute at {url}\n")
    assert not _alive(child.pid)


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    supervisor = Supervisor()
    child = supervisor.spawn(
        _spec("parent", PARENT_OF_GRANDCHILD, tmp_path, _dead_url(), str(pid_file))
    )
    try:
        _wait_for(lambda: pid_file.exists() and pid_file.read_text())
        grandchild = int(pid_file.read_text())
        assert os.getpgid(grandchild) == child.pid, "the grandchild is in the child's group"
    finally:
        supervisor.stop(timeout=10)
    assert not _alive(child.pid)
    # The grandchild is not ours to reap: it was re-parented, and init reaps it.
    _wait_for(lambda: not _alive(grandchild))


def test_sigterm_ignored_means_sigkill_after_the_timeout(tmp_path: Path) -> None:
    killed: list[tuple[str, str]] = []
    supervisor = Supervisor(on_killed=lambda child, why: killed.append((child.name, why)))
    child = supervisor.spawn(_spec("stubborn", STUBBORN, tmp_path, _dead_url()))
    _wait_for(lambda: "ignoring SIGTERM" in child.log.read_text())
    started = time.monotonic()
    supervisor.stop(timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 10
    assert child.process.returncode == -signal.SIGKILL
    assert killed == [("stubborn", "still running 0s after SIGTERM")]


def test_stages_stop_in_order_and_unstaged_children_last(tmp_path: Path) -> None:
    lines: list[str] = []
    supervisor = Supervisor(progress=lines.append)
    children: list[Child] = [
        supervisor.spawn(_spec(name, "import time; time.sleep(300)", tmp_path, _dead_url()))
        for name in ("db", "model", "api", "extra")
    ]
    supervisor.stop([("api",), ("db", "model")], timeout=10)
    stopping = [line.split()[1] for line in lines if line.startswith("stopping")]
    assert stopping == ["api", "db", "model", "extra"]
    assert [c.running() for c in children] == [False] * 4


def test_exited_reports_a_child_that_died_after_start(tmp_path: Path) -> None:
    with Supervisor() as supervisor:
        child = supervisor.spawn(_spec("short", "raise SystemExit(7)", tmp_path, _dead_url()))
        child.process.wait(20)
        assert supervisor.exited() == {"short": 7}


def test_the_same_name_cannot_run_twice(tmp_path: Path) -> None:
    with Supervisor() as supervisor:
        supervisor.spawn(_spec("once", "import time; time.sleep(300)", tmp_path, _dead_url()))
        with pytest.raises(ValueError, match="once was already started"):
            supervisor.spawn(_spec("once", "pass", tmp_path, _dead_url()))


def test_terminate_pid_stops_a_process_that_is_not_our_child_only_while_ours() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        terminate_pid(process.pid, 5, is_ours=lambda: False)
        assert process.poll() is None, "not ours: left alone"
        terminate_pid(process.pid, 5, is_ours=lambda: process.poll() is None)
        assert process.returncode == -signal.SIGTERM
    finally:
        process.kill()
        process.wait()


def test_log_tail_keeps_the_last_lines_and_names_the_file(tmp_path: Path) -> None:
    log = tmp_path / "program.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = log_tail(log, lines=3)
    assert tail == f"--- last 3 lines of {log} ---\nline 97\nline 98\nline 99"
    assert log_tail(tmp_path / "missing.log") == f"(no log at {tmp_path / 'missing.log'})"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_die_with_parent_children_go_when_their_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from otel_ml.cli.supervisor import ProcessSpec, Supervisor
        spec = ProcessSpec("orphan", [sys.executable, "-c", "import time; time.sleep(300)"],
                           env=dict(os.environ), log=Path({str(tmp_path / "orphan.log")!r}),
                           health_url="http://127.0.0.1:1/", die_with_parent=True)
        child = Supervisor().spawn(spec)
        Path({str(pid_file)!r}).write_text(str(child.pid))
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        _wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=20)
        orphan = int(pid_file.read_text())
        assert _alive(orphan)
    finally:
        parent.kill()  # SIGKILL: no cleanup code of the parent runs
        parent.wait()
    _wait_for(lambda: not _alive(orphan))
