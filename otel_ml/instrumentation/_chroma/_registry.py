"""Who is instrumented: every client (the global options) or some clients.

The wrappers sit on the collection classes once, whatever the mode; each call
looks here for its collection's client. Per-client mode cannot wrap the
client's collections themselves: Chroma makes a new collection object on
every ``get_collection()``. Clients are keyed by their server API object
(``client._server``, which every collection of the client holds as
``_client``), weakly, so an instrumented client can still be collected.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from otel_ml.telemetry import Telemetry


@dataclass(frozen=True)
class Options:
    """What ``instrument_chroma()`` was given."""

    telemetry: Telemetry | None = None  # None: otel_ml's current telemetry, per call


_lock = threading.Lock()
_global: Options | None = None
_clients: weakref.WeakKeyDictionary[Any, Options] = weakref.WeakKeyDictionary()


def server_api(client: Any) -> Any:
    """The object a client's collections hold as ``_client``: the client's
    ``_server`` (``Client``, ``AsyncClient``), or ``client`` itself."""
    return getattr(client, "_server", client)


def options_for(collection: Any) -> Options | None:
    """The options that apply to a call on ``collection``, or None: not instrumented.
    Per-client options win over the global ones."""
    if _clients:
        try:
            options = _clients.get(collection._client)
        except TypeError:  # a server API that cannot be weakly referenced
            options = None
        if options is not None:
            return options
    return _global


def set_global(options: Options | None) -> None:
    global _global
    with _lock:
        _global = options


def add_client(client: Any, options: Options) -> bool:
    """Register ``client``; False if it already was (a repeat does nothing)."""
    key = server_api(client)
    with _lock:
        if key in _clients:
            return False
        _clients[key] = options
        return True


def remove_client(client: Any) -> None:
    with _lock:
        _clients.pop(server_api(client), None)


def in_use() -> bool:
    """Whether any call can still be instrumented (else the wrappers can go)."""
    with _lock:
        return _global is not None or len(_clients) > 0
