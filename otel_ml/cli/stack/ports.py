"""Every port of the stack, how each one is moved, and a check that they are free."""

from __future__ import annotations

import dataclasses
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otel_ml.cli.stack.errors import StackError

HOST: Final = "127.0.0.1"
# free_ports never goes below: the well-known and common service ports.
_LOWEST_FREE: Final = 10_000
_EPHEMERAL_RANGE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")


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
    chroma: int = 8100  # not Chroma's own 8000: the demo api's port in docker-compose.yml
    victoriametrics: int = 8428  # Prometheus remote-writes here (long-term metrics)
    victorialogs: int = 9428  # the collector's logs pipeline writes here (OTLP)

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
    def free(cls, headroom: int = 0) -> Ports:
        """Ports the kernel reports free right now, for tests next to a running stack.

        See :func:`free_ports`; another process could still take one before the
        stack binds it, which the start-up check then reports.
        """
        return cls(*free_ports(len(dataclasses.fields(cls)), headroom))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


# The variable names the configs expand (otelcol.yaml, jaeger.yaml); the last
# three are this runner's own (Prometheus, Alertmanager and Chroma take flags
# or a config file the runner writes).
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
    "chroma": "CHROMA_PORT",
    "victoriametrics": "VICTORIAMETRICS_PORT",
    "victorialogs": "VICTORIALOGS_PORT",
}


@dataclass(frozen=True)
class Urls:
    """Where to reach the running stack."""

    otlp_grpc: str
    otlp_http: str
    jaeger: str
    prometheus: str
    alertmanager: str
    chroma: str
    victoriametrics: str
    victorialogs: str

    @classmethod
    def for_ports(cls, ports: Ports) -> Urls:
        return cls(
            otlp_grpc=f"http://{HOST}:{ports.otlp_grpc}",
            otlp_http=f"http://{HOST}:{ports.otlp_http}",
            jaeger=f"http://{HOST}:{ports.jaeger_query_http}",
            prometheus=f"http://{HOST}:{ports.prometheus}",
            alertmanager=f"http://{HOST}:{ports.alertmanager}",
            chroma=f"http://{HOST}:{ports.chroma}",
            victoriametrics=f"http://{HOST}:{ports.victoriametrics}",
            victorialogs=f"http://{HOST}:{ports.victorialogs}",
        )


def busy_ports(by_program: Mapping[str, Mapping[str, int]]) -> list[str]:
    """``host:port (program port-name)`` for every port something already holds.

    Checked before anything starts: a program that finds its port taken
    exits with a message buried in its own log, far from the real cause.
    """
    busy = []
    for program, ports in by_program.items():
        for name, port in ports.items():
            with socket.socket() as sock:
                # Not a listener: TIME_WAIT leftovers of a stopped stack are no clash.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, port))
                except OSError:
                    busy.append(f"{HOST}:{port} ({program} {name})")
    return busy


def free_ports(count: int, headroom: int = 0) -> list[int]:
    """``count`` distinct ports free right now, outside the kernel's ephemeral range.

    Not ``bind(0)``: that hands out ports of the ephemeral range, which the
    kernel also gives to the local end of every outgoing connection, so in the
    time between this check and a program's own bind, any client on the
    machine (a scrape, an exporter) can take one and the program fails with
    "address already in use". Outside the range, only a listener can. The
    sockets are held open together, so no two ports are the same; ``headroom``
    keeps that many ports free of the range above each one too (ports moved by
    a fixed step, as the scale tier's members are). On a machine whose
    ephemeral range leaves no room (it spans nearly every port), the kernel's
    own pick is the fallback.
    """
    candidates = _outside_ephemeral(headroom)
    if len(candidates) < 4 * count:
        return _kernel_ports(count)
    return _bindable(candidates, count)


def _bindable(candidates: range, count: int) -> list[int]:
    """``count`` ports of ``candidates`` that bind now, tried in random order."""
    held: list[socket.socket] = []
    try:
        for candidate in random.sample(candidates, k=min(len(candidates), 50 * count + 1000)):
            if len(held) == count:
                break
            sock = socket.socket()
            try:
                sock.bind((HOST, candidate))
            except OSError:
                sock.close()
                continue
            held.append(sock)
        if len(held) < count:
            raise StackError(f"only {len(held)} of {count} ports free in "
                             f"{candidates.start}..{candidates.stop - 1}")
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def _outside_ephemeral(headroom: int) -> range:
    """The larger of the port ranges below and above the ephemeral one."""
    first, last = _ephemeral_range()
    below = range(_LOWEST_FREE, first - headroom)
    above = range(max(last + 1, _LOWEST_FREE), 65_536 - headroom)
    return max(below, above, key=len)


def _kernel_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _ephemeral_range() -> tuple[int, int]:
    try:
        first, last = (int(n) for n in _EPHEMERAL_RANGE.read_text().split()[:2])
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default
    return first, last
