"""SDK overhead: one instrumented RAG request, otel-ml vs the raw OTel SDK.

The request is a retrieval of 5 documents plus a streaming generation of 200
chunks with local token counting (tiktoken) and cost. The baseline writes the
same spans, attributes and metric points by hand with opentelemetry-sdk, so
the ratio is what otel-ml adds on top of OpenTelemetry itself. Both variants
run in the same process, interleaved in rounds, against identical providers
(BatchSpanProcessor to a discarding exporter, an in-memory metric reader).

    python bench/bench_sdk.py [--requests 2000] [--rounds 5] [--json out.json]
    python bench/bench_sdk.py --per-chunk [--runs 300]

``--per-chunk`` measures only the amortized cost of one streamed chunk for
``wrap()`` and for ``instrument_openai()``'s stream proxy, in-process, over
pre-built real ``ChatCompletionChunk`` objects (see ``per_extra_chunk``).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

import otel_ml
from otel_ml import semconv
from otel_ml.pricing import PriceTable
from otel_ml.providers import chunk_gap_views
from otel_ml.tokens import count_tokens, encoding_name_for_model, get_encoding

MODEL = "gpt-4o-mini"
CHUNKS = ["Retr", "ieval", " aug", "mented", " gen", "eration", " grounds", " answers"] * 25
PROMPT = "Answer from the context only.\n" + "The collector batches spans before export. " * 20
HITS = [(f"doc-{i}", 0.9 - i * 0.1) for i in range(5)]


class DiscardExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def providers(gap_views: bool = True) -> tuple[TracerProvider, MeterProvider]:
    """Providers as configure() builds them (its views included), exporting
    to nothing and to memory; ``gap_views=False``: a user's own plain providers."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))
    views = chunk_gap_views() if gap_views else []
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()], views=views)


def otel_ml_request(tel: otel_ml.Telemetry) -> None:
    with tel.tenant("acme"):
        with tel.retrieval(data_source="docs", query="q", top_k=5) as r:
            r.record(HITS)
        with tel.generation(model=MODEL, provider="openai", prompt=PROMPT, stream=True) as g:
            for _ in g.wrap(CHUNKS):
                pass


def raw_sdk_request_factory(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Any:
    """The same telemetry written by hand: what a careful user would do."""
    from opentelemetry import baggage, context

    tracer = tracer_provider.get_tracer("raw")
    meter = meter_provider.get_meter("raw")
    buckets = semconv.DURATION_BUCKETS
    tokens = meter.create_histogram(semconv.METRIC_TOKEN_USAGE, unit="{token}",
                                    explicit_bucket_boundaries_advisory=semconv.TOKEN_BUCKETS)
    duration = meter.create_histogram(semconv.METRIC_OPERATION_DURATION, unit="s",
                                      explicit_bucket_boundaries_advisory=buckets)
    ttft_h = meter.create_histogram(semconv.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
                                    explicit_bucket_boundaries_advisory=buckets)
    tbt_h = meter.create_histogram(semconv.METRIC_TIME_PER_OUTPUT_CHUNK, unit="s",
                                   explicit_bucket_boundaries_advisory=buckets)
    cost_c = meter.create_counter(semconv.METRIC_COST, unit="USD")
    docs_h = meter.create_histogram(semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT)
    score_h = meter.create_histogram(semconv.METRIC_RETRIEVAL_SCORE,
                                     explicit_bucket_boundaries_advisory=semconv.SCORE_BUCKETS)
    encoding = get_encoding(encoding_name_for_model(MODEL))
    price = PriceTable.load().lookup(MODEL)
    assert price is not None

    def request() -> None:
        token = context.attach(baggage.set_baggage("tenant.id", "acme"))
        try:
            with tracer.start_as_current_span("retrieval docs", kind=SpanKind.CLIENT) as span:
                scores = [score for _, score in HITS]
                span.set_attributes({
                    "gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "docs",
                    "gen_ai.retrieval.top_k": 5, "tenant.id": "acme",
                    "rag.retrieval.document_count": len(HITS),
                    "rag.retrieval.score.max": max(scores), "rag.retrieval.score.min": min(scores),
                    "rag.retrieval.score.mean": sum(scores) / len(scores),
                })
                docs_h.record(len(HITS), {"gen_ai.data_source.id": "docs", "tenant.id": "acme"})
                for score in scores:
                    score_h.record(score, {"gen_ai.data_source.id": "docs"})
            with tracer.start_as_current_span("chat " + MODEL, kind=SpanKind.CLIENT) as span:
                t0 = time.perf_counter()
                stamps: list[float] = []
                pieces: list[str] = []
                for piece in CHUNKS:
                    stamps.append(time.perf_counter())
                    pieces.append(piece)
                input_tokens = len(encoding.encode_ordinary(PROMPT))
                output_tokens = len(encoding.encode_ordinary("".join(pieces)))
                cost = price.cost(input_tokens, output_tokens)
                attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                              "gen_ai.request.model": MODEL, "tenant.id": "acme"}
                span.set_attributes({
                    **attributes, "gen_ai.request.stream": True,
                    "gen_ai.usage.input_tokens": input_tokens,
                    "gen_ai.usage.output_tokens": output_tokens,
                    "gen_ai.response.time_to_first_chunk": stamps[0] - t0,
                    "llm.time_per_output_chunk.mean": (stamps[-1] - stamps[0]) / (len(stamps) - 1),
                    "llm.usage.estimated": True, "gen_ai.usage.cost.amount": cost,
                    "gen_ai.usage.cost.currency": "USD",
                })
                tokens.record(input_tokens, {**attributes, "gen_ai.token.type": "input"})
                tokens.record(output_tokens, {**attributes, "gen_ai.token.type": "output"})
                cost_c.add(cost, attributes)
                duration.record(time.perf_counter() - t0, attributes)
                ttft_h.record(stamps[0] - t0, attributes)
                for previous, current in itertools.pairwise(stamps):
                    tbt_h.record(current - previous, attributes)
        finally:
            context.detach(token)

    return request


