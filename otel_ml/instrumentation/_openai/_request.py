"""What an instrumented call sends: the keyword arguments of the real call.

openai 3.x sends through ``httpx2``, which no OpenTelemetry HTTP
instrumentation covers, so the generation span's ``traceparent``,
``tracestate`` and ``baggage`` travel as ``extra_headers`` of the call itself:
a public argument in every openai version, merged into a new dict (the app's
own is never changed). A header the app or the client already sets is left
alone; with openai 1.x and the httpx instrumentation active, that
instrumentation then replaces ours with its HTTP span's, a child of the
generation span: one header, one trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate


def request_kwargs(kwargs: dict[str, Any], resource: Any, add_usage: bool) -> dict[str, Any]:
    """``kwargs`` for the real call, with trace headers and, when the user
    opted in (``add_usage``), ``stream_options.include_usage`` on a stream."""
    result = kwargs
    headers = _trace_headers(kwargs.get("extra_headers"), resource)
    if headers is not None:
        result = {**kwargs, "extra_headers": headers}
    if add_usage and kwargs.get("stream") is True:
        options = kwargs.get("stream_options")
        if not isinstance(options, Mapping):  # absent, None or the SDK's omit marker
            result = {**result, "stream_options": {"include_usage": True}}
        elif "include_usage" not in options:
            result = {**result, "stream_options": {**options, "include_usage": True}}
    return result


def _trace_headers(extra: Any, resource: Any) -> dict[str, Any] | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return None
    present = {str(name).lower() for name in (extra or ())}
    client_headers = getattr(getattr(resource, "_client", None), "default_headers", None)
    if isinstance(client_headers, Mapping):
        present.update(str(name).lower() for name in client_headers)
    added = {name: value for name, value in carrier.items() if name.lower() not in present}
    if not added:
        return None
    return {**(extra or {}), **added}
