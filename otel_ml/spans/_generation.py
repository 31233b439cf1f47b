"""``{operation} {model}`` spans: the ``generation`` context manager.

It fills a :class:`GenerationInvocation` as the call runs and hands it to
:func:`emit_generation` when the span ends. Streaming is the hot path:
:meth:`GenerationSpan.chunk` only appends a ``perf_counter()`` timestamp and
the text, and :meth:`GenerationSpan.wrap` a timestamp and the item, with no
lock, parsing, metric or attribute write per chunk: a wrapped stream's items
are read once, when it ends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable, Generator, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._safety import guard, report, warn_input
from otel_ml.spans import _stream
from otel_ml.spans._generation_emit import emit_generation
from otel_ml.spans._invocation import GenerationInvocation
from otel_ml.spans._openai import observe_chunk, record_chat_stream
from otel_ml.spans._scope import Recorder, SpanScope
from otel_ml.spans._stream import StreamState
from otel_ml.spans._validate import name_or, non_negative_int

T = TypeVar("T")


class GenerationSpan(SpanScope):
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
        self.invocation = GenerationInvocation(
            model=name_or(model, "unknown", "generation model"),
            provider=name_or(provider, "unknown", "generation provider"),
            operation=name_or(operation, semconv.OP_CHAT, "generation operation"),
            prompt=prompt,
            stream=stream is True,
        )
        # The invocation's own lists, bound here to keep chunk() to two appends.
        self._stamps = self.invocation.stamps
        self._pieces = self.invocation.pieces
        self._open_streams = 0
        self._exited = False

    @property
    def model(self) -> str:
        return self.invocation.model

    @property
    def provider(self) -> str:
        return self.invocation.provider

    @property
    def operation(self) -> str:
        return self.invocation.operation

    def _start(self) -> None:
        invocation = self.invocation
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: invocation.operation,
            semconv.GEN_AI_PROVIDER_NAME: invocation.provider,
            semconv.GEN_AI_REQUEST_MODEL: invocation.model,
            semconv.GEN_AI_REQUEST_STREAM: invocation.stream,
        }
        content = self._recorder.content
        if content.enabled and invocation.prompt is not None:
            attributes[semconv.GEN_AI_INPUT_MESSAGES] = content.json(
                content.input_messages(invocation.prompt), keep="last"
            )
        if invocation.server_address is not None:
            attributes[semconv.SERVER_ADDRESS] = invocation.server_address
            if invocation.server_port is not None:
                attributes[semconv.SERVER_PORT] = invocation.server_port
        name = f"{invocation.operation} {invocation.model}"
        self._start_span(name, SpanKind.CLIENT, attributes)

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
        self._open_streams += 1
        return _stream.wrap(stream, self._stream_closed)

    def wrap_async(self, stream: AsyncIterable[T]) -> AsyncGenerator[T, None]:
        """Async version of :meth:`wrap`."""
        self._open_streams += 1
        return _stream.wrap_async(stream, self._stream_closed)

    def hold(self) -> StreamState:
        """Keep the span open past the ``with`` block for a stream that a
        provider integration proxies; :meth:`release` ends it, once."""
        self._open_streams += 1
        return StreamState()

    def release(self, state: StreamState) -> None:
        """The held stream ended: exhausted (``state.finished``), failed
        (``state.error``) or abandoned. A second call does nothing."""
        self._stream_closed(state)

    def output(self, text: str) -> None:
        """The final output text; tokens are counted from it when usage is absent."""
        if isinstance(text, str):
            self.invocation.output_text = text
        else:
            warn_input(f"generation output() takes str, got {type(text).__name__}; ignored")

    def usage(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        cache_write_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
    ) -> None:
        """Provider-reported token usage; always wins over local counts.

        As in the GenAI conventions, ``input_tokens`` includes the cached
        (cache-read) and cache-write tokens, and ``output_tokens`` the
        reasoning tokens: a provider that reports them apart (Anthropic) is
        summed by its integration before it calls this.
        """
        invocation = self.invocation
        value = non_negative_int(input_tokens, "usage input_tokens")
        if value is not None:
            invocation.input_tokens = value
        value = non_negative_int(output_tokens, "usage output_tokens")
        if value is not None:
            invocation.output_tokens = value
        value = non_negative_int(cached_input_tokens, "usage cached_input_tokens")
        if value is not None:
            invocation.cached_input_tokens = value
        value = non_negative_int(cache_write_input_tokens, "usage cache_write_input_tokens")
        if value is not None:
            invocation.cache_write_input_tokens = value
        value = non_negative_int(reasoning_output_tokens, "usage reasoning_output_tokens")
        if value is not None:
            invocation.reasoning_output_tokens = value

    def server(self, address: str | None, port: int | None = None) -> None:
        """The provider endpoint (``server.address``/``server.port``).

        Called before the span starts, the attributes are on the span from
        its start, where samplers can see them.
        """
        invocation = self.invocation
        if isinstance(address, str) and address:
            invocation.server_address = address[:256]
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            invocation.server_port = port

    def response(
        self,
        model: str | None = None,
        finish_reasons: Sequence[str] | None = None,
        response_id: str | None = None,
    ) -> None:
        """Response metadata reported by the provider."""
        invocation = self.invocation
        if isinstance(model, str) and model:
            invocation.response_model = model
        if isinstance(finish_reasons, (list, tuple)):
            invocation.finish_reasons = [r for r in finish_reasons if isinstance(r, str)]
        if isinstance(response_id, str) and response_id:
            invocation.response_id = response_id

    @property
    def time_to_first_chunk(self) -> float | None:
        """Seconds from span start to the first non-empty chunk, once there is
        one (for a wrapped stream: once the stream has ended)."""
        return self._stamps[0] - self._t0 if self._stamps else None

    def _read_stream(self, state: StreamState) -> None:
        """What a stream carried, read once at its end: its text chunks as
        observed, and the items it kept whole (``kept_stamps[i]`` is when
        ``kept[i]`` reached the application)."""
        kept, state.kept = state.kept, []  # read once; do not keep them alive
        if kept:
            first = kept[0]
            if type(first) is not str and not isinstance(first, Mapping) and (
                getattr(first, "choices", None) is not None
            ):
                record_chat_stream(self, state.kept_stamps, kept)  # OpenAI SDK chunks
            else:
                for stamp, item in zip(state.kept_stamps, kept, strict=False):
                    self._read_item(stamp, item)
        self._stamps.extend(state.stamps)
        self._pieces.extend(state.pieces)
        stamps = self._stamps
        if sorted(stamps) != stamps:
            # Kept chunks with text, chunk() or another stream: back in time order.
            ordered = sorted(zip(stamps, self._pieces, strict=True), key=lambda pair: pair[0])
            stamps[:] = [stamp for stamp, _ in ordered]
            self._pieces[:] = [piece for _, piece in ordered]

    def _read_item(self, stamp: float, item: Any) -> None:
        if type(item) is str:
            text: str | None = item
        else:
            try:
                text = observe_chunk(self, item)
            except Exception as exc:  # a malformed chunk must not cost the others
                report("generation stream chunk", exc)
                return
        if text:
            self._stamps.append(stamp)
            self._pieces.append(text)

    def _stream_closed(self, state: StreamState) -> None:
        if state.closed:
            return
        state.closed = True
        with guard("generation stream read"):
            self._read_stream(state)
        with guard("generation stream end"):
            self._open_streams -= 1
            if not state.finished:
                self.invocation.abandoned = True
            if self._exited and self._open_streams == 0:
                self._end(state.error)

    def _exit(self, exc: BaseException | None) -> None:
        self._exited = True
        if exc is None and self._open_streams > 0:
            return  # the stream outlives the block: it ends the span when it closes
        self._end(exc)

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        duration = time.perf_counter() - self._t0
        emit_generation(self._recorder, span, self.invocation, self._t0, duration, exc)
