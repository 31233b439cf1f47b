"""VictoriaMetrics answers every dashboard and alert query as Prometheus does (issue 15, item 2).

Prometheus remote-writes every sample it scrapes or records to the stack's
VictoriaMetrics (collector-config/prometheus/prometheus.yml), the long-term
store. Each Grafana panel query (collected as tests/e2e/test_e2e_dashboards.py
collects them) and each alerting and recording rule expression is sent to
both with the same evaluation time, and the answers compared series by
series:

* Counter totals (every counter the queries take a rate of, read raw) and
  every query without a rate are equal: the same samples, so the same numbers.
* Queries with ``rate``/``increase`` agree within :data:`RATE_TOLERANCE`.
  This is MetricsQL's documented difference: it does not extrapolate, and its
  window starts at the last sample *before* the window, so a 1m rate at 5s
  scrapes spans 12 scrape intervals where Prometheus' spans the 11 inside
  the window, stretched to the window's edges (an increase of 2 reads 2 on
  VictoriaMetrics and 2 * 12/11 = 2.18 on Prometheus). Under a steady load
  both estimate the same slope; they differ by how far one interval's
  increase strays from the mean, divided over the window.
* ``histogram_quantile`` of such rates gets no tolerance: a quantile is not
  proportional to the rates (one count more in a bucket can move a p99 into
  the next bucket: 0.99 s against 1.2 s in one run), so both engines must
  return the same series, and the values are checked exactly another way:
* Every query with a rate, quantiles included, is also rewritten into
  MetricsQL's own formula in PromQL (:func:`metricsql_in_promql`) and
  evaluated by Prometheus on its samples: VictoriaMetrics' answer must equal
  it to 1e-6. That proves VictoriaMetrics holds the same samples and computes
  what MetricsQL documents, so the tolerance above is all that differs.

The comparison needs data that is steady over the window, which a test
session's minutes-old series are not for the rules' 30m..3d windows (on a
series younger than the window Prometheus divides by the whole window and
MetricsQL by the span it has data for: a factor of window/age, not a
tolerance). So range windows longer than :data:`WINDOW` are compared at
:data:`WINDOW`; the functions, matchers and aggregations are the queries' own.
The load is one demo answer a second, with votes, for :data:`LOAD_S`.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import pytest
import yaml
from e2e_clients import METRIC_TIMEOUT_S, poll
from e2e_demo import Traffic
from test_e2e_dashboards import QUERIES as PANEL_QUERIES

from demo_rag.chroma_store import DEFAULT_COLLECTION as DATA_SOURCE
from otel_ml.cli.stack import Stack, find_config_dir

pytestmark = pytest.mark.e2e

RULES_DIR = find_config_dir() / "prometheus" / "rules"
TENANTS = ("acme", "globex", "initech")  # the steady load's (SteadyLoad.PLAN)
WINDOW = "1m"  # the dashboards' $__rate_interval
WINDOW_S = 60
SCRAPE_S = 5  # prometheus.yml's scrape_interval
# Steady load long enough that every series has samples before its window,
# and through the whole window ending at the evaluation time.
LOAD_S = WINDOW_S + 40
ASK_EVERY_S = 1.0
# Relative, for rates, increases and their ratios (not quantiles: see the module
# docstring). Under steady load the two slopes differ by (x - mean) / (n * mean), x one
# interval's increase and n = WINDOW/scrape = 12: within 1/n (8%) while x stays under
# twice the mean. Span metrics flush every 5s, in step with the scrape, so one
# interval may hold two flushes or none: up to 2/n (17%). histogram_quantile and
# ratios carry the difference of two such rates (10% seen). 25% covers those; the
# test fails on anything else (a missing series, a different label set, a wrong total).
RATE_TOLERANCE = 0.25
# Rates of counters that barely move (a vote landing in the one interval only
# MetricsQL counts) differ by one increase over the window: per second, tiny.
RATE_ABS_TOLERANCE = 1.0 / WINDOW_S
# increase() of a histogram's buckets counts answers, and a sparse bucket holds a few:
# the engines then differ by the one scrape interval MetricsQL starts from, which adds
# at most the answers of that interval (2 read 2 * 12/11 = 2.18 on Prometheus, 3 on
# VictoriaMetrics in one run). Values are checked exactly against MetricsQL's formula.
EVENTS_PER_SCRAPE = SCRAPE_S / ASK_EVERY_S
_INCREASE_OF_EVENTS = re.compile(r"\bincrease\s*\(\s*[A-Za-z_:][\w:]*_(?:bucket|count)\b")
EXACT = 1e-9
_RANGE = re.compile(r"\[(\d+)([smhdwy])\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_RATE_FUNCTIONS = re.compile(r"\b(?:rate|increase|irate|delta|idelta|deriv)\s*\(")
_RATED_METRIC = re.compile(r"\b(?:rate|increase)\s*\(\s*([A-Za-z_:][\w:]*)")


@dataclass(frozen=True)
class Query:
    id: str
    expr: str

    @property
    def rated(self) -> bool:
        """True when a rate/increase makes the answer engine-specific (within tolerance)."""
        return bool(_RATE_FUNCTIONS.search(self.expr))

    @property
    def counts_events(self) -> bool:
        """An increase() of a histogram's bucket or count series: a number of answers."""
        return bool(_INCREASE_OF_EVENTS.search(self.expr))

    @property
    def quantile(self) -> bool:
        return "histogram_quantile" in self.expr

    @property
    def sporadic(self) -> bool:
        """Over a metric whose label sets appear at random under the load.

        ``llm.evaluation.score`` is labelled by the evaluation's verdict, and an
        ``unsupported`` or ``abstained`` answer comes when the simulated model
        hallucinates (15 %): such a series is often born inside the rate window,
        which Prometheus extrapolates and VictoriaMetrics counts from zero, and
        which MetricsQL's formula in PromQL cannot select. The difference is by
        design, as with windows longer than a series' life; and a rule built on
        them (``*:llm_evaluation_*``) lingers in VictoriaMetrics when Prometheus
        has marked it stale. For these queries the test holds the series, not
        their values: every series Prometheus answers, VictoriaMetrics answers
        too (it looks further back, so it may answer more). The evaluation
        metric's own totals are compared exactly among the counters.
        """
        return "llm_evaluation" in self.expr


