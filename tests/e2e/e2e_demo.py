"""Requests to the demo api, and what the SDK reported for them.

:class:`Traffic` sends ``/ask`` and ``/feedback`` requests as a tenant and
keeps a ledger of every answer (tenant, trace id, usage). The metric tests
compare Prometheus with :func:`sdk_totals`: the sums of the attributes the
SDK put on the generation spans of exactly those traces, read back from
Jaeger. Both sides are therefore measured, never hard-coded.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from e2e_clients import Jaeger, Trace, sse_events

from demo_rag.corpus import questions
from demo_rag.launcher import Services

SERVICES = ("rag-api", "rag-vectordb", "rag-llm")
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Asked:
    """One answered /ask: who asked, its trace, and the usage the api returned."""

    tenant: str
    trace_id: str
    stream: bool
    prompt_tokens: int
    completion_tokens: int


class Traffic:
    """Sends requests to the demo api and records every answer."""

    def __init__(self, client: httpx.Client, services: Services) -> None:
        self._client = client
        self._services = services
        self._questions = [q.text for q in questions()]
        self._lock = threading.Lock()
        self.ledger: list[Asked] = []

    def ask(
        self, tenant: str, stream: bool = False, params: Mapping[str, str] | None = None
    ) -> Asked:
        """One /ask as ``tenant``; ``params`` go in its query string. Every answer the
        api gives must be in the ledger: the metric tests hold Prometheus' totals
        per tenant to it."""
        with self._lock:
            question = self._questions[len(self.ledger) % len(self._questions)]
        response = self._client.post(
            f"{self._services.api}/ask",
            params=params,
            json={"question": question, "stream": stream},
            headers={"X-API-Key": self._services.api_keys[tenant]},
        )
        status = response.status_code
        assert status == 200, f"/ask as {tenant}: {status} {response.text}"
        body = _final_body(response.text, stream)
        usage = body["usage"]
        asked = Asked(
            tenant, body["trace_id"], stream, usage["prompt_tokens"], usage["completion_tokens"]
        )
        assert response.headers["X-Trace-Id"] == asked.trace_id
        with self._lock:
            self.ledger.append(asked)
        return asked

    def record(self, answers: Iterable[Asked]) -> None:
        """Add answers sent some other way (e.g. the demo driver) to the ledger."""
        with self._lock:
            self.ledger.extend(answers)

    def ask_many(self, plan: Sequence[tuple[str, bool]], workers: int = 3) -> list[Asked]:
        """(tenant, stream) requests, a few at a time: the simulated LLM mostly sleeps."""
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda item: self.ask(*item), plan))

    def feedback(self, tenant: str, trace_id: str, kind: str) -> None:
        response = self._client.post(
            f"{self._services.api}/feedback",
            json={"trace_id": trace_id, "kind": kind},
            headers={"X-API-Key": self._services.api_keys[tenant]},
        )
        assert response.status_code == 202, f"/feedback: {response.status_code} {response.text}"

    def of(self, tenant: str) -> list[Asked]:
        with self._lock:
            return [a for a in self.ledger if a.tenant == tenant]

    @property
    def tenants(self) -> set[str]:
        with self._lock:
            return {a.tenant for a in self.ledger}


def _final_body(text: str, stream: bool) -> dict[str, Any]:
    """The answer's JSON: the body, or a stream's final ``done`` event."""
    if not stream:
        body: dict[str, Any] = json.loads(text)
        return body
    done = [data for event, data in sse_events(text) if event == "done"]
    assert done, f"stream ended without a done event: {text[-500:]}"
    final: dict[str, Any] = json.loads(done[-1])
    return final


@dataclass
class Totals:
    """What the SDK reported for a set of requests, summed per tenant."""

    generations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, trace: Trace) -> None:
        for span in trace.generations():
            self.generations += 1
            self.input_tokens += int(span.tags["gen_ai.usage.input_tokens"])
            self.output_tokens += int(span.tags["gen_ai.usage.output_tokens"])
            self.cost_usd += float(span.tags["gen_ai.usage.cost.amount"])


def sdk_totals(jaeger: Jaeger, asked: Iterable[Asked]) -> dict[str, Totals]:
    """Per tenant, the generation spans' tokens and cost of these requests, from Jaeger."""
    totals: dict[str, Totals] = defaultdict(Totals)
    for item in asked:
        totals[item.tenant].add(jaeger.wait_trace(item.trace_id, SERVICES))
    return dict(totals)


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    """Equal up to float summation order: the SDK and Python add the same costs differently."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def all_close(got: Mapping[str, float], want: Mapping[str, float]) -> bool:
    return got.keys() >= want.keys() and all(close(got[k], v) for k, v in want.items())


def emit(kind: str, endpoint: str, *args: str) -> dict[str, str]:
    """Run e2e_emit.py in its own process and return the JSON line it prints."""
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    script = Path(__file__).with_name("e2e_emit.py")
    done = subprocess.run(
        [sys.executable, str(script), kind, "--endpoint", endpoint, *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert done.returncode == 0, f"e2e_emit {kind} failed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
