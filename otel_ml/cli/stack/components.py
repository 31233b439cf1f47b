"""What each backend runs with: command line, environment, health URL, ports.

Also the one rendered config: Prometheus expands no environment variables,
so its config is copied with the actual ports written in.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otel_ml.cli.stack.discovery import Binaries
from otel_ml.cli.stack.ports import HOST, PORT_ENV, Ports


@dataclass(frozen=True)
class Component:
    """One backend program: its command line, environment and health endpoint.

    ``env`` holds only what the program needs on top of the runner's own
    environment; ``ports`` are checked for clashes before anything starts.
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    health_url: str
    ports: Mapping[str, int]


def components(
    binaries: Binaries, config_dir: Path, workdir: Path, prometheus_dir: Path, ports: Ports
) -> dict[str, Component]:
    """The four programs, by name."""
    return {
        "jaeger": _jaeger(binaries.jaeger, config_dir, ports),
        "otelcol": _collector(binaries.otelcol, config_dir, workdir, ports),
        "alertmanager": _alertmanager(binaries.alertmanager, config_dir, workdir, ports),
        "prometheus": _prometheus(binaries.prometheus, prometheus_dir, workdir, ports),
    }


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
