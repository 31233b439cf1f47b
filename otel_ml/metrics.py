"""The instruments otel-ml records, created once per Telemetry."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter

from otel_ml import semconv


@dataclass(frozen=True)
class Instruments:
    token_usage: Histogram
    operation_duration: Histogram
    time_to_first_chunk: Histogram
    time_per_output_chunk: Histogram
    cost: Counter
    cost_unpriced: Counter
    retrieval_document_count: Histogram
    retrieval_score: Histogram
    feedback: Counter
    prediction_count: Counter
    inference_latency: Histogram

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        def seconds(name: str, description: str) -> Histogram:
            return meter.create_histogram(
                name,
                unit="s",
                description=description,
                explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS,
            )

        return cls(
            token_usage=meter.create_histogram(
                semconv.METRIC_TOKEN_USAGE,
                unit="{token}",
                description="Input and output tokens used per GenAI operation.",
                explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS,
            ),
            operation_duration=seconds(
                semconv.METRIC_OPERATION_DURATION, "Duration of a GenAI operation."
            ),
            time_to_first_chunk=seconds(
                semconv.METRIC_TIME_TO_FIRST_CHUNK,
                "Time from request start to the first non-empty streamed chunk (TTFT).",
            ),
            time_per_output_chunk=seconds(
                semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
                "Time between consecutive streamed chunks after the first (TBT).",
            ),
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
            inference_latency=seconds(
                semconv.METRIC_INFERENCE_LATENCY, "Latency of one classic ML prediction."
            ),
        )
