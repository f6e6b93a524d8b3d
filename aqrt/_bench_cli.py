"""``aqrt bench``: run the benchmark suite (``benchmarks/*.py`` of a source checkout) and print
each script's ratio table.

The scripts are standalone (see ``benchmarks/README.md``); each runs in its own process, so
one's threads and caches cannot colour another's figures. ``--quick`` runs every script's
smoke-sized variant (a few minutes in all instead of tens).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .cli import missing_extras

__all__ = ["NEEDS", "SCRIPTS", "benchmarks_dir", "configure", "main"]

# name -> (script, arguments of the full run, arguments of the quick run)
SCRIPTS: dict[str, tuple[str, list[str], list[str]]] = {
    "overhead": ("overhead.py", [], ["--jobs", "300", "--repeat", "2", "--warmup", "5"]),
    "engine": ("engine.py", [], ["--quick"]),
    "sweep": ("sweep.py", [], ["--quick"]),
}


# name -> the optional modules the script cannot run without (other contenders are skipped when absent)
NEEDS: dict[str, tuple[str, ...]] = {
    "overhead": ("qiskit_aer",),
    "engine": ("qiskit_aer",),
    "sweep": ("qiskit_aer", "distributed"),
}


def benchmarks_dir() -> Path | None:
    """The ``benchmarks/`` folder next to the ``aqrt`` package (a source checkout), if any."""
    candidate = Path(__file__).resolve().parent.parent / "benchmarks"
    return candidate if (candidate / "overhead.py").is_file() else None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="smoke-sized runs (a few minutes in all)")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated subset of {','.join(SCRIPTS)} (default: all)")
    parser.add_argument(
        "--json-dir", type=Path, metavar="DIR", help="also write each script's figures to DIR/NAME.json"
    )


def main(args: argparse.Namespace) -> int:
    folder = benchmarks_dir()
    if folder is None:
        print(
            "aqrt bench: no benchmarks/ folder next to the aqrt package; run it from a source checkout "
            "(pip install -e .)",
            file=sys.stderr,
        )
        return 2
    names = list(SCRIPTS) if not args.only else [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCRIPTS]
    if unknown:
        print(f"aqrt bench: unknown benchmark(s) {unknown}; choose from {list(SCRIPTS)}", file=sys.stderr)
        return 2
    missing = missing_extras("aqrt bench", sorted({module for name in names for module in NEEDS[name]}))
    if missing is not None:
        print(missing, file=sys.stderr)
        return 2
    if args.json_dir is not None:
        args.json_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        script, full, quick = SCRIPTS[name]
        command = [sys.executable, str(folder / script), *(quick if args.quick else full)]
        if args.json_dir is not None:
            command += ["--json", str(args.json_dir / f"{name}.json")]
        print(f"== aqrt bench: {name} ({' '.join(command[1:])})", flush=True)
        completed = subprocess.run(command, cwd=folder.parent)
        if completed.returncode != 0:
            failed.append(name)
        print(flush=True)
    if failed:
        print(f"aqrt bench: {', '.join(failed)} failed (see above)", file=sys.stderr)
        return 1
    return 0
