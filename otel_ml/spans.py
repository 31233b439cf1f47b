"""Context managers for retrieval, generation and classic-model inference spans.

Each works with ``with`` and ``async with``. Application exceptions propagate
unchanged (the span records them); otel-ml's own faults are logged and
swallowed by :func:`otel_ml._safety.guard`.

Streaming is the hot path: :meth:`GenerationSpan.chunk` only appends a
``perf_counter()`` timestamp and the text (well under 1 µs). Histograms cost
about 3 µs per record in the OTel Python SDK, so TTFT, the time-per-chunk
points, tokens and cost are all computed and recorded once, when the stream ends.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._safety import guard, warn_input
from otel_ml.cardinality import CardinalityCap
from otel_ml.content import ContentPolicy
from otel_ml.metrics import Instruments
from otel_ml.pricing import PriceTable
from otel_ml.tenancy import TenantCap, current_tenant
from otel_ml.tokens import count_tokens

T = TypeVar("T")
_Scope = TypeVar("_Scope", bound="_SpanScope")

_MAX_PREDICTION_LABELS = 50
# Larger counts are not real usage, and their float sums would overflow the
# cumulative histograms, breaking every later metric export of the process.
_MAX_COUNT = 2**53


@dataclass
class Recorder:
    """What every span needs from its :class:`otel_ml.Telemetry`."""

    tracer: Tracer
    instruments: Instruments
    tenants: TenantCap
    prices: PriceTable
    content: ContentPolicy

    def tenant_attribute(self, attributes: dict[str, AttributeValue]) -> None:
        """Add the capped tenant id of the current context to metric attributes."""
        folded = self.tenants.fold_tenant(current_tenant())
        if folded is not None:
            attributes[semconv.TENANT_ID] = folded


class _SpanScope:
    """A span made current for the duration of a ``with`` block."""

    _span: Span | None = None

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._token: object | None = None
        self._t0 = 0.0
        self._ended = threading.Lock()  # acquired once, by the first _end()

    def _start_span(self, name: str, kind: SpanKind, attributes: dict[str, AttributeValue]) -> None:
        tenant_id = current_tenant()
        if tenant_id is not None:
            attributes[semconv.TENANT_ID] = tenant_id
        self._span = self._recorder.tracer.start_span(name, kind=kind, attributes=attributes)
        self._token = context.attach(trace.set_span_in_context(self._span))
        self._t0 = time.perf_counter()

    def _detach(self) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            context.detach(token)  # type: ignore[arg-type]

    def _end(self, exc: BaseException | None) -> None:
        """Record everything and end the span; runs at most once.

        Only ``Exception`` marks a failure, as in OpenTelemetry itself:
        ``GeneratorExit`` (a client went away), ``KeyboardInterrupt`` and
        task cancellation end the span without calling it an error.
        """
        if self._span is None or not self._ended.acquire(blocking=False):
            return
        if not isinstance(exc, Exception):
            exc = None
        span = self._span
        try:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, _describe(exc)))
                span.set_attribute(semconv.ERROR_TYPE, _error_type(exc))
            # Current while metrics are recorded, so their exemplars point at
            # this span, also when a stream ends it after the with-block.
            token = context.attach(trace.set_span_in_context(span))
            try:
                self._finish(span, exc)
            finally:
                context.detach(token)
        finally:
            span.end()

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        """Set final attributes and record metrics (subclasses)."""

    def __enter__(self: _Scope) -> _Scope:
        with guard(f"{type(self).__name__} start"):
            self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with guard(f"{type(self).__name__} end"):
            self._detach()
        with guard(f"{type(self).__name__} end"):
            self._exit(exc)

    async def __aenter__(self: _Scope) -> _Scope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _start(self) -> None:
        raise NotImplementedError

    def _exit(self, exc: BaseException | None) -> None:
        self._end(exc)


# --- retrieval ---------------------------------------------------------------


class RetrievalSpan(_SpanScope):
    """``retrieval {data_source}``: doc count and similarity-score statistics."""

    def __init__(
        self,
        recorder: Recorder,
        data_source: str,
        query: str | None = None,
        top_k: int | None = None,
    ) -> None:
        super().__init__(recorder)
        self.data_source = _name_or(data_source, "unknown", "retrieval data_source")
        self._query = query
        self._top_k = _non_negative_int(top_k, "retrieval top_k")
        self._hits: list[tuple[str, float | None]] = []

    def _start(self) -> None:
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_RETRIEVAL,
            semconv.GEN_AI_DATA_SOURCE_ID: self.data_source,
        }
        if self._top_k is not None:
            attributes[semconv.GEN_AI_REQUEST_TOP_K] = self._top_k
        if self._recorder.content.enabled and isinstance(self._query, str):
            attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] = self._recorder.content.cap(
                self._query
            )
        self._start_span(f"retrieval {self.data_source}", SpanKind.CLIENT, attributes)

    def record(self, hits: Iterable[Any]) -> None:
        """Record the retrieved documents: objects with ``.id``/``.score``,
        mappings with ``id``/``score`` keys, or ``(id, score)`` pairs."""
        with guard("retrieval record()"):
            if isinstance(hits, (str, bytes)) or not isinstance(hits, Iterable):
                warn_input(f"retrieval record() takes an iterable of hits, got {type(hits)}")
                return
            for hit in hits:
                with guard("retrieval hit"):
                    parsed = _parse_hit(hit)
                    if parsed is not None:
                        self._hits.append(parsed)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        scores = [score for _, score in self._hits if score is not None]
        span.set_attribute(semconv.RAG_RETRIEVAL_DOCUMENT_COUNT, len(self._hits))
        if scores:
            span.set_attributes(
                {
                    semconv.RAG_RETRIEVAL_SCORE_MAX: max(scores),
                    semconv.RAG_RETRIEVAL_SCORE_MIN: min(scores),
                    semconv.RAG_RETRIEVAL_SCORE_MEAN: math.fsum(scores) / len(scores),
                }
            )
        if self._recorder.content.enabled:
            documents = [{"id": doc_id, "score": score} for doc_id, score in self._hits]
            span.set_attribute(
                semconv.GEN_AI_RETRIEVAL_DOCUMENTS, self._recorder.content.json(documents)
            )
        if exc is not None and not self._hits:
            return  # a failed search returned nothing: do not count it as "0 documents"
        instruments = self._recorder.instruments
        source = {semconv.GEN_AI_DATA_SOURCE_ID: self.data_source}
        count_attributes: dict[str, AttributeValue] = dict(source)
        self._recorder.tenant_attribute(count_attributes)
        instruments.retrieval_document_count.record(len(self._hits), count_attributes)
        for score in scores:
            instruments.retrieval_score.record(score, source)


def _parse_hit(hit: Any) -> tuple[str, float | None] | None:
    if isinstance(hit, Mapping):
        doc_id, score = hit.get("id"), hit.get("score")
    elif isinstance(hit, (tuple, list)) and len(hit) == 2:
        doc_id, score = hit
    elif hasattr(hit, "id"):
        doc_id, score = hit.id, getattr(hit, "score", None)
    else:
        warn_input(f"retrieval hit {type(hit).__name__} has no id/score; skipped")
        return None
    return str(doc_id), _finite_float(score, "retrieval hit score")


# --- generation ----------------------------------------------------------------


class GenerationSpan(_SpanScope):
    """``{operation} {model}``: tokens, cost, TTFT and time per output chunk."""

    def __init__(
        self,
        recorder: Recorder,
        model: str,
        provider: str,
        prompt: Any = None,
        stream: bool = False,
        operation: str = semconv.OP_CHAT,
    ) -> None:
        super().__init__(recorder)
        self.model = _name_or(model, "unknown", "generation model")
        self.provider = _name_or(provider, "unknown", "generation provider")
        self.operation = _name_or(operation, semconv.OP_CHAT, "generation operation")
        self._prompt = prompt
        self._stream = stream is True
        self._stamps: list[float] = []
        self._pieces: list[str] = []
        self._output_text: str | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self._cached_input_tokens = 0
        self._response_model: str | None = None
        self._finish_reasons: list[str] = []
        self._response_id: str | None = None
        self._open_streams = 0
        self._exited = False
        self._abandoned = False

    def _start(self) -> None:
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: self.operation,
            semconv.GEN_AI_PROVIDER_NAME: self.provider,
            semconv.GEN_AI_REQUEST_MODEL: self.model,
            semconv.GEN_AI_REQUEST_STREAM: self._stream,
        }
        content = self._recorder.content
        if content.enabled and self._prompt is not None:
            attributes[semconv.GEN_AI_INPUT_MESSAGES] = content.json(
                content.input_messages(self._prompt), keep="last"
            )
        self._start_span(f"{self.operation} {self.model}", SpanKind.CLIENT, attributes)

    # The per-chunk hot path: no locks, no metrics, no attribute writes.
    def chunk(self, text: str) -> None:
        """Record one streamed piece of output text."""
        if type(text) is not str:
            warn_input(f"generation chunk() takes str, got {type(text).__name__}; ignored")
            return
        if text:
            self._stamps.append(time.perf_counter())
            self._pieces.append(text)

    def wrap(self, stream: Iterable[T]) -> Generator[T, None, None]:
        """Yield ``stream``'s items unchanged, recording each as a chunk.

        Items may be ``str`` or OpenAI-style chunks (``choices[0].delta.content``,
        with ``usage`` in the final chunk). If the ``with`` block exits while
        the stream is still open (e.g. it was handed to a streaming HTTP
        response), the span stays open until the stream is exhausted, closed
        or garbage-collected, and ends exactly once.
        """
        state = _StreamState()
        iterator = self._iterate(stream, state)
        self._track(iterator, state)
        return iterator

    def wrap_async(self, stream: AsyncIterable[T]) -> AsyncGenerator[T, None]:
        """Async version of :meth:`wrap`."""
        state = _StreamState()
        iterator = self._iterate_async(stream, state)
        self._track(iterator, state)
        return iterator

    def _iterate(self, stream: Iterable[T], state: _StreamState) -> Generator[T, None, None]:
        try:
            for item in stream:
                self._observe(item)
                yield item
            state.finished = True
        except Exception as exc:
            state.error = exc
            raise
        finally:
            self._stream_closed(state)

    async def _iterate_async(
        self, stream: AsyncIterable[T], state: _StreamState
    ) -> AsyncGenerator[T, None]:
        try:
            async for item in stream:
                self._observe(item)
                yield item
            state.finished = True
        except Exception as exc:
            state.error = exc
            raise
        finally:
            self._stream_closed(state)

    def _track(self, iterator: object, state: _StreamState) -> None:
        # Counted from creation, not first next(): a stream returned before
        # anyone iterates it must still hold the span open. The finalizer
        # covers a stream that is dropped without ever being started.
        self._open_streams += 1
        weakref.finalize(iterator, self._stream_closed, state)

    def output(self, text: str) -> None:
        """The final output text; tokens are counted from it when usage is absent."""
        if isinstance(text, str):
            self._output_text = text
        else:
            warn_input(f"generation output() takes str, got {type(text).__name__}; ignored")

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
    ) -> None:
        """Provider-reported token usage; always wins over local counts."""
        value = _non_negative_int(input_tokens, "usage input_tokens")
        if value is not None:
            self._input_tokens = value
        value = _non_negative_int(output_tokens, "usage output_tokens")
        if value is not None:
            self._output_tokens = value
        value = _non_negative_int(cached_input_tokens, "usage cached_input_tokens")
        if value is not None:
            self._cached_input_tokens = value

    def response(
        self,
        model: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        response_id: str | None = None,
    ) -> None:
        """Response metadata reported by the provider."""
        if isinstance(model, str) and model:
            self._response_model = model
        if isinstance(finish_reasons, (list, tuple)):
            self._finish_reasons = [reason for reason in finish_reasons if isinstance(reason, str)]
        if isinstance(response_id, str) and response_id:
            self._response_id = response_id

    @property
    def time_to_first_chunk(self) -> float | None:
        """Seconds from span start to the first non-empty chunk, once there is one."""
        return self._stamps[0] - self._t0 if self._stamps else None

    def _observe(self, item: Any) -> None:
        if type(item) is str:
            if item:
                self._stamps.append(time.perf_counter())
                self._pieces.append(item)
            return
        with guard("generation stream chunk"):
            text, usage = _openai_chunk(item)
            if text:
                self._stamps.append(time.perf_counter())
                self._pieces.append(text)
            if usage is not None:
                self.usage(*usage)

    def _stream_closed(self, state: _StreamState) -> None:
        if state.closed:
            return
        state.closed = True
        with guard("generation stream end"):
            self._open_streams -= 1
            if not state.finished:
                self._abandoned = True
            if self._exited and self._open_streams == 0:
                self._end(state.error)

    def _exit(self, exc: BaseException | None) -> None:
        self._exited = True
        if exc is None and self._open_streams > 0:
            return  # the stream outlives the block: it ends the span when it closes
        self._end(exc)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        duration = time.perf_counter() - self._t0
        attributes = self._span_attributes()
        input_tokens, output_tokens, estimated = self._token_counts()
        if input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        attributes[semconv.LLM_USAGE_ESTIMATED] = estimated
        cost = self._cost(input_tokens, output_tokens)
        if cost is not None:
            attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] = cost
            attributes[semconv.GEN_AI_USAGE_COST_CURRENCY] = "USD"
        span.set_attributes(attributes)
        self._record_metrics(duration, input_tokens, output_tokens, cost, exc)

    def _span_attributes(self) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {}
        stamps = self._stamps
        if stamps:
            attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = stamps[0] - self._t0
            attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] = len(stamps)
        if len(stamps) > 1:
            mean_gap = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
            attributes[semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN] = mean_gap
        if self._abandoned:
            attributes[semconv.LLM_STREAM_ABANDONED] = True
        if self._response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self._response_model
        if self._finish_reasons:
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = self._finish_reasons
        if self._cached_input_tokens:
            attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self._cached_input_tokens
        content = self._recorder.content
        if content.enabled and (text := self._text()):
            attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = content.json(
                content.output_messages(text, self._finish_reasons)
            )
        return attributes

    def _text(self) -> str:
        if self._output_text is not None:
            return self._output_text
        return "".join(self._pieces)

    def _token_counts(self) -> tuple[int | None, int | None, bool]:
        estimated = False
        input_tokens = self._input_tokens
        if input_tokens is None and self._prompt is not None:
            input_tokens = count_tokens(_prompt_text(self._prompt), self.model)
            estimated = True
        output_tokens = self._output_tokens
        if output_tokens is None:
            text = self._text()
            if text:
                output_tokens = count_tokens(text, self.model)
                estimated = True
        return input_tokens, output_tokens, estimated

    def _cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        if input_tokens is None and output_tokens is None:
            return None
        price = self._recorder.prices.lookup(self.model)
        if price is None:
            return None
        return price.cost(input_tokens or 0, output_tokens or 0, self._cached_input_tokens)

    def _record_metrics(
        self,
        duration: float,
        input_tokens: int | None,
        output_tokens: int | None,
        cost: float | None,
        exc: BaseException | None,
    ) -> None:
        instruments = self._recorder.instruments
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: self.operation,
            semconv.GEN_AI_PROVIDER_NAME: self.provider,
            semconv.GEN_AI_REQUEST_MODEL: self.model,
        }
        self._recorder.tenant_attribute(attributes)
        if input_tokens is not None:
            instruments.token_usage.record(
                input_tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
            )
        if output_tokens is not None:
            instruments.token_usage.record(
                output_tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT}
            )
        if cost is not None:
            instruments.cost.add(cost, attributes)
        elif input_tokens is not None or output_tokens is not None:
            instruments.cost_unpriced.add(1, attributes)
        duration_attributes = dict(attributes)
        if exc is not None:
            duration_attributes[semconv.ERROR_TYPE] = _error_type(exc)
        instruments.operation_duration.record(duration, duration_attributes)
        stamps = self._stamps
        if stamps:
            instruments.time_to_first_chunk.record(stamps[0] - self._t0, attributes)
        per_chunk = instruments.time_per_output_chunk
        for previous, current in itertools.pairwise(stamps):
            per_chunk.record(current - previous, attributes)


class _StreamState:
    __slots__ = ("closed", "error", "finished")

    def __init__(self) -> None:
        self.finished = False
        self.closed = False
        self.error: Exception | None = None


def _openai_chunk(item: Any) -> tuple[str | None, tuple[int | None, int | None] | None]:
    """Text and usage of an OpenAI-style streaming chunk (object or mapping)."""
    choices = _field(item, "choices")
    text = _field(_field(choices[0], "delta"), "content") if choices else None
    usage = _field(item, "usage")
    tokens = None
    if usage:
        tokens = (_field(usage, "prompt_tokens"), _field(usage, "completion_tokens"))
    return (text if isinstance(text, str) else None), tokens


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _prompt_text(prompt: Any) -> str:
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


# --- classic model inference -------------------------------------------------------


class InferenceSpan(_SpanScope):
    """``inference {model}``: one classic-model prediction."""

    def __init__(self, recorder: Recorder, model: str, labels: CardinalityCap) -> None:
        super().__init__(recorder)
        self.model = _name_or(model, "unknown", "inference model")
        self._labels = labels
        self._predictions: list[str] = []

    def _start(self) -> None:
        self._start_span(
            semconv.SPAN_INFERENCE.format(model=self.model),
            SpanKind.INTERNAL,
            {semconv.ML_MODEL: self.model},
        )

    def prediction(self, value: Any) -> None:
        """Record the model's output: a label (str/int/bool) or a score (float)."""
        label = _prediction_label(value)
        if label is not None:
            self._predictions.append(label)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        latency = time.perf_counter() - self._t0
        instruments = self._recorder.instruments
        instruments.inference_latency.record(latency, {semconv.ML_MODEL: self.model})
        if self._predictions:
            span.set_attribute(semconv.ML_PREDICTION, self._predictions[-1])
        for label in self._predictions:
            instruments.prediction_count.add(
                1, {semconv.ML_MODEL: self.model, semconv.ML_PREDICTION: self._labels.fold(label)}
            )


