"""Thin clients for the backends' own HTTP APIs, and polling with deadlines.

Everything the e2e tests assert goes through these: Jaeger's query API,
Prometheus' query and exemplar APIs, Alertmanager's alert API, and a webhook
receiver standing in for a pager. Data reaches the backends after batch
delays, metric export intervals and scrapes, so every read that waits for
data polls until a condition holds or a deadline passes, and the failure
message carries the last thing seen.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

# Deadlines, from the pipeline's own delays: SDK batch 0.2 s and metric export
# 1 s, collector batch 1 s, span_metrics flush 5 s, Prometheus scrape and rule
# evaluation 5 s, Alertmanager group_wait 2 s. Generous multiples of those:
# on a loaded 2-core machine everything is slower, and a poll returns as soon
# as the data is there.
TRACE_TIMEOUT_S = 30.0
METRIC_TIMEOUT_S = 45.0
ALERT_TIMEOUT_S = 90.0


class Timeout(AssertionError):
    """A polled condition did not hold before its deadline."""


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
) -> T:
    """Call ``fetch`` until ``done(result)``; fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {result!r}")
        time.sleep(interval)


# --- Jaeger -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """One span of a Jaeger trace, with its tags as a dict."""

    span_id: str
    parent_id: str | None
    service: str
    operation: str
    duration_us: int
    tags: Mapping[str, Any]
    raw: Mapping[str, Any]

    @property
    def kind(self) -> str | None:
        kind = self.tags.get("span.kind")
        return str(kind) if kind is not None else None


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]
    process_tags: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)

    @property
    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    def span(self, span_id: str) -> Span | None:
        return next((s for s in self.spans if s.span_id == span_id), None)

    def parent(self, span: Span) -> Span | None:
        return self.span(span.parent_id) if span.parent_id else None

    def roots(self) -> list[Span]:
        return [s for s in self.spans if s.parent_id is None]

    def dangling(self) -> list[Span]:
        """Spans whose parent is not (yet) in the trace."""
        return [s for s in self.spans if s.parent_id and self.span(s.parent_id) is None]

    def where(self, **tags: Any) -> list[Span]:
        return [s for s in self.spans if all(s.tags.get(k) == v for k, v in tags.items())]

    def generations(self) -> list[Span]:
        """The SDK's client-side generation spans (the ones carrying a cost)."""
        return [
            s for s in self.spans
            if s.service == "rag-api" and "gen_ai.usage.cost.amount" in s.tags
        ]


def _parse_trace(data: Mapping[str, Any]) -> Trace:
    processes = data["processes"]
    spans = []
    for raw in data["spans"]:
        parents = [r["spanID"] for r in raw.get("references", []) if r["refType"] == "CHILD_OF"]
        spans.append(
            Span(
                span_id=raw["spanID"],
                parent_id=parents[0] if parents else None,
                service=processes[raw["processID"]]["serviceName"],
                operation=raw["operationName"],
                duration_us=int(raw["duration"]),
                tags={t["key"]: t["value"] for t in raw.get("tags", [])},
                raw=raw,
            )
        )
    process_tags = {pid: p.get("tags", []) for pid, p in processes.items()}
    return Trace(data["traceID"], tuple(spans), process_tags)


class Jaeger:
    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url
        self._client = client

    def trace(self, trace_id: str) -> Trace | None:
        """The trace as stored now, or None while Jaeger does not know it (404)."""
        response = self._client.get(f"{self.base_url}/api/traces/{trace_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json()["data"]
        return _parse_trace(data[0]) if data else None

    def raw_trace(self, trace_id: str) -> dict[str, Any]:
        response = self._client.get(f"{self.base_url}/api/traces/{trace_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_trace(
        self, trace_id: str, services: Sequence[str], timeout: float = TRACE_TIMEOUT_S
    ) -> Trace:
        """Poll until the trace has spans of every service and no span lacks its parent."""

        def complete(trace: Trace | None) -> bool:
            return (
                trace is not None
                and set(services) <= trace.services
                and len(trace.roots()) == 1
                and not trace.dangling()
            )

        trace = poll(lambda: self.trace(trace_id), complete, timeout=timeout,
                     what=f"trace {trace_id} with spans of {sorted(services)}")
        assert trace is not None
        return trace


# --- Prometheus -------------------------------------------------------------------------------


Series = list[dict[str, Any]]


class Prometheus:
    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url
        self._client = client

    def query(self, expr: str) -> Series:
        """An instant query; raises on a PromQL error (a broken panel must not look empty)."""
        response = self._client.get(f"{self.base_url}/api/v1/query", params={"query": expr})
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"PromQL error for {expr!r}: {body.get('error')}")
        result: Series = body["data"]["result"]
        return result

    def values(self, expr: str, by: Sequence[str]) -> dict[tuple[str, ...], float]:
        """The query's samples keyed by the given labels' values."""
        return {
            tuple(s["metric"].get(label, "") for label in by): float(s["value"][1])
            for s in self.query(expr)
        }

    def wait_values(
        self,
        expr: str,
        by: Sequence[str],
        done: Callable[[dict[tuple[str, ...], float]], bool],
        timeout: float = METRIC_TIMEOUT_S,
    ) -> dict[tuple[str, ...], float]:
        return poll(lambda: self.values(expr, by), done, timeout=timeout, what=expr)

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Prometheus holds now (pending or firing), from /api/v1/alerts."""
        response = self._client.get(f"{self.base_url}/api/v1/alerts")
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return alerts

    def exemplars(self, expr: str, lookback_s: float = 600) -> list[dict[str, Any]]:
        now = time.time()
        # end in the future: exemplars stamped after the request started still count.
        response = self._client.get(
            f"{self.base_url}/api/v1/query_exemplars",
            params={"query": expr, "start": now - lookback_s, "end": now + 60},
        )
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"exemplar query error for {expr!r}: {body.get('error')}")
        data: list[dict[str, Any]] = body["data"]
        return data


# --- Alertmanager and a webhook receiver ------------------------------------------------------


class Alertmanager:
    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url
        self._client = client

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        response = self._client.get(
            f"{self.base_url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}
        )
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts


class WebhookReceiver:
    """An HTTP server collecting Alertmanager webhook notifications (JSON bodies)."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != receiver.path:
                    self.send_response(404)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean; notifications are asserted instead

        # Raises OSError (address in use) right here, before any test waits on it.
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification received so far."""
        with self._lock:
            return [alert for n in self.notifications for alert in n.get("alerts", [])]


# --- server-sent events -----------------------------------------------------------------------


def sse_events(text: str) -> Iterator[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body; enough of the format for the api's stream."""
    event: str | None = None
    data: list[str] = []
    for line in [*text.splitlines(), ""]:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
