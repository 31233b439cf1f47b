"""An app that keeps making spans at a steady rate through a collector outage.

    python e2e_outage_app.py --endpoint URL --service NAME --seconds S --rate R --out FILE
        [--export-retry-seconds X] [--max-queue-size N]

It runs ``otel_ml.configure()`` in a process of its own with the documented
defaults (only the options given are set), prints ``started`` once the SDK is
up, then for ``S`` seconds starts ``R`` requests a second, each one trace of
:data:`SPANS_PER_TRACE` spans (a server span and its steps). It then flushes
(bounded by :data:`FLUSH_TIMEOUT_S`, so the backlog of an outage can drain),
writes what it made to ``FILE`` (trace id -> span ids, and when each trace
began, wall clock) and prints one JSON line: the spans it made and the drops
the SDK counted on ``otel_ml.export.dropped``. The shutdown after that exports
the drop counter through the collector.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import otel_ml

SPANS_PER_TRACE = 4
FLUSH_TIMEOUT_S = 120.0


def _request(telemetry: otel_ml.Telemetry, n: int) -> tuple[str, list[str]]:
    """One request: a server span with three steps, like a RAG answer."""
    tracer = telemetry.tracer
    with tracer.start_as_current_span(f"POST /ask {n}") as root:
        ids = [format(root.get_span_context().span_id, "016x")]
        for step in ("retrieve", "generate", "evaluate"):
            with tracer.start_as_current_span(step) as child:
                ids.append(format(child.get_span_context().span_id, "016x"))
    return format(root.get_span_context().trace_id, "032x"), ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--export-retry-seconds", type=float)
    parser.add_argument("--max-queue-size", type=int)
    args = parser.parse_args(argv)
    # The SDK's own warnings (export failed, dropping) go to stderr for the test.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    options = {
        name: value
        for name, value in (
            ("export_retry_seconds", args.export_retry_seconds),
            ("max_queue_size", args.max_queue_size),
        )
        if value is not None
    }
    telemetry = otel_ml.configure(
        service_name=args.service, endpoint=args.endpoint, enrich=False, **options
    )
    print("started", flush=True)
    traces: dict[str, list[str]] = {}
    began: dict[str, float] = {}
    interval = 1.0 / args.rate
    start = next_at = time.monotonic()
    n = 0
    while time.monotonic() - start < args.seconds:
        wall = time.time()
        trace_id, span_ids = _request(telemetry, n)
        traces[trace_id], began[trace_id] = span_ids, wall
        n += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    flushed = telemetry.force_flush(timeout_millis=int(FLUSH_TIMEOUT_S * 1000))
    assert telemetry.delivery is not None, "configure() built no OTLP pipeline"
    dropped = telemetry.delivery.dropped()
    args.out.write_text(json.dumps({"traces": traces, "began": began}))
    print(json.dumps({
        "spans": sum(len(ids) for ids in traces.values()),
        "dropped": dropped,
        "flushed": flushed,
    }), flush=True)
    telemetry.shutdown()


if __name__ == "__main__":
    main()
