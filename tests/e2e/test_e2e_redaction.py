"""Redaction: with content capture on, an e-mail and an API key in a prompt never reach Jaeger.

A separate process configured with ``capture_content=True`` sends a trace
whose prompt, completion and retrieval query contain both secrets (fresh
per run, so nothing else can produce them). The collector's redaction
processor must mask them before the Jaeger exporter; the test reads the
stored trace back and searches every value Jaeger returns for them.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from e2e_clients import Jaeger
from e2e_demo import emit

from otel_ml.cli.stack import Stack

pytestmark = pytest.mark.e2e

SERVICES = ("e2e-redaction",)


@pytest.fixture(scope="module")
def leaked() -> tuple[str, str]:
    token = secrets.token_hex(12)
    return f"jane.doe.{token}@example.com", f"sk-proj-{token}{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def stored(stack: Stack, jaeger: Jaeger, leaked: tuple[str, str]) -> dict[str, Any]:
    email, api_key = leaked
    sent = emit("redaction", stack.urls.otlp_http, "--email", email, "--api-key", api_key)
    trace = jaeger.wait_trace(sent["trace_id"], SERVICES)
    assert len(trace.spans) == 3, [s.operation for s in trace.spans]  # root, retrieval, chat
    return jaeger.raw_trace(sent["trace_id"])


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a JSON value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_email_and_api_key_never_reach_jaeger(
    stored: dict[str, Any], leaked: tuple[str, str]
) -> None:
    everything = _strings(stored)
    for secret in leaked:
        assert not [s for s in everything if secret in s], f"{secret} reached Jaeger"
    # Not even the distinctive parts: the masking must cover the whole match.
    email, api_key = leaked
    for fragment in (email.split("@")[0], api_key.removeprefix("sk-proj-")):
        assert not [s for s in everything if fragment in s], f"{fragment} reached Jaeger"


def test_captured_content_is_kept_with_the_secrets_masked(stored: dict[str, Any]) -> None:
    """Capture was on and the rest of the text survived: redaction masked, it did not drop."""
    spans = stored["data"][0]["spans"]
    tags = {t["key"]: t["value"] for span in spans for t in span["tags"]}
    prompt = tags["gen_ai.input.messages"]
    assert "why is my bill so high?" in prompt
    assert "****" in prompt
    assert "****" in tags["gen_ai.output.messages"]
    assert "****" in tags["gen_ai.retrieval.query.text"]
    assert json.dumps(stored).count("****") >= 4  # two secrets each in prompt, output, query
