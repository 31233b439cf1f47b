"""collector-config/scale/: the gateway and sampler configs, and the runner's scale topology.

The tier files are merged on top of otelcol.yaml (the collector's repeated
``--config``), so they are validated that way, with the real binary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfg_support import CONFIG, assert_ok, env_default, load_yaml, run

from otel_ml import semconv
from otel_ml.cli.stack.ports import Ports
from otel_ml.cli.stack.runner import Stack
from otel_ml.cli.stack.scale import (
    SAMPLER_ENDPOINT_ENV,
    SAMPLERS,
    Topology,
    write_prometheus_targets,
)

SCALE = CONFIG / "scale"
GATEWAY, SAMPLER = SCALE / "gateway.yaml", SCALE / "sampler.yaml"


@pytest.fixture(scope="module")
def gateway() -> Any:
    return load_yaml(GATEWAY)


@pytest.fixture(scope="module")
def sampler() -> Any:
    return load_yaml(SAMPLER)


def _validate(otelcol_bin: Path, *files: Path, env: dict[str, str] | None = None) -> Any:
    return run([otelcol_bin, "validate", *(f"--config=file:{f}" for f in files)], env=env)


@pytest.mark.parametrize("tier", [GATEWAY, SAMPLER], ids=["gateway", "sampler"])
def test_each_tier_validates_on_top_of_otelcol_yaml(otelcol_bin: Path, tier: Path) -> None:
    assert_ok(_validate(otelcol_bin, CONFIG / "otelcol.yaml", tier, env={"PATH": "/usr/bin:/bin"}))


def test_the_sampler_validates_with_a_debug_tenant_list_from_the_environment(
    otelcol_bin: Path,
) -> None:
    env = {"PATH": "/usr/bin:/bin", "OTEL_ML_SAMPLE_DEBUG_TENANTS": "[acme, t-42]",
           "OTEL_ML_SAMPLE_COST_USD": "0.5", "OTEL_ML_SAMPLE_PERCENT": "25"}
    assert_ok(_validate(otelcol_bin, CONFIG / "otelcol.yaml", SAMPLER, env=env))


def test_the_gateway_reuses_otelcol_yaml_rather_than_forking_it(
    otelcol_bin: Path, gateway: Any
) -> None:
    # Alone it lacks the receiver and the redaction processors it names: they
    # come from otelcol.yaml only, so there is one copy of the redaction rules.
    for name in ("redaction", "transform/redaction", "memory_limiter"):
        assert name not in gateway.get("processors", {})
    assert "receivers" not in gateway
    result = _validate(otelcol_bin, GATEWAY)
    assert result.returncode != 0
    assert "no receiver configuration" in result.stderr


def test_gateway_redacts_before_anything_leaves_it(gateway: Any) -> None:
    traces = gateway["service"]["pipelines"]["traces"]
    assert traces["processors"] == ["memory_limiter", "redaction", "transform/redaction"]
    assert traces["exporters"] == ["forward/samplers"]
    metrics = gateway["service"]["pipelines"]["metrics"]
    assert metrics["receivers"] == ["otlp"]
    assert metrics["processors"][:2] == ["memory_limiter", "redaction"]


def _slice_patterns(gateway: Any) -> list[tuple[str, bool]]:
    """(regex, negated) of each slice pipeline's filter, in sampler order."""
    out = []
    for index in range(SAMPLERS):
        pipeline = gateway["service"]["pipelines"][f"traces/sampler-{index}"]
        assert pipeline["receivers"] == ["forward/samplers"]
        assert pipeline["exporters"] == [f"otlp_http/sampler-{index}"]
        (processor,) = pipeline["processors"]
        (condition,) = gateway["processors"][processor]["traces"]["span"]
        match = re.fullmatch(r'(not )?IsMatch\(trace_id\.string, "(.+)"\)', condition)
        assert match, condition
        out.append((match.group(2), bool(match.group(1))))
    return out


def test_every_trace_id_goes_to_exactly_one_sampler(gateway: Any) -> None:
    slices = _slice_patterns(gateway)
    for digit in "0123456789abcdef":
        trace_id = "4bf92f3577b34da6a3ce929d0e0e473" + digit
        # The filter processor DROPS spans matching its condition.
        kept_by = [i for i, (pattern, negated) in enumerate(slices)
                   if bool(re.search(pattern, trace_id)) == negated]
        assert len(kept_by) == 1, (digit, kept_by)


