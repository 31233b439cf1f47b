"""The collector's redaction comes from the SDK's rules and masks every place a string travels.

* The block in collector-config/otelcol.yaml is exactly what scripts/gen_redaction.py
  makes of otel_ml/data/redaction.json (edit the rules, run the script).
* Every pipeline redacts.
* Through the real collector (Go's regexp, not Python's re), with otelcol.yaml's own
  redaction processors: every positive of the corpus is masked in span attributes, list
  attributes, span names, status messages, span event names and attributes, resource
  attributes and metric labels; every look-alike the collector must keep is unchanged.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cfg_support import CONFIG, load_script, load_yaml

from otel_ml._redaction import all_patterns, load_rules
from otel_ml.cli.stack.ports import free_ports

OTELCOL_YAML = CONFIG / "otelcol.yaml"
RULES = load_rules()
MASK = RULES["mask"]
POSITIVES = [(rule["name"], ex) for rule in RULES["values"] for ex in rule["redact"]]
# The collector has no checksums: it masks Luhn-failing card-shaped ids too.
NEGATIVES = [ex["text"] for ex in RULES["keep"]["values"] if not ex.get("sdk_only")]


@pytest.fixture(scope="module")
def config() -> Any:
    return load_yaml(OTELCOL_YAML)


def test_the_checked_in_collector_redaction_is_the_generated_one() -> None:
    gen = load_script("gen_redaction")
    assert gen.main(["--check"]) == 0, "run: python scripts/gen_redaction.py"


def test_the_generator_notices_a_stale_block(tmp_path: Path) -> None:
    # Guards the test above: a hand edit inside the block is caught.
    gen = load_script("gen_redaction")
    stale = tmp_path / "otelcol.yaml"
    stale.write_text(
        OTELCOL_YAML.read_text(encoding="utf-8").replace("summary: info", "summary: debug"),
        encoding="utf-8",
    )
    assert gen.main(["--check", "--config", str(stale)]) == 1


def test_the_collector_uses_the_rules_files_patterns_keys_and_sdk_computed_keys(
    config: Any,
) -> None:
    redaction = config["processors"]["redaction"]
    assert redaction["blocked_values"] == all_patterns(RULES)
    assert redaction["blocked_key_patterns"] == [RULES["keys"]["pattern"]]
    assert redaction["ignored_keys"] == RULES["sdk_computed_keys"]["keys"]
    assert redaction["allow_all_keys"] is True
    assert redaction["redact_all_types"] is True  # list values are scanned as text


def test_every_pipeline_redacts(config: Any) -> None:
    pipelines = config["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        assert "redaction" in pipeline["processors"], name
    assert "transform/redaction" in pipelines["traces"]["processors"]


# --- through the real collector ------------------------------------------------------------------

PIPELINE = """\
receivers: {{otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:{port}}}}}}}}}
processors: {processors}
exporters:
  otlp_http:
    endpoint: http://127.0.0.1:{sink}
    encoding: json
    compression: none
    retry_on_failure: {{enabled: false}}
    sending_queue: {{enabled: false}}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [redaction, transform/redaction]
      exporters: [otlp_http]
    metrics: {{receivers: [otlp], processors: [redaction], exporters: [otlp_http]}}
  telemetry: {{metrics: {{level: none}}}}
