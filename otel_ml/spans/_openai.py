"""Reading OpenAI-shaped data without importing the ``openai`` package:
streaming chunks (objects or mappings) and chat messages.

This is what :meth:`GenerationSpan.wrap` understands of a stream's items; a
provider integration with its own wire format gets a module beside this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def openai_chunk(item: Any) -> tuple[str | None, tuple[int | None, int | None] | None]:
    """Text and (prompt, completion) usage of an OpenAI-style streaming chunk."""
    choices = field(item, "choices")
    text = field(field(choices[0], "delta"), "content") if choices else None
    usage = field(item, "usage")
    tokens = None
    if usage:
        tokens = (field(usage, "prompt_tokens"), field(usage, "completion_tokens"))
    return (text if isinstance(text, str) else None), tokens


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: the SDK's objects and raw JSON alike."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def prompt_text(prompt: Any) -> str:
    """Plain text of a prompt: a str, or OpenAI-style messages with str or part contents."""
    if isinstance(prompt, str):
        return prompt
    texts: list[str] = []
    if isinstance(prompt, Iterable):
        for message in prompt:
            content = message.get("content") if isinstance(message, Mapping) else message
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, Iterable):
                texts.extend(
                    part["text"]
                    for part in content
                    if isinstance(part, Mapping) and isinstance(part.get("text"), str)
                )
    return "\n".join(texts)
