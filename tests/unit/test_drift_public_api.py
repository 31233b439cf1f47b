"""``otel_ml.drift`` exports what docs/drift.md documents, and costs nothing until imported.

The names come from the document itself (code spans, the module table, the ``from
otel_ml.drift import`` lines of its examples), so a name added to the docs without being
exported, or an export dropped while the docs still teach it, fails here rather than in a
user's notebook. The import checks run in a fresh interpreter: this process has long since
imported numpy, scipy and the OpenTelemetry SDK.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import subprocess
import sys
from pathlib import Path

import otel_ml.drift as drift

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "drift.md"
PACKAGE = ROOT / "otel_ml" / "drift"

# CapWords spans of drift.md that name something other than an otel_ml.drift export; alert
# names are excluded separately, from the document's own Alerts table.
FOREIGN_CAPWORDS = frozenset({"Meter"})  # the OpenTelemetry API type DriftMonitor accepts

# The parser below must find at least these, or it is broken rather than the package right.
CORE = frozenset(
    {
        "DriftMonitor",
        "compare",
        "ks_test",
        "psi",
        "psi_band",
        "rag_monitor",
        "save_reference",
        "wasserstein_normed",
    }
)

_FENCE = re.compile(r"```.*?```", re.S)
# Inline code may wrap onto the next line of a paragraph, never across a blank line.
_SPAN = re.compile(r"`((?:[^`\n]|\n(?!\s*\n))+)`")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_CAPWORDS = re.compile(r"[A-Z][a-z]\w*")
_DOC_IMPORT = re.compile(r"from otel_ml\.drift import (?:\(([^)]*)\)|([\w ,]+))")


def _spans(markdown: str) -> list[str]:
    return [" ".join(span.split()) for span in _SPAN.findall(_FENCE.sub("", markdown))]


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


def _table_rows(markdown: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


def _head(span: str) -> str | None:
    """The Python name a code span starts with: ``psi_band()`` -> psi_band,
    ``otel_ml.drift.X`` -> X, ``ModelReport.evicted_predictions`` -> ModelReport."""
    span = span.removeprefix("otel_ml.drift.")
    match = _IDENTIFIER.match(span)
    if match is None or span[match.end() : match.end() + 1] not in ("", "(", "."):
        return None
    return match.group()


def _defined_names() -> set[str]:
    """Public top-level names assigned, defined or aliased in the private drift modules.

    Read from the source, not from the imported modules, so that a name the package forgets
    to re-export is still recognised as one of its own.
    """
    names: set[str] = set()
    for path in PACKAGE.glob("_*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def _module_table(markdown: str) -> dict[str, list[str]]:
    """``otel_ml.drift._x`` -> the code spans of its "job" cell."""
    table: dict[str, list[str]] = {}
    for row in _table_rows(markdown):
        module = row[0].strip("`")
        if len(row) >= 2 and module.startswith("otel_ml.drift._"):
            table[module] = _spans(row[1])
    return table


def documented_names(markdown: str) -> set[str]:
    """Every ``otel_ml.drift`` name the document teaches.

    - the names its examples import from ``otel_ml.drift``;
    - the names in the module table, which lists each private module's public names;
    - inline code naming something the drift modules define at top level (``psi``,
      ``category_key``); a span such as ``window`` or ``feed()`` (a parameter, a method) is
      not one;
    - every CapWords name in inline code, defined or not, except alert names and
      :data:`FOREIGN_CAPWORDS`: a class the docs mention but the package lacks is a bug.
    """
    names: set[str] = set()
    for block in _FENCE.findall(markdown):
        for wrapped, one_line in _DOC_IMPORT.findall(block):
            names.update(name.strip() for name in (wrapped or one_line).split(",") if name.strip())
    for spans in _module_table(markdown).values():
        names.update(span for span in spans if _IDENTIFIER.fullmatch(span))
    alerts = {row[0].strip("`") for row in _table_rows(_section(markdown, "Alerts"))}
    defined = _defined_names()
    for span in _spans(markdown):
        head = _head(span)
        if head is None or head in alerts or head in FOREIGN_CAPWORDS or hasattr(builtins, head):
            continue
        if head in defined or _CAPWORDS.fullmatch(head):
            names.add(head)
    return names


def _all_order(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then everything else."""
    group = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return group, name


def test_the_parser_finds_the_core_api() -> None:
    assert documented_names(DOC.read_text(encoding="utf-8")) >= CORE


def test_every_documented_name_is_exported() -> None:
    names = documented_names(DOC.read_text(encoding="utf-8"))

    not_importable = sorted(name for name in names if not hasattr(drift, name))
    not_in_all = sorted(names - set(drift.__all__))

    assert not_importable == []
    assert not_in_all == []


def test_all_is_importable_unique_and_sorted() -> None:
    namespace: dict[str, object] = {}
    exec("from otel_ml.drift import *", namespace)  # what a star import really gives

    assert sorted(set(namespace) - {"__builtins__"}) == sorted(drift.__all__)
    assert len(set(drift.__all__)) == len(drift.__all__)
    assert drift.__all__ == sorted(drift.__all__, key=_all_order)


def test_module_table_lists_exactly_the_private_modules() -> None:
    table = _module_table(DOC.read_text(encoding="utf-8"))
    on_disk = {f"otel_ml.drift.{path.stem}" for path in PACKAGE.glob("_*.py")}

    assert set(table) == on_disk - {"otel_ml.drift.__init__"}


def _fresh_interpreter(code: str) -> object:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_import_otel_ml_loads_neither_drift_nor_numpy_nor_scipy() -> None:
    loaded = _fresh_interpreter(
        "import json, sys\n"
        "import otel_ml\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m == 'otel_ml.drift' or m.startswith('otel_ml.drift.')"
        " or m.split('.')[0] in ('numpy', 'scipy'))))\n"
    )

    assert loaded == []


def test_drift_imports_without_the_opentelemetry_sdk() -> None:
    """The SDK becomes an optional extra; the drift package must need the API only.

    ``otel_ml/__init__`` is bypassed (an empty package module with the real ``__path__``):
    the root package's own dependencies are another test's business, this one is about the
    drift package and the ``otel_ml`` modules it imports.
    """
    loaded = _fresh_interpreter(
        "import importlib.abc, importlib.util, json, sys, types\n"
        "class NoSdk(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry.sdk' or name.startswith('opentelemetry.sdk.'):\n"
        "            raise ImportError(f'opentelemetry-sdk is not installed: {name}')\n"
        "        return None\n"
        "sys.meta_path.insert(0, NoSdk())\n"
        "spec = importlib.util.find_spec('otel_ml')\n"
        "root = types.ModuleType('otel_ml')\n"
        "root.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['otel_ml'] = root\n"
        "import otel_ml.drift\n"
        "monitor = otel_ml.drift.DriftMonitor()\n"
        "monitor.add_feature('x', [1.0, 2.0, 3.0])\n"
        "monitor.close()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules"
        " if m.split('.')[0] in ('numpy', 'scipy', 'opentelemetry')})))\n"
    )

    assert loaded == ["numpy", "opentelemetry", "scipy"]
