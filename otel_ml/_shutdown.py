"""Bounded flush and shutdown, and the flush on SIGTERM.

The SDK's ``force_flush`` and ``shutdown`` wait for exports that may never end
(a collector that accepts connections and never answers holds each request
for ``OTEL_EXPORTER_OTLP_TIMEOUT``, and the batch processor ignores the flush
timeout it is given), so each runs in a daemon thread of its own and the
caller waits for it no longer than its bound: an unreachable collector costs
the bound, never the 30 s termination grace period.

SIGTERM's default action ends the process without running ``atexit``, so
whatever the batch processor holds is lost; ``uvicorn`` catches SIGTERM and
then raises it again with the previous handler, with the same result. When
the process has no SIGTERM handler of its own, otel-ml installs one that shuts
the pipelines down (bounded) and then raises SIGTERM again with the default
action: the process still ends as killed by SIGTERM (exit status 143), as it
would have without otel-ml. A handler the application installed is never
replaced; such an application calls ``Telemetry.shutdown()`` from its own.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Protocol

logger = logging.getLogger("otel_ml")


def run_bounded(calls: Sequence[tuple[str, Callable[[], Any]]], timeout: float) -> list[Any]:
    """Run the calls at once, each in a daemon thread, and wait for them until
    ``timeout`` seconds have passed. Their results, in order; a call that raised
    gives False and one still running when the time is up gives None (it goes
    on in the background, and ends with the process)."""
    results: list[Any] = [None] * len(calls)
    threads = []
    for index, (name, call) in enumerate(calls):
        thread = threading.Thread(
            target=_store, args=(call, results, index, name), name=f"otel-ml {name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + max(timeout, 0.0)
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return results


def _store(call: Callable[[], Any], results: list[Any], index: int, name: str) -> None:
    try:
        result = call()
        results[index] = True if result is None else result
    except Exception as exc:  # telemetry never breaks the app
        logger.warning("otel-ml: %s failed: %r", name, exc)
        results[index] = False


def non_negative_seconds(value: object, env: str, default: float, name: str) -> float:
    """A non-negative, finite number of seconds: the argument, else ``env``, else
    ``default``; a bad value is logged and replaced by the default."""
    raw: object = value if value is not None or not env else os.environ.get(env)
    if raw is None or raw == "":
        return default
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(raw, bool) or not math.isfinite(seconds) or seconds < 0:
        logger.warning(
            "otel-ml: %s must be a non-negative number of seconds; got %r, using %s",
            name,
            raw,
            default,
        )
        return default
    # Past the platform's wait limit (threading.TIMEOUT_MAX, about 292 years)
    # a join raises OverflowError; a day already means "no bound" in practice.
    return min(seconds, _LONGEST_WAIT)


_LONGEST_WAIT = 86_400.0


class _Stoppable(Protocol):
    shutdown_timeout: float

    def shutdown(self) -> object: ...


_pipelines: list[_Stoppable] = []
_installed = False
_install_lock = threading.Lock()


def flush_on_sigterm(pipeline: _Stoppable) -> bool:
    """Shut ``pipeline`` down on SIGTERM, if the process has no SIGTERM handler
    of its own and this is the main thread (where Python runs handlers).
    True if otel-ml's handler is (now) the one installed."""
    global _installed
    with _install_lock:
        if pipeline not in _pipelines:
            _pipelines.append(pipeline)
        if _installed:
            return signal.getsignal(signal.SIGTERM) is _on_sigterm
        if threading.current_thread() is not threading.main_thread():
            return False
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return False
            signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # no signals here (embedded interpreter, ...)
            return False
        _installed = True
        return True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Shut every pipeline down, within the largest of their timeouts, then
    end the process the way SIGTERM would have. The shutdowns run in threads:
    the main thread may have been interrupted holding a lock they need, and
    must not wait for them past the bound."""
    pipelines = list(_pipelines)
    timeout = max((p.shutdown_timeout for p in pipelines), default=0.0)
    run_bounded([("shutdown on SIGTERM", p.shutdown) for p in pipelines], timeout + 0.5)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


def forget(pipeline: _Stoppable) -> None:
    """``pipeline`` was shut down: SIGTERM no longer concerns it."""
    with _install_lock:
        if pipeline in _pipelines:
            _pipelines.remove(pipeline)
