"""One-line instrumentation: the web framework and HTTP client that carry
trace context and baggage between services, and the official LLM clients.

Each integration lives in a private module of its own; this package is the
one public entry point, and importing it loads none of the instrumented
libraries: each is imported when its ``instrument_*`` function is called.
"""

from __future__ import annotations

from otel_ml.instrumentation._anthropic import instrument_anthropic, uninstrument_anthropic
from otel_ml.instrumentation._chroma import instrument_chroma, uninstrument_chroma
from otel_ml.instrumentation._openai import instrument_openai, uninstrument_openai
from otel_ml.instrumentation._web import flush_on_shutdown, instrument_fastapi, instrument_httpx

__all__ = [
    "flush_on_shutdown",
    "instrument_anthropic",
    "instrument_chroma",
    "instrument_fastapi",
    "instrument_httpx",
    "instrument_openai",
    "uninstrument_anthropic",
    "uninstrument_chroma",
    "uninstrument_openai",
]
