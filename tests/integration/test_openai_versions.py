"""instrument_openai() with openai 1.x, the line many apps still run (built on
httpx, not httpx2), in a venv of its own: chat completions sync, streamed and
failing, through the real client over ``httpx.MockTransport``.

The venv is cached under ``~/.cache/otel-ml/venvs/<key>``, keyed by the pinned
versions and the Python that runs the tests; otel-ml is installed from this
checkout in editable mode, so the cache survives changes to the SDK. Building
it needs the package index: without it the test skips locally and fails in CI
(``CI=true``), where a skipped version test would hide a regression.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from otel_ml import semconv
from otel_ml.pricing import PriceTable

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# The last openai 1.x release on the package index (checked with `pip index versions openai`).
OPENAI_1 = "openai==1.109.1"
REQUIREMENTS = (OPENAI_1, f"-e{REPO}[openai,otlp]")
CACHE = Path.home() / ".cache" / "otel-ml" / "venvs"

SCRIPT = r"""
import json, sys
import httpx, openai, otel_ml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
otel_ml.configure(tracer_provider=tracer_provider,
                  meter_provider=MeterProvider(metric_readers=[reader]))
USAGE = {"prompt_tokens": 1200, "completion_tokens": 48, "total_tokens": 1248,
         "prompt_tokens_details": {"cached_tokens": 1024},
         "completion_tokens_details": {"reasoning_tokens": 16}}
COMPLETION = {"id": "chatcmpl-1x", "object": "chat.completion", "created": 1,
              "model": "gpt-4o-mini-2024-07-18", "usage": USAGE,
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                           "message": {"role": "assistant", "content": "Paris."}}]}

def chunk(delta, finish=None, usage=None):
    return {"id": "chatcmpl-1x-stream", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o-mini-2024-07-18", "usage": usage,
            "choices": [] if delta is None else
                       [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

headers = []
def handler(request):
    headers.append(dict(request.headers))
    body = json.loads(request.content)
    if body["messages"][0]["content"] == "fail":
        return httpx.Response(429, json={"error": {"message": "Rate limit reached",
                              "type": "tokens", "param": None, "code": "rate_limit_exceeded"}})
    if body.get("stream"):
        chunks = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Par"}),
                  chunk({"content": "is."}), chunk({}, "stop"), chunk(None, usage=USAGE)]
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=sse.encode())
    return httpx.Response(200, json=COMPLETION)

client = openai.OpenAI(api_key="test", base_url="https://api.openai.test/v1", max_retries=0,
                       http_client=httpx.Client(transport=httpx.MockTransport(handler)))
otel_ml.instrument_openai()
messages = [{"role": "user", "content": "Capital of France?"}]
client.chat.completions.create(model="gpt-4o-mini", messages=messages)
for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                        stream_options={"include_usage": True}):
    pass
error = None
try:
    client.chat.completions.create(model="gpt-4o-mini",
                                   messages=[{"role": "user", "content": "fail"}])
except openai.RateLimitError as exc:
    error = type(exc).__name__
spans = [{"name": s.name, "status": s.status.status_code.name,
          "span_id": format(s.context.span_id, "016x"),
          "attributes": {k: list(v) if isinstance(v, tuple) else v
                         for k, v in s.attributes.items()}}
         for s in exporter.get_finished_spans()]
print(json.dumps({"openai": openai.__version__, "error": error, "spans": spans,
                  "traceparents": [h.get("traceparent") for h in headers]}))
"""


def _cost() -> float:
    """1200 input tokens of which 1024 cached, 48 output, at the bundled prices."""
    price = PriceTable.load().lookup("gpt-4o-mini")
    assert price is not None and price.cached_input is not None
    return (176 * price.input + 1024 * price.cached_input + 48 * price.output) / 1e6


COST = _cost()


def _key() -> str:
    spec = json.dumps([sys.version_info[:2], REQUIREMENTS])
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"openai 1.x venv: {reason}")
    pytest.skip(f"openai 1.x venv: {reason} (no package index?)")


@pytest.fixture(scope="module")
def python() -> Path:
    root = CACHE / f"openai1-{_key()}"
    python = root / "bin" / "python"
    ready = root / ".ready"
    if ready.exists():
        return python
    try:
        venv.create(root, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as exc:
        _unavailable(f"pip install failed: {exc.stderr[-2000:]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(repr(exc))
    ready.write_text(json.dumps(REQUIREMENTS))
    return python


@pytest.fixture(scope="module")
def result(python: Path) -> dict[str, Any]:
    run = subprocess.run(
        [str(python), "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    data: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return data


def test_it_is_openai_1x(result: dict[str, Any]) -> None:
    assert result["openai"] == OPENAI_1.split("==")[1]


def test_chat_sync_stream_and_error_spans(result: dict[str, Any]) -> None:
    sync, stream, failed = result["spans"]
    for span in (sync, stream, failed):
        assert span["name"] == "chat gpt-4o-mini"
        assert span["attributes"][semconv.SERVER_ADDRESS] == "api.openai.test"
        assert span["attributes"][semconv.SERVER_PORT] == 443
    for span, response_id in ((sync, "chatcmpl-1x"), (stream, "chatcmpl-1x-stream")):
        attributes = span["attributes"]
        assert span["status"] == "UNSET"
        assert attributes[semconv.GEN_AI_RESPONSE_ID] == response_id
        assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
        assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
        assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 1200
        assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 48
        assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
        assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 16
        assert attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(COST, abs=1e-12)
    assert stream["attributes"][semconv.GEN_AI_REQUEST_STREAM] is True
    assert stream["attributes"][semconv.LLM_OUTPUT_CHUNK_COUNT] == 2
    assert result["error"] == "RateLimitError"
    assert failed["status"] == "ERROR"
    assert failed["attributes"][semconv.ERROR_TYPE].endswith("RateLimitError")


def test_requests_carry_their_spans_traceparent(result: dict[str, Any]) -> None:
    sent = [traceparent.split("-")[2] for traceparent in result["traceparents"]]
    assert sent == [span["span_id"] for span in result["spans"]]
