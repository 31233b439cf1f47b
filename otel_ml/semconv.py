"""Every span, attribute and metric name otel-ml emits, in one place.

The GenAI semantic conventions are in Development status and are still being
renamed upstream (they moved to open-telemetry/semantic-conventions-genai after
v1.41). Keeping every name here means a rename is a one-line change. Names
follow semconv v1.41 where a convention exists; ``rag.*``, ``llm.*``, ``ml.*``
and ``tenant.id`` are otel-ml's own.

Where each name was verified is noted per group. tests/unit/test_semconv.py pins
every convention name to the constant of ``opentelemetry-semantic-conventions``
(its ``_incubating`` modules are not imported here: they are not a dependency of
``import otel_ml``, and they mark the GenAI names deprecated while they move), or,
for names newer than that package, to the literal checked upstream.
"""

from __future__ import annotations

from typing import Final

# --- GenAI attributes (semconv v1.41) ---------------------------------------
# Verified: equal to opentelemetry-semantic-conventions 0.66b2
# (opentelemetry.semconv._incubating.attributes.gen_ai_attributes, pinned by
# tests/unit/test_semconv.py) and still named so on semantic-conventions-genai
# main (docs/gen-ai/client-inference.md @024a4f9, model/gen-ai/events.yaml @0387091).
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
# Sampling top-k of an inference request only (an int on genai main, #217). otel-ml
# sets none: the retrieval span's top-k is GEN_AI_RETRIEVAL_TOP_K. Kept so that code
# and tests can name the attribute a retrieval span must no longer carry.
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"
GEN_AI_RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
# On gen_ai.client.token.usage (the default metrics) only: genai main drops it (#374).
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
# Evaluations: the gen_ai.evaluation.result event (parented to the evaluated span,
# or carrying gen_ai.response.id) and its attributes. The attributes are equal to
# gen_ai_attributes 0.66b2 (pinned by tests/unit/test_semconv.py); the event and its
# attribute list verified on semantic-conventions-genai main (model/gen-ai/events.yaml
# @fecf9e1: name required, score.value/score.label conditionally required,
# explanation and gen_ai.response.id recommended, plus error.type).
EVENT_GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"

# --- GenAI attributes newer than the installed package ------------------------
# Verified on semantic-conventions-genai main (no tagged release):
# docs/gen-ai/non-normative/migration.md @32c328e and
# docs/gen-ai/client-inference.md @024a4f9. The package (0.66b2) still has the
# v1.41 names gen_ai.usage.cache_creation.input_tokens and, on retrieval spans,
# gen_ai.request.top_k.
# cache_creation -> cache_write: genai PR #440.
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
# gen_ai.request.top_k -> gen_ai.retrieval.top_k on retrieval spans: genai PR #217
# (docs/gen-ai/gen-ai-spans.md @9430220, "Retrievals": Recommended, int).
GEN_AI_RETRIEVAL_TOP_K: Final = "gen_ai.retrieval.top_k"
# The modality the gen_ai.client.inference.usage.* counters are split by (Required
# there); "unknown" where the provider does not split usage by modality
# (docs/gen-ai/gen-ai-token-metrics.md @066d4a7). Emitted only with
# OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.
GEN_AI_TOKEN_MODALITY: Final = "gen_ai.token.modality"
TOKEN_MODALITY_UNKNOWN: Final = "unknown"

# --- cost (no accepted convention) --------------------------------------------
# Proposed in semantic-conventions-genai PR #443 (with a histogram
# gen_ai.client.operation.cost); not in the registry as far as could be verified
# (model/gen-ai/registry.yaml @e8fc575): no accepted name yet.
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"

# --- general attributes (semconv, Stable) -------------------------------------
# Verified: equal to opentelemetry.semconv.attributes.error_attributes and
# server_attributes (stable modules), pinned by tests/unit/test_semconv.py.
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

