"""``otel-ml demo``: run the three services, send a workload, print the report.

The workload is a help-centre's traffic: questions about the bundled corpus (and a
few it cannot answer) from several tenants, mostly streamed, with users reacting
now and then (thumbs up/down, copy, a score); answers that the groundedness scorer
flags draw more thumbs down, as hallucinations do in real life. It is seeded, so
two runs send the same questions in the same order.

``--drift`` adds a second phase after it: questions from outside the corpus, as when a
product launch or a new user group brings traffic the documents do not cover. Retrieval
top scores fall, the model answers that it does not know (shorter answers, low
groundedness), and the api's drift monitor reports it in the ``ml.drift.*`` gauges,
shown in the report's Drift section.

With the embedded default the report is then built from the exported files by
:mod:`otel_ml.cli.report`, the same code as ``otel-ml report DIR``: the numbers shown are
what the telemetry says, and the driver's own counts are printed only as a check.
With ``--otlp-endpoint`` there are no files: the driver prints its own summary and
where to look (Jaeger, Grafana).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from demo_rag import api, corpus, llm, vectordb
from demo_rag.launcher import DEFAULT_TENANTS, LaunchError, Services, launch
from demo_rag.openai_wire import iter_sse
from otel_ml.cli import report

DEFAULT_REQUESTS: Final = 60
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_SEED: Final = 7
STREAM_SHARE: Final = 0.85
OFF_TOPIC_SHARE: Final = 0.05
OFF_TOPIC: Final = (
    "Can I pay my invoice in bitcoin?",
    "What is the airspeed velocity of an unladen swallow?",
    "Does Nimbus Cloud offer on-premises hardware leasing?",
)
# The drift phase: questions the help centre has no article for. Each one shares no word
# with the corpus the simulated model could quote, so it answers that it does not know
# (tests/unit/test_demo_drift_phase.py checks this against the real index and simulator).
DRIFT_QUESTIONS: Final = (
    "What is a good recipe for sourdough bread?",
    "Who won the football world cup in 1998?",
    "How do I train a puppy to sit?",
    "What is the capital city of Australia?",
    "Recommend a novel for a long flight.",
    "How tall is Mount Everest?",
    "Which wine goes with grilled salmon?",
    "How many moons does Jupiter have?",
    "How do I fix a flat bicycle tyre?",
    "What time does the bakery open on Sunday?",
    "Explain the offside rule in football.",
    "Who painted the Mona Lisa?",
    "What is the best way to learn the violin?",
    "Which planets have rings?",
    "How do I knit a scarf?",
    "When did the Roman empire fall?",
)
# Where the docker compose / native stack serves its UIs (override for your setup).
JAEGER_URL_ENV: Final = "OTEL_ML_JAEGER_URL"
GRAFANA_URL_ENV: Final = "OTEL_ML_GRAFANA_URL"
SERVICE_NAMES: Final = (api.SERVICE_NAME, vectordb.SERVICE_NAME, llm.SERVICE_NAME)
# What otel_ml.tenant() accepts; anything else would leave the spans without a tenant.
_TENANT_ID: Final = re.compile(r"^[A-Za-z0-9._:@/+-]{1,128}$")


@dataclass(frozen=True)
class Job:
    index: int
    tenant: str
    question: str
    stream: bool


@dataclass
class Outcome:
    """What the driver itself saw for one request (used only as a cross-check)."""

    job: Job
    ok: bool
    latency_s: float
    trace_id: str | None = None
    status: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    groundedness: float | None = None
    feedback: str | None = None


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    @property
    def feedback(self) -> int:
        return sum(1 for o in self.outcomes if o.feedback)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=_positive, default=DEFAULT_REQUESTS, metavar="N",
                        help=f"questions to ask (default {DEFAULT_REQUESTS})")
    parser.add_argument("--tenants", type=_tenant_list, default=list(DEFAULT_TENANTS),
                        metavar="A,B,C", help="tenants sending them (default: "
                        f"{','.join(DEFAULT_TENANTS)})")
    parser.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY,
                        metavar="K", help=f"requests in flight (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("OTEL_ML_DATA_DIR") or "otel-ml-data"),
                        metavar="DIR", help="folder for the OTLP JSON lines (default "
                        "./otel-ml-data); previous demo files there are replaced")
    parser.add_argument("--otlp-endpoint", metavar="URL", default=None,
                        help="send telemetry to this OTLP endpoint instead of files")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="workload seed: same seed, same questions and reactions")
    parser.add_argument("--drift", action="store_true",
                        help="after the workload, send as many out-of-corpus questions "
                        "(a drift phase the api's drift monitor should flag)")


def run(args: argparse.Namespace) -> int:
    jobs = plan_jobs(args.requests, args.tenants, args.seed)
    drift_jobs = (plan_drift_jobs(args.requests, args.tenants, args.seed, start=len(jobs))
                  if args.drift else [])
    out_dir: Path | None = None if args.otlp_endpoint else args.out
    if out_dir is not None:
        removed = clear_previous_run(out_dir)
        if removed:
            print(f"replacing {removed} telemetry files of a previous demo run in {out_dir}")
    _exit_cleanly_on_sigterm()
    started = time.perf_counter()
    try:
        with launch(out_dir=out_dir, otlp_endpoint=args.otlp_endpoint,
                    tenants=args.tenants) as services:
            print(f"services up: api {services.api}, vectordb {services.vectordb}, "
                  f"llm {services.llm}, chroma {services.chroma}")
            summary = asyncio.run(_run_with_progress(services, jobs, args.concurrency, args.seed))
            if drift_jobs:
                drifted = asyncio.run(_run_with_progress(
                    services, drift_jobs, args.concurrency, args.seed, "drift phase"))
                summary.outcomes += drifted.outcomes
    except LaunchError as exc:
        print(f"otel-ml demo: a service did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        where = f"; partial telemetry is in {out_dir}/" if out_dir is not None else ""
        print(f"\ninterrupted: services stopped{where}", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    print(f"done in {elapsed:.1f}s; services stopped\n")
    if out_dir is None:
        _print_otlp_summary(summary, args.otlp_endpoint)
        return 0
    report.render(report.build_report(out_dir))
    print(f"\ndriver's own count, for comparison: {len(summary.outcomes)} requests, "
          f"{summary.failed} failed, {summary.feedback} feedback sent")
    print(f"files: {out_dir}/ (rebuild this report with `otel-ml report {out_dir}`)")
    return 0


def plan_jobs(requests: int, tenants: Sequence[str], seed: int) -> list[Job]:
    """The questions to ask, who asks them, and whether to stream: deterministic."""
    rng = random.Random(seed)
    questions = [q.text for q in corpus.questions()]
    jobs = []
    for index in range(requests):
        off_topic = rng.random() < OFF_TOPIC_SHARE
        question = rng.choice(OFF_TOPIC) if off_topic else rng.choice(questions)
        jobs.append(Job(index, tenants[index % len(tenants)], question,
                        stream=rng.random() < STREAM_SHARE))
    return jobs


def plan_drift_jobs(
    requests: int, tenants: Sequence[str], seed: int, start: int = 0
) -> list[Job]:
    """The drift phase: out-of-corpus questions, deterministic like :func:`plan_jobs`.

    ``start`` numbers the jobs after a first phase, so each job's feedback draw is its own.
    """
    rng = random.Random(f"{seed}/drift")
    return [
        Job(index, tenants[index % len(tenants)], rng.choice(DRIFT_QUESTIONS),
            stream=rng.random() < STREAM_SHARE)
        for index in range(start, start + requests)
    ]


def clear_previous_run(out_dir: Path) -> int:
    """Delete the demo services' telemetry files left by an earlier run.

    The report reads every file in the folder; mixing runs would mix their numbers.
    Only files named after the demo's own services are touched.
    """
    if not out_dir.is_dir():
        return 0
    removed = 0
    for service in SERVICE_NAMES:
        for path in [*out_dir.glob(f"traces-{service}-*.jsonl"),
                     *out_dir.glob(f"metrics-{service}-*.jsonl")]:
            path.unlink()
            removed += 1
    return removed


def choose_feedback(rng: random.Random, groundedness: float | None) -> dict[str, Any] | None:
    """A simulated user's reaction to an answer, or None (most users do nothing)."""
    if groundedness is not None and groundedness < 0.9:
        return {"kind": "thumbs_down"} if rng.random() < 0.7 else None
    roll = rng.random()
    if roll < 0.2:
        return {"kind": "thumbs_up"}
    if roll < 0.3:
        return {"kind": "copy_to_clipboard"}
    if roll < 0.35:
        return {"score": round(rng.uniform(0.6, 1.0), 2)}
    if roll < 0.38:
        return {"kind": "thumbs_down"}
    return None


