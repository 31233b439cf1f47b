"""``configure()`` and the :class:`Telemetry` handle it returns.

Only the OpenTelemetry API is imported here. The SDK, the exporters and
protobuf (``otel-ml[otlp]``) are imported by ``configure()`` when it builds
providers, so an app that brings its own providers never loads them.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import Logger, LoggerProvider
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider
from opentelemetry.util.types import AttributeValue

from otel_ml import _shutdown as stopping
from otel_ml._safety import missing_extra, report, warn_input
from otel_ml._version import __version__
from otel_ml.cardinality import CardinalityCap
from otel_ml.content import ContentPolicy, max_length_from_env
from otel_ml.feedback import record_feedback
from otel_ml.metrics import Instruments
from otel_ml.pricing import PriceTable, PricingSource
from otel_ml.semconv import LABEL_OVERFLOW
from otel_ml.spans import GenerationSpan, InferenceSpan, Recorder, RetrievalSpan, new_label_cap
from otel_ml.tenancy import TenantCap, tenant

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.metrics.view import View
    from opentelemetry.sdk.trace import SpanProcessor

    from otel_ml._delivery import Delivery
    from otel_ml._logging import LogBridge
    from otel_ml.evaluation import (
        EvaluationInput,
        EvaluationRecorder,
        EvaluationResult,
        Evaluations,
        Evaluator,
    )
    from otel_ml.instrumentation._enrich import EnrichingSpanProcessor
    from otel_ml.providers import Destination

logger = logging.getLogger("otel_ml")

_SCOPE = "otel_ml"
# The OTel spec's switch for the whole SDK (general SDK configuration).
_SDK_DISABLED_ENV = "OTEL_SDK_DISABLED"
_MAX_MODELS = 100  # distinct model names with their own prediction-label cap
DEFAULT_SHUTDOWN_TIMEOUT = 5.0  # seconds: inside Kubernetes' 30 s grace and the demo's 15 s
SHUTDOWN_TIMEOUT_ENV = "OTEL_ML_SHUTDOWN_TIMEOUT"
DEFAULT_RETRY_SECONDS = 30.0  # a 15 s outage at the demo's rate loses nothing
RETRY_SECONDS_ENV = "OTEL_ML_EXPORT_RETRY_SECONDS"


class Telemetry:
    """One configured otel-ml pipeline: its providers, instruments and settings.

    Module-level functions (``otel_ml.generation`` ...) use the most recently
    configured instance; call the methods on a specific instance to keep two
    pipelines apart in one process.
    """

    tenant = staticmethod(tenant)

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        *,
        owns_providers: bool | tuple[bool, bool],
        capture_content: bool = False,
        prices: PriceTable | None = None,
        max_tenants: int = 100,
        destination: Destination | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        delivery: Delivery | None = None,
        logger_provider: LoggerProvider | None = None,
        owns_logger_provider: bool = False,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        # Events (gen_ai.evaluation.result) go through the Logs API; without a
        # provider of its own, otel-ml uses the global one (no-op unless set).
        self.logger_provider = (
            logger_provider if logger_provider is not None else _logs.get_logger_provider()
        )
        self._owns_logger = owns_logger_provider
        self.destination = destination
        self.shutdown_timeout = shutdown_timeout
        self.delivery = delivery
        # (tracer, meter): a caller may pass one provider and let otel-ml build the other.
        self._owns = (
            owns_providers if isinstance(owns_providers, tuple) else (owns_providers,) * 2
        )
        self.tracer: Tracer = tracer_provider.get_tracer(_SCOPE, __version__)
        self.meter: Meter = meter_provider.get_meter(_SCOPE, __version__)
        self.logger: Logger = self.logger_provider.get_logger(_SCOPE, __version__)
        self._evaluation: EvaluationRecorder | None = None
        self._runners: list[Evaluations] = []
        self._recorder = Recorder(
            tracer=self.tracer,
            instruments=Instruments.create(self.meter),
            tenants=TenantCap(max_tenants),
            prices=prices if prices is not None else PriceTable.load(),
            content=ContentPolicy(bool(capture_content), max_length_from_env()),
        )
        self._labels: dict[str, CardinalityCap] = {}
        self._models = CardinalityCap(_MAX_MODELS, LABEL_OVERFLOW)
        self._shutdown = False
        # configure(logs=...): the handler routing Python logging here, if any.
        self._log_handler: LogBridge | None = None

    @property
    def prices(self) -> PriceTable:
        return self._recorder.prices

    @property
    def capture_content(self) -> bool:
        return self._recorder.content.enabled

    def metric_attributes(
        self, attributes: Mapping[str, AttributeValue] | None = None
    ) -> dict[str, AttributeValue]:
        """``attributes`` plus the current ``tenant.id``, under the ``max_tenants``
        cap, for metrics of your own that should break down by tenant."""
        result = dict(attributes or {})
        self._recorder.tenant_attribute(result)
        return result

    def retrieval(
        self,
        data_source: str,
        query: str | None = None,
        top_k: int | None = None,
        provider: str | None = None,
    ) -> RetrievalSpan:
        """A ``retrieval {data_source}`` span; call ``.record(hits)`` inside.

        ``provider`` is the GenAI provider serving the search (``openai`` for an
        OpenAI vector store), as ``gen_ai.provider.name``; none for your own index.
        """
        return RetrievalSpan(
            self._recorder, data_source, query=query, top_k=top_k, provider=provider
        )

    def generation(
        self,
        model: str,
        provider: str,
        prompt: Any = None,
        stream: bool = False,
        operation: str = "chat",
    ) -> GenerationSpan:
        """A ``{operation} {model}`` span with tokens, cost, TTFT and TBT."""
        return GenerationSpan(
            self._recorder, model, provider, prompt=prompt, stream=stream, operation=operation
        )

    def inference(self, model: str) -> InferenceSpan:
        """A classic-model prediction: ``prediction_count`` and ``inference_latency``."""
        key = self._models.fold(model) if isinstance(model, str) else LABEL_OVERFLOW
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels.setdefault(key, new_label_cap())
        return InferenceSpan(self._recorder, model, labels)

    def feedback(
        self,
        trace_id: Any,
        kind: str | None = None,
        score: float | None = None,
        span_id: Any = None,
    ) -> None:
        """Record user feedback on the answer produced by ``trace_id``."""
        try:
            record_feedback(self._recorder, trace_id, kind, score=score, span_id=span_id)
        except Exception as exc:  # telemetry never breaks the app
            report("feedback()", exc)

    def evaluate(
        self,
        target: Any,
        data: EvaluationInput,
        evaluators: Sequence[Evaluator] | None = None,
    ) -> list[EvaluationResult]:
        """Evaluate one generation now (inline) and emit each result as a
        ``gen_ai.evaluation.result`` event and on ``llm.evaluation.score``.

        ``target``: the evaluated generation's span (an OTel span, its
        SpanContext or an otel-ml GenerationSpan: the event is parented to it),
        its ``gen_ai.response.id`` as a str (evaluated later: no parent), or
        None for the current span. ``evaluators``: default ``[Groundedness()]``
        (offline). Returns the results; never raises."""
        try:
            from otel_ml.evaluation._run import evaluate_and_emit

            return evaluate_and_emit(self._evaluation_recorder(), target, data, evaluators)
        except Exception as exc:  # telemetry never breaks the app
            report("evaluate()", exc)
            return []

    def evaluations(
        self,
        evaluators: Sequence[Evaluator] | None = None,
        *,
        sample_rate: float = 1.0,
        max_queue: int = 1000,
        concurrency: int = 2,
        timeout: float = 30.0,
    ) -> Evaluations:
        """An off-request-path evaluation runner on this Telemetry: ``submit()``
        samples, queues (bounded; drops counted on ``llm.evaluation.dropped``)
        and returns at once; ``concurrency`` workers evaluate, each evaluator
        under ``timeout`` seconds. Shut down with this Telemetry."""
        from otel_ml.evaluation import Evaluations

        try:
            runner = Evaluations(
                self._evaluation_recorder(), evaluators, sample_rate=sample_rate,
                max_queue=max_queue, concurrency=concurrency, timeout=timeout,
            )
        except (TypeError, ValueError) as exc:  # a bad setting: the defaults, said once
            warn_input(f"evaluations(): {exc}; using the defaults")
            runner = Evaluations(self._evaluation_recorder(), evaluators)
        self._runners.append(runner)
        return runner

    def _evaluation_recorder(self) -> EvaluationRecorder:
        if self._evaluation is None:
            from otel_ml.evaluation import EvaluationRecorder

            self._evaluation = EvaluationRecorder(self.logger, self.meter, self._recorder)
        return self._evaluation

    def enrichment_processor(self, export: SpanProcessor | None = None) -> SpanProcessor:
        """For a tracer provider of your own: the span processor that gives
        other GenAI instrumentations' spans ``tenant.id`` and cost, and records
        ``llm.cost.usd`` and ``gen_ai.client.token.usage`` per tenant for them.
        Pass it your exporting processor (``BatchSpanProcessor(exporter)``) so
        the cost reaches the exporter; add it in place of that processor.
        ``configure()`` installs it itself on the providers it builds.
        Needs the OTel SDK (``otel-ml[otlp]``). See docs/enrichment.md."""
        from otel_ml.instrumentation._enrich import enrichment_processor

        return enrichment_processor(_SCOPE, self._recorder, export)

    @staticmethod
    def enrichment_views() -> list[View]:
        """For a meter provider of your own (``MeterProvider(views=...)``):
        drop the peers' tenant-less ``gen_ai.client.token.usage``, which otel-ml
        records per tenant instead, so that no sum counts a call twice."""
        from otel_ml.instrumentation._enrich import enrichment_views

        return enrichment_views()

    def _bound(self, seconds: object) -> float:
        return stopping.non_negative_seconds(
            seconds, "", self.shutdown_timeout, "the flush/shutdown timeout"
        )

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything recorded so far; True if all exports succeeded
        within ``timeout_millis`` (default: ``shutdown_timeout``). Returns at
        the bound even when the collector never answers."""
        timeout = self._bound(None if timeout_millis is None else _millis(timeout_millis))
        calls = [
            (f"force_flush() of the {kind} provider", _flush_call(provider, timeout))
            for kind, provider in (("tracer", self.tracer_provider),
                                   ("logger", self.logger_provider),
                                   ("meter", self.meter_provider))
            if getattr(provider, "force_flush", None) is not None
        ]
        return all(result is True for result in stopping.run_bounded(calls, timeout))

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then shut down the providers otel-ml created (never the
        caller's: those are only flushed), within ``timeout`` seconds (default:
        ``shutdown_timeout``, 5 s). True if everything finished in time; past the
        bound, what was not exported is lost and a warning says so."""
        if self._shutdown:
            return True
        self._shutdown = True
        _forget(self)
        stopping.forget(self)
        self._unroute_logs()  # before the logger provider stops: no record after it
        timeout = self._bound(timeout)
        started = time.monotonic()
        for runner in self._runners:  # their last results go out with the providers
            runner.shutdown(max(timeout / 2 - (time.monotonic() - started), 0.0))
        timeout = max(timeout - (time.monotonic() - started), 0.0)
        if self.delivery is not None:  # retries end at the bound, not at their window
            self.delivery.stop_by(time.monotonic() + timeout)
        calls = [
            (f"shutdown() of the {kind} provider",
             _shutdown_call(provider) if owned else _flush_call(provider, timeout))
            for kind, provider, owned in zip(
                ("tracer", "logger", "meter"),
                (self.tracer_provider, self.logger_provider, self.meter_provider),
                (self._owns[0], self._owns_logger, self._owns[1]),
                strict=True,
            )
        ]
        finished = all(result is not None for result in stopping.run_bounded(calls, timeout))
        if not finished:
            logger.warning(
                "otel-ml: shutdown stopped after its %.1f s bound (%s not answering?); "
                "telemetry not yet exported is lost", timeout,
                self.destination.describe() if self.destination else "the exporter",
            )
        return finished


    def _route_logs(self, target: bool | str) -> None:
        """Python logging (the root logger, or the one named ``target``) through
        this Telemetry's logger provider (``configure(logs=...)``)."""
        from otel_ml import _logging

        try:
            self._log_handler = _logging.attach(self.logger_provider, target)
        except Exception as exc:  # telemetry never breaks the app
            report("configure(logs=...)", exc)

    def _unroute_logs(self) -> None:
        handler, self._log_handler = self._log_handler, None
        if handler is not None:
            from otel_ml import _logging

            _logging.detach(handler)


