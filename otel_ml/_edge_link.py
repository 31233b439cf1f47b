"""The span processor of :func:`otel_ml.edge`: it links the request's server
span to the untrusted caller's span. Its own module because it subclasses the
OTel SDK's ``SpanProcessor``, and ``import otel_ml`` must not load the SDK."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

from otel_ml._edge import _PENDING_LINK
from otel_ml._safety import guard


class InboundLinkProcessor(SpanProcessor):
    """Links the first root server span of an edge request to the caller's span.

    The OpenTelemetry middleware starts that span; a processor is the one place
    that sees it start, whatever instrumentation made it.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pending = _PENDING_LINK.get()
        if pending is None or pending.used or span.kind is not SpanKind.SERVER:
            return
        if span.parent is not None:
            return
        pending.used = True
        with guard("edge: linking the inbound trace"):
            span.add_link(pending.context)

    def on_end(self, span: ReadableSpan) -> None:
        pass
