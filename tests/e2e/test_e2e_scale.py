"""The scale-out tier end to end: 2 gateways, 2 tail-sampling collectors, Jaeger, Prometheus.

Two replicas of the demo's services (tests/e2e/e2e_scale.py) send through
both gateways; the samplers keep traces by policy. Checked against the real
programs (``otel-ml stack`` with ``topology=scale`` on free ports):

- every kept trace is whole in Jaeger (all its spans, though they crossed
  different gateways): routing by trace id put each trace in one sampler;
- errors, slow, costly and debug-tenant traces are all kept; plain ones at the
  configured share within a binomial tolerance;
- Prometheus's request (span metrics, computed before sampling), token and
  cost (the SDK's own metrics) totals equal what the SDK sent;
- a sampler SIGKILLed under load: what the gateways acknowledged while it was
  down waits in their disk queues and arrives after its restart; what is lost
  is reported (the traces it held in memory awaiting a decision).

``OTEL_ML_E2E_SCALE_TRACES`` sets the count (300 here; `make e2e-scale-10k`
runs 10,000).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest
from e2e_clients import Jaeger, Prometheus
from e2e_scale import (
    COST_THRESHOLD_USD,
    DEBUG_TENANT,
    SLO_MS,
    Fleet,
    Sent,
    by_kind,
)

from otel_ml.cli.stack import Binaries, Ports, Stack, StackError, find_config_dir
from otel_ml.cli.stack.ports import PORT_ENV, busy_ports
from otel_ml.cli.stack.scale import PORT_STEP, Topology

pytestmark = pytest.mark.e2e

TRACES = int(os.environ.get("OTEL_ML_E2E_SCALE_TRACES", "300"))
SAMPLE_PERCENT = 10
DECISION_WAIT_S = 5
# The samplers' policy settings for this run (collector-config/scale/sampler.yaml).
SAMPLER_ENV = {
    "OTEL_ML_SAMPLE_SLO_MS": str(SLO_MS),
    "OTEL_ML_SAMPLE_COST_USD": str(COST_THRESHOLD_USD),
    "OTEL_ML_SAMPLE_DEBUG_TENANTS": f"[{DEBUG_TENANT}]",
    "OTEL_ML_SAMPLE_PERCENT": str(SAMPLE_PERCENT),
    "OTEL_ML_SAMPLE_DECISION_WAIT": f"{DECISION_WAIT_S}s",
}
MUST_KEEP = ("error", "slow", "costly", "debug")
WAIT_S = 240.0 + TRACES / 50  # generous: 2 shared cores, and 10,000 traces in the big run
REPORT = Path(os.environ.get("OTEL_ML_E2E_SCALE_REPORT", "/tmp/otel-ml-e2e-scale.json"))


@pytest.fixture(scope="module")
def scale_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The members inherit the runner's environment, at start and at a restart
    # (test_sampler_killed_under_load): set for the whole module.
    saved = {k: os.environ.get(k) for k in SAMPLER_ENV}
    os.environ.update(SAMPLER_ENV)
    try:
        config_dir = find_config_dir()
        ports = Ports.free()
        stack = Stack(
            tmp_path_factory.mktemp("scale-stack"),
            ports=ports,
            binaries=Binaries.resolve(config_dir=config_dir),
            config_dir=config_dir,
            topology=Topology.scale_free(ports),
        )
        try:
            stack.start()
        except StackError as exc:
            pytest.fail(f"cannot start the scale-out stack: {exc}", pytrace=False)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def clients(scale_stack: Stack) -> Iterator[tuple[Jaeger, Prometheus]]:
    with httpx.Client(timeout=60.0) as http:
        yield Jaeger(scale_stack.urls.jaeger, http), Prometheus(scale_stack.urls.prometheus, http)


def _fleet(stack: Stack) -> Fleet:
    assert stack.topology is not None
    return Fleet([g.otlp_http for g in stack.topology.gateways])


def _stored(jaeger: Jaeger, sent: Sequence[Sent]) -> dict[str, set[str]]:
    """Span ids Jaeger holds now, for each sent trace it knows."""
    out = {}
    for item in sent:
        stored = jaeger.trace(item.trace_id)
        if stored is not None:
            out[item.trace_id] = {span.span_id for span in stored.spans}
    return out


def _wait_kept(jaeger: Jaeger, sent: Sequence[Sent], must: Sequence[Sent],
               timeout: float = WAIT_S) -> dict[str, set[str]]:
    """Poll until every must-keep trace is whole (or time is up), then let the rest land."""
    deadline = time.monotonic() + timeout
    pending = {s.trace_id: s.span_ids for s in must}
    while pending and time.monotonic() < deadline:
        for trace_id, spans in list(pending.items()):
            stored = jaeger.trace(trace_id)
            if stored is not None and spans <= {span.span_id for span in stored.spans}:
                del pending[trace_id]
        time.sleep(1.0)
    # Every trace was decided by then (they were all sent before the must-keep
    # ones' decisions); one more decision window and Jaeger's batch for the rest.
    time.sleep(DECISION_WAIT_S + 5)
    return _stored(jaeger, sent)


def _binomial_ok(kept: int, n: int, p: float) -> tuple[bool, str]:
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return abs(kept - mean) <= 4 * sd, f"{kept} of {n} kept, expected {mean:.1f} +- {4 * sd:.1f}"


def _prom_total(prometheus: Prometheus, expr: str) -> float:
    result = prometheus.query(expr)
    return sum(float(s["value"][1]) for s in result)


def _wait_totals(prometheus: Prometheus, want: Mapping[str, float],
                 queries: Mapping[str, str]) -> dict[str, float]:
    deadline = time.monotonic() + WAIT_S
    while True:
        got = {name: _prom_total(prometheus, q) for name, q in queries.items()}
        if all(math.isclose(got[k], want[k], rel_tol=1e-9) for k in want):
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(2.0)


def _cost_by_member(stack: Stack, prometheus: Prometheus) -> dict[str, dict[str, float]]:
    """Each member's CPU seconds and accepted spans so far (its own telemetry): the
    per-tier throughput docs/scale.md sizes from."""
    assert stack.topology is not None
    cpu = prometheus.values("otelcol_process_cpu_seconds", by=["instance"])
    spans = prometheus.values("sum by (instance) (otelcol_receiver_accepted_spans)",
                              by=["instance"])
    rss = prometheus.values("max_over_time(otelcol_process_memory_rss[1h])", by=["instance"])
    out = {}
    for member in stack.topology.members:
        key = (member.telemetry_target,)
        seconds, accepted = cpu.get(key, 0.0), spans.get(key, 0.0)
        out[member.name] = {"cpu_seconds": seconds, "accepted_spans": accepted,
                            "spans_per_cpu_second": round(accepted / seconds) if seconds else 0,
                            "peak_rss_mib": round(rss.get(key, 0.0) / 2**20)}
    return out


def _report(section: str, figures: Mapping[str, object]) -> None:
    """Write the run's figures where the docs and the report quote them from."""
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data[section] = figures
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\n[{section}] " + json.dumps(figures, sort_keys=True))


