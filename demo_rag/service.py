"""What every demo service process does around its FastAPI app.

``python -m demo_rag.<service>`` calls :func:`serve`, which sets up JSON logging and
otel-ml, instruments FastAPI, httpx and process CPU/RAM, runs uvicorn, and on exit
flushes the telemetry: the last spans and the final cumulative metrics of a run are
written only at shutdown, so a service stopped without it loses them.

Logs: JSON lines on stderr always (local runs), and with ``OTEL_ML_LOGS=true`` (set
by docker-compose.yml and the e2e suite) also through OTLP, where each line carries
its trace id (``configure()`` reads the variable). Every request gets one
:class:`AccessLog` line inside its server span, so a search by trace id finds a
line of each service the request went through.

The listening socket can be inherited from the launcher (``--fd``): the launcher binds
a free port itself, so there is no window in which another process can take the port
between choosing and binding it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp

import otel_ml
from demo_rag import logs
from otel_ml._edge import TRUST_EVERYONE, edge

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
    """The app as served: traced, behind :func:`otel_ml.edge` (outside the
    OpenTelemetry middleware, so it acts before any span exists).

    Every service answers undecodable header bytes with a 400 and a span. Only the
    public one starts a new trace per request (the caller's becomes a link) and
    drops the caller's baggage; vectordb and llm are reached only through the api,
    so they trust its trace context and the tenant in its baggage.
    """
    app.add_middleware(AccessLog)  # inside the server span the instrumentation opens
    otel_ml.instrument_fastapi(app, telemetry)
    if public:
        return edge(app, telemetry=telemetry)
    return edge(app, trusted=[TRUST_EVERYONE], strip_tenant=False, telemetry=telemetry)


class AccessLog:
    """One INFO line per request (``POST /ask -> 200``), logged when the response
    has been sent, inside the request's server span: its trace and span ids go with
    it. Health checks are left out, as they are from tracing. The query string is
    part of the line, as in any access log; secrets in it are masked by the
    redaction of the logs (JSON and OTLP alike).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in _QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            query = scope.get("query_string") or b""
            target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
            logger.info("%s %s -> %d", scope["method"], target, status, extra={
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            })


_QUIET_PATHS: Final = frozenset({"/healthz"})


def new_app(
    title: str, max_body_bytes: int, lifespan: Callable[[FastAPI], Any] | None = None
) -> FastAPI:
    """A FastAPI app with the demo's request limits.

    - Bodies past ``max_body_bytes`` get 413, counted while reading (and refused
      from ``Content-Length`` before reading), so memory per request is bounded.
    - JSON may not hold ``NaN``, ``Infinity`` or numbers that overflow to infinity:
      Python's parser accepts them, but no other JSON tool does, and FastAPI's 422
      echoing them could not be serialised (a 500). They get a 422 saying so, as
      does nesting deeper than ``MAX_JSON_DEPTH`` (FastAPI's 422 recursed into it).
    """
    app = FastAPI(title=title, lifespan=lifespan, max_body_size=max_body_bytes)
    app.router.route_class = FiniteJsonRoute
    app.add_exception_handler(RequestValidationError, _finite_validation_error)
    return app


class NonFiniteNumber(ValueError):
    pass


NON_FINITE_MESSAGE: Final = "non-finite number (NaN, Infinity or out of range) is not valid JSON"
# No demo body nests deeper than 4; FastAPI's 422 and its encoder recurse into the input.
MAX_JSON_DEPTH: Final = 32


def _no_constant(name: str) -> float:
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumber(text)
    return value


class FiniteJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = json.loads(
                    await self.body(), parse_constant=_no_constant, parse_float=_finite_float
                )
            except NonFiniteNumber as exc:
                # FastAPI turns a JSONDecodeError into its 422 json_invalid error.
                raise json.JSONDecodeError(f"{NON_FINITE_MESSAGE}: {exc}"[:120], "", 0) from exc
            if _deeper_than(self._json, MAX_JSON_DEPTH):
                raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)
        return self._json


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class FiniteJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def finite(request: Request) -> Response:
            return await handler(FiniteJsonRequest(request.scope, request.receive))

        return finite


async def _finite_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, made serialisable whatever the client sent: FastAPI's own
    echoes the input, and fails (a 500) on a non-finite float (``inf`` from a query
    string) or on body bytes that are not UTF-8 (a non-JSON content type)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": jsonable_encoder(_serialisable(errors))}, status_code=422)


def _serialisable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value[:200]).decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _serialisable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_serialisable(v) for v in value]
    return value


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
