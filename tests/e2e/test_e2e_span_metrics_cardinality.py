"""Span metrics stay bounded when tenants are many (issue 12, goal 4).

``tenant.id`` is a span-metrics dimension, and otelcol.yaml caps the connector at
``aggregation_cardinality_limit`` dimension sets per resource: past it, new sets
fold into one series labelled ``otel_metric_overflow="true"``. Nothing exercised
that overflow before. Here a collector of the test's own (the shipped
otelcol.yaml) and a Prometheus of its own (the shipped prometheus.yml) get one
SERVER span from each of ``LIMIT + EXTRA`` distinct tenants of one fresh
service: Prometheus must show at most ``LIMIT`` tenant series plus the overflow
one, and every request counted exactly once across them, so that the RED rules
keep their totals while the series count stops growing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_clients import METRIC_TIMEOUT_S, poll
from e2e_collector import OwnCollector, own_prometheus, post, resource_spans, running, server_span
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from otel_ml import semconv
from otel_ml.cli.stack import Stack

pytestmark = pytest.mark.e2e

EXTRA = 250
SPANS_PER_REQUEST = 500


def _limit(stack: Stack) -> int:
    config = yaml.safe_load((stack.config_dir / "otelcol.yaml").read_text())
    limit: int = config["connectors"]["span_metrics"]["aggregation_cardinality_limit"]
    return limit


def _tenant_span(tenant: str) -> Any:
    span = server_span("POST /ask")
    span.attributes.append(KeyValue(key=semconv.TENANT_ID))
    span.attributes[-1].value.string_value = tenant
    return span


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=30.0).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_span_metrics_fold_tenants_past_the_cap_into_one_overflow_series(
    stack: Stack, tmp_path: Path
) -> None:
    limit = _limit(stack)
    sent = limit + EXTRA
    service = f"e2e-cardinality-{uuid.uuid4().hex[:8]}"
    series = f'traces_span_metrics_calls_total{{service_name="{service}"}}'
    collector = OwnCollector.for_stack(stack, tmp_path)
    with running(collector), own_prometheus(stack, collector) as prometheus:
        tenants = [f"tenant-{index:05d}" for index in range(sent)]
        with httpx.Client(timeout=30.0) as client:
            for start in range(0, sent, SPANS_PER_REQUEST):
                spans = [_tenant_span(t) for t in tenants[start:start + SPANS_PER_REQUEST]]
                assert post(client, collector.otlp_http, [resource_spans(service, "api-1", spans)])

        def total() -> float:
            return sum(float(s["value"][1]) for s in _query(prometheus, series))

        poll(total, lambda value: value == sent, timeout=METRIC_TIMEOUT_S * 3,
             what=f"{series} summed = {sent}")
        samples = _query(prometheus, series)

    overflow = [s for s in samples if s["metric"].get("otel_metric_overflow") == "true"]
    by_tenant = [s for s in samples if s["metric"].get("otel_metric_overflow") != "true"]
    print(f"{len(by_tenant)} tenant series, overflow {[s['value'][1] for s in overflow]}")
    assert len(overflow) == 1, [s["metric"] for s in overflow]
    assert "tenant_id" not in overflow[0]["metric"]
    assert len(by_tenant) <= limit
    assert {s["metric"]["tenant_id"] for s in by_tenant} <= set(tenants)
    assert all(float(s["value"][1]) == 1 for s in by_tenant)
    # Every request counted once: the tenants over the cap are all in the overflow series.
    assert float(overflow[0]["value"][1]) == sent - len(by_tenant)
    assert sent - len(by_tenant) >= EXTRA
