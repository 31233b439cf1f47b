"""Prometheus: the SDK's metrics and the collector's span metrics, through the real pipeline.

Expected values are read back from Jaeger (the generation spans of the very
requests the suite sent), so the comparison is SDK span attributes against
SDK metrics after OTLP, the collector, its prometheus exporter and a scrape.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from e2e_clients import METRIC_TIMEOUT_S, Jaeger, Prometheus, poll
from e2e_demo import SERVICES, Totals, Traffic, all_close, sdk_totals

pytestmark = pytest.mark.e2e

API = 'service_name="rag-api"'


@pytest.fixture(scope="module")
def totals(traffic: Traffic, jaeger: Jaeger) -> dict[str, Totals]:
    reported = sdk_totals(jaeger, traffic.ledger)
    assert len(reported) >= 2, f"traffic for two tenants or more: {sorted(reported)}"
    return reported


def _per_tenant(prometheus: Prometheus, expr: str, want: dict[str, float]) -> dict[str, float]:
    """Poll ``expr`` (one series per tenant_id) until it matches ``want``; return it."""

    def fetch() -> dict[str, float]:
        return {k[0]: v for k, v in prometheus.values(expr, ("tenant_id",)).items()}

    try:
        return poll(fetch, lambda got: all_close(got, want), timeout=METRIC_TIMEOUT_S, what=expr)
    except AssertionError:
        return fetch()  # the assertion below shows the difference


def test_cost_per_tenant_equals_what_the_sdk_reported(
    prometheus: Prometheus, totals: dict[str, Totals]
) -> None:
    want = {tenant: t.cost_usd for tenant, t in totals.items()}
    got = _per_tenant(prometheus, f"sum by (tenant_id) (llm_cost_usd_total{{{API}}})", want)
    assert {t: got.get(t) for t in want} == pytest.approx(want, rel=1e-9)
    assert all(v > 0 for v in want.values())


@pytest.mark.parametrize("token_type", ["input", "output"])
def test_token_usage_per_tenant_equals_what_the_sdk_reported(
    prometheus: Prometheus, totals: dict[str, Totals], token_type: str
) -> None:
    selector = f'{API}, gen_ai_token_type="{token_type}"'
    tokens = {t: float(getattr(v, f"{token_type}_tokens")) for t, v in totals.items()}
    got = _per_tenant(
        prometheus, f"sum by (tenant_id) (gen_ai_client_token_usage_sum{{{selector}}})", tokens
    )
    assert {t: got.get(t) for t in tokens} == tokens
    counts = {t: float(v.generations) for t, v in totals.items()}
    got = _per_tenant(
        prometheus, f"sum by (tenant_id) (gen_ai_client_token_usage_count{{{selector}}})", counts
    )
    assert {t: got.get(t) for t in counts} == counts


def test_ttft_histograms_exist_with_one_point_per_streamed_generation(
    prometheus: Prometheus, totals: dict[str, Totals]
) -> None:
    ttft = "gen_ai_client_operation_time_to_first_chunk_seconds"
    counts = {t: float(v.generations) for t, v in totals.items()}
    got = _per_tenant(prometheus, f"sum by (tenant_id) ({ttft}_count{{{API}}})", counts)
    assert {t: got.get(t) for t in counts} == counts
    buckets = prometheus.values(f"sum by (le) ({ttft}_bucket{{{API}}})", ("le",))
    cumulative = [buckets[k] for k in sorted(buckets, key=lambda k: float(k[0]))]
    assert len(cumulative) > 2 and cumulative == sorted(cumulative)
    assert cumulative[-1] == sum(counts.values()), "the +Inf bucket counts every TTFT"
    # Time between tokens, and the llm service's own server-side TTFT.
    for expr in (
        f"sum(gen_ai_client_operation_time_per_output_chunk_seconds_count{{{API}}})",
        'sum(gen_ai_server_time_to_first_token_seconds_count{service_name="rag-llm"})',
    ):
        (sample,) = prometheus.query(expr)
        assert float(sample["value"][1]) > 0, expr


def test_span_metrics_red_series_exist_for_every_service(
    prometheus: Prometheus, traffic: Traffic
) -> None:
    server = 'span_kind="SPAN_KIND_SERVER"'
    calls = poll(
        lambda: prometheus.values(
            f"sum by (service_name) (traces_span_metrics_calls_total{{{server}}})",
            ("service_name",),
        ),
        lambda got: {(s,) for s in SERVICES} <= got.keys(),
        timeout=METRIC_TIMEOUT_S,
        what="span metrics calls of every service",
    )
    assert all(calls[(s,)] > 0 for s in SERVICES), calls
    # Rate and duration of the api's own endpoint, per tenant (a span_metrics
    # dimension): exactly one call per answer the suite received.
    asks = {t: float(len(traffic.of(t))) for t in traffic.tenants}
    ask = f'{API}, {server}, span_name="POST /ask"'
    for metric in ("traces_span_metrics_calls_total", "traces_span_metrics_duration_seconds_count"):
        got = _per_tenant(prometheus, f"sum by (tenant_id) ({metric}{{{ask}}})", asks)
        assert {t: got.get(t) for t in asks} == asks, metric
    errors = prometheus.query(
        f'traces_span_metrics_calls_total{{{ask}, status_code="STATUS_CODE_ERROR"}}'
    )
    assert errors == [], "no /ask failed"


@pytest.mark.parametrize(
    ("bucket", "measures_whole_span"),
    [
        # span_metrics connector (RED): the api's request latency is the span's duration.
        (f'traces_span_metrics_duration_seconds_bucket{{{API}, span_name="POST /ask"}}', True),
        # the SDK's GenAI operation duration: request sent to last chunk, inside the
        # generation span, which ends a little later (usage, cost, attributes).
        (f"gen_ai_client_operation_duration_seconds_bucket{{{API}}}", False),
    ],
    ids=["span_metrics", "sdk_histogram"],
)
def test_exemplar_links_a_latency_bucket_to_a_trace_in_jaeger(
    prometheus: Prometheus, jaeger: Jaeger, traffic: Traffic, bucket: str, measures_whole_span: bool
) -> None:

    def exemplars() -> list[dict[str, Any]]:
        data = prometheus.exemplars(bucket)
        if not any(s["exemplars"] for s in data):
            # An exemplar is exposed only from the export that carries it to the
            # next one (1 s here, 5 s for span metrics), so a scrape can miss it:
            # measure again rather than wait for ones that are gone.
            traffic.ask("acme", stream=True)
        return data

    series = poll(exemplars, lambda data: any(s["exemplars"] for s in data),
                  timeout=METRIC_TIMEOUT_S, what=f"exemplars of {bucket}", interval=1.0)
    ours = {a.trace_id for a in traffic.ledger}
    checked = 0
    for s in series:
        le = float(s["seriesLabels"]["le"])
        for exemplar in s["exemplars"]:
            trace_id, span_id = exemplar["labels"]["trace_id"], exemplar["labels"]["span_id"]
            value = float(exemplar["value"])
            assert trace_id in ours, f"exemplar {trace_id} is one of the suite's requests"
            assert value <= le or math.isinf(le), f"exemplar {value}s in bucket le={le}"
            trace = jaeger.trace(trace_id)
            assert trace is not None, f"Jaeger returns the exemplar's trace {trace_id}"
            span = trace.span(span_id)
            assert span is not None, f"trace {trace_id} has the exemplar's span {span_id}"
            seconds = span.duration_us / 1e6  # Jaeger stores microseconds
            if measures_whole_span:
                assert value == pytest.approx(seconds, abs=2e-3)
            else:
                # The SDK records the duration with the generation span current,
                # just before ending it: the exemplar is that span.
                assert span in trace.generations(), f"exemplar span {span_id} is a generation"
                assert 0 < value <= seconds + 1e-3
            checked += 1
    assert checked > 0
