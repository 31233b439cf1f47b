"""LLM-as-judge: the prompt, the call and a strict parser of the reply.

The judge is any OpenAI-compatible client (``openai.OpenAI`` or one with the
same ``chat.completions.create``), used synchronously. Instrument it with
``otel_ml.instrument_openai(client)`` and each verdict is a generation span
with its own tokens and cost; the call runs under the evaluation tenant
(``otel-ml-evaluation`` unless configured), so the judge's cost is never billed
to the evaluated tenant by accident.

The reply must be either a JSON object ``{"score": <0..1>, "label": ...,
"explanation": ...}`` or a bare number in [0, 1]. Anything else (prose around
the number, a refusal, a score out of range) is an error result, never a
guessed score: a judge that does not follow the format has not judged.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from otel_ml.evaluation._types import EvaluationInput, EvaluationResult
from otel_ml.tenancy import tenant

DEFAULT_JUDGE_TENANT: Final = "otel-ml-evaluation"
_BARE_NUMBER: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_FENCE: Final = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_REPLY_FORMAT: Final = (
    'Reply with only a JSON object: {"score": <number from 0 to 1>, "label": "<label>", '
    '"explanation": "<one sentence>"}.'
)

# error.type values of failed judgements.
ERROR_INVALID_REPLY: Final = "invalid_judge_reply"
ERROR_OUT_OF_RANGE: Final = "judge_score_out_of_range"
ERROR_REFUSAL: Final = "judge_refusal"


class JudgeError(Exception):
    """The judge answered, but not with a verdict; ``error_type`` says how."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class Rubric:
    """What one evaluator asks the judge, and the labels its verdict may carry."""

    instruction: str
    labels: tuple[str, str]  # (good, bad): bad when the score is below threshold
    threshold: float

    def system_prompt(self) -> str:
        good, bad = self.labels
        return f"{self.instruction} Label \"{good}\" or \"{bad}\". {_REPLY_FORMAT}"


def judge_messages(data: EvaluationInput, rubric: Rubric) -> list[dict[str, str]]:
    """The chat messages the judge receives."""
    context = "\n\n".join(data.contexts)
    return [
        {"role": "system", "content": rubric.system_prompt()},
        {"role": "user",
         "content": f"QUESTION:\n{data.question}\n\nCONTEXT:\n{context}\n\nANSWER:\n{data.answer}"},
    ]


def parse_reply(reply: str | None, rubric: Rubric) -> tuple[float, str, str | None]:
    """(score, label, explanation) from the judge's reply; JudgeError otherwise."""
    if reply is None or not reply.strip():
        raise JudgeError(ERROR_REFUSAL, "the judge replied with no content")
    bare = _BARE_NUMBER.match(reply)
    if bare is not None:
        score = _in_range(float(bare.group(1)))
        return score, _label_for(score, rubric), None
    fenced = _FENCE.match(reply)
    try:
        document = json.loads(fenced.group(1) if fenced else reply)
    except ValueError:
        raise JudgeError(ERROR_INVALID_REPLY, "the reply is neither JSON nor a number") from None
    if not isinstance(document, dict):
        raise JudgeError(ERROR_INVALID_REPLY, "the reply is not a JSON object")
    raw = document.get("score")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise JudgeError(ERROR_INVALID_REPLY, "the reply has no numeric score")
    score = _in_range(float(raw))
    label = document.get("label")
    if label is not None and label not in rubric.labels:
        raise JudgeError(ERROR_INVALID_REPLY, f"the label is not one of {rubric.labels}")
    explanation = document.get("explanation")
    return (score, label or _label_for(score, rubric),
            explanation if isinstance(explanation, str) and explanation else None)


def _in_range(score: float) -> float:
    if not 0.0 <= score <= 1.0:
        raise JudgeError(ERROR_OUT_OF_RANGE, f"score {score} is outside [0, 1]")
    return score


def _label_for(score: float, rubric: Rubric) -> str:
    good, bad = rubric.labels
    return good if score >= rubric.threshold else bad


@dataclass
class Judge:
    """A judge client and how to call it."""

    client: Any
    model: str
    tenant: str | None = DEFAULT_JUDGE_TENANT
    max_tokens: int = 200
    timeout: float | None = 30.0

    def ask(self, messages: Sequence[dict[str, str]]) -> str | None:
        """The reply text; a refusal (the API's ``refusal`` field) raises JudgeError."""
        with tenant(self.tenant) if self.tenant else contextlib.nullcontext():
            completion = self.client.chat.completions.create(
                model=self.model, messages=list(messages), max_tokens=self.max_tokens,
                temperature=0, timeout=self.timeout,
            )
        choices = getattr(completion, "choices", None)
        if not choices:
            raise JudgeError(ERROR_INVALID_REPLY, "a completion without choices")
        message = choices[0].message
        if getattr(message, "refusal", None):
            raise JudgeError(ERROR_REFUSAL, "the judge refused")
        content = message.content
        return content if isinstance(content, str) else None

    def evaluate(self, name: str, data: EvaluationInput, rubric: Rubric) -> EvaluationResult:
        score, label, explanation = parse_reply(self.ask(judge_messages(data, rubric)), rubric)
        # The judge's words may quote the answer or the context: content, which
        # the event carries only with capture_content on (see _emit).
        return EvaluationResult(name=name, score=score, label=label, explanation=explanation)
