"""OpenInference's ``openinference-instrumentation-openai`` (0.1.66):
``OpenAIInstrumentor().instrument(tracer_provider=...)``, as its README says.
It records spans only (no metrics), so only spans and usage are checked."""

from __future__ import annotations

import harness

PACKAGES = ("openinference-instrumentation-openai", "openinference-instrumentation")


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    providers = harness.sdk_providers()
    OpenAIInstrumentor().instrument(tracer_provider=providers.tracer_provider)
    return harness.Variant(harness.plain_request, providers)


if __name__ == "__main__":
    harness.run(setup, PACKAGES)
