"""Replay: a run recorded by the embedded default loads into the real stack.

The files are written by the SDK's own file exporters (no collector), then
``otel-ml replay`` POSTs them to the collector's OTLP/HTTP receiver; the trace
must come out of Jaeger and the cost counter out of Prometheus.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from e2e_clients import METRIC_TIMEOUT_S, Jaeger, Prometheus, poll
from opentelemetry import trace

from otel_ml import providers, semconv
from otel_ml.cli.replay import replay
from otel_ml.cli.stack import Stack
from otel_ml.providers import Destination
from otel_ml.telemetry import Telemetry

pytestmark = pytest.mark.e2e

SERVICE = "replayed-offline"


def _record_offline(folder: Path, tenant: str) -> tuple[str, float]:
    """One priced generation recorded to files; returns its trace id and cost."""
    destination = Destination(None, "file", folder)
    resource = providers.build_resource(SERVICE)
    telemetry = Telemetry(
        providers.build_tracer_provider(resource, destination),
        providers.build_meter_provider(resource, destination),
        owns_providers=True,
    )
    with telemetry.tenant(tenant), telemetry.generation("gpt-4o-mini", "openai") as g:
        g.usage(input_tokens=1200, output_tokens=300)
        trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
    telemetry.shutdown()
    price = telemetry.prices.lookup("gpt-4o-mini")
    assert price is not None
    return trace_id, price.cost(1200, 300)


def test_a_recorded_run_replays_into_jaeger_and_prometheus(
    tmp_path: Path, stack: Stack, jaeger: Jaeger, prometheus: Prometheus
) -> None:
    tenant = f"replay-{uuid.uuid4().hex[:8]}"
    trace_id, cost = _record_offline(tmp_path, tenant)
    assert trace_id

    result = replay(tmp_path, stack.urls.otlp_http)
    assert result.files == 2 and result.requests >= 2

    stored = jaeger.wait_trace(trace_id, [SERVICE])
    (span,) = stored.spans
    assert span.tags[semconv.TENANT_ID] == tenant
    assert span.tags[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 300
    assert span.tags[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(cost)
    values = poll(
        lambda: prometheus.values(f'llm_cost_usd_total{{tenant_id="{tenant}"}}', ("tenant_id",)),
        bool,
        timeout=METRIC_TIMEOUT_S,
        what=f"the replayed cost of {tenant} in Prometheus",
    )
    assert values == {(tenant,): pytest.approx(cost)}
