"""Session fixtures for the e2e suite: the real backends, the demo against them, traffic.

One stack (collector, Jaeger, Prometheus, Alertmanager) runs for the whole
session on free ports, so a developer's own `otel-ml stack up` can keep
running. The three demo services export to its collector with a 1 s metric
interval and a 0.2 s span batch delay; every fixture that starts something
stops it, and the stack fixture checks that no backend outlived `stop()`.

A missing backend makes the fixtures fail (never skip): the suite's point is
to run the real programs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import yaml
from e2e_clients import Alertmanager, Jaeger, Prometheus, WebhookReceiver
from e2e_demo import Traffic, emit

from demo_rag.launcher import Services, launch
from otel_ml.cli.stack import Binaries, Ports, Stack, StackError, find_config_dir

WEBHOOK = ("127.0.0.1", 5001, "/alerts")  # collector-config/alertmanager/alertmanager.yml
DEMO_ENV = {
    # Short export intervals so a test sees its data in seconds (the defaults
    # are 60 s for metrics and 5 s for spans).
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    # The simulated LLM fails (429/5xx) and stalls at random by default: the
    # suite counts exact totals, so every answer must succeed, promptly.
    "LLM_SIM_ERROR_RATE": "0",
    "LLM_SIM_SLOW_RATE": "0",
    "LLM_SIM_TBT_MS": "5",
    # Python logging through OTLP as well (configure(logs=...)): the collector
    # keeps it in VictoriaLogs (tests/e2e/test_e2e_logs.py).
    "OTEL_ML_LOGS": "true",
}
TENANTS = ("acme", "globex", "initech")
# Initial traffic: two tenants, streamed and JSON answers.
BURST = [("acme", True), ("globex", False), ("acme", False), ("globex", True),
         ("acme", True), ("globex", False)]


def _alive(pid: int) -> bool:
    # stop() reaps its children, so a pid that still answers is a real survivor.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        config_dir = find_config_dir()
        running = Stack(
            tmp_path_factory.mktemp("stack"),
            ports=Ports.free(),
            binaries=Binaries.resolve(config_dir=config_dir),
            config_dir=config_dir,
        )
        running.start()
    except StackError as exc:
        pytest.fail(f"cannot start the backend stack: {exc}", pytrace=False)
    pids = running.pids
    try:
        yield running
    finally:
        running.stop()
        survivors = {name: pid for name, pid in pids.items() if _alive(pid)}
        assert not survivors, f"backends still running after stop(): {survivors}"


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0) as client:
        yield client


@pytest.fixture(scope="session")
def jaeger(stack: Stack, http: httpx.Client) -> Jaeger:
    return Jaeger(stack.urls.jaeger, http)


@pytest.fixture(scope="session")
def prometheus(stack: Stack, http: httpx.Client) -> Prometheus:
    return Prometheus(stack.urls.prometheus, http)


@pytest.fixture(scope="session")
def alertmanager(stack: Stack, http: httpx.Client) -> Alertmanager:
    return Alertmanager(stack.urls.alertmanager, http)


@pytest.fixture(scope="session")
def services(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    # The demo's vector database is the stack's Chroma server, which exports its
    # own traces to the stack's collector (tests/e2e/test_e2e_chroma.py).
    if "chroma" not in stack.pids:
        pytest.fail("the stack runs no Chroma server: install chromadb into this venv "
                    "(pip install -e ./demo_rag) or set CHROMA_BIN", pytrace=False)
    with launch(
        otlp_endpoint=stack.urls.otlp_http,
        tenants=TENANTS,
        env=DEMO_ENV,
        log_dir=tmp_path_factory.mktemp("demo-logs"),
        chroma_url=stack.urls.chroma,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def traffic(services: Services, http: httpx.Client) -> Traffic:
    """The demo after a first burst of answers for two tenants, and some feedback."""
    sent = Traffic(http, services)
    answers = sent.ask_many(BURST)
    acme = [a for a in answers if a.tenant == "acme"]
    globex = [a for a in answers if a.tenant == "globex"]
    sent.feedback("acme", acme[0].trace_id, "thumbs_down")
    sent.feedback("acme", acme[1].trace_id, "thumbs_up")
    sent.feedback("globex", globex[0].trace_id, "copy_to_clipboard")
    sent.feedback("globex", globex[1].trace_id, "thumbs_down")
    return sent


@pytest.fixture(scope="session")
def drift_emitted(stack: Stack) -> dict[str, str]:
    """A drift monitor's gauges and counters, exported once through the collector."""
    return emit("drift", stack.urls.otlp_http)


@pytest.fixture
def webhook(stack: Stack) -> Iterator[WebhookReceiver]:
    """The receiver alertmanager.yml names, on its fixed port.

    Function-scoped: each alerting test holds port 5001 only while it runs,
    so they run in any order.
    """
    host, port, path = WEBHOOK
    config = yaml.safe_load((stack.config_dir / "alertmanager" / "alertmanager.yml").read_text())
    (receiver_config,) = config["receivers"]
    (hook,) = receiver_config["webhook_configs"]
    assert hook["url"] == f"http://{host}:{port}{path}", "alertmanager.yml's webhook moved"
    try:
        receiver = WebhookReceiver(host, port, path)
    except OSError as exc:
        pytest.fail(f"cannot listen on {host}:{port} for Alertmanager's webhook: {exc}")
    with receiver:
        yield receiver