async def _run_with_progress(
    services: Services, jobs: Sequence[Job], concurrency: int, seed: int, label: str = "asking"
) -> Summary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(label, total=len(jobs))
        failures = 0

        def done(outcome: Outcome) -> None:
            nonlocal failures
            failures += not outcome.ok
            progress.update(task, advance=1, description=f"{label} ({failures} failed)")

        return await run_workload(services, jobs, concurrency, seed, done)


async def run_workload(
    services: Services,
    jobs: Sequence[Job],
    concurrency: int,
    seed: int,
    on_done: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Send ``jobs`` with at most ``concurrency`` in flight; feedback follows answers."""
    summary = Summary()
    gate = asyncio.Semaphore(concurrency)
    timeout = httpx.Timeout(120.0, connect=5.0)
    async with httpx.AsyncClient(base_url=services.api, timeout=timeout) as client:

        async def one(job: Job) -> None:
            async with gate:
                outcome = await ask(client, services.api_keys[job.tenant], job)
                if outcome.ok and outcome.trace_id:
                    rng = random.Random(f"{seed}/{job.index}")
                    reaction = choose_feedback(rng, outcome.groundedness)
                    if reaction is not None:
                        await send_feedback(client, services.api_keys[job.tenant],
                                            outcome.trace_id, reaction)
                        outcome.feedback = str(reaction.get("kind", "score"))
            summary.outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)

        await asyncio.gather(*(one(job) for job in jobs))
    summary.outcomes.sort(key=lambda o: o.job.index)
    return summary


async def ask(client: httpx.AsyncClient, api_key: str, job: Job) -> Outcome:
    """POST /ask as a client app would, reading the SSE stream when streaming."""
    headers = {api.API_KEY_HEADER: api_key}
    body = {"question": job.question, "stream": job.stream}
    started = time.perf_counter()
    try:
        if not job.stream:
            response = await client.post("/ask", json=body, headers=headers)
            data = response.json()
            return _outcome(job, started, response.status_code, data,
                            ok=response.status_code == 200)
        async with client.stream("POST", "/ask", json=body, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                return _outcome(job, started, response.status_code, response.json(), ok=False)
            async for event, data_text in iter_sse(response.aiter_lines()):
                if event in ("done", "error"):
                    return _outcome(job, started, response.status_code, json.loads(data_text),
                                    ok=event == "done")
        return Outcome(job, ok=False, latency_s=time.perf_counter() - started)
    except (httpx.HTTPError, ValueError):
        return Outcome(job, ok=False, latency_s=time.perf_counter() - started)


def _outcome(job: Job, started: float, status: int, data: Any, ok: bool) -> Outcome:
    usage = data.get("usage") or {} if isinstance(data, dict) else {}
    return Outcome(
        job, ok=ok, latency_s=time.perf_counter() - started, status=status,
        trace_id=data.get("trace_id") if isinstance(data, dict) else None,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        groundedness=data.get("groundedness") if isinstance(data, dict) else None,
    )


async def send_feedback(
    client: httpx.AsyncClient, api_key: str, trace_id: str, reaction: dict[str, Any]
) -> bool:
    try:
        response = await client.post("/feedback", json={"trace_id": trace_id, **reaction},
                                     headers={api.API_KEY_HEADER: api_key})
    except httpx.HTTPError:
        return False
    return response.status_code == 202


def _print_otlp_summary(summary: Summary, endpoint: str) -> None:
    jaeger = os.environ.get(JAEGER_URL_ENV, "http://localhost:16686").rstrip("/")
    grafana = os.environ.get(GRAFANA_URL_ENV, "http://localhost:3000").rstrip("/")
    ok = [o for o in summary.outcomes if o.ok]
    print(f"Telemetry was sent to {endpoint}; there are no local files to report on.")
    print(f"driver's view: {len(summary.outcomes)} requests, {summary.failed} failed, "
          f"{sum(o.input_tokens for o in ok):,} input / {sum(o.output_tokens for o in ok):,} "
          f"output tokens, {summary.feedback} feedback sent")
    latencies = [o.latency_s for o in ok]
    if latencies:
        p50, p99 = report.percentile(latencies, 50), report.percentile(latencies, 99)
        print(f"client-side latency: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        typical = min(ok, key=lambda o: abs(o.latency_s - p50))
        if typical.trace_id:
            print(f"a typical trace:  {jaeger}/trace/{typical.trace_id}")
    print(f"all traces:       {jaeger}/search?service={api.SERVICE_NAME}")
    print(f"cost per tenant:  {grafana} (Grafana, docker compose) or the Prometheus query "
          "sum by (tenant_id) (llm_cost_usd_total)")


def _exit_cleanly_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so the launcher still stops the services."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, interrupt)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _tenant_list(text: str) -> list[str]:
    tenants = [t.strip() for t in text.split(",") if t.strip()]
    if not tenants:
        raise argparse.ArgumentTypeError("give at least one tenant, e.g. acme,globex")
    if len(set(tenants)) != len(tenants):
        raise argparse.ArgumentTypeError(f"duplicate tenants in {text!r}")
    for tenant in tenants:
        if not _TENANT_ID.match(tenant):
            raise argparse.ArgumentTypeError(
                f"tenant {tenant!r}: use 1-128 letters, digits and ._:@/+- (a W3C baggage value)"
            )
    return tenants
