"""collector-config/otelcol.yaml: valid for the real collector, and shaped as documented."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
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

from otel_ml import semconv
from otel_ml.cli.stack.ports import free_ports

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
            "VICTORIALOGS_OTLP_ENDPOINT": "http://victorialogs:9428/insert/opentelemetry",
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


def test_pipelines_order_limiter_first_then_redaction(config: Any) -> None:
    pipelines = config["service"]["pipelines"]
    # No batch processor in the traces pipeline: it would hold acknowledged
    # spans in memory ahead of the disk queue (see the test below).
    # transform/redaction: span names, status messages and event names (issue 13);
    # redaction also in metrics: resource attributes and labels.
    assert pipelines["traces"]["processors"] == [
        "memory_limiter", "redaction", "transform/redaction",
    ]
    assert pipelines["metrics"]["processors"] == ["memory_limiter", "redaction", "batch"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert set(pipelines["traces"]["exporters"]) == {"otlp_grpc/jaeger", "span_metrics", "debug"}
    assert set(pipelines["metrics"]["receivers"]) == {"otlp", "span_metrics"}
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    # Python logging (configure(logs=True)) and evaluation events are OTLP logs:
    # limited and redacted too, kept in VictoriaLogs (issue 15, part 3).
    assert pipelines["logs"] == {"receivers": ["otlp"],
                                 "processors": ["memory_limiter", "redaction"],
                                 "exporters": ["otlp_http/victorialogs"]}


def test_logs_go_to_victorialogs_from_a_persistent_queue(config: Any) -> None:
    exporter = config["exporters"]["otlp_http/victorialogs"]
    # The exporter appends /v1/logs: VictoriaLogs' /insert/opentelemetry/v1/logs.
    assert env_refs(exporter["endpoint"]) == [
        ("VICTORIALOGS_OTLP_ENDPOINT", "http://127.0.0.1:9428/insert/opentelemetry")
    ]
    assert exporter["headers"] == {"VL-Stream-Fields": "service.name"}
    assert exporter["retry_on_failure"]["enabled"] is True
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    assert queue["storage"] == config["exporters"]["otlp_grpc/jaeger"]["sending_queue"]["storage"]
    assert not {"batch", "groupbytrace"} & set(config["service"]["pipelines"]["logs"]["processors"])


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


def test_the_jaeger_exporter_batches_after_its_disk_queue(config: Any) -> None:
    # Acknowledged means on disk (issue 13, item 7): the batching happens in the
    # exporter's queue, which reads from the disk, and no processor of the
    # pipeline buffers spans in memory before it.
    queue = config["exporters"]["otlp_grpc/jaeger"]["sending_queue"]
    assert queue["enabled"] is True and queue["storage"]
    assert queue["batch"]["flush_timeout"]
    buffering = {"batch", "groupbytrace", "tail_sampling"}
    assert not buffering & set(config["service"]["pipelines"]["traces"]["processors"])


JAEGER_MAX_MESSAGE = 4 * 1024 * 1024  # Jaeger's OTLP gRPC receiver (max_recv_msg_size_mib: 4)


def test_every_exporter_bounds_its_batches_in_bytes_under_jaegers_limit(config: Any) -> None:
    # Issue 13, item 12: counted in spans, a batch of spans with captured
    # prompts exceeded 4 MiB and Jaeger refused it. Every exporter that sends
    # batches over the network splits them by serialized size.
    senders = [name for name in config["exporters"] if name.split("/")[0].startswith("otlp")]
    assert senders
    for name in senders:
        batch = config["exporters"][name]["sending_queue"]["batch"]
        assert batch["sizer"] == "bytes", name
        assert 0 < batch["min_size"] <= batch["max_size"] <= JAEGER_MAX_MESSAGE - 512 * 1024, name


def test_span_metrics_dimensions_unit_and_exemplars(config: Any) -> None:
    connector = config["connectors"]["span_metrics"]
    dimensions = {dimension["name"] for dimension in connector["dimensions"]}
    assert {"tenant.id", "gen_ai.request.model", "gen_ai.operation.name"} <= dimensions
    # Rules and dashboards use traces_span_metrics_duration_seconds_*.
    assert connector["histogram"]["unit"] == "s"
    assert connector["exemplars"]["enabled"] is True


def test_span_metrics_series_keep_their_identity_across_restarts(config: Any) -> None:
    # Issue 13, item 9: the connector labels series with collector.instance.id,
    # a random UUID per start unless the collector's resource sets it; a restart
    # then began new series and increase() miscounted.
    resource = config["service"]["telemetry"]["resource"]
    assert env_refs(resource["collector.instance.id"]) == [("OTELCOL_INSTANCE_ID", "otelcol")]
    connector = config["connectors"]["span_metrics"]
    assert "collector.instance.id" not in {d["name"] for d in connector.get("dimensions", [])}


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


def _key_patterns(config: Any) -> list[re.Pattern[str]]:
    # The collector matches key patterns unanchored (Go's MatchString), i.e. re.search.
    return [re.compile(p) for p in config["processors"]["redaction"]["blocked_key_patterns"]]


def test_redaction_keeps_every_key_and_masks_secret_named_keys(config: Any) -> None:
    redaction = config["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True
    key_patterns = _key_patterns(config)
    for key in ("http.request.header.authorization", "db.password", "openai.api_key"):
        assert any(p.search(key) for p in key_patterns), key
    for key in ("gen_ai.usage.input_tokens", "gen_ai.input.messages", "tenant.id"):
        assert not any(p.search(key) for p in key_patterns), key


SECRET_KEYS = [
    "DB_PASSWORD", "user.passwd", "http.request.header.Authorization", "X-Api-Key", "apikey",
    "openai.api.key", "API-KEY", "client_secret", "aws.SecretAccessKey", "session.cookie",
    "Set-Cookie", "PassWord",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_redaction_masks_secret_named_keys_in_any_case_and_spelling(
    config: Any, key: str
) -> None:
    assert any(p.search(key) for p in _key_patterns(config)), key


def _sdk_attribute_keys() -> set[str]:
    """Every dotted name otel_ml.semconv defines (span attributes, and metric names too)."""
    return {
        value for name, value in vars(semconv).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", value)
    }


def test_no_sdk_attribute_name_looks_secret(config: Any) -> None:
    # The key pattern masks whole values: an SDK attribute caught by it would
    # lose its value in Jaeger (e.g. a token count masked as ****).
    caught = {k for k in _sdk_attribute_keys() if any(p.search(k) for p in _key_patterns(config))}
    assert not caught


# Values an application, a provider or a user supplies: always scanned, never ignored.
SCANNED_KEYS = {
    semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_RETRIEVAL_QUERY_TEXT, semconv.GEN_AI_RETRIEVAL_DOCUMENTS,
    semconv.GEN_AI_EVALUATION_EXPLANATION, semconv.GEN_AI_EVALUATION_SCORE_LABEL,
    semconv.TENANT_ID, semconv.GEN_AI_REQUEST_MODEL, semconv.GEN_AI_RESPONSE_MODEL,
    semconv.GEN_AI_RESPONSE_ID, semconv.GEN_AI_DATA_SOURCE_ID, semconv.SERVER_ADDRESS,
    semconv.ERROR_TYPE, semconv.RAG_FEEDBACK_KIND, semconv.RAG_FEEDBACK_TRACE_ID,
    semconv.ML_MODEL, semconv.ML_PREDICTION, semconv.HTTP_ROUTE,
}


def test_ignored_keys_are_sdk_computed_attributes_only(config: Any) -> None:
    ignored = set(config["processors"]["redaction"].get("ignored_keys") or [])
    assert ignored, "the SDK's own numeric/enum attributes skip the regexes (collector CPU)"
    assert ignored <= _sdk_attribute_keys(), ignored - _sdk_attribute_keys()
    assert not ignored & SCANNED_KEYS
    assert not [k for k in ignored if any(p.search(k) for p in _key_patterns(config))]
    assert not config["processors"]["redaction"].get("ignored_key_patterns")


# --- redaction in the real collector (Go's regexp, not Python's re) -------------------------

REDACTION_ONLY = """\
receivers: {{otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{port}}}}}}}}}
processors: {{redaction: {redaction}}}
exporters: {{debug: {{verbosity: detailed}}}}
service:
  pipelines: {{traces: {{receivers: [otlp], processors: [redaction], exporters: [debug]}}}}
  telemetry: {{metrics: {{level: none}}}}
