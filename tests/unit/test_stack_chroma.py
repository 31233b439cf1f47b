"""How ``otel-ml stack`` and the demo launcher run Chroma's server: found where the
venv put it, started with a config file (so its ``CHROMA_OPEN_TELEMETRY__*``
settings are read), and with no stray ``CHROMA_*`` variable reaching it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from otel_ml.cli.stack import Binaries, Ports, StackError
from otel_ml.cli.stack.components import chroma_component, components, write_chroma_config
from otel_ml.cli.stack.discovery import CHROMA_MISSING, find_chroma, require_chroma


def _script(path: Path, first_line: str) -> Path:
    path.write_text(first_line + "\nprint('chroma')\n")
    path.chmod(0o755)
    return path


def test_chroma_is_found_from_the_variable_then_next_to_python_then_path(tmp_path: Path) -> None:
    explicit = _script(tmp_path / "my-chroma", "#!/bin/sh")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    _script(on_path / "chroma", "#!/bin/sh")
    assert find_chroma({"CHROMA_BIN": str(explicit)}) == explicit
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():  # the venv has chromadb: it wins over PATH
        assert find_chroma({"PATH": str(on_path)}) == beside
    else:
        assert find_chroma({"PATH": str(on_path)}) == on_path / "chroma"


def test_a_wrong_chroma_bin_is_an_error_and_a_missing_chroma_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StackError, match=r"CHROMA_BIN=.* is not an executable file"):
        find_chroma({"CHROMA_BIN": str(tmp_path / "nope")})
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert find_chroma({"PATH": str(tmp_path)}) is None
    with pytest.raises(StackError) as raised:
        require_chroma({"PATH": str(tmp_path)})
    assert str(raised.value) == CHROMA_MISSING
    assert "pip install 'chromadb>=1.5.9,<1.6'" in CHROMA_MISSING


def test_the_server_runs_a_config_file_and_exports_traces_over_grpc(tmp_path: Path) -> None:
    interpreter = Path(sys.executable)
    script = _script(tmp_path / "chroma", f"#!{interpreter}")
    config = write_chroma_config(tmp_path / "c" / "chroma.yaml", tmp_path / "data", 8123)
    assert json.loads(config.read_text()) == {
        "persist_path": str(tmp_path / "data"), "listen_address": "127.0.0.1", "port": 8123,
    }
    assert (tmp_path / "data").is_dir()
    component = chroma_component(script, config, 8123, otlp_grpc_endpoint="http://127.0.0.1:4317")
    # Through its interpreter: `stack down` recognises the pid by its executable.
    assert component.argv == (str(interpreter), str(script), "run", str(config))
    assert component.health_url == "http://127.0.0.1:8123/api/v2/heartbeat"
    assert component.ports == {"chroma": 8123}
    env = component.environment({"PATH": "/bin", "CHROMA_PORT": "1", "CHROMA_BIN": "x"})
    assert env == {
        "PATH": "/bin",
        "ANONYMIZED_TELEMETRY": "False",
        "CHROMA_OPEN_TELEMETRY__ENDPOINT": "http://127.0.0.1:4317",
        "CHROMA_OPEN_TELEMETRY__SERVICE_NAME": "chromadb",
        # Its metrics at the scrape interval, not once per 1m rate window.
        "OTEL_METRIC_EXPORT_INTERVAL": "5000",
    }


def test_without_an_endpoint_chroma_exports_nothing_and_a_binary_runs_as_is(
    tmp_path: Path,
) -> None:
    binary = _script(tmp_path / "chroma", "#!/usr/bin/env python3")
    component = chroma_component(binary, tmp_path / "c.yaml", 9000)
    assert component.argv == (str(binary), "run", str(tmp_path / "c.yaml"))
    assert component.environment({}) == {"ANONYMIZED_TELEMETRY": "False"}


def test_the_stack_runs_chroma_only_where_it_is_installed(tmp_path: Path) -> None:
    tools = {name: _script(tmp_path / name, "#!/usr/bin/env sh")
             for name in ("otelcol", "jaeger", "prometheus", "alertmanager", "chroma")}
    ports = Ports(chroma=8555, otlp_grpc=4999)
    without = Binaries(tools["otelcol"], tools["jaeger"], tools["prometheus"],
                       tools["alertmanager"])
    assert "chroma" not in components(without, tmp_path, tmp_path, tmp_path, ports)
    with_chroma = Binaries(**{**without.__dict__, "chroma": tools["chroma"]})
    chroma = components(with_chroma, tmp_path, tmp_path, tmp_path, ports)["chroma"]
    assert chroma.argv == (str(tools["chroma"]), "run", str(tmp_path / "chroma.yaml"))
    assert chroma.env["CHROMA_OPEN_TELEMETRY__ENDPOINT"] == "http://127.0.0.1:4999"
    assert chroma.ports == {"chroma": 8555}
