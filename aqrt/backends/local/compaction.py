"""Only the qubits a circuit uses are simulated.

A circuit transpiled for a device is as wide as the device (127 or 156 qubits) even when it
acts on five of them. The qubits that no instruction touches (barriers and delays do not count)
stay in |0> for the whole circuit, so they are dropped before simulation, as Aer does, and put
back in the results: the Sampler's classical bits are untouched (only qubits are renumbered),
and an Estimator observable's factor on an idle qubit is its value in |0> (Z and |0><0| give 1,
X, Y and |1><1| give 0, the other projectors 1/2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from qiskit.circuit import CircuitInstruction, QuantumCircuit, Qubit
from qiskit.quantum_info import SparseObservable

__all__ = ["CompactCircuit", "active_qubits", "compact_circuit", "restrict_observable"]

_NO_EFFECT = frozenset({"barrier", "delay"})

# The value in |0> of each single-qubit SparseObservable bit term (qiskit.quantum_info.SparseObservable.BitTerm):
# Z, X, Y, |0><0|, |1><1|, |+><+|, |-><-|, |r><r|, |l><l|.
_VALUE_IN_ZERO = {1: 1.0, 2: 0.0, 3: 0.0, 9: 1.0, 5: 0.0, 10: 0.5, 6: 0.5, 11: 0.5, 7: 0.5}


@dataclasses.dataclass(frozen=True)
class CompactCircuit:
    """A circuit on its active qubits only.

    Attributes:
        circuit: the circuit on ``len(active)`` qubits, with the original's clbits, registers and vars.
        active: the original index of each kept qubit, in order (qubit j of ``circuit`` is ``active[j]``).
        num_qubits: the original circuit's width.
    """

    circuit: QuantumCircuit
    active: tuple[int, ...]
    num_qubits: int

    @property
    def dropped(self) -> bool:
        """Whether any qubit was dropped."""
        return len(self.active) != self.num_qubits


def active_qubits(circuit: QuantumCircuit) -> tuple[int, ...]:
    """Indices of the qubits some instruction other than a barrier or delay acts on, ascending."""
    used: set[Qubit] = set()
    width = circuit.num_qubits
    for instruction in circuit.data:
        # the instruction's name, not its operation's: Qiskit builds a standard gate's Python
        # object on each read of ``operation`` (~2 us, most of this loop on a 400-gate circuit)
        if instruction.name not in _NO_EFFECT:
            used.update(instruction.qubits)
            if len(used) == width:
                return tuple(range(width))  # every qubit is used: the rest cannot change that
    return tuple(sorted(circuit.find_bit(bit).index for bit in used))


def compact_circuit(circuit: QuantumCircuit) -> CompactCircuit:
    """``circuit`` without its idle qubits (the circuit itself when every qubit is used)."""
    active = active_qubits(circuit)
    if len(active) == circuit.num_qubits:
        return CompactCircuit(circuit, active, circuit.num_qubits)
    kept = [circuit.qubits[index] for index in active]
    renamed = {bit: Qubit() for bit in kept}
    compact = QuantumCircuit(
        list(renamed.values()),
        list(circuit.clbits),
        name=circuit.name,
        global_phase=circuit.global_phase,
        metadata=circuit.metadata,
    )
    for register in circuit.cregs:
        compact.add_register(register)
    for var in circuit.iter_input_vars():
        compact.add_input(var)
    for var in circuit.iter_captured_vars():
        compact.add_capture(var)
    for var in circuit.iter_declared_vars():
        compact.add_uninitialized_var(var)
    for instruction in circuit.data:
        if instruction.operation.name in _NO_EFFECT:
            qubits = tuple(renamed[q] for q in instruction.qubits if q in renamed)
            if not qubits:
                continue
            if len(qubits) != len(instruction.qubits):
                if instruction.operation.name == "delay":
                    continue  # a delay does nothing to a noiseless state
                operation = type(instruction.operation)(len(qubits))
                compact._append(CircuitInstruction(operation, qubits, instruction.clbits))
                continue
        else:
            qubits = tuple(renamed[q] for q in instruction.qubits)
        compact._append(instruction.replace(qubits=qubits))
    return CompactCircuit(compact, active, circuit.num_qubits)


def restrict_observable(observable: SparseObservable, active: Sequence[int]) -> SparseObservable:
    """``observable`` (on the full width) as an observable on the ``active`` qubits, the others in |0>."""
    if len(active) == observable.num_qubits:
        return observable
    position = np.full(observable.num_qubits, -1, dtype=np.int64)
    position[np.asarray(active, dtype=np.int64)] = np.arange(len(active))
    bit_terms = np.asarray(observable.bit_terms, dtype=np.uint8)
    indices = np.asarray(observable.indices, dtype=np.int64)
    boundaries = np.asarray(observable.boundaries, dtype=np.int64)
    coeffs = np.asarray(observable.coeffs, dtype=np.complex128)
    new_coeffs: list[complex] = []
    new_terms: list[np.ndarray] = []
    new_indices: list[np.ndarray] = []
    new_boundaries = [0]
    for k in range(len(coeffs)):
        start, stop = boundaries[k], boundaries[k + 1]
        mapped = position[indices[start:stop]]
        kept = mapped >= 0
        factor = 1.0
        for term in bit_terms[start:stop][~kept].tolist():
            factor *= _VALUE_IN_ZERO[term]
        if factor == 0.0:
            continue
        new_coeffs.append(complex(coeffs[k]) * factor)
        new_terms.append(bit_terms[start:stop][kept])
        new_indices.append(mapped[kept])
        new_boundaries.append(new_boundaries[-1] + int(kept.sum()))
    if not new_coeffs:
        return SparseObservable.zero(len(active))
    return SparseObservable.from_raw_parts(
        len(active),
        np.asarray(new_coeffs, dtype=np.complex128),
        np.concatenate(new_terms).astype(np.uint8),
        np.concatenate(new_indices).astype(np.uint32),
        np.asarray(new_boundaries, dtype=np.uintp),
    )
