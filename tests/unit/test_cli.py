"""The ``otel-ml`` command: help output and ``otel-ml price``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from otel_ml import cli
from otel_ml.pricing import Price, PriceTable


def _price_line(name: str, price: Price) -> str:
    """What ``otel-ml price`` prints for a priced model, built from the table."""
    cached = "" if price.cached_input is None else f", cached input ${price.cached_input}"
    if price.cache_write_input is not None:
        cached += f", cache write ${price.cache_write_input}"
    source = price.source or "user table"
    return (
        f"{name} -> {price.model}: input ${price.input}, output ${price.output}{cached} "
        f"per 1M tokens (as of {price.as_of or 'n/a'}, {source})"
    )


def _bundled(name: str) -> Price:
    price = PriceTable.load().lookup(name)
    assert price is not None
    return price


# --- help ----------------------------------------------------------------------------------------


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: otel-ml")
    for name, (_, help_text, _) in cli.SUBCOMMANDS.items():
        assert name in out
        assert help_text in out
    assert "--verbose" in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert capsys.readouterr().out.startswith("usage: otel-ml")


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_price_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["price", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage: otel-ml price" in out
    assert "MODEL" in out
    assert "--pricing" in out
    assert cli.SUBCOMMANDS["price"][1] in out


# --- otel-ml price -------------------------------------------------------------------------------


def test_price_of_a_versioned_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["price", "gpt-4o-mini-2024-07-18"]) == 0
    out = capsys.readouterr().out
    assert out == _price_line("gpt-4o-mini-2024-07-18", _bundled("gpt-4o-mini")) + "\n"


def test_price_without_a_cached_price(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["price", "mistral-large-2411"]) == 0
    price = _bundled("mistral-large")
    assert price.cached_input is None
    assert capsys.readouterr().out == _price_line("mistral-large-2411", price) + "\n"


def test_price_shows_the_cache_write_price(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["price", "claude-sonnet-4-20250514"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "claude-sonnet-4-20250514 -> claude-sonnet-4: input $3.0, output $15.0, "
        "cached input $0.3, cache write $3.75 per 1M tokens "
        f"(as of {_bundled('claude-sonnet-4').as_of}, "
        "https://docs.anthropic.com/en/docs/about-claude/pricing)\n"
    )


def test_unpriced_snapshot_of_a_known_family_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    """gpt-4o prices its snapshots apart ($5 for 2024-05-13, $2.50 later), so an
    unknown one is unpriced, and the message says the family is known."""
    assert cli.main(["price", "gpt-4o-2099-01-01", "gpt-4o-2024-05-13"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "gpt-4o-2099-01-01: no price (gpt-4o is in the table, but its snapshots are priced "
        "individually and this one is not; cost is not recorded; counted on "
        "llm.cost.unpriced; add it under 'models' with --pricing)",
        _price_line("gpt-4o-2024-05-13", _bundled("gpt-4o-2024-05-13")),
    ]
    assert "input $5.0, output $15.0" in lines[1]


def test_unknown_model_says_so_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["price", "claude-3-haiku", "acme-llm-7b"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == _price_line("claude-3-haiku", _bundled("claude-3-haiku"))
    assert lines[1] == "acme-llm-7b: no price (cost is not recorded; counted on llm.cost.unpriced)"
    assert len(lines) == 2


def test_price_with_a_user_table_and_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": {"acme-llm-7b": {"input": 0.02, "output": 0.04}},
                "aliases": {"prod-eu-chat": "gpt-4o"},
            }
        ),
        encoding="utf-8",
    )
    assert cli.main(["price", "--pricing", str(path), "acme-llm-7b", "prod-eu-chat"]) == 0
    table = PriceTable.load(path)
    own, alias = table.lookup("acme-llm-7b"), table.lookup("prod-eu-chat")
    assert own is not None and alias is not None
    assert capsys.readouterr().out.splitlines() == [
        _price_line("acme-llm-7b", own),
        _price_line("prod-eu-chat", alias),
    ]
    assert "user table" in _price_line("acme-llm-7b", own)
    assert alias.model == "gpt-4o"


def test_malformed_pricing_file_is_reported_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  m: {input: 1.0}\n", encoding="utf-8")
    assert cli.main(["price", "--pricing", str(path), "m"]) == 2
    captured = capsys.readouterr()
    assert "'m' lacks 'output'" in captured.err
    assert str(path) in captured.err
    assert captured.out == ""


def test_price_needs_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["price"])
    assert exited.value.code == 2
    assert "MODEL" in capsys.readouterr().err


# --- the installed command -----------------------------------------------------------------------


def test_price_runs_as_a_module_and_imports_only_what_it_needs() -> None:
    code = (
        "import sys\n"
        "from otel_ml.cli import main\n"
        "status = main(['price', 'gpt-4o'])\n"
        "print(sorted(m for m in ('demo_rag.driver', 'otel_ml.cli.drift_demo', 'otel_ml.cli.stack',"
        " 'otel_ml.cli.report') if m in sys.modules))\n"
        "raise SystemExit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    first, imported = result.stdout.splitlines()
    assert first == _price_line("gpt-4o", _bundled("gpt-4o"))
    assert imported == "[]"


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("otel-ml")
    assert script.exists(), "the otel-ml console script is installed (make venv: pip install -e .)"
    result = subprocess.run(
        [str(script), "price", "gpt-4o-mini"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _price_line("gpt-4o-mini", _bundled("gpt-4o-mini")) + "\n"
