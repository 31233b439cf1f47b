"""Redaction: with content capture on, an e-mail and an API key in a prompt never reach Jaeger;
and the labelled corpus of otel_ml/data/redaction.json, sent everywhere a string can travel,
reaches Jaeger and Prometheus masked (positives) or unchanged (look-alikes).

A separate process configured with ``capture_content=True`` sends a trace
whose prompt, completion and retrieval query contain both secrets (fresh
per run, so nothing else can produce them). The collector's redaction
processor must mask them before the Jaeger exporter; the test reads the
stored trace back and searches every value Jaeger returns for them.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest
from e2e_clients import Jaeger, Prometheus, poll
from e2e_demo import emit

from otel_ml._redaction import load_rules
from otel_ml.cli.stack import Stack

pytestmark = pytest.mark.e2e

SERVICES = ("e2e-redaction",)


@pytest.fixture(scope="module")
def leaked() -> tuple[str, str]:
    token = secrets.token_hex(12)
    return f"jane.doe.{token}@example.com", f"sk-proj-{token}{secrets.token_hex(8)}"


@pytest.fixture(scope="module")
def stored(stack: Stack, jaeger: Jaeger, leaked: tuple[str, str]) -> dict[str, Any]:
    email, api_key = leaked
    sent = emit("redaction", stack.urls.otlp_http, "--email", email, "--api-key", api_key)
    trace = jaeger.wait_trace(sent["trace_id"], SERVICES)
    assert len(trace.spans) == 3, [s.operation for s in trace.spans]  # root, retrieval, chat
    return jaeger.raw_trace(sent["trace_id"])


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a JSON value (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_email_and_api_key_never_reach_jaeger(
    stored: dict[str, Any], leaked: tuple[str, str]
) -> None:
    everything = _strings(stored)
    for secret in leaked:
        assert not [s for s in everything if secret in s], f"{secret} reached Jaeger"
    # Not even the distinctive parts: the masking must cover the whole match.
    email, api_key = leaked
    for fragment in (email.split("@")[0], api_key.removeprefix("sk-proj-")):
        assert not [s for s in everything if fragment in s], f"{fragment} reached Jaeger"


def test_captured_content_is_kept_with_the_secrets_masked(stored: dict[str, Any]) -> None:
    """Capture was on and the rest of the text survived: redaction masked, it did not drop."""
    spans = stored["data"][0]["spans"]
    tags = {t["key"]: t["value"] for span in spans for t in span["tags"]}
    prompt = tags["gen_ai.input.messages"]
    assert "why is my bill so high?" in prompt
    assert "****" in prompt
    assert "****" in tags["gen_ai.output.messages"]
    assert "****" in tags["gen_ai.retrieval.query.text"]
    assert json.dumps(stored).count("****") >= 4  # two secrets each in prompt, output, query


# --- the labelled corpus through the whole stack (otel_ml/data/redaction.json) ---------------
#
# Raw OTLP/JSON, so that the corpus reaches every place a string can travel, including
# those the SDK never fills with user text: a span per corpus entry, carrying the entry as
# its name, an attribute, an element of a list attribute, its status message, an event's
# name and attribute, and a resource attribute; and a metric data point with the entry as
# a label and as a resource attribute. What Jaeger and Prometheus stored is checked:
# positives masked with nothing of the secret left, look-alikes exactly as sent.

RULES = load_rules()
MASK = RULES["mask"]
CORPUS_SERVICE = "e2e-redaction-corpus"
METRIC = "e2e_redaction_corpus"
POSITIVES = [(rule["name"], ex) for rule in RULES["values"] for ex in rule["redact"]]
# The collector has no checksums: it masks Luhn-failing card-shaped ids too (sdk_only).
NEGATIVES = [ex["text"] for ex in RULES["keep"]["values"] if not ex.get("sdk_only")]
TEXTS = [ex["text"] for _, ex in POSITIVES] + NEGATIVES


def _attr(key: str, value: str | int | list[str]) -> dict[str, Any]:
    if isinstance(value, list):
        values = [{"stringValue": v} for v in value]
        return {"key": key, "value": {"arrayValue": {"values": values}}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _resource(text: str, case: int) -> dict[str, Any]:
    return {"attributes": [_attr("service.name", CORPUS_SERVICE), _attr("app.owner", text),
                           _attr("corpus.case", case)]}


def _corpus_traces(trace_id: str, root_id: str) -> dict[str, Any]:
    start = time.time_ns()
    root = {"traceId": trace_id, "spanId": root_id, "name": "corpus", "kind": 1,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10**9)}
    resources = [{"resource": _resource("root", -1),
                  "scopeSpans": [{"scope": {"name": "e2e"}, "spans": [root]}]}]
    for case, text in enumerate(TEXTS):
        span = {
            "traceId": trace_id, "spanId": secrets.token_hex(8), "parentSpanId": root_id,
            "name": text, "kind": 1, "startTimeUnixNano": str(start + 1000),
            "endTimeUnixNano": str(start + 2000),
            "attributes": [_attr("corpus.case", case), _attr("app.note", text),
                           _attr("app.list", ["plain", text])],
            "events": [{"timeUnixNano": str(start + 1500), "name": text,
                        "attributes": [_attr("exception.message", text)]}],
            "status": {"code": 2, "message": text},
        }
        resources.append({"resource": _resource(text, case),
                          "scopeSpans": [{"scope": {"name": "e2e"}, "spans": [span]}]})
    return {"resourceSpans": resources}


def _corpus_metrics() -> dict[str, Any]:
    now = str(time.time_ns())
    return {"resourceMetrics": [
        {"resource": _resource(text, case), "scopeMetrics": [{"scope": {"name": "e2e"}, "metrics": [
            {"name": METRIC, "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                     "dataPoints": [{"asInt": "1", "timeUnixNano": now,
                                                     "startTimeUnixNano": now,
                                                     "attributes": [_attr("app.label", text),
                                                                    _attr("case", str(case))]}]}},
        ]}]}
        for case, text in enumerate(TEXTS)
    ]}


@pytest.fixture(scope="module")
def corpus_in_jaeger(stack: Stack, jaeger: Jaeger, http: httpx.Client) -> dict[int, Any]:
    """Per corpus case, the span as Jaeger stored it, with its process (resource) tags."""
    trace_id, root_id = secrets.token_hex(16), secrets.token_hex(8)
    response = http.post(f"{stack.urls.otlp_http}/v1/traces",
                         json=_corpus_traces(trace_id, root_id))
    assert response.status_code == 200, response.text

    def stored() -> dict[str, Any] | None:
        found = jaeger.trace(trace_id)
        return jaeger.raw_trace(trace_id) if found else None

    raw = poll(stored, lambda r: r is not None and len(r["data"][0]["spans"]) == len(TEXTS) + 1,
               timeout=90, what="the corpus trace with every span")
    assert raw is not None
    data = raw["data"][0]
    by_case: dict[int, Any] = {}
    for span in data["spans"]:
        tags = {t["key"]: t["value"] for t in span["tags"]}
        if "corpus.case" in tags:
            process = {t["key"]: t["value"] for t in data["processes"][span["processID"]]["tags"]}
            by_case[int(tags["corpus.case"])] = {"span": span, "tags": tags, "process": process}
    assert sorted(by_case) == list(range(len(TEXTS)))
    return by_case


@pytest.fixture(scope="module")
def corpus_in_prometheus(
    stack: Stack, prometheus: Prometheus, http: httpx.Client
) -> dict[int, dict[str, str]]:
    """Per corpus case, the labels of the series Prometheus scraped."""
    response = http.post(f"{stack.urls.otlp_http}/v1/metrics", json=_corpus_metrics())
    assert response.status_code == 200, response.text
    series = poll(lambda: prometheus.query(f"{METRIC}_total"), lambda s: len(s) == len(TEXTS),
                  timeout=90, what=f"{len(TEXTS)} series of {METRIC}_total")
    return {int(s["metric"]["case"]): s["metric"] for s in series}


def _places(stored: Any) -> dict[str, Any]:
    span, tags = stored["span"], stored["tags"]
    (log,) = span["logs"]
    fields = {f["key"]: f["value"] for f in log["fields"]}
    return {
        "span name": span["operationName"],
        "span attribute": tags["app.note"],
        "list attribute": tags["app.list"],
        "status message": tags.get("otel.status_description", ""),
        "event name": fields.get("event", ""),
        "event attribute": fields["exception.message"],
        "resource attribute": stored["process"]["app.owner"],
    }


@pytest.mark.parametrize(("case", "rule"), [(i, rule) for i, (rule, _) in enumerate(POSITIVES)],
                         ids=[f"{rule}-{i}" for i, (rule, _) in enumerate(POSITIVES)])
def test_jaeger_gets_each_positive_masked_everywhere(
    corpus_in_jaeger: dict[int, Any], case: int, rule: str
) -> None:
    secret = POSITIVES[case][1]["secret"]
    stored = corpus_in_jaeger[case]
    assert not [s for s in _strings(stored) if secret in s], (rule, stored)
    for place, value in _places(stored).items():
        assert MASK in str(value), (rule, place, value)


@pytest.mark.parametrize("case", range(len(POSITIVES), len(TEXTS)),
                         ids=[f"keep-{i}" for i in range(len(NEGATIVES))])
def test_jaeger_gets_each_look_alike_unchanged(
    corpus_in_jaeger: dict[int, Any], case: int
) -> None:
    text = TEXTS[case]
    places = _places(corpus_in_jaeger[case])
    assert json.loads(places.pop("list attribute")) == ["plain", text]
    assert places == dict.fromkeys(places, text)


def test_prometheus_gets_positives_masked_and_look_alikes_unchanged(
    corpus_in_prometheus: dict[int, dict[str, str]],
) -> None:
    for case, (rule, example) in enumerate(POSITIVES):
        labels = corpus_in_prometheus[case]
        for label in ("app_label", "app_owner"):
            assert example["secret"] not in labels[label], (rule, label, labels[label])
            assert MASK in labels[label], (rule, label, labels[label])
    for case in range(len(POSITIVES), len(TEXTS)):
        labels = corpus_in_prometheus[case]
        assert (labels["app_label"], labels["app_owner"]) == (TEXTS[case], TEXTS[case])
