"""Instructions per request, counted by valgrind: otel-ml against openai-v2 (issue 12, goal 2).

CPU time per request could not separate otel-ml from openai-v2 on a shared
2-core machine (bench_peers.py: rounds spread ±7 ms around overheads under
1 ms). The number of instructions a request executes does not depend on the
load: this counts them with callgrind, in the same venvs and processes as
bench_peers.py (bench/peers/<variant>.py, the same canned 200-chunk stream
through the real ``openai`` client, every thread counted, the export thread
and the per-batch span flush included).

Each variant runs twice under ``valgrind --tool=callgrind`` with a fixed hash
seed, with ``--small`` and ``--large`` timed requests after the same warm-up;
start-up and imports cancel out in the difference, so

    instructions per request = (I(large) - I(small)) / (large - small)

and the overhead is that minus the same figure of the uninstrumented client in
the variant's own venv (its own package versions). Two runs of one process
differed by 1,581 instructions out of 3.4 billion: the counts are exact to
well under 0.1 %. valgrind slows Python about 50 times: a run takes minutes.

    python bench/bench_instructions.py [--variants "otel-ml wrap,openai-v2 2.4b0"]
        [--small 5] [--large 15] [--chunks 200] [--json build/bench/instructions.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_peers
from bench_peers import BY_NAME, PEERS, REPO, VariantSpec, build_envs, log, write_workload

sys.path.insert(0, str(PEERS))
from harness import requests_for  # bench/peers is not a package

DEFAULT_VARIANTS = ("otel-ml wrap", "otel-ml instrument_openai", "openai-v2 2.4b0")
REFERENCE = "openai-v2 2.4b0"  # the cheapest official instrumentation (issue 12, goal 2)


@dataclass(frozen=True)
class Count:
    variant: str
    env: str
    per_request: float


def instructions(python: Path, spec: VariantSpec, workload: Path, requests: int, out: Path) -> int:
    """Instructions of one whole process of ``spec`` with ``requests`` timed requests."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(REPO)}
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        str(python), str(PEERS / spec.script), "--workload", str(workload),
        "--requests", str(requests), "--warmup", "1", "--batches", "1",
        "--providers", spec.providers,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{spec.name}: exit {done.returncode}: {done.stderr[-1500:]}")
    for line in done.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    raise SystemExit(f"{spec.name}: callgrind printed no total")


def per_request(
    python: Path, spec: VariantSpec, workload: Path, runs: tuple[int, int], chunks: int,
    folder: Path,
) -> Count:
    counts = [instructions(python, spec, workload, n, folder / f"{spec.script}-{n}.out")
              for n in runs]
    # The runner's --requests counts 200-chunk requests and scales them to the stream size.
    small, large = (requests_for(chunks, n) for n in runs)
    value = (counts[1] - counts[0]) / (large - small)
    log(f"{spec.name}: {value / 1e6:.2f} M instructions per request ({counts})")
    return Count(spec.name, spec.env, value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="bench_peers.py variant names, comma-separated")
    parser.add_argument("--small", type=int, default=5,
                        help="timed requests (counted at 200 chunks), first run")
    parser.add_argument("--large", type=int, default=15,
                        help="timed requests (counted at 200 chunks), second run")
    parser.add_argument("--chunks", type=int, default=200, help="content chunks per stream")
    parser.add_argument("--json", type=Path, default=REPO / "build" / "bench" / "instructions.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if requests_for(args.chunks, args.large) <= requests_for(args.chunks, args.small):
        raise SystemExit("--large must give more requests than --small at this --chunks")
    specs = [BY_NAME[name.strip()] for name in args.variants.split(",") if name.strip()]
    pythons = build_envs(sorted({spec.env for spec in specs}))
    # Each venv's own uninstrumented client is the baseline of its variants.
    baseline = VariantSpec("uninstrumented", "", "uninstrumented.py", baseline="")
    with tempfile.TemporaryDirectory(prefix="otel-ml-instructions-") as tmp:
        folder = Path(tmp)
        workload = write_workload(folder, [args.chunks])
        runs = (args.small, args.large)
        bare = {env: per_request(python, baseline, workload, runs, args.chunks, folder)
                for env, python in pythons.items()}
        counts = [per_request(pythons[spec.env], spec, workload, runs, args.chunks, folder)
                  for spec in specs]
    rows: dict[str, dict[str, Any]] = {}
    for count in counts:
        base = bare[count.env].per_request
        rows[count.variant] = {
            "instructions_per_request": count.per_request,
            "uninstrumented_per_request": base,
            "overhead_instructions": count.per_request - base,
            "overhead_ratio": count.per_request / base,
        }
    reference = rows.get(REFERENCE, {}).get("overhead_instructions")
    print("| variant | M instructions / request | uninstrumented | overhead | "
          f"overhead / {REFERENCE}'s |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        versus = f"{row['overhead_instructions'] / reference:.2f}" if reference else ""
        print(f"| {name} | {row['instructions_per_request'] / 1e6:.2f} | "
              f"{row['uninstrumented_per_request'] / 1e6:.2f} | "
              f"+{row['overhead_instructions'] / 1e6:.2f} M "
              f"({(row['overhead_ratio'] - 1) * 100:.2f} %) | {versus} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": " ".join(["bench_instructions.py", *(argv or sys.argv[1:])]),
        "machine": bench_peers.machine(), "small": args.small, "large": args.large,
        "chunks": args.chunks,
        "variants": rows,
    }, indent=2) + "\n")
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
