"""otel_ml.semconv: every convention name equals the upstream one.

``otel_ml.semconv`` holds plain strings so that ``import otel_ml`` needs only
opentelemetry-api. Here each string that names a semantic convention is pinned
to the constant of ``opentelemetry-semantic-conventions`` (the GenAI ones live
in its ``_incubating`` modules), or, where our name is newer than the installed
package, to the name read in the semantic-conventions-genai repository. A
rename upstream (a new package version) or a typo here fails one line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.instrumentation import _semconv as instrumentation_semconv
from opentelemetry.semconv._incubating.attributes import db_attributes as db_incubating
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import (
    db_attributes,
    error_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)
from opentelemetry.semconv.metrics import db_metrics, http_metrics

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
    # database client spans (instrument_chroma): stable, but returned_rows (Development)
    (semconv.DB_SYSTEM_NAME, db_attributes.DB_SYSTEM_NAME),
    (semconv.DB_COLLECTION_NAME, db_attributes.DB_COLLECTION_NAME),
    (semconv.DB_NAMESPACE, db_attributes.DB_NAMESPACE),
    (semconv.DB_OPERATION_NAME, db_attributes.DB_OPERATION_NAME),
    (semconv.DB_OPERATION_BATCH_SIZE, db_attributes.DB_OPERATION_BATCH_SIZE),
    (semconv.DB_RESPONSE_RETURNED_ROWS, db_incubating.DB_RESPONSE_RETURNED_ROWS),
    (semconv.METRIC_DB_CLIENT_OPERATION_DURATION, db_metrics.DB_CLIENT_OPERATION_DURATION),
    # enum values
    (semconv.OP_CHAT, gen_ai.GenAiOperationNameValues.CHAT.value),
    (semconv.OP_TEXT_COMPLETION, gen_ai.GenAiOperationNameValues.TEXT_COMPLETION.value),
    (semconv.OP_EMBEDDINGS, gen_ai.GenAiOperationNameValues.EMBEDDINGS.value),
    (semconv.OP_RETRIEVAL, gen_ai.GenAiOperationNameValues.RETRIEVAL.value),
    (semconv.OP_GENERATE_CONTENT, gen_ai.GenAiOperationNameValues.GENERATE_CONTENT.value),
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
    # HTTP, stable (what the official FastAPI/httpx instrumentations emit in mode http)
    (semconv.METRIC_HTTP_SERVER_REQUEST_DURATION, http_metrics.HTTP_SERVER_REQUEST_DURATION),
    (semconv.METRIC_HTTP_CLIENT_REQUEST_DURATION, http_metrics.HTTP_CLIENT_REQUEST_DURATION),
    (semconv.HTTP_REQUEST_METHOD, http_attributes.HTTP_REQUEST_METHOD),
    (semconv.HTTP_RESPONSE_STATUS_CODE, http_attributes.HTTP_RESPONSE_STATUS_CODE),
    (semconv.HTTP_ROUTE, http_attributes.HTTP_ROUTE),
    (semconv.URL_SCHEME, url_attributes.URL_SCHEME),
    # the opt-in variable and its values, as opentelemetry-instrumentation reads them
    (semconv.OTEL_SEMCONV_STABILITY_OPT_IN, instrumentation_semconv.OTEL_SEMCONV_STABILITY_OPT_IN),
    (
        semconv.SEMCONV_OPT_IN_GEN_AI_LATEST,
        instrumentation_semconv._StabilityMode.GEN_AI_LATEST_EXPERIMENTAL.value,
    ),
    (semconv.SEMCONV_OPT_IN_HTTP, instrumentation_semconv._StabilityMode.HTTP.value),
    (semconv.SEMCONV_OPT_IN_HTTP_DUP, instrumentation_semconv._StabilityMode.HTTP_DUP.value),
]

# Newer than the installed package (0.66b2 lags the conventions): the names read
# on open-telemetry/semantic-conventions-genai main, file @ commit:
#   migration.md    = docs/gen-ai/non-normative/migration.md @32c328e
#   spans.md        = docs/gen-ai/gen-ai-spans.md @9430220 ("Retrievals")
#   inference.md    = docs/gen-ai/client-inference.md @024a4f9
#   token-metrics   = docs/gen-ai/gen-ai-token-metrics.md @066d4a7
#                     (model/gen-ai/token-metrics.yaml @066d4a7)
#   embeddings.md   = docs/gen-ai/client-embeddings.md @88eccb1
#   events.yaml     = model/gen-ai/events.yaml @0387091
UPSTREAM_PINS = [
    # inference.md; renamed from gen_ai.usage.cache_creation.input_tokens (#440,
    # migration.md); the package still has the old name (test below)
    (semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, "gen_ai.usage.cache_write.input_tokens"),
    # spans.md; the retrieval span's top-k, was gen_ai.request.top_k (#217, migration.md)
    (semconv.GEN_AI_RETRIEVAL_TOP_K, "gen_ai.retrieval.top_k"),
    # events.yaml (@fecf9e1 too: the event with gen_ai.evaluation.name required,
    # score.value/score.label conditionally required, explanation and
    # gen_ai.response.id recommended, error.type); the package has no event constants
    (semconv.EVENT_GEN_AI_EVALUATION_RESULT, "gen_ai.evaluation.result"),
    # token-metrics: the usage counters' modality, and its value for "not split"
    (semconv.GEN_AI_TOKEN_MODALITY, "gen_ai.token.modality"),
    (semconv.TOKEN_MODALITY_UNKNOWN, "unknown"),
    # inference.md / migration.md (#521): gen_ai.client.operation.* for inference
    (semconv.METRIC_INFERENCE_DURATION, "gen_ai.client.inference.duration"),
    (
        semconv.METRIC_INFERENCE_TIME_TO_FIRST_CHUNK,
        "gen_ai.client.inference.time_to_first_chunk",
    ),
    (
        semconv.METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK,
        "gen_ai.client.inference.time_per_output_chunk",
    ),
    # token-metrics / migration.md (#374): gen_ai.client.token.usage replaced
    (semconv.METRIC_INFERENCE_USAGE_INPUT_TOKENS, "gen_ai.client.inference.usage.input_tokens"),
    (semconv.METRIC_INFERENCE_USAGE_OUTPUT_TOKENS, "gen_ai.client.inference.usage.output_tokens"),
    (
        semconv.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
        "gen_ai.client.inference.usage.cache_read.input_tokens",
    ),
    (
        semconv.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
        "gen_ai.client.inference.usage.cache_write.input_tokens",
    ),
    (
        semconv.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
        "gen_ai.client.inference.usage.reasoning.output_tokens",
    ),
    (
        semconv.METRIC_INFERENCE_OPERATION_INPUT_TOKENS,
        "gen_ai.client.inference.operation.input_tokens",
    ),
    (
        semconv.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS,
        "gen_ai.client.inference.operation.output_tokens",
    ),
    # embeddings.md
    (semconv.METRIC_EMBEDDINGS_DURATION, "gen_ai.client.embeddings.duration"),
    (
        semconv.METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS,
        "gen_ai.client.embeddings.operation.input_tokens",
    ),
    # inference.md: the finish reason of a response that did not end normally
    (semconv.FINISH_REASON_ERROR, "error"),
]

# Convention names otel-ml uses that are neither in the package nor on genai main
# as accepted names: the cost attributes of the open proposal genai#443.
PROPOSED = {semconv.GEN_AI_USAGE_COST_AMOUNT, semconv.GEN_AI_USAGE_COST_CURRENCY}
# Namespaces that belong to OpenTelemetry conventions: a constant of semconv.py in
# one of them must be pinned above.
CONVENTION_NAMESPACES = ("gen_ai.", "http.", "server.", "error.", "url.", "db.")


@pytest.mark.parametrize(("ours", "upstream"), PACKAGE_PINS, ids=[p[1] for p in PACKAGE_PINS])
def test_convention_names_equal_the_semconv_package(ours: str, upstream: str) -> None:
    assert ours == upstream


@pytest.mark.parametrize(("ours", "upstream"), UPSTREAM_PINS, ids=[p[1] for p in UPSTREAM_PINS])
def test_names_newer_than_the_package_equal_the_genai_repository(
    ours: str, upstream: str
) -> None:
    assert ours == upstream


def test_the_package_still_has_the_old_name_of_each_newer_one() -> None:
    # When the package catches up, this fails: move the pin into PACKAGE_PINS and,
    # for the metrics, consider making the new names the default (otel_ml.metrics).
    assert not hasattr(gen_ai, "GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS")
    assert gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS == (
        "gen_ai.usage.cache_creation.input_tokens"
    )
    assert not hasattr(gen_ai, "GEN_AI_RETRIEVAL_TOP_K")
    assert not hasattr(gen_ai, "GEN_AI_TOKEN_MODALITY")
    package_metrics = {
        value for name, value in vars(gen_ai_metrics).items() if name.startswith("GEN_AI_")
    }
    assert not {p[0] for p in UPSTREAM_PINS if p[0].startswith("gen_ai.client.")} & (
        package_metrics
    )


# semconv.py's last section lists names otel-ml reads from other instrumentations
# (some legacy gen_ai.* ones among them) and never emits: not pinned here.
READ_ONLY_SECTION = "# --- names read from other GenAI instrumentations"


def _emitted_constants() -> list[str]:
    """The constant names semconv.py defines before its read-only section."""
    source = Path(semconv.__file__).read_text(encoding="utf-8")
    head = source.split(READ_ONLY_SECTION, 1)[0]
    return re.findall(r"^([A-Z][A-Z0-9_]*): Final", head, flags=re.MULTILINE)


def _semconv_names() -> dict[str, str]:
    names = {name: getattr(semconv, name) for name in _emitted_constants()}
    return {name: value for name, value in names.items() if isinstance(value, str)}


def test_every_convention_name_is_pinned() -> None:
    # A new constant in a convention namespace without a pin would let a rename
    # upstream go unnoticed.
    pinned = {ours for ours, _ in PACKAGE_PINS + UPSTREAM_PINS} | PROPOSED
    unpinned = sorted(
        f"{name}={value}"
        for name, value in _semconv_names().items()
        if value.startswith(CONVENTION_NAMESPACES) and value not in pinned
    )
    assert unpinned == []


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
        semconv.GROUP_ATTRIBUTE,
        semconv.GROUP_VALUE,
        semconv.FAIRNESS_MEASURE,
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


# --- docs/sdk.md lists every name -----------------------------------------------------

SDK_DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
CATALOGUE = "## Attribute and metric catalogue"
# Constants of semconv.py that are values or templates, not attribute or metric names.
NOT_NAMES = (
    "OP_", "PROVIDER_", "FINISH_REASON_", "TOKEN_TYPE_", "TOKEN_MODALITY_", "SPAN_",
    "SEMCONV_OPT_IN_", "OTEL_SEMCONV_STABILITY_OPT_IN", "TENANT_OVERFLOW", "LABEL_OVERFLOW",
    "DB_SYSTEM_NAME_", "DB_OP_",
)
# Named for the tests and the docs, set by otel-ml on nothing: the sampling top-k.
# (The evaluation event's names are emitted by otel_ml.evaluation since issue 16.)
NOT_EMITTED = {
    semconv.GEN_AI_REQUEST_TOP_K,
}
_CODE = re.compile(r"`([^`\s]+)`")


def _catalogue_names() -> set[str]:
    """The names in the first column of every table of the catalogue section."""
    text = SDK_DOC.read_text(encoding="utf-8")
    section = text.split(CATALOGUE, 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        names.update(n for n in _CODE.findall(first_cell) if "{" not in n and "[" not in n)
    return names


def _emitted_names() -> set[str]:
    return {
        value
        for name, value in _semconv_names().items()
        if not name.startswith(NOT_NAMES) and value not in NOT_EMITTED
    }


def test_the_sdk_doc_lists_every_emitted_name() -> None:
    missing = sorted(_emitted_names() - _catalogue_names())
    assert missing == [], "add them to the catalogue in docs/sdk.md"


def test_the_sdk_doc_lists_no_name_semconv_does_not_define() -> None:
    defined = set(_semconv_names().values())
    stale = sorted(_catalogue_names() - defined)
    assert stale == [], "docs/sdk.md names what otel_ml/semconv.py does not define"


def test_the_catalogue_parser_sees_the_tables() -> None:
    # Guards the two tests above against a parser that finds nothing.
    names = _catalogue_names()
    assert {"gen_ai.retrieval.top_k", "llm.cost.usd", "http.server.request.duration"} <= names
    assert len(names) >= 60


def test_bias_drift_names_are_pinned() -> None:
    # The group-aware drift monitor's names, as rules/fairness.yml and docs/drift.md use them
    # (in Prometheus: dots -> underscores, no unit suffix).
    assert (
        semconv.METRIC_GROUP_POSITIVE_RATE,
        semconv.METRIC_GROUP_REFERENCE_POSITIVE_RATE,
        semconv.METRIC_GROUP_TRUE_POSITIVE_RATE,
        semconv.METRIC_FAIRNESS_DISPARITY,
        semconv.METRIC_FAIRNESS_REFERENCE_DISPARITY,
        semconv.METRIC_FAIRNESS_DISPARITY_BAND,
        semconv.GROUP_ATTRIBUTE,
        semconv.GROUP_VALUE,
        semconv.FAIRNESS_MEASURE,
    ) == (
        "ml.group.positive_rate",
        "ml.group.reference_positive_rate",
        "ml.group.true_positive_rate",
        "ml.fairness.disparity",
        "ml.fairness.reference_disparity",
        "ml.fairness.disparity_band",
        "ml.group.attribute",
        "ml.group.value",
        "ml.fairness.measure",
    )


def test_chroma_has_no_well_known_db_system_name_yet() -> None:
    # database-spans.md: a custom db.system.name is the DBMS's name in lowercase. When the
    # registry gains a Chroma value, this fails: use it (and pin it above) instead.
    values = {member.value for member in db_incubating.DbSystemNameValues}
    assert semconv.DB_SYSTEM_NAME_CHROMA == "chroma"
    assert not {value for value in values if "chroma" in value}
    # The operation names are Chroma's method names, a batch prefixed as the conventions say.
    assert (semconv.DB_OP_QUERY, semconv.DB_OP_GET, semconv.DB_OP_ADD, semconv.DB_OP_UPSERT) == (
        "query", "get", "add", "upsert",
    )
    assert semconv.DB_OP_BATCH_PREFIX == "BATCH "


def test_the_evaluation_metric_is_otel_mls_not_a_convention_name() -> None:
    # No evaluation metric in semantic-conventions-genai (model/gen-ai/metrics.yaml
    # @9ba9b77); gen_ai.evaluation.score is the conventions' attribute namespace
    # (score.value, score.label), so otel-ml's histogram lives under llm.*.
    assert semconv.METRIC_EVALUATION_SCORE == "llm.evaluation.score"
    assert semconv.METRIC_EVALUATION_DROPPED == "llm.evaluation.dropped"
    assert not semconv.METRIC_EVALUATION_SCORE.startswith("gen_ai.")
