"""GenAI metric names: the released (v1.41) ones by default, the
semantic-conventions-genai main ones with
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``, chosen when the
instruments are created."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from otel_ml import semconv
from otel_ml.metrics import gen_ai_latest_experimental
from otel_ml.testing import Capture

LATEST = semconv.SEMCONV_OPT_IN_GEN_AI_LATEST
BASE = {
    semconv.GEN_AI_OPERATION_NAME: "chat",
    semconv.GEN_AI_PROVIDER_NAME: "openai",
    semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
}
RELEASED = {
    semconv.METRIC_TOKEN_USAGE,
    semconv.METRIC_OPERATION_DURATION,
    semconv.METRIC_TIME_TO_FIRST_CHUNK,
    semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
}
MAIN_ONLY = {
    semconv.METRIC_INFERENCE_DURATION,
    semconv.METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
    semconv.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK,
    semconv.METRIC_INFERENCE_USAGE_INPUT_TOKENS,
    semconv.METRIC_INFERENCE_USAGE_OUTPUT_TOKENS,
    semconv.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
    semconv.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
    semconv.METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
    semconv.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
    semconv.METRIC_EMBEDDINGS_DURATION,
    semconv.METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS,
}


def _streamed_chat(capture: Capture) -> None:
    """A streamed chat with provider usage: 120 in (30 cached), 45 out, 3 chunks."""
    with capture.telemetry.generation("gpt-4o-mini", "openai", stream=True) as g:
        for piece in ("a", "b", "c"):
            g.chunk(piece)
        g.usage(input_tokens=120, output_tokens=45, cached_input_tokens=30)


def _names(capture: Capture) -> set[str]:
    return {name for name in RELEASED | MAIN_ONLY if capture.points(name)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("http", False),
        ("gen_ai_latest_experimental", True),
        ("http/dup, gen_ai_latest_experimental ", True),
        ("database,gen_ai_latest_experimental,http", True),
        ("gen_ai", False),
        ("GEN_AI_LATEST_EXPERIMENTAL", False),  # values are case-sensitive upstream too
    ],
)
def test_the_opt_in_is_read_like_opentelemetry_instrumentation(
    value: str | None, expected: bool
) -> None:
    environ = {} if value is None else {"OTEL_SEMCONV_STABILITY_OPT_IN": value}
    assert gen_ai_latest_experimental(environ) is expected


def test_released_names_by_default(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    capture = otel_capture_factory()
    assert not capture.telemetry._recorder.instruments.gen_ai_latest
    _streamed_chat(capture)

    assert _names(capture) == RELEASED
    tokens = {**BASE, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT}
    assert capture.metric_sum(semconv.METRIC_TOKEN_USAGE, tokens) == 120
    tokens[semconv.GEN_AI_TOKEN_TYPE] = semconv.TOKEN_TYPE_OUTPUT
    assert capture.metric_sum(semconv.METRIC_TOKEN_USAGE, tokens) == 45
    assert capture.metric_count(semconv.METRIC_OPERATION_DURATION, BASE) == 1
    assert capture.metric_count(semconv.METRIC_TIME_TO_FIRST_CHUNK, BASE) == 1
    assert capture.metric_count(semconv.METRIC_TIME_PER_OUTPUT_CHUNK, BASE) == 2


def test_a_http_only_opt_in_keeps_the_released_names(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup")
    capture = otel_capture_factory()
    _streamed_chat(capture)
    assert _names(capture) == RELEASED


def test_latest_names_with_the_opt_in(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", f"http,{LATEST}")
    capture = otel_capture_factory()
    assert capture.telemetry._recorder.instruments.gen_ai_latest
    _streamed_chat(capture)

    # No v1.41 name at all: a process never emits both.
    assert not _names(capture) & RELEASED
    # Per-operation histograms, input and output apart, without gen_ai.token.type.
    (point,) = capture.points(semconv.METRIC_INFERENCE_OPERATION_INPUT_TOKENS)
    assert point.sum == 120 and point.count == 1
    assert semconv.GEN_AI_TOKEN_TYPE not in point.attributes
    (point,) = capture.points(semconv.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS)
    assert point.sum == 45
    # Usage counters, with the modality the conventions require ("unknown": the
    # provider does not split usage by modality).
    counted = {**BASE, semconv.GEN_AI_TOKEN_MODALITY: semconv.TOKEN_MODALITY_UNKNOWN}
    assert capture.metric_sum(semconv.METRIC_INFERENCE_USAGE_INPUT_TOKENS, counted) == 120
    assert capture.metric_sum(semconv.METRIC_INFERENCE_USAGE_OUTPUT_TOKENS, counted) == 45
    # Duration and streaming timings under their inference names.
    assert capture.metric_count(semconv.METRIC_INFERENCE_DURATION, BASE) == 1
    assert capture.metric_count(semconv.METRIC_INFERENCE_TIME_TO_FIRST_CHUNK, BASE) == 1
    assert capture.metric_count(semconv.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK, BASE) == 2
    # otel-ml's own cost counter is the same in both modes.
    assert capture.metric_sum(semconv.METRIC_COST, BASE) > 0


def test_latest_embeddings_have_their_own_duration_and_input_histogram(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", LATEST)
    capture = otel_capture_factory()
    with capture.telemetry.generation(
        "text-embedding-3-small", "openai", operation=semconv.OP_EMBEDDINGS
    ) as g:
        g.usage(input_tokens=64, output_tokens=0)

    attributes = {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_EMBEDDINGS,
        semconv.GEN_AI_REQUEST_MODEL: "text-embedding-3-small",
    }
    assert capture.metric_count(semconv.METRIC_EMBEDDINGS_DURATION, attributes) == 1
    assert capture.metric_sum(semconv.METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS, attributes) == 64
    # Not an inference: none of the inference metrics.
    for name in (
        semconv.METRIC_INFERENCE_DURATION,
        semconv.METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
        semconv.METRIC_INFERENCE_USAGE_INPUT_TOKENS,
        semconv.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
    ):
        assert capture.points(name) == [], name


@pytest.mark.parametrize("latest", [False, True])
def test_cache_and_reasoning_counters_exist_only_with_the_opt_in(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch, latest: bool
) -> None:
    if latest:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", LATEST)
    else:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    capture = otel_capture_factory()
    instruments = capture.telemetry._recorder.instruments
    instruments.record_usage_details(
        BASE, cache_read_input_tokens=30, cache_write_input_tokens=12, reasoning_output_tokens=7
    )

    counted: dict[str, Any] = {
        **BASE,
        semconv.GEN_AI_TOKEN_MODALITY: semconv.TOKEN_MODALITY_UNKNOWN,
    }
    expected = {
        semconv.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: 30,
        semconv.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: 12,
        semconv.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: 7,
    }
    for name, amount in expected.items():
        assert capture.metric_sum(name, counted) == (amount if latest else 0), name


def test_a_generation_counts_its_cache_and_reasoning_tokens_with_the_opt_in(
    otel_capture_factory: Callable[..., Capture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", LATEST)
    capture = otel_capture_factory()
    with capture.telemetry.generation("claude-sonnet-4", "anthropic") as g:
        g.usage(input_tokens=1_212, output_tokens=50, cached_input_tokens=1_000,
                cache_write_input_tokens=200, reasoning_output_tokens=9)

    counted: dict[str, Any] = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "anthropic",
        semconv.GEN_AI_REQUEST_MODEL: "claude-sonnet-4",
        semconv.GEN_AI_TOKEN_MODALITY: semconv.TOKEN_MODALITY_UNKNOWN,
    }
    assert capture.metric_sum(
        semconv.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, counted) == 1_000
    assert capture.metric_sum(
        semconv.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, counted) == 200
    assert capture.metric_sum(
        semconv.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, counted) == 9
