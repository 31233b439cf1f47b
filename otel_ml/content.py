"""Opt-in capture of prompt, completion and query content.

Off by default: content is often personal data. When on, every captured
string is cut to ``max_length`` characters so that one huge prompt cannot push
an OTLP request past the receiver's size limit (4 MiB for gRPC by default)
and lose the whole batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from otel_ml._redaction import redact, redactor

DEFAULT_MAX_LENGTH = 8192
MAX_LENGTH_ENV = "OTEL_ML_CONTENT_MAX_LENGTH"
_TRUNCATED = "…[truncated]"


def max_length_from_env() -> int:
    """``OTEL_ML_CONTENT_MAX_LENGTH`` if it is a positive int, else the default."""
    raw = os.environ.get(MAX_LENGTH_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_LENGTH


@dataclass(frozen=True)
class ContentPolicy:
    enabled: bool = False
    max_length: int = DEFAULT_MAX_LENGTH

    def cap(self, text: str) -> str:
        """``text`` redacted (otel_ml/data/redaction.json), then cut to ``max_length``.

        Redacted first, so that a cut never leaves half a secret no rule recognises.
        """
        text = redact(text)
        if len(text) <= self.max_length:
            return text
        return text[: max(self.max_length - len(_TRUNCATED), 0)] + _TRUNCATED

    def json(self, items: Sequence[Any], keep: Literal["first", "last"] = "first") -> str:
        """A JSON array of ``items`` no longer than ``max_length`` characters.

        Capping each string is not enough: a long chat history or a wide
        search makes one attribute of megabytes. Whole items are kept while
        they fit, from the start (``keep="first"``, e.g. top-ranked documents)
        or the end (``keep="last"``, e.g. the latest messages); an item too
        big on its own has its strings shortened until it fits.
        """
        budget = self.max_length - 2  # the brackets
        rules = redactor()
        ordered = [rules.deep(item) for item in (items if keep == "first" else reversed(items))]
        kept: list[str] = []
        used = 0
        for item in ordered:
            text = _dumps(item)
            cost = len(text) + (1 if kept else 0)
            if used + cost > budget:
                if not kept:
                    kept.append(self._shrunk(item, budget))
                break
            kept.append(text)
            used += cost
        if keep != "first":
            kept.reverse()
        return "[" + ",".join(kept) + "]"

    def _shrunk(self, item: Any, budget: int) -> str:
        limit = self.max_length
        while limit > len(_TRUNCATED):
            limit //= 2
            text = _dumps(_cap_strings(item, ContentPolicy(True, max(limit, len(_TRUNCATED)))))
            if len(text) <= budget:
                return text
        return "{}"

    def input_messages(self, prompt: Any) -> list[dict[str, Any]]:
        """``gen_ai.input.messages`` structure (role + text parts) for a prompt."""
        if isinstance(prompt, str):
            return [self._message("user", prompt)]
        messages = []
        if isinstance(prompt, Iterable):
            for message in prompt:
                if isinstance(message, Mapping):
                    role = str(message.get("role", "user"))
                    messages.append(self._message(role, _text_of(message.get("content"))))
        return messages

    def output_messages(self, text: str, finish_reasons: Sequence[str]) -> list[dict[str, Any]]:
        message = self._message("assistant", text)
        if finish_reasons:
            message["finish_reason"] = finish_reasons[0]
        return [message]

    def _message(self, role: str, text: str) -> dict[str, Any]:
        return {"role": role, "parts": [{"type": "text", "content": self.cap(text)}]}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _cap_strings(node: Any, policy: ContentPolicy) -> Any:
    if isinstance(node, str):
        return policy.cap(node)
    if isinstance(node, Mapping):
        return {key: _cap_strings(value, policy) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [_cap_strings(value, policy) for value in node]
    return node


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""
