"""The scale-out topology: two gateway collectors and two samplers instead of one collector.

``otel-ml stack up --topology scale`` runs the same collector binary four
times, each with ``otelcol.yaml`` plus its tier's file from
``collector-config/scale/`` (the collector merges ``--config`` files in
order), on loopback ports of its own. ``gateway-0`` takes the stack's
ordinary collector ports (OTLP 4317/4318, metrics 8889/8888...), so an SDK
pointed at the default endpoint needs no change; every other member takes
the same ports moved by :data:`PORT_STEP` per member. Prometheus scrapes
every member (:func:`write_prometheus_targets`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from otel_ml.cli.stack.ports import HOST, PORT_ENV, Ports, free_ports

TOPOLOGIES: Final = ("default", "scale")
GATEWAYS: Final = 2
# collector-config/scale/gateway.yaml has one pipeline (trace-id slice) per sampler.
SAMPLERS: Final = 2
# Member k (gateway-0 is 0) listens on each collector port + k * PORT_STEP.
PORT_STEP: Final = 10
COLLECTOR_PORTS: Final = (
    "otlp_grpc", "otlp_http", "collector_health", "collector_zpages", "collector_pprof",
    "collector_metrics", "collector_telemetry",
)
# What the single collector is called in the runner's start and stop orders.
SINGLE_COLLECTOR: Final = "otelcol"
# The variables collector-config/scale/gateway.yaml reads for its samplers.
SAMPLER_ENDPOINT_ENV: Final = "OTEL_ML_SAMPLER_{index}_ENDPOINT"


@dataclass(frozen=True)
class Member:
    """One collector of the tier: its name (``gateway-0``), role and ports."""

    name: str
    role: str  # "gateway" or "sampler": the config file in collector-config/scale/
    ports: Mapping[str, int]

    @property
    def otlp_grpc(self) -> str:
        return f"{HOST}:{self.ports['otlp_grpc']}"

    @property
    def otlp_http(self) -> str:
        return f"http://{HOST}:{self.ports['otlp_http']}"

    @property
    def health_url(self) -> str:
        return f"http://{HOST}:{self.ports['collector_health']}/"

    @property
    def metrics_target(self) -> str:
        """The prometheus exporter: SDK metrics (gateways), span metrics (samplers)."""
        return f"{HOST}:{self.ports['collector_metrics']}"

    @property
    def telemetry_target(self) -> str:
        """The collector's own metrics (queue sizes, sent and refused spans)."""
        return f"{HOST}:{self.ports['collector_telemetry']}"


@dataclass(frozen=True)
class Topology:
    """The members of the scale-out tier, gateways first."""

    members: tuple[Member, ...]

    @classmethod
    def scale(cls, ports: Ports) -> Topology:
        """gateway-0 on ``ports``' collector ports, the others moved by :data:`PORT_STEP`."""
        base = {name: ports.as_dict()[name] for name in COLLECTOR_PORTS}
        return cls._build(lambda k: {name: port + k * PORT_STEP for name, port in base.items()},
                          base)

    @classmethod
    def scale_free(cls, ports: Ports) -> Topology:
        """gateway-0 on ``ports``' collector ports, the others on ports free right now (tests)."""
        base = {name: ports.as_dict()[name] for name in COLLECTOR_PORTS}
        numbers = iter(free_ports(len(COLLECTOR_PORTS) * (GATEWAYS + SAMPLERS - 1)))
        return cls._build(lambda _k: {name: next(numbers) for name in COLLECTOR_PORTS}, base)

    @classmethod
    def _build(
        cls, moved: Callable[[int], Mapping[str, int]], base: Mapping[str, int]
    ) -> Topology:
        roles = [("gateway", i) for i in range(GATEWAYS)]
        roles += [("sampler", i) for i in range(SAMPLERS)]
        members = tuple(
            Member(f"{role}-{index}", role, base if k == 0 else moved(k))
            for k, (role, index) in enumerate(roles)
        )
        return cls(members)

    @property
    def gateways(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.role == "gateway")

    @property
    def samplers(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.role == "sampler")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def start_order(self, order: Sequence[str]) -> tuple[str, ...]:
        """``order`` with the single collector replaced by samplers, then gateways
        (each one's downstream first, as the runner starts everything)."""
        tier = (*[m.name for m in self.samplers], *[m.name for m in self.gateways])
        return _replace(order, tier)

    def stop_stages(self, order: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """Stop stages: gateways together (they drain into the samplers), then the
        samplers together (they flush to Jaeger), where the single collector stood."""
        stages: list[tuple[str, ...]] = []
        for name in order:
            if name == SINGLE_COLLECTOR:
                stages += [tuple(m.name for m in self.gateways),
                           tuple(m.name for m in self.samplers)]
            else:
                stages.append((name,))
        return tuple(stages)

    def environment(self, member: Member) -> dict[str, str]:
        """What the member's config reads on top of the single collector's variables."""
        env = {var: str(member.ports[name]) for name, var in PORT_ENV.items()
               if name in member.ports}
        # Stable per member: the span metrics series of each sampler keep
        # their own collector.instance.id label across restarts (otelcol.yaml).
        env["OTELCOL_INSTANCE_ID"] = member.name
        if member.role == "gateway":
            for index, sampler in enumerate(self.samplers):
                env[SAMPLER_ENDPOINT_ENV.format(index=index)] = sampler.otlp_http
        return env


def config_files(config_dir: Path, member: Member) -> tuple[Path, Path]:
    """``otelcol.yaml`` and the tier's own file, merged in this order by the collector."""
    return config_dir / "otelcol.yaml", config_dir / "scale" / f"{member.role}.yaml"


def write_prometheus_targets(prometheus_dir: Path, topology: Topology) -> None:
    """Point the rendered Prometheus config at every member (both scrape jobs)."""
    targets = prometheus_dir / "targets"
    exporter = ", ".join(m.metrics_target for m in topology.members)
    telemetry = ", ".join(m.telemetry_target for m in topology.members)
    (targets / "otelcol-exporter.yml").write_text(
        "# Scale topology: every gateway's (SDK metrics) and sampler's (span metrics)\n"
        f"# prometheus exporter.\n- targets: [{exporter}]\n"
    )
    (targets / "otelcol.yml").write_text(
        "# Scale topology: every member's own telemetry.\n"
        f"- targets: [{telemetry}]\n"
    )


def _replace(order: Sequence[str], tier: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in order:
        out += tier if name == SINGLE_COLLECTOR else [name]
    return tuple(out)
