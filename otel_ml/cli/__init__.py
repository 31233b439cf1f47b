"""The ``otel-ml`` command.

Subcommands live in their own modules, each exposing ``add_arguments(parser)``
and ``run(args) -> int``; they are imported only when used, so ``otel-ml
report`` works without the demo's or drift's extra dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# name -> (module, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo_rag.driver", "run the three-service RAG demo and print a telemetry report"),
    "report": ("otel_ml.cli.report", "rebuild the report from a folder of OTLP JSON lines"),
    "replay": ("otel_ml.cli.replay", "send a folder of OTLP JSON lines to a collector"),
    "drift-demo": ("otel_ml.cli.drift_demo", "the Month 1 / Month 2 drift detection scenario"),
    "stack": ("otel_ml.cli.stack", "start or stop the native collector/Jaeger/Prometheus stack"),
    "price": ("otel_ml.cli.price", "show the price otel-ml applies to a model name"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="otel-ml", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log otel-ml debug output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((arg for arg in args_list if arg in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only import what runs
            sub.set_defaults(module=_load(module_name))
            sub.get_default("module").add_arguments(sub)
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.module.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _load(module_name: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        extra = "drift" if "drift" in module_name else "demo"
        raise SystemExit(
            f"otel-ml: {module_name} needs extra dependencies ({exc.name} is missing); "
            f"install them with: pip install 'otel-ml[{extra}]'"
        ) from exc
