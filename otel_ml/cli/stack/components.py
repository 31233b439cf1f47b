"""What each backend runs with: command line, environment, health URL, ports.

Also the rendered configs: Prometheus expands no environment variables, so
its config is copied with the actual ports written in (its remote_write to
VictoriaMetrics too); Chroma reads its
``CHROMA_*`` variables only when started with a config file, so one is
written (:func:`write_chroma_config`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otel_ml.cli.stack.discovery import Binaries
from otel_ml.cli.stack.ports import HOST, PORT_ENV, Ports
from otel_ml.cli.stack.scale import Member, Topology, config_files


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
    # Inherited variables with this prefix are dropped (Chroma merges every
    # CHROMA_* variable into its config: a stray one would change it).
    drop_env_prefix: str = ""

    def environment(self, inherited: Mapping[str, str]) -> dict[str, str]:
        """The program's full environment: ``inherited``, filtered, plus :attr:`env`."""
        prefix = self.drop_env_prefix
        kept = {k: v for k, v in inherited.items() if not (prefix and k.startswith(prefix))}
        return kept | dict(self.env)


def components(
    binaries: Binaries, config_dir: Path, workdir: Path, prometheus_dir: Path, ports: Ports,
    topology: Topology | None = None,
) -> dict[str, Component]:
    """The programs, by name: the backends, and Chroma where it is installed.

    With a scale ``topology``, its gateways and samplers replace the one collector.
    """
    programs = {
        "jaeger": _jaeger(binaries.jaeger, config_dir, workdir, ports),
        "otelcol": _collector(binaries.otelcol, config_dir, workdir, ports),
        "alertmanager": _alertmanager(binaries.alertmanager, config_dir, workdir, ports),
        "prometheus": _prometheus(binaries.prometheus, prometheus_dir, workdir, ports),
    }
    if topology is not None:
        del programs["otelcol"]
        for member in topology.members:
            programs[member.name] = _tier_member(
                binaries.otelcol, config_dir, workdir, ports, topology, member
            )
    if binaries.victoriametrics is not None:
        programs["victoriametrics"] = victoriametrics_component(
            binaries.victoriametrics, workdir / "victoriametrics-data", ports.victoriametrics
        )
    if binaries.victorialogs is not None:
        programs["victorialogs"] = victorialogs_component(
            binaries.victorialogs, workdir / "victorialogs-data", ports.victorialogs
        )
    if binaries.chroma is not None:
        programs["chroma"] = chroma_component(
            binaries.chroma,
            workdir / "chroma.yaml",
            ports.chroma,
            otlp_grpc_endpoint=f"http://{HOST}:{ports.otlp_grpc}",
        )
    return programs


# Chroma's server traces (its documented settings; read only with a config file).
CHROMA_OTLP_ENDPOINT_ENV: Final = "CHROMA_OPEN_TELEMETRY__ENDPOINT"
CHROMA_SERVICE_NAME_ENV: Final = "CHROMA_OPEN_TELEMETRY__SERVICE_NAME"
CHROMA_SERVICE_NAME: Final = "chromadb"  # Chroma's own default
# Chroma's server also exports metrics (about 10 points per export), by default
# every 60 s: one step per 1m rate window, which a dashboard's rate() then reads
# as 0 or as the whole step depending on where the window falls. At the
# scrape interval instead (prometheus.yml, 5 s), its rates are as steady as
# the SDK's. Its OTel SDK reads the standard variable.
CHROMA_METRIC_EXPORT_INTERVAL_MS: Final = "5000"


