"""``otel-ml report`` reads evaluations from the exported llm.evaluation.score
histogram: per evaluation, answers, mean and labels, and the hallucination rate."""

from __future__ import annotations

import atexit
import io
from pathlib import Path

import pytest
from evaluation_support import fresh_globals

import otel_ml
from otel_ml.cli import report
from otel_ml.evaluation import AnswerRelevance, EvaluationInput, Groundedness

CONTEXT = ("By default each project can create up to 17 buckets in Object Storage. The quota "
           "can be raised to 187 by opening a support ticket.")
QUESTION = "How many buckets can a project create?"
ANSWERS = (
    "By default each project can create up to 17 buckets in Object Storage.",  # supported
    "The quota can be raised to 187 by opening a support ticket.",  # supported
    "By default each project can create up to 187 buckets.",  # changed number
    "Each project can create 17 buckets. Support is free for everyone.",  # 1 of 2
)


def test_report_summarises_evaluations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh_globals(monkeypatch, tmp_path)
    tel = otel_ml.configure(service_name="rag-api", flush_on_sigterm=False)
    try:
        with tel.tenant("acme"):
            for answer in ANSWERS:
                tel.evaluate(None, EvaluationInput(answer, (CONTEXT,), QUESTION, model="m"),
                             [Groundedness(), AnswerRelevance()])
    finally:
        tel.shutdown()
        atexit.unregister(tel.shutdown)
    built = report.build_report(tmp_path)
    grounded, relevance = (
        next(r for r in built.evaluations if r.name == name)
        for name in ("groundedness", "answer_relevance"))
    assert (grounded.count, grounded.labels) == (4, {"supported": 2, "unsupported": 2})
    assert grounded.mean == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert (built.groundedness_mean, built.groundedness_count) == (grounded.mean, 4)
    assert built.hallucination_rate == 0.5
    assert relevance.count == 4
    out = io.StringIO()
    report.render(built, out)
    text = out.getvalue()
    assert "groundedness: mean 0.625 over 4 answers (supported 2, unsupported 2)" in text
    assert "hallucination rate: 50.0% of evaluated answers unsupported" in text