def test_policies_whole_traces_and_exact_totals(
    scale_stack: Stack, clients: tuple[Jaeger, Prometheus]
) -> None:
    jaeger, prometheus = clients
    fleet = _fleet(scale_stack)
    try:
        fleet.send_many(TRACES)
        fleet.flush()
        kinds = by_kind(fleet.sent)
        must = [s for kind in MUST_KEEP for s in kinds[kind]]
        stored = _wait_kept(jaeger, fleet.sent, must)
        totals = _wait_totals(prometheus, fleet.totals, {
            # RED metrics from the samplers' span_metrics, before sampling.
            "requests": 'sum(traces_span_metrics_calls_total{service_name="rag-api",'
                        'span_kind="SPAN_KIND_SERVER"})',
            # The SDK's own metrics, through the gateways: never sampled.
            "tokens": "sum(gen_ai_client_token_usage_sum)",
            "cost": "sum(llm_cost_usd_total)",
        })
        per_sampler = prometheus.values(
            'sum by (collector_instance_id) (traces_span_metrics_calls_total)',
            by=["collector_instance_id"])
        cost_by_member = _cost_by_member(scale_stack, prometheus)
    finally:
        fleet.shutdown()

    assert len(fleet.acknowledged_traces()) == TRACES, "a gateway refused spans"
    partial = {t: len(s) for t, s in stored.items()
               if not next(x for x in fleet.sent if x.trace_id == t).span_ids <= s}
    kept = {kind: sum(s.trace_id in stored for s in kinds[kind]) for kind in kinds}
    ok, share = _binomial_ok(kept["plain"], len(kinds["plain"]), SAMPLE_PERCENT / 100)
    _report("policies", {
        "traces": TRACES, "sent_by_kind": {k: len(v) for k, v in kinds.items()},
        "kept_by_kind": kept, "partial_traces": len(partial), "plain_share": share,
        "prometheus": totals, "sdk": fleet.totals,
        "span_metrics_calls_by_sampler": {k[0]: v for k, v in per_sampler.items()},
        "members": cost_by_member,
    })
    assert not partial, f"kept traces missing spans (split across samplers?): {partial}"
    for kind in MUST_KEEP:
        assert kept[kind] == len(kinds[kind]), f"{kind}: {kept[kind]} of {len(kinds[kind])} kept"
    assert ok, f"plain traces: {share}"
    # Both samplers got a share of the traces (the trace-id slices route).
    assert {"sampler-0", "sampler-1"} <= {k[0] for k, v in per_sampler.items() if v > 0}
    assert totals["requests"] == fleet.totals["requests"] == TRACES
    assert totals["tokens"] == fleet.totals["tokens"]
    assert math.isclose(totals["cost"], fleet.totals["cost"], rel_tol=1e-9)


