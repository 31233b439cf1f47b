"""rag-llm: an OpenAI-compatible chat endpoint with server-side GenAI metrics.

``POST /v1/chat/completions`` streams (SSE) or returns a whole completion. The
backend is the simulated model (:mod:`demo_rag.simulator`), or, when
``LLM_BASE_URL`` is set, a real OpenAI-compatible endpoint (Ollama, vLLM, OpenAI)
called through httpx streaming; ``LLM_API_KEY`` and ``LLM_MODEL`` then set the key
and override the model.

This is the serving side of the call, so it records what a model server measures:
``gen_ai.server.time_to_first_token``, ``gen_ai.server.time_per_output_token`` and
``gen_ai.server.request.duration``, and puts the same timings and the token usage on
its server span. Comparing them with the api's client-side span separates network
and queueing time from model time. Usage is always reported in the final chunk when
the client asks for it (``stream_options.include_usage``), counted locally if a real
upstream does not report it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, Protocol

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse
from opentelemetry import trace
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from pydantic import BaseModel, ConfigDict, Field

import otel_ml
from demo_rag.openai_wire import (
    SSE_MEDIA_TYPE,
    Delta,
    UpstreamError,
    Usage,
    chunk_payload,
    completion_payload,
    error_body,
    sse,
    stream_chat,
)
from demo_rag.service import new_app, serve
from demo_rag.simulator import DEFAULT_MODEL, SimConfig, SimulatedModel
from otel_ml import semconv
from otel_ml.cardinality import CardinalityCap
from otel_ml.tokens import count_tokens

SERVICE_NAME: Final = "rag-llm"
# The API this service implements; the api service reports the same provider name.
PROVIDER: Final = "openai"
_ERROR_START_FRACTION: Final = 0.25  # failures surface during "prefill", before TTFT

logger = logging.getLogger(__name__)


# Request limits: an OpenAI-compatible endpoint is an easy target for huge prompts.
# A RAG prompt is two messages of a few KiB; the caps leave room for real chats.
MAX_MESSAGES: Final = 64
MAX_MESSAGE_CHARS: Final = 100_000
MAX_BODY_BYTES: Final = 1024 * 1024
# Distinct client-chosen models kept on metric labels; later ones fold into __other__.
MAX_MODEL_LABELS: Final = 16


class ChatMessage(BaseModel):
    role: str = Field(max_length=64)
    content: str = Field(max_length=MAX_MESSAGE_CHARS)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    # Unknown OpenAI parameters (temperature, top_p ...) pass through to a real backend.
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


class Backend(Protocol):
    """Produces the deltas of one chat completion.

    Raises :class:`UpstreamError` before the first delta when the model fails.
    """

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[Delta]: ...


async def _sleep_until(deadline: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``deadline``, never less.

    Under uvicorn the loop is uvloop, whose timers run on libuv's millisecond clock
    and fire up to a millisecond early (measured), as does a deadline taken from
    ``loop.time()``: a planned 80 ms TTFT was once measured as 79.8 ms.
    """
    while (remaining := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(remaining)


class SimulatedBackend:
    """Executes a :class:`demo_rag.simulator.Plan` in real time."""

    name = "simulated"

    def __init__(self, model: SimulatedModel) -> None:
        self.model = model

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        plan = self.model.plan(request.message_dicts(), request.max_tokens)
        model = request.model or plan.model
        if plan.error is not None:
            await asyncio.sleep(plan.ttft_s * _ERROR_START_FRACTION)
            raise UpstreamError(plan.error.status, plan.error.type, plan.error.message)
        # Sleep to absolute deadlines: per-token sleeps would accumulate the event
        # loop's lateness and stretch every stream beyond its planned TBT.
        deadline = time.perf_counter() + plan.ttft_s
        for index, piece in enumerate(plan.pieces):
            if index:
                deadline += plan.tbt_s[index - 1]
            await _sleep_until(deadline)
            yield Delta(content=piece, model=model)
        usage = Usage(prompt_tokens=plan.prompt_tokens, completion_tokens=plan.completion_tokens)
        yield Delta(finish_reason=plan.finish_reason, usage=usage, model=model)


class ProxyBackend:
    """Forwards to a real OpenAI-compatible endpoint, always streaming upstream."""

    name = "proxy"

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, api_key: str | None, model: str | None
    ) -> None:
        self._client = client
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._model = model

    async def stream(self, request: ChatRequest) -> AsyncIterator[Delta]:
        body = request.model_dump(exclude_none=True)
        body["stream_options"] = {"include_usage": True}
        if self._model:
            body["model"] = self._model
        try:
            async for delta in stream_chat(self._client, self._url, body, self._headers):
                yield delta
        except httpx.HTTPError as exc:
            raise UpstreamError(502, "upstream_unreachable", f"{self._url}: {exc}") from exc


