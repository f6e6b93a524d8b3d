"""Compiling the engine off the event loop, only the kernels a job needs.

The first job of a process pays for importing numba and loading the kernels it uses (compiling
them, the first time on a machine): the tiers of :mod:`aqrt.engine.kernels` its PUBs need,
judged from their widths, bindings and noise, on the engine worker thread. A Bell job loads the
``small`` tier only, not the wide-state or trajectory kernels.

Until the ``small`` tier is loaded, a job small enough for the loop by :func:`numpy_fits` runs
inline on :mod:`aqrt.engine.numpy_interpreter` (numpy only: it neither imports numba nor waits
for the kernels), and other jobs go to the worker, which loads the tiers they need. Once the
``small`` tier is loaded, tiny jobs run inline on the numba serial kernels; an inline job whose
program needs a tier not loaded yet (a SWAP needs ``ops``) is refused by the engine's serial
paths before any kernel runs (:class:`~aqrt.engine.kernels.KernelsNotLoaded`), goes to the
worker instead, where the engine loads the tier its program uses: the loop never compiles.

A process whose jobs all fit the numpy interpreter would otherwise never load numba, and its
jobs cost ~30% more than on the numba path for good (measured on the 2-core VM, sequential
jobs: a Bell job 254-320 us against 187-195 us, an 8-qubit, 92-gate job 1.6-1.9 ms against
1.2-1.3 ms). Once the numpy interpreter has run :data:`NUMPY_SECONDS_BEFORE_LOADING` of inline
jobs for a precision, :func:`note_numpy_seconds` loads that precision's ``small`` tier on the
engine worker in the background: the loop never waits for it, and jobs run on numpy until it
is loaded. Not sooner, for two costs: the load holds the interpreter's lock much of the time
(from numba's cache it took ~2 s on that VM while inline jobs ran, each 2.5-5x slower
meanwhile), and the engine worker is joined at interpreter exit, so a script that ends while
the tier loads waits for it. Scripts of fewer seconds of small jobs never pay either.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

from qiskit.primitives.containers.sampler_pub import SamplerPub

from ..._concurrency import engine_executor, on_engine_thread
from ...engine import numpy_interpreter  # noqa: F401  (numpy only: imported here, never on the loop)
from ...engine.kernels import NOISY, SAMPLING, SMALL, SWEEP, WIDE, KernelsNotLoaded
from ...engine.ops import WIDE_QUBITS, runs_wide
from ...job import JobRequest
from ..base import NOT_INLINE
from . import engine_pubs  # noqa: F401  (numba-free; the inline paths use it, the loop must not import it)

__all__ = [
    "NUMPY_BUDGET_SECONDS",
    "NUMPY_MAX_QUBITS",
    "NUMPY_SECONDS_BEFORE_LOADING",
    "declared_tiers",
    "engine_is_warm",
    "needed_tiers",
    "note_numpy_seconds",
    "numpy_fits",
    "numpy_seconds",
    "run_if_loaded",
    "warm_engine",
]

# Jobs the numpy interpreter runs on the loop before the kernels are loaded: at most this many
# qubits declared per circuit, and about this much work by numpy_seconds (a 10-qubit circuit of
# ~70 gates, a Bell Sampler job of ~20,000 shots). The alternative is waiting for numba's import
# and the small tier (~0.6 s from numba's cache, 6-10 s to compile on a 2-core machine); numba's
# own inline jobs (a few thousand amplitude updates) take up to ~150 us on the loop.
NUMPY_MAX_QUBITS = 10
NUMPY_BUDGET_SECONDS = 1e-3
# numpy_seconds' constants, measured (best of 30, 2-core VM) with the numpy interpreter: an op
# costs ~6-8 us of numpy calls plus ~5 ns per amplitude (a 10-qubit RY/CX circuit of 19 gates
# 190 us, of 76 gates 690 us); a shot drawn and packed ~40 ns; a PUB's lowering, term table and
# result ~40 us, a Sampler PUB's ~100 us (the numba path pays those too).
logger = logging.getLogger("aqrt.engine")

_NUMPY_OP_SECONDS = 8e-6
_NUMPY_AMPLITUDE_SECONDS = 5e-9
_NUMPY_SHOT_SECONDS = 40e-9
_NUMPY_PUB_SECONDS = 40e-6
_NUMPY_SAMPLER_PUB_SECONDS = 100e-6


NUMPY_SECONDS_BEFORE_LOADING = 2.0
"""Seconds of inline jobs on the numpy interpreter, per precision, after which the process loads
that precision's ``small`` tier in the background (see the module's docstring)."""
_numpy_seconds: dict[str, float] = {}
_small_tier_requested: set[str] = set()

_PARALLEL_TIERS = (SWEEP, WIDE, NOISY)  # tiers whose kernels run on numba's threads
_team_pinned = False


def engine_is_warm(dtype: str = "complex128", tiers: Iterable[str] = (SMALL,)) -> bool:
    """True once the kernels of ``tiers`` (default: the ``small`` tier) for ``dtype`` are loaded
    in this process; never imports anything (it runs on the event loop, and importing numba
    reads files)."""
    module = sys.modules.get("aqrt.engine._warmup")
    # While the worker thread is still importing it, the module is in sys.modules half made.
    is_warm = getattr(module, "is_warm", None)
    return is_warm is not None and bool(is_warm(dtype, tiers))


def warm_engine(dtype: str = "complex128", tiers: Iterable[str] = (SMALL,)) -> None:
    """Import the engine and compile (or load) the kernels of ``tiers`` for ``dtype`` (seconds
    the first time on a machine, then cached); call it on a worker thread."""
    from ...engine import sampling, simulate, warmup  # noqa: F401  (numba: the loop never imports them)
    from ...engine.threads import pin_team
    from . import chunks  # noqa: F401

    tiers = tuple(tiers)
    warmup(dtype, tiers)
    global _team_pinned
    if not _team_pinned and on_engine_thread() and any(tier in _PARALLEL_TIERS for tier in tiers):
        _team_pinned = True
        pin_team()  # each parallel thread on a CPU of its own (aqrt.engine.threads says why and when)


def note_numpy_seconds(dtype: str, seconds: float) -> None:
    """Count ``seconds`` of an inline job run on the numpy interpreter at ``dtype``; past
    :data:`NUMPY_SECONDS_BEFORE_LOADING` in all, submit the ``small`` tier's load for ``dtype``
    to the engine worker, once, without waiting for it. Called where inline jobs run: the event
    loop, and the calling threads of the Engine primitives (two threads racing here submit the
    load twice at most; the worker runs the second as a no-op)."""
    spent = _numpy_seconds[dtype] = _numpy_seconds.get(dtype, 0.0) + seconds
    if spent < NUMPY_SECONDS_BEFORE_LOADING or dtype in _small_tier_requested:
        return
    _small_tier_requested.add(dtype)
    engine_executor().submit(warm_engine, dtype, (SMALL,)).add_done_callback(_report_failed_load)


def _report_failed_load(future: Any) -> None:
    # Nobody waits for the background load: a failure is logged here, and the next job that
    # needs the tier loads it on the worker and reports the error as its own.
    error = future.exception()
    if error is not None:
        logger.warning("loading the engine's small tier in the background failed: %r", error)


def declared_tiers(request: JobRequest, *, noisy: bool) -> tuple[str, ...]:
    """The tiers a job may need, from its circuits' declared widths (cheap enough for the event
    loop; a circuit's idle qubits count, so it may name more tiers than :func:`needed_tiers`)."""
    return _tiers(request, noisy, lambda circuit: int(circuit.num_qubits))


