"""otel-ml by hand: ``tenant()`` + ``generation()`` around the call, ``wrap()``
around the stream (the README's second way)."""

from __future__ import annotations

from typing import Any

import harness
import otel_ml_setup


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    tel, providers = otel_ml_setup.telemetry(mode)

    def request(raw: Any) -> Any:
        def call() -> None:
            with (
                tel.tenant("acme"),
                tel.generation(harness.MODEL, "openai", prompt=harness.MESSAGES, stream=True) as g,
            ):
                for _ in g.wrap(harness.stream(raw)):
                    pass

        return call

    return harness.Variant(request, providers, otel_ml_setup.metrics())


if __name__ == "__main__":
    harness.run(setup, otel_ml_setup.PACKAGES)
