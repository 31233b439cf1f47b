"""Nothing the collector acknowledged is lost when it is SIGKILLed and restarted (issue 13, item 7).

A collector of the test's own (``otelcol.yaml``, free ports, its own disk
queue) exports to the session's Jaeger. Three threads send one new trace
per OTLP/HTTP request at a steady rate while the collector is SIGKILLed and
started again on the same storage directory, three times. Every span of
every request the collector answered 200 (nothing rejected) must then be in
Jaeger.

Before the fix the ``batch`` processor held up to a second of acknowledged
spans in memory ahead of the persistent queue, and each kill lost them.

One cause of loss remains, in the collector itself (v0.155.0; see
docs/reliability.md): a restart whose shared ``otlp`` receiver serves before
the Jaeger exporter's disk queue has recovered lets a request race that
recovery, which can lose acknowledged requests. The test fails on any other
loss: a lost request is accepted only if such a restart (its log shows the
window) returned after the request was acknowledged.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_clients import Jaeger
from e2e_collector import (
    OtlpSender,
    OwnCollector,
    copies,
    missing_from_jaeger,
    running,
    server_span,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_ml.cli.stack import Stack

pytestmark = pytest.mark.e2e

SPANS_PER_REQUEST = 40
REQUESTS_PER_S = 36.0  # about 1,400 spans/s over 3 threads
KILLS = 3
RUN_BEFORE_KILL_S = 2.5
DELIVERY_TIMEOUT_S = 90.0


def _template() -> list[Span]:
    root = server_span("POST /ask")
    children = [server_span(f"step {n}", root.trace_id) for n in range(SPANS_PER_REQUEST - 1)]
    for child in children:
        child.kind = Span.SPAN_KIND_INTERNAL
        child.parent_span_id = root.span_id
    return [root, *children]


def test_sigkill_under_load_loses_no_acknowledged_span(
    stack: Stack, jaeger: Jaeger, tmp_path: Path
) -> None:
    template = _template()
    collector = OwnCollector.for_stack(stack, tmp_path)
    sender = OtlpSender(
        url=collector.otlp_http,
        service=f"e2e-durability-{uuid.uuid4().hex[:8]}",
        make_spans=lambda trace_id: copies(template, trace_id),
        requests_per_s=REQUESTS_PER_S,
    )
    acknowledged_before_kill = []
    # time.monotonic() of each kill, and when its restart was healthy
    killed_at, restarted_at = [], []
    with running(collector):
        sender.start()
        try:
            for _ in range(KILLS):
                time.sleep(RUN_BEFORE_KILL_S)
                acknowledged_before_kill.append(sender.acknowledged_spans)
                killed_at.append(time.monotonic())
                collector.kill()
                collector.start()
                restarted_at.append(time.monotonic())
            time.sleep(RUN_BEFORE_KILL_S)
        finally:
            sender.stop()
        missing = missing_from_jaeger(jaeger, sender.acknowledged, DELIVERY_TIMEOUT_S)

    acknowledged = sender.acknowledged_spans
    lost = sum(len(spans) for spans in missing.values())
    races = _races(collector, sender, killed_at, restarted_at)
    print(
        f"acknowledged {acknowledged} spans ({sender.refused} requests refused while down), "
        f"kills after {acknowledged_before_kill} acknowledged, lost {lost} "
        f"({len(missing)} requests); restarts that served before their disk queue was up: "
        f"{[(r.start, r.early_acks, r.overwrote) for r in races]} (start, acks, overwrote)"
    )
    # The load really ran across every kill: spans were acknowledged between each pair.
    gains = [
        b - a
        for a, b in zip([0, *acknowledged_before_kill[:-1]], acknowledged_before_kill, strict=True)
    ]
    assert min(gains) > 0, gains
    assert acknowledged > acknowledged_before_kill[-1] >= KILLS * 1000
    unexplained = _not_explained_by_races(missing, sender.sent_at, races)
    assert not unexplained, (
        f"{sum(len(s) for s in unexplained.values())} of {acknowledged} acknowledged spans "
        f"never reached Jaeger ({len(unexplained)} requests), more than the collector's "
        f"start-up race explains ({len(races)} racing restarts)"
    )


@dataclass(frozen=True)
class Race:
    """A restart whose receiver served before its disk queue had recovered."""

    start: int
    healthy_at: float  # time.monotonic()
    early_acks: int  # acknowledged requests sent to it before it was healthy (each may cost one)
    overwrote: bool  # the stored metadata was overwritten: all on disk was forgotten


def _races(
    collector: OwnCollector, sender: OtlpSender, killed_at: list[float], restarted_at: list[float]
) -> list[Race]:
    races = []
    for start, (killed, healthy) in enumerate(zip(killed_at, restarted_at, strict=True), start=2):
        if not collector.served_before_queue(start):
            continue
        early = sum(1 for at in sender.sent_at.values() if killed < at <= healthy)
        overwrote = collector.loaded_write_index(start) < collector.loaded_write_index(start - 1)
        races.append(Race(start, healthy, early, overwrote))
    return races


def _not_explained_by_races(
    missing: dict[str, set[str]], sent_at: dict[str, float], races: list[Race]
) -> dict[str, set[str]]:
    """The lost requests the start-up race (docs/reliability.md) cannot account for.

    A race loses only requests sent before the racing restart was healthy: all of
    them when it overwrote the stored metadata, otherwise at most one per request
    it acknowledged early (each shares an item key with a re-queued one).
    """
    left = {
        trace: spans for trace, spans in missing.items()
        if not any(r.overwrote and sent_at[trace] <= r.healthy_at for r in races)
    }
    budget = sum(r.early_acks for r in races if not r.overwrote)
    last = max((r.healthy_at for r in races if not r.overwrote), default=float("-inf"))
    if len(left) <= budget and all(sent_at[trace] <= last for trace in left):
        return {}
    return left
