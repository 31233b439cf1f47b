"""collector-config/jaeger.yaml: valid for Jaeger v2, and clear of the collector's ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfg_support import (
    COLLECTOR_PORTS,
    CONFIG,
    assert_ok,
    env_default,
    env_refs,
    load_yaml,
    port_of,
    run,
)

JAEGER_YAML = CONFIG / "jaeger.yaml"


@pytest.fixture(scope="module")
def config() -> Any:
    return load_yaml(JAEGER_YAML)


def _endpoints(config: Any) -> dict[str, str]:
    query = config["extensions"]["jaeger_query"]
    protocols = config["receivers"]["otlp"]["protocols"]
    return {
        "otlp grpc": protocols["grpc"]["endpoint"],
        "otlp http": protocols["http"]["endpoint"],
        "query http": query["http"]["endpoint"],
        "query grpc": query["grpc"]["endpoint"],
        "health": config["extensions"]["healthcheckv2"]["http"]["endpoint"],
    }


def test_jaeger_validates_the_config(jaeger_bin: Path) -> None:
    assert_ok(run([jaeger_bin, "validate", f"--config={JAEGER_YAML}"], env={"PATH": "/usr/bin"}))


def test_ports_match_the_contract_and_avoid_the_collector(config: Any) -> None:
    ports = {name: port_of(env_default(e)) for name, e in _endpoints(config).items()}
    assert ports == {
        "otlp grpc": 24317,
        "otlp http": 24318,
        "query http": 16686,
        "query grpc": 16685,
        "health": 23133,
    }
    assert not set(ports.values()) & set(COLLECTOR_PORTS.values())


def test_listeners_default_to_localhost_and_follow_the_image_host(config: Any) -> None:
    # The official image sets JAEGER_LISTEN_HOST=0.0.0.0 for compose.
    for name, endpoint in _endpoints(config).items():
        assert ("JAEGER_LISTEN_HOST", "127.0.0.1") in env_refs(endpoint), name


def test_memory_storage_and_no_self_tracing_or_colliding_metrics(config: Any) -> None:
    query = config["extensions"]["jaeger_query"]
    backend = config["extensions"]["jaeger_storage"]["backends"][query["storage"]["traces"]]
    assert "memory" in backend
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == query["storage"][
        "traces"
    ]
    # Self-traces would go to localhost:4317, the otel-ml collector.
    assert query["enable_tracing"] is False
    # Jaeger's own metrics default to :8888, the collector's telemetry port.
    assert config["service"]["telemetry"]["metrics"]["level"] == "none"
