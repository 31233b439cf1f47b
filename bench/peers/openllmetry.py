"""OpenLLMetry's ``opentelemetry-instrumentation-openai`` (0.62.4), used on its
own as its README shows: ``OpenAIInstrumentor().instrument()`` with the providers."""

from __future__ import annotations

import harness

PACKAGES = ("opentelemetry-instrumentation-openai", "opentelemetry-semantic-conventions-ai")
METRICS = ("gen_ai.client.operation.duration", "gen_ai.client.token.usage")


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    providers = harness.sdk_providers()
    OpenAIInstrumentor().instrument(
        tracer_provider=providers.tracer_provider, meter_provider=providers.meter_provider
    )
    return harness.Variant(harness.plain_request, providers, METRICS)


if __name__ == "__main__":
    harness.run(setup, PACKAGES)
