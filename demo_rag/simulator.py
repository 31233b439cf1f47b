"""The simulated chat model behind the llm service.

It answers from the context in its prompt (extractive: it quotes the sentences that
best match the question), streams one real tokenizer token per chunk, and draws its
timing from configurable log-normal distributions, so TTFT and TBT look like a
served model's: a median with a right tail. It also fails and stalls now and then,
and sometimes adds an unsupported sentence (a "hallucination") so the groundedness
score and user feedback have something to catch.

Everything random comes from one ``random.Random`` per request. With a seed, that
generator is derived from the seed and the request's messages, so a given request
gets the same plan whatever the order or concurrency of the workload; tests use this.

Nothing here sleeps or does I/O: :meth:`SimulatedModel.plan` returns what to send and
when, and the llm service executes the plan.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from demo_rag.embeddings import tokenize
from demo_rag.grounding import JUDGE_INSTRUCTION, overlap_score
from otel_ml.tokens import encoding_name_for_model, get_encoding

DEFAULT_MODEL: Final = "sim-gpt-4o-mini"
NO_ANSWER: Final = "I could not find this in the documentation I was given."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
# A context line: "[kb-0042] Title | Body text." (the title part is optional).
_SOURCE_TAG = re.compile(r"^\[(?P<id>[\w.-]+)\]\s*(?:(?P<title>[^|]*?)\s*\|\s*)?(?P<text>.*)$")
# Plausible, specific, and in no document: what a real hallucination looks like.
_FABRICATIONS: Final = (
    "Every project also gets a dedicated support engineer at no extra cost.",
    "This limit was doubled for all customers in the last release.",
    "Data is additionally mirrored to a second continent every 5 minutes.",
    "The free tier was extended to 12 months for new accounts.",
    "Enterprise customers receive a 50% discount on this service.",
)
# OpenAI's chat format adds a few tokens per message and for priming the reply.
_TOKENS_PER_MESSAGE: Final = 3
_REPLY_PRIMING_TOKENS: Final = 3


@dataclass(frozen=True)
class SimConfig:
    """Behaviour of the simulated model; :meth:`from_env` documents the variables."""

    model: str = DEFAULT_MODEL
    ttft_median_s: float = 0.25
    ttft_sigma: float = 0.35
    tbt_median_s: float = 0.02
    tbt_sigma: float = 0.3
    error_rate: float = 0.03
    slow_rate: float = 0.05
    slow_factor: float = 6.0
    hallucination_rate: float = 0.15
    seed: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SimConfig:
        """Read ``LLM_SIM_*`` variables; unset ones keep the defaults above.

        LLM_SIM_MODEL, LLM_SIM_TTFT_MS (median), LLM_SIM_TTFT_SIGMA (log-normal shape,
        0 = constant), LLM_SIM_TBT_MS, LLM_SIM_TBT_SIGMA, LLM_SIM_ERROR_RATE,
        LLM_SIM_SLOW_RATE, LLM_SIM_SLOW_FACTOR (TTFT multiplier of slow requests),
        LLM_SIM_HALLUCINATION_RATE, LLM_SIM_SEED.
        """
        base = cls()

        def number(name: str, default: float, scale: float = 1.0) -> float:
            raw = environ.get(name)
            value = default if raw is None or raw == "" else float(raw) * scale
            if value < 0 or math.isnan(value):
                raise ValueError(f"{name} must be a non-negative number, got {raw!r}")
            return value

        seed = environ.get("LLM_SIM_SEED")
        return cls(
            model=environ.get("LLM_SIM_MODEL") or base.model,
            ttft_median_s=number("LLM_SIM_TTFT_MS", base.ttft_median_s, 1e-3),
            ttft_sigma=number("LLM_SIM_TTFT_SIGMA", base.ttft_sigma),
            tbt_median_s=number("LLM_SIM_TBT_MS", base.tbt_median_s, 1e-3),
            tbt_sigma=number("LLM_SIM_TBT_SIGMA", base.tbt_sigma),
            error_rate=_rate("LLM_SIM_ERROR_RATE", number("LLM_SIM_ERROR_RATE", base.error_rate)),
            slow_rate=_rate("LLM_SIM_SLOW_RATE", number("LLM_SIM_SLOW_RATE", base.slow_rate)),
            slow_factor=number("LLM_SIM_SLOW_FACTOR", base.slow_factor),
            hallucination_rate=_rate(
                "LLM_SIM_HALLUCINATION_RATE",
                number("LLM_SIM_HALLUCINATION_RATE", base.hallucination_rate),
            ),
            seed=int(seed) if seed else None,
        )


def _rate(name: str, value: float) -> float:
    if value > 1.0:
        raise ValueError(f"{name} is a probability and must be in [0, 1], got {value}")
    return value


@dataclass(frozen=True)
class SimulatedError:
    """An upstream failure, shaped like an OpenAI error response."""

    status: int
    type: str
    message: str


_ERRORS: Final = (
    SimulatedError(429, "rate_limit_exceeded", "Rate limit reached for requests"),
    SimulatedError(503, "overloaded_error", "The model is overloaded, retry later"),
    SimulatedError(500, "server_error", "The server had an error processing the request"),
)


@dataclass(frozen=True)
class Plan:
    """What the llm service sends for one request, and when.

    ``tbt_s[i]`` is the delay between piece ``i`` and piece ``i + 1``; the first piece
    goes out ``ttft_s`` after the request arrives.
    """

    model: str
    pieces: tuple[str, ...]
    ttft_s: float
    tbt_s: tuple[float, ...]
    prompt_tokens: int
    finish_reason: str
    error: SimulatedError | None = None
    slow: bool = False
    hallucinated: bool = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        return len(self.pieces)


class SimulatedModel:
    """Turns chat messages into a :class:`Plan`."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._encoding = get_encoding(encoding_name_for_model(config.model))

    def plan(self, messages: Sequence[Mapping[str, str]], max_tokens: int | None = None) -> Plan:
        rng = self._rng(messages)
        cfg = self.config
        error = rng.choice(_ERRORS) if rng.random() < cfg.error_rate else None
        slow = rng.random() < cfg.slow_rate
        hallucinate = rng.random() < cfg.hallucination_rate
        text = self._answer(messages, hallucinate, rng)
        pieces = self._pieces(text)
        finish_reason = "stop"
        if max_tokens is not None and len(pieces) > max_tokens:
            pieces, finish_reason = pieces[:max_tokens], "length"
        ttft = _lognormal(rng, cfg.ttft_median_s, cfg.ttft_sigma)
        if slow:
            ttft *= cfg.slow_factor
        tbts = tuple(_lognormal(rng, cfg.tbt_median_s, cfg.tbt_sigma) for _ in pieces[1:])
        return Plan(
            model=cfg.model,
            pieces=() if error else tuple(pieces),
            ttft_s=ttft,
            tbt_s=() if error else tbts,
            prompt_tokens=self.count_prompt_tokens(messages),
            finish_reason=finish_reason,
            error=error,
            slow=slow,
            hallucinated=hallucinate and error is None,
        )

    def count_prompt_tokens(self, messages: Sequence[Mapping[str, str]]) -> int:
        """Prompt tokens as an OpenAI chat model bills them."""
        total = _REPLY_PRIMING_TOKENS
        for message in messages:
            total += _TOKENS_PER_MESSAGE
            total += len(self._encoding.encode_ordinary(message.get("role", "")))
            total += len(self._encoding.encode_ordinary(message.get("content", "")))
        return total

    def _rng(self, messages: Sequence[Mapping[str, str]]) -> random.Random:
        if self.config.seed is None:
            return random.Random()
        canonical = json.dumps([dict(m) for m in messages], sort_keys=True)
        digest = hashlib.sha256(f"{self.config.seed}|{canonical}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _answer(
        self, messages: Sequence[Mapping[str, str]], hallucinate: bool, rng: random.Random
    ) -> str:
        if any(m.get("content", "").startswith(JUDGE_INSTRUCTION) for m in messages):
            return _judge(messages)
        question = next(
            (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
        )
        context = "\n".join(m.get("content", "") for m in messages if m.get("role") == "system")
        answer = extractive_answer(question, context)
        if hallucinate and answer != NO_ANSWER:
            answer = f"{answer} {rng.choice(_FABRICATIONS)}"
        return answer

    def _pieces(self, text: str) -> list[str]:
        """Split ``text`` into one piece per token, as a model streams it.

        A token can end inside a multi-byte character; such bytes are held back and
        sent with the next token so every piece is valid UTF-8.
        """
        pieces: list[str] = []
        pending = b""
        for token in self._encoding.encode_ordinary(text):
            pending += self._encoding.decode_single_token_bytes(token)
            try:
                pieces.append(pending.decode("utf-8"))
            except UnicodeDecodeError:
                continue
            pending = b""
        if pending:
            pieces.append(pending.decode("utf-8", errors="replace"))
        return pieces


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.gauss(0.0, 1.0)) if sigma > 0 else median


