"""docker-compose.yml: structure, and agreement with the configs it mounts.

No Docker engine runs here, so the compose file is checked as data: every
mounted file exists, every port and endpoint matches the collector, Jaeger,
Prometheus and Grafana configs, nothing listens beyond 127.0.0.1, and every
image is pinned to the version the native tests run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfg_support import (
    COLLECTOR_PORTS,
    CONFIG,
    PROMETHEUS_DIR,
    REPO,
    env_default,
    load_yaml,
    port_of,
)

from otel_ml.cli.stack.components import (
    VICTORIALOGS_OTLP_ENDPOINT_ENV,
    VICTORIALOGS_RETENTION,
    VICTORIAMETRICS_RETENTION,
    victorialogs_otlp_endpoint,
)

COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose: dict[str, Any] = load_yaml(COMPOSE)
    return dict(compose["services"])


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = [volume.split(":") for volume in service.get("volumes", [])]
    return [(m[0], m[1]) for m in mounts if m[0].startswith(".")]


def _mounted(service: dict[str, Any], target: str) -> Path:
    (source,) = [s for s, t in _bind_mounts(service) if t == target]
    return REPO / source


def _published(service: dict[str, Any]) -> dict[int, str]:
    """container port -> host binding address."""
    published: dict[int, str] = {}
    for entry in service.get("ports", []):
        host, _host_port, container = str(entry).rsplit(":", 2)
        published[int(container)] = host
    return published


def _flag(service: dict[str, Any], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in service["command"] if a.startswith(f"{name}=")]
    return str(value)


def test_every_bind_mount_source_exists(services: dict[str, Any]) -> None:
    mounts = [(name, m) for name, s in services.items() for m in _bind_mounts(s)]
    assert mounts
    for name, (source, _) in mounts:
        assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_every_published_port_is_bound_to_localhost(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for entry in service.get("ports", []):
            assert str(entry).startswith("127.0.0.1:"), f"{name}: {entry}"
        assert service.get("network_mode") != "host", name


def _pinned_version(image: str) -> str:
    _, _, tag = image.partition(":")
    assert tag and tag != "latest" and re.match(r"v?\d+\.\d+\.\d+", tag), f"unpinned: {image}"
    return tag


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for service in services.values():
        if "build" not in service:
            _pinned_version(service["image"])


def test_collector_and_jaeger_images_match_the_tested_builds(services: dict[str, Any]) -> None:
    builder = load_yaml(CONFIG / "builder.yaml")
    collector_image = services["otelcol"]["image"]
    assert collector_image.startswith("otel/opentelemetry-collector-contrib:")
    assert _pinned_version(collector_image) == builder["dist"]["version"]
    backends = (REPO / "scripts" / "backends.sh").read_text("utf-8")
    (jaeger_version,) = re.findall(r"^JAEGER_VERSION=(\S+)", backends, re.MULTILINE)
    assert services["jaeger"]["image"] == f"jaegertracing/jaeger:{jaeger_version}"
    assert _pinned_version(services["prometheus"]["image"]).startswith("v3.")


def test_grafana_admin_password_comes_from_env_without_default(services: dict[str, Any]) -> None:
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message}: compose refuses to start when it is unset; ${VAR:-x} would default.
    assert re.fullmatch(r"\$\{GF_SECURITY_ADMIN_PASSWORD:\?[^}]+\}", password), password


def test_collector_publishes_exactly_its_configured_ports(services: dict[str, Any]) -> None:
    collector = services["otelcol"]
    assert collector["environment"]["OTELCOL_HOST"] == "0.0.0.0"
    assert set(_published(collector)) == set(COLLECTOR_PORTS.values())
    assert _mounted(collector, "/etc/otelcol/otelcol.yaml") == CONFIG / "otelcol.yaml"
    assert collector["command"] == ["--config=/etc/otelcol/otelcol.yaml"]


def test_collector_exports_to_jaegers_otlp_port(services: dict[str, Any]) -> None:
    jaeger = load_yaml(CONFIG / "jaeger.yaml")
    grpc = jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    endpoint = services["otelcol"]["environment"]["JAEGER_OTLP_ENDPOINT"]
    assert endpoint == f"jaeger:{port_of(env_default(grpc))}"
    assert _mounted(services["jaeger"], "/etc/jaeger/config.yaml") == CONFIG / "jaeger.yaml"


def test_jaeger_healthcheck_and_ports_match_its_config(services: dict[str, Any]) -> None:
    jaeger_config = load_yaml(CONFIG / "jaeger.yaml")
    extensions = jaeger_config["extensions"]
    health_port = port_of(env_default(extensions["healthcheckv2"]["http"]["endpoint"]))
    assert f"127.0.0.1:{health_port}/status" in " ".join(services["jaeger"]["healthcheck"]["test"])
    query_port = port_of(env_default(extensions["jaeger_query"]["http"]["endpoint"]))
    assert query_port in _published(services["jaeger"])


def test_persistent_queue_and_prometheus_data_are_named_volumes(services: dict[str, Any]) -> None:
    compose = load_yaml(COMPOSE)
    collector = services["otelcol"]
    storage_dir = collector["environment"]["OTELCOL_STORAGE_DIR"]
    otelcol = load_yaml(CONFIG / "otelcol.yaml")
    assert storage_dir == env_default(otelcol["extensions"]["file_storage/queue"]["directory"])
    assert f"otelcol-queue:{storage_dir}" in collector["volumes"]
    prometheus = services["prometheus"]
    tsdb = _flag(prometheus, "--storage.tsdb.path")
    assert f"prometheus-data:{tsdb}" in prometheus["volumes"]
    assert {"otelcol-queue", "prometheus-data"} <= set(compose["volumes"])


def test_prometheus_mounts_config_rules_and_compose_targets(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    config_path = _flag(prometheus, "--config.file")
    assert _mounted(prometheus, config_path) == PROMETHEUS_DIR / "prometheus.yml"
    config_dir = config_path.rsplit("/", 1)[0]
    assert _mounted(prometheus, f"{config_dir}/rules") == PROMETHEUS_DIR / "rules"
    assert _mounted(prometheus, f"{config_dir}/targets") == PROMETHEUS_DIR / "compose-targets"
    assert "--enable-feature=exemplar-storage" in prometheus["command"]


def _targets(directory: Path, name: str) -> list[str]:
    groups = load_yaml(directory / name)
    return [target for group in groups for target in group["targets"]]


@pytest.mark.parametrize(
    ("target_file", "service", "port"),
    [
        ("otelcol-exporter.yml", "otelcol", COLLECTOR_PORTS["OTELCOL_PROMETHEUS_PORT"]),
        ("otelcol.yml", "otelcol", COLLECTOR_PORTS["OTELCOL_TELEMETRY_PORT"]),
        ("alertmanager.yml", "alertmanager", 9093),
    ],
)
def test_scrape_and_alerting_targets_agree_in_both_modes(
    services: dict[str, Any], target_file: str, service: str, port: int
) -> None:
    assert _targets(PROMETHEUS_DIR / "targets", target_file) == [f"127.0.0.1:{port}"]
    assert _targets(PROMETHEUS_DIR / "compose-targets", target_file) == [f"{service}:{port}"]
    assert port in _published(services[service])


def test_alertmanager_listens_where_prometheus_sends(services: dict[str, Any]) -> None:
    alertmanager = services["alertmanager"]
    assert port_of(_flag(alertmanager, "--web.listen-address")) == 9093
    config_path = _flag(alertmanager, "--config.file")
    assert _mounted(alertmanager, config_path) == CONFIG / "alertmanager" / "alertmanager.yml"


def test_grafana_datasources_point_at_compose_services(services: dict[str, Any]) -> None:
    datasources = load_yaml(CONFIG / "grafana" / "provisioning" / "datasources" / "datasources.yml")
    urls = {d["uid"]: d["url"] for d in datasources["datasources"]}
    assert urls["prometheus"] == "http://prometheus:9090"
    jaeger_query = load_yaml(CONFIG / "jaeger.yaml")["extensions"]["jaeger_query"]
    assert urls["jaeger"] == f"http://jaeger:{port_of(env_default(jaeger_query['http']['endpoint']))}"
    assert _mounted(services["grafana"], "/etc/grafana/provisioning") == CONFIG / "grafana" / (
        "provisioning"
    )


def _demo_port(service: dict[str, Any]) -> int:
    command = service["command"]
    return int(command[command.index("--port") + 1])


def test_demo_services_talk_to_each_other_and_the_collector(services: dict[str, Any]) -> None:
    # OTLP/HTTP, the SDK's default protocol.
    http_port = COLLECTOR_PORTS["OTELCOL_OTLP_HTTP_PORT"]
    for name in ("api", "vectordb", "llm"):
        service = services[name]
        assert service["command"][:3] == ["python", "-m", f"demo_rag.{name}"]
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
            f"http://otelcol:{http_port}"
        )
        healthcheck = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{_demo_port(service)}/healthz" in healthcheck
    api = services["api"]["environment"]
    assert api["VECTORDB_URL"] == f"http://vectordb:{_demo_port(services['vectordb'])}"
    assert api["LLM_URL"] == f"http://llm:{_demo_port(services['llm'])}"


def test_depends_on_waits_only_for_checks_that_exist(services: dict[str, Any]) -> None:
    waits = 0
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if spec["condition"] == "service_healthy":
                waits += 1
                assert "healthcheck" in services[dependency], f"{name} -> {dependency}"
    assert waits >= 4
    assert services["api"]["depends_on"]["vectordb"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["llm"]["condition"] == "service_healthy"


def test_demo_image_builds_from_the_dockerfile(services: dict[str, Any]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text("utf-8")
    base = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert len(base) == 1
    _pinned_version(base[0])
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (REPO / path).exists(), f"Dockerfile copies missing {path}"
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.MULTILINE), "runs as root"
    for name in ("api", "vectordb", "llm"):
        assert services[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}


def test_chroma_is_the_version_the_tests_run_and_exports_to_the_collector(
    services: dict[str, Any],
) -> None:
    from importlib.metadata import version

    chroma = services["chroma"]
    installed = version("chromadb")
    assert chroma["image"] == f"chromadb/chroma:{installed}"
    demo = (REPO / "demo_rag" / "pyproject.toml").read_text("utf-8")
    (pin,) = re.findall(r'"chromadb>=([\d.]+),<[\d.]+"', demo)
    assert pin == installed, "docker-compose.yml, the demo's pin and the venv agree"
    env = chroma["environment"]
    assert env["CHROMA_OPEN_TELEMETRY__ENDPOINT"] == (
        f"http://otelcol:{COLLECTOR_PORTS['OTELCOL_OTLP_GRPC_PORT']}"
    )
    assert env["ANONYMIZED_TELEMETRY"] == "False"
    assert chroma["volumes"] == ["chroma-data:/data"]  # the image's persist_path
    assert "ports" not in chroma  # only the retrieval service talks to it
    vectordb = services["vectordb"]
    assert vectordb["environment"]["CHROMA_URL"] == "http://chroma:8000"
    assert vectordb["depends_on"]["chroma"]["condition"] == "service_healthy"
    assert "8000" in " ".join(chroma["healthcheck"]["test"])


def test_scale_profile_runs_the_tier_on_the_collectors_image_and_configs(
    services: dict[str, Any],
) -> None:
    tier = {name: s for name, s in services.items() if "scale" in s.get("profiles", [])}
    members = {"gateway-0", "gateway-1", "sampler-0", "sampler-1"}
    assert members <= set(tier)
    # The default `docker compose up` starts none of them.
    assert all("profiles" not in services[n] for n in ("otelcol", "jaeger", "prometheus"))
    for name in members:
        member = tier[name]
        role = name.split("-")[0]
        assert member["image"] == services["otelcol"]["image"]
        assert member["command"] == [
            "--config=/etc/otelcol/otelcol.yaml", f"--config=/etc/otelcol/scale/{role}.yaml"]
        assert _mounted(member, "/etc/otelcol/otelcol.yaml") == CONFIG / "otelcol.yaml"
        assert _mounted(member, "/etc/otelcol/scale") == CONFIG / "scale"
        env = member["environment"]
        assert env["OTELCOL_INSTANCE_ID"] == name
        queue = env["OTELCOL_STORAGE_DIR"]
        (volume,) = [v for v in member["volumes"] if v.endswith(f":{queue}")]
        assert volume.split(":")[0] == f"{name}-queue"
        if role == "gateway":
            assert [env[f"OTEL_ML_SAMPLER_{i}_ENDPOINT"] for i in range(2)] == [
                "http://sampler-0:4318", "http://sampler-1:4318"]
        else:
            assert env["JAEGER_OTLP_ENDPOINT"] == "jaeger:24317"
            assert "ports" not in member  # only the gateways take traffic
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), "two services publish one host port"


def test_jaeger_keeps_its_traces_in_a_named_volume(services: dict[str, Any]) -> None:
    jaeger = services["jaeger"]
    data_dir = jaeger["environment"]["JAEGER_DATA_DIR"]
    backends = load_yaml(CONFIG / "jaeger.yaml")["extensions"]["jaeger_storage"]["backends"]
    (badger,) = [b["badger"] for b in backends.values() if "badger" in b]
    for folder in badger["directories"].values():
        assert env_default(folder, {"JAEGER_DATA_DIR": data_dir}).startswith(f"{data_dir}/")
    assert f"jaeger-data:{data_dir}" in jaeger["volumes"]
    # The image runs as uid 10001; a new named volume is root's until chowned.
    init = services["jaeger-storage-init"]
    assert init["volumes"] == [f"jaeger-data:{data_dir}"]
    assert init["command"] == ["chown", "-R", "10001:10001", data_dir]
    assert jaeger["depends_on"]["jaeger-storage-init"] == {
        "condition": "service_completed_successfully"
    }
    assert "jaeger-data" in load_yaml(COMPOSE)["volumes"]


def test_victoriametrics_is_the_built_release_and_prometheus_writes_to_it(
    services: dict[str, Any],
) -> None:
    backends = (REPO / "scripts" / "backends.sh").read_text("utf-8")
    (version,) = re.findall(r"^VICTORIAMETRICS_VERSION=(\S+)", backends, re.MULTILINE)
    vm = services["victoriametrics"]
    assert vm["image"] == f"victoriametrics/victoria-metrics:v{version}"
    # In Prometheus's network namespace, prometheus.yml's 127.0.0.1 URL reaches it
    # under compose as in the native stack.
    assert vm["network_mode"] == "service:prometheus"
    port = port_of(_flag(vm, "-httpListenAddr"))
    (remote_write,) = load_yaml(PROMETHEUS_DIR / "prometheus.yml")["remote_write"]
    assert remote_write["url"] == f"http://127.0.0.1:{port}/api/v1/write"
    assert _published(services["prometheus"])[port] == "127.0.0.1"
    assert "ports" not in vm  # a shared namespace publishes through its owner
    assert f"victoriametrics-data:{_flag(vm, '-storageDataPath')}" in vm["volumes"]
    assert _flag(vm, "-retentionPeriod") == VICTORIAMETRICS_RETENTION  # as `otel-ml stack up`
    assert f"127.0.0.1:{port}/health" in " ".join(vm["healthcheck"]["test"])
    assert "victoriametrics-data" in load_yaml(COMPOSE)["volumes"]


def test_victorialogs_is_the_built_release_and_every_collector_writes_to_it(
    services: dict[str, Any],
) -> None:
    backends = (REPO / "scripts" / "backends.sh").read_text("utf-8")
    (version,) = re.findall(r"^VICTORIALOGS_VERSION=(\S+)", backends, re.MULTILINE)
    vl = services["victorialogs"]
    assert vl["image"] == f"victoriametrics/victoria-logs:v{version}"
    port = port_of(_flag(vl, "-httpListenAddr"))
    assert _published(vl)[port] == "127.0.0.1"
    assert f"victorialogs-data:{_flag(vl, '-storageDataPath')}" in vl["volumes"]
    assert _flag(vl, "-retentionPeriod") == VICTORIALOGS_RETENTION  # as `otel-ml stack up`
    assert f"127.0.0.1:{port}/health" in " ".join(vl["healthcheck"]["test"])
    assert "victorialogs-data" in load_yaml(COMPOSE)["volumes"]
    # Every collector keeps otelcol.yaml's logs pipeline, scale tier included.
    endpoint = victorialogs_otlp_endpoint(port, host="victorialogs")
    for name in ("otelcol", "gateway-0", "gateway-1", "sampler-0", "sampler-1"):
        assert services[name]["environment"][VICTORIALOGS_OTLP_ENDPOINT_ENV] == endpoint, name
    # The demo services send their Python logging through OTLP.
    for name in ("api", "vectordb", "llm"):
        assert services[name]["environment"]["OTEL_ML_LOGS"] == "true", name
    # Grafana's VictoriaLogs datasource is a plugin, installed at start.
    grafana = services["grafana"]["environment"]
    assert "victoriametrics-logs-datasource" in grafana["GF_PLUGINS_PREINSTALL"].split(",")
