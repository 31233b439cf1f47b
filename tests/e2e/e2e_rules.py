"""The project's own alert rules with a short ``for:``, loaded into the running Prometheus.

The alert tests need a rule to fire within a test's time, not after its real
``for:`` (10 to 15 minutes). :func:`fast_rules` rewrites only the ``for:`` of
the stack's own rules file, so the expressions under test are the shipped ones,
and restores the file afterwards.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import yaml
from e2e_clients import METRIC_TIMEOUT_S, poll

from otel_ml.cli.stack import Stack


def alert_rules(client: httpx.Client, prometheus_url: str) -> list[dict[str, Any]]:
    """Prometheus' alerting rule groups, from /api/v1/rules."""
    response = client.get(f"{prometheus_url}/api/v1/rules", params={"type": "alert"})
    response.raise_for_status()
    groups: list[dict[str, Any]] = response.json()["data"]["groups"]
    return groups


def loaded_for(groups: list[dict[str, Any]], alert: str) -> float | None:
    """The ``for`` (seconds) of the loaded ``alert``, or None while it is not loaded."""
    for group in groups:
        for rule in group["rules"]:
            if rule["name"] == alert:
                return float(rule["duration"])
    return None


def shortened(document: dict[str, Any], seconds: int, only: Collection[str] | None) -> set[str]:
    """Set the ``for:`` of every rule in ``document`` (of those named in ``only``, if
    given) to ``seconds``; returns the names of the alerts changed."""
    changed = set()
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule and (only is None or rule.get("alert") in only):
                rule["for"] = f"{seconds}s"
                changed.add(rule["alert"])
    return changed


@contextmanager
def fast_rules(
    stack: Stack,
    http: httpx.Client,
    rules_file: str,
    alerts: Collection[str],
    seconds: int = 10,
    *,
    only_these: bool = False,
) -> Iterator[None]:
    """``rules_file`` with ``for: {seconds}s`` loaded while the block runs, then restored.

    Every rule of the file is shortened, or only ``alerts`` with
    ``only_these``; the block starts once Prometheus has loaded each of
    ``alerts`` with the new ``for``.
    """
    loaded = stack.prometheus_rules_dir / rules_file
    original = loaded.read_text()
    document: dict[str, Any] = yaml.safe_load(
        (stack.config_dir / "prometheus" / "rules" / rules_file).read_text())
    changed = shortened(document, seconds, alerts if only_these else None)
    missing = set(alerts) - changed
    assert not missing, f"{rules_file} has no {sorted(missing)} with a `for:` to shorten"
    loaded.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        stack.reload_prometheus()
        poll(lambda: alert_rules(http, stack.urls.prometheus),
             lambda groups: all(loaded_for(groups, a) == seconds for a in alerts),
             timeout=METRIC_TIMEOUT_S, what=f"{sorted(alerts)} loaded with for: {seconds}s")
        yield
    finally:
        # Remove the group before restoring it: a reload that only changes a rule
        # copies its active alerts into the restored one, so ours would keep firing
        # under the real `for:` for as long as the test's series are exported.
        loaded.unlink()
        stack.reload_prometheus()
        loaded.write_text(original)
        stack.reload_prometheus()