"""


def _attr(key: str, value: str | int) -> dict[str, Any]:
    typed = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
    return {"key": key, "value": typed}


def _through_collector(
    otelcol_bin: Path, tmp_path: Path, config: Any, attributes: list[dict[str, Any]]
) -> str:
    """What the debug exporter prints for one span sent through otelcol.yaml's redaction."""
    port = free_ports(1)[0]
    cfg = tmp_path / "redaction.yaml"
    redaction = json.dumps(config["processors"]["redaction"])
    cfg.write_text(REDACTION_ONLY.format(port=port, redaction=redaction), encoding="utf-8")
    log = tmp_path / "collector.log"
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "chat gpt-4o-mini", "kind": 3, "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000", "attributes": attributes}]}]}]}
    with log.open("wb") as out:
        process = subprocess.Popen([otelcol_bin, f"--config={cfg}"], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    response = httpx.post(f"http://127.0.0.1:{port}/v1/traces", json=body)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            assert response.status_code == 200, response.text
            while "Span #0" not in log.read_text() or "Attributes:" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            time.sleep(0.3)  # the rest of the span's lines
        finally:
            process.terminate()
            process.wait(timeout=20)
    return log.read_text()


API_KEY = "sk-proj-AbCdEfGhIjKlMnOpQr"


def test_the_collector_masks_secrets_and_trusts_only_ignored_keys(
    otelcol_bin: Path, tmp_path: Path, config: Any
) -> None:
    printed = _through_collector(otelcol_bin, tmp_path, config, [
        _attr("DB_Password", "hunter2-correct-horse"),
        _attr("http.request.header.Authorization", "Basic dXNlcjpwYXNz"),
        _attr(semconv.GEN_AI_INPUT_MESSAGES, f"mail jane.roe@example.com, key {API_KEY}"),
        _attr(semconv.TENANT_ID, "ops@example.com"),
        _attr(semconv.GEN_AI_REQUEST_MODEL, "gpt-4o-mini"),
        _attr(semconv.GEN_AI_USAGE_INPUT_TOKENS, 812),
        _attr(semconv.GEN_AI_OPERATION_NAME, "chat"),
    ])
    for secret in ("hunter2", "dXNlcjpwYXNz", "jane.roe", "AbCdEfGhIjKlMnOpQr", "ops@"):
        assert secret not in printed
    assert "-> DB_Password: Str(****)" in printed
    assert "-> http.request.header.Authorization: Str(****)" in printed
    assert f"-> {semconv.GEN_AI_INPUT_MESSAGES}: Str(mail ****, key ****)" in printed
    assert f"-> {semconv.TENANT_ID}: Str(****)" in printed
    # Untouched: an ordinary value, and the SDK's own attributes, which skip the checks.
    assert f"-> {semconv.GEN_AI_REQUEST_MODEL}: Str(gpt-4o-mini)" in printed
    assert f"-> {semconv.GEN_AI_USAGE_INPUT_TOKENS}: Int(812)" in printed
    assert f"-> {semconv.GEN_AI_OPERATION_NAME}: Str(chat)" in printed
    assert "-> redaction.masked.count: Int(4)" in printed
    assert "-> redaction.ignored.count: Int(2)" in printed