def extractive_answer(question: str, context: str) -> str:
    """Quote the context sentences that best match the question, with their source.

    Context lines of the form ``[doc-id] title | text`` name their source; a sentence
    matches through its own words and its article's title (as a reader would take
    "pricing" from the heading), but only body sentences are quoted. The answer cites
    the source of the best sentence, as a RAG prompt asks a model to.
    """
    wanted = set(tokenize(question))
    best: list[tuple[int, int, str, str]] = []  # (-overlap, position, sentence, source)
    for source, title, passage in _passages(context):
        title_words = set(tokenize(title))
        for sentence in _SENTENCE_END.split(passage):
            overlap = len(wanted & (set(tokenize(sentence)) | title_words))
            if overlap:
                best.append((-overlap, len(best), sentence.strip(), source))
    if not best:
        return NO_ANSWER
    best.sort()
    _, _, first, source = best[0]
    answer = first
    # A second sentence from the same article reads like an explanation, not a list.
    follow_up = next((s for _, _, s, src in best[1:] if src == source and s != first), None)
    if follow_up is not None:
        answer = f"{answer} {follow_up}"
    return f"{answer} [{source}]" if source else answer


def _passages(context: str) -> list[tuple[str, str, str]]:
    passages: list[tuple[str, str, str]] = []
    for line in context.splitlines():
        match = _SOURCE_TAG.match(line.strip())
        if match:
            passages.append((match.group("id"), match.group("title") or "", match.group("text")))
    return passages


def _judge(messages: Sequence[Mapping[str, str]]) -> str:
    """Grade like the model-free scorer, so a judged run stays reproducible."""
    prompt = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
    context, _, answer = prompt.partition("\n\nANSWER:\n")
    context = context.split("CONTEXT:\n", 1)[-1]
    return f"{overlap_score(answer, [context]):.2f}"
