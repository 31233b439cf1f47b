"""otel_ml.cli.report on hand-built OTLP JSON files: every expected number is derived
from the inputs written by the test, never typed in."""

from __future__ import annotations

import argparse
import io
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_ml import semconv
from otel_ml.cli import report

SERVER, CLIENT, INTERNAL = 2, 3, 1
T0 = 1_700_000_000_000_000_000


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 as a string, as protobuf JSON does
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": value}


def _attrs(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in attributes.items()]


def _span(trace: str, span: str, parent: str, name: str, start_s: float, seconds: float,
          kind: int = INTERNAL, error: bool = False, links: tuple[tuple[str, str], ...] = (),
          **attributes: Any) -> dict[str, Any]:
    start = T0 + round(start_s * 1e9)
    raw: dict[str, Any] = {
        "traceId": trace, "spanId": span, "name": name, "kind": kind,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + round(seconds * 1e9)),
        "attributes": _attrs({k.replace("__", "."): v for k, v in attributes.items()}),
        "status": {"code": 2} if error else {},
    }
    if parent:
        raw["parentSpanId"] = parent
    if links:
        raw["links"] = [{"traceId": t, "spanId": s} for t, s in links]
    return raw


def _resource(service: str, instance: str) -> dict[str, Any]:
    return {"attributes": _attrs({"service.name": service, "service.instance.id": instance})}


def _traces_line(service: str, spans: list[dict[str, Any]]) -> str:
    return json.dumps({"resourceSpans": [{
        "resource": _resource(service, service),
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
    }]})


def _sum(name: str, points: list[tuple[dict[str, Any], float]], at: int,
         temporality: int = 2) -> dict[str, Any]:
    return {"name": name, "sum": {"aggregationTemporality": temporality, "isMonotonic": True,
                                  "dataPoints": [{"attributes": _attrs(a), "asDouble": v,
                                                  "timeUnixNano": str(T0 + at)}
                                                 for a, v in points]}}


HistogramPoint = tuple[dict[str, Any], float, int]


def _histogram(name: str, points: list[HistogramPoint], at: int) -> dict[str, Any]:
    return {"name": name, "histogram": {"aggregationTemporality": 2, "dataPoints": [
        {"attributes": _attrs(a), "sum": total, "count": str(count), "timeUnixNano": str(T0 + at)}
        for a, total, count in points]}}


def _metrics_line(service: str, instance: str, metrics: list[dict[str, Any]]) -> str:
    return json.dumps({"resourceMetrics": [{
        "resource": _resource(service, instance),
        "scopeMetrics": [{"scope": {"name": "otel_ml"}, "metrics": metrics}],
    }]})


def _tokens(tenant: str, token_type: str, total: float, count: int = 1) -> HistogramPoint:
    return ({semconv.TENANT_ID: tenant, semconv.GEN_AI_TOKEN_TYPE: token_type,
             semconv.GEN_AI_REQUEST_MODEL: "m"}, total, count)


