"""The drift monitor: per-feature windows, recompute, data quality, and the exported gauges.

A :class:`DriftMonitor` keeps, per feature, a reference sample and a bounded window of the
most recent production values, fed from request handlers on any thread. Recomputing (on
demand with :meth:`DriftMonitor.compute`, or every ``interval_s`` seconds on a daemon thread)
runs :mod:`otel_ml.drift._stats` on a snapshot of each window and publishes the result through
observable gauges. The metric reader therefore exports the last computed values and never runs
statistics on its own collection thread.

Feeding never raises: values of the wrong type, unknown fields and internal faults are
counted as data-quality signals or logged once on the ``otel_ml`` logger. Only setup calls
(``add_feature``, ``start``, file loading) raise, because a wrong configuration should fail
loudly at startup rather than silently export nothing.

Import the public names from :mod:`otel_ml.drift`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
import weakref
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, TypeAlias, cast

import numpy as np
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.util.types import AttributeValue

from otel_ml import semconv
from otel_ml._safety import report, warn_input
from otel_ml.cardinality import CardinalityCap
from otel_ml.drift._groups import (
    FairnessReport,
    GroupReference,
    GroupWindow,
    fairness_report,
    group_reference,
)
from otel_ml.drift._labels import LabelJoin, ModelReport, model_report, rate_shift
from otel_ml.drift._reference import FeatureSpec, PathLike, load_reference, save_reference
from otel_ml.drift._stats import (
    CATEGORICAL,
    NUMERIC,
    DriftDefaults,
    FeatureKind,
    Method,
    PreparedReference,
    Sample,
    StatResult,
    category_key,
    check_method,
    clean,
    infer_kind,
    numeric_value,
)

SchemaViolationKind = Literal["new_field", "missing_field", "type_change"]
NEW_FIELD: Final = "new_field"
MISSING_FIELD: Final = "missing_field"
TYPE_CHANGE: Final = "type_change"
# A window entry: a float (NaN when missing) for numeric features, str or None for categorical.
_Stored: TypeAlias = "float | str | None"


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureReport:
    """One feature at one recompute.

    ``null_rate`` is the share of the window that was missing (None when the window is empty);
    ``out_of_range_rate`` the share of valid values outside ``valid_range`` / the reference
    range (numeric) or absent from the reference categories (categorical). ``drift`` is the
    primary test and decides ``detected``; ``extra`` holds the secondary scores (PSI by
    default). Both are empty while the window has fewer than ``min_samples`` valid values.
    """

    feature: str
    kind: FeatureKind
    n_reference: int
    n_window: int
    n_valid: int
    null_rate: float | None
    out_of_range_rate: float | None
    drift: StatResult | None = None
    extra: tuple[StatResult, ...] = ()

    @property
    def detected(self) -> bool:
        return self.drift is not None and self.drift.drifted

    def score(self, method: str) -> StatResult | None:
        """The result of ``method`` (primary or extra), if it was computed."""
        return next((r for r in (self.drift, *self.extra) if r and r.method == method), None)


@dataclass(frozen=True)
class DriftReport:
    features: Mapping[str, FeatureReport]
    model: ModelReport
    schema_violations: Mapping[tuple[str, str], int]
    computed_at: float = field(default_factory=time.time)
    # Per-group rates and disparities: None unless the monitor has a ``group_by``.
    fairness: FairnessReport | None = None

    @property
    def drifted(self) -> list[str]:
        """Features whose primary test detected drift."""
        return [name for name, feature in self.features.items() if feature.detected]


# --- per-feature state -------------------------------------------------------------------------


class _FeatureState:
    """A feature's spec, prepared reference and bounded window; the lock guards the window."""

    def __init__(
        self,
        spec: FeatureSpec,
        defaults: DriftDefaults,
        extra: Sequence[Method],
        window: int,
        is_input: bool,
    ) -> None:
        self.spec = spec
        self.is_input = is_input
        self.prepared = (
            PreparedReference(spec.reference, spec.kind, defaults)
            if spec.reference is not None
            else None
        )
        self.method: Method | None = spec.method or (
            self.prepared.default_method() if self.prepared else None
        )
        self.extra = tuple(m for m in extra if m != self.method and _applicable(spec.kind, m))
        self.lock = threading.Lock()
        self.window: deque[_Stored] = deque(maxlen=window)

    def append(self, value: _Stored) -> None:
        with self.lock:
            self.window.append(value)

    def snapshot(self) -> list[_Stored]:
        with self.lock:
            return list(self.window)

    def valid(self, raw: list[_Stored]) -> Sample:
        if self.spec.kind == NUMERIC:
            values = np.fromiter(cast(list[float], raw), dtype=np.float64, count=len(raw))
            return values[np.isfinite(values)]
        return np.array([v for v in raw if v is not None], dtype=np.str_)

    def out_of_range_rate(self, valid: Sample) -> float | None:
        if valid.size == 0:
            return None
        if self.spec.kind == CATEGORICAL:
            if self.prepared is None:
                return None
            return float(np.mean(~np.isin(valid, self.prepared.categories)))
        bounds = self.spec.valid_range or (
            (self.prepared.low, self.prepared.high) if self.prepared else None
        )
        if bounds is None:
            return None
        return float(np.mean((valid < bounds[0]) | (valid > bounds[1])))


