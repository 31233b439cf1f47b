"""``db.client.operation.duration``: the database conventions' Stable duration
metric, for every instrumented Chroma call (queries included), so that how
long Chroma took is on dashboards, not only in traces.

The histogram is made once per meter (a ``Telemetry`` has one) and kept
weakly: it belongs to this instrumentation, not to every ``Telemetry``.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from opentelemetry.metrics import Histogram, Meter
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml.spans._scope import Recorder
from otel_ml.spans._validate import error_type

# The attributes the conventions put on the metric (model/db/metrics.yaml):
# low-cardinality ones only, never a query text or a record count.
_METRIC_ATTRIBUTES = (
    semconv.DB_SYSTEM_NAME,
    semconv.DB_COLLECTION_NAME,
    semconv.DB_NAMESPACE,
    semconv.DB_OPERATION_NAME,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
)

_histograms: weakref.WeakKeyDictionary[Any, Histogram] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def operation_duration(meter: Meter) -> Histogram:
    """The ``db.client.operation.duration`` histogram of ``meter``."""
    histogram = _histograms.get(meter)
    if histogram is None:
        with _lock:
            histogram = _histograms.get(meter)
            if histogram is None:
                histogram = meter.create_histogram(
                    semconv.METRIC_DB_CLIENT_OPERATION_DURATION,
                    unit="s",
                    description="Duration of database client operations.",
                    explicit_bucket_boundaries_advisory=semconv.DB_DURATION_BUCKETS,
                )
                _histograms[meter] = histogram
    return histogram


def record_duration(
    recorder: Recorder,
    histogram: Histogram,
    started: float,
    span_attributes: dict[str, AttributeValue],
    exc: BaseException | None,
) -> None:
    """Record one call's duration (``started``: its ``perf_counter()`` at start)
    with the span's low-cardinality attributes, ``error.type`` on failure and,
    as every otel-ml metric, the capped ``tenant.id``."""
    attributes = {
        key: span_attributes[key] for key in _METRIC_ATTRIBUTES if key in span_attributes
    }
    if exc is not None:
        attributes[semconv.ERROR_TYPE] = error_type(exc)
    recorder.tenant_attribute(attributes)
    histogram.record(time.perf_counter() - started, attributes)
