"""The span processor that adds tenant and cost to other instrumentations'
GenAI spans and records otel-ml's cost and token metrics for them.

It wraps the processor that exports (a ``BatchSpanProcessor``): the SDK
freezes a span's attributes before any processor's ``on_end`` runs (in
opentelemetry-sdk 1.45 also before the private ``_on_ending`` hook), so the
cost, known only once the usage is, can reach the exporter only on a copy
handed to the processor that exports. See docs/enrichment.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._safety import report
from otel_ml.instrumentation._enrich._lineage import Call, Lineage
from otel_ml.instrumentation._enrich._usage import MARKERS, PeerUsage, read_usage, request_hints
from otel_ml.spans import Recorder

# Scopes whose spans are GenAI calls even without a marker attribute at start.
PEER_SCOPES = frozenset(
    {
        semconv.PEER_SCOPE_GENAI_OPENAI,
        semconv.PEER_SCOPE_GENAI_UTIL,
        semconv.PEER_SCOPE_OPENINFERENCE_OPENAI,
        semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V1,
        semconv.PEER_SCOPE_OPENLLMETRY_OPENAI_V0,
    }
)


class EnrichingSpanProcessor(SpanProcessor):
    """Tenant on start, cost and metrics on end, for GenAI spans that otel-ml
    did not make; every span is then handed to ``export`` (if any)."""

    def __init__(self, own_scope: str, export: SpanProcessor | None = None) -> None:
        self._own_scope = own_scope
        self._export = export
        self._recorder: Recorder | None = None
        self._lineage = Lineage()

    def wrap(self, export: SpanProcessor) -> EnrichingSpanProcessor:
        """Put this processor in front of ``export``; for a provider being built."""
        self._export = export
        return self

    def bind(self, recorder: Recorder) -> None:
        """Price and record with ``recorder``; until then spans pass through."""
        self._recorder = recorder

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self._start(span, parent_context)
        except Exception as exc:  # telemetry never breaks the app
            report("enrichment on_start", exc)
        if self._export is not None:
            self._export.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        if self._export is not None:
            self._export._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        exported = span
        try:
            exported = self._end(span)
        except Exception as exc:
            report("enrichment on_end", exc)
        if self._export is not None:
            self._export.on_end(exported)

    def shutdown(self) -> None:
        if self._export is not None:
            self._export.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._export.force_flush(timeout_millis) if self._export is not None else True

    # --- the work -----------------------------------------------------------
    def _start(self, span: Span, parent_context: Context | None) -> None:
        own = _scope_name(span) == self._own_scope
        attributes = span.attributes or {}
        genai = _is_own_generation(attributes) if own else _is_peer_call(span, attributes)
        tenant = _tenant(parent_context) if genai else None
        parent = span.parent
        parent_id = parent.span_id if parent is not None and not parent.is_remote else None
        call = self._lineage.start(
            span.context.span_id,
            parent_id,
            genai=genai,
            own=own,
            tenant=tenant,
            hints=request_hints(attributes) if genai and not own else None,
        )
        if call is not None and not own and tenant and semconv.TENANT_ID not in attributes:
            span.set_attribute(semconv.TENANT_ID, tenant)

    def _end(self, span: ReadableSpan) -> ReadableSpan:
        if span.context is None:
            return span
        call = self._lineage.end(span.context.span_id)
        recorder = self._recorder
        if call is None or recorder is None or not call.counts():
            return span
        attributes = span.attributes or {}
        usage = read_usage({**call.hints, **attributes})
        if usage is None:
            return span
        self._lineage.counted(call)
        tenant = call.tenant or _str(attributes.get(semconv.TENANT_ID))
        cost = _cost(recorder, usage)
        _record(recorder, usage, tenant, cost)
        added: dict[str, AttributeValue] = {}
        if cost is not None and semconv.GEN_AI_USAGE_COST_AMOUNT not in attributes:
            added[semconv.GEN_AI_USAGE_COST_AMOUNT] = cost
            added[semconv.GEN_AI_USAGE_COST_CURRENCY] = "USD"
        if tenant is not None and semconv.TENANT_ID not in attributes:
            added[semconv.TENANT_ID] = tenant
        return _with_attributes(span, attributes, added) if added else span


def _scope_name(span: ReadableSpan) -> str | None:
    scope = span.instrumentation_scope
    return scope.name if scope is not None else None


def _is_own_generation(attributes: Mapping[str, Any]) -> bool:
    # Every otel-ml generation span (generation(), instrument_openai(), ...)
    # starts with an operation name; retrieval spans are not LLM calls.
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    return operation is not None and operation != semconv.OP_RETRIEVAL


def _is_peer_call(span: Span, attributes: Mapping[str, Any]) -> bool:
    return _scope_name(span) in PEER_SCOPES or not MARKERS.isdisjoint(attributes)


def _tenant(parent_context: Context | None) -> str | None:
    # The baggage the span starts in: the end may run in another task or thread.
    return _str(baggage.get_baggage(semconv.TENANT_ID, parent_context))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _cost(recorder: Recorder, usage: PeerUsage) -> float | None:
    price = recorder.prices.lookup(usage.model) if usage.model else None
    if price is None:
        return None
    return price.cost(
        usage.input_tokens or 0,
        usage.output_tokens or 0,
        usage.cache_read_input_tokens,
        usage.cache_write_input_tokens,
    )


def _record(recorder: Recorder, usage: PeerUsage, tenant: str | None, cost: float | None) -> None:
    """The same series, name for name, that an otel-ml generation span records."""
    attributes: dict[str, AttributeValue] = {semconv.GEN_AI_OPERATION_NAME: usage.operation}
    if usage.provider is not None:
        attributes[semconv.GEN_AI_PROVIDER_NAME] = usage.provider
    if usage.model is not None:
        attributes[semconv.GEN_AI_REQUEST_MODEL] = usage.model
    folded = recorder.tenants.fold_tenant(tenant)
    if folded is not None:
        attributes[semconv.TENANT_ID] = folded
    instruments = recorder.instruments
    for tokens, token_type in (
        (usage.input_tokens, semconv.TOKEN_TYPE_INPUT),
        (usage.output_tokens, semconv.TOKEN_TYPE_OUTPUT),
    ):
        if tokens is not None:
            instruments.token_usage.record(
                tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: token_type}
            )
    if cost is not None:
        instruments.cost.add(cost, attributes)
    else:
        instruments.cost_unpriced.add(1, attributes)


def _with_attributes(
    span: ReadableSpan, attributes: Mapping[str, Any], added: Mapping[str, AttributeValue]
) -> ReadableSpan:
    """A copy of the ended span with ``added`` attributes, for the exporter.
    Dropped-event and dropped-link counts are not carried over: the public
    constructor takes the events and links, not their bounded containers."""
    merged = BoundedAttributes(None, {**attributes, **added}, immutable=True)
    merged.dropped = getattr(attributes, "dropped", 0)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=merged,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


__all__ = ["PEER_SCOPES", "Call", "EnrichingSpanProcessor"]
