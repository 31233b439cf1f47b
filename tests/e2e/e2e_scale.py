"""The demo's three services, twice, sending through different gateways with the OTel SDK.

:class:`Fleet` imitates two replicas of the demo (``rag-api``,
``rag-vectordb``, ``rag-llm``): each service instance has its own
TracerProvider (and the api its MeterProvider, recording tokens and cost
with otel-ml's own instruments, :class:`otel_ml.metrics.Instruments`) and
exports OTLP/HTTP to a gateway. A replica's ``rag-llm`` sends through the
other gateway than its ``rag-api`` and ``rag-vectordb``, so every trace
reaches the tier through both gateways and only routing by trace id brings
it together in one sampler.

Each trace is planned to meet one sampling policy (or none):
``error``, ``slow``, ``costly``, ``debug`` or ``plain``. The fleet keeps
the SDK's receipts: the span ids each gateway acknowledged (the exporter
returned SUCCESS), and the totals the SDK recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_ml import semconv
from otel_ml.metrics import Instruments

KINDS: Final = ("error", "slow", "costly", "debug", "plain")
# Policy thresholds the test's samplers run with (collector-config/scale/sampler.yaml).
SLO_MS: Final = 2000
COST_THRESHOLD_USD: Final = 0.05
DEBUG_TENANT: Final = "debug-tenant"
TENANTS: Final = ("acme", "globex")
MODEL: Final = "sim-model"


@dataclass(frozen=True)
class Sent:
    """One trace as planned and sent: its policy kind and its span ids."""

    trace_id: str
    kind: str
    tenant: str
    span_ids: frozenset[str]
    sent_at: float  # time.monotonic() when its root span ended


class ReceiptExporter(SpanExporter):
    """The real OTLP exporter, recording the span ids the gateway acknowledged."""

    def __init__(self, inner: SpanExporter, receipts: set[str], lock: threading.Lock) -> None:
        self._inner = inner
        self._receipts = receipts
        self._lock = lock

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            with self._lock:
                self._receipts.update(
                    format(s.context.span_id, "016x") for s in spans if s.context is not None
                )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


@dataclass
class _Replica:
    api: trace.Tracer
    vectordb: trace.Tracer
    llm: trace.Tracer
    instruments: Instruments


def kind_of(index: int) -> str:
    """Every 15 traces: one of each policy, eleven plain ones."""
    slot = index % 15
    return KINDS[slot] if slot < 4 else "plain"


@dataclass
class Fleet:
    """Two replicas of the demo's services; replica r's api and vectordb use gateway r."""

    gateways: Sequence[str]  # OTLP/HTTP base URLs
    replicas: int = 2
    sent: list[Sent] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)  # span ids
    totals: dict[str, float] = field(
        default_factory=lambda: {"requests": 0, "tokens": 0, "cost": 0.0}
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tracer_providers: list[TracerProvider] = field(default_factory=list)
    _meter_providers: list[MeterProvider] = field(default_factory=list)
    _replicas: list[_Replica] = field(default_factory=list)

    def __post_init__(self) -> None:
        for r in range(self.replicas):
            near = self.gateways[r % len(self.gateways)]
            far = self.gateways[(r + 1) % len(self.gateways)]
            self._replicas.append(_Replica(
                api=self._tracer("rag-api", r, near),
                vectordb=self._tracer("rag-vectordb", r, near),
                llm=self._tracer("rag-llm", r, far),
                instruments=self._instruments("rag-api", r, near),
            ))

    def _resource(self, service: str, replica: int) -> Resource:
        return Resource.create({SERVICE_NAME: service,
                                SERVICE_INSTANCE_ID: f"{service}-{replica}"})

    def _tracer(self, service: str, replica: int, gateway: str) -> trace.Tracer:
        provider = TracerProvider(resource=self._resource(service, replica))
        exporter = ReceiptExporter(
            OTLPSpanExporter(endpoint=f"{gateway}/v1/traces", timeout=30),
            self.acknowledged, self._lock,
        )
        # A queue large enough for the 10,000-trace run: the SDK drops nothing.
        provider.add_span_processor(BatchSpanProcessor(
            exporter, max_queue_size=200_000, schedule_delay_millis=200,
            max_export_batch_size=512,
        ))
        self._tracer_providers.append(provider)
        return provider.get_tracer("otel-ml.e2e.scale")

    def _instruments(self, service: str, replica: int, gateway: str) -> Instruments:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{gateway}/v1/metrics", timeout=30),
            export_interval_millis=1000,
        )
        provider = MeterProvider(resource=self._resource(service, replica),
                                 metric_readers=[reader])
        self._meter_providers.append(provider)
        return Instruments.create(provider.get_meter("otel-ml"), gen_ai_latest=False)

    def send(self, index: int) -> Sent:
        """One /ask: api SERVER span, its chat CLIENT span, a vectordb and an llm SERVER span."""
        kind = kind_of(index)
        replica = self._replicas[index % self.replicas]
        tenant = DEBUG_TENANT if kind == "debug" else TENANTS[index % len(TENANTS)]
        input_tokens, output_tokens = 100 + index % 50, 20 + index % 30
        cost = 0.2 if kind == "costly" else 0.001
        duration_ns = (SLO_MS + 1000) * 1_000_000 if kind == "slow" else 20_000_000
        end = time.time_ns()
        start = end - duration_ns
        tenant_attr = {semconv.TENANT_ID: tenant}
        root = replica.api.start_span("POST /ask", context=otel_context.Context(),
                                      kind=SpanKind.SERVER, attributes=tenant_attr,
                                      start_time=start)
        inside = trace.set_span_in_context(root)
        children = [
            replica.vectordb.start_span("query documents", context=inside, kind=SpanKind.SERVER,
                                        attributes=tenant_attr, start_time=start + 1_000_000),
            replica.llm.start_span(f"chat {MODEL}", context=inside, kind=SpanKind.SERVER,
                                   attributes=tenant_attr, start_time=start + 2_000_000),
            replica.api.start_span(f"chat {MODEL}", context=inside, kind=SpanKind.CLIENT,
                                   start_time=start + 2_000_000, attributes={
                                       **tenant_attr,
                                       semconv.GEN_AI_OPERATION_NAME: "chat",
                                       semconv.GEN_AI_REQUEST_MODEL: MODEL,
                                       semconv.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                                       semconv.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                                       semconv.GEN_AI_USAGE_COST_AMOUNT: cost,
                                       semconv.GEN_AI_USAGE_COST_CURRENCY: "USD",
                                   }),
        ]
        if kind == "error":
            children[1].set_status(Status(StatusCode.ERROR, "simulated upstream error"))
        for child in children:
            child.end(end_time=end - 1_000_000)
        root.end(end_time=end)
        self._record(replica.instruments, tenant, input_tokens, output_tokens, cost)
        spans = [root, *children]
        sent = Sent(format(root.get_span_context().trace_id, "032x"), kind, tenant,
                    frozenset(format(s.get_span_context().span_id, "016x") for s in spans),
                    time.monotonic())
        with self._lock:
            self.sent.append(sent)
        return sent

    def _record(self, instruments: Instruments, tenant: str, input_tokens: int,
                output_tokens: int, cost: float) -> None:
        attributes = {semconv.GEN_AI_OPERATION_NAME: "chat",
                      semconv.GEN_AI_REQUEST_MODEL: MODEL, semconv.TENANT_ID: tenant}
        instruments.token_usage.record(
            input_tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: "input"})
        instruments.token_usage.record(
            output_tokens, {**attributes, semconv.GEN_AI_TOKEN_TYPE: "output"})
        instruments.cost.add(cost, attributes)
        with self._lock:
            self.totals["requests"] += 1
            self.totals["tokens"] += input_tokens + output_tokens
            self.totals["cost"] += cost

    def send_many(self, count: int, per_second: float | None = None, start: int = 0) -> None:
        """``count`` traces, paced at ``per_second`` when given."""
        begin = time.monotonic()
        for n in range(count):
            self.send(start + n)
            if per_second:
                time.sleep(max(0.0, begin + (n + 1) / per_second - time.monotonic()))

    def flush(self) -> None:
        for provider in self._tracer_providers:
            provider.force_flush(60_000)
        for meter_provider in self._meter_providers:
            meter_provider.force_flush(60_000)

    def shutdown(self) -> None:
        self.flush()
        for provider in self._tracer_providers:
            provider.shutdown()
        for meter_provider in self._meter_providers:
            meter_provider.shutdown()

    def acknowledged_traces(self) -> list[Sent]:
        """Traces every span of which a gateway acknowledged."""
        with self._lock:
            return [s for s in self.sent if s.span_ids <= self.acknowledged]


def by_kind(sent: Sequence[Sent]) -> Mapping[str, list[Sent]]:
    out: dict[str, list[Sent]] = {kind: [] for kind in KINDS}
    for item in sent:
        out[item.kind].append(item)
    return out
