"""One real run of the three demo services, shared by the integration tests.

The services run as separate processes on localhost (real HTTP, real W3C
propagation) and write OTLP JSON lines into a temporary folder, the embedded
default. The simulated model is made deterministic and fast: constant TTFT and
TBT (so timings can be checked against them), a fixed seed (so which requests
fail is fixed too), no slow requests.

The fixture sends a small workload, explicit feedback, and two hostile requests
(a spoofed baggage tenant with and without a valid key), then stops the services
so every span and the final metric values are on disk before any test reads them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo_rag import driver
from demo_rag.api import API_KEY_HEADER
from demo_rag.launcher import launch

HERE = Path(__file__).resolve().parent
TENANTS = ("acme", "globex", "initech")
TTFT_S = 0.08
TBT_S = 0.008
SIM_ENV = {
    "LLM_SIM_TTFT_MS": str(TTFT_S * 1000),
    "LLM_SIM_TTFT_SIGMA": "0",
    "LLM_SIM_TBT_MS": str(TBT_S * 1000),
    "LLM_SIM_TBT_SIGMA": "0",
    "LLM_SIM_SLOW_RATE": "0",
    "LLM_SIM_ERROR_RATE": "0.2",
    "LLM_SIM_HALLUCINATION_RATE": "0.3",
    "LLM_SIM_SEED": "11",
}
SPOOFED_TENANT = "mallory"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration needs the services: mark it so.
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class SentFeedback:
    tenant: str
    trace_id: str
    kind: str
    score: float | None
    linked: bool


@dataclass
class DemoRun:
    """What was sent, what came back, and where the telemetry is."""

    out_dir: Path
    outcomes: list[driver.Outcome]
    feedback: list[SentFeedback] = field(default_factory=list)
    spoofed_trace_id: str = ""
    spoofed_status: int = 0
    unauthenticated_status: int = 0
    cross_tenant_feedback_status: int = 0

    @property
    def answered(self) -> list[driver.Outcome]:
        return [o for o in self.outcomes if o.ok]


def _post(services_api: str, path: str, key: str | None, body: dict[str, Any],
          extra: dict[str, str] | None = None) -> httpx.Response:
    headers = {**({API_KEY_HEADER: key} if key else {}), **(extra or {})}
    return httpx.post(f"{services_api}{path}", json=body, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    out_dir = tmp_path_factory.mktemp("demo-telemetry")
    jobs = driver.plan_jobs(15, TENANTS, seed=3)
    with launch(out_dir=out_dir, tenants=TENANTS, env=SIM_ENV) as services:
        summary = asyncio.run(driver.run_workload(services, jobs, concurrency=3, seed=3))
        run = DemoRun(out_dir=out_dir, outcomes=summary.outcomes)
        keys = services.api_keys
        reactions: list[tuple[str, float | None]] = [
            ("thumbs_up", None), ("thumbs_down", None), ("copy_to_clipboard", None),
            ("score", 0.4),
        ]
        for outcome, (kind, score) in zip(run.answered, reactions, strict=False):
            assert outcome.trace_id is not None
            body: dict[str, Any] = {"trace_id": outcome.trace_id}
            body.update({"score": score} if score is not None else {"kind": kind})
            response = _post(services.api, "/feedback", keys[outcome.job.tenant], body)
            assert response.status_code == 202, response.text
            run.feedback.append(SentFeedback(outcome.job.tenant, outcome.trace_id, kind, score,
                                             bool(response.json()["linked"])))
        victim = run.answered[0]
        other = next(t for t in TENANTS if t != victim.job.tenant)
        run.cross_tenant_feedback_status = _post(
            services.api, "/feedback", keys[other], {"trace_id": victim.trace_id,
                                                     "kind": "thumbs_down"}).status_code
        spoof = {"baggage": f"{'tenant.id'}={SPOOFED_TENANT},session=abc"}
        question = {"question": "What uptime does the Cloud DNS SLA guarantee?"}
        response = _post(services.api, "/ask", keys["acme"], question, spoof)
        run.spoofed_status = response.status_code
        run.spoofed_trace_id = response.headers["X-Trace-Id"]
        run.unauthenticated_status = _post(services.api, "/ask", None, question, spoof).status_code
    yield run


def read_lines(out_dir: Path, pattern: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every JSON line of the files matching ``pattern``, with its file."""
    for path in sorted(out_dir.glob(pattern)):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield path, json.loads(line)
