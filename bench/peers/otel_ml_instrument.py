"""otel-ml's drop-in: ``otel_ml.instrument_openai()`` once, every client
patched (the README's first way), calls made under a tenant."""

from __future__ import annotations

from typing import Any

import harness
import otel_ml_setup


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    import otel_ml

    tel, providers = otel_ml_setup.telemetry(mode)
    otel_ml.instrument_openai()

    def request(raw: Any) -> Any:
        plain = harness.plain_request(raw)

        def call() -> None:
            with tel.tenant("acme"):
                plain()

        return call

    return harness.Variant(request, providers, otel_ml_setup.metrics())


if __name__ == "__main__":
    harness.run(setup, otel_ml_setup.PACKAGES)
