"""Where ``otel-ml stack`` finds collector-config/, and what it says when it cannot.

An installed wheel has no configs; the command must then say how to get
them in one line, not a traceback. No backend program is needed: the
config folder is looked for before anything else.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from otel_ml.cli.stack import StackError, command, discovery, find_config_dir


def _config_dir(parent: Path) -> Path:
    folder = parent / "collector-config"
    folder.mkdir(parents=True)
    (folder / "otelcol.yaml").write_text("receivers: {}\n")
    return folder


@pytest.fixture
def no_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """As from a wheel: nothing next to the package."""
    monkeypatch.setattr(discovery, "_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.delenv("OTEL_ML_CONFIG_DIR", raising=False)
    return tmp_path


def test_the_explicit_folder_wins_then_the_variable_then_the_working_directory(
    no_checkout: Path,
) -> None:
    flag, env, cwd = (_config_dir(no_checkout / name) for name in ("flag", "env", "cwd"))
    environ = {"OTEL_ML_CONFIG_DIR": str(env)}
    assert find_config_dir(flag, environ=environ, cwd=cwd.parent) == flag
    assert find_config_dir(environ=environ, cwd=cwd.parent) == env
    assert find_config_dir(environ={}, cwd=cwd.parent) == cwd


def test_any_folder_below_the_checkout_finds_it(no_checkout: Path) -> None:
    configs = _config_dir(no_checkout / "repo")
    deep = no_checkout / "repo" / "tests" / "e2e"
    deep.mkdir(parents=True)
    assert find_config_dir(environ={}, cwd=deep) == configs


def test_the_checkout_next_to_the_package_is_the_last_resort(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = _config_dir(no_checkout / "checkout")
    monkeypatch.setattr(discovery, "_CHECKOUT", checkout.parent)
    elsewhere = no_checkout / "elsewhere"
    elsewhere.mkdir()
    assert find_config_dir(environ={}, cwd=elsewhere) == checkout


def test_a_named_folder_without_configs_is_an_error_not_a_fallback(no_checkout: Path) -> None:
    _config_dir(no_checkout)  # would be found from the working directory
    empty = no_checkout / "empty"
    empty.mkdir()
    with pytest.raises(StackError, match=re.escape(f"--config-dir {empty}: no otelcol.yaml")):
        find_config_dir(empty, environ={}, cwd=no_checkout)
    with pytest.raises(StackError, match=re.escape(f"OTEL_ML_CONFIG_DIR={empty}: no otelcol")):
        find_config_dir(environ={"OTEL_ML_CONFIG_DIR": str(empty)}, cwd=no_checkout)


def test_not_found_says_how_to_get_the_configs(no_checkout: Path) -> None:
    with pytest.raises(StackError) as failure:
        find_config_dir(environ={}, cwd=no_checkout)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"collector-config/ not found in {no_checkout.resolve()} ")
    assert "clone the otel-ml repository" in message
    assert "--config-dir DIR" in message and "OTEL_ML_CONFIG_DIR" in message


def test_stack_up_from_an_installed_wheel_fails_in_one_line(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(no_checkout)
    for detach in (False, True):
        args = argparse.Namespace(action="up", workdir=no_checkout / "work", config_dir=None,
                                  detach=detach, timeout=5.0)
        assert command.run(args) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith("otel-ml stack: collector-config/ not found in ")
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "clone the otel-ml repository" in err
