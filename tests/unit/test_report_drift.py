"""The report's Drift section, from the files a real DriftMonitor's gauges are exported to.

A monitor computes a verdict, the SDK collects its gauges and the embedded default's
exporter writes them as OTLP JSON lines; the report must give back the monitor's own
numbers. Expected values come from ``DriftMonitor.compute()``, never typed in.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from otel_ml.cli import report
from otel_ml.drift import DriftMonitor, DriftReport
from otel_ml.local_export import JsonLinesMetricExporter

SERVICE = "svc"


@dataclass(frozen=True)
class Pipeline:
    meter: Meter
    reader: InMemoryMetricReader

    def export(self, folder: Path) -> None:
        """One collection, appended as a line to the service's metrics file."""
        data = self.reader.get_metrics_data()
        assert data is not None
        JsonLinesMetricExporter(folder / f"metrics-{SERVICE}-1.jsonl").export(data)


@pytest.fixture
def sdk() -> Iterator[Pipeline]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader],
                             resource=Resource.create({"service.name": SERVICE}))
    yield Pipeline(provider.get_meter("test"), reader)
    provider.shutdown()


def _monitor(sdk: Pipeline, **attributes: str) -> DriftMonitor:
    monitor = DriftMonitor(sdk.meter, min_samples=30, attributes=attributes)
    rng = np.random.default_rng(1)
    monitor.add_feature("shifted", rng.normal(0, 1, 400))
    monitor.add_feature("stable", rng.normal(0, 1, 400))
    monitor.add_feature("sparse", rng.normal(0, 1, 400))
    monitor.feed_many("shifted", rng.normal(1.0, 1, 200))
    monitor.feed_many("stable", rng.normal(0, 1, 200))
    monitor.feed_many("sparse", rng.normal(0, 1, 5))  # below min_samples: no verdict
    return monitor


def test_drift_rows_are_the_monitors_verdicts(
    sdk: Pipeline, tmp_path: Path
) -> None:
    with _monitor(sdk) as monitor:
        computed: DriftReport = monitor.compute()
        sdk.export(tmp_path)

    rows = {row.feature: row for row in report.build_report(tmp_path).drift}
    assert set(rows) == {"shifted", "stable"}
    for name, row in rows.items():
        feature = computed.features[name]
        assert feature.drift is not None
        assert row.service == SERVICE and row.labels == {}
        assert row.detected is feature.detected
        assert row.p_value == pytest.approx(feature.drift.p_value)
        assert row.scores == pytest.approx(
            {r.method: r.score for r in (feature.drift, *feature.extra)}
        )
    assert [row.feature for row in report.build_report(tmp_path).drifted] == computed.drifted


def test_the_latest_export_wins(sdk: Pipeline, tmp_path: Path) -> None:
    with _monitor(sdk) as monitor:
        monitor.compute()
        sdk.export(tmp_path)
        monitor.feed_many("stable", np.random.default_rng(2).normal(3.0, 1, 1000))
        monitor.compute()
        sdk.export(tmp_path)

    rows = {row.feature: row for row in report.build_report(tmp_path).drift}
    assert rows["stable"].detected


def test_monitors_with_their_own_attributes_get_their_own_rows(
    sdk: Pipeline, tmp_path: Path
) -> None:
    with _monitor(sdk, model="a") as first, _monitor(sdk, model="b") as second:
        first.compute()
        second.compute()
        sdk.export(tmp_path)

    rows = report.build_report(tmp_path).drift
    assert sorted((r.feature, dict(r.labels)["model"]) for r in rows) == [
        ("shifted", "a"), ("shifted", "b"), ("stable", "a"), ("stable", "b"),
    ]


def test_rendered_section_names_the_drifted_features(
    sdk: Pipeline, tmp_path: Path
) -> None:
    with _monitor(sdk) as monitor:
        monitor.compute()
        sdk.export(tmp_path)

    out = io.StringIO()
    report.render(report.build_report(tmp_path), out)
    section = out.getvalue().split("Drift (")[1].splitlines()
    assert "1 of 2 features drifted" in section[0]
    assert [line.split()[1:3] for line in section[3:]] == [["shifted", "YES"], ["stable", "no"]]
    assert report.build_report(tmp_path).as_dict()["drift"][0]["feature"] == "shifted"


def test_no_drift_gauges_no_section(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    out = io.StringIO()
    built = report.build_report(tmp_path)
    report.render(built, out)
    assert built.drift == () and "Drift" not in out.getvalue()
