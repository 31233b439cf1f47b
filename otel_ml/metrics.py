"""The instruments otel-ml records, created once per Telemetry.

Two sets of GenAI client metric names exist: the released ones (semconv v1.41,
the default) and the renames on semantic-conventions-genai main, which users
opt into with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``, the
variable and value the conventions prescribe and opentelemetry-instrumentation
reads. The choice is made once, in :meth:`Instruments.create`, so the record
path pays nothing for it and a process never mixes the two. Callers record
through the same fields in both modes; in the opt-in mode those fields route a
point to the instrument the conventions name for its operation.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv

# The operations the conventions call inference (client-inference.md).
_INFERENCE_OPERATIONS = frozenset(
    {semconv.OP_CHAT, semconv.OP_TEXT_COMPLETION, semconv.OP_GENERATE_CONTENT}
)

Attributes = Mapping[str, AttributeValue]


class Recorder(Protocol):
    """What callers record a point through: a Histogram, or a router in opt-in mode."""

    def record(self, amount: float, attributes: Attributes | None = None) -> None: ...


class GapBatch:
    """The chunk gaps of one stream, handed to the SDK in a single measurement.

    ``record_gaps`` records one gap through the public API with this batch in
    the measurement's context; an aggregation that knows it (the one
    :func:`otel_ml.providers.chunk_gap_views` installs on otel-ml's own
    providers) merges ``rest`` into the same histogram point and sets
    ``claimed``. Unclaimed (a user's own providers, another SDK), ``rest`` is
    recorded one measurement per gap, so the histogram is exact either way.
    """

    __slots__ = ("claimed", "rest")

    def __init__(self, rest: list[float]) -> None:
        self.rest = rest
        self.claimed = False


GAP_BATCH_KEY = otel_context.create_key("otel_ml.chunk_gap_batch")
# A context without a span: the default (trace-based) exemplar filter offers
# no measurement made in it to the reservoir. Non-empty, as the SDK replaces
# an empty (falsy) context with the current one.
_NO_SPAN = otel_context.set_value(GAP_BATCH_KEY, None, otel_context.Context())


def record_gaps(histogram: Histogram, stamps: Sequence[float], attributes: Attributes) -> None:
    """Every gap between consecutive ``stamps`` into ``histogram``.

    The largest gap (the stall worth a look) is recorded in the current
    context, so it alone can become an exemplar of the span that is current;
    the others go in one batch where otel-ml's aggregation is installed, else
    one record each outside any span (no exemplar work for them).
    """
    if len(stamps) < 2:
        return
    gaps = list(map(operator.sub, stamps[1:], stamps))
    slowest = max(gaps)
    at = gaps.index(slowest)
    batch = GapBatch(gaps[:at] + gaps[at + 1 :])
    histogram.record(
        slowest, attributes, context=otel_context.set_value(GAP_BATCH_KEY, batch)
    )
    if batch.claimed:
        return
    for gap in batch.rest:
        histogram.record(gap, attributes, context=_NO_SPAN)


def gen_ai_latest_experimental(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_SEMCONV_STABILITY_OPT_IN`` opts into the latest GenAI names.

    Parsed like opentelemetry-instrumentation does: a comma-separated list,
    blanks around each value ignored, other values (``http``, ...) left alone.
    """
    value = (os.environ if environ is None else environ).get(
        semconv.OTEL_SEMCONV_STABILITY_OPT_IN, ""
    )
    return semconv.SEMCONV_OPT_IN_GEN_AI_LATEST in {part.strip() for part in value.split(",")}


@dataclass(frozen=True)
class _DurationByOperation:
    """Opt-in mode: inference and embeddings durations have metrics of their own;
    other operations keep gen_ai.client.operation.duration (migration.md, #521)."""

    inference: Histogram
    embeddings: Histogram
    other: Histogram

    def record(self, amount: float, attributes: Attributes | None = None) -> None:
        operation = (attributes or {}).get(semconv.GEN_AI_OPERATION_NAME)
        if operation in _INFERENCE_OPERATIONS:
            self.inference.record(amount, attributes)
        elif operation == semconv.OP_EMBEDDINGS:
            self.embeddings.record(amount, attributes)
        else:
            self.other.record(amount, attributes)


@dataclass(frozen=True)
class _TokenUsageByType:
    """Opt-in mode: one v1.41 ``token_usage`` point (split by gen_ai.token.type)
    becomes a per-operation histogram point plus a usage counter increment,
    input and output apart and without the token type (#374)."""

    input_histogram: Histogram
    output_histogram: Histogram
    embeddings_input_histogram: Histogram
    input_counter: Counter
    output_counter: Counter

    def record(self, amount: float, attributes: Attributes | None = None) -> None:
        rest = dict(attributes or {})
        is_input = rest.pop(semconv.GEN_AI_TOKEN_TYPE, None) == semconv.TOKEN_TYPE_INPUT
        if rest.get(semconv.GEN_AI_OPERATION_NAME) == semconv.OP_EMBEDDINGS:
            # Embeddings have an input-token histogram only (client-embeddings.md).
            if is_input:
                self.embeddings_input_histogram.record(amount, rest)
            return
        (self.input_histogram if is_input else self.output_histogram).record(amount, rest)
        counter = self.input_counter if is_input else self.output_counter
        counter.add(amount, _unknown_modality(rest))


@dataclass(frozen=True)
class _UsageDetails:
    """Opt-in mode: the cache and reasoning counters, subsets of the input and
    output usage counters, which v1.41 has no metric for."""

    cache_read: Counter
    cache_write: Counter
    reasoning: Counter


def _unknown_modality(attributes: Attributes) -> dict[str, AttributeValue]:
    # Required on the usage counters; no provider otel-ml reads splits usage by
    # modality, which the conventions then ask to report as "unknown".
    return {**attributes, semconv.GEN_AI_TOKEN_MODALITY: semconv.TOKEN_MODALITY_UNKNOWN}


@dataclass(frozen=True)
class Instruments:
    token_usage: Recorder
    operation_duration: Recorder
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    cost: Counter
    cost_unpriced: Counter
    retrieval_document_count: Histogram
    retrieval_score: Histogram
    feedback: Counter
    prediction_count: Counter
    inference_latency: Histogram
    # Set only with the latest GenAI conventions opted into.
    usage_details: _UsageDetails | None = None

    @property
    def gen_ai_latest(self) -> bool:
        """True when the semantic-conventions-genai main names are emitted."""
        return self.usage_details is not None

    def record_usage_details(
        self,
        attributes: Attributes,
        *,
        cache_read_input_tokens: int | None = None,
        cache_write_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
    ) -> None:
        """Count cache-read, cache-write and reasoning tokens (opt-in mode only;
        with the v1.41 names they are span attributes and nothing else)."""
        details = self.usage_details
        if details is None:
            return
        counted = _unknown_modality(attributes)
        for counter, amount in (
            (details.cache_read, cache_read_input_tokens),
            (details.cache_write, cache_write_input_tokens),
            (details.reasoning, reasoning_output_tokens),
        ):
            if amount is not None:
                counter.add(amount, counted)

    @classmethod
    def create(cls, meter: Meter, *, gen_ai_latest: bool | None = None) -> Instruments:
        """The instruments, under the GenAI names ``gen_ai_latest`` selects
        (default: what ``OTEL_SEMCONV_STABILITY_OPT_IN`` says now)."""
        if gen_ai_latest is None:
            gen_ai_latest = gen_ai_latest_experimental()
        factory = _Factory(meter)
        gen_ai = factory.latest_gen_ai() if gen_ai_latest else factory.released_gen_ai()
        return cls(
            token_usage=gen_ai.token_usage,
            operation_duration=gen_ai.operation_duration,
            time_to_first_chunk=gen_ai.time_to_first_chunk,
            time_per_output_chunk=gen_ai.time_per_output_chunk,
            usage_details=gen_ai.usage_details,
            cost=meter.create_counter(
                semconv.METRIC_COST,
                # An annotation: no unit suffix in Prometheus (llm_cost_usd_total).
                unit="{USD}",
                description="Estimated LLM cost from token usage and the price table.",
            ),
            cost_unpriced=meter.create_counter(
                semconv.METRIC_COST_UNPRICED,
                unit="{operation}",
                description="GenAI operations whose model has no price: no cost recorded.",
            ),
            retrieval_document_count=meter.create_histogram(
                semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT,
                unit="{document}",
                description="Documents returned per retrieval.",
                explicit_bucket_boundaries_advisory=semconv.DOCUMENT_COUNT_BUCKETS,
            ),
            retrieval_score=meter.create_histogram(
                semconv.METRIC_RETRIEVAL_SCORE,
                unit="1",
                description="Similarity score of each retrieved document.",
                explicit_bucket_boundaries_advisory=semconv.SCORE_BUCKETS,
            ),
            feedback=meter.create_counter(
                semconv.METRIC_FEEDBACK,
                unit="{feedback}",
                description="User feedback events on answers.",
            ),
            prediction_count=meter.create_counter(
                semconv.METRIC_PREDICTION_COUNT,
                unit="{prediction}",
                description="Predictions made by a classic ML model, by bounded label.",
            ),
            inference_latency=factory.seconds(
                semconv.METRIC_INFERENCE_LATENCY, "Latency of one classic ML prediction."
            ),
        )


@dataclass(frozen=True)
class _GenAiInstruments:
    """The GenAI client instruments whose names depend on the opt-in."""

    token_usage: Recorder
    operation_duration: Recorder
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    usage_details: _UsageDetails | None = None


@dataclass(frozen=True)
class _Factory:
    meter: Meter

    def seconds(self, name: str, description: str) -> Histogram:
        return self.meter.create_histogram(
            name,
            unit="s",
            description=description,
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
        )

    def tokens(self, name: str, description: str) -> Histogram:
        return self.meter.create_histogram(
            name,
            unit="{token}",
            description=description,
            explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS,
        )

    def token_counter(self, name: str, description: str) -> Counter:
        return self.meter.create_counter(name, unit="{token}", description=description)

    def released_gen_ai(self) -> _GenAiInstruments:
        """semconv v1.41 (opentelemetry-semantic-conventions 0.66b2)."""
        return _GenAiInstruments(
            token_usage=self.tokens(
                semconv.METRIC_TOKEN_USAGE, "Input and output tokens used per GenAI operation."
            ),
            operation_duration=self.seconds(
                semconv.METRIC_OPERATION_DURATION, "Duration of a GenAI operation."
            ),
            time_to_first_chunk=self.seconds(
                semconv.METRIC_TIME_TO_FIRST_CHUNK,
                "Time from request start to the first non-empty streamed chunk (TTFT).",
            ),
            time_per_output_chunk=self.seconds(
                semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
                "Time between consecutive streamed chunks after the first (TBT).",
            ),
        )

    def latest_gen_ai(self) -> _GenAiInstruments:
        """semantic-conventions-genai main (migration.md @32c328e)."""
        return _GenAiInstruments(
            token_usage=_TokenUsageByType(
                input_histogram=self.tokens(
                    semconv.METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
                    "Input tokens per inference operation.",
                ),
                output_histogram=self.tokens(
                    semconv.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
                    "Output tokens per inference operation.",
                ),
                embeddings_input_histogram=self.tokens(
                    semconv.METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS,
                    "Input tokens per embeddings operation.",
                ),
                input_counter=self.token_counter(
                    semconv.METRIC_INFERENCE_USAGE_INPUT_TOKENS,
                    "Input tokens used, including cached tokens.",
                ),
                output_counter=self.token_counter(
                    semconv.METRIC_INFERENCE_USAGE_OUTPUT_TOKENS,
                    "Output tokens used, including reasoning tokens.",
                ),
            ),
            usage_details=_UsageDetails(
                cache_read=self.token_counter(
                    semconv.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
                    "Input tokens served from a provider-managed cache.",
                ),
                cache_write=self.token_counter(
                    semconv.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
                    "Input tokens written to a provider-managed cache.",
                ),
                reasoning=self.token_counter(
                    semconv.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
                    "Output tokens used for reasoning.",
                ),
            ),
            operation_duration=_DurationByOperation(
                inference=self.seconds(
                    semconv.METRIC_INFERENCE_DURATION, "Duration of a GenAI inference operation."
                ),
                embeddings=self.seconds(
                    semconv.METRIC_EMBEDDINGS_DURATION, "Duration of a GenAI embeddings operation."
                ),
                other=self.seconds(
                    semconv.METRIC_OPERATION_DURATION, "Duration of a GenAI operation."
                ),
            ),
            time_to_first_chunk=self.seconds(
                semconv.METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
                "Time from request start to the first non-empty streamed chunk (TTFT).",
            ),
            time_per_output_chunk=self.seconds(
                semconv.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK,
                "Time between consecutive streamed chunks after the first (TBT).",
            ),
        )
