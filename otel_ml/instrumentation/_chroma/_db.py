"""The database attributes of a Chroma call (the OTel database conventions),
read from what the collection object already holds: no request."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from otel_ml import semconv

_DEFAULT_PORTS = {"https": 443, "http": 80}


def db_attributes(collection: Any, operation: str) -> dict[str, AttributeValue]:
    """``db.*`` and ``server.*`` of one call on ``collection``."""
    attributes: dict[str, AttributeValue] = {
        semconv.DB_SYSTEM_NAME: semconv.DB_SYSTEM_NAME_CHROMA,
        semconv.DB_OPERATION_NAME: operation,
    }
    name = getattr(collection, "name", None)
    if isinstance(name, str) and name:
        attributes[semconv.DB_COLLECTION_NAME] = name
    namespace = _namespace(collection)
    if namespace:
        attributes[semconv.DB_NAMESPACE] = namespace
    host, port = server_of(getattr(collection, "_client", None))
    if host is not None:
        attributes[semconv.SERVER_ADDRESS] = host
        if port is not None:
            attributes[semconv.SERVER_PORT] = port
    return attributes


def _namespace(collection: Any) -> str:
    """``{tenant}|{database}``: the conventions join namespace components from
    the most general to the most specific with ``|``."""
    parts = [getattr(collection, key, None) for key in ("tenant", "database")]
    return "|".join(part for part in parts if isinstance(part, str) and part)


def server_of(server_api: Any) -> tuple[str | None, int | None]:
    """Host and port of an HTTP client (``HttpClient``, ``AsyncHttpClient``,
    ``CloudClient``: their server API knows its URL); ``(None, None)`` for the
    in-process clients, which talk to no server."""
    get_url = getattr(server_api, "get_api_url", None)
    if not callable(get_url):
        return None, None
    url = urlsplit(str(get_url()))
    if not url.hostname:
        return None, None
    return url.hostname, url.port or _DEFAULT_PORTS.get(url.scheme)
