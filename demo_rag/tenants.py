"""API keys -> tenants: the api service's authentication, read from a config file.

The tenant a request is billed to comes from here and nowhere else; baggage sent by a
client is never trusted for it (see ``demo_rag.api``).

File format (JSON)::

    {"tenants": {"acme": {"api_keys": ["key-1", "key-2"]}, ...}}
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

DEFAULT_TENANTS_FILE: Final = Path(__file__).parent / "data" / "tenants.json"
TENANTS_FILE_ENV: Final = "DEMO_RAG_TENANTS_FILE"


class TenantConfigError(ValueError):
    """The tenants file is missing, malformed, or gives one key to two tenants."""


class TenantDirectory:
    """Looks up the tenant of an API key."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        # Stored as (key bytes, tenant) pairs: lookups compare every key in constant
        # time, so response timing does not reveal how much of a guessed key matched.
        self._keys = [(key.encode(), tenant) for key, tenant in keys.items()]

    @classmethod
    def from_file(cls, path: Path | None = None) -> TenantDirectory:
        """Load ``path``, else ``$DEMO_RAG_TENANTS_FILE``, else the bundled demo file."""
        source = path or Path(os.environ.get(TENANTS_FILE_ENV) or DEFAULT_TENANTS_FILE)
        try:
            document = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TenantConfigError(f"cannot read tenants file {source}: {exc}") from exc
        return cls(parse(document, origin=str(source)))

    @property
    def tenants(self) -> list[str]:
        return sorted({tenant for _, tenant in self._keys})

    def lookup(self, api_key: str | None) -> str | None:
        """The tenant owning ``api_key``, or None for a missing or unknown key."""
        if not api_key:
            return None
        candidate = api_key.encode()
        found: str | None = None
        for key, tenant in self._keys:
            if hmac.compare_digest(key, candidate):
                found = tenant
        return found


def parse(document: Any, origin: str = "tenants file") -> dict[str, str]:
    """Validate a tenants document and return its API key -> tenant mapping."""
    tenants = document.get("tenants") if isinstance(document, dict) else None
    if not isinstance(tenants, dict) or not tenants:
        raise TenantConfigError(f"{origin}: expected a non-empty 'tenants' object")
    keys: dict[str, str] = {}
    for tenant, entry in tenants.items():
        api_keys = entry.get("api_keys") if isinstance(entry, dict) else None
        if not isinstance(api_keys, list) or not all(isinstance(k, str) and k for k in api_keys):
            raise TenantConfigError(f"{origin}: tenant {tenant!r} needs a list of api_keys")
        for key in api_keys:
            if key in keys and keys[key] != tenant:
                raise TenantConfigError(f"{origin}: an API key is shared by {keys[key]!r} "
                                        f"and {tenant!r}")
            keys[key] = tenant
    return keys


def document_for(keys_by_tenant: Mapping[str, str]) -> dict[str, Any]:
    """A tenants document giving each tenant one key (what the launcher writes)."""
    return {"tenants": {t: {"api_keys": [k]} for t, k in keys_by_tenant.items()}}
