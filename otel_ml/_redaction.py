"""Masking secrets and personal data in the strings the SDK does not control.

The rules live in ``otel_ml/data/redaction.json``, shared with the collector
(``scripts/gen_redaction.py`` writes them into ``collector-config/otelcol.yaml``),
so the SDK and the collector mask the same things. The SDK applies them where
text it did not write reaches telemetry: exception messages (the span status
description and the exception event, also with content capture off), captured
prompts, completions, queries and documents, and evaluation explanations.

Cheap by construction: the rules file is read and compiled once, on first use
(``import otel_ml`` stays light); only strings are scanned; a rule whose
``requires`` strings are all absent from the text is skipped without running
its regex; and checksums (Luhn, IBAN mod 97) keep look-alike ids unmasked.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Span

RULES_FILE = "redaction.json"


def load_rules() -> dict[str, Any]:
    """The rules document bundled with the package (also used by the tests and the generator)."""
    text = (resources.files("otel_ml") / "data" / RULES_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def luhn_ok(digits: str) -> bool:
    """The payment-card check digit (ISO/IEC 7812): order ids mostly fail it."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616: the country code and check digits moved to the end, read base 36, mod 97 is 1."""
    compact = text.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1
    except ValueError:
        return False


def _contains_any(lowered: str, literals: tuple[str, ...]) -> bool:
    """Whether one of a rule's ``requires`` strings is in the lower-cased text.

    Lower-cased on both sides: a superset of the patterns' own case handling,
    so a rule skipped here could not have matched. A plain loop: a generator
    expression per rule cost more than the patterns on short values.
    """
    for literal in literals:  # noqa: SIM110 (faster than any() over a generator)
        if literal in lowered:
            return True
    return False


def _card_ok(match: str) -> bool:
    return luhn_ok("".join(char for char in match if char.isdigit()))


CHECKS: Mapping[str, Callable[[str], bool]] = {"luhn": _card_ok, "iban": iban_ok}


def bounded_pattern(document: Mapping[str, Any]) -> str | None:
    """The rules' ``bounded`` patterns as one regex, each in a group named after its rule.

    They start with a character class, so Go's regexp (the collector) runs them
    from every position of every string; one scan for all of them costs about
    40% less than one each. The group name tells the SDK which check applies.
    """
    groups = [
        f"(?P<{rule['name']}>{'|'.join(rule['bounded'])})"
        for rule in document["values"]
        if rule.get("bounded")
    ]
    return rf"\b(?:{'|'.join(groups)})\b" if groups else None


def all_patterns(document: Mapping[str, Any]) -> list[str]:
    """Every value pattern as SDK and collector run them, in order: the rules' own
    ``patterns``, then the merged ``bounded`` ones."""
    own = [pattern for rule in document["values"] for pattern in rule.get("patterns", ())]
    merged = bounded_pattern(document)
    return [*own, merged] if merged else own


@dataclass(frozen=True)
class _Rule:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    requires: tuple[str, ...]
    check: Callable[[str], bool] | None


class Redactor:
    """The compiled rules: :meth:`redact` for text, :meth:`secret_key` for attribute names."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.mask: str = document["mask"]
        # re.ASCII: \b, \d and classes as RE2 (the collector) reads them.
        self._key = re.compile(document["keys"]["pattern"], re.ASCII)
        self._rules = tuple(
            _Rule(
                name=rule["name"],
                patterns=tuple(re.compile(p, re.ASCII) for p in rule.get("patterns", ())),
                requires=tuple(r.lower() for r in rule.get("requires", ())),
                check=CHECKS[rule["check"]] if rule.get("check") else None,
            )
            for rule in document["values"]
        )
        merged = bounded_pattern(document)
        self._bounded = re.compile(merged, re.ASCII) if merged else None
        self._checks = {
            rule["name"]: CHECKS[rule["check"]]
            for rule in document["values"]
            if rule.get("bounded") and rule.get("check")
        }

    def secret_key(self, key: str) -> bool:
        """Whether an attribute named ``key`` holds a secret as a whole (password, api key...)."""
        return self._key.search(key) is not None

    def redact(self, text: str) -> str:
        """``text`` with every match of every rule replaced by the mask."""
        if len(text) < 6:  # shorter than the shortest match of any rule
            return text
        lowered = text.lower()
        for rule in self._rules:
            if rule.requires and not _contains_any(lowered, rule.requires):
                continue
            replacement = self.mask if rule.check is None else self._checked(rule.check)
            for pattern in rule.patterns:
                text = pattern.sub(replacement, text)
        if self._bounded is not None:
            text = self._bounded.sub(self._bounded_replacement, text)
        return text

    def _bounded_replacement(self, match: re.Match[str]) -> str:
        check = self._checks.get(match.lastgroup or "")
        return match.group() if check is not None and not check(match.group()) else self.mask

    def _checked(self, check: Callable[[str], bool]) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            return self.mask if check(match.group()) else match.group()

        return replace

    def value(self, key: str, value: Any) -> Any:
        """An attribute value as it may leave the process: strings (and lists of them) redacted,
        whole values of secret-named keys masked; numbers and booleans untouched."""
        if self.secret_key(key):
            return self.mask
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, (list, tuple)):
            return [self.redact(v) if isinstance(v, str) else v for v in value]
        return value

    def deep(self, node: Any) -> Any:
        """Every string inside a JSON-like structure redacted (before it is serialised)."""
        if isinstance(node, str):
            return self.redact(node)
        if isinstance(node, Mapping):
            return {key: self.deep(value) for key, value in node.items()}
        if isinstance(node, (list, tuple)):
            return [self.deep(value) for value in node]
        return node


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _default() -> Redactor:
    with _lock:
        return Redactor(load_rules())


def redactor() -> Redactor:
    """The bundled rules, compiled on first use."""
    return _default()


def redact(text: str) -> str:
    """``text`` with secrets and personal data masked by the bundled rules."""
    return _default().redact(text)


def record_exception(span: Span, exc: BaseException) -> None:
    """``span.record_exception(exc)`` with the message and stack trace redacted.

    Exception text is written by libraries and applications: a failed login
    echoes the e-mail, a bad request echoes the API key. It reaches the
    exception event even with content capture off, so it is always redacted.
    """
    from opentelemetry.semconv.attributes.exception_attributes import (
        EXCEPTION_MESSAGE,
        EXCEPTION_STACKTRACE,
    )

    rules = _default()
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not hide the original error
        message = "<unprintable>"
    stacktrace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    span.record_exception(
        exc,
        attributes={
            EXCEPTION_MESSAGE: rules.redact(message),
            EXCEPTION_STACKTRACE: rules.redact(stacktrace),
        },
    )
