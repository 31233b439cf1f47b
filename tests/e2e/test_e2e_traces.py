"""Jaeger: one answer is one trace across api, vectordb and llm, with the GenAI attributes."""

from __future__ import annotations

import pytest
from e2e_clients import Jaeger, Span, Trace
from e2e_demo import SERVICES, Asked, Traffic

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def streamed(traffic: Traffic) -> Asked:
    return next(a for a in traffic.ledger if a.stream)


@pytest.fixture(scope="module")
def trace(jaeger: Jaeger, streamed: Asked) -> Trace:
    return jaeger.wait_trace(streamed.trace_id, SERVICES)


def _ancestors(trace: Trace, span: Span) -> list[Span]:
    chain = []
    parent = trace.parent(span)
    while parent is not None:
        chain.append(parent)
        parent = trace.parent(parent)
    return chain


def test_trace_spans_all_three_services_linked_parent_to_child(
    trace: Trace, streamed: Asked
) -> None:
    assert trace.services == set(SERVICES)
    (root,) = trace.roots()
    assert (root.service, root.operation, root.kind) == ("rag-api", "POST /ask", "server")
    assert not trace.dangling(), "every span's parent is in the same trace"
    for service in ("rag-vectordb", "rag-llm"):
        entry = [s for s in trace.spans if s.service == service and s.kind == "server"]
        assert len(entry) == 1, f"one server span in {service}: {entry}"
        caller = trace.parent(entry[0])
        assert caller is not None and caller.service == "rag-api" and caller.kind == "client", (
            f"{service}'s server span is the child of an api client span, got {caller}"
        )
        assert root in _ancestors(trace, entry[0])
    # Tenant from the api key, propagated in baggage onto every span of every service.
    assert {s.tags.get("tenant.id") for s in trace.spans} == {streamed.tenant}


def test_generation_span_has_tokens_ttft_and_cost(trace: Trace, streamed: Asked) -> None:
    (generation,) = trace.generations()
    tags = generation.tags
    assert generation.kind == "client"
    assert generation.operation == f"chat {tags['gen_ai.request.model']}"
    assert tags["gen_ai.operation.name"] == "chat"
    # The tokens the api returned to the client are the ones on the span.
    assert tags["gen_ai.usage.input_tokens"] == streamed.prompt_tokens > 0
    assert tags["gen_ai.usage.output_tokens"] == streamed.completion_tokens > 0
    assert tags["llm.usage.estimated"] is False
    ttft = tags["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttft < generation.duration_us / 1e6
    assert tags["llm.time_per_output_chunk.mean"] > 0
    assert tags["gen_ai.usage.cost.amount"] > 0
    assert tags["gen_ai.usage.cost.currency"] == "USD"
    assert tags["tenant.id"] == streamed.tenant


def test_retrieval_span_has_document_count_and_scores(trace: Trace) -> None:
    (retrieval,) = trace.where(**{"gen_ai.operation.name": "retrieval"})
    tags = retrieval.tags
    assert retrieval.service == "rag-vectordb"
    assert retrieval.operation == f"retrieval {tags['gen_ai.data_source.id']}"
    count = tags["rag.retrieval.document_count"]
    assert 0 < count <= tags["gen_ai.retrieval.top_k"]
    assert "gen_ai.request.top_k" not in tags  # sampling top-k: not a retrieval attribute
    low, mean, high = (tags[f"rag.retrieval.score.{k}"] for k in ("min", "mean", "max"))
    assert 0 <= low <= mean <= high <= 1
    # Content capture is off in the demo: no query text or documents on the span.
    assert "gen_ai.retrieval.query.text" not in tags
    assert "gen_ai.retrieval.documents" not in tags


def test_every_answer_is_a_trace_in_jaeger(traffic: Traffic, jaeger: Jaeger) -> None:
    for asked in traffic.ledger:
        trace = jaeger.wait_trace(asked.trace_id, SERVICES)
        tenants = {s.tags.get("tenant.id") for s in trace.spans}
        assert tenants == {asked.tenant}, (asked, tenants)
