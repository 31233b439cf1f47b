"""Import cost of ``import otel_ml`` against the OpenTelemetry API alone.

    python bench/bench_import.py [--runs 15] [--python PATH]

Each run is a fresh interpreter with ``-X importtime``; the figure is the
cumulative microseconds of the top-level import. Warm: bytecode caches exist
(the usual case after the first start). Cold: every run gets an empty
``PYTHONPYCACHEPREFIX``, so each module is compiled from source, as on the
first start after an install. The two imports alternate run by run, so a
drift in machine speed hits both; the ratio is otel_ml / API, per pair.
Also prints how many modules each import loads, and which heavy ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

TARGETS = {
    "otel_ml": "import otel_ml",
    "opentelemetry API": "import opentelemetry.trace, opentelemetry.metrics, opentelemetry.baggage",
}
HEAVY = ("opentelemetry.sdk", "opentelemetry.exporter", "google.protobuf", "grpc", "tiktoken",
         "yaml", "numpy", "scipy", "requests")
_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def import_us(python: str, statement: str, cold: bool) -> int:
    """Cumulative µs of the top-level modules ``statement`` imports."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as prefix:
        if cold:
            env["PYTHONPYCACHEPREFIX"] = prefix
        result = subprocess.run([python, "-X", "importtime", "-c", statement], env=env,
                                cwd=prefix, capture_output=True, text=True, check=True)
    total = 0
    for line in result.stderr.splitlines():
        match = _LINE.match(line)
        if match and not match.group(2).startswith(" "):  # top level: no indentation
            total += int(match.group(1))
    return total


def loaded_modules(python: str, statement: str) -> tuple[int, list[str]]:
    code = (f"import sys; before = set(sys.modules); {statement}; "
            "new = sorted(set(sys.modules) - before); "
            f"heavy = sorted({{m.split('.')[0] if not m.startswith('opentelemetry') else "
            f"'.'.join(m.split('.')[:2]) for m in new if m.startswith({HEAVY!r})}}); "
            "import json; print(json.dumps([len(new), heavy]))")
    # Not from the repo's folder: -c puts the working directory on sys.path.
    result = subprocess.run([python, "-c", code], cwd=tempfile.gettempdir(),
                            capture_output=True, text=True, check=True)
    count, heavy = json.loads(result.stdout)
    return count, heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    print(f"python: {args.python}; {args.runs} runs each, alternating\n")
    for name, statement in TARGETS.items():
        count, heavy = loaded_modules(args.python, statement)
        print(f"{name:18} {count:4d} modules; heavy: {', '.join(heavy) or 'none'}")
    print()
    print(f"{'':6} {'otel_ml ms':>12} {'API ms':>8} {'ratio':>7}   (medians; ratio per pair)")
    for cold in (False, True):
        ours, api, ratios = [], [], []
        for _ in range(args.runs):
            a = import_us(args.python, TARGETS["otel_ml"], cold)
            b = import_us(args.python, TARGETS["opentelemetry API"], cold)
            ours.append(a)
            api.append(b)
            ratios.append(a / b)
        label = "cold" if cold else "warm"
        print(f"{label:6} {statistics.median(ours) / 1000:12.1f} "
              f"{statistics.median(api) / 1000:8.1f} {statistics.median(ratios):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