def _slice(trace_id: str) -> int:
    """The sampler a trace goes to: collector-config/scale/gateway.yaml's filters."""
    return 0 if trace_id[-1] in "01234567" else 1


def _reset_aware_total(prometheus: Prometheus, selector: str, window: str = "1h") -> float:
    """A counter's total over every series, adding up the values before each reset."""
    total = 0.0
    for series in prometheus.query(f"{selector}[{window}]"):
        values = [float(v) for _, v in series["values"]]
        total += sum(a for a, b in itertools.pairwise(values) if b < a)
        total += values[-1] if values else 0.0
    return total


def test_sampler_killed_under_load(
    scale_stack: Stack, clients: tuple[Jaeger, Prometheus]
) -> None:
    jaeger, prometheus = clients
    before = _reset_aware_total(
        prometheus, 'traces_span_metrics_calls_total{service_name="rag-api",'
                    'span_kind="SPAN_KIND_SERVER"}')
    fleet = _fleet(scale_stack)
    rate, seconds = 20.0, 30.0
    sender = threading.Thread(
        target=fleet.send_many, args=(int(rate * seconds), rate, 100_000), daemon=True)
    try:
        sender.start()
        time.sleep(8)
        killed_at = time.monotonic()
        scale_stack.kill("sampler-1")
        time.sleep(10)
        restarted_at = time.monotonic()
        scale_stack.restart("sampler-1")
        sender.join(timeout=seconds * 4)
        fleet.flush()
        acked = fleet.acknowledged_traces()
        must = [s for s in acked if s.kind in MUST_KEEP]
        # Some traces are expected lost here (the killed sampler's memory):
        # a shorter wait, still far longer than a decision and a redelivery.
        stored = _wait_kept(jaeger, acked, must, timeout=90.0)
        time.sleep(15)  # span metrics flush (5s) and a scrape (5s)
        counted = _reset_aware_total(
            prometheus, 'traces_span_metrics_calls_total{service_name="rag-api",'
                        'span_kind="SPAN_KIND_SERVER"}') - before
    finally:
        fleet.shutdown()

    lost = [s for s in must if not s.span_ids <= stored.get(s.trace_id, set())]
    during = [s for s in must if killed_at < s.sent_at < restarted_at and _slice(s.trace_id)]
    # What sampler-1 held in memory at the kill: traces of its slice sent within
    # a decision window before it, plus a margin for the SDK's and the gateway's
    # batching (0.2 s each) on a loaded machine.
    in_memory = [s for s in must if _slice(s.trace_id) == 1
                 and killed_at - DECISION_WAIT_S - 5 < s.sent_at <= killed_at]
    _report("sampler_killed", {
        "sent": len(fleet.sent), "acknowledged_by_gateways": len(acked),
        "must_keep_acknowledged": len(must), "must_keep_lost": len(lost),
        "must_keep_lost_slice_0": sum(_slice(s.trace_id) == 0 for s in lost),
        "must_keep_sent_while_down": len(during),
        "must_keep_sent_while_down_lost": sum(s in lost for s in during),
        "must_keep_in_sampler_memory_at_kill": len(in_memory),
        "requests_acknowledged": len(acked), "requests_counted_by_span_metrics": counted,
        "down_s": round(restarted_at - killed_at, 1),
        "lost_detail": [(s.kind, _slice(s.trace_id), round(s.sent_at - killed_at, 1),
                         len(stored.get(s.trace_id, ()))) for s in lost],
    })
    assert len(acked) == len(fleet.sent), "the gateways stayed up: they acknowledge everything"
    assert not [s for s in lost if _slice(s.trace_id) == 0], "the surviving sampler lost traces"
    assert during, "no must-keep trace was sent while the sampler was down"
    assert not [s for s in during if s in lost], (
        "traces the gateways acknowledged while the sampler was down were not delivered")
    assert {s.trace_id for s in lost} <= {s.trace_id for s in in_memory}, (
        "lost traces that the killed sampler cannot have held in memory")
    assert counted <= len(acked)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[1].startswith("Z")  # a zombie is not running


