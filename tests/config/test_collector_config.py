"""collector-config/otelcol.yaml: valid for the real collector, and shaped as documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
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

OTELCOL_YAML = CONFIG / "otelcol.yaml"



@pytest.fixture(scope="module")
def config() -> Any:
    return load_yaml(OTELCOL_YAML)


def _validate(otelcol_bin: Path, env: dict[str, str] | None = None) -> None:
    assert_ok(run([otelcol_bin, "validate", f"--config={OTELCOL_YAML}"], env=env))


def test_collector_validates_the_native_config(otelcol_bin: Path) -> None:
    _validate(otelcol_bin, env={"PATH": "/usr/bin:/bin"})


def test_collector_validates_the_compose_environment(otelcol_bin: Path) -> None:
    _validate(
        otelcol_bin,
        env={
            "PATH": "/usr/bin:/bin",
            "OTELCOL_HOST": "0.0.0.0",
            "JAEGER_OTLP_ENDPOINT": "jaeger:24317",
            "OTELCOL_STORAGE_DIR": "/var/lib/otelcol/file_storage",
        },
    )


def test_validate_rejects_a_broken_config(otelcol_bin: Path, tmp_path: Path) -> None:
    # Guards the two tests above: `validate` must actually check components.
    broken = tmp_path / "broken.yaml"
    text = OTELCOL_YAML.read_text(encoding="utf-8").replace("memory_limiter:", "memory_limitr:", 1)
    broken.write_text(text, encoding="utf-8")
    result = run([otelcol_bin, "validate", f"--config={broken}"])
    assert result.returncode != 0
    assert "memory_limitr" in result.stderr + result.stdout


def test_every_component_type_is_in_the_built_collector(otelcol_bin: Path, config: Any) -> None:
    result = run([otelcol_bin, "components"])
    assert_ok(result)
    built = yaml.safe_load(result.stdout)
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        available = {component["name"] for component in built.get(kind) or []}
        used = {component_id.split("/")[0] for component_id in config.get(kind) or {}}
        assert used <= available, f"{kind} missing from the build: {used - available}"


def test_pipelines_order_limiter_first_redaction_before_batch(config: Any) -> None:
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["processors"] == ["memory_limiter", "redaction", "batch"]
    assert pipelines["metrics"]["processors"] == ["memory_limiter", "batch"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert set(pipelines["traces"]["exporters"]) == {"otlp_grpc/jaeger", "span_metrics", "debug"}
    assert set(pipelines["metrics"]["receivers"]) == {"otlp", "span_metrics"}
    assert pipelines["metrics"]["exporters"] == ["prometheus"]


def test_jaeger_exporter_retries_from_a_persistent_queue(config: Any) -> None:
    exporter = config["exporters"]["otlp_grpc/jaeger"]
    assert env_refs(exporter["endpoint"]) == [("JAEGER_OTLP_ENDPOINT", "127.0.0.1:24317")]
    assert exporter["retry_on_failure"]["enabled"] is True
    storage = exporter["sending_queue"]["storage"]
    assert storage in config["extensions"]
    assert storage in config["service"]["extensions"]
    file_storage = config["extensions"][storage]
    assert file_storage["create_directory"] is True
    assert env_refs(file_storage["directory"]) == [
        ("OTELCOL_STORAGE_DIR", "/var/lib/otelcol/file_storage")
    ]


def test_span_metrics_dimensions_unit_and_exemplars(config: Any) -> None:
    connector = config["connectors"]["span_metrics"]
    dimensions = {dimension["name"] for dimension in connector["dimensions"]}
    assert {"tenant.id", "gen_ai.request.model", "gen_ai.operation.name"} <= dimensions
    # Rules and dashboards use traces_span_metrics_duration_seconds_*.
    assert connector["histogram"]["unit"] == "s"
    assert connector["exemplars"]["enabled"] is True


def test_prometheus_exporter_keeps_exemplars_and_resource_labels(config: Any) -> None:
    exporter = config["exporters"]["prometheus"]
    assert exporter["enable_open_metrics"] is True
    assert exporter["resource_to_telemetry_conversion"]["enabled"] is True
    # Prometheus 2.x cannot query UTF-8 names.
    assert exporter.get("translation_strategy", "UnderscoreEscapingWithSuffixes") == (
        "UnderscoreEscapingWithSuffixes"
    )


def _listen_endpoints(config: Any) -> dict[str, str]:
    telemetry = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    prometheus_reader = telemetry["prometheus"]
    protocols = config["receivers"]["otlp"]["protocols"]
    return {
        "otlp grpc": protocols["grpc"]["endpoint"],
        "otlp http": protocols["http"]["endpoint"],
        "prometheus exporter": config["exporters"]["prometheus"]["endpoint"],
        "telemetry": f"{prometheus_reader['host']}:{prometheus_reader['port']}",
        "health_check": config["extensions"]["health_check"]["endpoint"],
        "zpages": config["extensions"]["zpages"]["endpoint"],
        "pprof": config["extensions"]["pprof"]["endpoint"],
    }


def test_every_listener_is_local_by_default_and_env_overridable(config: Any) -> None:
    endpoints = _listen_endpoints(config)
    ports: dict[str, int] = {}
    for name, endpoint in endpoints.items():
        refs = dict(env_refs(endpoint))
        assert refs.get("OTELCOL_HOST") == "127.0.0.1", f"{name}: host not ${{env:OTELCOL_HOST}}"
        port_vars = [var for var in refs if var.endswith("_PORT")]
        assert len(port_vars) == 1, f"{name}: port is not env-overridable: {endpoint}"
        ports[port_vars[0]] = port_of(env_default(endpoint))
    assert ports == COLLECTOR_PORTS
    overridden = env_default(endpoints["otlp grpc"], {"OTELCOL_OTLP_GRPC_PORT": "14317"})
    assert port_of(overridden) == 14317


# --- redaction -------------------------------------------------------------------------------

SECRETS = [
    "write to bob.smith+rag@example.co.uk please",
    "my key is sk-proj-AbCdEfGhIjKlMnOpQrStUv123456",
    "sk-abcdefghijklmnop1234",
    "card 4111 1111 1111 1111 exp 12/29",
    "card 5500-0000-0000-0004",
    "card 4111111111111111",
    "amex 3782 822463 10005",
    "aws AKIAIOSFODNN7EXAMPLE",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
]
HARMLESS = [
    "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "1716239022123456",  # a microsecond timestamp
    "tokens 1048576, cost 0.000123 USD",
    "gpt-4o-mini answered in 1.28s",
    "task-manager",
    "the sk-1 model",
]


@pytest.fixture(scope="module")
def blocked_values(config: Any) -> list[re.Pattern[str]]:
    patterns = config["processors"]["redaction"]["blocked_values"]
    # RE2 (Go) rejects lookarounds and backreferences; keeping to the common
    # subset means Python's re behaves like the collector on these patterns.
    for pattern in patterns:
        assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), f"not RE2-compatible: {pattern}"
    return [re.compile(pattern) for pattern in patterns]


def _mask(text: str, patterns: list[re.Pattern[str]]) -> str:
    for pattern in patterns:
        text = pattern.sub("****", text)
    return text


@pytest.mark.parametrize("text", SECRETS)
def test_redaction_masks_secrets(text: str, blocked_values: list[re.Pattern[str]]) -> None:
    masked = _mask(text, blocked_values)
    assert "****" in masked
    assert not re.search(r"@example|sk-[A-Za-z0-9]{8}|\d{4}[ -]?\d{4}[ -]?\d{4}|AKIA|eyJ", masked)


@pytest.mark.parametrize("text", HARMLESS)
def test_redaction_leaves_ordinary_values(text: str, blocked_values: list[re.Pattern[str]]) -> None:
    assert _mask(text, blocked_values) == text


def test_redaction_keeps_every_key_and_masks_secret_named_keys(config: Any) -> None:
    redaction = config["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True
    key_patterns = [re.compile(p) for p in redaction["blocked_key_patterns"]]
    for key in ("http.request.header.authorization", "db.password", "openai.api_key"):
        assert any(p.fullmatch(key) for p in key_patterns), key
    for key in ("gen_ai.usage.input_tokens", "gen_ai.input.messages", "tenant.id"):
        assert not any(p.fullmatch(key) for p in key_patterns), key
