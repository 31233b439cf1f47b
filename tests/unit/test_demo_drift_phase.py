"""The demo's drift pieces on their own: the drift phase's questions and plan, the api's
drift settings and top score, the committed reference, and reading a reference from spans.

In-process and fast: the real index, simulator and scorer, no service (the integration
test tests/integration/test_demo_drift.py runs them).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from demo_rag import api, corpus, driver, make_reference
from demo_rag.embeddings import VectorIndex
from demo_rag.grounding import overlap_score
from demo_rag.simulator import NO_ANSWER, SimConfig, SimulatedModel
from otel_ml import semconv
from otel_ml.cli import report
from otel_ml.drift import RAG_FEATURES, load_reference

SERVER, CLIENT = report.SPAN_KIND_SERVER, report.SPAN_KIND_CLIENT


@pytest.fixture(scope="module")
def index() -> VectorIndex:
    return VectorIndex(corpus.load())


def _answer(index: VectorIndex, question: str) -> tuple[float, str, float]:
    """Top score, simulated answer and its groundedness, as the api would get them."""
    found = index.search(question, 4)
    hits: list[dict[str, Any]] = [
        {"id": h.id, "title": h.title, "text": h.text, "score": h.score} for h in found
    ]
    model = SimulatedModel(SimConfig(hallucination_rate=0.0, error_rate=0.0, seed=1))
    text = model.plan(api.build_messages(question, hits)).text
    return api.top_score(hits), text, overlap_score(text, [h.text for h in found])


# --- the drift phase ------------------------------------------------------------------------


def test_drift_questions_are_out_of_corpus(index: VectorIndex) -> None:
    corpus_scores = [_answer(index, q.text)[0] for q in corpus.questions()]
    lower_quartile = float(np.percentile(corpus_scores, 25))
    for question in driver.DRIFT_QUESTIONS:
        score, text, groundedness = _answer(index, question)
        assert text == NO_ANSWER, question
        assert groundedness < 0.5, question
        assert score < lower_quartile, question


def test_drift_phase_plan_is_deterministic_and_numbered_after_the_first_phase() -> None:
    tenants = ("a", "b", "c")
    jobs = driver.plan_drift_jobs(20, tenants, seed=5, start=60)
    assert jobs == driver.plan_drift_jobs(20, tenants, seed=5, start=60)
    assert [j.index for j in jobs] == list(range(60, 80))
    assert [j.tenant for j in jobs] == [tenants[i % 3] for i in range(60, 80)]
    assert {j.question for j in jobs} <= set(driver.DRIFT_QUESTIONS)
    assert len({j.question for j in jobs}) > 5
    assert jobs != driver.plan_drift_jobs(20, tenants, seed=6, start=60)


def test_drift_flag_is_parsed() -> None:
    parser = argparse.ArgumentParser()
    driver.add_arguments(parser)
    assert parser.parse_args(["--drift"]).drift is True
    assert parser.parse_args([]).drift is False


# --- the api's drift settings and signals ---------------------------------------------------

_URLS = {"VECTORDB_URL": "http://v", "LLM_URL": "http://l"}


def test_drift_settings_default_to_the_bundled_reference() -> None:
    settings = api.Settings.from_env(_URLS)
    assert settings.drift_reference == api.DRIFT_REFERENCE
    assert settings.drift_interval_s == 10.0


def test_drift_settings_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ref.json"
    settings = api.Settings.from_env({**_URLS, api.DRIFT_REFERENCE_ENV: str(path),
                                      api.DRIFT_INTERVAL_ENV: "0.5"})
    assert (settings.drift_reference, settings.drift_interval_s) == (path, 0.5)
    off = api.Settings.from_env({**_URLS, api.DRIFT_REFERENCE_ENV: ""})
    assert off.drift_reference is None


@pytest.mark.parametrize("interval", ["0", "-1", "nan"])
def test_drift_interval_must_be_positive(interval: str) -> None:
    with pytest.raises(RuntimeError, match=api.DRIFT_INTERVAL_ENV):
        api.Settings.from_env({**_URLS, api.DRIFT_INTERVAL_ENV: interval})


def test_top_score_is_the_best_hit_and_zero_without_hits() -> None:
    assert api.top_score([{"score": 0.2}, {"score": 0.7}, {"score": 0.4}]) == 0.7
    assert api.top_score([]) == 0.0


def test_committed_reference_has_every_rag_feature() -> None:
    specs = {spec.name: spec for spec in load_reference(api.DRIFT_REFERENCE)}
    assert set(specs) == set(RAG_FEATURES)
    for spec in specs.values():
        assert spec.reference is not None and spec.reference.size >= 300
    groundedness = specs[semconv.RAG_GROUNDEDNESS_SCORE].reference
    assert groundedness is not None and 0.0 <= groundedness.min() <= groundedness.max() <= 1.0


# --- reading a reference from spans ---------------------------------------------------------


def _span(trace: int, span: int, service: str, kind: int, attributes: dict[str, Any],
          parent: int = 0, error: bool = False) -> report.Span:
    return report.Span(
        service=service, trace_id=f"{trace:032x}", span_id=f"{span:016x}",
        parent_span_id=f"{parent:016x}" if parent else "", name="s", kind=kind,
        start_ns=0, end_ns=1, attributes=attributes, status_code=2 if error else 0,
    )


def _chat(stream: bool, tokens: int) -> dict[str, Any]:
    return {semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
            semconv.GEN_AI_REQUEST_STREAM: stream, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: tokens}


def _request(trace: int, *, score: float | None, docs: int, tokens: int,
             groundedness: float | None, error: bool = False) -> list[report.Span]:
    # The api's span counts the documents the answer used; the retrieval span counts
    # what Chroma returned, zero-score rows included (here always 4).
    root: dict[str, Any] = {semconv.RAG_RETRIEVAL_DOCUMENT_COUNT: docs}
    if groundedness is not None:
        root[semconv.RAG_GROUNDEDNESS_SCORE] = groundedness
    retrieval: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL,
                                 semconv.RAG_RETRIEVAL_DOCUMENT_COUNT: 4}
    if score is not None:
        retrieval[semconv.RAG_RETRIEVAL_SCORE_MAX] = score
    return [
        _span(trace, 1, api.SERVICE_NAME, SERVER, root, error=error),
        _span(trace, 2, "rag-vectordb", CLIENT, retrieval, parent=1),
        _span(trace, 3, api.SERVICE_NAME, CLIENT, _chat(True, tokens), parent=1),
        # A judge call: not streamed, so not the answer's length.
        _span(trace, 4, api.SERVICE_NAME, CLIENT, _chat(False, 2), parent=1),
    ]


def test_reference_values_come_from_answered_requests_only() -> None:
    spans = [
        *_request(1, score=0.6, docs=4, tokens=40, groundedness=1.0),
        *_request(2, score=None, docs=0, tokens=11, groundedness=0.0),  # no hit: score 0
        *_request(3, score=0.3, docs=3, tokens=30, groundedness=0.8),
        *_request(4, score=0.9, docs=4, tokens=50, groundedness=None),  # not scored
        *_request(5, score=0.9, docs=4, tokens=50, groundedness=1.0, error=True),
    ]
    assert make_reference.reference_values(spans) == {
        semconv.RAG_RETRIEVAL_SCORE_MAX: [0.0, 0.3, 0.6],
        semconv.RAG_RETRIEVAL_DOCUMENT_COUNT: [0.0, 3.0, 4.0],
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: [11.0, 30.0, 40.0],
        semconv.RAG_GROUNDEDNESS_SCORE: [0.0, 0.8, 1.0],
    }


def test_reference_values_of_no_spans_are_empty() -> None:
    assert make_reference.reference_values([]) == {name: [] for name in RAG_FEATURES}
