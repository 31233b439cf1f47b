"""The report's numbers equal those recomputed here from the exported files."""

from __future__ import annotations

import argparse
import io
import json
import math
from collections import Counter, defaultdict

import numpy as np
from conftest import DemoRun
from demo_files import CLIENT, by_trace, final_points, load_spans

from otel_ml import semconv
from otel_ml.cli import report


def test_report_numbers_equal_an_independent_recomputation(demo: DemoRun) -> None:
    built = report.build_report(demo.out_dir)
    spans = load_spans(demo.out_dir)
    traces = by_trace(spans)
    # requests: the /ask root of every trace with a GenAI span
    roots = [next(s for s in trace if not s.parent) for trace in traces.values()
             if any(semconv.GEN_AI_OPERATION_NAME in s.attrs for s in trace)]
    assert built.requests == len(roots) == len(demo.outcomes) + 1  # + the spoofed request
    assert built.errors == sum(1 for r in roots if r.status == 2)
    assert built.errors == sum(1 for o in demo.outcomes if not o.ok)  # what the client saw
    latencies = [r.seconds for r in roots]
    assert built.latency is not None
    assert math.isclose(built.latency.p50, float(np.percentile(latencies, 50)), rel_tol=1e-9)
    assert math.isclose(built.latency.p99, float(np.percentile(latencies, 99)), rel_tol=1e-9)
    chats = [s for s in spans if s.kind == CLIENT and s.name.startswith("chat ")
             and semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in s.attrs]
    ttfts = [s.attrs[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] for s in chats]
    assert built.ttft is not None
    assert math.isclose(built.ttft.p99, float(np.percentile(ttfts, 99)), rel_tol=1e-9)
    # per tenant: requests from root spans, tokens and cost from the final metric values
    requests = Counter(r.attrs[semconv.TENANT_ID] for r in roots)
    tokens: dict[tuple[str, str], float] = defaultdict(float)
    cost: dict[str, float] = defaultdict(float)
    for point in final_points(demo.out_dir):
        if point.metric == semconv.METRIC_TOKEN_USAGE:
            key = (point.attrs[semconv.TENANT_ID], point.attrs[semconv.GEN_AI_TOKEN_TYPE])
            tokens[key] += point.point["sum"]
        elif point.metric == semconv.METRIC_COST:
            cost[point.attrs[semconv.TENANT_ID]] += point.point["asDouble"]
    assert {row.tenant for row in built.tenants} == set(requests)
    for row in built.tenants:
        assert row.requests == requests[row.tenant]
        assert row.input_tokens == tokens[(row.tenant, "input")]
        assert row.output_tokens == tokens[(row.tenant, "output")]
        assert math.isclose(row.cost_usd, cost[row.tenant], rel_tol=1e-12)
    assert built.consistency.consistent
    # feedback, from the feedback spans
    kinds = Counter(s.attrs[semconv.RAG_FEEDBACK_KIND] for s in spans
                    if semconv.RAG_FEEDBACK_KIND in s.attrs)
    assert dict(built.feedback.by_kind) == dict(kinds)
    assert built.feedback.linked == built.feedback.total == sum(kinds.values())


def test_the_waterfall_shows_a_whole_streamed_request(demo: DemoRun) -> None:
    waterfall = report.build_report(demo.out_dir).waterfall
    assert waterfall is not None
    trace = by_trace(load_spans(demo.out_dir))[waterfall.trace_id]
    assert len(waterfall.rows) == len(trace)
    assert {row.service for row in waterfall.rows} == {"rag-api", "rag-vectordb", "rag-llm"}
    assert waterfall.rows[0].name == "POST /ask" and waterfall.rows[0].depth == 0
    timed = [row for row in waterfall.rows if row.ttft_s is not None]
    assert {row.service for row in timed} == {"rag-api", "rag-llm"}
    assert all(row.tbt_s is not None for row in timed)


def test_otel_ml_report_command_prints_and_exports_the_report(demo: DemoRun) -> None:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        assert report.run(parser.parse_args([str(demo.out_dir), "--json"])) == 0
    data = json.loads(out.getvalue())
    built = report.build_report(demo.out_dir)
    assert data["requests"] == built.requests
    assert data["error_rate"] == built.error_rate
    assert [t["tenant"] for t in data["tenants"]] == [t.tenant for t in built.tenants]
