"""collector-config/jaeger.yaml: valid for Jaeger v2, and clear of the collector's ports.

Also its storage: Badger on disk with a retention (traces survive a restart,
tests/e2e/test_e2e_jaeger_restart.py), and jaeger-opensearch.yaml, the
scalable store shipped for larger installs, checked by Jaeger's own parser.
"""

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

from otel_ml.cli.stack import Binaries, Ports
from otel_ml.cli.stack.components import components

JAEGER_YAML = CONFIG / "jaeger.yaml"
OPENSEARCH_YAML = CONFIG / "jaeger-opensearch.yaml"
DATA_DIR_ENV = "JAEGER_DATA_DIR"  # read by jaeger.yaml, set by the stack runner


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


def _trace_backend(config: Any) -> dict[str, Any]:
    """The storage backend both the query service and the exporter use."""
    query = config["extensions"]["jaeger_query"]
    name = query["storage"]["traces"]
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == name
    backend: dict[str, Any] = config["extensions"]["jaeger_storage"]["backends"][name]
    return backend


def test_badger_on_disk_with_retention_and_no_self_tracing_or_colliding_metrics(
    config: Any,
) -> None:
    badger = _trace_backend(config)["badger"]
    # Not ephemeral (Jaeger's default): the directories below survive a restart.
    assert badger["ephemeral"] is False
    directories = badger["directories"]
    assert [env_refs(directories[k]) for k in ("keys", "values")] == [
        [(DATA_DIR_ENV, "/tmp/otel-ml-jaeger")]
    ] * 2
    assert env_default(directories["keys"]) != env_default(directories["values"])
    assert env_refs(badger["ttl"]["spans"]) == [("JAEGER_RETENTION", "72h")]
    query = config["extensions"]["jaeger_query"]
    # Self-traces would go to localhost:4317, the otel-ml collector.
    assert query["enable_tracing"] is False
    # Jaeger's own metrics default to :8888, the collector's telemetry port.
    assert config["service"]["telemetry"]["metrics"]["level"] == "none"


def test_the_stack_gives_jaeger_a_data_dir_in_its_workdir(tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    programs = components(
        Binaries(tools / "otelcol", tools / "jaeger", tools / "prometheus", tools / "alertmanager"),
        CONFIG, tmp_path / "work", tmp_path / "prometheus", Ports(),
    )
    assert programs["jaeger"].env[DATA_DIR_ENV] == str(tmp_path / "work" / "jaeger-data")


@pytest.mark.parametrize(("retention", "valid"), [("720h", True), ("30 days", False)])
def test_jaeger_parses_the_retention_as_a_duration(
    jaeger_bin: Path, retention: str, valid: bool
) -> None:
    result = run(
        [jaeger_bin, "validate", f"--config={JAEGER_YAML}"],
        env={"PATH": "/usr/bin", "JAEGER_RETENTION": retention},
    )
    if valid:
        assert_ok(result)
    else:
        assert result.returncode != 0
        assert "ttl" in result.stderr + result.stdout


# --- the scalable store (shipped, not run: it needs an OpenSearch cluster) ---------------------

# The keys Jaeger v2.13.0 documents for an OpenSearch/Elasticsearch backend
# (cmd/jaeger/config-opensearch.yaml and the mapstructure tags of
# internal/storage/elasticsearch/config.Configuration at v1.76.0).
OPENSEARCH_KEYS = {
    "server_urls", "remote_read_clusters", "auth", "tls", "sniffing", "disable_health_check",
    "send_get_body_as", "query_timeout", "http_compression", "custom_headers",
    "bulk_processing", "version", "log_level", "indices", "use_aliases", "create_mappings",
    "use_ilm", "max_doc_count", "max_span_age", "service_cache_ttl",
    "adaptive_sampling_lookback", "tags_as_fields",
}
INDEX_KEYS = {"date_layout", "shards", "replicas", "rollover_frequency", "priority"}
BULK_KEYS = {"max_bytes", "max_actions", "flush_interval", "workers"}


@pytest.fixture(scope="module")
def opensearch_config() -> Any:
    return load_yaml(OPENSEARCH_YAML)


def test_jaeger_validates_the_opensearch_config(jaeger_bin: Path) -> None:
    # Parses every key into Jaeger's own config structs (an unknown key fails)
    # and runs their checks (server_urls required, each a URL); connects nowhere.
    assert_ok(run([jaeger_bin, "validate", f"--config={OPENSEARCH_YAML}"],
                  env={"PATH": "/usr/bin"}))


def test_opensearch_storage_uses_the_documented_keys(opensearch_config: Any) -> None:
    opensearch = _trace_backend(opensearch_config)["opensearch"]
    assert set(opensearch) <= OPENSEARCH_KEYS
    assert env_refs(opensearch["server_urls"][0]) == [("OPENSEARCH_URL", "http://127.0.0.1:9200")]
    indices = opensearch["indices"]
    assert env_refs(indices["index_prefix"]) == [("JAEGER_INDEX_PREFIX", "otel-ml")]
    for kind in ("spans", "services", "dependencies", "sampling"):
        assert set(indices[kind]) <= INDEX_KEYS, kind
        # Daily indices: retention deletes whole days (docs/backends.md).
        assert indices[kind]["rollover_frequency"] == "day", kind
        assert indices[kind]["date_layout"] == "2006-01-02", kind
    assert set(opensearch["bulk_processing"]) <= BULK_KEYS
    # Queries look back as far as the retention the index cleaner keeps.
    assert env_refs(opensearch["max_span_age"]) == [("JAEGER_RETENTION", "168h")]


def test_opensearch_config_is_a_drop_in_for_jaeger_yaml(
    config: Any, opensearch_config: Any
) -> None:
    # Same listeners, pipeline and query settings: only the storage differs.
    for section in ("receivers", "processors", "service"):
        assert opensearch_config[section] == config[section], section
    for extension in ("healthcheckv2", "jaeger_query"):
        assert opensearch_config["extensions"][extension] == config["extensions"][extension]
    assert opensearch_config["exporters"] == config["exporters"]
