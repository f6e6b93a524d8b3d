"""Compiling the engine once per process, off the event loop.

The first job of a process pays for importing numba and loading (or compiling) the kernels;
that happens on the engine worker thread. Until then nothing runs inline on the loop.
"""

from __future__ import annotations

import sys

__all__ = ["engine_is_warm", "warm_engine"]


def engine_is_warm(dtype: str = "complex128") -> bool:
    """True once the kernels for ``dtype`` are loaded in this process; never imports anything
    (it runs on the event loop, and importing numba reads files)."""
    module = sys.modules.get("aqrt.engine._warmup")
    # While the worker thread is still importing it, the module is in sys.modules half made.
    is_warm = getattr(module, "is_warm", None)
    return is_warm is not None and bool(is_warm(dtype))


def warm_engine(dtype: str = "complex128") -> None:
    """Import and compile the engine for ``dtype`` (seconds the first time, then cached); call
    it on a worker thread."""
    from ...engine import warmup
    from . import chunks, engine_pubs  # noqa: F401  (imported here so the loop never imports them)

    warmup(dtype)
