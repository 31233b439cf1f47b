"""Drift monitors for the four health signals of a RAG service.

Retrieval and generation drift long before anyone files a bug: a new kind of question the
corpus does not cover lowers the retrieval top score, a changed index returns fewer
documents, a model update changes answer length, and answers stop being grounded in the
retrieved text. Each is a numeric feature of one :class:`~otel_ml.drift.DriftMonitor`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

from opentelemetry.metrics import Meter

from otel_ml import semconv
from otel_ml.drift._monitor import DriftMonitor
from otel_ml.drift._reference import FeatureSpec, PathLike, load_reference
from otel_ml.drift._stats import NUMERIC, clean

RAG_FEATURES: Final = (
    semconv.RAG_RETRIEVAL_SCORE_MAX,
    semconv.RAG_RETRIEVAL_DOCUMENT_COUNT,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.RAG_GROUNDEDNESS_SCORE,
)


def rag_monitor(
    reference: Mapping[str, Iterable[float]] | PathLike,
    meter: Meter | None = None,
    **options: Any,
) -> DriftMonitor:
    """A monitor for the four RAG health signals, fed with :func:`feed_rag`.

    ``reference`` maps each name in :data:`RAG_FEATURES` (retrieval top score, document count,
    answer length in output tokens, groundedness score) to healthy values, or is a file from
    :func:`save_reference`. ``options`` go to :class:`DriftMonitor`.
    """
    if isinstance(reference, (str, os.PathLike)):
        specs = load_reference(reference)
    else:
        specs = [
            FeatureSpec(name, NUMERIC, clean(values, NUMERIC)) for name, values in reference.items()
        ]
    missing = sorted(set(RAG_FEATURES) - {spec.name for spec in specs})
    if missing:
        raise ValueError(f"rag_monitor reference lacks {missing}")
    monitor = DriftMonitor(meter, **options)
    for spec in specs:
        monitor.add_spec(spec)
    return monitor


def feed_rag(
    monitor: DriftMonitor,
    *,
    top_score: float | None,
    document_count: int | None,
    answer_tokens: int | None,
    groundedness: float | None,
) -> None:
    """Feed one RAG request; None marks a signal that was not measured (counted as missing)."""
    monitor.observe(
        {
            semconv.RAG_RETRIEVAL_SCORE_MAX: top_score,
            semconv.RAG_RETRIEVAL_DOCUMENT_COUNT: document_count,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: answer_tokens,
            semconv.RAG_GROUNDEDNESS_SCORE: groundedness,
        }
    )
