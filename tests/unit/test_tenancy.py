"""Tenants: baggage, copied onto spans, trusted at the edge, capped on metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

import otel_ml
from otel_ml import _safety, semconv
from otel_ml.tenancy import TenantCap
from otel_ml.testing import Capture


@contextmanager
def inbound_baggage(header: str) -> Iterator[None]:
    """The context a server sees after extracting a client's ``baggage`` header."""
    token = context.attach(W3CBaggagePropagator().extract({"baggage": header}))
    try:
        yield
    finally:
        context.detach(token)


def _tenant_values(capture: Capture, metric: str) -> set[Any]:
    return {(p.attributes or {}).get(semconv.TENANT_ID) for p in capture.points(metric)}


def _priced_call(telemetry: otel_ml.Telemetry) -> None:
    with telemetry.generation("gpt-4o-mini", "openai") as g:
        g.usage(input_tokens=10, output_tokens=5)


# --- baggage and spans ---------------------------------------------------------------------------


def test_tenant_sets_baggage_for_the_block_only() -> None:
    assert otel_ml.current_tenant() is None
    with otel_ml.tenant("acme") as tenant_id:
        assert tenant_id == "acme"
        assert otel_ml.current_tenant() == "acme"
        assert baggage.get_baggage(semconv.TENANT_ID) == "acme"
    assert otel_ml.current_tenant() is None


def test_nested_tenants_restore_the_outer_one() -> None:
    with otel_ml.tenant("outer"):
        with otel_ml.tenant("inner"):
            assert otel_ml.current_tenant() == "inner"
        assert otel_ml.current_tenant() == "outer"


async def test_async_with_tenant() -> None:
    async with otel_ml.tenant("acme") as tenant_id:
        assert tenant_id == "acme"
        assert otel_ml.current_tenant() == "acme"
    assert otel_ml.current_tenant() is None


def test_tenant_is_copied_onto_every_span(otel_capture: Capture) -> None:
    tracer = otel_capture.telemetry.tracer
    with otel_ml.tenant("acme"):
        with tracer.start_as_current_span("vector db query"):  # not an otel_ml span
            pass
        with otel_ml.retrieval(data_source="docs") as r:
            r.record([("a", 0.5)])
        _priced_call(otel_capture.telemetry)
        with otel_ml.inference(model="m") as p:
            p.prediction(1)
    with tracer.start_as_current_span("after the block"):
        pass

    spans = {span.name: dict(span.attributes or {}) for span in otel_capture.spans()}
    assert set(spans) == {
        "vector db query",
        "retrieval docs",
        "chat gpt-4o-mini",
        "inference m",
        "after the block",
    }
    for name, attributes in spans.items():
        expected = None if name == "after the block" else "acme"
        assert attributes.get(semconv.TENANT_ID) == expected, name


def test_tenant_is_on_metric_attributes(otel_capture: Capture) -> None:
    with otel_ml.tenant("acme"):
        _priced_call(otel_capture.telemetry)
        with otel_ml.retrieval(data_source="docs") as r:
            r.record([("a", 0.5)])
        otel_ml.feedback(trace_id="0af7651916cd43dd8448eb211c80319c", kind="thumbs_up")

    for metric in (
        semconv.METRIC_TOKEN_USAGE,
        semconv.METRIC_OPERATION_DURATION,
        semconv.METRIC_COST,
        semconv.METRIC_RETRIEVAL_DOCUMENT_COUNT,
        semconv.METRIC_FEEDBACK,
    ):
        assert _tenant_values(otel_capture, metric) == {"acme"}, metric


# --- the edge overwrites untrusted tenants -------------------------------------------------------


def test_tenant_overwrites_an_inbound_tenant(otel_capture: Capture) -> None:
    tracer = otel_capture.telemetry.tracer
    with inbound_baggage("tenant.id=evil-corp,other=kept"):
        with tracer.start_as_current_span("POST /answer"):  # the HTTP server span
            assert otel_ml.current_tenant() == "evil-corp"
            with otel_ml.tenant("acme"):
                assert otel_ml.current_tenant() == "acme"
                assert baggage.get_baggage("other") == "kept"
                _priced_call(otel_capture.telemetry)
        assert otel_ml.current_tenant() == "evil-corp"

    server = otel_capture.span("POST /answer")
    assert (server.attributes or {}).get(semconv.TENANT_ID) == "acme"
    generation = otel_capture.span("chat gpt-4o-mini")
    assert (generation.attributes or {}).get(semconv.TENANT_ID) == "acme"
    assert _tenant_values(otel_capture, semconv.METRIC_COST) == {"acme"}


def test_an_invalid_edge_tenant_does_not_leave_the_inbound_one_in_place() -> None:
    """The edge decides the tenant. If its value is rejected, the client's
    baggage must not become the tenant by default."""
    with inbound_baggage("tenant.id=evil-corp"), otel_ml.tenant("not valid!"):
        assert otel_ml.current_tenant() != "evil-corp"