# --- log records routed from Python logging (configure(logs=True)) -------------
# Stable: equal to opentelemetry.semconv.attributes.code_attributes and
# exception_attributes (0.66b2), pinned by tests/unit/test_logging.py.
CODE_FILE_PATH: Final = "code.file.path"
CODE_FUNCTION_NAME: Final = "code.function.name"
CODE_LINE_NUMBER: Final = "code.line.number"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- database client spans (semconv, Stable; instrument_chroma()) ---------------
# Verified: equal to opentelemetry.semconv.attributes.db_attributes (0.66b2, stable)
# and to model/db/registry.yaml on semantic-conventions main @384d661, pinned by
# tests/unit/test_semconv.py. db.response.returned_rows is Development (Opt-In) and
# lives in the package's _incubating db_attributes. db.operation.batch.size is set
# only for a call of several operations (a Chroma query with several query
# embeddings), never for one operation with many records (registry.yaml's note).
DB_SYSTEM_NAME: Final = "db.system.name"
DB_COLLECTION_NAME: Final = "db.collection.name"
DB_NAMESPACE: Final = "db.namespace"
DB_OPERATION_NAME: Final = "db.operation.name"
DB_OPERATION_BATCH_SIZE: Final = "db.operation.batch.size"
DB_RESPONSE_RETURNED_ROWS: Final = "db.response.returned_rows"
# db.system.name value. Chroma is not among the well-known values (registry.yaml
# @384d661, DbSystemNameValues 0.66b2); docs/db/database-spans.md says a custom
# value MUST then be the DBMS's name in lowercase without a version: "chroma".
DB_SYSTEM_NAME_CHROMA: Final = "chroma"
# db.operation.name values: Chroma's own method names, as the conventions ask
# ("as provided by the application"); a batch is "BATCH {operation}".
DB_OP_QUERY: Final = "query"
DB_OP_GET: Final = "get"
DB_OP_ADD: Final = "add"
DB_OP_UPSERT: Final = "upsert"
DB_OP_BATCH_PREFIX: Final = "BATCH "
# The Stable database duration histogram (model/db/metrics.yaml @384d661; equal to
# opentelemetry.semconv.metrics.db_metrics 0.66b2), with the bucket advice of
# docs/db/database-metrics.md @384d661.
METRIC_DB_CLIENT_OPERATION_DURATION: Final = "db.client.operation.duration"
DB_DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_RETRIEVAL: Final = "retrieval"
OP_GENERATE_CONTENT: Final = "generate_content"

# gen_ai.provider.name values (the conventions' well-known list)
PROVIDER_OPENAI: Final = "openai"
PROVIDER_ANTHROPIC: Final = "anthropic"

# gen_ai.response.finish_reasons value for a response that did not end normally
# (the output-messages schema's finish-reason enum): an abandoned stream.
FINISH_REASON_ERROR: Final = "error"

# gen_ai.token.type values
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# --- otel-ml attributes -------------------------------------------------------
# No OpenTelemetry convention exists for these (no tenant attribute, core#162; no
# classic-ML or drift conventions), so they live in otel-ml's own namespaces:
# llm.* and rag.* for LLM/RAG, ml.* for classic models and drift.
TENANT_ID: Final = "tenant.id"
LLM_TIME_PER_OUTPUT_CHUNK_MEAN: Final = "llm.time_per_output_chunk.mean"
LLM_OUTPUT_CHUNK_COUNT: Final = "llm.output_chunk.count"
LLM_USAGE_ESTIMATED: Final = "llm.usage.estimated"
LLM_STREAM_ABANDONED: Final = "llm.stream.abandoned"
RAG_RETRIEVAL_DOCUMENT_COUNT: Final = "rag.retrieval.document_count"
RAG_RETRIEVAL_SCORE_MAX: Final = "rag.retrieval.score.max"
RAG_RETRIEVAL_SCORE_MIN: Final = "rag.retrieval.score.min"
RAG_RETRIEVAL_SCORE_MEAN: Final = "rag.retrieval.score.mean"
# A vector database's raw distances (smaller is closer) and the function they were
# computed with (Chroma's cosine, l2, ip), next to the scores converted from them
# (instrument_chroma(); docs/instrument-chroma.md). No convention names either.
RAG_RETRIEVAL_DISTANCE_MIN: Final = "rag.retrieval.distance.min"
RAG_RETRIEVAL_DISTANCE_MAX: Final = "rag.retrieval.distance.max"
RAG_RETRIEVAL_DISTANCE_FUNCTION: Final = "rag.retrieval.distance.function"
# Records an add/upsert call writes: one operation with many records is no batch
# (db.operation.batch.size does not apply) and the conventions have no written-rows
# attribute.
RAG_VECTOR_DB_RECORD_COUNT: Final = "rag.vector_db.record_count"
RAG_GROUNDEDNESS_SCORE: Final = "rag.groundedness.score"
RAG_FEEDBACK_KIND: Final = "rag.feedback.kind"
RAG_FEEDBACK_SCORE: Final = "rag.feedback.score"
RAG_FEEDBACK_TRACE_ID: Final = "rag.feedback.trace_id"
# Classic model inference (inference span, prediction_count, inference_latency);
# ML_MODEL is also the usual attribute of a drift monitor. These were the bare
# "model" and "prediction" (CHANGELOG.md).
ML_MODEL: Final = "ml.model.name"
# The bounded predicted label (scores as one-decimal buckets). Also the name of a
# drift monitor's prediction stream (its "feature").
ML_PREDICTION: Final = "ml.prediction.label"
# Feedback kind on the rag.feedback metric: the same name as on the feedback span
# (was the bare "kind").
FEEDBACK_KIND: Final = RAG_FEEDBACK_KIND

