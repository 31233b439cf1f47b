"""The official client alone: the baseline every variant is paired with.
Imports no OpenTelemetry."""

from __future__ import annotations

import harness


def setup(workload: harness.Workload, mode: str) -> harness.Variant:
    return harness.Variant(harness.plain_request, None)


if __name__ == "__main__":
    harness.run(setup)