def chroma_component(
    binary: Path,
    config: Path,
    port: int,
    *,
    otlp_grpc_endpoint: str | None = None,
    service_name: str = CHROMA_SERVICE_NAME,
) -> Component:
    """``chroma run CONFIG``, exporting its traces and metrics to ``otlp_grpc_endpoint`` if given.

    A config file rather than ``--path/--host/--port``: with flags, Chroma
    1.5 builds its config from built-in defaults and ignores every
    ``CHROMA_*`` variable, so ``CHROMA_OPEN_TELEMETRY__*`` would do nothing.
    Its exporter speaks OTLP/gRPC only. ``ANONYMIZED_TELEMETRY=False``: no
    product telemetry leaves the machine.
    """
    env = {"ANONYMIZED_TELEMETRY": "False"}
    if otlp_grpc_endpoint:
        env |= {CHROMA_OTLP_ENDPOINT_ENV: otlp_grpc_endpoint,
                CHROMA_SERVICE_NAME_ENV: service_name,
                "OTEL_METRIC_EXPORT_INTERVAL": CHROMA_METRIC_EXPORT_INTERVAL_MS}
    return Component(
        name="chroma",
        argv=(*_script_argv(binary), "run", str(config)),
        env=env,
        health_url=f"http://{HOST}:{port}/api/v2/heartbeat",
        ports={"chroma": port},
        drop_env_prefix="CHROMA_",
    )


def write_chroma_config(path: Path, persist_dir: Path, port: int, host: str = HOST) -> Path:
    """The YAML config :func:`chroma_component` runs with (JSON is valid YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    persist_dir.mkdir(parents=True, exist_ok=True)
    config = {"persist_path": str(persist_dir), "listen_address": host, "port": port}
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _script_argv(binary: Path) -> tuple[str, ...]:
    """``(interpreter, script)`` for a script with an absolute ``#!`` line, else ``(binary,)``.

    pip's ``chroma`` is a Python script: run through its interpreter, the
    process' executable is that interpreter, which is what ``stack down`` and
    ``status`` compare a recorded pid against (argv[0]).
    """
    try:
        with binary.open("rb") as script:
            first = script.readline(512)
    except OSError:
        return (str(binary),)
    if first.startswith(b"#!"):
        interpreter = Path(first[2:].strip().decode(errors="replace"))
        # "#!/usr/bin/env python3" has arguments: run the script itself then.
        if " " not in str(interpreter) and interpreter.is_absolute() and interpreter.exists():
            return (str(interpreter), str(binary))
    return (str(binary),)


def _collector(binary: Path, config_dir: Path, work: Path, ports: Ports) -> Component:
    env = {
        "OTELCOL_HOST": HOST,
        "OTELCOL_STORAGE_DIR": str(work / "otelcol-storage"),
        "JAEGER_OTLP_ENDPOINT": f"{HOST}:{ports.jaeger_otlp_grpc}",
        VICTORIALOGS_OTLP_ENDPOINT_ENV: victorialogs_otlp_endpoint(ports.victorialogs),
    }
    env |= _port_env(ports, prefix="OTELCOL_")
    return Component(
        name="otelcol",
        argv=(str(binary), f"--config=file:{config_dir / 'otelcol.yaml'}"),
        env=env,
        health_url=f"http://{HOST}:{ports.collector_health}/",
        ports=_ports_of(ports, "otlp_", "collector_"),
    )


def _tier_member(
    binary: Path, config_dir: Path, work: Path, ports: Ports, topology: Topology, member: Member
) -> Component:
    """One gateway or sampler: the collector binary with otelcol.yaml + its tier's file."""
    env = {
        "OTELCOL_HOST": HOST,
        # One disk queue per member: two collectors never share a bbolt file.
        "OTELCOL_STORAGE_DIR": str(work / "otelcol-storage" / member.name),
        "JAEGER_OTLP_ENDPOINT": f"{HOST}:{ports.jaeger_otlp_grpc}",
        # The logs pipeline of otelcol.yaml runs on every member that keeps it.
        VICTORIALOGS_OTLP_ENDPOINT_ENV: victorialogs_otlp_endpoint(ports.victorialogs),
    } | topology.environment(member)
    return Component(
        name=member.name,
        argv=(str(binary), *(f"--config=file:{f}" for f in config_files(config_dir, member))),
        env=env,
        health_url=member.health_url,
        ports={f"{member.name} {name}": port for name, port in member.ports.items()},
    )


