"""Telemetry the demo services do not produce, sent by a separate process.

    python e2e_emit.py redaction --endpoint URL --email E --api-key K
    python e2e_emit.py drift --endpoint URL

Each runs ``otel_ml.configure`` in a fresh process, so the test session's
own process keeps no global OpenTelemetry state, and prints one JSON line
with what the test needs to look the data up (a trace id). Both shut the SDK
down before exiting, which flushes every span and metric to the collector.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence

import otel_ml
from otel_ml import semconv
from otel_ml.drift import DriftMonitor

REDACTION_SERVICE = "e2e-redaction"
DRIFT_SERVICE = "e2e-drift"
DRIFT_MODEL = "e2e-churn"


def emit_redaction(endpoint: str, email: str, api_key: str) -> dict[str, str]:
    """One trace whose prompt, completion and retrieval query contain both secrets."""
    telemetry = otel_ml.configure(
        service_name=REDACTION_SERVICE, endpoint=endpoint, capture_content=True
    )
    secret_text = f"I am {email}, my OpenAI key is {api_key}; why is my bill so high?"
    try:
        with telemetry.tracer.start_as_current_span("redaction-check") as root, \
                telemetry.tenant("e2e-redaction"):
            with telemetry.retrieval("docs", query=secret_text, top_k=2) as r:
                r.record([("kb-1", 0.9), ("kb-2", 0.4)])
            prompt = [{"role": "user", "content": secret_text}]
            with telemetry.generation("gpt-4o-mini", "openai", prompt=prompt) as g:
                g.output(f"Contact {email} was found; never share {api_key}.")
                g.usage(input_tokens=24, output_tokens=12)
            trace_id = format(root.get_span_context().trace_id, "032x")
    finally:
        telemetry.shutdown()
    return {"trace_id": trace_id}


def emit_drift(endpoint: str) -> dict[str, str]:
    """A monitor whose live data drifted, with schema violations and labelled predictions.

    Fills every metric of the drift dashboard: drift score, p-value and
    detection, null rate, schema violations, positive rate and accuracy.
    """
    telemetry = otel_ml.configure(service_name=DRIFT_SERVICE, endpoint=endpoint)
    rng = random.Random(7)
    try:
        monitor = DriftMonitor(
            telemetry.meter, attributes={semconv.ML_MODEL: DRIFT_MODEL}, min_samples=30
        )
        monitor.add_feature("age", [rng.gauss(40, 5) for _ in range(500)])
        monitor.add_feature("plan", [rng.choice(["free", "pro"]) for _ in range(500)])
        monitor.set_prediction_reference([rng.random() < 0.2 for _ in range(500)])
        for i in range(300):
            record: dict[str, object] = {
                "age": rng.gauss(55, 5), "plan": rng.choice(["pro", "team"])
            }
            if i % 10 == 0:
                del record["plan"]  # missing_field, and a null
            if i % 25 == 0:
                record["coupon"] = "X"  # new_field
            monitor.observe(record)
            prediction = rng.random() < 0.5
            monitor.record_prediction(prediction, prediction_id=i)
            monitor.record_label(i, prediction if rng.random() < 0.8 else not prediction)
        report = monitor.compute()
        # Export while the monitor's gauges are still registered; close() removes them.
        telemetry.force_flush()
        monitor.close()
        drifted = ",".join(report.drifted)
    finally:
        telemetry.shutdown()
    return {"drifted": drifted}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("what", choices=("redaction", "drift"))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--email", default="")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args(argv)
    if args.what == "redaction":
        result = emit_redaction(args.endpoint, args.email, args.api_key)
    else:
        result = emit_drift(args.endpoint)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
