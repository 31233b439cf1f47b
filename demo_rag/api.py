"""rag-api: the product's edge. Authenticates, retrieves, prompts, streams, scores.

- ``POST /ask {question, stream?}`` with an ``X-API-Key`` (or ``Authorization:
  Bearer``) header. The key's tenant, from the tenants file, is set with
  ``otel_ml.tenant`` and travels to vectordb and llm in W3C baggage. A ``tenant.id``
  sent by the client in its own baggage header is removed before any span exists
  (:func:`otel_ml.strip_client_tenant`): tenant identity comes from authentication only.
  The answer comes back as JSON, or as server-sent events (``token`` events, then
  ``done`` or ``error``) when ``stream`` is true; both carry the trace id, also in the
  ``X-Trace-Id`` header.
- ``POST /feedback {trace_id, kind | score}`` records thumbs up/down, copy to
  clipboard or a 0..1 score, linked to the answer's trace.

Every answer is evaluated for groundedness against its retrieved context with
:mod:`otel_ml.evaluation` (offline, or an LLM judge with ``DEMO_RAG_GROUNDEDNESS=llm_judge``):
a ``gen_ai.evaluation.result`` event on the request's trace and a point on the
``llm.evaluation.score`` histogram; the score is also on the request's server span
(``rag.groundedness.score``, which the drift reference is made from) and in the answer.
Answer and context relevance are evaluated off the request path, by an
``otel_ml.evaluation.Evaluations`` runner (``DEMO_RAG_EVAL_SAMPLE_RATE``, default 1).

Every answer also feeds a RAG drift monitor (:func:`otel_ml.drift.rag_monitor`): retrieval
top score, document count, answer length in tokens and groundedness, compared with a
healthy baseline (``data/rag_reference.json``, made by :mod:`demo_rag.make_reference`) every
``DEMO_RAG_DRIFT_INTERVAL`` seconds and exported as the ``ml.drift.*`` gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, cast

import httpx
import openai
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from pydantic import BaseModel, Field, model_validator
from starlette.datastructures import Headers

import otel_ml
from demo_rag.openai_wire import SSE_MEDIA_TYPE, UpstreamError, Usage, sse
from demo_rag.service import new_app, serve
from demo_rag.simulator import DEFAULT_MODEL
from demo_rag.tenants import TenantDirectory
from otel_ml import semconv
from otel_ml.drift import DriftMonitor, feed_rag, rag_monitor
from otel_ml.evaluation import (
    AnswerRelevance,
    ContextRelevance,
    EvaluationInput,
    Evaluations,
    Evaluator,
    Groundedness,
)
from otel_ml.tokens import preload as preload_tokenizer

SERVICE_NAME: Final = "rag-api"
API_KEY_HEADER: Final = "X-API-Key"
TRACE_ID_HEADER: Final = "X-Trace-Id"
SYSTEM_PROMPT: Final = (
    "You are the Nimbus Cloud help-centre assistant. Answer the question using only the "
    "context below and cite the document id in brackets. If the context does not contain "
    "the answer, say so."
)
_MAX_REMEMBERED_ANSWERS: Final = 10_000
# A question is at most 2000 characters; 64 KiB is room for any JSON escaping of it.
MAX_BODY_BYTES: Final = 64 * 1024
# Paths whose body is read only once the caller is known (AuthenticateFirst).
_AUTHENTICATED_PATHS: Final = frozenset({"/ask", "/feedback"})
# The healthy baseline the drift monitor compares answers with (demo_rag.make_reference).
DRIFT_REFERENCE: Final = Path(__file__).resolve().parent / "data" / "rag_reference.json"
DRIFT_REFERENCE_ENV: Final = "DEMO_RAG_DRIFT_REFERENCE"
DRIFT_INTERVAL_ENV: Final = "DEMO_RAG_DRIFT_INTERVAL"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Configuration from the environment (see docs/demo.md)."""

    vectordb_url: str
    llm_url: str
    model: str = DEFAULT_MODEL
    top_k: int = 4
    scorer: Literal["overlap", "llm_judge"] = "overlap"
    timeout_s: float = 60.0
    drift_reference: Path | None = DRIFT_REFERENCE  # None: no drift monitor
    drift_interval_s: float = 10.0
    eval_sample_rate: float = 1.0  # share of answers the relevance evaluators see

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        missing = [name for name in ("VECTORDB_URL", "LLM_URL") if not environ.get(name)]
        if missing:
            raise RuntimeError(f"set {' and '.join(missing)} (base URLs of the services)")
        scorer = environ.get("DEMO_RAG_GROUNDEDNESS", "overlap")
        if scorer not in ("overlap", "llm_judge"):
            raise RuntimeError(f"DEMO_RAG_GROUNDEDNESS must be overlap or llm_judge: {scorer!r}")
        interval = float(environ.get(DRIFT_INTERVAL_ENV) or 10.0)
        if not interval > 0:
            raise RuntimeError(f"{DRIFT_INTERVAL_ENV} must be a positive number of seconds")
        # Set but empty turns drift monitoring off (make_reference records without it).
        reference = environ.get(DRIFT_REFERENCE_ENV, str(DRIFT_REFERENCE))
        sample_rate = float(environ.get("DEMO_RAG_EVAL_SAMPLE_RATE") or 1.0)
        if not 0.0 <= sample_rate <= 1.0:
            raise RuntimeError("DEMO_RAG_EVAL_SAMPLE_RATE must be between 0 and 1")
        return cls(
            vectordb_url=environ["VECTORDB_URL"].rstrip("/"),
            llm_url=environ["LLM_URL"].rstrip("/"),
            model=environ.get("DEMO_RAG_MODEL") or DEFAULT_MODEL,
            top_k=int(environ.get("DEMO_RAG_TOP_K") or 4),
            scorer="llm_judge" if scorer == "llm_judge" else "overlap",
            timeout_s=float(environ.get("DEMO_RAG_TIMEOUT_S") or 60.0),
            drift_reference=Path(reference) if reference else None,
            drift_interval_s=interval,
            eval_sample_rate=sample_rate,
        )

    def llm_client(self) -> openai.AsyncOpenAI:
        """The official client, pointed at the llm service's OpenAI-compatible API.

        No retries: a failed answer is reported to the caller at once, and one
        question stays one LLM request in the trace. The key is the llm
        service's business; the client only insists on having one.
        """
        return openai.AsyncOpenAI(
            base_url=f"{self.llm_url}/v1",
            api_key=os.environ.get("DEMO_RAG_LLM_API_KEY") or "demo",
            timeout=openai.Timeout(self.timeout_s, connect=5.0),
            max_retries=0,
        )

    def judge_client(self) -> openai.OpenAI:
        """The LLM judge's client: synchronous, as otel_ml.evaluation's judges are
        (the api runs them in a worker thread); same service, same settings."""
        return openai.OpenAI(
            base_url=f"{self.llm_url}/v1",
            api_key=os.environ.get("DEMO_RAG_LLM_API_KEY") or "demo",
            timeout=openai.Timeout(self.timeout_s, connect=5.0),
            max_retries=0,
        )

    def groundedness(self, judge: openai.OpenAI | None) -> Groundedness:
        """Offline, or the judge: the llm service grading with the demo's model."""
        if self.scorer == "llm_judge" and judge is not None:
            return Groundedness(judge=judge, judge_model=self.model,
                                judge_timeout=self.timeout_s)
        return Groundedness()


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    stream: bool = False


