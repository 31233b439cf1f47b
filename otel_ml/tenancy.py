"""Tenant identity: carried in W3C baggage, copied onto spans and metrics.

The tenant is set once at the edge with :func:`tenant` and travels to every
downstream service in the ``baggage`` header (the httpx/FastAPI
instrumentations propagate it). On spans it is copied by the
``BaggageSpanProcessor``; on metrics it goes through :class:`TenantCap`,
which bounds the number of distinct values so a tenant explosion cannot
explode metric cardinality.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any
from urllib.parse import unquote_plus

from opentelemetry import baggage, context, trace

from otel_ml import semconv
from otel_ml._safety import guard, warn_input
from otel_ml.cardinality import CardinalityCap

# An ASGI application, typed loosely so the core SDK needs no web framework.
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

_MAX_TENANT_LENGTH = 128
# Printable ASCII without separators that would need escaping in a header.
_TENANT_PATTERN = re.compile(r"^[A-Za-z0-9._:@/+-]+$")


def current_tenant() -> str | None:
    """The tenant in the current context's baggage, if any."""
    value = baggage.get_baggage(semconv.TENANT_ID)
    return value if isinstance(value, str) and value else None


def validate_tenant(tenant_id: object) -> str | None:
    """Return ``tenant_id`` if usable as a tenant id, else None with a warning."""
    if not isinstance(tenant_id, str):
        warn_input(f"tenant id must be a str, got {type(tenant_id).__name__}; tenant not set")
        return None
    if not 0 < len(tenant_id) <= _MAX_TENANT_LENGTH or not _TENANT_PATTERN.match(tenant_id):
        warn_input(
            "tenant id must be 1-128 characters of letters, digits and ._:@/+-; "
            f"got {tenant_id[:40]!r}; tenant not set"
        )
        return None
    return tenant_id


class tenant:  # lower case: used like a function, `with otel_ml.tenant("acme"):`
    """Set ``tenant.id`` in W3C baggage for everything inside the block.

    Any inbound ``tenant.id`` (from a client's baggage header) is replaced, and
    the current span (e.g. the HTTP server span) gets the trusted value too.
    Works with ``with`` and ``async with``.
    """

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = validate_tenant(tenant_id)
        self._token: object | None = None

    def __enter__(self) -> str | None:
        with guard("tenant()"):
            if self._tenant_id is None:
                # A rejected edge value must not leave the client's one in force.
                self._token = context.attach(baggage.remove_baggage(semconv.TENANT_ID))
                return None
            ctx = baggage.set_baggage(semconv.TENANT_ID, self._tenant_id)
            self._token = context.attach(ctx)
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attribute(semconv.TENANT_ID, self._tenant_id)
        return self._tenant_id

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            with guard("tenant() exit"):
                context.detach(self._token)  # type: ignore[arg-type]
            self._token = None

    async def __aenter__(self) -> str | None:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class TenantCap(CardinalityCap):
    """Tenant ids allowed on metric attributes: the first ``max_tenants`` keep
    their id, later ones fold into ``__overflow__``. Spans always carry the
    real id, so a folded tenant can still be found in traces."""

    def __init__(self, max_tenants: int) -> None:
        super().__init__(max_tenants, semconv.TENANT_OVERFLOW)

    def fold_tenant(self, tenant_id: str | None) -> str | None:
        return None if tenant_id is None else self.fold(tenant_id)


def strip_client_tenant(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app at your edge so clients cannot choose their tenant.

    Removes ``tenant.id`` from inbound W3C baggage before tracing sees the
    request, so not even the server span of an unauthenticated request carries
    a tenant the client made up (nor do span metrics keyed on it). Wrap outside
    the OpenTelemetry middleware, then set the real tenant with :class:`tenant`
    after authentication. Other baggage entries pass through. Internal services
    behind the edge keep trusting the baggage the edge sends them.

    A baggage header that is not valid UTF-8 is dropped whole: the
    OpenTelemetry ASGI layer decodes such bytes with ``unicode_escape``, so
    ``tenant\\x2eid=evil,z=\\xff`` reaches the propagator as ``tenant.id=evil``.
    Valid UTF-8 is compared exactly as the W3C baggage propagator decodes it.
    For a public edge prefer :func:`otel_ml.edge`, which also rejects such
    headers with a 400 and does not let outside callers steer tracing.
    """

    async def edge(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": _without_tenant(scope["headers"])}
        await app(scope, receive, send)

    return edge


def _without_tenant(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    cleaned: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == b"baggage":
            if not _is_utf8(value):
                continue
            members = [m for m in value.split(b",") if not _is_tenant_member(m)]
            if not any(m.strip() for m in members):
                continue
            value = b",".join(members)
        cleaned.append((name, value))
    return cleaned


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_tenant_member(member: bytes) -> bool:
    """Whether a baggage member sets tenant.id, compared as the propagator
    decodes keys: ``tenant%2Eid`` and ``tenant.id+`` are tenant.id too."""
    key = member.split(b"=", 1)[0].decode("latin-1")
    return unquote_plus(key.strip(" \t")).strip() == semconv.TENANT_ID
