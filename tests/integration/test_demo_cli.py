"""``otel-ml demo`` end to end, Ctrl-C, and the llm service forwarding to a real endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import SIM_ENV
from demo_files import CLIENT, SERVER, by_trace, load_spans

from demo_rag.api import API_KEY_HEADER
from demo_rag.launcher import LaunchError, launch
from otel_ml import semconv

REPO = Path(__file__).resolve().parents[2]
# Fast and error-free: these tests are about the command and the processes.
FAST = {**SIM_ENV, "LLM_SIM_ERROR_RATE": "0", "LLM_SIM_TTFT_MS": "20", "LLM_SIM_TBT_MS": "2"}

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find orphans")


def _demo(out: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **FAST,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "otel_ml.cli", "demo", "--out", str(out), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # As typed in a terminal: SIGINT handled (a background shell may have ignored it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _services_of(driver_pid: int) -> list[int]:
    """Live processes started by that driver (the launcher marks them in their env)."""
    marker = f"DEMO_RAG_PARENT_PID={driver_pid}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in environ and state != "Z":
            found.append(int(proc.name))
    return found


def test_demo_command_runs_the_workload_and_prints_the_report(tmp_path: Path) -> None:
    process = _demo(tmp_path, "--requests", "6", "--concurrency", "3", "--tenants", "red,blue")
    output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert "Representative trace" in output and "TTFT" in output
    table = output[output.index("Per tenant"):]
    rows = {line.split()[0]: line.split() for line in table.splitlines()[3:6]}
    assert rows["red"][1] == "3" and rows["blue"][1] == "3"  # requests per tenant
    assert "span totals match the metrics" in output
    assert _services_of(process.pid) == []
    # Each service's traces and metrics, and the api's evaluation events (logs).
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.jsonl")) == (
        ["logs"] + ["metrics"] * 3 + ["traces"] * 3
    )


def test_ctrl_c_stops_every_service_and_keeps_their_telemetry(tmp_path: Path) -> None:
    process = _demo(tmp_path, "--requests", "500", "--concurrency", "2")
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "services up" in line, line
    services = _services_of(process.pid)
    assert len(services) == 3
    time.sleep(3.0)  # some requests answered and some in flight, also on a loaded machine
    os.kill(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted" in output
    assert _services_of(process.pid) == []
    spans = load_spans(tmp_path)
    assert {s.service for s in spans} == {"rag-api", "rag-vectordb", "rag-llm"}
    assert len(list(tmp_path.glob("metrics-*.jsonl"))) == 3  # flushed at shutdown


def test_llm_service_forwards_to_an_openai_compatible_endpoint(tmp_path: Path) -> None:
    upstream_dir, proxy_dir = tmp_path / "upstream", tmp_path / "proxy"
    with launch(out_dir=upstream_dir, env=FAST) as upstream:
        env = {**FAST, "LLM_BASE_URL": f"{upstream.llm}/v1", "LLM_API_KEY": "sk-test"}
        with launch(out_dir=proxy_dir, env=env, tenants=("acme",)) as demo:
            headers = {API_KEY_HEADER: demo.api_keys["acme"]}
            answers = [
                httpx.post(f"{demo.api}/ask", headers=headers, timeout=30,
                           json={"question": "How much does Edge CDN cost?", "stream": stream})
                for stream in (False, True)
            ]
    assert [a.status_code for a in answers] == [200, 200]
    upstream_spans = by_trace(load_spans(upstream_dir))
    proxy_spans = by_trace(load_spans(proxy_dir))
    for answer in answers:
        trace_id = answer.headers["X-Trace-Id"]
        proxy_llm = next(s for s in proxy_spans[trace_id] if s.service == "rag-llm"
                         and s.kind == SERVER)
        forward = next(s for s in proxy_spans[trace_id] if s.parent == proxy_llm.span_id
                       and s.kind == CLIENT)
        real = next(s for s in upstream_spans[trace_id] if s.service == "rag-llm")
        assert real.parent == forward.span_id  # the same trace continues upstream
        assert real.attrs[semconv.TENANT_ID] == "acme"
        for key in (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS):
            assert proxy_llm.attrs[key] == real.attrs[key]


def test_a_service_that_cannot_start_is_reported_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    # Services other fixtures of this session started (e.g. the e2e suite's)
    # are this process's children too: only new ones would be orphans.
    already_running = set(_services_of(os.getpid()))
    with (
        pytest.raises(LaunchError, match="DEMO_RAG_GROUNDEDNESS") as failure,
        launch(out_dir=tmp_path, env={"DEMO_RAG_GROUNDEDNESS": "bogus"}),
    ):
        pytest.fail("the api must not come up")
    assert "api exited" in str(failure.value)
    assert set(_services_of(os.getpid())) - already_running == set()
