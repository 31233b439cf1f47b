"""The LLM-as-judge groundedness evaluation (otel_ml.evaluation), through the real llm service."""

from __future__ import annotations

from pathlib import Path

import httpx
from demo_files import CLIENT, by_trace, final_points, load_spans

from demo_rag import corpus
from demo_rag.api import API_KEY_HEADER
from demo_rag.grounding import overlap_score
from demo_rag.launcher import launch
from otel_ml import semconv
from otel_ml.evaluation import DEFAULT_JUDGE_TENANT

ENV = {"DEMO_RAG_GROUNDEDNESS": "llm_judge", "LLM_SIM_ERROR_RATE": "0", "LLM_SIM_SEED": "1",
       "LLM_SIM_TTFT_MS": "20", "LLM_SIM_TBT_MS": "2", "LLM_SIM_HALLUCINATION_RATE": "1"}


def test_judge_scores_the_answer_in_a_traced_billed_call(tmp_path: Path) -> None:
    with launch(out_dir=tmp_path, env=ENV, tenants=("acme",)) as services:
        response = httpx.post(
            f"{services.api}/ask", headers={API_KEY_HEADER: services.api_keys["acme"]},
            json={"question": "How long are Log Search backups kept?"}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    texts = {d.id: d.text for d in corpus.load()}
    # The simulated judge grades with the offline groundedness score, to two decimals.
    expected = round(overlap_score(body["answer"], [texts[i] for i in body["sources"]]), 2)
    assert body["groundedness"] == expected < 1.0  # the answer had an unsupported sentence
    spans = by_trace(load_spans(tmp_path))[body["trace_id"]]
    root = next(s for s in spans if s.name == "POST /ask")
    assert root.attrs[semconv.RAG_GROUNDEDNESS_SCORE] == expected
    chats = [s for s in spans if s.kind == CLIENT and s.name.startswith("chat ")]
    assert len(chats) == 2  # the answer, then the judge: each its own generation span
    assert all(s.parent == root.span_id for s in chats)
    assert all(s.attrs[semconv.GEN_AI_USAGE_COST_AMOUNT] > 0 for s in chats)
    # The answer is billed to the tenant, the judge to the evaluation tenant.
    assert sorted(s.attrs[semconv.TENANT_ID] for s in chats) == sorted(
        ["acme", DEFAULT_JUDGE_TENANT])
    recorded = [p for p in final_points(tmp_path)
                if p.metric == semconv.METRIC_EVALUATION_SCORE
                and p.attrs.get(semconv.GEN_AI_EVALUATION_NAME) == "groundedness"]
    assert [(p.point["count"], p.point["sum"], p.attrs[semconv.GEN_AI_EVALUATION_SCORE_LABEL],
             p.attrs[semconv.TENANT_ID]) for p in recorded] == [
        ("1", expected, "unsupported", "acme")]
    costs = {p.attrs[semconv.TENANT_ID] for p in final_points(tmp_path)
             if p.metric == semconv.METRIC_COST}
    assert costs == {"acme", DEFAULT_JUDGE_TENANT}
