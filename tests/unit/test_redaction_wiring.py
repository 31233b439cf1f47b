"""Exception text and captured content reach spans redacted by the SDK itself
(otel_ml/data/redaction.json), before any collector sees them: the status
description and exception event even with content capture off, prompts,
completions and queries when it is on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import otel_ml
from otel_ml.testing import Capture

SECRET = "jane.doe@example.com"
KEY = "sk-proj-AbCdEfGhIjKlMnOpQr12"


def test_status_and_exception_event_are_redacted_with_capture_off(otel_capture: Capture) -> None:
    with (
        pytest.raises(PermissionError),
        otel_ml.generation(model="gpt-4o-mini", provider="openai"),
    ):
        raise PermissionError(f"no access for {SECRET} with {KEY}")
    (span,) = otel_capture.spans()
    dumped = json.dumps([span.status.description, [dict(e.attributes or {}) for e in span.events]])
    assert SECRET not in dumped and "AbCdEfGh" not in dumped
    assert span.status.description == "PermissionError: no access for **** with ****"


def test_captured_prompt_query_and_documents_are_redacted(
    otel_capture_factory: Callable[..., Any],
) -> None:
    capture = otel_capture_factory(capture_content=True)
    with otel_ml.retrieval("kb", query=f"mail {SECRET}, order 4111111111111112") as r:
        r.record([("d1", 0.9)])
    with otel_ml.generation(model="gpt-4o-mini", provider="openai",
                            prompt=[{"role": "user", "content": f"my key {KEY}"}]) as g:
        g.output(f"card 4111 1111 1111 1111, reach me at {SECRET}")
    dumped = json.dumps([dict(s.attributes or {}) for s in capture.spans()])
    assert SECRET not in dumped and "AbCdEfGh" not in dumped and "4111 1111" not in dumped
    assert "4111111111111112" in dumped  # an order id failing Luhn survives