def _applicable(kind: FeatureKind, method: Method) -> bool:
    try:
        check_method(kind, method)
    except ValueError:
        return False
    return True


def _coerce(kind: FeatureKind, value: object) -> _Stored:
    """The window representation of ``value``: NaN/None when missing; TypeError when invalid."""
    return numeric_value(value) if kind == NUMERIC else category_key(value)


# --- instruments shared per meter ----------------------------------------------------------------

_GAUGES: Final = (
    (semconv.METRIC_DRIFT_SCORE, "{score}", "Drift statistic or distance per feature and method."),
    (semconv.METRIC_DRIFT_P_VALUE, "", "p-value of the feature's drift test (KS, chi-square)."),
    (semconv.METRIC_DRIFT_DETECTED, "", "1 when the feature's primary drift test fires, else 0."),
    (semconv.METRIC_DATA_NULL_RATE, "", "Share of missing values in the feature's window."),
    (semconv.METRIC_DATA_OUT_OF_RANGE_RATE, "", "Share of values outside the expected range."),
    (semconv.METRIC_PREDICTION_RATE, "", "Share of positive-class predictions in the window."),
    (semconv.METRIC_MODEL_ACCURACY, "", "Accuracy over the window of labelled predictions."),
    (semconv.METRIC_MODEL_PRECISION, "", "Positive-class precision over labelled predictions."),
    (semconv.METRIC_MODEL_RECALL, "", "Positive-class recall over labelled predictions."),
    (semconv.METRIC_GROUP_POSITIVE_RATE, "", "Share of positive predictions in the group."),
    (
        semconv.METRIC_GROUP_REFERENCE_POSITIVE_RATE,
        "",
        "Share of positive predictions in the group on the reference data.",
    ),
    (
        semconv.METRIC_GROUP_TRUE_POSITIVE_RATE,
        "",
        "Positive-class recall in the group over labelled predictions.",
    ),
    (semconv.METRIC_FAIRNESS_DISPARITY, "", "Disparity measure across groups in the window."),
    (
        semconv.METRIC_FAIRNESS_REFERENCE_DISPARITY,
        "",
        "Disparity measure across groups on the reference data.",
    ),
    (
        semconv.METRIC_FAIRNESS_DISPARITY_BAND,
        "",
        "How far a disparity may move from its reference value before it alerts.",
    ),
)


