"""What otel-ml's local token counting costs the first time it runs: tiktoken
imported and the bundled o200k_base BPE ranks decompressed and loaded. It only
happens when a provider reports no usage; the benchmark's streams report it, so
no variant above pays this. Measured in a fresh process of the otel-ml venv."""

from __future__ import annotations

import gc
import json
import sys
import time

import harness


def main() -> None:
    import otel_ml  # noqa: F401  (its import is not what is measured)
    from otel_ml import tokens

    gc.collect()
    before = harness.status_kb("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    first = tokens.count_tokens("How does the collector batch spans?", "gpt-4o-mini")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    gc.collect()
    after = harness.status_kb("VmRSS")
    again = time.perf_counter()
    tokens.count_tokens("How does the collector batch spans? " * 10, "gpt-4o-mini")
    again = time.perf_counter() - again
    print(
        json.dumps(
            {
                "tokens": first,
                "first_count_cpu_ms": cpu * 1e3,
                "first_count_wall_ms": wall * 1e3,
                "rss_added_mb": (after - before) / 1024,
                "next_count_us": again * 1e6,
                "tiktoken_loaded": "tiktoken" in sys.modules,
                "versions": harness.versions(["tiktoken", "otel-ml"]),
            }
        )
    )


if __name__ == "__main__":
    main()
