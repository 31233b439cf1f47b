"""``otel-ml price MODEL [--pricing FILE]``: which price a model name resolves to."""

from __future__ import annotations

import argparse
import sys

from otel_ml.pricing import Price, PriceTable, PricingError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model or deployment name")
    parser.add_argument("--pricing", help="YAML/JSON file extending the bundled price table")


def run(args: argparse.Namespace) -> int:
    try:
        table = PriceTable.load(args.pricing)
    except PricingError as exc:
        print(f"otel-ml: {exc}", file=sys.stderr)
        return 2
    status = 0
    for model in args.models:
        price = table.lookup(model)
        if price is None:
            print(unpriced_line(model, table.snapshot_family(model)))
            status = 1
        else:
            print(price_line(model, price))
    return status


def price_line(model: str, price: Price) -> str:
    """What ``otel-ml price`` prints for a priced model."""
    parts = [f"input ${price.input}", f"output ${price.output}"]
    if price.cached_input is not None:
        parts.append(f"cached input ${price.cached_input}")
    if price.cache_write_input is not None:
        parts.append(f"cache write ${price.cache_write_input}")
    return (
        f"{model} -> {price.model}: {', '.join(parts)} per 1M tokens "
        f"(as of {price.as_of or 'n/a'}, {price.source or 'user table'})"
    )


def unpriced_line(model: str, family: Price | None) -> str:
    """What ``otel-ml price`` prints for a model without a price. A dated name
    of a known family says so: otherwise the user would think the family
    itself is missing, when it is this snapshot's price that is unknown."""
    unpriced = "cost is not recorded; counted on llm.cost.unpriced"
    if family is None:
        return f"{model}: no price ({unpriced})"
    return (
        f"{model}: no price ({family.model} is in the table, but its snapshots are priced "
        f"individually and this one is not; {unpriced}; add it under 'models' with --pricing)"
    )
