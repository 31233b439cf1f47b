"""scripts/backends.sh installs Debian's Prometheus packages without ending anyone's process.

Issue 13, item 14: after the install the script stopped the packaged services
and ended ``prometheus-node-exporter`` by name, which also ended an exporter
the user ran. Now a ``policy-rc.d`` that exits 101 keeps the packaged services
from starting during the install, and nothing is stopped afterwards.

The script is sourced and ``install_debian`` run with a PATH that holds only
stub programs (``apt-get``, ``service``, ``systemctl``, ``pkill``...), which
log how they were called, and the few real tools the script needs. The stub
``apt-get`` runs the policy the way a package's maintainer script does
(``invoke-rc.d`` asks it before starting a service) and records its answer.
A real process named ``prometheus-node-exporter``, started by the test as a
user's exporter would be, must outlive the install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "backends.sh"
# What install_debian and the script's top level run, besides bash builtins.
TOOLS = ("dirname", "mkdir", "date", "sort", "mv", "rm", "chmod", "cat")
# Everything that stops a service or ends a process by name: logged, never run.
ENDERS = ("service", "systemctl", "invoke-rc.d", "start-stop-daemon", "pkill", "killall")
FORBIDDEN = 101  # policy-rc.d's "action forbidden"

APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$CALLS"
case "$*" in
  *install*)
    # As a maintainer script does before starting a service (invoke-rc.d).
    if [ -x "$OTEL_ML_POLICY_RC_D" ]; then
      "$OTEL_ML_POLICY_RC_D" prometheus-node-exporter start
      echo "policy-rc.d answered $?" >> "$CALLS"
    else
      echo "policy-rc.d absent" >> "$CALLS"
    fi
    exit "${APT_EXIT:-0}"
    ;;
esac
"""

