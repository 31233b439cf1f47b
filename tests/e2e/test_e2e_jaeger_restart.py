"""Jaeger keeps its traces across a restart under load (issue 15, item 2).

Jaeger stores on Badger, on disk (collector-config/jaeger.yaml). A Jaeger of
the test's own (the stack's command line and environment, on free ports,
with its own data dir) receives from a collector of the test's own
(otelcol.yaml, persistent sending queue), while three threads send one new
trace per OTLP/HTTP request. Once every trace acknowledged so far is in
Jaeger, Jaeger is stopped (SIGTERM, a rolling restart) with the load still
running, and started again on the same data dir.

Not held: a crash (SIGKILL). It passed in the helper's runs, but one CI run
under load found 17 of 138 traces incomplete afterwards, cause not found yet
(docs/backends.md). The issue asks for a restart.

Then every trace Jaeger held before the restart is found after it, span for
span, and so is every trace the collector acknowledged while Jaeger was
down: the collector's disk queue held those until Jaeger was back. With the
in-memory storage Jaeger had before, a restart lost every trace (882 spans
in one test).

Also checked: the session stack's Jaeger writes its Badger files under the
stack's working directory, so `otel-ml stack up` keeps traces too.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
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

from otel_ml.cli.stack import Ports, Stack
from otel_ml.cli.stack.components import components
from otel_ml.cli.supervisor import ProcessSpec, Supervisor

pytestmark = pytest.mark.e2e

SPANS_PER_REQUEST = 5
REQUESTS_PER_S = 15.0
LOAD_BEFORE_S = 3.0  # sending before the "everything so far is stored" check
DOWN_S = 3.0  # Jaeger stopped, the load still running
LOAD_AFTER_S = 2.0
START_TIMEOUT_S = 60.0
DELIVERY_TIMEOUT_S = 90.0


@dataclass
class OwnJaeger:
    """The stack's Jaeger command line and config, on free ports, with its own data dir."""

    stack: Stack
    workdir: Path
    ports: Ports = field(default_factory=Ports.free)
    starts: int = 0
    _supervisor: Supervisor | None = None

    @property
    def data_dir(self) -> Path:
        return self.workdir / "jaeger-data"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.ports.jaeger_otlp_grpc}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.jaeger_query_http}"

    def start(self) -> None:
        assert self._supervisor is None, "already running"
        self.starts += 1
        component = components(
            self.stack.binaries, self.stack.config_dir, self.workdir,
            self.workdir / "prometheus", self.ports,
        )["jaeger"]
        self._supervisor = Supervisor()
        self._supervisor.spawn(ProcessSpec(
            "jaeger", component.argv, env=component.environment(os.environ),
            log=self.workdir / "logs" / f"jaeger-{self.starts}.log",
            health_url=component.health_url, die_with_parent=True,
        ))
        self._supervisor.await_healthy(START_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM, a graceful stop: Badger closes its files."""
        if self._supervisor is None:
            return
        self._supervisor.stop(timeout=30.0)
        self._supervisor = None


def _not_in(jaeger: Jaeger, expected: dict[str, set[str]]) -> dict[str, set[str]]:
    """Span ids of ``expected`` that Jaeger does not hold now (one pass, no waiting)."""
    missing = {}
    for trace_id, spans in expected.items():
        stored = jaeger.trace(trace_id)
        lacking = spans - ({s.span_id for s in stored.spans} if stored else set())
        if lacking:
            missing[trace_id] = lacking
    return missing


def _template() -> list[Span]:
    root = server_span("POST /ask")
    children = [server_span(f"step {n}", root.trace_id) for n in range(SPANS_PER_REQUEST - 1)]
    for child in children:
        child.kind = Span.SPAN_KIND_INTERNAL
        child.parent_span_id = root.span_id
    return [root, *children]


def test_traces_survive_a_jaeger_restart_under_load(
    stack: Stack, http: httpx.Client, tmp_path: Path
) -> None:
    template = _template()
    own = OwnJaeger(stack, tmp_path / "jaeger")
    jaeger = Jaeger(own.query_url, http)
    collector = OwnCollector(
        binary=stack.binaries.otelcol,
        config=stack.config_dir / "otelcol.yaml",
        workdir=tmp_path / "otelcol",
        jaeger_otlp=own.otlp_grpc,
    )
    service = f"e2e-jaeger-restart-{uuid.uuid4().hex[:8]}"
    sender = OtlpSender(
        url=collector.otlp_http,
        service=service,
        make_spans=lambda trace_id: copies(template, trace_id),
        requests_per_s=REQUESTS_PER_S,
    )
    own.start()
    try:
        with running(collector):
            sender.start()
            try:
                time.sleep(LOAD_BEFORE_S)
                before = dict(sender.acknowledged)
                # Stored before the restart: this is what Jaeger itself must keep.
                not_stored = missing_from_jaeger(jaeger, before, DELIVERY_TIMEOUT_S)
                assert not not_stored, f"{len(not_stored)} traces never reached Jaeger"
                acknowledged_at_stop = sender.acknowledged_spans
                own.stop()
                time.sleep(DOWN_S)
                acknowledged_while_down = sender.acknowledged_spans - acknowledged_at_stop
                own.start()
                # Read back at once: nothing can have re-sent these, the
                # collector had delivered them before the stop.
                lost_before = _not_in(jaeger, before)
                time.sleep(LOAD_AFTER_S)
            finally:
                sender.stop()
            everything = dict(sender.acknowledged)
            # Before the collector stops: its queue delivers what Jaeger missed.
            missing_after = missing_from_jaeger(jaeger, everything, DELIVERY_TIMEOUT_S)
        services = http.get(f"{own.query_url}/api/services").json()["data"]
    finally:
        own.stop()

    print(
        f"{len(before)} traces stored before the restart, "
        f"{acknowledged_while_down} spans acknowledged while Jaeger was down, "
        f"{len(everything)} traces in all; lost: {len(lost_before)} of the stored, "
        f"{len(missing_after)} of all"
    )
    # The load really ran before and while Jaeger was down.
    assert len(before) >= LOAD_BEFORE_S * REQUESTS_PER_S / 2
    assert acknowledged_while_down > 0
    assert own.starts == 2
    # Every trace stored before the restart, complete, read back after it.
    assert lost_before == {}, f"{len(lost_before)} of {len(before)} stored traces lost"
    # And what the collector acknowledged during the restart, from its disk queue.
    assert missing_after == {}, f"{len(missing_after)} of {len(everything)} traces incomplete"
    # The service index survived too (the search UI lists it).
    assert service in services
    # Badger's files are in the data dir the config was given.
    assert (own.data_dir / "keys" / "MANIFEST").is_file()
    assert list((own.data_dir / "values").glob("*.vlog"))


def test_the_stacks_jaeger_stores_under_the_stack_dir(stack: Stack) -> None:
    assert (stack.jaeger_dir / "keys" / "MANIFEST").is_file()
    assert list((stack.jaeger_dir / "values").glob("*.vlog"))
