"""Trace structure and tenant identity across the three demo services."""

from __future__ import annotations

from conftest import SPOOFED_TENANT, TENANTS, DemoRun
from demo_files import CLIENT, SERVER, FileSpan, by_trace, final_points, load_spans

from otel_ml import semconv

SERVICES = {"rag-api", "rag-vectordb", "rag-llm"}


def _one(spans: list[FileSpan], service: str, name: str) -> FileSpan:
    found = [s for s in spans if s.service == service and s.name == name]
    assert len(found) == 1, f"expected one {service} {name!r}, got {[s.name for s in spans]}"
    return found[0]


def _parent(spans: list[FileSpan], child: FileSpan) -> FileSpan:
    parents = [s for s in spans if s.span_id == child.parent]
    assert parents, f"{child.service} {child.name} has no parent in its trace"
    return parents[0]


def _status_code(span: FileSpan) -> object:
    # The instrumentation's HTTP semconv: old name by default, new one when opted in.
    return span.attrs.get("http.status_code", span.attrs.get("http.response.status_code"))


def test_each_answer_is_one_trace_across_api_vectordb_and_llm(demo: DemoRun) -> None:
    traces = by_trace(load_spans(demo.out_dir))
    assert demo.answered, "the workload produced no answers"
    for outcome in demo.answered:
        assert outcome.trace_id is not None
        spans = traces[outcome.trace_id]
        assert {s.service for s in spans} == SERVICES
        root = _one(spans, "rag-api", "POST /ask")
        assert root.parent == "" and root.kind == SERVER
        # api -> vectordb: the api's HTTP client span is the parent of vectordb's server span
        search = _one(spans, "rag-vectordb", "POST /search")
        search_client = _parent(spans, search)
        assert (search_client.service, search_client.kind) == ("rag-api", CLIENT)
        assert search_client.parent == root.span_id
        retrieval = _one(spans, "rag-vectordb", "retrieval docs")
        assert retrieval.parent == search.span_id
        # The question is embedded, then the retrieval span is Chroma's query (issue 14).
        embedding = next(s for s in spans if s.name.startswith("embeddings "))
        assert embedding.parent == search.span_id
        # api -> llm: root -> chat span of instrument_openai -> llm server span. The
        # official client sends through httpx2, which no HTTP instrumentation covers:
        # the generation span is the client span, and its context is on the request.
        chats = [s for s in spans if s.service == "rag-api" and s.name.startswith("chat ")]
        assert len(chats) == 1
        chat = chats[0]
        assert chat.parent == root.span_id and chat.kind == CLIENT
        assert chat.attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
        assert isinstance(chat.attrs[semconv.GEN_AI_RESPONSE_ID], str)
        completion = _one(spans, "rag-llm", "POST /v1/chat/completions")
        assert completion.parent == chat.span_id
        # every span hangs off the root: no orphan
        for span in spans:
            if span is not root:
                _parent(spans, span)


def test_a_failed_answer_keeps_its_trace_and_marks_the_error(demo: DemoRun) -> None:
    failed = [o for o in demo.outcomes if not o.ok]
    assert failed, "the seeded simulator should fail some requests (LLM_SIM_ERROR_RATE=0.2)"
    traces = by_trace(load_spans(demo.out_dir))
    for outcome in failed:
        assert outcome.trace_id is not None
        spans = traces[outcome.trace_id]
        assert {s.service for s in spans} == SERVICES
        root = _one(spans, "rag-api", "POST /ask")
        chat = next(s for s in spans if s.name.startswith("chat "))
        completion = _one(spans, "rag-llm", "POST /v1/chat/completions")
        assert root.status == chat.status == completion.status == 2
        assert semconv.ERROR_TYPE in chat.attrs and semconv.ERROR_TYPE in completion.attrs


def test_every_span_of_a_request_carries_the_callers_tenant(demo: DemoRun) -> None:
    spans = load_spans(demo.out_dir)
    traces = by_trace(spans)
    assert all(o.trace_id for o in demo.outcomes)
    expected = {o.trace_id: o.job.tenant for o in demo.outcomes if o.trace_id}
    assert set(expected) <= set(traces)
    for trace_id, tenant in expected.items():
        for span in traces[trace_id]:
            assert span.attrs.get(semconv.TENANT_ID) == tenant, (span.service, span.name)
    seen = {s.service for t in expected for s in traces[t]}
    assert seen == SERVICES
    # Feedback requests are authenticated the same way: their spans carry the tenant too.
    feedback_traces = {s.trace_id for s in spans
                       if s.name == "POST /feedback" or semconv.RAG_FEEDBACK_KIND in s.attrs}
    assert len(feedback_traces) > len(demo.feedback)
    for trace_id in feedback_traces:
        assert all(s.attrs.get(semconv.TENANT_ID) in TENANTS for s in traces[trace_id])


def test_a_tenant_in_client_baggage_is_ignored(demo: DemoRun) -> None:
    assert demo.spoofed_status == 200
    spans = by_trace(load_spans(demo.out_dir))[demo.spoofed_trace_id]
    assert {s.service for s in spans} == SERVICES
    assert {s.attrs.get(semconv.TENANT_ID) for s in spans} == {"acme"}
    # Nor does it reach any metric, whichever service recorded it.
    metric_tenants = {p.attrs[semconv.TENANT_ID] for p in final_points(demo.out_dir)
                      if semconv.TENANT_ID in p.attrs}
    assert SPOOFED_TENANT not in metric_tenants
    assert metric_tenants <= {"acme", "globex", "initech"}


def test_an_unauthenticated_request_is_refused_without_a_tenant(demo: DemoRun) -> None:
    assert demo.unauthenticated_status == 401
    refused = [s for s in load_spans(demo.out_dir)
               if s.name == "POST /ask" and _status_code(s) == 401]
    assert len(refused) == 1
    trace = by_trace(load_spans(demo.out_dir))[refused[0].trace_id]
    assert [s.service for s in trace] == ["rag-api"]  # it went nowhere else
    assert all(semconv.TENANT_ID not in s.attrs for s in trace)
