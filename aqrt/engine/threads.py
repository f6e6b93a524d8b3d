"""Where the engine's parallel threads run: each on a CPU of its own, when the process uses
every CPU it may run on.

A parallel kernel splits its work evenly between numba's threads and ends when the last thread
is done. Linux places a thread where it wakes, and after a pause or a spell of single-threaded
work it often wakes both threads of a two-thread team on one CPU, where they take turns: the
kernel then takes twice as long. Measured on the 2-core machine of ``benchmarks/`` (numba's
``omp`` layer, 64 equal work items of ~130 us, 12 runs after a 65 ms pause and 12 after 65 ms
of busy work, four times over): both threads on one CPU in 3 to 11 runs of 12, medians 4.3 to
10.7 ms against a best of 4.2 ms; pinned, in none, medians 4.3 to 4.4 ms (one set 6.8 ms on a
machine shared with other work). The n = 8 sweep of ``benchmarks/engine.py`` is such a kernel.

:func:`pin_team` pins the calling thread and the threads numba runs its parallel loops on, one
CPU each, in order. :func:`pinning_cpus` decides whether to: only when numba's thread count (at
least 2) equals the number of CPUs the process may use (a process that leaves CPUs to others, a
Dask worker of one thread say, keeps the system's placement), when nobody chose a placement
already (``OMP_PROC_BIND``, ``OMP_PLACES``, ``GOMP_CPU_AFFINITY``, ``KMP_AFFINITY``), and unless
``AQRT_PIN_THREADS=0``. The backends call it on the engine worker thread only, never on a
user's thread (threads and processes started from a pinned thread inherit its CPU), when that
thread first loads a parallel tier; a process whose tiers were loaded on another thread (an
``aqrt.engine.warmup()`` call of its own) keeps the system's placement.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["PIN_ENV", "pin_team", "pinning_cpus", "team_thread_ids"]

PIN_ENV = "AQRT_PIN_THREADS"
"""``AQRT_PIN_THREADS=0`` leaves the engine's threads where the system puts them."""

_PLACEMENT_CHOSEN = ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY")
_PERSISTENT_LAYERS = ("omp", "workqueue")  # the same threads run every parallel loop (not tbb's)


def pinning_cpus(num_threads: int, allowed: Sequence[int], environ: Mapping[str, str]) -> tuple[int, ...] | None:
    """The CPU for each of ``num_threads`` threads, in order, or None when they stay unpinned
    (see the module's docstring for when)."""
    if environ.get(PIN_ENV, "1").strip() == "0":
        return None
    if any(name in environ for name in _PLACEMENT_CHOSEN):
        return None
    if num_threads < 2 or num_threads != len(allowed):
        return None
    return tuple(sorted(allowed))


def _gettid_typer(typingctx: Any) -> Any:
    """The calling OS thread's id (glibc's ``gettid``)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "gettid")
        return builder.sext(builder.call(function, []), ir.IntType(64))

    return types.int64(), codegen


_gettid: Any = intrinsic(_gettid_typer)  # typed Any: numba's stub counts typingctx as an argument


@njit(cache=True, parallel=True)
def _team_thread_ids(out: np.ndarray) -> None:
    """``out[t]``: the OS thread id of numba's thread t, for every thread that ran an iteration."""
    for _ in prange(out.shape[0]):
        out[numba.get_thread_id()] = _gettid()


def team_thread_ids() -> list[int]:
    """The OS thread ids of numba's threads, in numba's order (0 for a thread that ran no
    iteration), as seen from the calling thread (which runs as thread 0); empty off Linux."""
    if sys.platform != "linux":  # glibc's gettid
        return []
    thread_ids = np.zeros(numba.get_num_threads(), dtype=np.int64)
    _team_thread_ids(thread_ids)
    return [int(thread_id) for thread_id in thread_ids]


def pin_team() -> tuple[int, ...] | None:
    """Pin the calling thread and numba's threads to a CPU each, if :func:`pinning_cpus` says
    so; returns the CPUs (numba's thread t on the t-th), or None when nothing was pinned. Call
    it on the thread that runs the engine's kernels."""
    if sys.platform != "linux":  # glibc's gettid, and a thread's CPUs set by its id
        return None
    cpus = pinning_cpus(numba.get_num_threads(), sorted(os.sched_getaffinity(0)), os.environ)
    if cpus is None:
        return None
    thread_ids = team_thread_ids()
    # A layer whose threads change between loops, or a team that did not all run an iteration:
    # nothing is pinned (a partial pinning could put two threads on one CPU for good).
    if numba.threading_layer() not in _PERSISTENT_LAYERS or 0 in thread_ids or len(set(thread_ids)) != len(cpus):
        return None
    for thread_id, cpu in zip(thread_ids, cpus, strict=True):
        os.sched_setaffinity(thread_id, {cpu})
    return cpus
