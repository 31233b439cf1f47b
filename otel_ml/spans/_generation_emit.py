"""Turning a finished :class:`GenerationInvocation` into span attributes and
metrics, once per call.

Histograms cost a few µs per record in the OTel Python SDK, so nothing here
runs per chunk: TTFT, the time-per-chunk points, tokens and cost are computed
and recorded when the call ends, and the chunk gaps go to the SDK as one
measurement where otel-ml's providers allow it (``metrics.record_gaps``).
"""

from __future__ import annotations

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml.metrics import record_gaps
from otel_ml.spans._invocation import GenerationInvocation
from otel_ml.spans._openai import prompt_text
from otel_ml.spans._scope import Recorder
from otel_ml.spans._validate import error_type
from otel_ml.tokens import count_tokens


def emit_generation(
    recorder: Recorder,
    span: Span,
    invocation: GenerationInvocation,
    started: float,
    duration: float,
    exc: BaseException | None,
) -> None:
    """Set the final span attributes and record every generation metric."""
    attributes = span_attributes(recorder, invocation, started)
    input_tokens, output_tokens, estimated = token_counts(invocation)
    if input_tokens is not None:
        attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if output_tokens is not None:
        attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    attributes[semconv.LLM_USAGE_ESTIMATED] = estimated
    cost = _cost(recorder, invocation, input_tokens, output_tokens)
    if cost is not None:
        attributes[semconv.GEN_AI_USAGE_COST_AMOUNT] = cost
        attributes[semconv.GEN_AI_USAGE_COST_CURRENCY] = "USD"
    span.set_attributes(attributes)
    _record_metrics(recorder, invocation, started, duration, input_tokens, output_tokens, cost, exc)


def span_attributes(
    recorder: Recorder, invocation: GenerationInvocation, started: float
) -> dict[str, AttributeValue]:
    """The attributes known only at the end: stream timing and the response."""
    attributes: dict[str, AttributeValue] = {}
    stamps = invocation.stamps
    if stamps:
        attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = stamps[0] - started
        attributes[semconv.LLM_OUTPUT_CHUNK_COUNT] = len(stamps)
    if len(stamps) > 1:
        mean_gap = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        attributes[semconv.LLM_TIME_PER_OUTPUT_CHUNK_MEAN] = mean_gap
    if invocation.abandoned:
        attributes[semconv.LLM_STREAM_ABANDONED] = True
    if invocation.response_model:
        attributes[semconv.GEN_AI_RESPONSE_MODEL] = invocation.response_model
    if invocation.response_id:
        attributes[semconv.GEN_AI_RESPONSE_ID] = invocation.response_id
    finish_reasons = invocation.finish_reasons
    if invocation.abandoned and not finish_reasons:
        # The conventions' value for a response cut off before the provider ended it.
        finish_reasons = [semconv.FINISH_REASON_ERROR]
    if finish_reasons:
        attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
    if invocation.cached_input_tokens:
        attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = invocation.cached_input_tokens
    if invocation.cache_write_input_tokens:
        attributes[semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = (
            invocation.cache_write_input_tokens
        )
    if invocation.reasoning_output_tokens is not None:
        attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = (
            invocation.reasoning_output_tokens
        )
    content = recorder.content
    if content.enabled and (text := invocation.text()):
        attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = content.json(
            content.output_messages(text, invocation.finish_reasons)
        )
    return attributes


def token_counts(invocation: GenerationInvocation) -> tuple[int | None, int | None, bool]:
    """(input, output, estimated): provider usage where reported, else a local count."""
    estimated = False
    input_tokens = invocation.input_tokens
    if input_tokens is None and invocation.prompt is not None:
        input_tokens = count_tokens(prompt_text(invocation.prompt), invocation.model)
        estimated = True
    output_tokens = invocation.output_tokens
    if output_tokens is None:
        text = invocation.text()
        if text:
            output_tokens = count_tokens(text, invocation.model)
            estimated = True
    return input_tokens, output_tokens, estimated


def _cost(
    recorder: Recorder,
    invocation: GenerationInvocation,
    input_tokens: int | None,
    output_tokens: int | None,
) -> float | None:
    if input_tokens is None and output_tokens is None:
        return None
    price = recorder.prices.lookup(invocation.model)
    if price is None:
        return None
    return price.cost(
        input_tokens or 0,
        output_tokens or 0,
        invocation.cached_input_tokens,
        invocation.cache_write_input_tokens,
    )


def _record_metrics(
    recorder: Recorder,
    invocation: GenerationInvocation,
    started: float,
    duration: float,
    input_tokens: int | None,
    output_tokens: int | None,
    cost: float | None,
    exc: BaseException | None,
) -> None:
    instruments = recorder.instruments
    attributes: dict[str, AttributeValue] = {
        semconv.GEN_AI_OPERATION_NAME: invocation.operation,
        semconv.GEN_AI_PROVIDER_NAME: invocation.provider,
        semconv.GEN_AI_REQUEST_MODEL: recorder.models.fold(invocation.model),
    }
    recorder.tenant_attribute(attributes)
    if input_tokens is not None:
        instruments.token_usage.record(
            input_tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
        )
    if output_tokens is not None:
        instruments.token_usage.record(
            output_tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT}
        )
    instruments.record_usage_details(
        attributes,
        cache_read_input_tokens=invocation.cached_input_tokens or None,
        cache_write_input_tokens=invocation.cache_write_input_tokens or None,
        reasoning_output_tokens=invocation.reasoning_output_tokens,
    )
    if cost is not None:
        instruments.cost.add(cost, attributes)
    elif input_tokens is not None or output_tokens is not None:
        instruments.cost_unpriced.add(1, attributes)
    duration_attributes = dict(attributes)
    if exc is not None:
        duration_attributes[semconv.ERROR_TYPE] = error_type(exc)
    instruments.operation_duration.record(duration, duration_attributes)
    stamps = invocation.stamps
    if stamps:
        instruments.time_to_first_chunk.record(stamps[0] - started, attributes)
    record_gaps(instruments.time_per_output_chunk, stamps, attributes)
