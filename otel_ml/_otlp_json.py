"""Spans to OTLP/JSON without protobuf: the embedded default's hot path.

The embedded default writes every span as OTLP/JSON (the collector's ``file``
exporter format). Going through protobuf for that (build the messages, then
``MessageToDict``, then walk the dict again to turn the ids into hex) cost
about 390 µs per 20-attribute span, three times the protobuf encoding alone;
with a dozen spans per request it was most of the demo's telemetry CPU, spent
on the export thread while it holds the GIL. This module builds the same JSON
document straight from the SDK's spans.

"The same" is exact, and tests/unit/test_otlp_json.py holds it: the parsed
output equals the protobuf path's for generated spans. That is the OTLP/JSON
mapping as ``MessageToDict`` renders it: camelCase keys, 64-bit integers as
strings, enums as integers, fields at their default value left out except the
members of a ``oneof`` (an attribute's value), ids in hex (OTLP/JSON's rule;
protobuf's JSON would give base64).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

# OTLP's SpanFlags: bit 8 says the is-remote bit is known, bit 9 is that bit.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_FLOATS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> str:
    """One ``ExportTraceServiceRequest`` as a single OTLP/JSON line."""
    # Grouped by the resource object, not its value: Resource hashes by
    # serialising its attributes to JSON, which cost more than a span's encoding.
    # A provider's spans share one object; equal copies merely repeat a resource,
    # which OTLP allows.
    resources: dict[int, Resource] = {}
    groups: dict[int, dict[InstrumentationScope | None, list[dict[str, Any]]]] = {}
    for span in spans:
        resources.setdefault(id(span.resource), span.resource)
        scopes = groups.setdefault(id(span.resource), {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = [
        _omit_empty({
            "resource": _omit_empty({"attributes": _attributes(resource.attributes)}),
            "scopeSpans": [
                _omit_empty({
                    "scope": _scope(scope),
                    "spans": encoded,
                    "schemaUrl": scope.schema_url if scope else None,
                })
                for scope, encoded in scopes.items()
            ],
            "schemaUrl": resource.schema_url,
        })
        for resource, scopes in ((resources[key], scopes) for key, scopes in groups.items())
    ]
    return json.dumps({"resourceSpans": resource_spans}, separators=(",", ":"))


def _span(span: ReadableSpan) -> dict[str, Any]:
    # Typed optional, but a finished SDK span always has its context.
    context = cast(SpanContext, span.get_span_context())
    status = span.status
    return _omit_empty({
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
        "traceState": ",".join(f"{k}={v}" for k, v in context.trace_state.items())
        if context.trace_state is not None else None,
        "parentSpanId": f"{span.parent.span_id:016x}" if span.parent else None,
        "flags": _flags(span.parent),
        "name": span.name,
        # The SDK's SpanKind starts at 0 (INTERNAL); OTLP's at 1 (0 is UNSPECIFIED).
        "kind": span.kind.value + 1,
        "startTimeUnixNano": _uint64(span.start_time),
        "endTimeUnixNano": _uint64(span.end_time),
        "attributes": _attributes(span.attributes),
        "droppedAttributesCount": span.dropped_attributes,
        "events": [
            _omit_empty({
                "timeUnixNano": _uint64(event.timestamp),
                "name": event.name,
                "attributes": _attributes(event.attributes),
                "droppedAttributesCount": event.dropped_attributes,
            })
            for event in span.events
        ],
        "droppedEventsCount": span.dropped_events,
        "links": [
            _omit_empty({
                "traceId": f"{link.context.trace_id:032x}",
                "spanId": f"{link.context.span_id:016x}",
                "attributes": _attributes(link.attributes),
                "droppedAttributesCount": link.dropped_attributes,
                "flags": _flags(link.context),
            })
            for link in span.links
        ],
        "droppedLinksCount": span.dropped_links,
        # Always present, as the protobuf encoder always sets it (possibly empty).
        "status": _omit_empty({"code": status.status_code.value, "message": status.description}),
    }, keep=("status",))


def _flags(parent: SpanContext | None) -> int:
    if parent is not None and parent.is_remote:
        return _HAS_IS_REMOTE | _IS_REMOTE
    return _HAS_IS_REMOTE


def _scope(scope: InstrumentationScope | None) -> dict[str, Any]:
    if scope is None:
        return {}
    return _omit_empty({
        "name": scope.name, "version": scope.version, "attributes": _attributes(scope.attributes),
    })


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    return [{"key": key, "value": _value(value)} for key, value in attributes.items()]


def _value(value: Any) -> dict[str, Any]:
    # Same order of checks as the protobuf encoder: bool before int, str before Sequence.
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": _double(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        return {"arrayValue": _omit_empty({"values": [_value(item) for item in value]})}
    if isinstance(value, Mapping):
        return {"kvlistValue": _omit_empty({"values": _attributes(
            {str(key): item for key, item in value.items()})})}
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _double(value: float) -> float | str:
    # JSON has no NaN or infinities; protobuf's JSON mapping spells them as strings.
    if math.isnan(value):
        return "NaN"
    return _FLOATS.get(value, value)


def _uint64(nanos: int | None) -> str | None:
    return str(nanos) if nanos else None


def _omit_empty(fields: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Drop fields at their protobuf default (None, 0, "", []), as MessageToDict does."""
    return {key: value for key, value in fields.items()
            if key in keep or (value is not None and value != 0 and value != "" and value != [])}
