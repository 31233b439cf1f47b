"""The demo's vector database: Chroma (server, over HTTP) against the numpy scan it replaced.

    .venv/bin/python bench/bench_retrieval.py [--starts 3] [--top-k 4] [--questions N] [--json]

Start-up, each measured ``--starts`` times (median reported):

- numpy: build the in-memory index from the corpus (what rag-vectordb did at start);
- Chroma cold: spawn ``chroma run`` on an empty data folder, wait for its heartbeat,
  connect, create the collection and upsert the corpus (what the demo does now on a
  fresh machine);
- Chroma warm: the same on the folder a cold start left, where the load finds the
  corpus already there and writes nothing (a restart).

Retrieval: the same questions (every corpus question, then every out-of-corpus drift
question) through both, paired and interleaved in one run: per question, the numpy
``search_vector`` and one ``Collection.query`` through ``chromadb.HttpClient`` on the
same embedding (embedding cost excluded: it is the same code in both). No telemetry
is attached: this compares the databases, not otel-ml. Also reported: how often the
two return the same top-k ids with scores within 1e-5.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from demo_rag import corpus, driver
from demo_rag.chroma_store import HEARTBEAT_PATH, ChromaSettings, ChromaStore
from demo_rag.embeddings import VectorIndex
from otel_ml.cli.stack.components import chroma_component, write_chroma_config
from otel_ml.cli.stack.discovery import require_chroma
from otel_ml.cli.stack.ports import free_ports


class ChromaServer:
    """``chroma run`` on a data folder, as the demo launcher starts it."""

    def __init__(self, data: Path, scratch: Path) -> None:
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        config = write_chroma_config(scratch / f"chroma-{self.port}.yaml", data, self.port)
        component = chroma_component(require_chroma(), config, self.port)
        self._log = (scratch / f"chroma-{self.port}.log").open("wb")
        self._process = subprocess.Popen(
            component.argv, env=component.environment(os.environ), stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )

    def wait(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + HEARTBEAT_PATH, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"chroma not up after {timeout}s")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()


def time_start(data: Path, scratch: Path) -> tuple[float, float, ChromaServer, ChromaStore]:
    """(seconds to heartbeat, seconds to corpus loaded), and the running server."""
    started = time.perf_counter()
    server = ChromaServer(data, scratch)
    server.wait()
    up = time.perf_counter() - started
    store = ChromaStore.open(ChromaSettings(url=server.url, timeout_s=30))
    return up, time.perf_counter() - started, server, store


def bench_startup(starts: int) -> dict[str, Any]:
    documents = corpus.load()
    numpy_s = []
    for _ in range(starts):
        t = time.perf_counter()
        VectorIndex(documents)
        numpy_s.append(time.perf_counter() - t)
    cold_up, cold, warm_up, warm, written = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-chroma-") as tmp:
        for i in range(starts):
            data = Path(tmp) / f"data-{i}"
            up, total, server, store = time_start(data, Path(tmp))
            written.append(store.written)
            server.stop()
            cold_up.append(up)
            cold.append(total)
            up, total, server, store = time_start(data, Path(tmp))
            written.append(store.written)
            server.stop()
            warm_up.append(up)
            warm.append(total)
    return {
        "numpy_index_s": statistics.median(numpy_s),
        "chroma_cold_heartbeat_s": statistics.median(cold_up),
        "chroma_cold_loaded_s": statistics.median(cold),
        "chroma_warm_heartbeat_s": statistics.median(warm_up),
        "chroma_warm_loaded_s": statistics.median(warm),
        "documents_written_cold_then_warm": written[:2],
    }


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_retrieval(top_k: int, limit: int | None = None) -> dict[str, Any]:
    questions = [q.text for q in corpus.questions()] + list(driver.DRIFT_QUESTIONS)
    questions = questions[:limit] if limit else questions
    documents = corpus.load()
    index = VectorIndex(documents)
    with tempfile.TemporaryDirectory(prefix="bench-chroma-") as tmp:
        _, _, server, store = time_start(Path(tmp) / "data", Path(tmp))
        try:
            vectors = [index.embed(q) for q in questions]
            for vector in vectors[:20]:  # warm both paths (connection, caches)
                index.search_vector(vector, top_k)
                store.search_vector(vector, top_k)
            numpy_ms, chroma_ms, ratios, same = [], [], [], 0
            for vector in vectors:
                t = time.perf_counter()
                expected = index.search_vector(vector, top_k)
                n = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
                got = store.search_vector(vector, top_k)
                c = (time.perf_counter() - t) * 1e3
                numpy_ms.append(n)
                chroma_ms.append(c)
                ratios.append(c / n)
                same += [h.id for h in got] == [h.id for h in expected] and all(
                    abs(a.score - b.score) <= 1e-5 for a, b in zip(got, expected, strict=True))
        finally:
            server.stop()
    return {
        "queries": len(questions),
        "top_k": top_k,
        "numpy_p50_ms": statistics.median(numpy_ms),
        "numpy_p95_ms": _pct(numpy_ms, 0.95),
        "chroma_p50_ms": statistics.median(chroma_ms),
        "chroma_p95_ms": _pct(chroma_ms, 0.95),
        "ratio_of_medians": statistics.median(chroma_ms) / statistics.median(numpy_ms),
        "median_paired_ratio": statistics.median(ratios),
        "same_results": same,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--questions", type=int, default=None,
                        help="only the first N questions (the CI smoke run)")
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "chromadb": version("chromadb"),
        "numpy": version("numpy"),
        "startup": bench_startup(args.starts),
        "retrieval": bench_retrieval(args.top_k, args.questions),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    s, r = result["startup"], result["retrieval"]
    print(f"chromadb {result['chromadb']}, numpy {result['numpy']}, "
          f"Python {result['python']}, {result['machine']}")
    print(f"start-up (median of {args.starts}):")
    print(f"  numpy index built              {s['numpy_index_s'] * 1e3:8.1f} ms")
    print(f"  Chroma cold: heartbeat         {s['chroma_cold_heartbeat_s'] * 1e3:8.1f} ms")
    print(f"  Chroma cold: corpus loaded     {s['chroma_cold_loaded_s'] * 1e3:8.1f} ms")
    print(f"  Chroma warm: heartbeat         {s['chroma_warm_heartbeat_s'] * 1e3:8.1f} ms")
    print(f"  Chroma warm: ready (no writes) {s['chroma_warm_loaded_s'] * 1e3:8.1f} ms")
    print(f"  documents written cold, warm:  {s['documents_written_cold_then_warm']}")
    print(f"retrieval, {r['queries']} questions, top_k={r['top_k']}, paired:")
    print(f"  numpy  p50 {r['numpy_p50_ms']:.3f} ms  p95 {r['numpy_p95_ms']:.3f} ms")
    print(f"  Chroma p50 {r['chroma_p50_ms']:.3f} ms  p95 {r['chroma_p95_ms']:.3f} ms")
    print(f"  ratio of medians {r['ratio_of_medians']:.1f}x, median paired ratio "
          f"{r['median_paired_ratio']:.1f}x; same results {r['same_results']}/{r['queries']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