@dataclass(frozen=True)
class ServerInstruments:
    """The GenAI server metrics (semconv v1.41), with their advised buckets."""

    request_duration: Histogram
    time_to_first_token: Histogram
    time_per_output_token: Histogram

    @classmethod
    def create(cls, meter: Meter) -> ServerInstruments:
        return cls(
            request_duration=meter.create_histogram(
                semconv.METRIC_SERVER_REQUEST_DURATION, unit="s",
                description="Time the model server spent on a request.",
                explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
            ),
            time_to_first_token=meter.create_histogram(
                semconv.METRIC_SERVER_TIME_TO_FIRST_TOKEN, unit="s",
                description="Time from request arrival to the first output token.",
                explicit_bucket_boundaries_advisory=semconv.SERVER_TTFT_BUCKETS,
            ),
            time_per_output_token=meter.create_histogram(
                semconv.METRIC_SERVER_TIME_PER_OUTPUT_TOKEN, unit="s",
                description="Decode time per output token after the first.",
                explicit_bucket_boundaries_advisory=semconv.SERVER_TPOT_BUCKETS,
            ),
        )


class ModelLabels:
    """Bounds the model names on metric labels and on the server span (whose
    ``gen_ai.request.model`` is a dimension of the collector's span metrics).

    The model is the client's string: one client could mint a series per request.
    The served models are always kept; the first ``MAX_MODEL_LABELS`` other names
    too (a proxied endpoint serves models we cannot list), later ones fold into
    ``__other__``, as tenants fold past ``max_tenants``.
    """

    def __init__(self, known: Iterable[str | None], limit: int = MAX_MODEL_LABELS) -> None:
        self._known = frozenset(m for m in known if m)
        self._cap = CardinalityCap(limit, semconv.LABEL_OVERFLOW)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ModelLabels:
        return cls([DEFAULT_MODEL, environ.get("LLM_SIM_MODEL"), environ.get("LLM_MODEL")])

    def bound(self, model: str) -> str:
        return model if model in self._known else self._cap.fold(model)


@dataclass
class Exchange:
    """Measures one request from arrival to its last token, and records it once."""

    request: ChatRequest
    span: Span
    instruments: ServerInstruments
    labels: ModelLabels
    started: float = field(default_factory=time.perf_counter)
    stamps: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None
    response_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))

    def observe(self, delta: Delta) -> None:
        if delta.content:
            self.stamps.append(time.perf_counter())
            self.text.append(delta.content)
        self.usage = delta.usage or self.usage
        self.finish_reason = delta.finish_reason or self.finish_reason
        self.model = delta.model or self.model

    @property
    def response_model(self) -> str:
        return self.model or self.request.model or "unknown"

    def final_usage(self) -> Usage:
        """Upstream usage, else a local count (a real backend may not report it)."""
        if self.usage is not None:
            return self.usage
        model = self.response_model
        prompt = sum(count_tokens(m.content, model) for m in self.request.messages)
        completion = count_tokens("".join(self.text), model)
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    def finish(self, error_type: str | None = None) -> None:
        duration = time.perf_counter() - self.started
        base: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
            semconv.GEN_AI_PROVIDER_NAME: PROVIDER,
            semconv.GEN_AI_REQUEST_MODEL: self.labels.bound(
                self.request.model or self.response_model
            ),
            semconv.GEN_AI_RESPONSE_MODEL: self.labels.bound(self.response_model),
        }
        span_attributes: dict[str, AttributeValue] = {
            **base, semconv.GEN_AI_REQUEST_STREAM: self.request.stream,
        }
        duration_attributes = dict(base)
        if error_type is not None:
            duration_attributes[semconv.ERROR_TYPE] = error_type
            span_attributes[semconv.ERROR_TYPE] = error_type
            self.span.set_status(Status(StatusCode.ERROR, error_type))
        self.instruments.request_duration.record(duration, duration_attributes)
        if self.stamps:
            self._record_timings(base, span_attributes)
        if error_type is None:
            usage = self.final_usage()
            span_attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = usage.prompt_tokens
            span_attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.completion_tokens
            span_attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = [self.finish_reason or "stop"]
        self.span.set_attributes(span_attributes)
        logger.info("chat completion", extra={
            "model": self.response_model, "duration_s": round(duration, 4),
            "chunks": len(self.stamps), "error_type": error_type,
        })

    def _record_timings(
        self, base: Mapping[str, AttributeValue], span_attributes: dict[str, AttributeValue]
    ) -> None:
        ttft = self.stamps[0] - self.started
        self.instruments.time_to_first_token.record(ttft, base)
        span_attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttft
        span_attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] = len(self.stamps)
        if len(self.stamps) > 1:
            decode = self.stamps[-1] - self.stamps[0]
            mean_gap = decode / (len(self.stamps) - 1)
            span_attributes[semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN] = mean_gap
            tokens = self.final_usage().completion_tokens
            if tokens > 1:
                self.instruments.time_per_output_token.record(decode / (tokens - 1), base)


