"""Feature definitions and the files that carry them with their reference samples.

A reference is chosen offline (the training or validation data) and loaded by services at
startup, so specs travel as files: ``.npz`` (compact, read with ``allow_pickle=False``) or
JSON for every other suffix (readable, diffable, easy to commit next to the code that made it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias, cast

import numpy as np

from otel_ml.drift._stats import (
    CATEGORICAL,
    NUMERIC,
    FeatureKind,
    Method,
    Sample,
    check_method,
    clean,
)

PathLike: TypeAlias = "str | os.PathLike[str]"
_FORMAT: Final = "otel-ml.drift-reference"


@dataclass(frozen=True)
class FeatureSpec:
    """A feature's definition: what :func:`save_reference` writes and :func:`load_reference` reads.

    ``reference`` is the cleaned sample (None: data-quality only, no drift). ``method`` and
    ``threshold`` override the defaults; ``valid_range`` overrides the reference min/max used
    for the out-of-range rate of numeric features.
    """

    name: str
    kind: FeatureKind
    reference: Sample | None = None
    method: Method | None = None
    threshold: float | None = None
    valid_range: tuple[float, float] | None = None


def _spec_meta(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "method": spec.method,
        "threshold": spec.threshold,
        "valid_range": list(spec.valid_range) if spec.valid_range else None,
    }


def _spec_from_meta(meta: Mapping[str, Any], values: Iterable[object] | None) -> FeatureSpec:
    kind = meta["kind"]
    if kind not in (NUMERIC, CATEGORICAL):
        raise ValueError(f"feature {meta['name']!r}: unknown kind {kind!r}")
    method = check_method(kind, meta["method"]) if meta.get("method") else None
    valid_range = meta.get("valid_range")
    return FeatureSpec(
        name=str(meta["name"]),
        kind=kind,
        reference=None if values is None else clean(values, kind),
        method=method,
        threshold=None if meta.get("threshold") is None else float(meta["threshold"]),
        valid_range=(float(valid_range[0]), float(valid_range[1])) if valid_range else None,
    )


def save_reference(path: PathLike, specs: Iterable[FeatureSpec]) -> None:
    """Write feature specs with their reference samples: ``.npz`` (compact) or JSON (other)."""
    target = Path(path)
    specs = list(specs)
    if target.suffix == ".npz":
        features = [{**_spec_meta(s), "has_values": s.reference is not None} for s in specs]
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(_document(features)))}
        arrays.update(
            (f"values_{i}", s.reference) for i, s in enumerate(specs) if s.reference is not None
        )
        np.savez_compressed(target, **arrays)
        return
    features = [
        {**_spec_meta(s), "values": None if s.reference is None else s.reference.tolist()}
        for s in specs
    ]
    target.write_text(json.dumps(_document(features)))


def load_reference(path: PathLike) -> list[FeatureSpec]:
    """Read specs written by :func:`save_reference` (never unpickles: safe on foreign files)."""
    source = Path(path)
    if source.suffix == ".npz":
        with np.load(source, allow_pickle=False) as data:
            features = _features_of(json.loads(str(data["meta"])) if "meta" in data else {}, source)
            return [
                _spec_from_meta(m, data[f"values_{i}"] if m["has_values"] else None)
                for i, m in enumerate(features)
            ]
    features = _features_of(json.loads(source.read_text()), source)
    return [_spec_from_meta(m, m.get("values")) for m in features]


def _document(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": _FORMAT, "version": 1, "features": features}


def _features_of(document: Any, source: Path) -> list[dict[str, Any]]:
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise ValueError(f"{source} is not an otel-ml drift reference file")
    return cast(list[dict[str, Any]], document["features"])

