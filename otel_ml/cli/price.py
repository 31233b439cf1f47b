"""``otel-ml price MODEL [--pricing FILE]``: which price a model name resolves to."""

from __future__ import annotations

import argparse
import sys

from otel_ml.pricing import PriceTable, PricingError


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
            print(f"{model}: no price (cost is not recorded; counted on llm.cost.unpriced)")
            status = 1
            continue
        cached = "" if price.cached_input is None else f", cached input ${price.cached_input}"
        print(
            f"{model} -> {price.model}: input ${price.input}, output ${price.output}{cached} "
            f"per 1M tokens (as of {price.as_of or 'n/a'}, {price.source or 'user table'})"
        )
    return status