def _prediction_label(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value[:64] if value else None
    if isinstance(value, float) and math.isfinite(value):
        # Scores become one-decimal buckets so the label set stays small.
        return f"{value:.1f}"
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy scalars
        return _prediction_label(value.item())
    warn_input(
        "inference prediction must be a label or a finite score (one value, not an array), "
        f"got {type(value).__name__}; ignored"
    )
    return None


def new_label_cap() -> CardinalityCap:
    return CardinalityCap(_MAX_PREDICTION_LABELS, semconv.LABEL_OVERFLOW)


# --- input validation ----------------------------------------------------------------


def _name_or(value: Any, default: str, what: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()[:256]
    warn_input(f"{what} must be a non-empty str, got {type(value).__name__}; using {default!r}")
    return default


def _non_negative_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        warn_input(f"{what} must be a non-negative int, got {type(value).__name__}; ignored")
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        warn_input(f"{what} must be a non-negative int, got {value!r}; ignored")
        return None
    if not 0 <= value <= _MAX_COUNT:
        warn_input(f"{what} must be between 0 and 2**53, got {value!r}; ignored")
        return None
    return int(value)


def _finite_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except Exception:  # float() runs arbitrary __float__ code
        warn_input(f"{what} must be a number, got {type(value).__name__}; ignored")
        return None
    if not math.isfinite(number):
        warn_input(f"{what} must be finite, got {number!r}; ignored")
        return None
    return number


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the original error
        text = "<unprintable>"
    return f"{type(exc).__name__}: {text}"[:512]


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
