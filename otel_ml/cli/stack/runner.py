""":class:`Stack`: the backends (and Chroma) as child processes of this one."""

from __future__ import annotations

import dataclasses
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from otel_ml.cli.stack.components import (
    Component,
    components,
    materialize_prometheus,
    write_chroma_config,
)
from otel_ml.cli.stack.discovery import Binaries, find_config_dir
from otel_ml.cli.stack.errors import StackError
from otel_ml.cli.stack.ports import Ports, Urls, busy_ports
from otel_ml.cli.stack.scale import Topology, write_prometheus_targets
from otel_ml.cli.supervisor import (
    ProcessSpec,
    Progress,
    StartupError,
    Supervisor,
    log_tail,
)


def stderr_progress(message: str) -> None:
    """The default progress sink: stderr, so stdout keeps only the ready banner."""
    print(f"[stack] {message}", file=sys.stderr, flush=True)


class Stack:
    """The four backends as child processes of this one.

    Start order is Jaeger, collector, Alertmanager, Prometheus (each one's
    downstream first), then Chroma where chromadb is installed (the demo's
    vector database, exporting its traces to the collector); all are
    launched at once and then awaited together. VictoriaMetrics starts
    before Prometheus and stops after it, so Prometheus's last remote-write
    batches reach it. Stop order is Chroma, Prometheus, VictoriaMetrics,
    collector, Jaeger, Alertmanager, so the collector's last batches still
    reach a running Jaeger. Each program gets
    a parent-death signal (Linux), so a SIGKILLed runner orphans nothing.
    """

    # VictoriaLogs is downstream of the collector (its logs pipeline): started
    # before it, stopped after it, as Jaeger.
    START_ORDER: Final = (
        "jaeger", "victoriametrics", "victorialogs", "otelcol", "alertmanager", "prometheus",
        "chroma",
    )
    STOP_ORDER: Final = (
        "chroma", "prometheus", "victoriametrics", "otelcol", "victorialogs", "jaeger",
        "alertmanager",
    )

    def __init__(
        self,
        workdir: Path,
        *,
        ports: Ports | None = None,
        binaries: Binaries | None = None,
        config_dir: Path | None = None,
        startup_timeout: float = 60.0,
        topology: Topology | None = None,
        stop_timeout: float = 10.0,
        progress: Progress = stderr_progress,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.ports = ports or Ports()
        self.config_dir = find_config_dir(config_dir).resolve()
        self.binaries = binaries or Binaries.resolve(config_dir=self.config_dir)
        self.urls = Urls.for_ports(self.ports)
        # None: the one collector (otelcol.yaml). A scale topology runs its
        # gateways and samplers instead (collector-config/scale/).
        self.topology = topology
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._supervisor = Supervisor(progress=progress)

    # -- paths --
    @property
    def prometheus_dir(self) -> Path:
        return self.workdir / "prometheus"

    @property
    def prometheus_rules_dir(self) -> Path:
        """Rule files here are evaluated after :meth:`reload_prometheus` (or at start)."""
        return self.prometheus_dir / "rules"

    @property
    def jaeger_dir(self) -> Path:
        """Jaeger's Badger store (keys/, values/): traces survive a Jaeger restart."""
        return self.workdir / "jaeger-data"

    @property
    def victoriametrics_dir(self) -> Path:
        """VictoriaMetrics' data (-storageDataPath)."""
        return self.workdir / "victoriametrics-data"

    @property
    def victorialogs_dir(self) -> Path:
        """VictoriaLogs' data (-storageDataPath)."""
        return self.workdir / "victorialogs-data"

    @property
    def chroma_dir(self) -> Path:
        """Chroma's data (the demo corpus survives a restart) and its config file."""
        return self.workdir / "chroma-data"

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    @property
    def pids(self) -> dict[str, int]:
        return self._supervisor.pids

    def components(self) -> dict[str, Component]:
        return components(
            self.binaries, self.config_dir, self.workdir, self.prometheus_dir, self.ports,
            topology=self.topology,
        )

    # -- lifecycle --
    def start(self) -> None:
        """Start every program and return once all are healthy; on failure stop them all."""
        if self._supervisor.children:
            raise StackError("stack already started")
        programs = self.components()
        busy = busy_ports({name: c.ports for name, c in programs.items()})
        if busy:
            raise StackError(
                "ports already in use (another stack? try `otel-ml stack status`):\n  "
                + "\n  ".join(busy)
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        materialize_prometheus(self.config_dir, self.prometheus_dir, self.ports)
        if self.topology is not None:
            write_prometheus_targets(self.prometheus_dir, self.topology)
        if "chroma" in programs:
            write_chroma_config(self.workdir / "chroma.yaml", self.chroma_dir, self.ports.chroma)
        try:
            order: tuple[str, ...] = self.START_ORDER
            if self.topology is not None:
                order = self.topology.start_order(order)
            for name in order:
                if name in programs:
                    self._supervisor.spawn(self._spec(programs[name]))
            self._supervisor.await_healthy(self.startup_timeout)
        except StartupError as exc:
            self.stop()
            raise StackError(str(exc)) from None
        except BaseException:
            self.stop()
            raise

    def _spec(self, component: Component) -> ProcessSpec:
        return ProcessSpec(
            component.name,
            component.argv,
            env=component.environment(os.environ),
            log=self.log_path(component.name),
            health_url=component.health_url,
            die_with_parent=True,
        )

    def stop(self) -> None:
        """Stop every started program, in order; safe to call twice."""
        stages: tuple[tuple[str, ...], ...] = tuple((name,) for name in self.STOP_ORDER)
        if self.topology is not None:
            stages = self.topology.stop_stages(self.STOP_ORDER)
        self._supervisor.stop(stages, self.stop_timeout)

    def kill(self, name: str) -> None:
        """SIGKILL one program, as an OOM kill or a lost node would (failure tests)."""
        child = self._supervisor.children.pop(name)
        child.process.kill()
        child.process.wait()

    def restart(self, name: str) -> None:
        """Start a killed program again, with the same command line and data directory."""
        self._supervisor.spawn(self._spec(self.components()[name]))
        self._supervisor.await_healthy(self.startup_timeout)

    def exited(self) -> dict[str, int]:
        """Programs that died since start, with their exit codes."""
        return self._supervisor.exited()

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
        programs = self.components()
        urls = dataclasses.asdict(self.urls)
        if "chroma" not in programs:
            del urls["chroma"]  # not installed: nothing listens there
        if "victoriametrics" not in programs:
            del urls["victoriametrics"]
        if "victorialogs" not in programs:
            del urls["victorialogs"]
        return {
            "runner_pid": os.getpid(),
            "ports": self.ports.as_dict(),
            "urls": urls,
            "components": {
                name: {
                    "pid": child.pid,
                    "binary": programs[name].argv[0],
                    "health_url": programs[name].health_url,
                    "log": str(child.log),
                }
                for name, child in self._supervisor.children.items()
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
