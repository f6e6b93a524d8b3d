"""The numba statevector engine (imports numpy and numba only)."""

from .lowering import LoweredCircuit, LoweringError, Program, lower_circuit
from .observables import TermTable, build_term_table
from .simulate import final_state, probabilities, term_values

__all__ = [
    "LoweredCircuit",
    "LoweringError",
    "Program",
    "TermTable",
    "build_term_table",
    "final_state",
    "lower_circuit",
    "probabilities",
    "term_values",
    "warmup",
]


def warmup(dtype: str = "complex128") -> None:
    """Compile (or load from numba's cache) every kernel, so first jobs do not pay for it."""
    from ._warmup import warmup as _warmup

    _warmup(dtype)