def _jaeger(binary: Path, config_dir: Path, work: Path, ports: Ports) -> Component:
    # Badger's keys and values (jaeger.yaml): traces outlive a restart of the stack.
    data = {JAEGER_DATA_DIR_ENV: str(work / "jaeger-data")}
    return Component(
        name="jaeger",
        argv=(str(binary), f"--config=file:{config_dir / 'jaeger.yaml'}"),
        env={"JAEGER_LISTEN_HOST": HOST} | data | _port_env(ports, prefix="JAEGER_"),
        health_url=f"http://{HOST}:{ports.jaeger_health}/status",
        ports=_ports_of(ports, "jaeger_"),
    )


JAEGER_DATA_DIR_ENV: Final = "JAEGER_DATA_DIR"
# VictoriaMetrics keeps samples this long (its -retentionPeriod: a number of
# months, or with a unit h/d/w/y); VICTORIAMETRICS_RETENTION overrides it.
VICTORIAMETRICS_RETENTION_ENV: Final = "VICTORIAMETRICS_RETENTION"
VICTORIAMETRICS_RETENTION: Final = "30d"
# Its caches are sized from this budget, not from 60 % of the machine's RAM
# (its default), so a laptop's stack stays small.
VICTORIAMETRICS_MEMORY: Final = "512MiB"


def victoriametrics_component(
    binary: Path, data_dir: Path, port: int, retention: str | None = None
) -> Component:
    """VictoriaMetrics single node: the long-term store Prometheus remote-writes to.

    ``retention`` defaults to ``$VICTORIAMETRICS_RETENTION``, else
    :data:`VICTORIAMETRICS_RETENTION`. It serves the Prometheus query API
    (MetricsQL) on the same port, so Grafana or tests query it as they
    query Prometheus.
    """
    retention = retention or os.environ.get(
        VICTORIAMETRICS_RETENTION_ENV, VICTORIAMETRICS_RETENTION
    )
    return Component(
        name="victoriametrics",
        argv=(
            str(binary),
            f"-storageDataPath={data_dir}",
            f"-retentionPeriod={retention}",
            f"-httpListenAddr={HOST}:{port}",
            f"-memory.allowedBytes={VICTORIAMETRICS_MEMORY}",
        ),
        env={},
        health_url=f"http://{HOST}:{port}/health",
        ports={"victoriametrics": port},
    )


# VictoriaLogs drops log entries older than this (its -retentionPeriod, minimum
# 1d); VICTORIALOGS_RETENTION overrides it.
VICTORIALOGS_RETENTION_ENV: Final = "VICTORIALOGS_RETENTION"
VICTORIALOGS_RETENTION: Final = "7d"
# The collector's otlp_http/victorialogs exporter reads this (otelcol.yaml).
VICTORIALOGS_OTLP_ENDPOINT_ENV: Final = "VICTORIALOGS_OTLP_ENDPOINT"


def victorialogs_otlp_endpoint(port: int, host: str = HOST) -> str:
    """VictoriaLogs' OTLP ingestion base URL; the exporter appends ``/v1/logs``."""
    return f"http://{host}:{port}/insert/opentelemetry"


def victorialogs_component(
    binary: Path, data_dir: Path, port: int, retention: str | None = None
) -> Component:
    """VictoriaLogs single node: the log store the collector's logs pipeline
    writes to over OTLP (``/insert/opentelemetry/v1/logs``), queried with
    LogsQL (``/select/logsql/query``) by Grafana and the tests.

    ``retention`` defaults to ``$VICTORIALOGS_RETENTION``, else
    :data:`VICTORIALOGS_RETENTION`. Caches get the same fixed budget as
    VictoriaMetrics', not 60 % of the machine's RAM.
    """
    retention = retention or os.environ.get(VICTORIALOGS_RETENTION_ENV, VICTORIALOGS_RETENTION)
    return Component(
        name="victorialogs",
        argv=(
            str(binary),
            f"-storageDataPath={data_dir}",
            f"-retentionPeriod={retention}",
            f"-httpListenAddr={HOST}:{port}",
            f"-memory.allowedBytes={VICTORIAMETRICS_MEMORY}",
        ),
        env={},
        health_url=f"http://{HOST}:{port}/health",
        ports={"victorialogs": port},
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