def _millis(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000
    return value  # not a number: _bound says so and uses the default


def _flush_call(provider: Any, timeout: float) -> Any:
    flush = getattr(provider, "force_flush", None)
    if flush is None:
        return lambda: True
    return lambda: flush(max(int(timeout * 1000), 0))


def _shutdown_call(provider: Any) -> Any:
    stop = getattr(provider, "shutdown", None)  # API providers lack it
    return stop if stop is not None else (lambda: True)


_lock = threading.Lock()
_configured: dict[tuple[Any, ...], Telemetry] = {}
_default: Telemetry | None = None


def configure(
    service_name: str | None = None,
    endpoint: str | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool = False,
    pricing: PricingSource = None,
    max_tenants: int = 100,
    enrich: bool = True,
    shutdown_timeout: float | None = None,
    export_retry_seconds: float | None = None,
    max_queue_size: int | None = None,
    flush_on_sigterm: bool = True,
    logger_provider: LoggerProvider | None = None,
    logs: bool | str | None = None,
) -> Telemetry:
    """Set up otel-ml and return its :class:`Telemetry`.

    - ``endpoint``: OTLP endpoint; None -> ``OTEL_EXPORTER_OTLP_ENDPOINT``;
      neither -> the embedded default (OTLP JSON lines in ``./otel-ml-data/``,
      or ``OTEL_ML_DATA_DIR``).
    - ``tracer_provider`` / ``meter_provider`` / ``logger_provider``: use
      yours; otel-ml then changes no global state and never shuts them down.
      The logger provider carries events (``gen_ai.evaluation.result``); when
      otel-ml builds a provider and you bring no logger provider, it builds one
      to the same destination; when you bring both tracer and meter providers
      and no logger provider, events go to the global one (no-op unless set).
    - ``capture_content``: put prompts, completions and queries on spans
      (opt-in; each string capped at ``OTEL_ML_CONTENT_MAX_LENGTH``, 8192).
    - ``pricing``: YAML/JSON path or mapping extending the bundled price table.
    - ``max_tenants``: distinct ``tenant.id`` values kept on metrics.
    - ``enrich``: give other GenAI instrumentations' spans (official
      ``opentelemetry-instrumentation-genai-*``, OpenInference, OpenLLMetry)
      tenant and cost, and count their calls on otel-ml's metrics; applies when
      otel-ml builds both providers (docs/enrichment.md for your own).
    - ``shutdown_timeout``: seconds ``shutdown()`` (and the flush at exit or on
      SIGTERM) may take; None -> ``OTEL_ML_SHUTDOWN_TIMEOUT`` -> 5.
    - ``export_retry_seconds``: how long one batch is retried while the
      collector is down; None -> ``OTEL_ML_EXPORT_RETRY_SECONDS`` -> 30.
    - ``max_queue_size``: spans held while exports fail; None ->
      ``OTEL_BSP_MAX_QUEUE_SIZE`` -> 2048. Spans past it are dropped and counted
      on ``otel_ml.export.dropped``.
    - ``flush_on_sigterm``: shut down (bounded) on SIGTERM, then end as SIGTERM
      would, when the process has no SIGTERM handler of its own.
    - ``logs``: route Python ``logging`` through the OTel logs SDK, on the
      logger provider above: True for the root logger, a name for that logger;
      None -> ``OTEL_ML_LOGS`` (``true``) -> off. Each record carries the
      trace and span ids and ``tenant.id``; body, extra fields and exception
      text are redacted. Off by default, for apps that ship their logs another
      way. Levels and other handlers are left as they are; the handler is
      removed at ``shutdown()``, and never added to a logger that already has one.

    Calling it again with the same arguments returns the same instance.
    """
    global _default
    service_name = _str_or_none(service_name, "service_name")
    endpoint = _str_or_none(endpoint, "endpoint")
    if not isinstance(max_tenants, int) or isinstance(max_tenants, bool) or max_tenants < 0:
        logger.warning("otel-ml: max_tenants must be a non-negative int; using 100")
        max_tenants = 100
    capture_content = capture_content is True
    enrich = enrich is not False
    export = _export_settings(shutdown_timeout, export_retry_seconds, max_queue_size,
                              flush_on_sigterm)
    from otel_ml._logging import logs_setting

    route_logs = logs_setting(logs)
    key = (service_name, endpoint, id(tracer_provider), id(meter_provider), capture_content,
           _pricing_key(pricing), max_tenants, enrich, export, id(logger_provider), route_logs)
    with _lock:
        existing = _configured.get(key)
        if existing is not None and not existing._shutdown:
            _default = existing
            return existing
        telemetry = _build_or_fall_back(service_name, endpoint, tracer_provider,
                                        meter_provider, capture_content, pricing, max_tenants,
                                        enrich, export, logger_provider)
        if route_logs is not False and not _sdk_disabled():
            telemetry._route_logs(route_logs)
        _configured[key] = telemetry
        _default = telemetry
    return telemetry


def _build_or_fall_back(
    service_name: str | None,
    endpoint: str | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    capture_content: bool,
    pricing: PricingSource,
    max_tenants: int,
    enrich: bool,
    export: ExportSettings,
    logger_provider: LoggerProvider | None = None,
) -> Telemetry:
    """:func:`_build`, or, when it cannot, a Telemetry on the providers that
    exist (the caller's, else the global ones): configure() never raises."""
    try:
        return _build(service_name, endpoint, tracer_provider, meter_provider,
                      capture_content, pricing, max_tenants, enrich, export, logger_provider)
    except ImportError as exc:
        missing_extra("configure()", exc, "otlp", "recording to the global OpenTelemetry "
                      "providers instead (no-op unless the app set them up)")
    except Exception as exc:
        report("configure()", exc)
    prices = _load_prices(pricing)
    try:
        return Telemetry(
            tracer_provider or trace.get_tracer_provider(),
            meter_provider or metrics.get_meter_provider(),
            owns_providers=False, capture_content=capture_content,
            prices=prices, max_tenants=max_tenants, shutdown_timeout=export.shutdown_timeout,
            logger_provider=logger_provider,
        )
    except Exception as exc:  # the caller's providers are broken: the global ones
        report("configure() with the given providers", exc)
        return Telemetry(
            trace.get_tracer_provider(), metrics.get_meter_provider(), owns_providers=False,
            capture_content=capture_content, prices=prices, max_tenants=max_tenants,
            shutdown_timeout=export.shutdown_timeout,
        )


def _build(
    service_name: str | None,
    endpoint: str | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    capture_content: bool,
    pricing: PricingSource,
    max_tenants: int,
    enrich: bool,
    export: ExportSettings,
    logger_provider: LoggerProvider | None = None,
) -> Telemetry:
    prices = _load_prices(pricing)
    if _sdk_disabled():
        return _disabled(tracer_provider, meter_provider, capture_content, prices, max_tenants,
                         logger_provider)
    owns = (tracer_provider is None, meter_provider is None)
    owns_logger = False
    destination = None
    delivery = None
    enrichment = None
    if tracer_provider is None or meter_provider is None:
        # Only on providers otel-ml builds both of: its view must sit on the
        # meter provider that the peers' metrics go to.
        if enrich and all(owns):
            from otel_ml.instrumentation._enrich import enrichment_processor

            enrichment = enrichment_processor(_SCOPE)
        tracer_provider, meter_provider, destination, delivery = _build_providers(
            service_name, endpoint, tracer_provider, meter_provider, export, enrichment
        )
        if logger_provider is None:
            logger_provider = _build_logger_provider(service_name, endpoint, tracer_provider)
            owns_logger = True
    telemetry = Telemetry(
        tracer_provider, meter_provider, owns_providers=owns, capture_content=capture_content,
        prices=prices, max_tenants=max_tenants, destination=destination,
        shutdown_timeout=export.shutdown_timeout, delivery=delivery,
        logger_provider=logger_provider, owns_logger_provider=owns_logger,
    )
    if delivery is not None:
        delivery.observe(telemetry.meter)
    if enrichment is not None:
        enrichment.bind(telemetry._recorder)
    if all(owns):
        _install_globals(telemetry)
    if any(owns):
        atexit.register(telemetry.shutdown)
        if export.flush_on_sigterm:
            stopping.flush_on_sigterm(telemetry)
    return telemetry


def _sdk_disabled() -> bool:
    return os.environ.get(_SDK_DISABLED_ENV, "").strip().lower() == "true"


def _disabled(
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    capture_content: bool,
    prices: PriceTable,
    max_tenants: int,
    logger_provider: LoggerProvider | None = None,
) -> Telemetry:
    """``OTEL_SDK_DISABLED=true``: no-op providers where otel-ml would build
    SDK ones, and nothing else (no exporter, file, thread, signal handler or
    global). Your own providers are kept; the OTel SDK disables itself too."""
    logger.warning("otel-ml: %s=true: telemetry is off (no spans, metrics or files)",
                   _SDK_DISABLED_ENV)
    return Telemetry(
        tracer_provider or trace.NoOpTracerProvider(),
        meter_provider or metrics.NoOpMeterProvider(),
        owns_providers=False, capture_content=capture_content,
        prices=prices, max_tenants=max_tenants,
        logger_provider=logger_provider or _logs.NoOpLoggerProvider(),
    )


def _build_providers(
    service_name: str | None,
    endpoint: str | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
    export: ExportSettings,
    enrichment: EnrichingSpanProcessor | None = None,
) -> tuple[TracerProvider, MeterProvider, Destination | None, Delivery]:
    """SDK providers for the signals the caller brought none for; imports the
    OTel SDK, so it runs only when one is needed."""
    from otel_ml import providers
    from otel_ml._delivery import Delivery

    resource = providers.build_resource(service_name)
    destination = None
    delivery = Delivery(export.retry_seconds, "the OTLP endpoint")
    if tracer_provider is None:
        destination = providers.resolve_destination(endpoint, "traces")
        delivery = Delivery(export.retry_seconds, destination.describe())
        tracer_provider = providers.build_tracer_provider(
            resource, destination, enrichment.wrap if enrichment is not None else None,
            delivery=delivery, max_queue_size=export.max_queue_size,
        )
        _announce(destination)
    if meter_provider is None:
        metrics_destination = providers.resolve_destination(endpoint, "metrics")
        meter_provider = providers.build_meter_provider(
            resource, metrics_destination,
            Telemetry.enrichment_views() if enrichment is not None else (),
            delivery=delivery,
        )
        if metrics_destination != destination:
            _announce(metrics_destination)
    return tracer_provider, meter_provider, destination, delivery


def _build_logger_provider(
    service_name: str | None, endpoint: str | None, tracer_provider: TracerProvider
) -> LoggerProvider:
    """An SDK logger provider for otel-ml's events, on the tracer provider's
    resource when otel-ml built that one (one service.instance.id for both)."""
    from otel_ml import providers

    resource = getattr(tracer_provider, "resource", None)
    if resource is None:
        resource = providers.build_resource(service_name)
    return providers.build_logger_provider(
        resource, providers.resolve_destination(endpoint, "logs")
    )


def _announce(destination: Destination) -> None:
    if destination.protocol == "file":
        logger.warning(
            "otel-ml: no OTLP endpoint set; writing %s (view with `otel-ml report %s`)",
            destination.describe(), destination.directory,
        )


@dataclass(frozen=True)
class ExportSettings:
    """configure()'s export and shutdown settings, validated."""

    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    max_queue_size: int | None = None  # None: OTEL_BSP_MAX_QUEUE_SIZE, else 2048
    flush_on_sigterm: bool = True


def _export_settings(
    shutdown_timeout: object, retry_seconds: object, max_queue_size: object,
    sigterm: object,
) -> ExportSettings:
    queue: int | None = None
    if max_queue_size is not None:
        if isinstance(max_queue_size, int) and not isinstance(max_queue_size, bool) \
                and max_queue_size > 0:
            queue = max_queue_size
        else:
            logger.warning("otel-ml: max_queue_size must be a positive int; got %r, "
                           "using OTEL_BSP_MAX_QUEUE_SIZE or 2048", max_queue_size)
    return ExportSettings(
        shutdown_timeout=stopping.non_negative_seconds(
            shutdown_timeout, SHUTDOWN_TIMEOUT_ENV, DEFAULT_SHUTDOWN_TIMEOUT, "shutdown_timeout"),
        retry_seconds=stopping.non_negative_seconds(
            retry_seconds, RETRY_SECONDS_ENV, DEFAULT_RETRY_SECONDS, "export_retry_seconds"),
        max_queue_size=queue,
        flush_on_sigterm=sigterm is not False,
    )


def _str_or_none(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    logger.warning("otel-ml: configure(%s=...) must be a str; got %s, ignored",
                   name, type(value).__name__)
    return None


def _install_globals(telemetry: Telemetry) -> None:
    """Make the first otel-ml-owned providers the process-wide ones, so that
    auto-instrumentation (FastAPI, httpx, ...) lands in the same pipeline.
    Providers someone else installed already are left alone."""
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    if not isinstance(trace.get_tracer_provider(), SdkTracerProvider):
        trace.set_tracer_provider(telemetry.tracer_provider)
    if not isinstance(metrics.get_meter_provider(), SdkMeterProvider):
        metrics.set_meter_provider(telemetry.meter_provider)
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider

    if telemetry._owns_logger and not isinstance(_logs.get_logger_provider(),
                                                  SdkLoggerProvider):
        _logs.set_logger_provider(telemetry.logger_provider)


def _load_prices(pricing: PricingSource) -> PriceTable:
    try:
        return PriceTable.load(pricing)
    except Exception as exc:  # a bad override must not take the app down
        logger.error("otel-ml: %s; using the bundled price table only", exc)
        return PriceTable.load()


def _pricing_key(pricing: PricingSource) -> Any:
    if pricing is None or isinstance(pricing, (str, Path)):
        return str(pricing)
    if isinstance(pricing, Mapping):
        return id(pricing)
    return repr(pricing)


def _forget(telemetry: Telemetry) -> None:
    global _default
    with _lock:
        for key in [k for k, v in _configured.items() if v is telemetry]:
            del _configured[key]
        if _default is telemetry:
            _default = None


def current() -> Telemetry:
    """The Telemetry module-level functions use: the last configured one, else
    one on the global OTel providers (no-op unless the app set them up)."""
    global _default
    telemetry = _default
    if telemetry is None:
        with _lock:
            if _default is None:
                _default = Telemetry(
                    trace.get_tracer_provider(), metrics.get_meter_provider(),
                    owns_providers=False,
                )
            telemetry = _default
    return telemetry


def set_current(telemetry: Telemetry | None) -> Telemetry | None:
    """Replace the module-level default (used by the pytest plugin); returns the old one."""
    global _default
    with _lock:
        previous, _default = _default, telemetry
    return previous
