"""otel-ml replay: every saved export request is POSTed unchanged, in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from otel_ml import cli, providers
from otel_ml.cli.replay import ReplayError, replay
from otel_ml.providers import Destination
from otel_ml.telemetry import Telemetry


class _Receiver(HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, str, bytes]] = []
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A folder written by the real embedded-default exporters."""
    destination = Destination(None, "file", tmp_path)
    resource = providers.build_resource("replayed")
    telemetry = Telemetry(
        providers.build_tracer_provider(resource, destination),
        providers.build_meter_provider(resource, destination),
        owns_providers=True,
    )
    with telemetry.tenant("acme"), telemetry.generation("gpt-4o-mini", "openai") as g:
        g.usage(input_tokens=10, output_tokens=5)
    telemetry.shutdown()
    return tmp_path


def _lines(folder: Path, signal: str) -> list[bytes]:
    (path,) = folder.glob(f"{signal}-replayed-*.jsonl")
    return [line.encode() for line in path.read_text().splitlines()]


def test_every_line_is_posted_unchanged_to_its_signal_path(
    recorded: Path, receiver: _Receiver
) -> None:
    result = replay(recorded, receiver.url)

    traces, metrics = _lines(recorded, "traces"), _lines(recorded, "metrics")
    assert result.files == 2
    assert result.requests == len(traces) + len(metrics) >= 2
    assert receiver.received == [
        *(("/v1/traces", "application/json", line) for line in traces),
        *(("/v1/metrics", "application/json", line) for line in metrics),
    ]
    span = json.loads(traces[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["name"] == "chat gpt-4o-mini"


def test_a_signal_path_in_the_endpoint_is_not_doubled(
    recorded: Path, receiver: _Receiver
) -> None:
    replay(recorded, receiver.url + "/v1/traces")
    assert {path for path, _, _ in receiver.received} == {"/v1/traces", "/v1/metrics"}


def test_a_refusal_names_the_line_and_the_collectors_answer(
    recorded: Path, receiver: _Receiver
) -> None:
    receiver.status = 400
    with pytest.raises(ReplayError, match=r"HTTP 400") as refused:
        replay(recorded, receiver.url)
    assert ".jsonl:1" in str(refused.value)
    assert len(receiver.received) == 1  # stops at the first refusal


def test_the_grpc_port_is_refused_with_a_hint(recorded: Path) -> None:
    with pytest.raises(ReplayError, match="HTTP port"):
        replay(recorded, "http://127.0.0.1:4317")


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no traces"):
        replay(tmp_path, "http://127.0.0.1:4318")


def test_cli_reports_success_and_failure(
    recorded: Path, receiver: _Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay", str(recorded), "--endpoint", receiver.url]) == 0
    assert "replayed" in capsys.readouterr().out
    assert cli.main(["replay", str(recorded), "--endpoint", "127.0.0.1:1"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_evaluation_events_in_logs_files_are_posted_to_the_logs_path(
    tmp_path: Path, receiver: _Receiver
) -> None:
    from opentelemetry._logs import LogRecord

    destination = Destination(None, "file", tmp_path)
    provider = providers.build_logger_provider(providers.build_resource("replayed"), destination)
    provider.get_logger("otel_ml").emit(
        LogRecord(event_name="gen_ai.evaluation.result", attributes={"gen_ai.evaluation.name": "g"})
    )
    provider.shutdown()

    result = replay(tmp_path, receiver.url + "/v1/logs")

    logs = _lines(tmp_path, "logs")
    assert result.files == 1 and result.requests == len(logs) >= 1
    assert receiver.received == [("/v1/logs", "application/json", line) for line in logs]
    (record,) = json.loads(logs[0])["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert record["eventName"] == "gen_ai.evaluation.result"
