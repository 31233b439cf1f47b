"""instrument_openai() patches openai's API modules when the app imports them.

Importing them all at instrument() time loaded the responses and embeddings
modules (about 1.5 MB, 22 modules) into apps that only chat. A fresh
interpreter checks the three cases, since this test session has long imported
every openai module: a module imported after instrument() is patched and its
calls traced; one imported after uninstrument() is left alone; instrumenting
again patches what is already imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import httpx2, openai
    import wrapt
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import otel_ml

    EMBEDDINGS = "openai.resources.embeddings"
    RESPONSES = "openai.resources.responses.responses"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_ml.configure(tracer_provider=provider, meter_provider=MeterProvider())
    out = {}

    def wrapped(module, cls):
        return isinstance(vars(getattr(sys.modules[module], cls))["create"], wrapt.FunctionWrapper)

    otel_ml.instrument_openai()
    out["loaded_after_instrument"] = [m for m in (EMBEDDINGS, RESPONSES) if m in sys.modules]

    reply = {"object": "list", "model": "text-embedding-3-small",
             "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
             "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    client = openai.OpenAI(api_key="sk-test", base_url="http://llm.test/v1", http_client=
        httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(200, json=reply))))
    client.embeddings.create(model="text-embedding-3-small", input="What is RAG?")
    out["embeddings_wrapped"] = wrapped(EMBEDDINGS, "Embeddings")
    out["spans"] = [s.name for s in exporter.get_finished_spans()]

    otel_ml.uninstrument_openai()
    out["embeddings_wrapped_after_uninstrument"] = wrapped(EMBEDDINGS, "Embeddings")
    client.responses  # imports the responses module while uninstrumented
    out["responses_wrapped_when_imported_uninstrumented"] = wrapped(RESPONSES, "Responses")

    otel_ml.instrument_openai()
    out["responses_wrapped_after_reinstrument"] = wrapped(RESPONSES, "Responses")
    out["embeddings_wrapped_after_reinstrument"] = wrapped(EMBEDDINGS, "Embeddings")
    print(json.dumps(out))
    """
)


def test_api_modules_are_patched_on_import_not_imported_by_instrument() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["loaded_after_instrument"] == []
    assert out["embeddings_wrapped"] is True
    assert out["spans"] == ["embeddings text-embedding-3-small"]
    assert out["embeddings_wrapped_after_uninstrument"] is False
    assert out["responses_wrapped_when_imported_uninstrumented"] is False
    assert out["responses_wrapped_after_reinstrument"] is True
    assert out["embeddings_wrapped_after_reinstrument"] is True
