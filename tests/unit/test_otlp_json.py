"""otel_ml._otlp_json writes exactly what the protobuf path wrote.

The embedded default used to encode spans with protobuf and MessageToDict; the
direct encoder must give the same document, or replay, the report and the
collector's otlpjsonfile receiver would read something else. Spans here are
real SDK spans (a TracerProvider into an in-memory exporter), generated with
hypothesis across every attribute type, events, links, remote parents,
statuses, kinds, resources and scopes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from otel_ml._otlp_json import spans_to_otlp_json
from otel_ml.local_export import to_otlp_json

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = st.one_of(st.text(max_size=12), st.booleans(), INT64,
                    st.floats(allow_nan=True, allow_infinity=True))
ATTRIBUTE_VALUES = st.one_of(
    SCALARS,
    st.lists(st.text(max_size=5), max_size=3),
    st.lists(st.booleans(), max_size=3),
    st.lists(INT64, max_size=3),
    st.lists(st.floats(allow_nan=False), max_size=3),
)
ATTRIBUTES = st.dictionaries(st.text(min_size=1, max_size=8), ATTRIBUTE_VALUES, max_size=5)
IDS = st.tuples(st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1))

SPAN = st.fixed_dictionaries({
    "name": st.text(max_size=10),
    "kind": st.sampled_from(list(SpanKind)),
    "attributes": ATTRIBUTES,
    "events": st.lists(st.tuples(st.text(max_size=6), ATTRIBUTES), max_size=2),
    "links": st.lists(st.tuples(IDS, st.booleans(), ATTRIBUTES), max_size=2),
    "parent": st.one_of(st.none(), st.tuples(IDS, st.booleans(), st.booleans())),
    "status": st.sampled_from(["unset", "ok", "error", "error-described"]),
    "scope": st.sampled_from([("a", None), ("b", "1.2.3"), ("", None)]),
})


def _context(ids: tuple[int, int], remote: bool, state: bool = False) -> SpanContext:
    return SpanContext(ids[0], ids[1], is_remote=remote, trace_flags=TraceFlags(1),
                       trace_state=TraceState([("vendor", "v1")]) if state else None)


def _make(provider: TracerProvider, spec: dict[str, Any]) -> None:
    name, version = spec["scope"]
    tracer = provider.get_tracer(name, version)
    parent = None
    if spec["parent"] is not None:
        ids, remote, state = spec["parent"]
        parent = set_span_in_context(NonRecordingSpan(_context(ids, remote, state)))
    links = [Link(_context(ids, remote), attributes) for ids, remote, attributes in spec["links"]]
    span = tracer.start_span(spec["name"], context=parent, kind=spec["kind"],
                             attributes=spec["attributes"], links=links)
    for event_name, attributes in spec["events"]:
        span.add_event(event_name, attributes)
    status = spec["status"]
    if status == "ok":
        span.set_status(Status(StatusCode.OK))
    elif status.startswith("error"):
        described = "described" in status
        span.set_status(Status(StatusCode.ERROR, "boom: it failed" if described else None))
    span.end()


def _finished(specs: list[dict[str, Any]], resources: list[Resource]) -> list[ReadableSpan]:
    spans: list[ReadableSpan] = []
    for index, resource in enumerate(resources):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for spec in specs[index::len(resources)]:
            _make(provider, spec)
        spans.extend(exporter.get_finished_spans())
    return spans


def _protobuf_path(spans: list[ReadableSpan]) -> Any:
    return json.loads(to_otlp_json(encode_spans(spans)))


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(SPAN, min_size=1, max_size=4), two_resources=st.booleans())
def test_direct_encoding_equals_the_protobuf_path(
    specs: list[dict[str, Any]], two_resources: bool
) -> None:
    resources = [Resource.create({"service.name": "api", "tenant.count": 3})]
    if two_resources:
        resources.append(Resource({"service.name": "llm"}, schema_url="https://example/1.0"))
    spans = _finished(specs, resources)
    assert json.loads(spans_to_otlp_json(spans)) == _protobuf_path(spans)


def test_a_known_span_reads_as_otlp_json() -> None:
    spec = {"name": "chat gpt-4o-mini", "kind": SpanKind.CLIENT,
            "attributes": {"gen_ai.usage.input_tokens": 12, "ratio": math.inf, "ok": False,
                           "reasons": ["stop"]},
            "events": [], "links": [], "status": "error-described", "scope": ("otel_ml", "0.2"),
            "parent": ((0xABC, 0xDEF), True, False)}
    (span,) = _finished([spec], [Resource({"service.name": "api"})])
    document = json.loads(spans_to_otlp_json([span]))
    (encoded,) = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert encoded["traceId"] == f"{0xABC:032x}"
    assert encoded["parentSpanId"] == f"{0xDEF:016x}"
    assert encoded["flags"] == 0x300  # the parent is remote, and that is known
    assert encoded["kind"] == 3  # OTLP's SPAN_KIND_CLIENT
    assert encoded["startTimeUnixNano"] == str(span.start_time)
    assert encoded["status"] == {"code": 2, "message": "boom: it failed"}
    assert {a["key"]: a["value"] for a in encoded["attributes"]} == {
        "gen_ai.usage.input_tokens": {"intValue": "12"},
        "ratio": {"doubleValue": "Infinity"},
        "ok": {"boolValue": False},
        "reasons": {"arrayValue": {"values": [{"stringValue": "stop"}]}},
    }