def _request(index: int, tenant: str, seconds: float, error: bool = False,
             tokens: tuple[int, int] = (100, 10), cost: float = 0.001) -> list[dict[str, Any]]:
    """The api spans of one answered question: root, retrieval, streamed chat."""
    trace = f"{index + 1:032x}"
    root, retrieval, chat = f"{index + 1:04x}000000000001", f"{index + 1:04x}000000000002", \
        f"{index + 1:04x}000000000003"
    start = index * 10.0
    return [
        _span(trace, root, "", "POST /ask", start, seconds, SERVER, error, tenant__id=tenant),
        _span(trace, retrieval, root, "retrieval docs", start + 0.001, seconds / 10, CLIENT,
              gen_ai__operation__name="retrieval", rag__retrieval__document_count=4),
        _span(trace, chat, root, "chat m", start + seconds / 5, seconds / 2, CLIENT, error,
              gen_ai__operation__name="chat", gen_ai__usage__input_tokens=tokens[0],
              gen_ai__usage__output_tokens=tokens[1], gen_ai__usage__cost__amount=cost,
              gen_ai__response__time_to_first_chunk=seconds / 8,
              llm__time_per_output_chunk__mean=seconds / 100, llm__output_chunk__count=tokens[1]),
    ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def _write(folder: Path, name: str, lines: list[str]) -> None:
    (folder / name).write_text("".join(line + "\n" for line in lines))


# --- requests, latency, errors -------------------------------------------------------------------


def test_requests_are_genai_traces_and_latency_is_their_root_duration(folder: Path) -> None:
    durations = [0.12, 0.25, 0.41, 0.83, 1.7, 3.9]
    spans = [s for i, d in enumerate(durations)
             for s in _request(i, "acme", d, error=(i == 2))]
    # A trace with no GenAI span (a health check, a feedback call) is not a request.
    spans.append(_span("f" * 32, "ffff000000000001", "", "POST /feedback", 99.0, 0.01, SERVER))
    _write(folder, "traces-rag-api-1.jsonl", [_traces_line("rag-api", spans[:7]),
                                              _traces_line("rag-api", spans[7:])])

    built = report.build_report(folder)

    assert built.requests == len(durations)
    assert built.errors == 1 and built.error_rate == pytest.approx(1 / len(durations))
    assert built.latency is not None
    assert built.latency.p50 == pytest.approx(float(np.percentile(durations, 50)), rel=1e-9)
    assert built.latency.p99 == pytest.approx(float(np.percentile(durations, 99)), rel=1e-9)
    assert built.ttft is not None
    assert built.ttft.p50 == pytest.approx(float(np.percentile([d / 8 for d in durations], 50)))
    assert built.tbt is not None
    assert built.tbt.p99 == pytest.approx(float(np.percentile([d / 100 for d in durations], 99)))


def test_a_root_continued_from_an_unseen_parent_still_counts(folder: Path) -> None:
    spans = _request(0, "acme", 0.5)
    spans[0]["parentSpanId"] = "abababababababab"  # the caller's span is not in the data
    for child in spans[1:]:
        child["parentSpanId"] = spans[0]["spanId"]
    _write(folder, "traces-a.jsonl", [_traces_line("rag-api", spans)])

    built = report.build_report(folder)

    assert built.requests == 1
    assert built.latency is not None and built.latency.p50 == pytest.approx(0.5)
    assert built.waterfall is not None and built.waterfall.rows[0].name == "POST /ask"


# --- tokens and cost from metrics ----------------------------------------------------------------


def test_tenant_usage_uses_final_cumulative_values_summed_over_processes(folder: Path) -> None:
    early, final, other = (200.0, 20.0, 0.002), (500.0, 60.0, 0.005), (300.0, 30.0, 0.003)

    def line(instance: str, values: tuple[float, float, float], at: int) -> str:
        return _metrics_line("rag-api", instance, [
            _histogram(semconv.METRIC_TOKEN_USAGE, [_tokens("acme", "input", values[0]),
                                                    _tokens("acme", "output", values[1])], at),
            _sum(semconv.METRIC_COST, [({semconv.TENANT_ID: "acme"}, values[2])], at),
        ])

    # Two lines from one process (cumulative: the later one wins), one from another process.
    _write(folder, "metrics-rag-api-1.jsonl", [line("p1", early, 1), line("p1", final, 2)])
    _write(folder, "metrics-rag-api-2.jsonl", [line("p2", other, 1)])

    (row,) = report.build_report(folder).tenants

    assert row.tenant == "acme" and row.requests == 0
    assert row.input_tokens == final[0] + other[0]
    assert row.output_tokens == final[1] + other[1]
    assert row.cost_usd == pytest.approx(final[2] + other[2])


def test_delta_temporality_points_are_added_up(folder: Path) -> None:
    costs = [0.25, 0.5, 0.125]
    _write(folder, "metrics-x.jsonl", [
        _metrics_line("svc", "p", [_sum(semconv.METRIC_COST, [({semconv.TENANT_ID: "t"}, c)],
                                        at=i, temporality=1)])
        for i, c in enumerate(costs)
    ])
    (row,) = report.build_report(folder).tenants
    assert row.cost_usd == pytest.approx(math.fsum(costs))


def test_span_totals_are_checked_against_metric_totals(folder: Path) -> None:
    usage = [(120, 12, 0.0011), (80, 40, 0.0023)]
    spans = [s for i, (i_t, o_t, c) in enumerate(usage)
             for s in _request(i, "acme", 0.3, tokens=(i_t, o_t), cost=c)]
    _write(folder, "traces.jsonl", [_traces_line("rag-api", spans)])
    inputs, outputs = sum(u[0] for u in usage), sum(u[1] for u in usage)
    cost = math.fsum(u[2] for u in usage)

    def metrics(input_total: float) -> str:
        return _metrics_line("rag-api", "p", [
            _histogram(semconv.METRIC_TOKEN_USAGE, [_tokens("acme", "input", input_total, 2),
                                                    _tokens("acme", "output", outputs, 2)], 1),
            _sum(semconv.METRIC_COST, [({semconv.TENANT_ID: "acme"}, cost)], 1),
        ])

    _write(folder, "metrics.jsonl", [metrics(inputs)])
    assert report.build_report(folder).consistency.consistent

    _write(folder, "metrics.jsonl", [metrics(inputs - 1)])  # one token short
    check = report.build_report(folder).consistency
    assert not check.consistent
    assert (check.span_input_tokens, check.metric_input_tokens) == (inputs, inputs - 1)


# --- feedback, waterfall, robustness -------------------------------------------------------------


def test_feedback_summary_counts_kinds_scores_and_links(folder: Path) -> None:
    answered = _request(0, "acme", 0.4)
    known = answered[0]["traceId"]
    scores = [0.25, 0.75]
    feedback = [
        ("thumbs_up", None, known), ("thumbs_down", None, known),
        ("score", scores[0], known), ("score", scores[1], "e" * 32),  # unknown trace
    ]
    spans = answered + [
        _span(f"{9 + i:032x}", f"{9 + i:016x}", "", f"feedback {kind}", 50.0 + i, 0.001,
              links=((trace, answered[0]["spanId"]),),
              **{"rag__feedback__kind": kind, "rag__feedback__trace_id": trace,
                 **({"rag__feedback__score": score} if score is not None else {})})
        for i, (kind, score, trace) in enumerate(feedback)
    ]
    _write(folder, "traces.jsonl", [_traces_line("rag-api", spans)])

    summary = report.build_report(folder).feedback

    assert summary.total == len(feedback)
    assert dict(summary.by_kind) == {"score": 2, "thumbs_down": 1, "thumbs_up": 1}
    assert summary.score_mean == pytest.approx(sum(scores) / len(scores))
    assert summary.linked == sum(1 for *_, trace in feedback if trace == known)


def test_waterfall_is_the_median_successful_request_in_tree_order(folder: Path) -> None:
    durations = [0.2, 0.9, 0.5, 3.0, 0.6, 0.7]  # the 3.0 s one failed
    spans = [s for i, d in enumerate(durations) for s in _request(i, "acme", d, error=(d == 3.0))]
    ok = [d for d in durations if d != 3.0]
    expected = min(ok, key=lambda d: abs(d - float(np.percentile(ok, 50))))
    first = 3 * durations.index(expected)  # _request writes three spans per request
    median_trace = spans[first]["traceId"]
    downstream = _span(median_trace, "aaaa000000000009", spans[first + 2]["spanId"],
                       "POST /v1/chat/completions", first / 3 * 10 + 0.15, 0.2, SERVER)
    _write(folder, "traces-api.jsonl", [_traces_line("rag-api", spans)])
    _write(folder, "traces-llm.jsonl", [_traces_line("rag-llm", [downstream])])

    waterfall = report.build_report(folder).waterfall

    assert waterfall is not None and waterfall.trace_id == median_trace
    assert waterfall.duration_s == pytest.approx(expected)
    assert [(r.depth, r.service, r.name) for r in waterfall.rows] == [
        (0, "rag-api", "POST /ask"), (1, "rag-api", "retrieval docs"),
        (1, "rag-api", "chat m"), (2, "rag-llm", "POST /v1/chat/completions"),
    ]
    chat = waterfall.rows[2]
    assert chat.ttft_s == pytest.approx(expected / 8) and chat.chunks == 10
    assert chat.offset_s == pytest.approx(expected / 5)


def test_unreadable_lines_are_counted_and_skipped(folder: Path) -> None:
    good = _traces_line("rag-api", _request(0, "acme", 0.3))
    _write(folder, "traces.jsonl", [good, good[: len(good) // 2], "not json"])
    built = report.build_report(folder)
    assert built.unreadable_lines == 2 and built.requests == 1


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=50),
       st.sampled_from([0, 1, 25, 50, 90, 99, 100]))
def test_percentile_matches_numpy(values: list[float], q: int) -> None:
    assert report.percentile(values, q) == pytest.approx(float(np.percentile(values, q)),
                                                         rel=1e-9, abs=1e-9)


# --- rendering and the command -------------------------------------------------------------------


class _AsciiOut(io.StringIO):
    encoding = "ascii"


def _sample(folder: Path) -> report.Report:
    spans = [s for i, t in enumerate(["acme", "globex"]) for s in _request(i, t, 0.3 + i)]
    _write(folder, "traces.jsonl", [_traces_line("rag-api", spans)])
    _write(folder, "metrics.jsonl", [_metrics_line("rag-api", "p", [
        _histogram(semconv.METRIC_TOKEN_USAGE, [_tokens("acme", "input", 1234),
                                                _tokens("globex", "output", 56)], 1),
    ])])
    return report.build_report(folder)


def test_render_shows_waterfall_tenants_and_rates(folder: Path) -> None:
    built = _sample(folder)
    out = io.StringIO()
    report.render(built, out)
    text = out.getvalue()
    assert built.waterfall is not None and built.waterfall.trace_id in text
    assert "1,234" in text and "globex" in text and "error rate" in text
    assert "█" in text


def test_render_falls_back_to_ascii(folder: Path) -> None:
    out = _AsciiOut()
    report.render(_sample(folder), out)
    out.getvalue().encode("ascii")  # raises if anything non-ASCII slipped through


def _run(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = report.run(parser.parse_args(list(argv)))
    return code, out.getvalue(), err.getvalue()


def test_command_exit_codes_and_json(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert _run(str(folder / "missing"))[0] == 2
    empty = tmp_path_factory.mktemp("empty")
    code, _, err = _run(str(empty))
    assert code == 1 and "no OTLP JSON telemetry" in err
    built = _sample(folder)
    code, out, _ = _run(str(folder), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["requests"] == built.requests
    assert data["tenants"][0]["input_tokens"] == built.tenants[0].input_tokens
    assert data["consistency"]["consistent"] == built.consistency.consistent