class _Hub:
    """The instruments of one Meter, shared by every monitor created with it.

    The SDK registers an observable instrument once per meter and name: a second
    ``create_observable_gauge`` returns the first instrument and drops the new callbacks. So
    monitors on one meter join a shared hub whose callbacks gather all their observations.
    """

    def __init__(self, meter: Meter) -> None:
        self._monitors: weakref.WeakSet[DriftMonitor] = weakref.WeakSet()
        self._lock = threading.Lock()
        for name, unit, description in _GAUGES:
            meter.create_observable_gauge(
                name, callbacks=[self._callback(name)], unit=unit, description=description
            )
        self.schema_violations = meter.create_counter(
            semconv.METRIC_DATA_SCHEMA_VIOLATIONS,
            unit="{violation}",
            description="Fields that appeared, disappeared or changed type.",
        )

    def _callback(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                monitors = list(self._monitors)
            return [obs for monitor in monitors for obs in monitor._exported(name)]

        return observe

    def join(self, monitor: DriftMonitor) -> None:
        with self._lock:
            self._monitors.add(monitor)

    def leave(self, monitor: DriftMonitor) -> None:
        with self._lock:
            self._monitors.discard(monitor)


_HUBS: weakref.WeakKeyDictionary[Meter, _Hub] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _default_meter() -> Meter:
    # One meter object for every default monitor: before a global MeterProvider is set, each
    # get_meter() call returns a new proxy, and proxies resolving to one SDK meter later would
    # register the gauges twice (dropping the second callbacks).
    return metrics.get_meter("otel_ml.drift")


def _hub_for(meter: Meter) -> _Hub:
    with _HUBS_LOCK:
        hub = _HUBS.get(meter)
        if hub is None:
            hub = _HUBS[meter] = _Hub(meter)
        return hub


# --- the monitor ---------------------------------------------------------------------------------


class DriftMonitor:
    """Feature drift, data quality and model quality, exported as OTel gauges.

    ``window`` bounds the values kept per feature (memory is O(features x window));
    ``min_samples`` is the fewest valid values a window needs before drift (and rates) are
    computed. ``attributes`` are added to every exported point: give monitors that share a
    meter distinct ones (e.g. ``{"model": "fraud-v3"}``), or their series collide.
    ``extra_methods`` are scored besides each feature's primary test. Predictions given as float
    scores become 1/0 at ``decision_threshold``; ``positive_label`` is the class whose rate,
    precision and recall are reported.

    ``group_by`` (the name of a grouping attribute, e.g. ``"region"``) turns on the
    group-aware mode: predictions recorded with a ``group`` get per-group rates and the
    fairness disparities (:mod:`otel_ml.drift._groups`). The first ``max_groups`` group values
    keep their name, later ones fold into ``__other__``; ``disparity_band`` is how far a
    disparity may move from its reference value (exported for the alert rule).
    """

    def __init__(
        self,
        meter: Meter | None = None,
        *,
        window: int = 1000,
        min_samples: int = 30,
        defaults: DriftDefaults | None = None,
        extra_methods: Sequence[Method] = ("psi",),
        attributes: Mapping[str, AttributeValue] | None = None,
        interval_s: float | None = None,
        positive_label: object = 1,
        decision_threshold: float = 0.5,
        label_window: int = 1000,
        max_pending_labels: int = 100_000,
        rate_shift_threshold: float = 0.1,
        max_unknown_fields: int = 20,
        group_by: str | None = None,
        max_groups: int = 20,
        disparity_band: float = 0.1,
    ) -> None:
        if window < 1 or min_samples < 1 or label_window < 1 or max_pending_labels < 1:
            raise ValueError("window, min_samples, label_window, max_pending_labels must be >= 1")
        self._window = window
        self._min_samples = min_samples
        self._defaults = defaults or DriftDefaults()
        self._extra = tuple(extra_methods)
        self._attributes: dict[str, AttributeValue] = dict(attributes or {})
        self._positive = category_key(positive_label) or "1"
        self._decision_threshold = decision_threshold
        self._rate_shift_threshold = rate_shift_threshold
        self._features: dict[str, _FeatureState] = {}
        self._registry_lock = threading.Lock()
        self._labels = LabelJoin(max_pending_labels, label_window)
        self._unknown_fields = CardinalityCap(max_unknown_fields, semconv.LABEL_OVERFLOW)
        self._group_by = group_by
        self._groups = CardinalityCap(max_groups, semconv.LABEL_OVERFLOW)
        self._group_window = GroupWindow(window)
        self._group_reference: GroupReference | None = None
        self._disparity_band = disparity_band
        self._violations: Tally[tuple[str, str]] = Tally()
        self._violations_lock = threading.Lock()
        self._report: DriftReport | None = None
        self._exports: dict[str, list[Observation]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hub = _hub_for(meter or _default_meter())
        self._hub.join(self)
        if interval_s is not None:
            self.start(interval_s)

    # --- setup ---------------------------------------------------------------------------

    def add_feature(
        self,
        name: str,
        reference: Iterable[object] | None = None,
        *,
        kind: FeatureKind | None = None,
        method: Method | None = None,
        threshold: float | None = None,
        valid_range: tuple[float, float] | None = None,
    ) -> None:
        """Register (or replace) a feature; ValueError for an unusable definition.

        ``kind`` defaults to numeric when every reference value is a number. Without a
        reference the feature gets data-quality metrics only. ``method`` defaults to
        Evidently's choice for the reference size and cardinality.
        """
        values = None if reference is None else list(reference)
        resolved = kind or (infer_kind(values) if values is not None else None)
        if resolved is None:
            raise ValueError(f"feature {name!r}: give a reference or a kind")
        checked = check_method(resolved, method) if method else None
        try:
            cleaned = None if values is None else clean(values, resolved)
        except TypeError as exc:
            raise ValueError(f"feature {name!r}: reference value: {exc}") from exc
        if cleaned is not None and cleaned.size == 0:
            raise ValueError(f"feature {name!r}: the reference has no non-missing value")
        spec = FeatureSpec(name, resolved, cleaned, checked, threshold, valid_range)
        self.add_spec(spec)

    def add_spec(self, spec: FeatureSpec) -> None:
        """Register a feature from a spec; the window survives unless the kind changes."""
        self._install(spec, is_input=spec.name != semconv.ML_PREDICTION)

    def _install(self, spec: FeatureSpec, *, is_input: bool) -> _FeatureState:
        state = _FeatureState(spec, self._defaults, self._extra, self._window, is_input)
        with self._registry_lock:
            previous = self._features.get(spec.name)
            if previous is not None and previous.spec.kind == spec.kind:
                # Values fed between this copy and the swap below are lost: a setup-time
                # call, so a few values of one window are an acceptable price for no lock
                # on the feed path.
                state.window.extend(previous.snapshot())
            # Copy on write: feeders read the dict without the lock and see old or new, whole.
            self._features = {**self._features, spec.name: state}
        return state

    def set_prediction_reference(
        self,
        predictions: Iterable[object],
        *,
        groups: Iterable[object] | None = None,
        labels: Iterable[object] | None = None,
    ) -> None:
        """The model's predictions on reference data: enables prediction drift and rate shift.

        With ``groups`` (one per prediction; needs ``group_by``), also the per-group reference
        rates and disparities; with ``labels`` too (the reference's ground truth), the
        reference true-positive rates and equal opportunity difference.
        """
        keys = [self._prediction_key(p) for p in predictions]
        self.add_spec(FeatureSpec(semconv.ML_PREDICTION, CATEGORICAL, clean(keys, CATEGORICAL)))
        if groups is not None:
            self._set_group_reference(keys, list(groups), labels)

    def _set_group_reference(
        self, keys: list[str | None], groups: list[object], labels: Iterable[object] | None
    ) -> None:
        if self._group_by is None:
            raise ValueError("groups need a monitor created with group_by=...")
        actual = None if labels is None else [category_key(label) for label in labels]
        if len(groups) != len(keys) or (actual is not None and len(actual) != len(keys)):
            raise ValueError("predictions, groups and labels must have the same length")
        # Reference groups take the first places under the cap.
        folded = [self._group_key(group) for group in groups]
        rows = [
            i for i, (key, group) in enumerate(zip(keys, folded, strict=True))
            if key is not None and group is not None
            and (actual is None or actual[i] is not None)
        ]
        self._group_reference = group_reference(
            [cast(str, keys[i]) for i in rows],
            [cast(str, folded[i]) for i in rows],
            None if actual is None else [cast(str, actual[i]) for i in rows],
            positive=self._positive,
            min_samples=self._min_samples,
        )

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self._features)

    def specs(self) -> list[FeatureSpec]:
        return [state.spec for state in self._features.values()]

    def save_reference(self, path: PathLike) -> None:
        """Write every feature's spec and reference (``.npz`` or JSON by suffix)."""
        save_reference(path, self.specs())

    def load_reference(self, path: PathLike) -> None:
        """Register every feature of a file written by :meth:`save_reference`."""
        for spec in load_reference(path):
            self.add_spec(spec)

    # --- feeding (never raises) --------------------------------------------------------

    def feed(self, feature: str, value: object) -> None:
        """Add one value to ``feature``'s window; None/NaN count as missing."""
        try:
            state = self._features.get(feature)
            if state is None:
                self._violation(feature, NEW_FIELD, known=False)
            else:
                self._append(state, value)
        except Exception as exc:  # telemetry must not break the request path
            report("drift feed", exc)

    def feed_many(self, feature: str, values: Iterable[object]) -> None:
        """Add several values to ``feature``'s window."""
        for value in values:
            self.feed(feature, value)

    def observe(self, record: Mapping[str, object]) -> None:
        """Add one record (field -> value), checking its schema against the registered features.

        Unregistered fields count as ``new_field``; registered input features absent from the
        record count as ``missing_field`` and as a missing value.
        """
        try:
            features = self._features
            for name, value in record.items():
                state = features.get(name)
                if state is None:
                    self._violation(str(name), NEW_FIELD, known=False)
                else:
                    self._append(state, value)
            for name, state in features.items():
                if state.is_input and name not in record:
                    self._violation(name, MISSING_FIELD)
                    state.append(math.nan if state.spec.kind == NUMERIC else None)
        except Exception as exc:  # telemetry must not break the request path
            report("drift observe", exc)

    def record_prediction(
        self, prediction: object, *, prediction_id: Hashable = None, group: object = None
    ) -> None:
        """Record a model output (label or score); keep it for a later label if it has an id.

        ``group`` is the request's value of the ``group_by`` attribute (ignored, with a
        warning, on a monitor without one).
        """
        try:
            state = self._features.get(semconv.ML_PREDICTION) or self._prediction_state()
            try:
                key = self._prediction_key(prediction)
            except TypeError:
                self._type_change(semconv.ML_PREDICTION, "a label or score", prediction)
                return
            state.append(key)
            folded = self._group_of(group) if group is not None else None
            if folded is not None and key is not None:
                self._group_window.append(folded, key)
            if prediction_id is not None and key is not None:
                self._labels.predicted(prediction_id, key, folded)
        except Exception as exc:  # telemetry must not break the request path
            report("drift record_prediction", exc)

    def _group_of(self, group: object) -> str | None:
        if self._group_by is None:
            warn_input("drift monitor got a group but has no group_by; the group is ignored")
            return None
        try:
            return self._group_key(group)
        except TypeError:
            warn_input(f"drift group must be a str, int or bool, got {type(group).__name__}")
            return None

    def _group_key(self, group: object) -> str | None:
        key = category_key(group)
        return None if key is None else self._groups.fold(str(key))

    def record_label(self, prediction_id: Hashable, label: object) -> None:
        """Join a delayed ground-truth label to the prediction with ``prediction_id``."""
        try:
            key = category_key(label)
            if key is not None:
                self._labels.labelled(prediction_id, key)
        except TypeError:
            warn_input(f"drift label must be a str, int or bool, got {type(label).__name__}")
        except Exception as exc:  # telemetry must not break the request path
            report("drift record_label", exc)

    def _append(self, state: _FeatureState, value: object) -> None:
        try:
            stored = _coerce(state.spec.kind, value)
        except TypeError:
            self._type_change(state.spec.name, f"{state.spec.kind} values", value)
            return
        state.append(stored)

    def _type_change(self, feature: str, expected: str, value: object) -> None:
        self._violation(feature, TYPE_CHANGE)
        warn_input(
            f"drift feature {feature!r} expects {expected}, got {type(value).__name__}; "
            "counted as a schema violation"
        )

    def _violation(self, feature: str, kind: SchemaViolationKind, *, known: bool = True) -> None:
        # Unknown field names come from the data: cap them before they become label values.
        label = feature if known else self._unknown_fields.fold(feature)
        if not known:
            warn_input(f"drift monitor got unregistered field {label!r}")
        with self._violations_lock:
            self._violations[(label, kind)] += 1
        attributes = {**self._attributes, semconv.DRIFT_FEATURE: label}
        attributes[semconv.SCHEMA_VIOLATION_KIND] = kind
        self._hub.schema_violations.add(1, attributes)

    def _prediction_key(self, prediction: object) -> str | None:
        if isinstance(prediction, float | np.floating) and not float(prediction).is_integer():
            score = float(prediction)
            return None if math.isnan(score) else str(int(score >= self._decision_threshold))
        return category_key(prediction)

    def _prediction_state(self) -> _FeatureState:
        with self._registry_lock:
            state = self._features.get(semconv.ML_PREDICTION)
        if state is not None:
            return state
        return self._install(FeatureSpec(semconv.ML_PREDICTION, CATEGORICAL), is_input=False)

    # --- recompute -----------------------------------------------------------------------

    def compute(self) -> DriftReport:
        """Recompute every feature from a snapshot of its window and publish the gauges."""
        features: dict[str, FeatureReport] = {}
        model = ModelReport()
        for name, state in self._features.items():
            try:
                raw = state.snapshot()
                valid = state.valid(raw)
                features[name] = self._feature_report(state, len(raw), valid)
                if name == semconv.ML_PREDICTION:
                    model = self._model_report(state, valid)
            except Exception as exc:  # one broken feature must not hide the others
                report(f"drift compute ({name})", exc)
        if semconv.ML_PREDICTION not in self._features:
            model = self._model_report(None, np.array([], dtype=np.str_))
        with self._violations_lock:
            violations = dict(self._violations)
        result = DriftReport(features, model, violations, fairness=self._fairness_report())
        self._exports = _exports(result, self._attributes)
        self._report = result
        return result

    @property
    def last_report(self) -> DriftReport | None:
        return self._report

    def _feature_report(self, state: _FeatureState, n_window: int, valid: Sample) -> FeatureReport:
        null_rate = (n_window - valid.size) / n_window if n_window else None
        base = FeatureReport(
            feature=state.spec.name,
            kind=state.spec.kind,
            n_reference=state.prepared.size if state.prepared else 0,
            n_window=n_window,
            n_valid=int(valid.size),
            null_rate=null_rate,
            out_of_range_rate=state.out_of_range_rate(valid),
        )
        if state.prepared is None or state.method is None or valid.size < self._min_samples:
            return base
        drift = state.prepared.compare(valid, state.method, state.spec.threshold)
        extra = [state.prepared.compare(valid, method) for method in state.extra]
        if state.spec.name == semconv.ML_PREDICTION:
            extra.append(
                rate_shift(
                    state.prepared.values,
                    valid,
                    positive=self._positive,
                    threshold=self._rate_shift_threshold,
                )
            )
        return dataclasses.replace(base, drift=drift, extra=tuple(extra))

    def _model_report(self, state: _FeatureState | None, valid: Sample) -> ModelReport:
        reference = state.prepared.values if state and state.prepared else None
        return model_report(
            self._labels,
            valid,
            reference,
            positive=self._positive,
            min_samples=self._min_samples,
        )

    def _fairness_report(self) -> FairnessReport | None:
        if self._group_by is None:
            return None
        try:
            labelled, _ = self._labels.snapshot()
            return fairness_report(
                self._group_by,
                self._group_window.snapshot(),
                labelled,
                self._group_reference,
                positive=self._positive,
                min_samples=self._min_samples,
                band=self._disparity_band,
            )
        except Exception as exc:  # the feature verdicts are still published
            report("drift compute (groups)", exc)
            return None

    def _exported(self, name: str) -> list[Observation]:
        return self._exports.get(name, [])

    # --- background recompute ----------------------------------------------------------

    def start(self, interval_s: float) -> None:
        """Recompute every ``interval_s`` seconds on a daemon thread until :meth:`close`."""
        if not interval_s > 0:
            raise ValueError("interval_s must be positive")
        with self._registry_lock:
            if self._thread is not None:
                raise RuntimeError("this drift monitor is already recomputing on an interval")
            # A fresh event per thread: a restart can never revive a thread that
            # an earlier stop() gave up joining.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(interval_s, self._stop), name="otel-ml-drift",
                daemon=True,
            )
            self._thread.start()

    def _run(self, interval_s: float, stop: threading.Event) -> None:
        while not stop.wait(interval_s):
            try:
                self.compute()
            except Exception as exc:  # keep recomputing; the next run may succeed
                report("drift recompute", exc)

    def stop(self) -> None:
        """Stop the recompute thread; the gauges keep exporting the last report.

        For a service shutting down: stop, :meth:`compute` once more, and the final metric
        export (at the provider's shutdown) carries the last verdict, which :meth:`close`
        would have withdrawn. :meth:`start` may be called again afterwards.
        """
        with self._registry_lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def close(self) -> None:
        """Stop the recompute thread and withdraw this monitor's gauges."""
        self.stop()
        self._hub.leave(self)
        self._exports = {}

    def __enter__(self) -> DriftMonitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _exports(
    report: DriftReport, attributes: Mapping[str, AttributeValue]
) -> dict[str, list[Observation]]:
    """Observations per metric name for the gauges, built once per recompute."""
    out: dict[str, list[Observation]] = {name: [] for name, _, _ in _GAUGES}
    for feature in report.features.values():
        base = {**attributes, semconv.DRIFT_FEATURE: feature.feature}
        _observe(out, semconv.METRIC_DATA_NULL_RATE, feature.null_rate, base)
        _observe(out, semconv.METRIC_DATA_OUT_OF_RANGE_RATE, feature.out_of_range_rate, base)
        if feature.drift is None:
            continue
        for result in (feature.drift, *feature.extra):
            method = {**base, semconv.DRIFT_METHOD: result.method}
            _observe(out, semconv.METRIC_DRIFT_SCORE, result.score, method)
        _observe(out, semconv.METRIC_DRIFT_P_VALUE, feature.drift.p_value, base)
        _observe(out, semconv.METRIC_DRIFT_DETECTED, float(feature.detected), base)
    model = report.model
    _observe(out, semconv.METRIC_PREDICTION_RATE, model.positive_rate, attributes)
    _observe(out, semconv.METRIC_MODEL_ACCURACY, model.accuracy, attributes)
    _observe(out, semconv.METRIC_MODEL_PRECISION, model.precision, attributes)
    _observe(out, semconv.METRIC_MODEL_RECALL, model.recall, attributes)
    if report.fairness is not None:
        _fairness_exports(out, report.fairness, attributes)
    return out