def clamp_windows(expr: str) -> str:
    """Range windows longer than :data:`WINDOW` set to it (offsets are left as they are)."""

    def clamp(match: re.Match[str]) -> str:
        seconds = int(match.group(1)) * _SECONDS[match.group(2)]
        return f"[{WINDOW}]" if seconds > WINDOW_S else match.group(0)

    return _RANGE.sub(clamp, expr)


_RATE_OF_SELECTOR = re.compile(
    r"\b(?P<fn>rate|increase)\s*\(\s*(?P<sel>[A-Za-z_:][\w:]*(?:\{[^{}]*\})?)\s*"
    r"\[(?P<window>\d+[smhdwy])\]\s*\)"
)


def metricsql_in_promql(expr: str) -> str:
    """``expr`` with each rate/increase written out as MetricsQL computes it, in PromQL.

    MetricsQL (VictoriaMetrics' rollup.go: rollupDelta, rollupDerivFast) takes
    the last sample before the window as the start: ``increase`` is the last
    value minus that one, and ``rate`` divides it by the time between the two
    samples, not by the window. In PromQL those are ``x - x offset d`` and
    ``timestamp(x) - timestamp(x offset d)``. Valid for counters that did not
    reset and existed before the window, which the steady load makes sure of.
    """

    def written_out(match: re.Match[str]) -> str:
        sel, window = match["sel"], match["window"]
        increase = f"({sel} - {sel} offset {window})"
        if match["fn"] == "increase":
            return increase
        return f"({increase} / (timestamp({sel}) - timestamp({sel} offset {window})))"

    return _RATE_OF_SELECTOR.sub(written_out, expr)


def _rule_queries() -> list[Query]:
    queries = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for n, rule in enumerate(group["rules"]):
                name = rule.get("alert") or rule.get("record")
                kind = "alert" if "alert" in rule else "record"
                queries.append(Query(f"{path.stem}/{kind}/{name}/{n}", clamp_windows(rule["expr"])))
    return queries


