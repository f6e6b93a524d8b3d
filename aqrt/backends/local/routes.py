"""The ways a local PUB can run, and the choice between them.

- ``"statevector"``: the numba engine on the circuit's active qubits (:mod:`.engine_pubs`), for
  unitary circuits with terminal measurements; parameter sweeps run in bulk and in chunks.
- ``"stabilizer"``: stim (:mod:`.stabilizer`), for Clifford circuits of
  :data:`STABILIZER_FROM` active qubits or more, at any width.
- ``"dynamic"``: the branching interpreter (:mod:`.dynamic`), for mid-circuit measurement,
  reset, control flow and classical expressions; unitary stretches run on the numba engine.

Every route computes the exact part of a PUB in the same shape: the Estimator's values per
(binding, observable), the Sampler's packed bits per classical register (bindings, shots,
bytes). :mod:`.engine_pubs` finishes both into the PUB's result (precision noise, BitArrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import SparseObservable

from ..._concurrency import CancelFlag
from ...job import Program
from . import dynamic

__all__ = [
    "DYNAMIC",
    "STABILIZER",
    "STABILIZER_FROM",
    "STATEVECTOR",
    "choose_method",
    "estimate_values",
    "fits_stabilizer",
    "sample_arrays",
    "unsupported",
]

STATEVECTOR = "statevector"
STABILIZER = "stabilizer"
DYNAMIC = "dynamic"

# From this many active qubits a Clifford circuit runs on stim: below it the statevector engine
# is as fast, and its results (seeded draws included) stay those of earlier aqrt versions.
STABILIZER_FROM = 20

_MEASURE_OR_RESET = frozenset({"measure", "reset"})


def fits_stabilizer(circuit: QuantumCircuit, program: Program) -> bool:
    """Whether stim can run this PUB circuit: Clifford, and for the Estimator without measurements or resets."""
    from . import stabilizer  # imports stim: only when a circuit may need it

    if not stabilizer.is_clifford(circuit):
        return False
    return program == "sampler" or _MEASURE_OR_RESET.isdisjoint(circuit.count_ops())


def unsupported(circuit: QuantumCircuit, program: Program) -> str | None:
    """What no route can run in this circuit (a message naming it), or None."""
    return dynamic.unsupported(circuit, program=program)


def choose_method(circuit: QuantumCircuit, program: Program) -> str:
    """The route for a prepared circuit (idle qubits already dropped)."""
    if circuit.num_qubits >= STABILIZER_FROM and fits_stabilizer(circuit, program):
        return STABILIZER
    if dynamic.needs_branching(circuit):
        return DYNAMIC
    if program == "estimator" and not _MEASURE_OR_RESET.isdisjoint(circuit.count_ops()):
        return DYNAMIC  # even terminal measurements: the Estimator averages over their outcomes
    return STATEVECTOR


def estimate_values(
    method: str,
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: list[str],
    observables: Sequence[SparseObservable],
    dtype: Any,
    cancel: CancelFlag | None = None,
) -> np.ndarray:
    """Exact observable values, shape (bindings, observables), on the stabilizer or dynamic route."""
    if method == STABILIZER:
        from . import stabilizer

        row = stabilizer.expectation_values(circuit, observables)
        return np.tile(np.asarray(row, dtype=np.float64), (values.shape[0], 1))
    if method == DYNAMIC:
        return dynamic.expectation_values(circuit, values, names, observables, cancel, dtype=dtype)
    raise ValueError(f"estimate_values runs the stabilizer and dynamic routes, not {method!r}")


def sample_arrays(
    method: str,
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: list[str],
    shots: int,
    rng: np.random.Generator,
    dtype: Any,
    cancel: CancelFlag | None = None,
) -> dict[str, np.ndarray]:
    """Packed samples per classical register, shape (bindings, shots, bytes), on the stabilizer or dynamic route."""
    if method == STABILIZER:
        from . import stabilizer

        per_binding = [stabilizer.sample(circuit, shots, rng) for _ in range(values.shape[0])]
        return {
            register.name: np.stack([samples[register.name] for samples in per_binding])
            if per_binding
            else np.zeros((0, shots, (register.size + 7) // 8), dtype=np.uint8)
            for register in circuit.cregs
        }
    if method == DYNAMIC:
        return dynamic.sample(circuit, values, names, shots, rng, cancel, dtype=dtype)
    raise ValueError(f"sample_arrays runs the stabilizer and dynamic routes, not {method!r}")
