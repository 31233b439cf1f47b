"""otel-ml through the real ``openai`` client: a streamed chat completion,
uninstrumented against ``generation()`` + ``wrap()`` and against the drop-in
``instrument_openai()``.

The client is the official ``openai`` package (3.x, on ``httpx2``) over a mock
transport that answers with a canned SSE stream in OpenAI's wire format: 200
content chunks, a finish chunk and a usage chunk. Every variant is the same
client code path, so the differences are what the instrumentation adds. The
variants run in one process, interleaved in rounds, each with its own client;
the drop-in one is instrumented per client, so the others stay untouched.

CPU time per request is ``time.process_time()``: the SDK's batch export thread
counts too, as it would in an app. The cost of one extra chunk comes from a
second stream size (2000 chunks) in the same run:
``(overhead at 2000 - overhead at 200) / 1800``.

    python bench/bench_openai.py [--requests 200] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx2
import openai
from bench_sdk import providers

import otel_ml

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "Answer from the context only."},
    {"role": "user", "content": "How does the collector batch spans?"},
]
SIZES = (200, 2000)


def sse_body(chunks: int) -> bytes:
    """A chat completion stream as OpenAI sends it with include_usage."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1733000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
        "service_tier": "default",
    }

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = [{**base, "choices": [choice({"role": "assistant", "content": "", "refusal": None})],
               "usage": None}]
    events += [{**base, "choices": [choice({"content": " tok"})], "usage": None}] * chunks
    events.append({**base, "choices": [choice({}, "stop")], "usage": None})
    events.append({**base, "choices": [], "usage": {
        "prompt_tokens": 120, "completion_tokens": chunks, "total_tokens": 120 + chunks,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }})
    lines = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
    return b"".join(lines) + b"data: [DONE]\n\n"


def client(chunks: int) -> openai.OpenAI:
    body = sse_body(chunks)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    transport = httpx2.MockTransport(handler)
    return openai.OpenAI(
        api_key="bench", base_url="https://api.openai.test/v1", max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def uninstrumented(chunks: int) -> Callable[[], None]:
    raw = client(chunks)

    def request() -> None:
        for _ in raw.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass

    return request


def wrapped(chunks: int, tel: otel_ml.Telemetry) -> Callable[[], None]:
    raw = client(chunks)

    def request() -> None:
        with tel.tenant("acme"), tel.generation(
            MODEL, "openai", prompt=MESSAGES, stream=True
        ) as g:
            stream = raw.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            for _ in g.wrap(stream):
                pass

    return request


def drop_in(chunks: int, tel: otel_ml.Telemetry) -> Callable[[], None]:
    instrumented = client(chunks)
    otel_ml.instrument_openai(instrumented, telemetry=tel)

    def request() -> None:
        with tel.tenant("acme"):
            stream = instrumented.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            for _ in stream:
                pass

    return request


def cpu_per_call(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def measure(
    variants: dict[str, Callable[[], None]], requests: int, rounds: int
) -> dict[str, list[float]]:
    """CPU seconds per request of each variant in each round, the order
    rotated across rounds so that no variant always runs first or last."""
    for fn in variants.values():
        cpu_per_call(fn, max(requests // 10, 5))
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(cpu_per_call(variants[name], requests))
        print(f"  round {round_number + 1}/{rounds}: " + ", ".join(
            f"{name} {times[name][-1] * 1e6:.0f} µs" for name in names), file=sys.stderr)
    return times


def paired(times: dict[str, list[float]], name: str) -> tuple[float, float]:
    """Median over rounds of (variant / uninstrumented, variant - uninstrumented):
    pairing within a round cancels the machine's drift between rounds."""
    base = times["uninstrumented"]
    ratios = [value / reference for value, reference in zip(times[name], base, strict=True)]
    deltas = [value - reference for value, reference in zip(times[name], base, strict=True)]
    return statistics.median(ratios), statistics.median(deltas)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per round (200 chunks)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args()

    tracer_provider, meter_provider = providers()
    tel = otel_ml.Telemetry(tracer_provider, meter_provider, owns_providers=True)
    runs: dict[int, dict[str, list[float]]] = {}
    for chunks in SIZES:
        requests = max(args.requests * SIZES[0] // chunks, 10)
        print(f"{chunks} chunks, {requests} requests per round:", file=sys.stderr)
        runs[chunks] = measure(
            {
                "uninstrumented": uninstrumented(chunks),
                "generation+wrap": wrapped(chunks, tel),
                "instrument_openai": drop_in(chunks, tel),
            },
            requests,
            args.rounds,
        )
    tel.shutdown()
    small, large = (runs[size] for size in SIZES)
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "openai": openai.__version__,
        "requests_per_round_200_chunks": args.requests,
        "rounds": args.rounds,
        "uninstrumented_us_per_request_200_chunks": statistics.median(small["uninstrumented"])
        * 1e6,
    }
    for name in ("generation+wrap", "instrument_openai"):
        ratio, overhead_small = paired(small, name)
        _, overhead_large = paired(large, name)
        results[name] = {
            "ratio_200_chunks": ratio,
            "overhead_us_per_request_200_chunks": overhead_small * 1e6,
            "overhead_us_per_extra_chunk": (overhead_large - overhead_small)
            / (SIZES[1] - SIZES[0]) * 1e6,
        }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
