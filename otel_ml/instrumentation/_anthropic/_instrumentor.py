"""Patching the ``anthropic`` client: every client (a ``BaseInstrumentor``
over the resource classes, as the official instrumentations do) or one
client (wrappers on its ``messages`` resource only). Both can be on at once:
the outer wrapper runs the call, the inner one passes it through.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection
from typing import Any

import wrapt
from anthropic import _base_client
from anthropic.resources.messages import AsyncMessages, Messages
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from otel_ml._safety import guard, warn_input
from otel_ml.instrumentation._anthropic._calls import CallPatch
from otel_ml.instrumentation._anthropic._request import inject_trace_context, suppress_client_span
from otel_ml.telemetry import Telemetry

# The versions this integration is tested with (docs/instrument-anthropic.md).
_INSTRUMENTS = ("anthropic >= 2.10, < 3",)
_MARK = "_otel_ml_patch"  # on a client's messages resource: its CallPatch
_METHODS = ("create", "stream")


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Every ``Messages``/``AsyncMessages`` of the process."""

    _patch: CallPatch | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        patch = CallPatch(kwargs.get("telemetry"))
        for cls, create, stream in (
            (Messages, patch.create, patch.stream),
            (AsyncMessages, patch.acreate, patch.astream),
        ):
            wrapt.wrap_function_wrapper(cls, "create", create)
            wrapt.wrap_function_wrapper(cls, "stream", stream)
        self._patch = patch
        _hooks.update()

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._patch is not None:
            self._patch.enabled = False
            self._patch = None
        for cls in (Messages, AsyncMessages):
            for name in _METHODS:
                unwrap(cls, name)
        _hooks.update()

    @property
    def is_on(self) -> bool:
        return self._patch is not None


class _Hooks:
    """The two hooks in the client's request path (see ``_request``), on while
    any client is instrumented; without an otel-ml call in flight they only
    read one context variable."""

    def __init__(self) -> None:
        self.clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._on = False

    def update(self) -> None:
        # Iterated, not len(): in a collected client's finalizer the WeakSet still
        # counts the dead entry, but no longer yields it.
        wanted = AnthropicInstrumentor().is_on or any(True for _ in self.clients)
        if wanted == self._on:
            return
        self._on = wanted
        if wanted:
            wrapt.wrap_function_wrapper(
                _base_client, "BaseClient._build_request", inject_trace_context
            )
            # Absent before the client had tracing of its own: nothing to suppress then.
            if hasattr(_base_client, "start_api_call_span"):
                wrapt.wrap_function_wrapper(
                    _base_client, "start_api_call_span", suppress_client_span
                )
        else:
            unwrap(_base_client.BaseClient, "_build_request")
            unwrap(_base_client, "start_api_call_span")


_hooks = _Hooks()


def _client_collected() -> None:
    # Runs in the garbage collector, in whichever thread triggered it.
    with guard("instrument_anthropic()"):
        _hooks.update()


def instrument(client: Any, telemetry: Telemetry | None) -> None:
    if client is None:
        instrumentor = AnthropicInstrumentor()
        if instrumentor.is_on:
            return  # idempotent: the first call's telemetry stays
        instrumentor.instrument(telemetry=telemetry)
        return
    messages = getattr(client, "messages", None)
    if not isinstance(messages, (Messages, AsyncMessages)):
        warn_input(f"instrument_anthropic() takes an anthropic client, got {type(client).__name__}")
        return
    if getattr(messages, _MARK, None) is not None:
        return
    patch = CallPatch(telemetry)
    if isinstance(messages, AsyncMessages):
        wrapt.wrap_function_wrapper(messages, "create", patch.acreate)
        wrapt.wrap_function_wrapper(messages, "stream", patch.astream)
    else:
        wrapt.wrap_function_wrapper(messages, "create", patch.create)
        wrapt.wrap_function_wrapper(messages, "stream", patch.stream)
    setattr(messages, _MARK, patch)
    _hooks.clients.add(client)
    # A client dropped without uninstrument_anthropic(client) turns the hooks off too.
    weakref.finalize(client, _client_collected)
    _hooks.update()


def uninstrument(client: Any) -> None:
    if client is None:
        instrumentor = AnthropicInstrumentor()
        if instrumentor.is_on:
            instrumentor.uninstrument()
        return
    messages = getattr(client, "messages", None)
    patch = getattr(messages, _MARK, None)
    if not isinstance(patch, CallPatch):
        return
    patch.enabled = False
    for name in (*_METHODS, _MARK):
        with guard("uninstrument_anthropic()"):
            delattr(messages, name)  # the class's own (or globally patched) method shows again
    _hooks.clients.discard(client)
    _hooks.update()
