"""Compiling the engine off the event loop, only the kernels a job needs.

The first job of a process pays for importing numba and loading the kernels it uses (compiling
them, the first time on a machine): the tiers of :mod:`aqrt.engine.kernels` its PUBs need,
judged from their widths, bindings and noise, on the engine worker thread. A Bell job loads the
``small`` tier only, not the wide-state or trajectory kernels.

Until the ``small`` tier is loaded nothing runs inline on the loop; after that, an inline job
whose program needs a tier not loaded yet (a SWAP needs ``ops``) is refused by the engine's
serial paths before any kernel runs (:class:`~aqrt.engine.simulate.KernelsNotLoaded`), goes to
the worker instead, where the engine loads the tier its program uses: the loop never compiles.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from typing import Any

from ...engine.kernels import NOISY, SAMPLING, SMALL, SWEEP, WIDE
from ...engine.ops import WIDE_QUBITS
from ...job import JobRequest
from ..base import NOT_INLINE

__all__ = ["declared_tiers", "engine_is_warm", "needed_tiers", "run_if_loaded", "warm_engine"]


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
    from ...engine import warmup
    from . import chunks, engine_pubs  # noqa: F401  (imported here so the loop never imports them)

    warmup(dtype, tiers)


def declared_tiers(request: JobRequest, *, noisy: bool) -> tuple[str, ...]:
    """The tiers a job may need, from its circuits' declared widths (cheap enough for the event
    loop; a circuit's idle qubits count, so it may name more tiers than :func:`needed_tiers`)."""
    return _tiers(request, noisy, lambda circuit: int(circuit.num_qubits))


def needed_tiers(request: JobRequest, *, noisy: bool) -> tuple[str, ...]:
    """The tiers a job needs, from the qubits its circuits act on (a Bell circuit on a
    127-qubit device needs no wide-state kernels): reads every instruction, so call it off the
    event loop."""
    return _tiers(request, noisy, _active_qubits)


def run_if_loaded(run: Callable[[], Any]) -> Any:
    """``run()`` (an inline job), or ``NOT_INLINE`` when the engine refused it for a tier of
    kernels not loaded yet: the job then runs on the worker, where the engine loads that tier."""
    from ...engine.simulate import KernelsNotLoaded  # loaded with the small tier

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
            # A noisy circuit of n qubits may run as a density matrix: a 2n-qubit state.
            if width >= WIDE_QUBITS or (noisy and 2 * width >= WIDE_QUBITS):
                tiers.append(WIDE)
            elif math.prod(pub.parameter_values.shape) > 1:
                tiers.append(SWEEP)
    if noisy:
        tiers.append(NOISY)
    if request.program == "sampler":
        tiers.append(SAMPLING)
    return tuple(dict.fromkeys(tiers))
