"""``aqrt warmup``: compile (or load from numba's on-disk cache) the engine's kernels now.

The first job of a process does this anyway; run it once after installing, or at the start of
a service, so that no job waits for it. Prints how long it took.
"""

from __future__ import annotations

import argparse
import sys
import time

from .cli import first_run_note

__all__ = ["configure", "main"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dtype",
        choices=("complex128", "complex64", "both"),
        default="complex128",
        help="the precision(s) to compile for (default complex128, the default precision)",
    )


def main(args: argparse.Namespace) -> int:
    note = first_run_note()
    if note is not None:
        print(note, file=sys.stderr, flush=True)
    from .engine import warmup

    for dtype in ("complex128", "complex64") if args.dtype == "both" else (args.dtype,):
        start = time.perf_counter()
        warmup(dtype)
        print(f"aqrt warmup: {dtype} kernels ready in {time.perf_counter() - start:.1f} s")
    return 0
