"""OpenLIT (``openlit`` 1.45.0), set up as its docs say: ``openlit.init()``,
which reuses the global SDK providers when the app has set them. It requires
``openai<3``, so it runs with openai 2.54.0 (on httpx) and is paired with the
uninstrumented client of that version.

Two departures from ``init()``'s defaults, each to compare like with like:
message content is not captured (``capture_message_content=False``; every other
variant records none by default), and its HTTP-client instrumentors are
disabled, so the mock transport's HTTP call adds no second span. Its pricing
file is a local one (by default ``init()`` downloads one from GitHub). It
emits an event per call even without content: a LoggerProvider is set for it
(without one, ``init()`` prints them to stdout).
"""

from __future__ import annotations

import json
import tempfile

import harness

PACKAGES = ("openlit",)
METRICS = ("gen_ai.client.operation.duration", "gen_ai.client.token.usage")
HTTP_INSTRUMENTORS = ["httpx", "requests", "urllib3", "urllib", "aiohttp-client"]
# OpenLIT's pricing format: USD per 1000 tokens.
PRICES = {"chat": {"gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006}}}


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    import openlit
    from opentelemetry import _logs, metrics, trace

    providers = harness.sdk_providers(logs=True)
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    _logs.set_logger_provider(providers.logger_provider)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as prices:
        json.dump(PRICES, prices)
    openlit.init(
        service_name="bench",
        capture_message_content=False,
        disabled_instrumentors=HTTP_INSTRUMENTORS,
        pricing_json=prices.name,
    )
    return harness.Variant(harness.plain_request, providers, METRICS)


if __name__ == "__main__":
    harness.run(setup, PACKAGES)
