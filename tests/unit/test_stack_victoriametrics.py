"""The stack runs VictoriaMetrics with its own data dir and retention, and Prometheus writes to it.

Issue 15, item 2: Prometheus remote-writes every sample to VictoriaMetrics
single node. The stack renders prometheus.yml with its actual ports, so the
remote_write URL must follow the VictoriaMetrics port like every other
address; the e2e test (tests/e2e/test_e2e_victoriametrics.py) runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from otel_ml.cli.stack import PORT_ENV, Binaries, Ports, Stack, Urls, find_config_dir
from otel_ml.cli.stack.components import (
    VICTORIAMETRICS_RETENTION,
    components,
    materialize_prometheus,
    victoriametrics_component,
)
from otel_ml.cli.stack.discovery import BINARY_SPECS


def _binaries(tmp_path: Path, *, victoriametrics: bool = True) -> Binaries:
    names = ("otelcol", "jaeger", "prometheus", "alertmanager")
    return Binaries(*(tmp_path / "bin" / n for n in names),
                    victoriametrics=tmp_path / "bin" / "vm" if victoriametrics else None)


def test_victoriametrics_runs_on_loopback_with_its_data_dir_and_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VICTORIAMETRICS_RETENTION", raising=False)
    ports = Ports(victoriametrics=18428)
    vm = components(_binaries(tmp_path), tmp_path, tmp_path / "work", tmp_path, ports)[
        "victoriametrics"
    ]
    assert vm.argv == (
        str(tmp_path / "bin" / "vm"),
        f"-storageDataPath={tmp_path / 'work' / 'victoriametrics-data'}",
        f"-retentionPeriod={VICTORIAMETRICS_RETENTION}",
        "-httpListenAddr=127.0.0.1:18428",
        "-memory.allowedBytes=512MiB",
    )
    assert vm.health_url == "http://127.0.0.1:18428/health"
    assert vm.ports == {"victoriametrics": 18428}
    assert Urls.for_ports(ports).victoriametrics == "http://127.0.0.1:18428"
    assert PORT_ENV["victoriametrics"] == "VICTORIAMETRICS_PORT"
    assert Ports.from_env({"VICTORIAMETRICS_PORT": "9428"}).victoriametrics == 9428


def test_retention_follows_the_environment_or_the_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VICTORIAMETRICS_RETENTION", "1y")
    assert "-retentionPeriod=1y" in victoriametrics_component(tmp_path / "vm", tmp_path, 1).argv
    explicit = victoriametrics_component(tmp_path / "vm", tmp_path, 1, retention="2w")
    assert "-retentionPeriod=2w" in explicit.argv


def test_binary_is_required_and_found_in_the_build_cache(tmp_path: Path) -> None:
    spec = BINARY_SPECS["victoriametrics"]
    assert spec.env == "VICTORIAMETRICS_BIN"
    # scripts/backends.sh caches it as victoria-metrics-<version>/victoria-metrics.
    built = tmp_path / "cache" / "victoria-metrics-1.151.0" / "victoria-metrics"
    built.parent.mkdir(parents=True)
    built.write_text("#!/bin/sh\n")
    built.chmod(0o755)
    assert spec.cache_glob is not None and list((tmp_path / "cache").glob(spec.cache_glob)) == [
        built
    ]


def test_a_stack_without_victoriametrics_lists_no_url_for_it(tmp_path: Path) -> None:
    stack = Stack(tmp_path, binaries=_binaries(tmp_path, victoriametrics=False))
    assert "victoriametrics" not in stack.components()
    assert "victoriametrics" not in stack.state()["urls"]
    assert "victoriametrics" in Stack(tmp_path, binaries=_binaries(tmp_path)).state()["urls"]


def test_prometheus_remote_writes_to_the_stacks_victoriametrics_port(tmp_path: Path) -> None:
    rendered = materialize_prometheus(
        find_config_dir(), tmp_path / "prometheus", Ports(victoriametrics=19999)
    )
    config = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert config["remote_write"] == [
        {"name": "victoriametrics", "url": "http://127.0.0.1:19999/api/v1/write"}
    ]