# Value tenant.id takes on metrics once max_tenants distinct values were seen.
TENANT_OVERFLOW: Final = "__overflow__"
# Value for a bounded label (prediction) beyond its cap.
LABEL_OVERFLOW: Final = "__other__"

# --- span names ---------------------------------------------------------------
SPAN_INFERENCE: Final = "inference {model}"
SPAN_FEEDBACK: Final = "feedback {kind}"

# --- metrics (client, semconv v1.41: the default) -----------------------------
# Verified: equal to opentelemetry.semconv._incubating.metrics.gen_ai_metrics
# (0.66b2), pinned by tests/unit/test_semconv.py. These stay the default until a
# released package carries the renames below.
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
# --- metrics (client, semantic-conventions-genai main: opt-in) -----------------
# Emitted instead of the v1.41 ones only when OTEL_SEMCONV_STABILITY_OPT_IN lists
# gen_ai_latest_experimental (otel_ml.metrics chooses at Instruments.create), the
# opt-in the conventions prescribe for instrumentations that emitted v1.36 or
# older (docs/gen-ai/gen-ai-spans.md @9430220, the IMPORTANT note). Verified in
# docs/gen-ai/non-normative/migration.md @32c328e, docs/gen-ai/client-inference.md
# @024a4f9, docs/gen-ai/gen-ai-token-metrics.md @066d4a7 and
# docs/gen-ai/client-embeddings.md @88eccb1; not in opentelemetry-semantic-
# conventions 0.66b2 (tests/unit/test_semconv.py pins the literals).
# Inference (chat, text_completion, generate_content) durations and streaming
# timings: gen_ai.client.operation.* -> gen_ai.client.inference.* (PR #521).
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_INFERENCE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
METRIC_INFERENCE_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.inference.time_per_output_chunk"
# gen_ai.client.token.usage is replaced (PR #374) by counters per token category,
# split by gen_ai.token.modality ...
METRIC_INFERENCE_USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
METRIC_INFERENCE_USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: Final = (
    "gen_ai.client.inference.usage.cache_read.input_tokens"
)
METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = (
    "gen_ai.client.inference.usage.cache_write.input_tokens"
)
METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: Final = (
    "gen_ai.client.inference.usage.reasoning.output_tokens"
)
# ... and per-operation histograms, input and output apart (no token type).
METRIC_INFERENCE_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
# Embeddings get their own duration and input-token histogram.
METRIC_EMBEDDINGS_DURATION: Final = "gen_ai.client.embeddings.duration"
METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS: Final = "gen_ai.client.embeddings.operation.input_tokens"

# The opt-in variable and its GenAI value, as opentelemetry-instrumentation 0.66b2
# reads them (opentelemetry.instrumentation._semconv: OTEL_SEMCONV_STABILITY_OPT_IN,
# _StabilityMode.GEN_AI_LATEST_EXPERIMENTAL / HTTP / HTTP_DUP; pinned by the test).
OTEL_SEMCONV_STABILITY_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"
SEMCONV_OPT_IN_GEN_AI_LATEST: Final = "gen_ai_latest_experimental"
SEMCONV_OPT_IN_HTTP: Final = "http"
SEMCONV_OPT_IN_HTTP_DUP: Final = "http/dup"

