"""Feedback sent to the api is linked to the trace of the answer it is about."""

from __future__ import annotations

from collections import Counter

from conftest import DemoRun
from demo_files import by_trace, final_points, load_spans

from otel_ml import semconv


def test_feedback_spans_link_to_the_answer_they_rate(demo: DemoRun) -> None:
    spans = load_spans(demo.out_dir)
    traces = by_trace(spans)
    feedback_spans = [s for s in spans if semconv.RAG_FEEDBACK_KIND in s.attrs]
    assert len(demo.feedback) == 4
    for sent in demo.feedback:
        assert sent.linked
        matching = [s for s in feedback_spans
                    if s.attrs[semconv.RAG_FEEDBACK_TRACE_ID] == sent.trace_id
                    and s.attrs[semconv.RAG_FEEDBACK_KIND] == sent.kind
                    and s.attrs.get(semconv.RAG_FEEDBACK_SCORE) == sent.score]
        assert len(matching) >= 1, sent
        span = matching[0]
        assert span.name == f"feedback {sent.kind}"
        assert span.attrs[semconv.TENANT_ID] == sent.tenant
        root = next(s for s in traces[sent.trace_id] if s.name == "POST /ask")
        assert (sent.trace_id, root.span_id) in span.links


def test_feedback_on_another_tenants_answer_is_refused(demo: DemoRun) -> None:
    assert demo.cross_tenant_feedback_status == 403
    victim = demo.answered[0]
    raters = {s.attrs[semconv.TENANT_ID] for s in load_spans(demo.out_dir)
              if s.attrs.get(semconv.RAG_FEEDBACK_TRACE_ID) == victim.trace_id}
    assert raters == {victim.job.tenant}


def test_feedback_counter_matches_the_feedback_sent(demo: DemoRun) -> None:
    sent: Counter[tuple[str, str]] = Counter()
    for outcome in demo.outcomes:  # the driver's simulated users
        if outcome.feedback:
            sent[(outcome.feedback, outcome.job.tenant)] += 1
    for explicit in demo.feedback:
        sent[(explicit.kind, explicit.tenant)] += 1
    counted: Counter[tuple[str, str]] = Counter()
    for point in final_points(demo.out_dir):
        if point.metric == semconv.METRIC_FEEDBACK:
            key = (point.attrs[semconv.FEEDBACK_KIND], point.attrs[semconv.TENANT_ID])
            counted[key] += int(point.point["asInt"])
    assert counted == sent