PANELS = [Query(q.id, clamp_windows(q.expr)) for q in PANEL_QUERIES]
RULES = _rule_queries()
COUNTERS = sorted({m for q in PANELS + RULES for m in _RATED_METRIC.findall(q.expr)})

Answer = dict[frozenset[tuple[str, str]], float]


def _instant(client: httpx.Client, base: str, expr: str, at: float, **extra: str) -> Answer:
    """An instant query's series, keyed by labels without ``__name__``; NaN samples left out.

    MetricsQL drops NaN results (0/0, quantiles of empty histograms) where
    PromQL returns them; neither draws a NaN, so both sides leave them out.
    """
    response = client.get(
        f"{base}/api/v1/query", params={"query": expr, "time": f"{at:.3f}", **extra}
    )
    body = response.json()
    assert body.get("status") == "success", f"{base}: error for {expr!r}: {body}"
    answer: Answer = {}
    for series in body["data"]["result"]:
        value = float(series["value"][1])
        if math.isnan(value):
            continue
        labels = frozenset((k, v) for k, v in series["metric"].items() if k != "__name__")
        assert labels not in answer, f"{base}: two series with labels {dict(labels)} for {expr!r}"
        answer[labels] = value
    return answer


@dataclass
class SteadyLoad:
    """One demo answer every :data:`ASK_EVERY_S`, with a vote on every third, in a thread."""

    traffic: Traffic
    asked: int = 0
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    PLAN = (("acme", True), ("globex", False), ("initech", True), ("acme", False),
            ("globex", True), ("initech", False))
    VOTES = ("thumbs_up", "thumbs_down", "copy_to_clipboard")

    def __enter__(self) -> SteadyLoad:
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def _run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                tenant, stream = self.PLAN[self.asked % len(self.PLAN)]
                answer = self.traffic.ask(tenant, stream)
                if self.asked % 3 == 0:
                    vote = self.VOTES[(self.asked // 3) % len(self.VOTES)]
                    self.traffic.feedback(tenant, answer.trace_id, vote)
                self.asked += 1
                next_at += ASK_EVERY_S
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # reported by the fixture, in the test's thread
            self.error = exc


@dataclass(frozen=True)
class Compared:
    at: float
    prometheus: Mapping[str, Answer]
    victoriametrics: Mapping[str, Answer]


def _remote_write_sent(client: httpx.Client, prometheus: str) -> float:
    """The newest sample timestamp Prometheus has delivered to VictoriaMetrics."""
    answer = _instant(
        client, prometheus,
        'prometheus_remote_storage_queue_highest_sent_timestamp_seconds'
        '{remote_name="victoriametrics"}',
        time.time(),
    )
    return max(answer.values(), default=0.0)


@pytest.fixture(scope="module")
def compared(
    stack: Stack, traffic: Traffic, drift_emitted: dict[str, str], http: httpx.Client
) -> Compared:
    """Every query's answer from both, at one evaluation time at the end of a steady load."""
    if "victoriametrics" not in stack.pids:
        pytest.fail("the stack runs no VictoriaMetrics: run `make backends` "
                    "(or set VICTORIAMETRICS_BIN)", pytrace=False)
    prometheus, victoriametrics = stack.urls.prometheus, stack.urls.victoriametrics
    # Every tenant, answer kind and vote kind once first: the series the load
    # feeds all exist before the window starts.
    for tenant, stream in SteadyLoad.PLAN:
        answer = traffic.ask(tenant, stream)
        for vote in SteadyLoad.VOTES:
            traffic.feedback(tenant, answer.trace_id, vote)
    with SteadyLoad(traffic) as load:
        time.sleep(LOAD_S)
        at = time.time() - SCRAPE_S  # inside the load, not at its edge
    if load.error is not None:
        raise load.error
    assert load.asked >= LOAD_S / ASK_EVERY_S / 2, f"only {load.asked} answers in {LOAD_S}s"
    # Everything Prometheus scraped up to `at` (and a scrape after) has reached VictoriaMetrics.
    poll(lambda: _remote_write_sent(http, prometheus), lambda sent: sent >= at + SCRAPE_S,
         timeout=METRIC_TIMEOUT_S, what="Prometheus' remote write to catch up")
    queries = {q.id: q.expr for q in PANELS + RULES}
    queries |= {f"counter/{name}": name for name in COUNTERS}
    # MetricsQL's formula, evaluated by Prometheus on its own samples (exact reference).
    formulas = {f"formula/{q.id}": metricsql_in_promql(q.expr)
                for q in PANELS + RULES if q.rated}
    # nocache: VictoriaMetrics' rollup cache must not answer from an earlier, partial read.
    return Compared(
        at,
        {key: _instant(http, prometheus, expr, at)
         for key, expr in (queries | formulas).items()},
        {key: _instant(http, victoriametrics, expr, at, nocache="1")
         for key, expr in queries.items()},
    )


def _mismatches(
    prometheus: Answer,
    victoriametrics: Answer,
    rel: float,
    abs_: float,
    *,
    zero_or_absent: bool = False,
) -> list[str]:
    """Series missing on one side or differing beyond the tolerance.

    ``zero_or_absent``: for rates, a series one engine answers 0 and the other
    not at all is no difference: VictoriaMetrics looks back to the last sample
    before the window, so a series that stopped (an expired one of another
    test, say) still gets a rate of 0 there, where Prometheus needs two samples
    inside the window. Any other value must be on both sides.
    """
    problems = []
    for labels in prometheus.keys() | victoriametrics.keys():
        p, v = prometheus.get(labels), victoriametrics.get(labels)
        if zero_or_absent and {p, v} in ({None, 0.0}, {None, -0.0}):
            continue
        if p is None or v is None:
            problems.append(f"{dict(labels)}: Prometheus {p}, VictoriaMetrics {v}")
        elif not math.isclose(p, v, rel_tol=rel, abs_tol=abs_):
            problems.append(f"{dict(labels)}: Prometheus {p:.6g}, VictoriaMetrics {v:.6g}")
    return problems


def _fed_by_the_load(labels: frozenset[tuple[str, str]]) -> bool:
    """A series of the steady load's tenants and data source, not one another test
    left behind: a recording rule's output whose inputs stopped is stale (absent)
    in Prometheus, while VictoriaMetrics still answers its last value."""
    found = dict(labels)
    return (found.get("tenant_id", TENANTS[0]) in TENANTS
            and found.get("gen_ai_data_source_id", DATA_SOURCE) == DATA_SOURCE)


def _live(answer: Answer) -> Answer:
    return {labels: value for labels, value in answer.items() if _fed_by_the_load(labels)}


def _check(query: Query, compared: Compared) -> None:
    prometheus = _live(compared.prometheus[query.id])
    vm = _live(compared.victoriametrics[query.id])
    if query.sporadic:  # the series, not their values: see Query.sporadic
        problems = [f"{dict(labels)}: Prometheus {prometheus[labels]:.6g}, VictoriaMetrics none"
                    for labels in prometheus.keys() - vm.keys()]
    elif query.rated and query.quantile:
        # Values: test_victoriametrics_computes_rates_as_metricsql_documents.
        problems = _mismatches(prometheus, vm, math.inf, math.inf, zero_or_absent=True)
    elif query.rated:
        absolute = EVENTS_PER_SCRAPE if query.counts_events else RATE_ABS_TOLERANCE
        problems = _mismatches(prometheus, vm, RATE_TOLERANCE, absolute, zero_or_absent=True)
    else:
        problems = _mismatches(prometheus, vm, EXACT, 0.0)
    assert not problems, f"{query.expr}\n" + "\n".join(sorted(problems)[:10])


def test_the_queries_and_counters_are_collected() -> None:
    assert len(PANELS) == len(PANEL_QUERIES) >= 40
    assert sum(1 for q in RULES if "/alert/" in q.id) >= 15
    assert {"traces_span_metrics_calls_total", "llm_cost_usd_total",
            "rag_feedback_total"} <= set(COUNTERS)
    # Windows past the data's age are compared at WINDOW (see the module docstring).
    clamped = clamp_windows("rate(x[6h] offset 1h) + rate(y[30s])")
    assert clamped == "rate(x[1m] offset 1h) + rate(y[30s])"
    events = [q.id for q in PANELS + RULES if q.counts_events]
    assert events == ["otel-ml-rag-quality/Similarity score distribution/A",
                      "otel-ml-streaming/TTFT distribution/A",
                      "rag/alert/HallucinationRateHigh/7"], events  # sporadic: series only
    assert metricsql_in_promql('sum(increase(a{k="v"}[1m])) / rate(b[5m])') == (
        'sum((a{k="v"} - a{k="v"} offset 1m)) / '
        "((b - b offset 5m) / (timestamp(b) - timestamp(b offset 5m)))"
    )


@pytest.mark.parametrize("name", COUNTERS)
def test_counter_totals_are_equal(name: str, compared: Compared) -> None:
    _check(Query(f"counter/{name}", name), compared)


@pytest.mark.parametrize("query", PANELS, ids=[q.id for q in PANELS])
def test_panel_answers_the_same(query: Query, compared: Compared) -> None:
    _check(query, compared)


@pytest.mark.parametrize("query", RULES, ids=[q.id for q in RULES])
def test_rule_answers_the_same(query: Query, compared: Compared) -> None:
    _check(query, compared)


def _largest_differences(compared: Compared, count: int = 8) -> list[tuple[float, str]]:
    """The largest relative differences of the rated queries (printed: the tolerance's margin)."""
    found = []
    for query in PANELS + RULES:
        if not query.rated or query.quantile:
            continue
        prometheus, vm = compared.prometheus[query.id], compared.victoriametrics[query.id]
        for labels in prometheus.keys() & vm.keys():
            p, v = prometheus[labels], vm[labels]
            if abs(p - v) > 1e-9 and math.isfinite(p) and math.isfinite(v):
                found.append((abs(p - v) / max(abs(p), abs(v)), f"{query.id} {p:.4g} vs {v:.4g}"))
    return sorted(found, reverse=True)[:count]


def test_the_comparison_had_data(compared: Compared) -> None:
    for difference, where in _largest_differences(compared):
        print(f"{difference:7.2%}  {where}")
    # The formula covered most rated answers (series older than the window).
    covered = [q for q in PANELS + RULES if q.rated and compared.prometheus[f"formula/{q.id}"]]
    assert len(covered) >= 40, len(covered)
    # Most panels draw something: the equalities above are not between empty answers.
    drawn = [key for key in compared.prometheus if key.startswith("otel-ml")
             and compared.prometheus[key]]
    assert len(drawn) >= len(PANELS) * 3 // 4, sorted(set(q.id for q in PANELS) - set(drawn))
    rated = [q for q in PANELS if q.rated and compared.prometheus[q.id]
             and any(v > 0 for v in compared.prometheus[q.id].values())]
    assert len(rated) >= 20, "too few rate panels with a non-zero answer to compare"
    # Counters that only count failures may not exist; the load's own must.
    counted = [name for name in COUNTERS if compared.prometheus[f"counter/{name}"]]
    assert len(counted) >= len(COUNTERS) * 3 // 4, sorted(set(COUNTERS) - set(counted))



@pytest.mark.parametrize("query", [q for q in PANELS + RULES if q.rated and not q.sporadic],
                         ids=[q.id for q in PANELS + RULES if q.rated and not q.sporadic])
def test_victoriametrics_computes_rates_as_metricsql_documents(
    query: Query, compared: Compared
) -> None:
    reference = compared.prometheus[f"formula/{query.id}"]
    vm = compared.victoriametrics[query.id]
    # Only series that had a sample before the window, which the formula needs: a
    # series born inside it (another test's, say) starts from its first sample on
    # VictoriaMetrics, which PromQL cannot select; test_panel_answers_the_same and
    # test_rule_answers_the_same still compare it with Prometheus' own answer.
    problems = _mismatches(reference, {k: v for k, v in vm.items() if k in reference},
                           1e-6, 1e-12)
    assert not problems, f"{metricsql_in_promql(query.expr)}\n" + "\n".join(sorted(problems)[:10])