def test_one_sampler_exporter_per_slice_with_a_disk_queue_retried_forever(gateway: Any) -> None:
    for index in range(SAMPLERS):
        exporter = gateway["exporters"][f"otlp_http/sampler-{index}"]
        var = SAMPLER_ENDPOINT_ENV.format(index=index)
        assert exporter["endpoint"].startswith("${env:" + var + ":-http://127.0.0.1:")
        assert exporter["sending_queue"]["storage"] == "file_storage/queue"
        assert exporter["retry_on_failure"]["max_elapsed_time"] == "0s"
        assert exporter["sending_queue"]["batch"]["max_size"] < 4 * 1024 * 1024


def test_sampler_counts_span_metrics_before_sampling(sampler: Any) -> None:
    pipelines = sampler["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert "tail_sampling" not in pipelines["traces"]["processors"]
    assert pipelines["traces"]["exporters"] == ["span_metrics", "forward/sampling"]
    assert pipelines["traces/sampled"] == {
        "receivers": ["forward/sampling"], "processors": ["tail_sampling"],
        "exporters": ["otlp_grpc/jaeger"],
    }
    assert pipelines["metrics"]["receivers"] == ["span_metrics"]


def test_sampler_policies(sampler: Any) -> None:
    policies = {p["name"]: p for p in sampler["processors"]["tail_sampling"]["policies"]}
    assert list(policies) == ["errors", "slow", "costly", "debug-tenant", "baseline"]
    assert policies["errors"]["status_code"]["status_codes"] == ["ERROR"]
    assert env_default(str(policies["slow"]["latency"]["threshold_ms"])) == "2000"
    (costly,) = policies["costly"]["ottl_condition"]["span"]
    assert f'attributes["{semconv.GEN_AI_USAGE_COST_AMOUNT}"] >' in costly
    assert policies["debug-tenant"]["string_attribute"]["key"] == semconv.TENANT_ID
    assert env_default(str(policies["baseline"]["probabilistic"]["sampling_percentage"])) == "10"


# --- the runner's topology ------------------------------------------------------------------


def test_gateway_0_takes_the_usual_collector_ports_and_no_port_is_shared() -> None:
    ports = Ports()
    topology = Topology.scale(ports)
    assert [m.name for m in topology.members] == [
        "gateway-0", "gateway-1", "sampler-0", "sampler-1"]
    assert topology.gateways[0].otlp_http == "http://127.0.0.1:4318"
    every = [p for m in topology.members for p in m.ports.values()]
    others = [v for k, v in ports.as_dict().items()
              if not k.startswith(("otlp_", "collector_"))]
    assert len(set(every)) == len(every)
    assert not set(every) & set(others)


def test_gateways_know_every_sampler_and_members_keep_stable_ids() -> None:
    topology = Topology.scale(Ports())
    env = topology.environment(topology.gateways[1])
    assert env["OTELCOL_OTLP_GRPC_PORT"] == "4327"
    assert env["OTELCOL_INSTANCE_ID"] == "gateway-1"
    assert [env[SAMPLER_ENDPOINT_ENV.format(index=i)] for i in range(SAMPLERS)] == [
        s.otlp_http for s in topology.samplers]
    assert SAMPLER_ENDPOINT_ENV.format(index=0) not in topology.environment(topology.samplers[0])


def test_samplers_start_first_and_stop_after_the_gateways_before_jaeger() -> None:
    topology = Topology.scale(Ports())
    start = topology.start_order(Stack.START_ORDER)
    assert start.index("sampler-1") < start.index("gateway-0")
    assert start.index("jaeger") < start.index("sampler-0")
    stages = topology.stop_stages(Stack.STOP_ORDER)
    flat = [stage for stage in stages]
    assert flat.index(("gateway-0", "gateway-1")) + 1 == flat.index(("sampler-0", "sampler-1"))
    assert flat.index(("sampler-0", "sampler-1")) < flat.index(("jaeger",))


def test_prometheus_scrapes_every_member(tmp_path: Path) -> None:
    topology = Topology.scale(Ports())
    (tmp_path / "targets").mkdir()
    write_prometheus_targets(tmp_path, topology)
    exporter = load_yaml(tmp_path / "targets" / "otelcol-exporter.yml")
    telemetry = load_yaml(tmp_path / "targets" / "otelcol.yml")
    assert exporter[0]["targets"] == [m.metrics_target for m in topology.members]
    assert telemetry[0]["targets"] == [m.telemetry_target for m in topology.members]


def test_the_gateways_default_sampler_addresses_are_the_native_scale_stacks(gateway: Any) -> None:
    topology = Topology.scale(Ports())
    for index, sampler_member in enumerate(topology.samplers):
        endpoint = gateway["exporters"][f"otlp_http/sampler-{index}"]["endpoint"]
        assert env_default(endpoint) == sampler_member.otlp_http
