"""The ``aqrt`` command line (also ``python -m aqrt``).

Each subcommand lives in its own module, imported only when that subcommand runs, so
``aqrt --help`` stays fast and ``aqrt demo`` never loads aiohttp. A subcommand module exposes
``configure(parser)`` (adds its arguments) and ``main(args) -> int`` (runs it, returns the exit
status).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from ._extras import missing_extras

__all__ = ["main", "missing_extras"]

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("aqrt._demo", "run the seed example: an Estimator job in a Session on the local engine"),
    "serve": ("aqrt.server.cli", "serve the IBM Quantum Runtime REST API over the local engine"),
    "bench": ("aqrt._bench_cli", "run the benchmark suite and print the ratio table"),
    "sweep": ("aqrt._sweep_cli", "run a parameter sweep from a QASM file and a parameter grid"),
    "warmup": ("aqrt._warmup_cli", "compile (or load from the cache) the engine's kernels now"),
}


def _available() -> dict[str, tuple[str, str]]:
    found = {}
    for name, entry in SUBCOMMANDS.items():
        try:
            if importlib.util.find_spec(entry[0]) is not None:
                found[name] = entry
        except ModuleNotFoundError:  # its parent package is not there
            continue
    return found


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and one sub-parser per available subcommand (arguments added lazily)."""
    parser = argparse.ArgumentParser(prog="aqrt", description="aqrt: an asyncio-native runtime for quantum primitives")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    children = {
        name: subparsers.add_parser(name, help=text, description=text) for name, (_, text) in _available().items()
    }
    return parser, children


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, children = build_parser()
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    module = None
    if command in children:
        module = importlib.import_module(SUBCOMMANDS[command][0])
        module.configure(children[command])
    args = parser.parse_args(argv)
    if module is None:  # pragma: no cover - argparse exits on an unknown command
        parser.error(f"unknown command {args.command!r}")
    return int(module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