def _scale_ports() -> Ports:
    """Free base ports whose +10/+20/+30 moves (the other members) are free too,
    and none of them another field's port."""
    members_after_first = len(Topology.scale(Ports()).members) - 1
    for _ in range(20):
        ports = Ports.free(headroom=PORT_STEP * members_after_first)
        members = Topology.scale(ports).members
        moved = [p for m in members[1:] for p in m.ports.values()]
        if (not busy_ports({m.name: m.ports for m in members})
                and not set(moved) & set(ports.as_dict().values())):
            return ports
    pytest.fail("no free ports for the scale topology", pytrace=False)


def test_stack_cli_runs_the_scale_topology(tmp_path: Path) -> None:
    """`otel-ml stack up --topology scale --detach`, status, every member scraped, down."""
    ports = _scale_ports()
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)}
    env |= {PORT_ENV[name]: str(port) for name, port in ports.as_dict().items()}
    workdir = tmp_path / "stack"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "otel_ml.cli", "stack", *args,
                               "--workdir", str(workdir)],
                              capture_output=True, text=True, env=env, timeout=180, check=False)

    up = cli("up", "--detach", "--topology", "scale")
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((workdir / "stack.json").read_text())
    pids = [state["runner_pid"], *(c["pid"] for c in state["components"].values())]
    try:
        members = Topology.scale(ports).members
        assert {m.name for m in members} <= set(state["components"])
        assert "otelcol" not in state["components"]
        for member in members:
            assert f"{member.name:<13} OTLP {member.otlp_http}" in up.stdout
        status = cli("status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("healthy") == len(state["components"])
        with httpx.Client(timeout=30.0) as http:
            prometheus = Prometheus(state["urls"]["prometheus"], http)
            deadline = time.monotonic() + WAIT_S
            wanted = {m.telemetry_target for m in members} | {m.metrics_target for m in members}
            while True:
                up_targets = {s["metric"]["instance"] for s in prometheus.query(
                    'up{job=~"otelcol|otelcol-exporter"} == 1')}
                if wanted <= up_targets or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
        assert wanted <= up_targets, f"not scraped: {sorted(wanted - up_targets)}"
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert [pid for pid in pids if _alive(pid)] == []