# --- HTTP (semconv, Stable; emitted by the official FastAPI/httpx instrumentations)
# instrument_fastapi()/instrument_httpx() select the stable HTTP conventions unless
# OTEL_SEMCONV_STABILITY_OPT_IN names an http mode. Verified: equal to
# opentelemetry.semconv.metrics.http_metrics and .attributes.{http,url}_attributes
# (0.66b2, stable modules), pinned by tests/unit/test_semconv.py. They replace
# http.server.duration / http.client.duration (ms) and http.method,
# http.status_code, http.target.
METRIC_HTTP_SERVER_REQUEST_DURATION: Final = "http.server.request.duration"
METRIC_HTTP_CLIENT_REQUEST_DURATION: Final = "http.client.request.duration"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_ROUTE: Final = "http.route"
URL_SCHEME: Final = "url.scheme"

# --- metrics (server, semconv v1.41; emitted by the demo llm service) --------
# Verified as above (gen_ai_metrics 0.66b2); unchanged on genai main.
METRIC_SERVER_REQUEST_DURATION: Final = "gen_ai.server.request.duration"
METRIC_SERVER_TIME_TO_FIRST_TOKEN: Final = "gen_ai.server.time_to_first_token"
METRIC_SERVER_TIME_PER_OUTPUT_TOKEN: Final = "gen_ai.server.time_per_output_token"
# --- metrics (otel-ml) ------------------------------------------------------
# Prometheus names (collector prometheus exporter, UnderscoreEscapingWithSuffixes)
# are listed in docs/sdk.md; tests/config/test_metric_names.py checks every rule
# and dashboard query against them.
# The currency is in the name, the unit is the annotation {USD}: an annotation adds
# no Prometheus suffix, so the counter is llm_cost_usd_total (unit "USD" made it
# llm_cost_USD_total).
METRIC_COST: Final = "llm.cost.usd"
METRIC_COST_UNPRICED: Final = "llm.cost.unpriced"
METRIC_RETRIEVAL_DOCUMENT_COUNT: Final = "rag.retrieval.document_count"
METRIC_RETRIEVAL_SCORE: Final = "rag.retrieval.score"
METRIC_FEEDBACK: Final = "rag.feedback"
# Evaluation scores (otel_ml.evaluation), by gen_ai.evaluation.name,
# gen_ai.evaluation.score.label, gen_ai.request.model and tenant.id; replaces the
# demo's rag.groundedness.score histogram. The GenAI conventions define the
# gen_ai.evaluation.result event but no evaluation metric (model/gen-ai/metrics.yaml
# @9ba9b77): the name is otel-ml's, not gen_ai.*, whose names belong to the
# conventions (and gen_ai.evaluation.score is already their attribute namespace).
METRIC_EVALUATION_SCORE: Final = "llm.evaluation.score"
# Evaluations the off-path runner did not run (queue full, shut down), by error.type.
METRIC_EVALUATION_DROPPED: Final = "llm.evaluation.dropped"
# Spans the SDK could not export (collector unreachable past the retry window, a
# full buffer, shutdown's deadline), by error.type; otel_ml._delivery.
METRIC_EXPORT_DROPPED: Final = "otel_ml.export.dropped"
# Historical names without a namespace, kept (documented in docs/sdk.md).
METRIC_PREDICTION_COUNT: Final = "prediction_count"
METRIC_INFERENCE_LATENCY: Final = "inference_latency"
# drift and data quality (otel_ml.drift)
METRIC_DRIFT_SCORE: Final = "ml.drift.score"
METRIC_DRIFT_P_VALUE: Final = "ml.drift.p_value"
METRIC_DRIFT_DETECTED: Final = "ml.drift.detected"
METRIC_DATA_NULL_RATE: Final = "ml.data.null_rate"
METRIC_DATA_OUT_OF_RANGE_RATE: Final = "ml.data.out_of_range_rate"
METRIC_DATA_SCHEMA_VIOLATIONS: Final = "ml.data.schema_violations"
METRIC_MODEL_ACCURACY: Final = "ml.model.accuracy"
METRIC_MODEL_PRECISION: Final = "ml.model.precision"
METRIC_MODEL_RECALL: Final = "ml.model.recall"
METRIC_PREDICTION_RATE: Final = "ml.prediction.positive_rate"
# Attributes of the drift and data-quality metrics (were the bare "feature",
# "method" and "kind").
DRIFT_FEATURE: Final = "ml.feature.name"
DRIFT_METHOD: Final = "ml.drift.method"
SCHEMA_VIOLATION_KIND: Final = "ml.data.schema_violation.kind"
# Bias drift: the drift monitor's group-aware mode (no OpenTelemetry convention exists for
# group fairness). Per group (ml.group.attribute: the grouping attribute, e.g. "region";
# ml.group.value: the group, capped like tenants then LABEL_OVERFLOW), over the window:
METRIC_GROUP_POSITIVE_RATE: Final = "ml.group.positive_rate"
METRIC_GROUP_REFERENCE_POSITIVE_RATE: Final = "ml.group.reference_positive_rate"
METRIC_GROUP_TRUE_POSITIVE_RATE: Final = "ml.group.true_positive_rate"
# Disparity across groups per ml.fairness.measure (demographic_parity_difference,
# demographic_parity_ratio, equal_opportunity_difference: fairlearn's names), in the window
# and in the reference, and the band the change between them may move in.
METRIC_FAIRNESS_DISPARITY: Final = "ml.fairness.disparity"
METRIC_FAIRNESS_REFERENCE_DISPARITY: Final = "ml.fairness.reference_disparity"
METRIC_FAIRNESS_DISPARITY_BAND: Final = "ml.fairness.disparity_band"
GROUP_ATTRIBUTE: Final = "ml.group.attribute"
GROUP_VALUE: Final = "ml.group.value"
FAIRNESS_MEASURE: Final = "ml.fairness.measure"

