"""scripts/gen_budget_rules.py: budgets.yaml -> recording rules the cost alert can use."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cfg_support import CONFIG, PROMETHEUS_DIR, assert_ok, run

BUDGETS = CONFIG / "budgets.yaml"
RULES = PROMETHEUS_DIR / "rules" / "budgets.yml"


def test_committed_rules_match_budgets_yaml(gen_budget_rules: ModuleType) -> None:
    assert gen_budget_rules.main(["--check"]) == 0, "run scripts/gen_budget_rules.py"


def test_check_fails_on_a_stale_rule_file(gen_budget_rules: ModuleType, tmp_path: Path) -> None:
    stale = tmp_path / "budgets.yml"
    stale.write_text(RULES.read_text(encoding="utf-8").replace("vector(", "vector(1", 1), "utf-8")
    assert gen_budget_rules.main(["--check", "--out", str(stale)]) == 1


def test_rules_record_one_constant_per_tenant_and_the_default(
    gen_budget_rules: ModuleType,
) -> None:
    budgets = gen_budget_rules.parse_budgets(
        {"currency": "USD", "default_daily_usd": 3, "tenants": {"globex": 0.25, "acme corp": 2}}
    )
    rules = yaml.safe_load(gen_budget_rules.render_rules(budgets))["groups"][0]["rules"]
    assert rules == [
        {
            "record": "otel_ml:tenant_budget_usd",
            "expr": "vector(2.0)",
            "labels": {"tenant_id": "acme corp"},
        },
        {
            "record": "otel_ml:tenant_budget_usd",
            "expr": "vector(0.25)",
            "labels": {"tenant_id": "globex"},
        },
        {"record": "otel_ml:tenant_budget_default_usd", "expr": "vector(3.0)"},
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"tenants": {"acme": -1}}, "positive"),
        ({"tenants": {"acme": 0}}, "positive"),
        ({"tenants": {"acme": True}}, "number"),
        ({"tenants": {"acme": "10"}}, "number"),
        ({"tenants": {"acme": float("nan")}}, "positive"),
        ({"currency": "EUR", "tenants": {"acme": 1}}, "USD"),
        ({"tenants": {"acme": 1}, "budget": 2}, "unknown keys"),
        ({"tenants": [1, 2]}, "map tenant ids"),
        ({"tenants": {"": 1}}, "non-empty"),
        ({"default_daily_usd": -5}, "default_daily_usd"),
        ([1], "mapping"),
    ],
)
def test_invalid_budgets_are_rejected(
    gen_budget_rules: ModuleType, document: Any, message: str
) -> None:
    with pytest.raises(gen_budget_rules.BudgetError, match=message):
        gen_budget_rules.parse_budgets(document)


def _over_budget(tenant: str, spent: str) -> dict[str, Any]:
    return {
        "exp_labels": {"tenant_id": tenant, "severity": "warning"},
        "exp_annotations": {
            "summary": f"Tenant {tenant} is over its daily LLM budget",
            "description": f"Tenant {tenant} spent {spent} USD on LLM calls in the last 24h, "
            "over its budget in collector-config/budgets.yaml.",
            "runbook_url": "docs/runbooks.md#tenantdailycostoverbudget",
        },
    }


def test_generated_rules_drive_the_cost_alert(
    gen_budget_rules: ModuleType, promtool_bin: Path, tmp_path: Path
) -> None:
    """The generated constants and rules/llm.yml together: who is over budget fires."""
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("default_daily_usd: 2\ntenants:\n  acme: 1\n  big: 100\n", "utf-8")
    generated = tmp_path / "budgets.yml"
    assert gen_budget_rules.main(["--budgets", str(budgets), "--out", str(generated)]) == 0
    test = {
        "rule_files": [str(generated), str(PROMETHEUS_DIR / "rules" / "llm.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # acme: 1.5 USD over its own budget of 1
                    {"series": 'llm_cost_usd_total{tenant_id="acme"}', "values": "0+0.05x30"},
                    # big: 3 USD, under its own 100 though over the default
                    {"series": 'llm_cost_usd_total{tenant_id="big"}', "values": "0+0.1x30"},
                    # other: no budget of its own, 2.5 USD over the default 2
                    {
                        "series": 'llm_cost_usd_total{tenant_id="other"}',
                        "values": "0+0.125x20 2.5+0x9",
                    },
                    {"series": 'llm_cost_usd_total{tenant_id="cheap"}', "values": "0+0.01x30"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "TenantDailyCostOverBudget",
                        "exp_alerts": [
                            _over_budget("acme", "1.5000"),
                            _over_budget("other", "2.5000"),
                        ],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "budget_test.yml"
    test_file.write_text(yaml.safe_dump(test), "utf-8")
    assert_ok(run([promtool_bin, "test", "rules", test_file], cwd=tmp_path))
