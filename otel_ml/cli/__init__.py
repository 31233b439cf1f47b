"""The ``otel-ml`` command.

Subcommands live in their own modules, each exposing ``add_arguments(parser)``
and ``run(args) -> int``; they are imported only when used, so ``otel-ml
report`` works without the demo's or drift's extra dependencies, and a missing
one is named with the exact install command that brings it.

This package is the dev tooling (report, replay, the native stack runner, the
drift demo): ``import otel_ml`` never imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

_DEMO_INSTALL = "pip install ./demo_rag (from an otel-ml checkout; `make demo` does it)"

# name -> (module, help, the install command that brings its dependencies)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo_rag.driver", "run the three-service RAG demo and print a telemetry report",
             _DEMO_INSTALL),
    "report": ("otel_ml.cli.report", "rebuild the report from a folder of OTLP JSON lines",
               "pip install otel-ml"),
    "replay": ("otel_ml.cli.replay", "send a folder of OTLP JSON lines to a collector",
               "pip install otel-ml"),
    "drift-demo": ("otel_ml.cli.drift_demo", "the Month 1 / Month 2 drift detection scenario",
                   "pip install 'otel-ml[drift-demo]'"),
    "stack": ("otel_ml.cli.stack", "start or stop the native collector/Jaeger/Prometheus stack",
              "pip install otel-ml"),
    "price": ("otel_ml.cli.price", "show the price otel-ml applies to a model name",
              "pip install otel-ml"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="otel-ml", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log otel-ml debug output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((arg for arg in args_list if arg in SUBCOMMANDS), None)
    for name, (module_name, help_text, install) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only import what runs
            sub.set_defaults(module=_load(module_name, install))
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


def _load(module_name: str, install: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(
            f"otel-ml: {module_name} needs {exc.name or 'a dependency'}, which is not "
            f"installed; install it with: {install}"
        ) from exc
