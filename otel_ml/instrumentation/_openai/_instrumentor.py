"""Where the wrappers go: the resource methods of the ``openai`` package,
patched on their classes (every client, through ``BaseInstrumentor``) or on
one client's resource objects.

The targets are looked up by module path and skipped where a version lacks
them (``responses`` before openai 1.66, ``chat.completions.stream`` in early
1.x, ``beta.chat.completions`` after 1.x), so one list serves 1.x and 3.x.

Instrumenting every client patches a module when the application imports it
(a post-import hook), not by importing it: an app that only chats never loads
the responses and embeddings modules (about 1.5 MB resident, 22 modules).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
import weakref
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_ml.instrumentation._openai._api import CHAT, EMBEDDINGS, RESPONSES, Api
from otel_ml.instrumentation._openai._calls import (
    Options,
    Wrapper,
    async_call,
    stream_manager,
    sync_call,
)

_CHAT_MODULE = "openai.resources.chat.completions.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"
_EMBEDDINGS_MODULE = "openai.resources.embeddings"
_BETA_CHAT_MODULE = "openai.resources.beta.chat.completions"  # openai 1.x only


@dataclass(frozen=True)
class Target:
    """One method to wrap: where its class lives, where a client holds its resource."""

    module: str
    cls: str
    method: str
    path: str  # attribute path from a client to the resource object
    api: Api | None  # None: a .stream() helper (its request is the wrapped create)
    is_async: bool = False

    def wrapper(self, options: Options) -> Wrapper:
        if self.api is None:
            return stream_manager
        return (async_call if self.is_async else sync_call)(self.api, options)

    def resource_class(self) -> type | None:
        try:
            cls = getattr(importlib.import_module(self.module), self.cls, None)
        except ImportError:
            return None
        return cls if isinstance(cls, type) and hasattr(cls, self.method) else None


TARGETS: tuple[Target, ...] = (
    Target(_CHAT_MODULE, "Completions", "create", "chat.completions", CHAT),
    Target(_CHAT_MODULE, "AsyncCompletions", "create", "chat.completions", CHAT, True),
    Target(_CHAT_MODULE, "Completions", "stream", "chat.completions", None),
    Target(_CHAT_MODULE, "AsyncCompletions", "stream", "chat.completions", None, True),
    Target(_BETA_CHAT_MODULE, "Completions", "stream", "beta.chat.completions", None),
    Target(_BETA_CHAT_MODULE, "AsyncCompletions", "stream", "beta.chat.completions", None, True),
    Target(_RESPONSES_MODULE, "Responses", "create", "responses", RESPONSES),
    Target(_RESPONSES_MODULE, "AsyncResponses", "create", "responses", RESPONSES, True),
    Target(_RESPONSES_MODULE, "Responses", "stream", "responses", None),
    Target(_RESPONSES_MODULE, "AsyncResponses", "stream", "responses", None, True),
    Target(_EMBEDDINGS_MODULE, "Embeddings", "create", "embeddings", EMBEDDINGS),
    Target(_EMBEDDINGS_MODULE, "AsyncEmbeddings", "create", "embeddings", EMBEDDINGS, True),
)


def _available() -> Iterator[tuple[Target, type]]:
    for target in TARGETS:
        cls = target.resource_class()
        if cls is not None:
            yield target, cls


class _Global:
    """The options of the global instrumentation while it is on (None: off).

    wrapt's post-import hooks cannot be removed, so each module gets one hook
    for the life of the process, and the hook reads this state when it fires.
    """

    options: ClassVar[Options | None] = None
    hooked: ClassVar[set[str]] = set()
    lock: ClassVar[threading.Lock] = threading.Lock()


def _patch_module(module: ModuleType) -> None:
    """Wrap the targets of ``module`` for every client, if the instrumentation is on."""
    with _Global.lock:
        options = _Global.options
        if options is None:
            return
        for target in TARGETS:
            cls = getattr(module, target.cls, None) if target.module == module.__name__ else None
            if (isinstance(cls, type) and hasattr(cls, target.method)
                    and not isinstance(inspect.getattr_static(cls, target.method),
                                       wrapt.FunctionWrapper)):
                wrapt.wrap_function_wrapper(cls, target.method, target.wrapper(options))


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Every ``openai`` client in the process (a singleton, as all instrumentors)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        with _Global.lock:
            _Global.options = kwargs.get("options") or Options()
        for name in dict.fromkeys(target.module for target in TARGETS):
            if name not in _Global.hooked:
                _Global.hooked.add(name)
                # Runs at once if the module is already imported, else on its import.
                wrapt.register_post_import_hook(_patch_module, name)
            elif name in sys.modules:
                _patch_module(sys.modules[name])

    def _uninstrument(self, **kwargs: Any) -> None:
        with _Global.lock:
            _Global.options = None
            for target in TARGETS:
                module = sys.modules.get(target.module)
                cls = getattr(module, target.cls, None) if module is not None else None
                if isinstance(cls, type) and hasattr(cls, target.method):
                    unwrap(cls, target.method)


# client -> the (resource, method) pairs patched on it; weak, so that an
# instrumented client can still be collected.
_clients: weakref.WeakKeyDictionary[Any, list[tuple[Any, str]]] = weakref.WeakKeyDictionary()
_clients_lock = threading.Lock()


def instrument(client: Any, options: Options) -> None:
    """Instrument every client (``client`` None) or one; a repeat does nothing."""
    if client is None:
        instrumentor = OpenAIInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(options=options)
        return
    with _clients_lock:
        if client in _clients:
            return
        _clients[client] = _patch_client(client, options)


def uninstrument(client: Any) -> None:
    """Undo :func:`instrument` for every client or for ``client``."""
    if client is None:
        instrumentor = OpenAIInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        return
    with _clients_lock:
        patched = _clients.pop(client, [])
    for resource, method in patched:
        vars(resource).pop(method, None)


def _patch_client(client: Any, options: Options) -> list[tuple[Any, str]]:
    """Wrap the bound methods on this client's own resource objects (cached
    per client by the SDK), as instance attributes that shadow the class's:
    other clients are untouched, and removing them restores the class's."""
    patched: list[tuple[Any, str]] = []
    for target, cls in _available():
        resource = _resolve(client, target.path)
        if not isinstance(resource, cls) or target.method in vars(resource):
            continue
        bound: Callable[..., Any] = getattr(resource, target.method)
        setattr(resource, target.method, wrapt.FunctionWrapper(bound, target.wrapper(options)))
        patched.append((resource, target.method))
    return patched


def _resolve(client: Any, path: str) -> Any:
    obj = client
    for name in path.split("."):
        try:
            obj = getattr(obj, name)
        except Exception:  # a resource this version or client does not have
            return None
    return obj
