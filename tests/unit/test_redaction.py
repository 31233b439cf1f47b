"""The SDK's redactor over the labelled corpus of otel_ml/data/redaction.json.

Every positive of every rule is masked with nothing of its secret left; every
look-alike (order ids, trace and span ids, UUIDs, prices, timestamps, versions,
IPs, model names, tenant ids) comes out unchanged. The same file drives the
collector (tests/config/test_redaction_config.py, tests/e2e/test_e2e_redaction.py).
"""

from __future__ import annotations

import logging
import random
import re
import subprocess
import sys
import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ml import _redaction
from otel_ml._redaction import Redactor, all_patterns, iban_ok, load_rules, luhn_ok, redactor
from otel_ml._safety import report

RULES = load_rules()
POSITIVES = [
    pytest.param(rule["name"], example, id=f"{rule['name']}-{i}")
    for rule in RULES["values"]
    for i, example in enumerate(rule["redact"])
]
NEGATIVES = [
    pytest.param(example, id=f"{example['kind']}-{i}")
    for i, example in enumerate(RULES["keep"]["values"])
]
MASK = RULES["mask"]


@pytest.mark.parametrize(("rule", "example"), POSITIVES)
def test_every_positive_is_masked_with_nothing_of_the_secret_left(
    rule: str, example: dict[str, str]
) -> None:
    masked = redactor().redact(example["text"])
    assert MASK in masked, rule
    assert example["secret"] not in masked, (rule, masked)


@pytest.mark.parametrize(("rule", "example"), POSITIVES)
def test_each_positive_is_caught_by_its_own_rule(rule: str, example: dict[str, str]) -> None:
    # A rule whose examples only pass thanks to another rule would go unnoticed
    # when that other rule changes.
    only = Redactor({**RULES, "values": [r for r in RULES["values"] if r["name"] == rule]})
    assert example["secret"] not in only.redact(example["text"])


@pytest.mark.parametrize(("rule", "example"), POSITIVES)
def test_in_the_collectors_way_every_positive_is_masked_too(
    rule: str, example: dict[str, str]
) -> None:
    # The collector applies the patterns in the file's order with no checksum:
    # a generic rule that runs first must not leave part of a token behind.
    text = example["text"]
    for pattern in _compiled():
        text = pattern.sub(MASK, text)
    assert example["secret"] not in text, (rule, text)


def _compiled() -> list[re.Pattern[str]]:
    return [re.compile(p, re.ASCII) for p in all_patterns(RULES)]


@pytest.mark.parametrize(("rule", "example"), POSITIVES)
def test_in_any_order_every_positive_is_masked(rule: str, example: dict[str, str]) -> None:
    # The collector's redaction processor keeps its patterns in a Go map: the
    # order changes from call to call. A rule that masks part of another's
    # secret first must leave that rule able to finish (token classes take *).
    shuffled = _compiled()
    rng = random.Random(rule)
    for _ in range(30):
        rng.shuffle(shuffled)
        text = example["text"]
        for pattern in shuffled:
            text = pattern.sub(MASK, text)
        assert example["secret"] not in text, (rule, text, [p.pattern for p in shuffled])


@pytest.mark.parametrize("example", NEGATIVES)
def test_look_alikes_are_left_unchanged(example: dict[str, Any]) -> None:
    assert redactor().redact(example["text"]) == example["text"]


def test_every_rule_has_positives_and_the_corpus_has_each_kind_of_look_alike() -> None:
    assert all(len(rule["redact"]) >= 1 for rule in RULES["values"])
    kinds = {example["kind"].split(" (")[0] for example in RULES["keep"]["values"]}
    for kind in ("order id", "trace id", "span id", "uuid", "price", "timestamp", "version",
                 "ipv4", "model", "tenant id"):
        assert kind in kinds, kind


def test_the_issue_list_of_secrets_is_covered() -> None:
    names = {rule["name"] for rule in RULES["values"]}
    assert {
        "email", "payment_card", "phone", "iban", "jwt", "bearer", "basic_auth", "openai_key",
        "stripe_key", "github_token", "slack_token", "google_api_key", "aws_access_key_id",
        "aws_secret_access_key", "us_ssn", "pem_block",
    } <= names
    texts = " ".join(e["text"] for r in RULES["values"] for e in r["redact"])
    for marker in ("%40", "ghp_", "github_pat_", "gho_", "xoxb-", "sk_live_", "sk-", "AIza",
                   "AKIA", "jcb", "diners", "unionpay", "maestro", "4111.1111"):
        assert marker in texts, marker