def time_per_call(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def per_chunk_cost(tel: otel_ml.Telemetry, repeats: int) -> dict[str, float]:
    """Request-path cost of one chunk, in µs: the timed loop over 200 chunks
    through chunk() or wrap(), minus the same bare loop. The span's end (token
    counting, metric records) is outside the timed loop, as in a real stream
    where it runs once after the last chunk."""
    loops: dict[str, list[float]] = {"chunk": [], "wrap": [], "bare": []}
    for _ in range(repeats):
        with tel.generation(model=MODEL, provider="openai", stream=True) as g:
            start = time.perf_counter()
            for piece in CHUNKS:
                g.chunk(piece)
            loops["chunk"].append(time.perf_counter() - start)
        with tel.generation(model=MODEL, provider="openai", stream=True) as g:
            start = time.perf_counter()
            for _ in g.wrap(CHUNKS):
                pass
            loops["wrap"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in CHUNKS:
            pass
        loops["bare"].append(time.perf_counter() - start)
    bare = statistics.median(loops["bare"])
    return {
        name: (statistics.median(loops[name]) - bare) / len(CHUNKS) * 1e6
        for name in ("chunk", "wrap")
    }


def openai_chunks(count: int) -> list[Any]:
    """A chat stream as the openai client yields it: ``count`` content chunks,
    a finish chunk and a usage chunk, as real ``ChatCompletionChunk`` objects."""
    from openai.types.chat import ChatCompletionChunk

    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1733000000,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench"}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Any:
        choices = [] if delta is None else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        ]
        return ChatCompletionChunk.model_validate({**base, "choices": choices, **extra})

    return (
        [chunk({"role": "assistant", "content": ""})]
        + [chunk({"content": f" tok{i}"}) for i in range(count)]
        + [chunk({}, "stop"),
           ChatCompletionChunk.model_validate({**base, "choices": [], "usage": {
               "prompt_tokens": 120, "completion_tokens": count, "total_tokens": 120 + count}})]
    )


def per_extra_chunk(tel: otel_ml.Telemetry, runs: int) -> dict[str, dict[str, float]]:
    """µs per extra chunk, as bench_openai.py computes it, without the HTTP
    client's noise: (overhead at 2000 chunks - overhead at 200) / 1800, where
    the overhead is one whole stream (span start, every chunk, span end with
    all its records) minus the bare loop over the same chunk objects. Best and
    median over ``runs`` alternated runs of each variant."""
    from otel_ml.instrumentation._openai._api import CHAT
    from otel_ml.instrumentation._openai._stream import StreamProxy

    def bare(chunks: list[Any]) -> None:
        for _ in iter(chunks):
            pass

    def wrapped(chunks: list[Any]) -> None:
        with tel.tenant("acme"), tel.generation(MODEL, "openai", stream=True) as g:
            for _ in g.wrap(iter(chunks)):
                pass

    def proxied(chunks: list[Any]) -> None:
        with tel.tenant("acme"):
            span = tel.generation(MODEL, "openai", stream=True)
            with span:
                stream = StreamProxy(iter(chunks), span, span.hold(), CHAT)
            for _ in stream:
                pass

    sizes = (200, 2000)
    streams = {size: openai_chunks(size) for size in sizes}
    variants = {"bare": bare, "wrap": wrapped, "instrument_openai": proxied}
    times: dict[tuple[str, int], list[float]] = {(n, s): [] for n in variants for s in sizes}
    for _ in range(runs):
        for size in sizes:
            for name, fn in variants.items():
                start = time.perf_counter()
                fn(streams[size])
                times[name, size].append(time.perf_counter() - start)
    results: dict[str, dict[str, float]] = {}
    for name in ("wrap", "instrument_openai"):
        results[name] = {}
        for stat, pick in (("best", min), ("median", statistics.median)):
            small, large = (pick(times[name, s]) - pick(times["bare", s]) for s in sizes)
            results[name][f"{stat}_us_per_extra_chunk"] = (large - small) / 1800 * 1e6
            results[name][f"{stat}_us_overhead_200_chunks"] = small * 1e6
    return results


def per_chunk_main(runs: int) -> int:
    """Per extra chunk, with configure()'s views and with a user's plain providers."""
    results: dict[str, Any] = {"python": platform.python_version(), "runs": runs}
    for label, gap_views in (("otel_ml_providers", True), ("plain_sdk_providers", False)):
        tracer_provider, meter_provider = providers(gap_views)
        tel = otel_ml.Telemetry(tracer_provider, meter_provider, owns_providers=True)
        per_extra_chunk(tel, max(runs // 10, 3))  # warm-up
        results[label] = per_extra_chunk(tel, runs)
        tel.shutdown()
    print(json.dumps(results, indent=2))
    return 0


def peak_memory(fn: Callable[[], None], n: int) -> int:
    gc.collect()
    tracemalloc.start()
    for _ in range(n):
        fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--per-chunk", action="store_true", help="only the per-chunk costs")
    parser.add_argument("--runs", type=int, default=300, help="runs per variant (--per-chunk)")
    args = parser.parse_args()
    if args.per_chunk:
        return per_chunk_main(args.runs)

    tracer_provider, meter_provider = providers()
    tel = otel_ml.Telemetry(tracer_provider, meter_provider, owns_providers=True)
    raw_tracer_provider, raw_meter_provider = providers()
    raw_request = raw_sdk_request_factory(raw_tracer_provider, raw_meter_provider)
    count_tokens("warm up", MODEL)

    def ours() -> None:
        otel_ml_request(tel)

    for fn in (ours, raw_request):  # warm caches, JIT-free but allocator-warm
        time_per_call(fn, 200)
    ours_times, raw_times = [], []
    for round_number in range(args.rounds):
        pair = (ours, raw_request) if round_number % 2 == 0 else (raw_request, ours)
        for fn in pair:
            elapsed = time_per_call(fn, args.requests)
            (ours_times if fn is ours else raw_times).append(elapsed)
        print(f"round {round_number + 1}/{args.rounds}: otel-ml {ours_times[-1] * 1e6:.0f} µs, "
              f"raw {raw_times[-1] * 1e6:.0f} µs", file=sys.stderr)
    per_chunk = per_chunk_cost(tel, repeats=2000)
    results = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown cpu'}",
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "otel_ml_us_per_request": statistics.median(ours_times) * 1e6,
        "raw_sdk_us_per_request": statistics.median(raw_times) * 1e6,
        "ratio": statistics.median(ours_times) / statistics.median(raw_times),
        "per_chunk_us_chunk": per_chunk["chunk"],
        "per_chunk_us_wrap": per_chunk["wrap"],
        "peak_traced_bytes_otel_ml_500_requests": peak_memory(ours, 500),
        "peak_traced_bytes_raw_500_requests": peak_memory(raw_request, 500),
    }
    tel.shutdown()
    raw_tracer_provider.shutdown()
    raw_meter_provider.shutdown()
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
