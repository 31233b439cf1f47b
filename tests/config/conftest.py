"""Fixtures for the configuration tests: the real backend binaries and the generators."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from cfg_support import AMTOOL, JAEGER, OTELCOL, PROMTOOL, find_binary, load_script


@pytest.fixture(scope="session")
def otelcol_bin() -> Path:
    return find_binary(OTELCOL)


@pytest.fixture(scope="session")
def jaeger_bin() -> Path:
    return find_binary(JAEGER)


@pytest.fixture(scope="session")
def promtool_bin() -> Path:
    return find_binary(PROMTOOL)


@pytest.fixture(scope="session")
def amtool_bin() -> Path:
    return find_binary(AMTOOL)


@pytest.fixture(scope="session")
def gen_dashboards() -> ModuleType:
    return load_script("gen_dashboards")


@pytest.fixture(scope="session")
def gen_budget_rules() -> ModuleType:
    return load_script("gen_budget_rules")
