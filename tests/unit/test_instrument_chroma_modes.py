"""instrument_chroma(): global and per-client modes on real in-process Chroma
clients, idempotence, one span per call, uninstrumenting restores chromadb's
methods, otel-ml's own faults never reach the app, and chromadb's own
OpenTelemetry tracing stays out of the way."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.api import ClientAPI
from chromadb.api.models.AsyncCollection import AsyncCollection
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings

import otel_ml
from otel_ml import _safety, semconv
from otel_ml.instrumentation._chroma import _distance, _instrumentor
from otel_ml.testing import Capture

METHODS = ("query", "get", "add", "upsert")
VECTORS: Any = [[1.0, 0.0], [0.0, 1.0]]


def originals() -> dict[str, Any]:
    return {
        f"{cls.__name__}.{name}": vars(cls)[name]
        for cls in (Collection, AsyncCollection)
        for name in METHODS
    }


ORIGINALS = originals()


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """Each test starts and ends uninstrumented (whatever it left behind)."""
    yield
    otel_ml.uninstrument_chroma()
    for client in list(_instrumentor._registry._clients):
        _instrumentor._registry._clients.pop(client, None)
    _instrumentor._unpatch_if_unused()


@pytest.fixture
def ephemeral() -> ClientAPI:
    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


@pytest.fixture
def persistent(tmp_path: Path) -> ClientAPI:
    # A second, separate client: its own system and server API (an EphemeralClient
    # with the same settings would share the first one's).
    return chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )


def collection(client: ClientAPI) -> Any:
    made = client.create_collection(f"c-{uuid.uuid4().hex[:12]}", embedding_function=None)
    made.add(ids=["a", "b"], embeddings=VECTORS)
    return made


def query(made: Any) -> Any:
    return made.query(query_embeddings=[[1.0, 0.0]], n_results=1)


def retrievals(capture: Capture) -> list[Any]:
    return [span for span in capture.spans() if span.name.startswith("retrieval ")]


def test_global_mode_wraps_every_client_and_uninstrument_restores_the_methods(
    otel_capture: Capture, ephemeral: ClientAPI, persistent: ClientAPI
) -> None:
    otel_ml.instrument_chroma()
    assert all(
        vars(Collection)[name] is not ORIGINALS[f"Collection.{name}"] for name in METHODS
    )
    first, second = collection(ephemeral), collection(persistent)
    query(first)
    query(second)
    assert {span.name for span in retrievals(otel_capture)} == {
        f"retrieval {first.name}", f"retrieval {second.name}"
    }

    otel_ml.uninstrument_chroma()
    assert originals() == ORIGINALS
    otel_capture.clear()
    query(first)
    first.get()
    assert otel_capture.spans() == []


def test_a_second_instrument_call_does_nothing(
    otel_capture: Capture, ephemeral: ClientAPI
) -> None:
    otel_ml.instrument_chroma()
    patched = vars(Collection)["query"]
    otel_ml.instrument_chroma()
    otel_ml.instrument_chroma(ephemeral)
    otel_ml.instrument_chroma(ephemeral)
    assert vars(Collection)["query"] is patched  # not wrapped twice
    query(collection(ephemeral))
    assert len(retrievals(otel_capture)) == 1  # global and per-client: one span


def test_per_client_mode_traces_only_that_client(
    otel_capture: Capture, ephemeral: ClientAPI, persistent: ClientAPI
) -> None:
    otel_ml.instrument_chroma(persistent)
    traced, untraced = collection(persistent), collection(ephemeral)
    query(traced)
    query(untraced)
    untraced.get()
    assert [span.name for span in otel_capture.spans()] == [
        f"add {traced.name}", f"retrieval {traced.name}"
    ]

    otel_ml.uninstrument_chroma(persistent)
    assert originals() == ORIGINALS  # the last user gone: the patches go too
    otel_capture.clear()
    query(traced)
    assert otel_capture.spans() == []


def test_per_client_mode_survives_a_global_uninstrument(
    otel_capture: Capture, ephemeral: ClientAPI, persistent: ClientAPI
) -> None:
    otel_ml.instrument_chroma()
    otel_ml.instrument_chroma(persistent)
    otel_ml.uninstrument_chroma()
    query(collection(persistent))
    query(collection(ephemeral))
    assert len(retrievals(otel_capture)) == 1


def test_per_client_telemetry_wins_over_the_global_one(
    otel_capture_factory: Any, ephemeral: ClientAPI, persistent: ClientAPI
) -> None:
    own = otel_capture_factory()
    current = otel_capture_factory()  # otel_ml's current telemetry from here on
    otel_ml.instrument_chroma()
    otel_ml.instrument_chroma(persistent, telemetry=own.telemetry)
    query(collection(persistent))
    query(collection(ephemeral))
    assert len(retrievals(own)) == 1
    assert len(retrievals(current)) == 1


def test_otel_ml_faults_never_reach_the_app(
    otel_capture: Capture,
    ephemeral: ClientAPI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    otel_ml.instrument_chroma()
    made = collection(ephemeral)

    def broken(*args: Any) -> str:
        raise RuntimeError("otel-ml bug")

    monkeypatch.setattr(_distance, "space_of", broken)
    monkeypatch.setattr("otel_ml.instrumentation._chroma._calls.space_of", broken)
    monkeypatch.setattr(_safety, "_reported", set())
    otel_capture.clear()
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        result = query(made)
    assert result["ids"] == [["a"]]  # the app got Chroma's answer
    assert retrievals(otel_capture) == []  # and this call went uninstrumented
    assert "chroma query span failed" in caplog.text


def test_a_fault_reading_the_result_keeps_the_span(
    otel_capture: Capture, ephemeral: ClientAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    otel_ml.instrument_chroma()
    made = collection(ephemeral)

    def broken(self: Any, result: Any) -> None:
        raise ValueError("unexpected result shape")

    monkeypatch.setattr("otel_ml.instrumentation._chroma._query.QuerySpan.read", broken)
    result = query(made)
    assert result["ids"] == [["a"]]
    (span,) = retrievals(otel_capture)
    assert span.status.is_ok
    assert (span.attributes or {})[semconv.DB_SYSTEM_NAME] == "chroma"


def test_without_chromadb_it_says_so_and_does_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "chromadb", None)  # what an app without chromadb sees
    monkeypatch.setattr(_safety, "_reported", set())
    with caplog.at_level(logging.WARNING, logger="otel_ml"):
        otel_ml.instrument_chroma()
    assert "instrument_chroma() found no chromadb package: nothing to instrument" in caplog.text
    assert originals() == ORIGINALS


def test_chromadbs_own_tracing_is_off_and_adds_no_span(
    otel_capture: Capture, ephemeral: ClientAPI
) -> None:
    # chromadb.telemetry.opentelemetry traces its server-API layer (FastAPI._query ...)
    # only when chroma_otel_granularity is set, with a provider of its own; by default
    # its tracer is None and our span is the only one per call.
    from chromadb.telemetry import opentelemetry as chroma_otel

    otel_ml.instrument_chroma()
    made = collection(ephemeral)
    query(made)
    assert chroma_otel.tracer is None
    assert [span.name for span in otel_capture.spans()] == [
        f"add {made.name}", f"retrieval {made.name}"
    ]


def test_chromadb_client_distribution_is_instrumented_too(
    otel_capture: Capture, ephemeral: ClientAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An HTTP-only app installs `chromadb-client`, which provides the same chromadb module
    # under another distribution name: no "chromadb" distribution must not stop instrumenting.
    from importlib.metadata import PackageNotFoundError

    from opentelemetry.instrumentation import dependencies

    real_version = dependencies.version

    def version(name: str) -> str:
        if name == "chromadb":
            raise PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(dependencies, "version", version)
    otel_ml.instrument_chroma()
    query(collection(ephemeral))
    assert len(retrievals(otel_capture)) == 1