LOGGER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
"""


@dataclass
class Sandbox:
    root: Path
    bin: Path
    calls: Path
    policy: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": str(self.bin),
            "HOME": str(self.root),
            "CALLS": str(self.calls),
            "OTEL_ML_CACHE": str(self.root / "cache"),
            "OTEL_ML_POLICY_RC_D": str(self.policy),
            **extra,
        }

    def install_debian(self, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/bash", "-c", f'source "{SCRIPT}" && install_debian'],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=30,
        )

    def logged(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).symlink_to(real)
    _executable(bin_dir / "basename", f'#!/bin/sh\nexec {shutil.which("basename")} "$@"\n')
    _executable(bin_dir / "apt-get", APT_GET)
    for ender in ENDERS:
        _executable(bin_dir / ender, LOGGER)
    return Sandbox(tmp_path, bin_dir, tmp_path / "calls.log", tmp_path / "policy-rc.d")


@pytest.fixture
def users_exporter(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process named prometheus-node-exporter that the project did not start."""
    program = tmp_path / "user" / "prometheus-node-exporter"
    program.parent.mkdir()
    sleep = shutil.which("sleep")
    assert sleep
    shutil.copy(sleep, program)
    process = subprocess.Popen([str(program), "60"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_packaged_services_are_kept_from_starting_and_nothing_is_stopped(
    sandbox: Sandbox, users_exporter: subprocess.Popen[bytes]
) -> None:
    result = sandbox.install_debian()
    assert result.returncode == 0, result.stderr
    calls = sandbox.logged()
    install = [c for c in calls if c.startswith("apt-get") and " install " in c]
    assert len(install) == 1
    assert "prometheus" in install[0] and "prometheus-alertmanager" in install[0]
    # During the install the policy forbade starting services...
    assert f"policy-rc.d answered {FORBIDDEN}" in calls
    # ...so nothing had to be stopped or killed afterwards.
    assert [c for c in calls if c.split()[0] in ENDERS] == []
    assert users_exporter.poll() is None, "the user's exporter was ended"
    # And the policy is gone: later installs on this machine start services as usual.
    assert not sandbox.policy.exists()


def test_an_existing_policy_is_restored_after_the_install(sandbox: Sandbox) -> None:
    theirs = "#!/bin/sh\n# the image's own policy\nexit 0\n"
    _executable(sandbox.policy, theirs)
    result = sandbox.install_debian()
    assert result.returncode == 0, result.stderr
    assert f"policy-rc.d answered {FORBIDDEN}" in sandbox.logged()
    assert sandbox.policy.read_text() == theirs
    assert os.access(sandbox.policy, os.X_OK)


def test_the_policy_is_removed_when_the_install_fails(sandbox: Sandbox) -> None:
    result = sandbox.install_debian(APT_EXIT="100")
    assert result.returncode != 0
    assert f"policy-rc.d answered {FORBIDDEN}" in sandbox.logged()
    assert not sandbox.policy.exists()
    assert not list(sandbox.root.glob("policy-rc.d*"))


def test_nothing_is_installed_when_the_programs_are_there(sandbox: Sandbox) -> None:
    for program in ("prometheus", "promtool", "prometheus-alertmanager", "amtool"):
        _executable(sandbox.bin / program, "#!/bin/sh\n")
    result = sandbox.install_debian()
    assert result.returncode == 0, result.stderr
    assert sandbox.logged() == []
    assert not sandbox.policy.exists()


GO_STUB = """#!/bin/sh
# Records the call and "builds" the program into GOBIN, as `go install` does.
echo "go $* GOBIN=$GOBIN CGO_ENABLED=$CGO_ENABLED" >> "$CALLS"
printf '#!/bin/sh\\necho built\\n' > "$GOBIN/victoria-metrics"
chmod 755 "$GOBIN/victoria-metrics"
"""


def _build_victoriametrics(sandbox: Sandbox) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", "-c", f'source "{SCRIPT}" && build_victoriametrics'],
        env=sandbox.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_victoriametrics_is_built_once_per_version_into_the_cache(sandbox: Sandbox) -> None:
    (sandbox.bin / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    _executable(sandbox.bin / "go", GO_STUB)
    cached = sandbox.root / "cache" / "victoria-metrics-1.151.0" / "victoria-metrics"

    first = _build_victoriametrics(sandbox)
    assert first.returncode == 0, first.stderr
    # The path goes to stdout as KEY=PATH, which `make backends` writes to .backends.env.
    assert first.stdout.splitlines() == [f"VICTORIAMETRICS_BIN={cached}"]
    assert os.access(cached, os.X_OK)
    (install,) = [c for c in sandbox.logged() if c.startswith("go ")]
    assert install.startswith("go install -trimpath")
    assert "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0" in install
    assert "lib/buildinfo.Version=victoria-metrics-v1.151.0" in install
    assert "CGO_ENABLED=0" in install
    # Built in a work dir and moved: no half-written binary is ever at the cached path.
    assert f"GOBIN={cached.parent}.work" in install
    assert not cached.parent.with_name("victoria-metrics-1.151.0.work").exists()

    again = _build_victoriametrics(sandbox)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"VICTORIAMETRICS_BIN={cached}"]
    assert len([c for c in sandbox.logged() if c.startswith("go ")]) == 1, "rebuilt from cache"


VL_GO_STUB = GO_STUB.replace("victoria-metrics", "victoria-logs")


def test_victorialogs_is_built_once_per_version_into_the_cache(sandbox: Sandbox) -> None:
    (sandbox.bin / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    _executable(sandbox.bin / "go", VL_GO_STUB)
    cached = sandbox.root / "cache" / "victoria-logs-1.52.1" / "victoria-logs"

    def build() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/bash", "-c", f'source "{SCRIPT}" && build_victorialogs'],
            env=sandbox.env(), capture_output=True, text=True, timeout=30,
        )

    first = build()
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"VICTORIALOGS_BIN={cached}"]
    assert os.access(cached, os.X_OK)
    (install,) = [c for c in sandbox.logged() if c.startswith("go ")]
    assert install.startswith("go install -trimpath")
    assert "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1" in install
    assert "lib/buildinfo.Version=victoria-logs-v1.52.1" in install
    assert "CGO_ENABLED=0" in install
    assert f"GOBIN={cached.parent}.work" in install
    assert not cached.parent.with_name("victoria-logs-1.52.1.work").exists()

    again = build()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"VICTORIALOGS_BIN={cached}"]
    assert len([c for c in sandbox.logged() if c.startswith("go ")]) == 1, "rebuilt from cache"
