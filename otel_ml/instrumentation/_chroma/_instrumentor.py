"""Where the wrappers go: ``query``, ``get``, ``add`` and ``upsert`` of
chromadb's ``Collection`` (every sync client: in-process and HTTP) and
``AsyncCollection`` (``AsyncHttpClient``), patched on the classes with wrapt.

One set of patches serves both modes: global mode (``BaseInstrumentor``, like
every OpenTelemetry instrumentation) and per-client mode (see ``_registry``).
The patches stay while either is in use and are undone, with ``unwrap``, when
neither is: uninstrumenting restores the original methods.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_ml import semconv
from otel_ml.instrumentation._chroma import _registry
from otel_ml.instrumentation._chroma._calls import Wrapper, async_call, sync_call

_SYNC_MODULE = "chromadb.api.models.Collection"
_ASYNC_MODULE = "chromadb.api.models.AsyncCollection"
_OPERATIONS = (semconv.DB_OP_QUERY, semconv.DB_OP_GET, semconv.DB_OP_ADD, semconv.DB_OP_UPSERT)


@dataclass(frozen=True)
class Target:
    """One method to wrap."""

    module: str
    cls: str
    method: str
    is_async: bool = False

    def wrapper(self) -> Wrapper:
        return (async_call if self.is_async else sync_call)(self.method)

    def collection_class(self) -> type | None:
        try:
            cls = getattr(importlib.import_module(self.module), self.cls, None)
        except ImportError:
            return None
        return cls if isinstance(cls, type) and hasattr(cls, self.method) else None


TARGETS: tuple[Target, ...] = tuple(
    Target(_SYNC_MODULE, "Collection", operation) for operation in _OPERATIONS
) + tuple(Target(_ASYNC_MODULE, "AsyncCollection", operation, True) for operation in _OPERATIONS)

_patch_lock = threading.Lock()
_patched = False


def _available() -> Iterator[tuple[Target, type]]:
    for target in TARGETS:
        cls = target.collection_class()
        if cls is not None:
            yield target, cls


def _patch() -> None:
    global _patched
    with _patch_lock:
        if _patched:
            return
        for target, cls in _available():
            wrapt.wrap_function_wrapper(cls, target.method, target.wrapper())
        _patched = True


def _unpatch_if_unused() -> None:
    global _patched
    with _patch_lock:
        if not _patched or _registry.in_use():
            return
        for target, cls in _available():
            unwrap(cls, target.method)
        _patched = False


class ChromaInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Every chromadb client in the process (a singleton, as all instrumentors)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        # None declared: the chromadb module comes from the ``chromadb`` or the
        # HTTP-only ``chromadb-client`` distribution, and BaseInstrumentor would
        # refuse to instrument (an error log, no spans) when the one it names is
        # absent. instrument_chroma() imports the module: that is the check.
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        _registry.set_global(kwargs.get("options") or _registry.Options())
        _patch()

    def _uninstrument(self, **kwargs: Any) -> None:
        _registry.set_global(None)
        _unpatch_if_unused()


def instrument(client: Any, options: _registry.Options) -> None:
    """Instrument every client (``client`` None) or one; a repeat does nothing."""
    if client is None:
        instrumentor = ChromaInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(options=options)
        return
    if _registry.add_client(client, options):
        _patch()


def uninstrument(client: Any) -> None:
    """Undo :func:`instrument` for every client or for ``client``."""
    if client is None:
        instrumentor = ChromaInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        return
    _registry.remove_client(client)
    _unpatch_if_unused()
