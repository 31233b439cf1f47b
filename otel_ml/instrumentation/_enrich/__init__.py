"""Cost and tenant for the spans of other GenAI instrumentations (the official
``opentelemetry-instrumentation-genai-*``, OpenInference, OpenLLMetry).

``configure()`` installs it when it builds both providers; with providers of
your own, see :meth:`otel_ml.Telemetry.enrichment_processor` and
:meth:`otel_ml.Telemetry.enrichment_views`. Imports the OTel SDK: only those
two paths import this package. Design and trade-offs: docs/enrichment.md.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics.view import DropAggregation, View
from opentelemetry.sdk.trace import SpanProcessor

from otel_ml import semconv
from otel_ml.instrumentation._enrich._processor import PEER_SCOPES, EnrichingSpanProcessor
from otel_ml.spans import Recorder

# Meters of peers that record gen_ai.client.token.usage themselves, without
# tenant.id. otel-ml records the same histogram, per tenant, for the calls it
# counts; keeping theirs too would double every sum over the metric.
TOKEN_USAGE_PEER_METERS = (
    semconv.PEER_SCOPE_GENAI_OPENAI,
    semconv.PEER_SCOPE_GENAI_UTIL,
    semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V1,
    semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V0,
)


def enrichment_views() -> list[View]:
    """Views that drop the peers' tenant-less ``gen_ai.client.token.usage``,
    for a ``MeterProvider(views=...)`` of your own."""
    return [
        View(
            instrument_name=semconv.METRIC_TOKEN_USAGE,
            meter_name=meter,
            aggregation=DropAggregation(),
        )
        for meter in TOKEN_USAGE_PEER_METERS
    ]


def enrichment_processor(
    own_scope: str, recorder: Recorder | None = None, export: SpanProcessor | None = None
) -> EnrichingSpanProcessor:
    """An :class:`EnrichingSpanProcessor` in front of ``export``; bind it
    later (``.bind(recorder)``) when the recorder does not exist yet."""
    processor = EnrichingSpanProcessor(own_scope, export)
    if recorder is not None:
        processor.bind(recorder)
    return processor


__all__ = [
    "PEER_SCOPES",
    "TOKEN_USAGE_PEER_METERS",
    "EnrichingSpanProcessor",
    "enrichment_processor",
    "enrichment_views",
]
