"""The pytest plugin: registration, isolated captures, and the finders users
call in their own tests."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import HistogramDataPoint

import otel_ml
from otel_ml import semconv
from otel_ml import telemetry as telemetry_module
from otel_ml.testing import Capture

pytest_plugins = ["pytester"]


def _registered_entry_points() -> list[str]:
    return [ep.value for ep in entry_points(group="pytest11") if ep.value.startswith("otel_ml")]


def _plugin_args() -> list[str]:
    """Inner runs get the plugin from the entry point when otel-ml is installed,
    else load it by name (loading it both ways would register it twice)."""
    return [] if _registered_entry_points() else ["-p", "otel_ml.testing"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The inner tests are sync: pytest-asyncio would only warn about its config.
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", *_plugin_args(), *args)


def test_registered_through_the_pytest11_entry_point() -> None:
    # `make test` installs the package (pip install -e .), as users do.
    assert _registered_entry_points() == ["otel_ml.testing"]


def test_users_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import otel_ml

        def answer_question(question):
            with otel_ml.tenant("acme"):
                with otel_ml.generation(model="gpt-4o-mini", provider="openai") as g:
                    g.usage(input_tokens=1000, output_tokens=100)

        def test_answer_is_priced(otel_capture):
            answer_question("what is RAG?")
            span = otel_capture.span("chat gpt-4o-mini")
            cost = span.attributes["gen_ai.usage.cost.amount"]
            assert cost > 0
            assert otel_capture.metric_sum("llm.cost.usd") == cost
            assert otel_capture.metric_count("gen_ai.client.operation.duration") == 1
            assert otel_capture.spans(attributes={"tenant.id": "acme"}) == [span]
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)


def test_each_test_gets_a_fresh_capture_and_globals_stay_untouched(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import otel_ml
        from opentelemetry import metrics, trace
        from otel_ml import telemetry

        TRACER_PROVIDER = trace.get_tracer_provider()
        METER_PROVIDER = metrics.get_meter_provider()
        SEEN = []

        def _one_span():
            with otel_ml.inference(model="m") as p:
                p.prediction(1)

        def test_first(otel_capture):
            _one_span()
            SEEN.append(otel_capture.telemetry)
            assert len(otel_capture.spans()) == 1
            assert otel_capture.metric_sum("prediction_count") == 1

        def test_second(otel_capture):
            _one_span()
            assert otel_capture.telemetry is not SEEN[0]
            assert len(otel_capture.spans()) == 1
            assert otel_capture.metric_sum("prediction_count") == 1

        def test_after_the_fixture():
            assert telemetry.current() is not SEEN[0]
            assert trace.get_tracer_provider() is TRACER_PROVIDER
            assert metrics.get_meter_provider() is METER_PROVIDER
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=3)


def test_factory_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        import otel_ml

        def test_options(otel_capture_factory):
            capture = otel_capture_factory(
                capture_content=True,
                pricing={"aliases": {"eu-chat": "gpt-4o"}},
                max_tenants=1,
            )
            for tenant in ("a", "b"):
                with otel_ml.tenant(tenant):
                    with otel_ml.generation(model="eu-chat", provider="azure", prompt="hi") as g:
                        g.usage(input_tokens=10, output_tokens=10)
            spans = capture.spans("chat eu-chat")
            assert len(spans) == 2
            assert json.loads(spans[0].attributes["gen_ai.input.messages"])[0]["role"] == "user"
            assert spans[0].attributes["gen_ai.usage.cost.amount"] > 0
            tenants = {p.attributes["tenant.id"] for p in capture.points("llm.cost.usd")}
            assert tenants == {"a", "__overflow__"}

        def test_latest_capture_is_current(otel_capture_factory):
            first = otel_capture_factory()
            second = otel_capture_factory()
            with otel_ml.inference(model="m"):
                pass
            assert first.spans() == []
            assert len(second.spans()) == 1
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2)


def test_a_failing_assertion_names_the_spans_it_saw(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import otel_ml

        def test_wrong_name(otel_capture):
            with otel_ml.retrieval(data_source="docs"):
                pass
            otel_capture.span("retrieval faq")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [r".*expected 1 span 'retrieval faq', found 0; spans: \['retrieval docs'\]"]
    )


# --- the helpers, used directly ------------------------------------------------------------------


def test_span_requires_exactly_one_match(otel_capture: Capture) -> None:
    for _ in range(2):
        with otel_ml.inference(model="m"):
            pass
    with pytest.raises(AssertionError, match="expected 1 span 'inference m', found 2"):
        otel_capture.span("inference m")


def test_spans_filters_by_name_and_attributes(otel_capture: Capture) -> None:
    for tenant_id in ("a", "b"):
        with otel_ml.tenant(tenant_id), otel_ml.retrieval(data_source="docs"):
            pass
    with otel_ml.inference(model="m"):
        pass

    assert len(otel_capture.spans()) == 3
    assert len(otel_capture.spans("retrieval docs")) == 2
    only_b = otel_capture.spans(attributes={semconv.TENANT_ID: "b"})
    assert [(s.name, (s.attributes or {})[semconv.TENANT_ID]) for s in only_b] == [
        ("retrieval docs", "b")
    ]
    assert otel_capture.spans("inference m", {semconv.TENANT_ID: "a"}) == []


def test_points_sum_and_count(otel_capture: Capture) -> None:
    for tenant_id, tokens in (("a", 100), ("b", 300), ("a", 50)):
        with otel_ml.tenant(tenant_id), otel_ml.generation("gpt-4o-mini", "openai") as g:
            g.usage(input_tokens=tokens, output_tokens=1)

    input_a = {semconv.TENANT_ID: "a", semconv.GEN_AI_TOKEN_TYPE: "input"}
    points = otel_capture.points(semconv.METRIC_TOKEN_USAGE, input_a)
    assert len(points) == 1 and isinstance(points[0], HistogramDataPoint)
    assert otel_capture.metric_sum(semconv.METRIC_TOKEN_USAGE, input_a) == 150
    assert otel_capture.metric_count(semconv.METRIC_TOKEN_USAGE, input_a) == 2
    inputs = {semconv.GEN_AI_TOKEN_TYPE: "input"}
    assert otel_capture.metric_sum(semconv.METRIC_TOKEN_USAGE, inputs) == 450
    cost_points = otel_capture.points(semconv.METRIC_COST)
    assert len(cost_points) == 2  # one counter series per tenant
    assert otel_capture.metric_count(semconv.METRIC_COST) == 0  # counters have no count
    assert otel_capture.points("no.such.metric") == []
    assert otel_capture.metric_sum("no.such.metric") == 0


def test_events_finds_evaluation_results_parented_to_the_generation(
    otel_capture: Capture,
) -> None:
    from otel_ml.evaluation import EvaluationInput

    with otel_ml.generation("gpt-4o-mini", "openai") as g:
        g.usage(input_tokens=10, output_tokens=5)
    data = EvaluationInput(answer="Paris is the capital of France.",
                           contexts=["Paris is the capital of France."], model="gpt-4o-mini")
    (result,) = otel_ml.evaluate(g, data)

    (event,) = otel_capture.events(semconv.EVENT_GEN_AI_EVALUATION_RESULT)
    attributes = event.log_record.attributes or {}
    assert attributes[semconv.GEN_AI_EVALUATION_NAME] == "groundedness"
    assert attributes[semconv.GEN_AI_EVALUATION_SCORE_VALUE] == result.score
    assert attributes[semconv.GEN_AI_EVALUATION_SCORE_LABEL] == result.label
    span = otel_capture.span("chat gpt-4o-mini")
    assert span.context is not None
    assert event.log_record.trace_id == span.context.trace_id
    assert event.log_record.span_id == span.context.span_id
    # Filters: by attribute values, and an event name nothing emitted.
    assert otel_capture.events(attributes={semconv.GEN_AI_EVALUATION_NAME: "groundedness"}) == [
        event]
    assert otel_capture.events(attributes={semconv.GEN_AI_EVALUATION_NAME: "other"}) == []
    assert otel_capture.events("no.such.event") == []
    assert otel_capture.metric_count(semconv.METRIC_EVALUATION_SCORE) == 1


def test_events_leaves_out_plain_log_records(otel_capture: Capture) -> None:
    logger = otel_capture.telemetry.logger_provider.get_logger("app")
    logger.emit(body="a plain log line")
    logger.emit(event_name="app.thing", attributes={"k": "v"})
    assert [e.log_record.event_name for e in otel_capture.events()] == ["app.thing"]
    assert len(otel_capture.logs.get_finished_logs()) == 2


def test_clear_forgets_spans_and_events(otel_capture: Capture) -> None:
    with otel_ml.inference(model="m"):
        pass
    otel_capture.telemetry.logger_provider.get_logger("app").emit(event_name="app.thing")
    otel_capture.clear()
    assert otel_capture.spans() == []
    assert otel_capture.events() == []


def test_fixture_is_otel_mls_current_telemetry(otel_capture: Capture) -> None:
    assert telemetry_module.current() is otel_capture.telemetry
    assert trace.get_tracer_provider() is not otel_capture.telemetry.tracer_provider
    assert metrics.get_meter_provider() is not otel_capture.telemetry.meter_provider


def test_factory_capture_is_current(otel_capture_factory: Callable[..., Capture]) -> None:
    capture = otel_capture_factory(max_tenants=5)
    assert telemetry_module.current() is capture.telemetry
