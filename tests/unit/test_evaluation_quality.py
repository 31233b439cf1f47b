"""The labelled set and the quality figures in docs/evaluations.md.

The data file is the generator's output, split once and stored; the held-out
precision/recall table in the doc is recomputed here from the evaluators as they are now,
so neither the doc nor the data can drift from the code. Scores on labelled pairs are
checked as real values: the groundedness evaluator meets its goal on the held-out half.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "evaluations.md"


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "evaluation_quality", REPO / "scripts" / "evaluation_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["evaluation_quality"] = module
    spec.loader.exec_module(module)
    return module


def test_the_data_file_is_the_generators_output(quality: ModuleType) -> None:
    assert quality.DATA.read_text(encoding="utf-8") == quality.dumps(quality.generate())


def test_the_set_is_large_balanced_and_split_once(quality: ModuleType) -> None:
    examples = quality.load()
    assert len(examples) >= 200
    assert 0.4 <= sum(e.unsupported for e in examples) / len(examples) <= 0.6
    assert {e.split for e in examples} == {"tuning", "held_out"}
    assert len(quality.held_out(examples)) == len(quality.tuning(examples)) == len(examples) // 2
    kinds = {e.kind for e in examples if e.unsupported}
    assert {"number", "number_in_document", "name", "fabricated"} <= kinds  # near-misses
    assert len({e.id for e in examples}) == len(examples)


def test_the_doc_states_the_held_out_figures(quality: ModuleType) -> None:
    text = DOC.read_text(encoding="utf-8")
    stated = re.search(r"<!-- held-out-table:start -->\n(.*?)\n<!-- held-out-table:end -->",
                       text, re.DOTALL)
    assert stated is not None
    assert stated.group(1) == quality.table(quality.quality(quality.held_out(quality.load())))


def test_groundedness_meets_its_goal_on_the_held_out_half(quality: ModuleType) -> None:
    [grounded] = [q for q in quality.quality(quality.held_out(quality.load()))
                  if q.evaluator == "groundedness"]
    assert grounded.precision >= 0.8 and grounded.recall >= 0.8
    assert grounded.positives + (grounded.n - grounded.positives) == 120


def test_wilson_interval(quality: ModuleType) -> None:
    # Textbook values: 8 of 10 -> (0.490, 0.943); 0 of 10 -> (0, 0.278).
    low, high = quality.wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    low, high = quality.wilson(0, 10)
    assert (round(low, 3), round(high, 3)) == (0.0, 0.278)