# --- RE2 compatibility: the collector runs the same patterns in Go ---------------------------

RE2_UNSUPPORTED = re.compile(r"\(\?[=!<>]|\(\?P[=>]|\\[1-9]|\\[sSZ]|\*\+|\+\+|\?\+")


def _patterns() -> list[str]:
    return [RULES["keys"]["pattern"], *all_patterns(RULES)]


@pytest.mark.parametrize("pattern", _patterns())
def test_patterns_keep_to_what_re2_and_python_read_alike(pattern: str) -> None:
    # Lookarounds, backreferences, named groups in Python's spelling, possessive
    # quantifiers and \Z do not exist in RE2; \s differs (\v); a global flag
    # anywhere but at the start is an error in Python.
    assert not RE2_UNSUPPORTED.search(pattern), pattern
    assert "(?i)" not in pattern[1:], pattern
    re.compile(pattern, re.ASCII)


# --- checksums keep look-alike numbers ---------------------------------------------------------


def test_luhn_and_iban_checks() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert luhn_ok("378282246310005") and luhn_ok("3530111333300000")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB83 WEST 1234 5698 7654 32")


def test_order_ids_shaped_like_cards_survive_unless_they_pass_luhn() -> None:
    rng = random.Random(13)
    kept = masked = 0
    for _ in range(500):
        digits = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        out = redactor().redact(f"order {digits}")
        if luhn_ok(digits):
            assert out == f"order {MASK}"
            masked += 1
        else:
            assert out == f"order {digits}"
            kept += 1
    assert kept > 400 and masked > 20  # about 1 in 10 passes Luhn by chance


def test_random_ids_are_never_touched() -> None:
    rng = random.Random(12)
    for _ in range(2000):
        trace_id = f"{rng.getrandbits(128):032x}"
        span_id = f"{rng.getrandbits(64):016x}"
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        stamp = str(rng.randrange(10**18, 2 * 10**18))
        for text in (trace_id, span_id, uid, stamp, f"${rng.randrange(100000) / 100:.2f}"):
            assert redactor().redact(text) == text


# --- attribute values and keys ------------------------------------------------------------------


def test_secret_named_keys_and_ordinary_ones() -> None:
    for key in RULES["keys"]["secret"]:
        assert redactor().secret_key(key), key
    for key in RULES["keys"]["ordinary"]:
        assert not redactor().secret_key(key), key


def test_values_are_redacted_by_type() -> None:
    rules = redactor()
    assert rules.value("db.password", "hunter2") == MASK
    assert rules.value("app.note", "mail ops@example.com") == f"mail {MASK}"
    assert rules.value("app.list", ["ok", "ops@example.com", 3]) == ["ok", MASK, 3]
    assert rules.value("app.count", 4111111111111111) == 4111111111111111  # numbers are not text
    assert rules.deep({"a": ["ops@example.com", {"b": "sk-abcdefghijklmnop1234"}], "n": 1}) == {
        "a": [MASK, {"b": MASK}], "n": 1,
    }


# --- where the SDK writes text it did not write ------------------------------------------------

SECRET_MESSAGE = "login failed for jane.doe@example.com with key sk-proj-AbCdEfGhIjKlMnOpQr12"


def test_recorded_exceptions_carry_no_secret_in_message_or_stack_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("s", record_exception=False) as span:
        try:
            raise PermissionError(SECRET_MESSAGE)
        except PermissionError as exc:
            _redaction.record_exception(span, exc)
    (event,) = exporter.get_finished_spans()[0].events
    attributes = dict(event.attributes or {})
    assert event.name == "exception"
    assert attributes["exception.type"] == "PermissionError"
    assert attributes["exception.message"] == f"login failed for {MASK} with key {MASK}"
    stack = str(attributes["exception.stacktrace"])
    assert "raise PermissionError(SECRET_MESSAGE)" in stack  # the trace itself is kept
    assert "jane.doe" not in stack and "AbCdEfGh" not in stack


def test_sdk_fault_reports_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        report("test_redaction export", ConnectionError(f"POST https://x/?key={SECRET_MESSAGE}"))
    assert "test_redaction export failed" in caplog.text
    assert "jane.doe" not in caplog.text and "AbCdEfGh" not in caplog.text


def test_the_rules_load_lazily_not_on_import() -> None:
    code = (
        "import sys, otel_ml; m = sys.modules.get('otel_ml._redaction'); "
        "print(m is None or m._default.cache_info().currsize == 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
