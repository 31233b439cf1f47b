"""What every demo service process does around its FastAPI app.

``python -m demo_rag.<service>`` calls :func:`serve`, which sets up JSON logging and
otel-ml, instruments FastAPI, httpx and process CPU/RAM, runs uvicorn, and on exit
flushes the telemetry: the last spans and the final cumulative metrics of a run are
written only at shutdown, so a service stopped without it loses them.

The listening socket can be inherited from the launcher (``--fd``): the launcher binds
a free port itself, so there is no window in which another process can take the port
between choosing and binding it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Final

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

import otel_ml
from demo_rag import logs
from otel_ml.edge import TRUST_EVERYONE, edge

PARENT_PID_ENV: Final = "DEMO_RAG_PARENT_PID"
_GRACEFUL_SHUTDOWN_S: Final = 10
_PROCESS_METRICS: Final[dict[str, list[str] | None]] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": None,
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
}

logger = logging.getLogger(__name__)

AppFactory = Callable[[otel_ml.Telemetry], FastAPI]


def serve(
    service_name: str,
    create_app: AppFactory,
    argv: Sequence[str] | None = None,
    public: bool = False,
) -> int:
    """Run one service until SIGTERM/SIGINT, then flush its telemetry.

    ``public``: the service faces clients (the api), so its edge trusts no caller's
    trace context or baggage unless ``OTEL_ML_EDGE_TRUSTED_NETWORKS`` says so; the
    internal services continue the api's context (see :func:`asgi_app`).
    """
    args = _parse_args(service_name, argv)
    # Health checks are polled by the launcher; tracing them would only add noise. Read
    # when the FastAPI instrumentation is first imported, inside instrument_fastapi().
    os.environ.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "healthz")
    logs.setup(service_name)
    telemetry = otel_ml.configure(service_name=service_name)
    try:
        _instrument_process_metrics(telemetry)
        otel_ml.instrument_httpx()
        asgi = asgi_app(create_app(telemetry), telemetry, public=public)
        _watch_parent()
        _run(asgi, args)
    finally:
        telemetry.shutdown()
    return 0


def asgi_app(app: FastAPI, telemetry: otel_ml.Telemetry, public: bool) -> ASGIApp:
    """The app as served: traced, behind :func:`otel_ml.edge.edge` (outside the
    OpenTelemetry middleware, so it acts before any span exists).

    Every service answers undecodable header bytes with a 400 and a span. Only the
    public one starts a new trace per request (the caller's becomes a link) and
    drops the caller's baggage; vectordb and llm are reached only through the api,
    so they trust its trace context and the tenant in its baggage.
    """
    otel_ml.instrument_fastapi(app, telemetry)
    if public:
        return edge(app, telemetry=telemetry)
    return edge(app, trusted=[TRUST_EVERYONE], strip_tenant=False, telemetry=telemetry)


def _parse_args(service_name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m demo_rag.{service_name.split('-')[-1]}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--fd", type=int, default=None,
                        help="serve on this inherited listening socket instead of host/port")
    return parser.parse_args(argv)


def _run(app: ASGIApp, args: argparse.Namespace) -> None:
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep the JSON logging set up by logs.setup()
        access_log=False,  # the server spans are the access log
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # After a graceful shutdown uvicorn re-raises the signal that stopped it, to the
    # handler that was installed before it started. With the default handler that
    # kills the process before serve() can flush telemetry, so install one that
    # returns: the re-raised signal then ends run() normally.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    if args.fd is None:
        server.run()
        return
    sock = socket.socket(fileno=args.fd)
    host, port = sock.getsockname()[:2]
    logger.info("serving", extra={"address": f"{host}:{port}"})
    server.run(sockets=[sock])


def _stopped(signum: int, frame: object) -> None:
    logger.info("stopped by signal", extra={"signal": signal.Signals(signum).name})


def _instrument_process_metrics(telemetry: otel_ml.Telemetry) -> None:
    """Process CPU and memory, on this service's meter provider."""
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    SystemMetricsInstrumentor(config=_PROCESS_METRICS).instrument(
        meter_provider=telemetry.meter_provider
    )


def _watch_parent() -> None:
    """Shut down gracefully if the launcher dies, even by SIGKILL.

    The launcher puts each service in its own session, so a Ctrl-C or a killed
    terminal never reaches it directly; without this watch a crashed launcher would
    leave orphans holding ports.
    """
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected or not expected.isdigit():
        return
    parent = int(expected)

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(0.5):
            if os.getppid() != parent:
                logger.warning("launcher %d is gone; shutting down", parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
