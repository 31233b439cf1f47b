"""Drift, data-quality and model-quality monitoring, exported as OpenTelemetry gauges.

The public entry point: import from here. The private modules below split the work by job;
their names and contents may change without notice, this module's ``__all__`` may not.

- :mod:`otel_ml.drift._monitor`: :class:`DriftMonitor` (windows, recompute, data quality,
  the exported gauges) and its reports;
- :mod:`otel_ml.drift._reference`: :class:`FeatureSpec` and the reference files;
- :mod:`otel_ml.drift._fairness`: group fairness measures (fairlearn's, in numpy);
- :mod:`otel_ml.drift._groups`: the monitor's group-aware mode (bias drift);
- :mod:`otel_ml.drift._labels`: proxy metrics and delayed labels (:class:`ModelReport`);
- :mod:`otel_ml.drift._rag`: :func:`rag_monitor` / :func:`feed_rag` for RAG services;
- :mod:`otel_ml.drift._stats`: the statistics, also usable one-shot in notebooks
  (:func:`ks_test`, :func:`psi`, :func:`compare`, ...).

Importing this package loads numpy and scipy (the ``drift`` extra), which is why
``import otel_ml`` never imports it: a service that does not monitor drift does not pay for
them. It uses the OpenTelemetry API only, never the SDK: the gauges go to whatever
MeterProvider the process installed (the API's no-op one if none), and opentelemetry-sdk stays
an optional dependency.
"""

from __future__ import annotations

from otel_ml.drift._fairness import (
    DEMOGRAPHIC_PARITY_DIFFERENCE,
    DEMOGRAPHIC_PARITY_RATIO,
    EQUAL_OPPORTUNITY_DIFFERENCE,
    DisparityMethod,
    GroupRates,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    selection_rates,
    true_positive_rates,
)
from otel_ml.drift._groups import FairnessReport, GroupStats
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
    PreparedReference,
    PsiBand,
    StatResult,
    category_key,
    chi_square_test,
    clean,
    compare,
    jensen_shannon,
    kl_divergence,
    ks_test,
    psi,
    psi_band,
    wasserstein_normed,
)

__all__ = [
    "CATEGORICAL",
    "DEMOGRAPHIC_PARITY_DIFFERENCE",
    "DEMOGRAPHIC_PARITY_RATIO",
    "EQUAL_OPPORTUNITY_DIFFERENCE",
    "MISSING_FIELD",
    "NEW_FIELD",
    "NUMERIC",
    "POSITIVE_RATE_DELTA",
    "RAG_FEATURES",
    "TYPE_CHANGE",
    "DisparityMethod",
    "DriftDefaults",
    "DriftMonitor",
    "DriftReport",
    "FairnessReport",
    "FeatureKind",
    "FeatureReport",
    "FeatureSpec",
    "GroupRates",
    "GroupStats",
    "Method",
    "ModelReport",
    "PathLike",
    "PreparedReference",
    "PsiBand",
    "SchemaViolationKind",
    "StatResult",
    "category_key",
    "chi_square_test",
    "clean",
    "compare",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "feed_rag",
    "jensen_shannon",
    "kl_divergence",
    "ks_test",
    "load_reference",
    "psi",
    "psi_band",
    "rag_monitor",
    "save_reference",
    "selection_rates",
    "true_positive_rates",
    "wasserstein_normed",
]
