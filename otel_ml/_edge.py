"""The public edge: what a request from outside may decide about its own telemetry.

Wrap the ASGI app that faces the internet with :func:`edge`, outside the
OpenTelemetry middleware (``serve edge(app)``, after ``instrument_fastapi(app)``).
Per request, before any span exists:

- A header value (or query string) that is not valid UTF-8 is answered ``400``
  with a server span of its own. The OpenTelemetry ASGI layer decodes such bytes
  with ``unicode_escape``: that raises on a backslash (a 500 before any span) and
  otherwise reads text other than the bytes sent (``tenant\\x2eid`` becomes
  ``tenant.id``), which no byte-level filter can follow.
- An untrusted caller's trace context is not continued. Following the W3C Trace
  Context guidance for untrusted input, the request starts a new trace, and the
  inbound ``traceparent`` becomes a span link on the server span: a client can
  neither switch tracing off (flags ``00``) nor pick its trace id and join another
  tenant's trace, yet its own trace can still be joined to ours through the link.
- An untrusted caller's baggage is dropped whole, as are all headers of the
  configured propagators. Dropping, rather than filtering ``tenant.id`` out, leaves
  no decoding for an attacker to play against, and keeps keys that internal
  services might act on from being set from outside.
- A trusted caller (by network, see below) keeps its trace context and baggage;
  only ``tenant.id`` is removed from its baggage (``strip_tenant``), since this
  service sets the tenant itself after authentication.

Trust is configuration, never a header: ``trusted`` lists networks in CIDR form
(``10.0.0.0/8``), or ``"*"`` for every caller (services reachable only from
inside, behind an edge that already cleaned the request). By default it is read
from ``OTEL_ML_EDGE_TRUSTED_NETWORKS`` (comma-separated), and empty: nobody.
"""

from __future__ import annotations

import ipaddress
import os
import weakref
from collections.abc import Iterable, MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from otel_ml import semconv
from otel_ml._safety import guard, warn_input
from otel_ml.telemetry import Telemetry, current
from otel_ml.tenancy import ASGIApp, _without_tenant

TRUSTED_NETWORKS_ENV: Final = "OTEL_ML_EDGE_TRUSTED_NETWORKS"
TRUST_EVERYONE: Final = "*"
# error.type of the edge's own 400 span.
INVALID_HEADER: Final = "invalid_header"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def edge(
    app: ASGIApp,
    *,
    trusted: Sequence[str] | None = None,
    strip_tenant: bool = True,
    telemetry: Telemetry | None = None,
) -> ASGIApp:
    """Wrap ``app`` so requests from outside cannot steer its telemetry (module doc).

    ``trusted``: networks whose callers keep their trace context and baggage, or
    ``["*"]``; None reads ``OTEL_ML_EDGE_TRUSTED_NETWORKS``. ``strip_tenant``:
    remove ``tenant.id`` from a trusted caller's baggage too (untrusted callers'
    baggage is always dropped). ``telemetry``: where the edge's own spans and span
    links go; the current one by default.
    """
    return _Edge(app, _Trust.parse(trusted), strip_tenant, telemetry)


@dataclass(frozen=True)
class _Trust:
    everyone: bool
    networks: tuple[_Network, ...]

    @classmethod
    def parse(cls, trusted: Sequence[str] | None) -> _Trust:
        if trusted is None:
            trusted = [n for n in os.environ.get(TRUSTED_NETWORKS_ENV, "").split(",") if n.strip()]
        networks: list[_Network] = []
        for entry in trusted:
            if entry.strip() == TRUST_EVERYONE:
                return cls(True, ())
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                # A typo must not widen trust: the entry trusts nobody.
                warn_input(f"edge: {entry!r} is not a network (CIDR); ignored")
        return cls(False, tuple(networks))

    def trusts(self, client: Any) -> bool:
        if self.everyone:
            return True
        if not self.networks or not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except (ValueError, TypeError, IndexError):
            return False  # a unix socket or an unknown peer
        return any(address in network for network in self.networks)


class _Edge:
    def __init__(
        self, app: ASGIApp, trust: _Trust, strip_tenant: bool, telemetry: Telemetry | None
    ) -> None:
        self._app = app
        self._trust = trust
        self._strip_tenant = strip_tenant
        self._telemetry = telemetry

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or ())
        if not _decodable(headers, scope.get("query_string", b"")):
            await self._reject(scope, send)
            return
        if self._trust.trusts(scope.get("client")):
            if self._strip_tenant:
                headers = _without_tenant(headers)
            await self._app({**scope, "headers": headers}, receive, send)
            return
        inbound = _inbound_span_context(headers)
        scope = {**scope, "headers": _without_propagation(headers)}
        if inbound is None:
            await self._app(scope, receive, send)
            return
        _ensure_link_processor(self._telemetry or current())
        token = _PENDING_LINK.set(_PendingLink(inbound))
        try:
            await self._app(scope, receive, send)
        finally:
            _PENDING_LINK.reset(token)

    async def _reject(self, scope: MutableMapping[str, Any], send: Any) -> None:
        """400 without calling the app: the tracing layer would crash on the bytes.
        The span is the edge's own (a new root), so the rejection is visible."""
        method = str(scope.get("method") or "HTTP")
        tracer = (self._telemetry or current()).tracer
        span = tracer.start_span(
            method,
            context=Context(),
            kind=SpanKind.SERVER,
            attributes={
                semconv.HTTP_REQUEST_METHOD: method,
                semconv.URL_SCHEME: str(scope.get("scheme") or "http"),
                semconv.HTTP_RESPONSE_STATUS_CODE: 400,
                semconv.ERROR_TYPE: INVALID_HEADER,
            },
        )
        span.set_status(Status(StatusCode.ERROR, INVALID_HEADER))
        try:
            body = b'{"detail":"a request header or the query string is not valid UTF-8"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            span.end()


def _decodable(headers: Iterable[tuple[bytes, bytes]], query_string: bytes) -> bool:
    try:
        for name, value in headers:
            name.decode("utf-8")
            value.decode("utf-8")
        query_string.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _inbound_span_context(headers: Iterable[tuple[bytes, bytes]]) -> SpanContext | None:
    """The caller's span, read by the configured propagators (first value of a
    repeated header, as the ASGI getter does); None if it sent none or a bad one."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        carrier.setdefault(name.decode("utf-8").lower(), value.decode("utf-8"))
    with guard("edge: reading inbound trace context"):
        context = propagate.extract(carrier, context=Context())
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            return span_context
    return None


def _without_propagation(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    fields = {f.lower() for f in propagate.get_global_textmap().fields}
    return [(n, v) for n, v in headers if n.decode("utf-8").lower() not in fields]


@dataclass
class _PendingLink:
    context: SpanContext
    used: bool = False


# The untrusted caller's span, waiting for the request's server span to start.
_PENDING_LINK: ContextVar[_PendingLink | None] = ContextVar("otel_ml_edge_link", default=None)


_linked_providers: weakref.WeakSet[Any] = weakref.WeakSet()


def _ensure_link_processor(telemetry: Telemetry) -> None:
    provider = telemetry.tracer_provider
    if provider in _linked_providers or not hasattr(provider, "add_span_processor"):
        return
    with guard("edge: adding the span-link processor"):
        # Only an SDK provider takes processors: the SDK loads here, not on import.
        from otel_ml._edge_link import InboundLinkProcessor

        provider.add_span_processor(InboundLinkProcessor())
        _linked_providers.add(provider)
