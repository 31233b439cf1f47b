"""Property-based fuzzing of the three demo services over real HTTP (issue 13).

The services run as processes (the launcher, as the other integration tests), so what
is fuzzed is what a client reaches: uvicorn's parsing, the edge, the OpenTelemetry
middleware, FastAPI and our handlers. Hypothesis drives raw header bytes (trace
context, baggage, user agent, API key), bodies (non-finite numbers, deep nesting,
huge strings, arbitrary bytes) and query strings at each service. Properties:

- no response is a 5xx;
- no span nor metric series carries a tenant other than an authenticated one, and a
  trace the api answered carries only the tenant of the key that asked;
- each service's RSS stays within 50 MB of its RSS at start.

The campaigns share one launch; the last two tests read what the campaigns left, so
the module runs in file order (pytest's default). Examples are derandomized and the
example database is off, so a CI run is the same run every time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import psutil
import pytest
from demo_files import final_points, load_spans
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_rag.api import API_KEY_HEADER, TRACE_ID_HEADER
from demo_rag.launcher import Services, launch
from otel_ml import semconv

TENANTS = ("acme", "globex")
QUESTIONS = [
    "What uptime does the Cloud DNS SLA guarantee?",
    "How long are Log Search backups kept?",
]
RSS_BUDGET = 50 * 1024 * 1024
EXAMPLES = 300
FAST_SIM = {
    "LLM_SIM_TTFT_MS": "1",
    "LLM_SIM_TTFT_SIGMA": "0",
    "LLM_SIM_TBT_MS": "0",
    "LLM_SIM_TBT_SIGMA": "0",
    "LLM_SIM_SLOW_RATE": "0",
    "LLM_SIM_ERROR_RATE": "0",
    "LLM_SIM_SEED": "5",
    "DEMO_RAG_DRIFT_INTERVAL": "3600",
}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@dataclass
class Fuzzed:
    services: Services
    out_dir: Path
    stack: contextlib.ExitStack
    rss_at_start: dict[str, int]
    campaigns: set[str] = field(default_factory=set)
    # X-Trace-Id of each api answer -> tenant of the key that asked.
    answered: dict[str, str] = field(default_factory=dict)
    rss_after: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def rss(self) -> dict[str, int]:
        return {
            name: psutil.Process(pid).memory_info().rss for name, pid in self.services.pids.items()
        }

    def stop(self) -> None:
        if not self.stopped:
            self.rss_after = self.rss()
            self.stack.close()  # graceful stop: every span and final metric is on disk
            self.stopped = True


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    out_dir = tmp_path_factory.mktemp("fuzz-telemetry")
    stack = contextlib.ExitStack()
    services = stack.enter_context(launch(out_dir=out_dir, tenants=TENANTS, env=FAST_SIM))
    run = Fuzzed(services, out_dir, stack, rss_at_start={})
    run.rss_at_start = run.rss()
    try:
        yield run
    finally:
        run.stop()


# --- strategies ---------------------------------------------------------------------

# What an HTTP/1.1 client can put in a header value (h11 refuses control bytes):
# visible ASCII, space, tab and obs-text, invalid UTF-8 and backslashes included.
_HEADER_BYTE = st.sampled_from(
    [
        b" ",
        b"\t",
        *(bytes([b]) for b in range(0x21, 0x7F)),
        *(bytes([b]) for b in range(0x80, 0x100)),
    ]
)
_HEADER_PIECE = st.sampled_from(
    [
        b"tenant.id=",
        b"tenant%2Eid=",
        b"tenant\\x2eid=",
        b"evil",
        b",",
        b"\\x",
        b"\\",
        b"\xff",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        b"-01",
        b";",
        b"=",
    ]
)
RAW_HEADER = (
    st.lists(_HEADER_PIECE | _HEADER_BYTE, max_size=24).map(b"".join).map(lambda b: b.strip(b" \t"))
)

_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
JSON_VALUE = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _huge(char: str) -> st.SearchStrategy[str]:
    return st.sampled_from([1_000, 70_000, 1_100_000, 3_000_000]).map(lambda n: char * n)


def _json_text(value: Any) -> bytes:
    # Python writes NaN and Infinity as the bare tokens a hostile client would send.
    return json.dumps(value, allow_nan=True).encode()


def _nested(depth: int) -> bytes:
    return b'{"question":' + b"[" * depth + b"]" * depth + b"}"


def bodies(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[bytes]:
    """Bodies around a service's own shape: its fields fuzzed, or anything at all."""
    shaped = st.fixed_dictionaries(
        {}, optional={name: strategy | JSON_VALUE for name, strategy in fields.items()}
    ).map(_json_text)
    return st.one_of(
        shaped,
        JSON_VALUE.map(_json_text),
        st.integers(1, 200_000).map(_nested),
        st.sampled_from([b"NaN", b"[1e400]", b'{"x":-Infinity}', b"1" * 5000]),
        st.binary(max_size=64),
    )


QUERY = st.binary(max_size=32).map(lambda b: quote_from_bytes(b, safe="=&%+;/?"))