def needed_tiers(request: JobRequest, *, noisy: bool) -> tuple[str, ...]:
    """The tiers a job needs, from the qubits its circuits act on (a Bell circuit on a
    127-qubit device needs no wide-state kernels): reads every instruction, so call it off the
    event loop."""
    return _tiers(request, noisy, _active_qubits)


def numpy_seconds(request: JobRequest) -> float:
    """About how long the numpy interpreter takes for ``request`` (its circuits' declared widths
    and gate counts; cheap enough for the event loop)."""
    seconds = 0.0
    for pub in request.pubs:
        bindings = math.prod(pub.parameter_values.shape)
        per_op = _NUMPY_OP_SECONDS + _NUMPY_AMPLITUDE_SECONDS * (1 << pub.circuit.num_qubits)
        seconds += bindings * (len(pub.circuit) + 2) * per_op
        if isinstance(pub, SamplerPub):
            seconds += _NUMPY_SAMPLER_PUB_SECONDS + bindings * int(pub.shots) * _NUMPY_SHOT_SECONDS
        else:
            seconds += _NUMPY_PUB_SECONDS
    return seconds


def numpy_fits(request: JobRequest) -> bool:
    """Whether ``request`` may run inline on the numpy interpreter while the kernels are not
    loaded: an Estimator or Sampler job whose circuits declare at most :data:`NUMPY_MAX_QUBITS`
    qubits and whose work (:func:`numpy_seconds`) is within :data:`NUMPY_BUDGET_SECONDS` (the
    caller checks noise and routes, as for any inline job)."""
    if request.program not in ("estimator", "sampler"):
        return False
    if any(pub.circuit.num_qubits > NUMPY_MAX_QUBITS for pub in request.pubs):
        return False
    return numpy_seconds(request) <= NUMPY_BUDGET_SECONDS


def run_if_loaded(run: Callable[[], Any]) -> Any:
    """``run()`` (an inline job), or ``NOT_INLINE`` when the engine refused it for a tier of
    kernels not loaded yet: the job then runs on the worker, where the engine loads that tier."""
    try:
        return run()
    except KernelsNotLoaded:
        return NOT_INLINE


def _active_qubits(circuit: Any) -> int:
    return len({qubit for instruction in circuit.data for qubit in instruction.qubits})


def _tiers(request: JobRequest, noisy: bool, width_of: Callable[[Any], int]) -> tuple[str, ...]:
    tiers = [SMALL]
    if request.program != "executor":  # a QuantumProgram's items load what they use, on the worker
        for pub in request.pubs:
            width = width_of(pub.circuit)
            bindings = math.prod(pub.parameter_values.shape)
            # A noisy circuit of n qubits may run as a density matrix: a 2n-qubit state.
            if runs_wide(width, bindings) or (noisy and 2 * width >= WIDE_QUBITS):
                tiers.append(WIDE)
            elif bindings > 1:
                tiers.append(SWEEP)
    if noisy:
        tiers.append(NOISY)
    if request.program == "sampler":
        tiers.append(SAMPLING)
    return tuple(dict.fromkeys(tiers))