"""


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        values = [{"stringValue": v} for v in value]
        return {"key": key, "value": {"arrayValue": {"values": values}}}
    return {"key": key, "value": {"stringValue": value}}


def _span(index: int, text: str) -> dict[str, Any]:
    """One span carrying ``text`` everywhere a span carries a string."""
    return {
        "traceId": f"{index + 1:032x}", "spanId": f"{index + 1:016x}", "name": text, "kind": 1,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
        "attributes": [_attr("app.note", text), _attr("app.list", ["plain", text])],
        "events": [{"timeUnixNano": "1700000000500000000", "name": text,
                    "attributes": [_attr("exception.message", text)]}],
        "status": {"code": 2, "message": text},
    }


def _traces(texts: list[str]) -> dict[str, Any]:
    return {"resourceSpans": [
        {"resource": {"attributes": [_attr("service.name", "redaction-config"),
                                     _attr("app.owner", text)]},
         "scopeSpans": [{"scope": {"name": "t"}, "spans": [_span(i, text)]}]}
        for i, text in enumerate(texts)
    ]}


def _metrics(texts: list[str]) -> dict[str, Any]:
    return {"resourceMetrics": [
        {"resource": {"attributes": [_attr("service.name", "redaction-config"),
                                     _attr("app.owner", text)]},
         "scopeMetrics": [{"scope": {"name": "t"}, "metrics": [{"name": "app.calls", "sum": {
             "aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [{
                 "asInt": "1", "timeUnixNano": "1700000000000000000",
                 "attributes": [_attr("app.label", text)]}]}}]}]}
        for text in texts
    ]}


@pytest.fixture(scope="module")
def through_collector(
    otelcol_bin: Path, config: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Any], list[Any]]]:
    """(traces, metrics) as the collector exported them for [positives..., negatives...]."""
    received: list[tuple[str, Any]] = []
    handler = type("Sink", (_Sink,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_ports(1)[0]
    processors = {k: config["processors"][k] for k in ("redaction", "transform/redaction")}
    work = tmp_path_factory.mktemp("redaction")
    cfg = work / "collector.yaml"
    cfg.write_text(PIPELINE.format(
        port=port, sink=server.server_address[1], processors=json.dumps(processors)
    ), encoding="utf-8")
    texts = [ex["text"] for _, ex in POSITIVES] + NEGATIVES
    log = work / "collector.log"
    with log.open("wb") as out:
        process = subprocess.Popen([otelcol_bin, f"--config={cfg}"], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 30
            for path, body in (("traces", _traces(texts)), ("metrics", _metrics(texts))):
                while True:
                    try:
                        response = httpx.post(f"http://127.0.0.1:{port}/v1/{path}", json=body)
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline, log.read_text()
                        time.sleep(0.2)
                assert response.status_code == 200, response.text
            while {p for p, _ in received} != {"/v1/traces", "/v1/metrics"}:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(timeout=20)
            server.shutdown()
    traces = [r for b in (b for p, b in received if p == "/v1/traces") for r in b["resourceSpans"]]
    metrics = [r for b in (b for p, b in received if p == "/v1/metrics")
               for r in b["resourceMetrics"]]
    yield _by_trace(traces), _by_owner(metrics, texts)


def _by_trace(resource_spans: list[Any]) -> list[Any]:
    """Resource spans in the order sent (the trace id is the index + 1)."""
    return sorted(resource_spans,
                  key=lambda r: int(r["scopeSpans"][0]["spans"][0]["traceId"], 16))


def _by_owner(resource_metrics: list[Any], texts: list[str]) -> list[Any]:
    # Metrics carry no index: they come back in the order sent (one request).
    assert len(resource_metrics) == len(texts)
    return resource_metrics


def _value(attributes: list[Any], key: str) -> Any:
    (value,) = [a["value"] for a in attributes if a["key"] == key]
    if "arrayValue" in value:
        return [v["stringValue"] for v in value["arrayValue"]["values"]]
    return value["stringValue"]


def _places(resource_spans: Any, resource_metrics: Any) -> dict[str, Any]:
    span = resource_spans["scopeSpans"][0]["spans"][0]
    event = span["events"][0]
    point = resource_metrics["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]
    return {
        "span attribute": _value(span["attributes"], "app.note"),
        "list attribute": _value(span["attributes"], "app.list"),
        "span name": span["name"],
        "status message": span["status"].get("message", ""),
        "event name": event["name"],
        "event attribute": _value(event["attributes"], "exception.message"),
        "resource attribute": _value(resources_attrs(resource_spans), "app.owner"),
        "metric label": _value(point["attributes"], "app.label"),
        "metric resource attribute": _value(resources_attrs(resource_metrics), "app.owner"),
    }


def resources_attrs(resource: Any) -> list[Any]:
    attributes: list[Any] = resource["resource"]["attributes"]
    return attributes


@pytest.mark.parametrize(
    ("index", "rule", "example"),
    [(i, rule, ex) for i, (rule, ex) in enumerate(POSITIVES)],
    ids=[f"{rule}-{i}" for i, (rule, _) in enumerate(POSITIVES)],
)
def test_the_collector_masks_each_positive_everywhere(
    through_collector: tuple[list[Any], list[Any]], index: int, rule: str, example: Any
) -> None:
    traces, metrics = through_collector
    places = _places(traces[index], metrics[index])
    for place, value in places.items():
        text = json.dumps(value)
        assert example["secret"] not in text, (rule, place, value)
        assert MASK in text, (rule, place, value)


@pytest.mark.parametrize(
    ("index", "text"),
    [(len(POSITIVES) + i, text) for i, text in enumerate(NEGATIVES)],
    ids=[f"keep-{i}" for i in range(len(NEGATIVES))],
)
def test_the_collector_keeps_each_look_alike_everywhere(
    through_collector: tuple[list[Any], list[Any]], index: int, text: str
) -> None:
    traces, metrics = through_collector
    places = _places(traces[index], metrics[index])
    assert places.pop("list attribute") == ["plain", text]
    for place, value in places.items():
        assert value == text, place
