"""The official ``opentelemetry-instrumentation-openai-v2`` (2.4b0), as its
README sets it up: ``OpenAIInstrumentor().instrument()`` with the providers."""

from __future__ import annotations

import harness

PACKAGES = ("opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai")
# Its metrics (gen_ai semantic conventions, names as the package records them).
METRICS = ("gen_ai.client.operation.duration", "gen_ai.client.token.usage")


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    providers = harness.sdk_providers()
    OpenAIInstrumentor().instrument(
        tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
    )
    return harness.Variant(harness.plain_request, providers, METRICS)


if __name__ == "__main__":
    harness.run(setup, PACKAGES)
