"""Review finding on otel_ml.cli.replay: a run cut short by a killed process cannot be replayed.

A process killed mid-write leaves a partial last line; ``otel-ml report`` counts such
lines as unreadable and goes on (its docstring names this case). ``replay`` POSTs the
partial line as is, the collector's OTLP/HTTP receiver answers 400, and the replay
aborts half-way: the files after it are never sent, and running it again re-sends (and
duplicates) everything before it.

The stand-in receiver below answers like the collector does: 200 for a JSON body, 400
for one that does not parse.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from otel_ml.cli.replay import replay
from otel_ml.cli.report import load

SPAN_LINE = json.dumps({"resourceSpans": [{"resource": {"attributes": [
    {"key": "service.name", "value": {"stringValue": "rag-api"}}]},
    "scopeSpans": [{"scope": {"name": "t"}, "spans": [{
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "name": "POST /ask", "kind": 2, "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]})


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                self.wfile.write(b'{"code":3,"message":"unexpected EOF"}')
                return
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_a_line_cut_short_by_a_killed_process_does_not_abort_the_replay(
    tmp_path: Path, receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    endpoint, received = receiver
    # The api was SIGKILLed while writing its second batch; vectordb's file is whole.
    (tmp_path / "traces-rag-api-100.jsonl").write_text(SPAN_LINE + "\n" + SPAN_LINE[:57])
    (tmp_path / "traces-rag-vectordb-101.jsonl").write_text(SPAN_LINE + "\n")
    assert load(tmp_path).unreadable_lines == 1  # the report reads past it

    replay(tmp_path, endpoint)

    assert [path for path, _ in received] == ["/v1/traces", "/v1/traces"]
