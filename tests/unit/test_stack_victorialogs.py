"""The stack runs VictoriaLogs with its own data dir and retention; the collector writes to it.

Issue 15, part 3: the collector's logs pipeline exports over OTLP/HTTP to
VictoriaLogs single node. The collector (and every member of the scale tier,
which keeps otelcol.yaml's logs pipeline) must get the stack's VictoriaLogs
port; tests/e2e/test_e2e_logs.py runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_ml.cli.stack import PORT_ENV, Binaries, Ports, Stack, Urls
from otel_ml.cli.stack.components import (
    VICTORIALOGS_OTLP_ENDPOINT_ENV,
    VICTORIALOGS_RETENTION,
    components,
    victorialogs_component,
)
from otel_ml.cli.stack.discovery import BINARY_SPECS
from otel_ml.cli.stack.scale import Topology


def _binaries(tmp_path: Path, *, victorialogs: bool = True) -> Binaries:
    names = ("otelcol", "jaeger", "prometheus", "alertmanager")
    return Binaries(*(tmp_path / "bin" / n for n in names),
                    victorialogs=tmp_path / "bin" / "vl" if victorialogs else None)


def test_victorialogs_runs_on_loopback_with_its_data_dir_and_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VICTORIALOGS_RETENTION", raising=False)
    ports = Ports(victorialogs=19428)
    programs = components(_binaries(tmp_path), tmp_path, tmp_path / "work", tmp_path, ports)
    vl = programs["victorialogs"]
    assert vl.argv == (
        str(tmp_path / "bin" / "vl"),
        f"-storageDataPath={tmp_path / 'work' / 'victorialogs-data'}",
        f"-retentionPeriod={VICTORIALOGS_RETENTION}",
        "-httpListenAddr=127.0.0.1:19428",
        "-memory.allowedBytes=512MiB",
    )
    assert vl.health_url == "http://127.0.0.1:19428/health"
    assert vl.ports == {"victorialogs": 19428}
    # The collector's otlp_http/victorialogs exporter follows the port.
    assert programs["otelcol"].env[VICTORIALOGS_OTLP_ENDPOINT_ENV] == (
        "http://127.0.0.1:19428/insert/opentelemetry")
    assert Urls.for_ports(ports).victorialogs == "http://127.0.0.1:19428"
    assert PORT_ENV["victorialogs"] == "VICTORIALOGS_PORT"
    assert Ports.from_env({"VICTORIALOGS_PORT": "9500"}).victorialogs == 9500


def test_every_scale_tier_member_gets_the_victorialogs_endpoint(tmp_path: Path) -> None:
    ports = Ports(victorialogs=19428)
    topology = Topology.scale(ports)
    programs = components(_binaries(tmp_path), tmp_path, tmp_path / "work", tmp_path, ports,
                          topology=topology)
    for member in topology.members:
        assert programs[member.name].env[VICTORIALOGS_OTLP_ENDPOINT_ENV] == (
            "http://127.0.0.1:19428/insert/opentelemetry"), member.name


def test_retention_follows_the_environment_or_the_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VICTORIALOGS_RETENTION", "30d")
    assert "-retentionPeriod=30d" in victorialogs_component(tmp_path / "vl", tmp_path, 1).argv
    explicit = victorialogs_component(tmp_path / "vl", tmp_path, 1, retention="2w")
    assert "-retentionPeriod=2w" in explicit.argv


def test_binary_is_required_and_found_in_the_build_cache(tmp_path: Path) -> None:
    spec = BINARY_SPECS["victorialogs"]
    assert spec.env == "VICTORIALOGS_BIN"
    built = tmp_path / "cache" / "victoria-logs-1.52.1" / "victoria-logs"
    built.parent.mkdir(parents=True)
    built.write_text("#!/bin/sh\n")
    built.chmod(0o755)
    assert spec.cache_glob is not None and list((tmp_path / "cache").glob(spec.cache_glob)) == [
        built
    ]


def test_victorialogs_starts_before_and_stops_after_the_collector(tmp_path: Path) -> None:
    assert Stack.START_ORDER.index("victorialogs") < Stack.START_ORDER.index("otelcol")
    assert Stack.STOP_ORDER.index("victorialogs") > Stack.STOP_ORDER.index("otelcol")
    stack = Stack(tmp_path, binaries=_binaries(tmp_path, victorialogs=False))
    assert "victorialogs" not in stack.components()
    assert "victorialogs" not in stack.state()["urls"]
    assert "victorialogs" in Stack(tmp_path, binaries=_binaries(tmp_path)).state()["urls"]
