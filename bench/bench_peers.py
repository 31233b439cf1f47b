"""otel-ml against the other OpenAI instrumentations, side by side (issue 12,
goals 2 and 3).

Every instrumentation patches the ``openai`` client globally and pins its own
OpenTelemetry versions, so each gets a venv of its own, built here with pinned
versions and cached under ``~/.cache/otel-ml/venvs/<key>`` (the key hashes the
Python version and the requirements; otel-ml is installed in editable mode from
this checkout, so the cache survives changes to the SDK). Each variant runs in
a process of its own (bench/peers/<variant>.py), once per round, in an order
rotated round by round. A process streams the same canned SSE bodies (built by
bench/bench_openai.py: OpenAI's wire format, a usage chunk, 20/200/2000 content
chunks) through the real client over a mock transport, and reports CPU time per
request (all threads, so the export thread too), its resident memory after
warm-up, and what it recorded. A variant that recorded no spans, not the
provider's usage, or not its metrics fails the run.

Reported per variant: the median over rounds of the paired ratio and
difference against the uninstrumented client of the same round (and the same
``openai`` version), the cost of one extra chunk from the two largest sizes,
and resident memory over the uninstrumented process.

    python bench/bench_peers.py [--rounds 3] [--requests 50] [--variants a,b]
        [--sizes 20,200,2000] [--json docs/img/peers.json] [--plot docs/img/peers-per-chunk.png]

Exit status: 0 ok, 1 a variant failed (recorded nothing, or crashed), 3 a venv
could not be built (no package index).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / "peers"
CACHE = Path.home() / ".cache" / "otel-ml" / "venvs"
OPENAI = "openai==3.51.0"
# OpenLIT 1.45.0 requires openai>=1.92,<3: the newest 2.x it accepts.
OPENAI_2 = "openai==2.54.0"
SDK = "opentelemetry-sdk==1.45.2"

# One venv per instrumentation; pip resolves the rest, and the resolved set is
# recorded in the results (pip freeze).
ENVS: dict[str, tuple[str, ...]] = {
    "otel-ml": (OPENAI, SDK, f"-e{REPO}[openai,otlp,tokens]"),
    # 2.4b0 imports httpx (which openai 3.x no longer brings) and
    # opentelemetry.util.genai.instruments (gone after util-genai 1.1b0, while it
    # accepts any util-genai >= 0.4b0): both pinned so that it loads at all.
    "openai-v2": (
        OPENAI,
        SDK,
        "opentelemetry-instrumentation-openai-v2==2.4b0",
        "opentelemetry-util-genai==1.1b0",
        "httpx==0.28.1",
    ),
    "genai-openai": (
        OPENAI,
        SDK,
        "opentelemetry-instrumentation-genai-openai==1.3b0",
        "opentelemetry-util-genai==1.3b0",
    ),
    "openllmetry": (OPENAI, SDK, "opentelemetry-instrumentation-openai==0.62.4"),
    "openinference": (OPENAI, SDK, "openinference-instrumentation-openai==0.1.66"),
    # openlit pins its own OTel SDK (1.45.1 resolves): no SDK pin here.
    "openlit": (OPENAI_2, "openlit==1.45.0"),
}


@dataclass(frozen=True)
class VariantSpec:
    name: str
    env: str
    script: str
    providers: str = "configure"
    baseline: str = "uninstrumented"


VARIANTS = (
    VariantSpec("uninstrumented", "otel-ml", "uninstrumented.py", baseline=""),
    VariantSpec("otel-ml wrap", "otel-ml", "otel_ml_wrap.py"),
    VariantSpec("otel-ml instrument_openai", "otel-ml", "otel_ml_instrument.py"),
    VariantSpec("otel-ml wrap, own SDK providers", "otel-ml", "otel_ml_wrap.py", "sdk"),
    VariantSpec(
        "otel-ml instrument_openai, own SDK providers", "otel-ml", "otel_ml_instrument.py", "sdk"
    ),
    VariantSpec(
        "otel-ml instrument_openai, configure() default (disk)",
        "otel-ml",
        "otel_ml_instrument.py",
        "default",
    ),
    VariantSpec("openai-v2 2.4b0", "openai-v2", "openai_v2.py"),
    VariantSpec("genai-openai 1.3b0", "genai-openai", "genai_openai.py"),
    VariantSpec("OpenLLMetry 0.62.4", "openllmetry", "openllmetry.py"),
    VariantSpec("OpenInference 0.1.66", "openinference", "openinference_variant.py"),
    VariantSpec("uninstrumented, openai 2.54.0", "openlit", "uninstrumented.py", baseline=""),
    VariantSpec(
        "OpenLIT 1.45.0", "openlit", "openlit_variant.py", baseline="uninstrumented, openai 2.54.0"
    ),
)
BY_NAME = {spec.name: spec for spec in VARIANTS}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- venvs ----------------------------------------------------------------------


class EnvError(RuntimeError):
    """A venv could not be built (no package index, a conflict)."""


def env_root(name: str) -> Path:
    spec = json.dumps([sys.version_info[:2], ENVS[name]])
    return CACHE / f"peers-{name}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def build_env(name: str) -> Path:
    """The venv's python, built (python -m venv, pip install) unless cached."""
    root = env_root(name)
    python = root / "bin" / "python"
    if (root / ".ready").exists():
        return python
    # This interpreter's pip, run against the new venv: the pip that ensurepip
    # bundles with older Pythons gives up on OpenLIT's dependency tree.
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    log(f"building venv {name} in {root} ({' '.join(ENVS[name])}) ...")
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", "--without-pip", str(root)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        subprocess.run(
            [*pip, "install", "--quiet", "--disable-pip-version-check", *ENVS[name]],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        freeze = subprocess.run(
            [*pip, "freeze", "--exclude-editable"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        raise EnvError(
            f"{name}: {' '.join(map(str, exc.cmd[:4]))} failed: {(exc.stderr or '')[-2000:]}"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvError(f"{name}: {exc!r}") from exc
    (root / "freeze.txt").write_text(freeze.stdout)
    (root / ".ready").write_text(json.dumps(ENVS[name]))
    log(f"  venv {name} ready in {time.monotonic() - started:.0f} s")
    return python


def build_envs(names: Sequence[str]) -> dict[str, Path]:
    """Two builds at a time: pip spends most of its time waiting on the index."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pythons = dict(zip(names, pool.map(build_env, names), strict=True))
    return pythons


def freeze(name: str) -> list[str]:
    path = env_root(name) / "freeze.txt"
    return path.read_text().split() if path.exists() else []


# --- the workload -----------------------------------------------------------------


def write_workload(folder: Path, sizes: Sequence[int]) -> Path:
    """The canned bodies of bench_openai.py, one file per size, for the runners."""
    sys.path.insert(0, str(HERE))
    import bench_openai

    bodies = {}
    for chunks in sizes:
        path = folder / f"stream-{chunks}.sse"
        path.write_bytes(bench_openai.sse_body(chunks))
        bodies[str(chunks)] = str(path)
    usage = json.loads(bench_openai.sse_body(1).split(b"data: ")[-2])["usage"]
    workload = folder / "workload.json"
    workload.write_text(
        json.dumps(
            {
                "model": bench_openai.MODEL,
                "messages": bench_openai.MESSAGES,
                "bodies": bodies,
                "prompt_tokens": usage["prompt_tokens"],
            }
        )
    )
    return workload


# --- running ------------------------------------------------------------------------


@dataclass
class Run:
    spec: VariantSpec
    results: list[dict[str, Any]]
    failures: list[str]


def run_variant(
    spec: VariantSpec,
    python: Path,
    workload: Path,
    args: argparse.Namespace,
) -> tuple[dict[str, Any] | None, str]:
    env = dict(os.environ)
    if spec.env == "otel-ml" and args.otel_ml_source:
        env["PYTHONPATH"] = str(Path(args.otel_ml_source).resolve())
    command = [
        str(python),
        str(PEERS / spec.script),
        "--workload",
        str(workload),
        "--requests",
        str(args.requests),
        "--warmup",
        str(args.warmup),
        "--batches",
        str(args.batches),
        "--providers",
        spec.providers,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=1800, check=False
    )
    lines = done.stdout.strip().splitlines()
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    if done.returncode != 0 or result is None:
        return result, f"{spec.name}: exit {done.returncode}: {done.stderr.strip()[-1500:]}"
    return result, ""


def run_rounds(
    specs: Sequence[VariantSpec], pythons: dict[str, Path], workload: Path, args: argparse.Namespace
) -> dict[str, Run]:
    runs = {spec.name: Run(spec, [], []) for spec in specs}
    for number in range(args.rounds):
        shift = number % len(specs)
        order = [*specs[shift:], *specs[:shift]]
        for index, spec in enumerate(order, 1):
            started = time.monotonic()
            result, failure = run_variant(spec, pythons[spec.env], workload, args)
            run = runs[spec.name]
            if failure:
                run.failures.append(failure)
                log(f"round {number + 1}/{args.rounds} [{index}/{len(order)}] FAILED {failure}")
                continue
            assert result is not None
            run.results.append(result)
            costs = ", ".join(
                f"{size}: {value['cpu_us_per_request']:.0f} µs"
                for size, value in result["sizes"].items()
            )
            log(
                f"round {number + 1}/{args.rounds} [{index}/{len(order)}] {spec.name}: {costs}, "
                f"RSS {result['rss_kb_after_warmup'] / 1024:.1f} MB "
                f"({time.monotonic() - started:.0f} s)"
            )
    return runs


# --- summarizing ---------------------------------------------------------------------


def paired(run: Run, base: Run, value: Any) -> list[float]:
    """``value(variant_result, baseline_result)`` for each round both completed."""
    return [value(mine, theirs) for mine, theirs in zip(run.results, base.results, strict=False)]


def summarize(runs: dict[str, Run], sizes: Sequence[int]) -> dict[str, Any]:
    reference = 200 if 200 in sizes else sizes[-1]
    small, large = sizes[-2], sizes[-1]

    def cpu(result: dict[str, Any], size: int) -> float:
        return float(result["sizes"][str(size)]["cpu_us_per_request"])

    summary: dict[str, Any] = {}
    for name, run in runs.items():
        entry: dict[str, Any] = {
            "env": run.spec.env,
            "script": run.spec.script,
            "providers": run.spec.providers,
            "baseline": run.spec.baseline,
            "rounds_completed": len(run.results),
            "failures": run.failures,
            "ok": not run.failures,
        }
        if run.results:
            last = run.results[-1]
            entry.update(
                {
                    "versions": last["versions"],
                    "us_per_request": {
                        str(s): statistics.median(cpu(r, s) for r in run.results) for s in sizes
                    },
                    "rss_mb": statistics.median(r["rss_kb_after_warmup"] for r in run.results)
                    / 1024,
                    "tiktoken_loaded": any(r["tiktoken_loaded"] for r in run.results),
                    "metrics_recorded": last["metrics"],
                    "spans_per_request": {
                        s: v["spans"] / v["requests"] for s, v in last["sizes"].items()
                    },
                }
            )
        base = runs.get(run.spec.baseline)
        if run.results and base is not None and base.results:
            rounds = {
                str(s): paired(run, base, lambda m, t, s=s: cpu(m, s) - cpu(t, s)) for s in sizes
            }
            overhead = {size: statistics.median(values) for size, values in rounds.items()}
            entry.update(
                {
                    "reference_chunks": reference,
                    "ratio": {
                        str(s): statistics.median(
                            paired(run, base, lambda m, t, s=s: cpu(m, s) / cpu(t, s))
                        )
                        for s in sizes
                    },
                    "overhead_us_per_request": overhead,
                    "overhead_us_per_request_by_round": rounds,
                    "overhead_us_per_extra_chunk": statistics.median(
                        paired(
                            run,
                            base,
                            lambda m, t: (
                                ((cpu(m, large) - cpu(t, large)) - (cpu(m, small) - cpu(t, small)))
                                / (large - small)
                            ),
                        )
                    ),
                    "rss_over_baseline_mb": statistics.median(
                        paired(
                            run,
                            base,
                            lambda m, t: (
                                (m["rss_kb_after_warmup"] - t["rss_kb_after_warmup"]) / 1024
                            ),
                        )
                    ),
                }
            )
        summary[name] = entry
    return summary


def table(summary: dict[str, Any], sizes: Sequence[int]) -> str:
    reference = 200 if 200 in sizes else sizes[-1]
    small, large = sizes[-2], sizes[-1]
    head = (
        f"| variant | µs/request at {reference} | ratio | overhead µs | "
        f"µs per extra chunk ({small}→{large}) | RSS MB | RSS over baseline MB | status |"
    )
    rows = [head, "|" + "---|" * 8]
    for name, entry in summary.items():
        if "us_per_request" not in entry:
            rows.append(f"| {name} | | | | | | | FAILED |")
            continue
        has_base = "ratio" in entry
        rows.append(
            "| "
            + " | ".join(
                [
                    name,
                    f"{entry['us_per_request'][str(reference)]:.0f}",
                    f"{entry['ratio'][str(reference)]:.3f}" if has_base else "1",
                    f"{entry['overhead_us_per_request'][str(reference)]:+.0f}" if has_base else "",
                    f"{entry['overhead_us_per_extra_chunk']:.2f}" if has_base else "",
                    f"{entry['rss_mb']:.1f}",
                    f"{entry['rss_over_baseline_mb']:+.1f}" if has_base else "",
                    "ok" if entry["ok"] else "FAILED",
                ]
            )
            + " |"
        )
    return "\n".join(rows)


def plot(summary: dict[str, Any], sizes: Sequence[int], path: Path) -> None:
    """Overhead per request (CPU µs over the uninstrumented client of the same
    round) against chunks per stream, one line per variant: the median of the
    rounds, with bars from the lowest to the highest round. The y axis is
    symmetric-log, so a noisy negative round stays visible instead of vanishing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 6.5))
    for name, entry in summary.items():
        if "overhead_us_per_request" not in entry:
            continue
        median = [entry["overhead_us_per_request"][str(s)] for s in sizes]
        rounds = [entry["overhead_us_per_request_by_round"][str(s)] for s in sizes]
        low = [m - min(r) for m, r in zip(median, rounds, strict=True)]
        high = [max(r) - m for m, r in zip(median, rounds, strict=True)]
        style = "-" if name.startswith("otel-ml") else "--"
        axes.errorbar(sizes, median, yerr=[low, high], fmt=style, marker="o", capsize=3, label=name)
    axes.set_xscale("log")
    axes.set_yscale("symlog", linthresh=1000)
    axes.set_xticks(list(sizes), [str(s) for s in sizes])
    axes.set_xlabel("content chunks per stream")
    axes.set_ylabel("CPU µs per request over the uninstrumented client")
    axes.set_title(
        "Cost of each OpenAI instrumentation against stream length\n"
        "(median of the rounds' paired differences; bars: lowest to highest round)"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def tiktoken_cost(python: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    if args.otel_ml_source:
        env["PYTHONPATH"] = str(Path(args.otel_ml_source).resolve())
    done = subprocess.run(
        [str(python), str(PEERS / "tiktoken_cost.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-1500:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the command -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }


def otel_ml_commit(args: argparse.Namespace) -> str:
    """The otel-ml code the otel-ml variants ran."""
    if args.otel_ml_rev:
        return git("rev-parse", args.otel_ml_rev) or args.otel_ml_rev
    if args.otel_ml_source:
        return "unknown (a source tree given with --otel-ml-source)"
    dirty = git("status", "--porcelain", "otel_ml")
    return (git("rev-parse", "HEAD") or "unknown") + (
        " + uncommitted otel_ml changes" if dirty else ""
    )


def git(*arguments: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *arguments], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def export_otel_ml(rev: str, folder: Path) -> str:
    """``otel_ml/`` at ``rev`` in ``folder``, for PYTHONPATH: a commit measured
    while the checkout holds other work."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "otel_ml"], capture_output=True, check=True
    )
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return str(folder)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--requests",
        type=int,
        default=50,
        help="requests per process at 200 chunks (scaled for other sizes)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="requests per size before timing")
    parser.add_argument(
        "--batches", type=int, default=3, help="timed batches per size in each process (median)"
    )
    parser.add_argument("--sizes", default="20,200,2000", help="content chunks per stream")
    parser.add_argument(
        "--variants", default="", help="comma-separated names (default: all); baselines are added"
    )
    parser.add_argument("--json", default=str(REPO / "docs" / "img" / "peers.json"))
    parser.add_argument(
        "--plot",
        default=str(REPO / "docs" / "img" / "peers-per-chunk.png"),
        help="PNG path, or '' for none",
    )
    parser.add_argument(
        "--otel-ml-source",
        default="",
        help="measure otel-ml from this source tree (PYTHONPATH) instead of "
        "the editable install of this checkout",
    )
    parser.add_argument(
        "--otel-ml-rev",
        default="",
        help="measure otel-ml at this git revision of the checkout (exported to a temporary "
        "folder) instead of the working tree",
    )
    parser.add_argument(
        "--no-tiktoken", action="store_true", help="skip the local token counting measurement"
    )
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    return parser.parse_args(argv)


def selected(names: str) -> list[VariantSpec]:
    if not names:
        return list(VARIANTS)
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - BY_NAME.keys()
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; --list shows them")
    wanted |= {BY_NAME[name].baseline for name in wanted if BY_NAME[name].baseline}
    return [spec for spec in VARIANTS if spec.name in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(f"{spec.name}  [{spec.env}]" for spec in VARIANTS))
        return 0
    specs = selected(args.variants)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if len(sizes) < 2:
        raise SystemExit("--sizes needs two sizes at least (the per-chunk cost)")
    envs = sorted({spec.env for spec in specs})
    try:
        pythons = build_envs(envs)
    except EnvError as exc:
        log(f"cannot build a venv: {exc}")
        return 3
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="otel-ml-peers-") as folder:
        if args.otel_ml_rev:
            args.otel_ml_source = export_otel_ml(args.otel_ml_rev, Path(folder) / "src")
        workload = write_workload(Path(folder), sizes)
        log(
            f"{len(specs)} variants × {args.rounds} rounds, sizes {sizes}, "
            f"{args.requests} requests at 200 chunks"
        )
        runs = run_rounds(specs, pythons, workload, args)
        tiktoken = (
            tiktoken_cost(pythons["otel-ml"], args)
            if "otel-ml" in pythons and not args.no_tiktoken
            else None
        )
    summary = summarize(runs, sizes)
    results: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": {**machine(), "load_average_before": list(load_before)},
        "otel_ml_commit": otel_ml_commit(args),
        "otel_ml_source": (
            f"git archive {args.otel_ml_rev}"
            if args.otel_ml_rev
            else args.otel_ml_source or f"{REPO} (editable)"
        ),
        "rounds": args.rounds,
        "requests_at_200_chunks": args.requests,
        "sizes": sizes,
        "envs": {name: {"requirements": list(ENVS[name]), "freeze": freeze(name)} for name in envs},
        "variants": summary,
    }
    if tiktoken is not None:
        results["local_token_counting"] = tiktoken
    print(table(summary, sizes))
    if "local_token_counting" in results:
        print("local token counting, first use: " + json.dumps(results["local_token_counting"]))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.plot:
        plot(summary, sizes, Path(args.plot))
        log(f"wrote {args.plot}")
    failed = [name for name, entry in summary.items() if not entry["ok"]]
    if failed:
        log("FAILED (crashed, or recorded nothing they should have): " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