def create_app(telemetry: otel_ml.Telemetry, backend: Backend | None = None) -> FastAPI:
    """The llm app; ``backend`` defaults to the one the environment selects."""
    instruments = ServerInstruments.create(telemetry.meter)
    labels = ModelLabels.from_env()
    state: dict[str, Backend] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0)) as client:
            state["backend"] = backend or _backend_from_env(client)
            logger.info("llm backend ready", extra={"backend": state["backend"].name})
            yield

    app = new_app(SERVICE_NAME, MAX_BODY_BYTES, lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE_NAME, "backend": state["backend"].name}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatRequest) -> Response:
        exchange = Exchange(request, trace.get_current_span(), instruments, labels)
        deltas = state["backend"].stream(request)
        try:
            first = await anext(deltas, None)  # the model's time to first token
        except UpstreamError as exc:
            exchange.finish(exc.error_type)
            return JSONResponse(error_body(exc.error_type, exc.message), status_code=exc.status)
        if request.stream:
            return StreamingResponse(_sse(exchange, first, deltas), media_type=SSE_MEDIA_TYPE)
        try:
            return JSONResponse(await _collect(exchange, first, deltas))
        except UpstreamError as exc:
            exchange.finish(exc.error_type)
            return JSONResponse(error_body(exc.error_type, exc.message), status_code=exc.status)

    return app


async def _sse(
    exchange: Exchange, first: Delta | None, rest: AsyncIterator[Delta]
) -> AsyncIterator[bytes]:
    """The OpenAI stream: role+content chunks, a finish chunk, a usage chunk, [DONE]."""
    error_type: str | None = "cancelled"  # until the stream completes
    ids = (exchange.response_id, exchange.created)
    try:
        role: str | None = "assistant"
        delta = first
        while delta is not None:
            exchange.observe(delta)
            if delta.content:
                yield sse(chunk_payload(*ids, exchange.response_model, content=delta.content,
                                        role=role))
                role = None
            delta = await anext(rest, None)
        yield sse(chunk_payload(*ids, exchange.response_model,
                                finish_reason=exchange.finish_reason or "stop", content=None))
        options = exchange.request.stream_options
        if options is not None and options.include_usage:
            yield sse(chunk_payload(*ids, exchange.response_model, usage=exchange.final_usage()))
        yield sse("[DONE]")
        error_type = None
    except UpstreamError as exc:  # the upstream broke mid-stream: tell the client in-band
        error_type = exc.error_type
        yield sse(error_body(exc.error_type, exc.message))
    finally:
        exchange.finish(error_type)
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:  # release a proxied upstream stream now, not at GC
            await aclose()


async def _collect(
    exchange: Exchange, first: Delta | None, rest: AsyncIterator[Delta]
) -> dict[str, object]:
    delta = first
    while delta is not None:
        exchange.observe(delta)
        delta = await anext(rest, None)
    exchange.finish()
    return completion_payload(
        exchange.response_id, exchange.created, exchange.response_model, "".join(exchange.text),
        exchange.finish_reason or "stop", exchange.final_usage(),
    )


def _backend_from_env(client: httpx.AsyncClient) -> Backend:
    base_url = os.environ.get("LLM_BASE_URL")
    if base_url:
        return ProxyBackend(
            client, base_url, os.environ.get("LLM_API_KEY"), os.environ.get("LLM_MODEL")
        )
    return SimulatedBackend(SimulatedModel(SimConfig.from_env()))


def main() -> int:
    return serve(SERVICE_NAME, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