@pytest.mark.parametrize(
    "tenant_id",
    ["", "has space", "x" * 129, "comma,separated", "key=value", "semi;colon", "ümlaut", "\n"],
)
def test_invalid_tenant_ids_are_refused_without_raising(
    otel_capture: Capture, tenant_id: str
) -> None:
    with otel_ml.tenant(tenant_id) as entered:
        assert entered is None
        assert otel_ml.current_tenant() is None
        _priced_call(otel_capture.telemetry)

    span = otel_capture.span("chat gpt-4o-mini")
    assert semconv.TENANT_ID not in (span.attributes or {})


@pytest.mark.parametrize("tenant_id", [None, 42, b"acme", ["acme"]])
def test_non_str_tenant_ids_are_refused_without_raising(tenant_id: Any) -> None:
    with otel_ml.tenant(tenant_id) as entered:
        assert entered is None
        assert otel_ml.current_tenant() is None


@pytest.mark.parametrize("tenant_id", ["a", "acme-corp_01", "org:team/unit", "u@x.io", "x" * 128])
def test_valid_tenant_ids(tenant_id: str) -> None:
    with otel_ml.tenant(tenant_id) as entered:
        assert entered == tenant_id
        assert otel_ml.current_tenant() == tenant_id


# --- the metric cap ------------------------------------------------------------------------------


def test_tenants_beyond_the_cap_fold_into_overflow_on_metrics_only(
    otel_capture_factory: Callable[..., Capture],
) -> None:
    capture = otel_capture_factory(max_tenants=3)
    tenants = [f"tenant-{i}" for i in range(5)]
    for tenant_id in tenants:
        with otel_ml.tenant(tenant_id):
            _priced_call(capture.telemetry)

    kept = set(tenants[:3])
    for metric in (semconv.METRIC_COST, semconv.METRIC_TOKEN_USAGE):
        assert _tenant_values(capture, metric) == kept | {semconv.TENANT_OVERFLOW}, metric
    overflow = {semconv.TENANT_ID: semconv.TENANT_OVERFLOW}
    single_cost = capture.metric_sum(semconv.METRIC_COST, {semconv.TENANT_ID: "tenant-0"})
    assert single_cost > 0
    assert capture.metric_sum(semconv.METRIC_COST, overflow) == pytest.approx(2 * single_cost)
    span_tenants = [(s.attributes or {}).get(semconv.TENANT_ID) for s in capture.spans()]
    assert span_tenants == tenants  # spans keep the real ids


def test_a_tenant_keeps_its_slot_once_seen(otel_capture_factory: Callable[..., Capture]) -> None:
    capture = otel_capture_factory(max_tenants=2)
    for tenant_id in ("a", "b", "c", "a", "d", "b"):
        with otel_ml.tenant(tenant_id):
            _priced_call(capture.telemetry)

    kept = {semconv.TENANT_ID: "a"}
    assert capture.metric_count(semconv.METRIC_OPERATION_DURATION, kept) == 2
    overflow = {semconv.TENANT_ID: semconv.TENANT_OVERFLOW}
    assert capture.metric_count(semconv.METRIC_OPERATION_DURATION, overflow) == 2


def test_zero_max_tenants_folds_every_tenant(otel_capture_factory: Callable[..., Capture]) -> None:
    capture = otel_capture_factory(max_tenants=0)
    with otel_ml.tenant("acme"):
        _priced_call(capture.telemetry)

    assert _tenant_values(capture, semconv.METRIC_COST) == {semconv.TENANT_OVERFLOW}
    assert (capture.span("chat gpt-4o-mini").attributes or {})[semconv.TENANT_ID] == "acme"


def test_metric_series_stay_bounded_under_a_tenant_explosion(
    otel_capture_factory: Callable[..., Capture],
) -> None:
    capture = otel_capture_factory(max_tenants=10)
    for i in range(1_000):
        with otel_ml.tenant(f"t{i}"):
            _priced_call(capture.telemetry)

    for metric in (
        semconv.METRIC_COST,
        semconv.METRIC_OPERATION_DURATION,
        semconv.METRIC_TOKEN_USAGE,
    ):
        assert len(_tenant_values(capture, metric)) == 11, metric
    assert len(capture.points(semconv.METRIC_COST)) == 11
    assert len(capture.points(semconv.METRIC_TOKEN_USAGE)) == 22  # input + output
    assert capture.metric_count(semconv.METRIC_OPERATION_DURATION) == 1_000


def test_cap_is_exact_under_concurrent_tenants() -> None:
    cap = TenantCap(50)
    kept: list[str] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        for i in range(200):
            value = f"tenant-{offset}-{i}"
            if cap.fold_tenant(value) == value:
                with lock:
                    kept.append(value)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(cap) == 50
    assert len(kept) == 50
    assert cap.fold_tenant(kept[0]) == kept[0]
    assert cap.fold_tenant("latecomer") == semconv.TENANT_OVERFLOW
    assert cap.fold_tenant(None) is None


def test_warnings_about_bad_tenants_do_not_grow_without_bound(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh registry, so this test neither depends on nor exhausts the
    # process-wide one other tests may expect warnings from.
    monkeypatch.setattr(_safety, "_reported", set())
    caplog.set_level(logging.WARNING, logger="otel_ml")
    for i in range(1_000):
        with otel_ml.tenant(f"bad tenant {i}"):
            pass

    warnings = [r for r in caplog.records if r.name == "otel_ml" and r.levelno >= logging.WARNING]
    assert 0 < len(warnings) <= 256