def _fairness_exports(
    out: dict[str, list[Observation]],
    fairness: FairnessReport,
    attributes: Mapping[str, AttributeValue],
) -> None:
    base = {**attributes, semconv.GROUP_ATTRIBUTE: fairness.attribute}
    for group in fairness.groups.values():
        labels = {**base, semconv.GROUP_VALUE: group.group}
        _observe(out, semconv.METRIC_GROUP_POSITIVE_RATE, group.positive_rate, labels)
        _observe(
            out, semconv.METRIC_GROUP_REFERENCE_POSITIVE_RATE, group.reference_positive_rate,
            labels,
        )
        _observe(out, semconv.METRIC_GROUP_TRUE_POSITIVE_RATE, group.true_positive_rate, labels)
    for measure in sorted(set(fairness.disparity) | set(fairness.reference_disparity)):
        labels = {**base, semconv.FAIRNESS_MEASURE: measure}
        _observe(out, semconv.METRIC_FAIRNESS_DISPARITY, fairness.disparity.get(measure), labels)
        _observe(
            out, semconv.METRIC_FAIRNESS_REFERENCE_DISPARITY,
            fairness.reference_disparity.get(measure), labels,
        )
        _observe(out, semconv.METRIC_FAIRNESS_DISPARITY_BAND, fairness.band, labels)


def _observe(
    out: dict[str, list[Observation]],
    name: str,
    value: float | None,
    attributes: Mapping[str, AttributeValue],
) -> None:
    # NaN would reach Prometheus as a value and break comparisons in alert rules: skip it.
    if value is not None and math.isfinite(value):
        out[name].append(Observation(value, dict(attributes)))
