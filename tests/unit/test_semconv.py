"""otel_ml.semconv: every convention name equals the upstream one.

``otel_ml.semconv`` holds plain strings so that ``import otel_ml`` needs only
opentelemetry-api. Here each string that names a semantic convention is pinned
to the constant of ``opentelemetry-semantic-conventions`` (the GenAI ones live
in its ``_incubating`` modules), or, where our name is newer than the installed
package, to the name read in the semantic-conventions-genai repository. A
rename upstream (a new package version) or a typo here fails one line.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import error_attributes, server_attributes

from otel_ml import semconv

# (our constant, the package's constant)
PACKAGE_PINS = [
    (semconv.GEN_AI_OPERATION_NAME, gen_ai.GEN_AI_OPERATION_NAME),
    (semconv.GEN_AI_PROVIDER_NAME, gen_ai.GEN_AI_PROVIDER_NAME),
    (semconv.GEN_AI_REQUEST_MODEL, gen_ai.GEN_AI_REQUEST_MODEL),
    (semconv.GEN_AI_RESPONSE_MODEL, gen_ai.GEN_AI_RESPONSE_MODEL),
    (semconv.GEN_AI_RESPONSE_ID, gen_ai.GEN_AI_RESPONSE_ID),
    (semconv.GEN_AI_REQUEST_STREAM, gen_ai.GEN_AI_REQUEST_STREAM),
    (semconv.GEN_AI_REQUEST_TOP_K, gen_ai.GEN_AI_REQUEST_TOP_K),
    (semconv.GEN_AI_RESPONSE_FINISH_REASONS, gen_ai.GEN_AI_RESPONSE_FINISH_REASONS),
    (semconv.GEN_AI_USAGE_INPUT_TOKENS, gen_ai.GEN_AI_USAGE_INPUT_TOKENS),
    (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS),
    (semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    (
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    ),
    (semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK),
    (semconv.GEN_AI_DATA_SOURCE_ID, gen_ai.GEN_AI_DATA_SOURCE_ID),
    (semconv.GEN_AI_RETRIEVAL_DOCUMENTS, gen_ai.GEN_AI_RETRIEVAL_DOCUMENTS),
    (semconv.GEN_AI_RETRIEVAL_QUERY_TEXT, gen_ai.GEN_AI_RETRIEVAL_QUERY_TEXT),
    (semconv.GEN_AI_INPUT_MESSAGES, gen_ai.GEN_AI_INPUT_MESSAGES),
    (semconv.GEN_AI_OUTPUT_MESSAGES, gen_ai.GEN_AI_OUTPUT_MESSAGES),
    (semconv.GEN_AI_TOKEN_TYPE, gen_ai.GEN_AI_TOKEN_TYPE),
    (semconv.GEN_AI_EVALUATION_NAME, gen_ai.GEN_AI_EVALUATION_NAME),
    (semconv.GEN_AI_EVALUATION_SCORE_VALUE, gen_ai.GEN_AI_EVALUATION_SCORE_VALUE),
    (semconv.GEN_AI_EVALUATION_SCORE_LABEL, gen_ai.GEN_AI_EVALUATION_SCORE_LABEL),
    (semconv.GEN_AI_EVALUATION_EXPLANATION, gen_ai.GEN_AI_EVALUATION_EXPLANATION),
    (semconv.ERROR_TYPE, error_attributes.ERROR_TYPE),
    (semconv.SERVER_ADDRESS, server_attributes.SERVER_ADDRESS),
    (semconv.SERVER_PORT, server_attributes.SERVER_PORT),
    # enum values
    (semconv.OP_CHAT, gen_ai.GenAiOperationNameValues.CHAT.value),
    (semconv.OP_TEXT_COMPLETION, gen_ai.GenAiOperationNameValues.TEXT_COMPLETION.value),
    (semconv.OP_EMBEDDINGS, gen_ai.GenAiOperationNameValues.EMBEDDINGS.value),
    (semconv.OP_RETRIEVAL, gen_ai.GenAiOperationNameValues.RETRIEVAL.value),
    (semconv.TOKEN_TYPE_INPUT, gen_ai.GenAiTokenTypeValues.INPUT.value),
    (semconv.TOKEN_TYPE_OUTPUT, gen_ai.GenAiTokenTypeValues.OUTPUT.value),
    # metrics
    (semconv.METRIC_TOKEN_USAGE, gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE),
    (semconv.METRIC_OPERATION_DURATION, gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION),
    (
        semconv.METRIC_TIME_TO_FIRST_CHUNK,
        gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    ),
    (
        semconv.METRIC_TIME_PER_OUTPUT_CHUNK,
        gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
    ),
    (semconv.METRIC_SERVER_REQUEST_DURATION, gen_ai_metrics.GEN_AI_SERVER_REQUEST_DURATION),
    (
        semconv.METRIC_SERVER_TIME_TO_FIRST_TOKEN,
        gen_ai_metrics.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
    ),
    (
        semconv.METRIC_SERVER_TIME_PER_OUTPUT_TOKEN,
        gen_ai_metrics.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
    ),
]

# Newer than the installed package: the names on semantic-conventions-genai main
# (docs/gen-ai/non-normative/migration.md @32c328e, docs/gen-ai/client-inference.md
# @024a4f9, model/gen-ai/events.yaml @0387091).
UPSTREAM_PINS = [
    # renamed from gen_ai.usage.cache_creation.input_tokens (genai PR #440)
    (semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, "gen_ai.usage.cache_write.input_tokens"),
    # the retrieval span's top-k, was gen_ai.request.top_k (genai PR #217)
    (semconv.GEN_AI_RETRIEVAL_TOP_K, "gen_ai.retrieval.top_k"),
    # an event name; the Python package has no event constants
    (semconv.EVENT_GEN_AI_EVALUATION_RESULT, "gen_ai.evaluation.result"),
]


@pytest.mark.parametrize(("ours", "upstream"), PACKAGE_PINS, ids=[p[1] for p in PACKAGE_PINS])
def test_convention_names_equal_the_semconv_package(ours: str, upstream: str) -> None:
    assert ours == upstream


@pytest.mark.parametrize(("ours", "upstream"), UPSTREAM_PINS, ids=[p[1] for p in UPSTREAM_PINS])
def test_names_newer_than_the_package_equal_the_genai_repository(
    ours: str, upstream: str
) -> None:
    assert ours == upstream


def test_the_package_still_has_the_old_name_of_each_newer_one() -> None:
    # When the package catches up, move the pin above into PACKAGE_PINS.
    assert not hasattr(gen_ai, "GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS")
    assert gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS == (
        "gen_ai.usage.cache_creation.input_tokens"
    )
    assert not hasattr(gen_ai, "GEN_AI_RETRIEVAL_TOP_K")


def test_own_attribute_names_are_namespaced() -> None:
    # otel-ml's own attributes carry a namespace: bare words (model, kind, ...)
    # collide with other instrumentations' labels in Prometheus.
    own = [
        semconv.TENANT_ID,
        semconv.ML_MODEL,
        semconv.ML_PREDICTION,
        semconv.FEEDBACK_KIND,
        semconv.DRIFT_FEATURE,
        semconv.DRIFT_METHOD,
        semconv.SCHEMA_VIOLATION_KIND,
    ]
    for name in own:
        assert "." in name and name.split(".", 1)[0] in {"tenant", "ml", "rag", "llm"}, name


def test_semconv_imports_nothing_but_typing() -> None:
    # The package's modules are for this test only: importing them from otel_ml.semconv
    # would make opentelemetry-semantic-conventions a dependency of `import otel_ml`.
    code = (
        "import sys; import otel_ml.semconv; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.semconv._incubating')"
        " and 'gen_ai' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
