"""``server.address``/``server.port`` of an official LLM client, shared by
every provider integration: the clients (openai, anthropic) keep their
``base_url`` as an httpx/httpx2 ``URL``, whose port is None when implicit."""

from __future__ import annotations

from typing import Any

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_of(client: Any) -> tuple[str | None, int | None]:
    """Host and port of ``client.base_url`` (the scheme's port when the URL
    names none, as the providers' own spans have it); ``(None, None)`` when
    there is no usable URL."""
    url = getattr(client, "base_url", None)
    host = getattr(url, "host", None)
    if not isinstance(host, str) or not host:
        return None, None
    port = getattr(url, "port", None)
    if not isinstance(port, int):
        port = _DEFAULT_PORTS.get(getattr(url, "scheme", None) or "")
    return host, port
