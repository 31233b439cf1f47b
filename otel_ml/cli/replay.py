"""``otel-ml replay DIR``: send a folder of OTLP JSON lines to a collector.

The embedded default writes exactly what would have gone over OTLP, one
export request per line, so a run recorded offline can be loaded into a real
stack later. Each line is POSTed unchanged to the collector's OTLP/HTTP
receiver (``/v1/traces``, ``/v1/metrics``, ``/v1/logs``), which accepts JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
_SIGNALS = ("traces", "metrics", "logs")
_TIMEOUT_S = 10.0


class ReplayError(RuntimeError):
    """The collector refused or could not be reached."""


@dataclass
class ReplayResult:
    files: int = 0
    requests: int = 0
    skipped_lines: int = 0
    unreadable_lines: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder written by the embedded default")
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT,
        help="the collector's OTLP/HTTP endpoint (default: $OTEL_EXPORTER_OTLP_ENDPOINT "
        f"or {DEFAULT_ENDPOINT})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = replay(args.directory, args.endpoint, progress=sys.stderr)
    except (ReplayError, OSError) as exc:
        print(f"otel-ml replay: {exc}", file=sys.stderr)
        return 1
    print(f"replayed {result.requests} export requests from {result.files} files "
          f"to {args.endpoint}")
    if result.unreadable_lines:
        print(f"skipped {result.unreadable_lines} unreadable (truncated) lines", file=sys.stderr)
    return 0


def replay(directory: Path, endpoint: str, progress: TextIO | None = None) -> ReplayResult:
    """POST every line of ``directory``'s traces-*.jsonl, metrics-*.jsonl and logs-*.jsonl
    (evaluation events) files."""
    base = _http_base(endpoint)
    files = [(signal, path) for signal in _SIGNALS
             for path in sorted(directory.glob(f"{signal}-*.jsonl"))]
    if not files:
        raise ReplayError(
            f"no traces-*.jsonl, metrics-*.jsonl or logs-*.jsonl files in {directory}"
        )
    result = ReplayResult()
    for signal, path in files:
        result.files += 1
        if progress is not None:
            print(f"  {path.name}", file=progress)
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                body = line.strip()
                if not body:
                    result.skipped_lines += 1
                    continue
                if not _is_json(body):  # a process killed mid-write leaves half a line
                    result.unreadable_lines += 1
                    continue
                _post(f"{base}/v1/{signal}", body.encode("utf-8"), f"{path.name}:{number}")
                result.requests += 1
    return result


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _http_base(endpoint: str) -> str:
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    parts = urlsplit(url)
    if parts.port == 4317:
        raise ReplayError(
            f"{endpoint} looks like the collector's gRPC port; replay speaks OTLP/HTTP "
            "with JSON: use its HTTP port (4318 by default)"
        )
    return (url.rstrip("/").removesuffix("/v1/traces").removesuffix("/v1/metrics")
            .removesuffix("/v1/logs"))


def _post(url: str, body: bytes, where: str) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        raise ReplayError(f"{url} refused {where}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ReplayError(f"cannot reach {url}: {exc}") from exc
