"""``aqrt warmup``: compile (or load from numba's on-disk cache) every kernel of the engine now.

A job compiles only the kernels it needs, the first time they are needed on a machine (a
Bell job: the small-state ones, seconds); this compiles them all, for a service or a CI image
that no job should wait in. Prints how long it took; a first run also says that it compiles.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

__all__ = ["configure", "main", "show_compile_notice"]


class _CompileNotice(logging.StreamHandler):
    """The engine's compile notice as a plain ``aqrt: ...`` line on stderr."""


def show_compile_notice() -> None:
    """Print the engine's notice (logger ``aqrt.engine``, INFO) as a plain line on stderr when a
    kernel compile starts: the command line's way to say why a first run waits (library users
    see it through their own logging configuration)."""
    logger = logging.getLogger("aqrt.engine")
    if any(isinstance(handler, _CompileNotice) for handler in logger.handlers):
        return
    handler = _CompileNotice(sys.stderr)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("aqrt: %(message)s"))
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dtype",
        choices=("complex128", "complex64", "both"),
        default="complex128",
        help="the precision(s) to compile for (default complex128, the default precision)",
    )


def main(args: argparse.Namespace) -> int:
    show_compile_notice()
    from .engine import warmup

    for dtype in ("complex128", "complex64") if args.dtype == "both" else (args.dtype,):
        start = time.perf_counter()
        warmup(dtype)
        print(f"aqrt warmup: {dtype} kernels ready in {time.perf_counter() - start:.1f} s")
    return 0
