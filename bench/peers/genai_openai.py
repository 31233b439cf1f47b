"""The official successor, ``opentelemetry-instrumentation-genai-openai``
(1.3b0, on ``opentelemetry-util-genai`` 1.3b0): ``OpenAIInstrumentor().instrument()``
with the providers, as its README says."""

from __future__ import annotations

import harness

PACKAGES = ("opentelemetry-instrumentation-genai-openai", "opentelemetry-util-genai")
METRICS = (
    "gen_ai.client.operation.duration",
    "gen_ai.client.token.usage",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.client.operation.time_per_output_chunk",
)


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    providers = harness.sdk_providers()
    OpenAIInstrumentor().instrument(
        tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
    )
    return harness.Variant(harness.plain_request, providers, METRICS)


if __name__ == "__main__":
    harness.run(setup, PACKAGES)