# --- bucket boundaries (semconv v1.41 advice) --------------------------------
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
    67108864,
)
SERVER_TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
SERVER_TPOT_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)
SCORE_BUCKETS: Final = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DOCUMENT_COUNT_BUCKETS: Final = (0, 1, 2, 3, 5, 10, 20, 50, 100)

# --- names read from other GenAI instrumentations (enrichment) -----------------
# Owned by otel_ml/instrumentation/_enrich/: the usage and model attributes
# that OpenInference, OpenLLMetry and the official instrumentations set.
# Read, never emitted: each name below was checked in the peer's installed source
# (versions noted); names otel-ml also emits are the conventions' ones above.
# OpenInference (openinference-semantic-conventions 0.1.42, SpanAttributes; set by
# openinference-instrumentation-openai 0.1.66). llm.token_count.prompt includes the
# cache-read and cache-write tokens, as gen_ai.usage.input_tokens does.
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_SPAN_KIND_LLM: Final = "LLM"
OI_SPAN_KIND_EMBEDDING: Final = "EMBEDDING"
OI_LLM_MODEL_NAME: Final = "llm.model_name"
OI_LLM_PROVIDER: Final = "llm.provider"
OI_LLM_SYSTEM: Final = "llm.system"
OI_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
OI_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
OI_TOKEN_COUNT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OI_TOKEN_COUNT_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
# OpenLLMetry: 0.62.4 sets the conventions' names (gen_ai.usage.input_tokens,
# gen_ai.usage.cache_read.input_tokens, gen_ai.provider.name); its earlier releases
# set these (opentelemetry-semantic-conventions-ai 0.5.1, SpanAttributes).
LEGACY_GEN_AI_SYSTEM: Final = "gen_ai.system"
LEGACY_GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
LEGACY_GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
LEGACY_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read_input_tokens"
LEGACY_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation_input_tokens"
LEGACY_LLM_REQUEST_TYPE: Final = "llm.request.type"
# The v1.41 name of GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, still set by instrumentations
# built on opentelemetry-semantic-conventions 0.66b2.
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
# Instrumentation scopes (tracer and meter names) of the peers, from their source:
# opentelemetry-instrumentation-genai-openai 1.3b0 (__package__, given to
# opentelemetry-util-genai 1.3b0, whose own default is its handler module's name),
# openinference-instrumentation-openai 0.1.66 and opentelemetry-instrumentation-openai
# 0.62.4 (module __name__ of v1/ and v0/).
PEER_SCOPE_GENAI_OPENAI: Final = "opentelemetry.instrumentation.genai.openai"
PEER_SCOPE_GENAI_UTIL: Final = "opentelemetry.util.genai.handler"
PEER_SCOPE_OPENINFERENCE_OPENAI: Final = "openinference.instrumentation.openai"
PEER_SCOPE_OPENLLMETRY_OPENAI_V1: Final = "opentelemetry.instrumentation.openai.v1"
PEER_SCOPE_OPENLLMETRY_OPENAI_V0: Final = "opentelemetry.instrumentation.openai.v0"
