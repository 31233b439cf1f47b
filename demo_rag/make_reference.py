"""Make the api's drift reference from the telemetry of a healthy baseline run.

``python -m demo_rag.make_reference`` starts the three demo services, sends the demo's
ordinary workload (corpus questions, a few off-topic ones), stops the services, and reads
the four RAG health signals of every answered question back from the exported traces:

- ``rag.retrieval.score.max``, from vectordb's ``retrieval`` span (no score on the span
  means no hit: top score 0, as the api feeds it);
- ``rag.retrieval.document_count``, from the api's ``POST /ask`` server span: the documents
  the answer used (the retrieval span counts what Chroma returned, zero-score rows included);
- ``gen_ai.usage.output_tokens``, from the api's streamed ``chat`` span;
- ``rag.groundedness.score``, from the same server span.

It writes them with :func:`otel_ml.drift.save_reference` to ``demo_rag/data/rag_reference.json``,
the file the api loads at startup. Taking the reference from telemetry rather than from
the code is what a production service would do too: pick a period known to be healthy and
keep its traces' values as the baseline.

The simulator is seeded and its delays shortened (they do not change any of the four
signals), so a run with the same arguments in a clean environment writes the same file.
Other variables reach the services as in ``otel-ml demo``: with ``LLM_BASE_URL`` or
``LLM_SIM_HALLUCINATION_RATE`` set, the reference describes that setup instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from demo_rag import api, driver
from demo_rag.launcher import DEFAULT_TENANTS, launch
from otel_ml import semconv
from otel_ml.cli import report
from otel_ml.drift import NUMERIC, RAG_FEATURES, FeatureSpec, clean, save_reference

DEFAULT_REQUESTS: Final = 400
# Not the demo's seed (7): the reference should be a different sample of the same traffic
# than the runs it is compared with, or "no drift" would be true by construction.
DEFAULT_SEED: Final = 101
DEFAULT_CONCURRENCY: Final = 8
# Delays do not change any of the four signals: shorten them so the run takes seconds.
_FAST_SIMULATOR: Final = {
    "LLM_SIM_TTFT_MS": "2",
    "LLM_SIM_TTFT_SIGMA": "0",
    "LLM_SIM_TBT_MS": "0.5",
    "LLM_SIM_TBT_SIGMA": "0",
}

_SpanTest = Callable[[report.Span], bool]


def reference_values(spans: Iterable[report.Span]) -> dict[str, list[float]]:
    """The four RAG signals of every answered question, per feature, sorted.

    A question counts as answered when its api server span is not an error and holds a
    groundedness score: the same answers the api feeds to its monitor. Sorted, because
    a reference is a sample (order carries no meaning) and a stable order keeps the
    committed file's diff small when it is regenerated.
    """
    traces: dict[str, list[report.Span]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    values: dict[str, list[float]] = {name: [] for name in RAG_FEATURES}
    for trace in traces.values():
        signals = _signals(trace)
        if signals is not None:
            for name, value in signals.items():
                values[name].append(value)
    return {name: sorted(found) for name, found in values.items()}


def _signals(trace: Sequence[report.Span]) -> Mapping[str, float] | None:
    answer = _first(trace, lambda s: s.service == api.SERVICE_NAME
                    and s.kind == report.SPAN_KIND_SERVER and not s.parent_span_id)
    retrieval = _first(trace, lambda s: s.attributes.get(semconv.GEN_AI_OPERATION_NAME)
                       == semconv.OP_RETRIEVAL)
    chat = _first(trace, lambda s: s.service == api.SERVICE_NAME
                  and s.kind == report.SPAN_KIND_CLIENT
                  and s.attributes.get(semconv.GEN_AI_REQUEST_STREAM) is True)
    if answer is None or retrieval is None or chat is None or answer.is_error:
        return None
    groundedness = answer.attributes.get(semconv.RAG_GROUNDEDNESS_SCORE)
    tokens = chat.attributes.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
    if not isinstance(groundedness, (int, float)) or not isinstance(tokens, int):
        return None
    return {
        semconv.RAG_RETRIEVAL_SCORE_MAX: float(
            retrieval.attributes.get(semconv.RAG_RETRIEVAL_SCORE_MAX, 0.0)
        ),
        semconv.RAG_RETRIEVAL_DOCUMENT_COUNT: float(
            answer.attributes.get(semconv.RAG_RETRIEVAL_DOCUMENT_COUNT, 0)
        ),
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: float(tokens),
        semconv.RAG_GROUNDEDNESS_SCORE: float(groundedness),
    }


def _first(trace: Iterable[report.Span], wanted: _SpanTest) -> report.Span | None:
    return next((span for span in trace if wanted(span)), None)


def record_baseline(out_dir: Path, requests: int, seed: int, concurrency: int) -> None:
    """Run the services with the ordinary workload; their telemetry lands in ``out_dir``."""
    jobs = driver.plan_jobs(requests, DEFAULT_TENANTS, seed)
    env = {
        **_FAST_SIMULATOR,
        "LLM_SIM_SEED": str(seed),
        # The api being measured must not load the reference it is about to replace.
        api.DRIFT_REFERENCE_ENV: "",
    }
    with launch(out_dir=out_dir, tenants=DEFAULT_TENANTS, env=env) as services:
        summary = asyncio.run(driver.run_workload(services, jobs, concurrency, seed))
    print(f"baseline: {len(summary.outcomes)} questions, {summary.failed} failed")


def make_reference(out: Path, requests: int, seed: int, concurrency: int) -> dict[str, int]:
    """Record a baseline and save it as a reference file; returns the values per feature."""
    with tempfile.TemporaryDirectory(prefix="rag-reference-") as scratch:
        telemetry = Path(scratch)
        record_baseline(telemetry, requests, seed, concurrency)
        values = reference_values(report.load(telemetry).spans)
    empty = [name for name, found in values.items() if not found]
    if empty:
        raise RuntimeError(f"the baseline run produced no value for {empty}")
    specs = [FeatureSpec(name, NUMERIC, clean(found, NUMERIC)) for name, found in values.items()]
    save_reference(out, specs)
    return {name: len(found) for name, found in values.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_rag.make_reference",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, metavar="N",
                        help=f"baseline questions (default {DEFAULT_REQUESTS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"workload seed (default {DEFAULT_SEED})")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="K")
    parser.add_argument("--out", type=Path, default=api.DRIFT_REFERENCE, metavar="FILE",
                        help="reference file to write (default: the one the api loads)")
    args = parser.parse_args(argv)
    counts = make_reference(args.out, args.requests, args.seed, args.concurrency)
    print(f"wrote {args.out}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
