"""Numba kernels of the statevector engine, split by concern, and their tiers.

- :mod:`.bits`         index arithmetic shared by the kernels
- :mod:`.apply`        serial gate application (one op on a whole state)
- :mod:`.simd`         explicit-SIMD gate kernels (16 amplitudes per LLVM vector) that
  :mod:`.apply` routes 1-qubit gates, CX and ops below qubit 4 to
- :mod:`.apply_par`    amplitude-parallel gate application (one op on a wide state)
- :mod:`.reductions`   Pauli term values and probabilities of a state
- :mod:`.interpreter`  whole programs per kernel call: ``run_program`` (every op kind),
  ``run_basic_program`` (the common ones), sweeps over bindings, cache-blocked groups
- :mod:`.sweeps`       sweeps of small states (each binding's gate entries made in the kernel
  from its angles; the Pauli terms of 8 bindings reduced together)
- :mod:`.sampling`     shots drawn from probabilities, their bits packed
- :mod:`.registry`     the op-kernel table (op kind -> kernel, serial and parallel), read by the
  non-jitted dispatcher, the warm-up and the tests

Conventions:

- A state of n qubits is a C-contiguous complex128 (or complex64) array of length 2**n; qubit q
  is bit q of the amplitude index (Qiskit's little-endian order).
- A k-qubit operator on qubits (q_0, ..., q_{k-1}) is a (2**k, 2**k) matrix whose row/column
  index has q_j as bit j (Qiskit's convention). ``qubits`` arrays are in that gate order, int64.
- Matrices and diagonals have the state's dtype. Kernels update the state in place.
- ``*_par`` kernels are parallel over amplitudes (for wide states, called from the engine worker
  only); ``run_program`` is serial and is the unit of parallelism over bindings in sweeps.
- Programs travel as one :class:`~aqrt.engine.ops.OpArrays` record plus their entry buffers
  (format in :mod:`aqrt.engine.ops`).
- A Pauli term is (x_mask, z_mask): its value is sum_i (-1)^popcount(i & z) conj(psi[i ^ x]) psi[i];
  the caller folds Y phases and coefficients into the term's weight.
- Every kernel is ``@njit(cache=True)``: compiled once per signature, machine code cached on disk.

Tiers: the kernels are compiled (or loaded from numba's cache) in groups, by the jobs that need
them, so that a first job waits only for its own (:mod:`aqrt.engine._warmup` compiles a tier;
this module, which imports no numba, records which tiers are loaded in this process):

- ``small``  ``run_basic_program`` and ``pauli_values``: small noiseless circuits of CX,
  diagonal, controlled and one-qubit gates, one binding at a time (a Bell job), and
  ``binding_row`` (one binding's entries from its angles)
- ``ops``    ``run_program``: every op kind serially (permutations such as SWAP, dense
  matrices on two or more qubits), and ``binding_row``
- ``sweep``  whole programs for many bindings, parallel over bindings (:mod:`.sweeps`)
- ``wide``   the cache-blocked group kernel, the amplitude-parallel op kernels and reductions
  (states of ``WIDE_QUBITS`` qubits or more)
- ``noisy``  the trajectory kernels (noisy circuits by Monte Carlo trajectories)
- ``sampling``  shots drawn from probabilities and packed as bits (a Sampler job off the loop)
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "NOISY",
    "OPS",
    "SAMPLING",
    "SMALL",
    "SWEEP",
    "TIERS",
    "WIDE",
    "KernelsNotLoaded",
    "dtype_name",
    "ensure_loaded",
    "mark_loaded",
    "set_loader",
    "tier_loaded",
]

SMALL = "small"
OPS = "ops"
SWEEP = "sweep"
WIDE = "wide"
NOISY = "noisy"
SAMPLING = "sampling"
TIERS = (SMALL, OPS, SWEEP, WIDE, NOISY, SAMPLING)

# (tier, dtype name) pairs whose kernels are loaded in this process. Written by the warm-up (on
# the engine worker) once a tier is compiled; read by the serial paths, which run inline on the
# event loop and must never compile.
_loaded: set[tuple[str, str]] = set()


_DTYPE_NAMES: dict[object, str] = {}


def dtype_name(dtype: object) -> str:
    """numpy's name of ``dtype`` ("complex128"), remembered per dtype object: ``np.dtype.name`` is
    Python code in numpy, and the tier checks ask for it before every tiny job."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        import numpy as np

        name = _DTYPE_NAMES[dtype] = np.dtype(dtype).name  # type: ignore[call-overload]
    return name


class KernelsNotLoaded(Exception):
    """A serial path needs a tier of kernels that this process has not loaded yet; it does not
    compile them (it may be running on the event loop): run the job on a worker instead.
    Defined here, with no numba import, so that callers on the loop can catch it without
    importing the engine."""

    def __init__(self, tier: str, dtype: str) -> None:
        super().__init__(f"the {tier!r} kernels for {dtype} are not loaded in this process")
        self.tier = tier
        self.dtype = dtype


def tier_loaded(tier: str, dtype: str) -> bool:
    """True once ``tier``'s kernels for states of ``dtype`` (a dtype name) are loaded here."""
    return (tier, dtype) in _loaded


# Loads a tier (tier, dtype name): aqrt.engine._warmup registers its warm-up when it is imported,
# so that the engine's entry points can load a tier they are about to use (with the compile
# notice) without importing the warm-up, which sits above them.
_loader: Callable[[str, str], None] | None = None


def set_loader(loader: Callable[[str, str], None]) -> None:
    """Register what :func:`ensure_loaded` calls to load a tier (the warm-up registers itself)."""
    global _loader
    _loader = loader


def ensure_loaded(tier: str, dtype: str) -> None:
    """Load ``tier`` for ``dtype`` now if it is not loaded yet, through the registered warm-up
    (which says so when it compiles); with none registered the kernels compile on first call,
    as numba does. Never call it on the event loop: loading may compile for seconds."""
    if (tier, dtype) not in _loaded and _loader is not None:
        _loader(tier, dtype)


def mark_loaded(tier: str, dtype: str) -> None:
    """Record that ``tier``'s kernels for ``dtype`` are loaded (the warm-up calls this)."""
    if tier not in TIERS:
        raise ValueError(f"unknown kernel tier {tier!r}; the tiers are {', '.join(TIERS)}")
    _loaded.add((tier, dtype))