@st.composite
def requests(
    draw: st.DrawFn,
    paths: list[str],
    body: st.SearchStrategy[bytes],
    with_baggage: bool,
    keys: list[str],
) -> dict[str, Any]:
    headers: dict[str, bytes] = {
        "content-type": draw(
            st.sampled_from([b"application/json", b"text/plain", b"application/x+json"])
        )
    }
    names = ["traceparent", "tracestate", "user-agent", "x-anything"]
    names += ["baggage"] if with_baggage else []
    for name in names:
        if draw(st.booleans()):
            headers[name] = draw(RAW_HEADER)
    key = draw(
        st.sampled_from([*keys, *keys, None]) | RAW_HEADER.map(lambda b: b.decode("latin-1"))
    )
    if key is not None:
        headers[API_KEY_HEADER.lower()] = key.encode("latin-1")
    path = draw(st.sampled_from(paths))
    query = draw(st.none() | QUERY)
    return {
        "method": draw(st.sampled_from(["POST", "POST", "POST", "GET"])),
        "url": path + (f"?{query}" if query is not None else ""),
        "headers": headers,
        "content": draw(body),
        "tenant": next((t for t, k in zip(TENANTS, keys, strict=False) if k == key), None),
    }


def _send(client: httpx.Client, request: dict[str, Any]) -> httpx.Response | None:
    try:
        return client.request(
            request["method"],
            request["url"],
            headers=request["headers"],
            content=request["content"],
        )
    except httpx.TransportError:
        # A 413 or 401 sent before a huge body was read may close the connection
        # under the client's upload: no status to judge, the next request reconnects.
        return None


def _campaign(
    fuzzed: Fuzzed, name: str, base: str, strategy: st.SearchStrategy[dict[str, Any]]
) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:

        @FUZZ_SETTINGS
        @given(request=strategy)
        def one(request: dict[str, Any]) -> None:
            response = _send(client, request)
            if response is None:
                return
            assert response.status_code < 500, (response.status_code, response.text[:300])
            trace_id = response.headers.get(TRACE_ID_HEADER)
            if trace_id and response.status_code != 401 and request["tenant"] is not None:
                fuzzed.answered[trace_id] = request["tenant"]

        one()
    fuzzed.campaigns.add(name)


# --- campaigns ----------------------------------------------------------------------


def test_the_api_never_answers_5xx(fuzzed: Fuzzed) -> None:
    keys = [fuzzed.services.api_keys[t] for t in TENANTS]
    question = st.sampled_from([*QUESTIONS, ""]) | _huge("q")
    body = bodies(
        {
            "question": question,
            "stream": st.booleans(),
            "trace_id": st.sampled_from(["ab" * 16, "zz"]),
            "kind": st.just("thumbs_up"),
            "score": st.floats(allow_nan=True, allow_infinity=True),
        }
    )
    # Well-formed questions half the time, so the fuzzed headers reach a full answer.
    asked = st.fixed_dictionaries(
        {"question": st.sampled_from(QUESTIONS), "stream": st.booleans()}
    ).map(_json_text)
    body = asked | body
    paths = ["/ask", "/ask", "/feedback", "/healthz", "/missing", "/ask/../feedback"]
    _campaign(fuzzed, "api", fuzzed.services.api, requests(paths, body, True, keys))


def test_the_vectordb_never_answers_5xx(fuzzed: Fuzzed) -> None:
    body = bodies({"query": st.text(max_size=50) | _huge("v"), "top_k": st.integers() | _SCALAR})
    strategy = requests(["/search", "/search", "/healthz"], body, False, [])
    _campaign(fuzzed, "vectordb", fuzzed.services.vectordb, strategy)


def test_the_llm_never_answers_5xx(fuzzed: Fuzzed) -> None:
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system"]), "content": st.text(max_size=50) | _huge("m")}
    )
    body = bodies(
        {
            "model": st.text(max_size=30),
            "messages": st.lists(message, min_size=1, max_size=80),
            "stream": st.booleans(),
            "max_tokens": st.integers(-5, 8),
            "temperature": st.floats(allow_nan=True, allow_infinity=True),
        }
    )
    strategy = requests(["/v1/chat/completions"] * 3 + ["/healthz"], body, False, [])
    _campaign(fuzzed, "llm", fuzzed.services.llm, strategy)


# --- what the campaigns left ----------------------------------------------------------


def _require_campaigns(fuzzed: Fuzzed) -> None:
    if fuzzed.campaigns != {"api", "vectordb", "llm"}:
        pytest.skip("needs the three campaigns above to have run first (run the module)")


def test_each_service_stays_within_50_mb_of_its_start(fuzzed: Fuzzed) -> None:
    _require_campaigns(fuzzed)
    fuzzed.stop()
    growth = {
        name: fuzzed.rss_after[name] - fuzzed.rss_at_start[name] for name in fuzzed.rss_at_start
    }
    assert all(grown <= RSS_BUDGET for grown in growth.values()), growth


def test_no_span_or_series_carries_a_tenant_not_authenticated(fuzzed: Fuzzed) -> None:
    _require_campaigns(fuzzed)
    fuzzed.stop()
    spans = load_spans(fuzzed.out_dir)
    assert len(spans) > EXAMPLES  # the campaigns were traced
    on_spans = {s.attrs[semconv.TENANT_ID] for s in spans if semconv.TENANT_ID in s.attrs}
    on_series = {
        p.attrs[semconv.TENANT_ID]
        for p in final_points(fuzzed.out_dir)
        if semconv.TENANT_ID in p.attrs
    }
    assert on_spans <= set(TENANTS), on_spans - set(TENANTS)
    assert on_series <= set(TENANTS), on_series - set(TENANTS)
    assert fuzzed.answered, "no authenticated answer: the fuzzer never got past the edge"
    for span in spans:
        expected = fuzzed.answered.get(span.trace_id)
        if expected is not None and semconv.TENANT_ID in span.attrs:
            assert span.attrs[semconv.TENANT_ID] == expected, (span.service, span.name)
