"""Drift, data-quality and model-quality monitoring, exported as OpenTelemetry gauges.

The public entry point: import from here, not from the modules below, which split the work
by job and may move.

- :mod:`otel_ml.drift._monitor`: :class:`DriftMonitor` (windows, recompute, data quality,
  the exported gauges) and its reports;
- :mod:`otel_ml.drift._reference`: :class:`FeatureSpec` and the reference files;
- :mod:`otel_ml.drift._labels`: proxy metrics and delayed labels (:class:`ModelReport`);
- :mod:`otel_ml.drift._rag`: :func:`rag_monitor` / :func:`feed_rag` for RAG services;
- :mod:`otel_ml.drift._stats`: the statistics themselves.
"""

from __future__ import annotations

from otel_ml.drift._labels import POSITIVE_RATE_DELTA, ModelReport
from otel_ml.drift._monitor import (
    MISSING_FIELD,
    NEW_FIELD,
    TYPE_CHANGE,
    DriftMonitor,
    DriftReport,
    FeatureReport,
    SchemaViolationKind,
)
from otel_ml.drift._rag import RAG_FEATURES, feed_rag, rag_monitor
from otel_ml.drift._reference import FeatureSpec, PathLike, load_reference, save_reference
from otel_ml.drift._stats import (
    CATEGORICAL,
    NUMERIC,
    DriftDefaults,
    FeatureKind,
    Method,
    StatResult,
)

__all__ = [
    "CATEGORICAL",
    "MISSING_FIELD",
    "NEW_FIELD",
    "NUMERIC",
    "POSITIVE_RATE_DELTA",
    "RAG_FEATURES",
    "TYPE_CHANGE",
    "DriftDefaults",
    "DriftMonitor",
    "DriftReport",
    "FeatureKind",
    "FeatureReport",
    "FeatureSpec",
    "Method",
    "ModelReport",
    "PathLike",
    "SchemaViolationKind",
    "StatResult",
    "feed_rag",
    "load_reference",
    "rag_monitor",
    "save_reference",
]