class FeedbackRequest(BaseModel):
    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    kind: Literal["thumbs_up", "thumbs_down", "copy_to_clipboard"] | None = None
    score: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _kind_or_score(self) -> FeedbackRequest:
        if self.kind is None and self.score is None:
            raise ValueError("give a kind (thumbs_up, thumbs_down, copy_to_clipboard) or a score")
        return self


@dataclass
class Answer:
    text: str
    sources: list[str]
    model: str
    finish_reason: str | None = None
    usage: Usage | None = None
    groundedness: float | None = None
    response_id: str | None = None

    def as_dict(self, trace_id: str) -> dict[str, Any]:
        return {
            "trace_id": trace_id,
            "answer": self.text,
            "sources": self.sources,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.as_dict() if self.usage else None,
            "groundedness": self.groundedness,
        }


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    answer: Answer


@dataclass(frozen=True)
class Failed:
    error: UpstreamError


Event = Token | Done | Failed


@contextlib.contextmanager
def upstream_errors() -> Iterator[None]:
    """The OpenAI client's exceptions as the api's :class:`UpstreamError`."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise UpstreamError(exc.status_code, _error_type(exc, "http_error"), exc.message) from exc
    except openai.APIConnectionError as exc:  # also timeouts
        raise UpstreamError(502, "llm_unreachable", str(exc)) from exc
    except openai.APIError as exc:  # an error event inside the stream
        raise UpstreamError(502, _error_type(exc, "stream_error"), exc.message) from exc


def _chat_messages(messages: list[dict[str, str]]) -> list[ChatCompletionMessageParam]:
    """Role/content dicts are what the client sends; its types want the TypedDicts."""
    return cast("list[ChatCompletionMessageParam]", messages)


def _error_type(exc: openai.APIError, default: str) -> str:
    return str(exc.type or exc.code or default)


class RagPipeline:
    """Retrieve, prompt, generate (streaming), then score groundedness."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        llm: openai.AsyncOpenAI,
        telemetry: otel_ml.Telemetry,
        groundedness: Evaluator,
        drift: DriftMonitor | None = None,
        relevance: Evaluations | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._llm = llm
        self._telemetry = telemetry
        self._groundedness = groundedness
        self._drift = drift
        self._relevance = relevance

    async def answer(self, question: str, root: Span, on_token: Callable[[str], None]) -> Answer:
        hits = await self._retrieve(question)
        # What the answer used, as the drift monitor is fed it (below): the retrieval
        # span under vectordb counts the rows Chroma returned, before the zero-score
        # ones are dropped; demo_rag.make_reference reads this one.
        root.set_attribute(semconv.RAG_RETRIEVAL_DOCUMENT_COUNT, len(hits))
        messages = build_messages(question, hits)
        answer = await self._generate(messages, [h["id"] for h in hits], on_token)
        evaluated = EvaluationInput(
            answer=answer.text, contexts=tuple(h["text"] for h in hits), question=question,
            model=answer.model, response_id=answer.response_id,
        )
        answer.groundedness = await self._evaluate_groundedness(root, evaluated)
        if answer.groundedness is not None:
            root.set_attribute(semconv.RAG_GROUNDEDNESS_SCORE, answer.groundedness)
        if self._relevance is not None:  # off the request path: queued, never awaited
            self._relevance.submit(root, evaluated)
        if self._drift is not None:
            feed_rag(
                self._drift,
                top_score=top_score(hits),
                document_count=len(hits),
                answer_tokens=answer.usage.completion_tokens if answer.usage else None,
                groundedness=answer.groundedness,
            )
        return answer

    async def _retrieve(self, question: str) -> list[dict[str, Any]]:
        url = f"{self.settings.vectordb_url}/search"
        try:
            response = await self._client.post(
                url, json={"query": question, "top_k": self.settings.top_k}
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(502, "retrieval_unreachable", f"{url}: {exc}") from exc
        if response.status_code == 503:
            # The retrieval service's database is down or past its timeout: the
            # answer is unavailable for now (retry later), not a broken upstream.
            raise UpstreamError(
                503, "retrieval_unavailable", f"vectordb answered 503: {response.text[:200]}"
            )
        if response.status_code != 200:
            raise UpstreamError(
                502, "retrieval_failed", f"vectordb answered {response.status_code}"
            )
        hits: list[dict[str, Any]] = response.json()["hits"]
        return hits

    async def _generate(
        self, messages: list[dict[str, str]], sources: list[str], on_token: Callable[[str], None]
    ) -> Answer:
        """Stream the answer through the instrumented client: its generation span
        (tokens, cost, TTFT, time per chunk) comes from ``instrument_openai``."""
        answer = Answer(text="", sources=sources, model=self.settings.model)
        pieces: list[str] = []
        with upstream_errors():
            stream = await self._llm.chat.completions.create(
                model=self.settings.model,
                messages=_chat_messages(messages),
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                async for chunk in stream:
                    answer.model = chunk.model or answer.model
                    answer.response_id = chunk.id or answer.response_id
                    if chunk.usage is not None:
                        answer.usage = Usage(
                            chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                        )
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    answer.finish_reason = choice.finish_reason or answer.finish_reason
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        on_token(choice.delta.content)
        answer.text = "".join(pieces)
        return answer

    async def _evaluate_groundedness(self, root: Span, data: EvaluationInput) -> float | None:
        """Evaluate inline (the answer carries the score), emitting the event on the
        request's trace with the answer's response id; None if the evaluation
        failed: never fail the answer. A judge is a blocking call: a worker thread
        (with this request's context: tenant and span) makes it."""
        evaluate = functools.partial(self._telemetry.evaluate, root, data, [self._groundedness])
        if self.settings.scorer == "llm_judge":
            results = await asyncio.to_thread(evaluate)
        else:
            results = evaluate()
        result = results[0] if results else None
        if result is None or result.score is None:
            logger.warning("groundedness evaluation failed",
                           extra={"error": result.error_type if result else "unknown"})
            return None
        return round(result.score, 4)


def top_score(hits: Sequence[Mapping[str, Any]]) -> float:
    """The best retrieval score of a question, the drift monitor's top-score feature.

    No hits means 0.0, not a missing value: the vectordb drops only rows scoring 0, so
    an empty result is a measured similarity of 0, the clearest retrieval drift there is.
    """
    return max((float(hit["score"]) for hit in hits), default=0.0)


def start_drift_monitor(settings: Settings, telemetry: otel_ml.Telemetry) -> DriftMonitor | None:
    """The RAG drift monitor, recomputing on its interval; None when switched off.

    A missing or unreadable reference file raises here, at startup, rather than leaving
    a service that silently exports no drift.
    """
    if settings.drift_reference is None:
        return None
    monitor = rag_monitor(settings.drift_reference, meter=telemetry.meter)
    monitor.start(settings.drift_interval_s)
    return monitor


def stop_drift_monitor(monitor: DriftMonitor | None) -> None:
    """Stop recomputing, then compute the final verdict over everything fed.

    The gauges stay registered, so the metric export at telemetry shutdown carries that
    verdict: a short run (or the demo's drift phase) is reported even when it ended
    between two recomputes.
    """
    if monitor is not None:
        monitor.stop()
        monitor.compute()


def build_messages(question: str, hits: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The RAG prompt: instructions and ``[id] title | text`` context lines, then the question."""
    context = "\n".join(
        f"[{h['id']}] {h.get('title', '')} | {h['text']}" for h in hits
    ) or "(no documents found)"
    return [
        {"role": "system", "content": f"{SYSTEM_PROMPT}\n\nContext:\n{context}"},
        {"role": "user", "content": question},
    ]


class AskRun:
    """One answer being produced in its own task, read as a stream of events.

    The pipeline runs in a task created inside the request's tenant context, so all
    its spans and baggage belong to that request, and each span is opened and closed
    in that one task, whether the client reads JSON or a stream.
    """

    def __init__(self, pipeline: RagPipeline, question: str, root: Span) -> None:
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._task = asyncio.create_task(self._produce(pipeline, question, root))

    async def _produce(self, pipeline: RagPipeline, question: str, root: Span) -> None:
        try:
            answer = await pipeline.answer(question, root, self._token)
        except UpstreamError as exc:
            self._events.put_nowait(Failed(exc))
        except Exception as exc:  # a bug: report it to the client instead of hanging it
            logger.exception("answer failed")
            self._events.put_nowait(Failed(UpstreamError(500, "internal_error", str(exc))))
        else:
            self._events.put_nowait(Done(answer))

    def _token(self, text: str) -> None:
        self._events.put_nowait(Token(text))

    async def next(self) -> Event:
        return await self._events.get()

    def cancel(self) -> None:
        self._task.cancel()


@dataclass
class _Served:
    tenant: str
    span_id: str


@dataclass
class AnswerLog:
    """Recently served answers: lets feedback link to the answer's span and be
    rejected when another tenant's trace id is given. Bounded: an unknown trace id
    (older, or served before a restart) is accepted, just not span-linked."""

    limit: int = _MAX_REMEMBERED_ANSWERS
    _items: OrderedDict[str, _Served] = field(default_factory=OrderedDict)

    def remember(self, trace_id: str, tenant: str, span_id: str) -> None:
        self._items[trace_id] = _Served(tenant, span_id)
        self._items.move_to_end(trace_id)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def get(self, trace_id: str) -> _Served | None:
        return self._items.get(trace_id)


_UNAUTHENTICATED: Final = "missing or unknown API key"
_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}


def api_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer``."""
    if x_api_key is None and authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


def authenticate(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias=API_KEY_HEADER)] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The caller's tenant, from its API key; 401 without a known key."""
    directory: TenantDirectory = request.app.state.tenants
    tenant = directory.lookup(api_key(x_api_key, authorization))
    if tenant is None:
        raise HTTPException(401, _UNAUTHENTICATED, headers=_CHALLENGE)
    return tenant


class AuthenticateFirst:
    """Answers 401 before the body of an authenticated path is read.

    FastAPI reads and parses the body before it resolves dependencies, so without
    this an anonymous client could make the api buffer and parse a body up to the cap
    per request. The ``authenticate`` dependency still yields the tenant.
    """

    def __init__(self, app: Any, directory: TenantDirectory) -> None:
        self.app = app
        self.directory = directory

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in _AUTHENTICATED_PATHS:
            headers = Headers(scope=scope)
            key = api_key(headers.get(API_KEY_HEADER), headers.get("authorization"))
            if self.directory.lookup(key) is None:
                response = JSONResponse({"detail": _UNAUTHENTICATED}, 401, headers=_CHALLENGE)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


Tenant = Annotated[str, Depends(authenticate)]


def _trace_ids(span: Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def create_app(
    telemetry: otel_ml.Telemetry,
    settings: Settings | None = None,
    directory: TenantDirectory | None = None,
) -> FastAPI:
    """The api app; settings and tenants default to the environment's."""
    settings = settings or Settings.from_env()
    directory = directory or TenantDirectory.from_file()
    # A failed upstream call is priced from its prompt, counted locally: build
    # the tokenizer before the service reports healthy, not on a request.
    preload_tokenizer(settings.model)
    served = AnswerLog()
    state: dict[str, RagPipeline] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.timeout_s, connect=5.0)
        drift = start_drift_monitor(settings, telemetry)
        relevance = telemetry.evaluations(
            [AnswerRelevance(), ContextRelevance()], sample_rate=settings.eval_sample_rate,
        )
        try:
            async with httpx.AsyncClient(timeout=timeout) as client, settings.llm_client() as llm:
                otel_ml.instrument_openai(llm, telemetry=telemetry)
                with contextlib.ExitStack() as stack:
                    judge = None
                    if settings.scorer == "llm_judge":
                        judge = stack.enter_context(settings.judge_client())
                        otel_ml.instrument_openai(judge, telemetry=telemetry)
                    state["pipeline"] = RagPipeline(
                        settings, client, llm, telemetry, settings.groundedness(judge), drift,
                        relevance,
                    )
                    yield
        finally:
            relevance.shutdown()
            stop_drift_monitor(drift)

    app = new_app(SERVICE_NAME, MAX_BODY_BYTES, lifespan)
    app.state.tenants = directory
    app.add_middleware(AuthenticateFirst, directory=directory)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "service": SERVICE_NAME, "tenants": len(directory.tenants)}

    @app.post("/ask")
    async def ask(request: AskRequest, tenant: Tenant) -> Response:
        root = trace.get_current_span()
        trace_id, span_id = _trace_ids(root)
        headers = {TRACE_ID_HEADER: trace_id}
        with telemetry.tenant(tenant):
            run = AskRun(state["pipeline"], request.question, root)
        served.remember(trace_id, tenant, span_id)
        first = await _next_answer_or_failure(run, streaming=request.stream)
        if isinstance(first, Failed):
            return _failure_response(first.error, trace_id, headers)
        if not request.stream:
            assert isinstance(first, Done)
            _log_answer(first.answer, tenant)
            return JSONResponse(first.answer.as_dict(trace_id), headers=headers)
        return StreamingResponse(
            _answer_events(run, first, root, trace_id, tenant),
            media_type=SSE_MEDIA_TYPE,
            headers={**headers, "Cache-Control": "no-cache"},
        )

    @app.post("/feedback", status_code=202)
    async def feedback(request: FeedbackRequest, tenant: Tenant) -> dict[str, object]:
        answer = served.get(request.trace_id)
        with telemetry.tenant(tenant):
            if answer is not None and answer.tenant != tenant:
                raise HTTPException(403, "this answer belongs to another tenant")
            telemetry.feedback(request.trace_id, kind=request.kind, score=request.score,
                               span_id=answer.span_id if answer else None)
        return {"status": "recorded", "trace_id": request.trace_id, "linked": answer is not None}

    return app


async def _next_answer_or_failure(run: AskRun, streaming: bool) -> Event:
    """For JSON, the final event; for a stream, the first one (a token, usually)."""
    event = await run.next()
    while not streaming and isinstance(event, Token):
        event = await run.next()
    return event


def _failure_response(error: UpstreamError, trace_id: str, headers: Mapping[str, str]) -> Response:
    logger.warning("answer failed", extra={"error_type": error.error_type, "status": error.status})
    status = 500 if error.status == 500 and error.error_type == "internal_error" else 502
    if error.error_type == "retrieval_unavailable":
        status = 503
    body = {"trace_id": trace_id,
            "error": {"type": error.error_type, "message": error.message, "status": error.status}}
    return JSONResponse(body, status_code=status, headers=dict(headers))


async def _answer_events(
    run: AskRun, first: Event, root: Span, trace_id: str, tenant: str
) -> AsyncIterator[bytes]:
    event = first
    try:
        while True:
            if isinstance(event, Token):
                yield sse({"text": event.text}, event="token")
            elif isinstance(event, Done):
                _log_answer(event.answer, tenant)
                yield sse(event.answer.as_dict(trace_id), event="done")
                return
            else:
                # Headers (200) are gone already: the failure is reported in-band, and on
                # the server span, which would otherwise look like a success.
                root.set_status(Status(StatusCode.ERROR, event.error.error_type))
                root.set_attribute(semconv.ERROR_TYPE, event.error.error_type)
                yield sse({"trace_id": trace_id, "error": {"type": event.error.error_type,
                                                          "message": event.error.message}},
                          event="error")
                return
            event = await run.next()
    finally:
        run.cancel()  # a no-op once finished; stops the work if the client went away


def _log_answer(answer: Answer, tenant: str) -> None:
    logger.info("answered", extra={
        "tenant": tenant, "model": answer.model, "sources": answer.sources,
        "groundedness": answer.groundedness,
        "output_tokens": answer.usage.completion_tokens if answer.usage else None,
    })


def main() -> int:
    return serve(SERVICE_NAME, create_app, public=True)


if __name__ == "__main__":
    raise SystemExit(main())
