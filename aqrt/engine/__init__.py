"""The numba statevector engine (imports numpy and numba only; importing this package, or its
numpy-only modules, does not import numba: the kernels load with the first module that runs them).

- :mod:`.ops`           op kinds, the :class:`OpArrays` record and :class:`BoundProgram` (numpy only)
- :mod:`.gates`         matrices of parameterised gates for many bindings at once (numpy only)
- :mod:`.lowering`      circuit -> gate ops -> fused, classified, packed program (numpy only)
- :mod:`.observables`   observables as Pauli terms the kernels understand (numpy only)
- :mod:`.blocking`      cache-blocked schedule of a program on a wide state (numpy only)
- :mod:`.kernels`       the numba kernels (gate application, reductions, interpreter, op-kernel table)
- :mod:`.simulate`      running bound programs: term values, probabilities, final states
- :mod:`.noise`         channels (Kraus sets, unitary mixtures) that noisy circuits carry (numpy only)
- :mod:`.density`       noisy circuits exactly, as density matrices on the same kernels
- :mod:`.trajectories`  noisy circuits by Monte Carlo trajectories (numba)
- :mod:`._warmup`       compile the kernels for a precision, tier by tier (driven by the op-kernel table)
"""

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .lowering import LoweredCircuit, LoweringError, fused_width, lower_circuit
from .observables import TermTable, build_term_table
from .ops import BoundProgram, OpArrays

if TYPE_CHECKING:
    from .simulate import evolve, final_state, probabilities, term_values

__all__ = [
    "BoundProgram",
    "LoweredCircuit",
    "LoweringError",
    "OpArrays",
    "TermTable",
    "build_term_table",
    "evolve",
    "final_state",
    "fused_width",
    "lower_circuit",
    "probabilities",
    "term_values",
    "warmup",
]


def warmup(dtype: str = "complex128", tiers: Iterable[str] | None = None) -> None:
    """Compile (or load from numba's cache) the kernels for states of ``dtype``, so that jobs do
    not pay for it: every tier, or only ``tiers`` (names in :mod:`aqrt.engine.kernels`: ``small``,
    ``ops``, ``sweep``, ``wide``, ``noisy``). Jobs load the tiers they need by themselves; this
    prepays them (``aqrt warmup`` calls it with every tier)."""
    from ._warmup import TIERS
    from ._warmup import warmup as _warmup

    _warmup(dtype, TIERS if tiers is None else tiers)


_FROM_SIMULATE = frozenset({"evolve", "final_state", "probabilities", "term_values"})


def __getattr__(name: str) -> Any:
    """:mod:`.simulate` (and its ``evolve``, ``final_state``, ``probabilities``, ``term_values``) on first use."""
    if name == "simulate" or name in _FROM_SIMULATE:
        simulate = importlib.import_module(f"{__name__}.simulate")  # sets this package's attribute
        return simulate if name == "simulate" else getattr(simulate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
