"""Pauli twirling of a circuit's 2-qubit gates and random measurement-twirl masks (issue #11).

A twirled 2-qubit gate ``G`` becomes ``Q . G . P`` with ``P`` a random 2-qubit Pauli and
``Q = G P G^dagger`` (a Pauli up to a sign, which goes into the circuit's global phase), so the
ideal unitary is unchanged while the gate's noise is averaged into a Pauli channel.

The frames are inserted as ``PauliGate`` instructions, which no device noise model attaches
noise to. IBM merges twirl frames into the neighbouring single-qubit layers, so on hardware they
add no gates of their own; leaving them noiseless here is the faithful approximation of that.
Only the twirled qubits of each gate are framed (IBM's ``strategy="active"``); IBM's default
``"active-accum"`` also frames idle qubits of a layer, which on a noise model without idle noise
on Pauli frames changes nothing.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from qiskit.circuit import Gate, QuantumCircuit
from qiskit.circuit.library import PauliGate
from qiskit.quantum_info import Operator, Pauli

__all__ = ["measurement_twirl_signs", "twirl_pairs", "twirled_circuit"]

_PAULI_LABELS = tuple("".join(pair) for pair in itertools.product("IXYZ", repeat=2))
# Paulis that commute with Z (x) Z (both factors in {I, Z} or both in {X, Y}): rzz(t) for any t.
_COMMUTES_WITH_ZZ = tuple(label for label in _PAULI_LABELS if (label[0] in "XY") == (label[1] in "XY"))


@functools.cache
def _pauli_matrices() -> dict[str, np.ndarray]:
    return {label: Pauli(label).to_matrix() for label in _PAULI_LABELS}


@functools.lru_cache(maxsize=256)
def _pairs_for_matrix(matrix_bytes: bytes) -> tuple[tuple[str, str, bool], ...]:
    gate = np.frombuffer(matrix_bytes, dtype=np.complex128).reshape(4, 4)
    matrices = _pauli_matrices()
    pairs = []
    for before in _PAULI_LABELS:
        conjugated = gate @ matrices[before] @ gate.conj().T
        for after, candidate in matrices.items():
            for sign in (1.0, -1.0):
                if np.allclose(conjugated, sign * candidate, atol=1e-10):
                    pairs.append((before, after, sign < 0))
    return tuple(pairs)


def twirl_pairs(gate: Gate) -> tuple[tuple[str, str, bool], ...]:
    """The Pauli frames ``(before, after, negated)`` that leave the 2-qubit ``gate`` unchanged.

    ``G = s * after . G . before`` with ``s = -1`` when ``negated``. Labels are in Qiskit order
    (the last character acts on the gate's first qubit). A parametrised ``rzz`` keeps the eight
    Paulis that commute with ``ZZ``; another parametrised gate has no frames (left untwirled).
    """
    if gate.name == "rzz" and gate.is_parameterized():
        return tuple((label, label, False) for label in _COMMUTES_WITH_ZZ)
    if gate.is_parameterized():
        return ()
    matrix = np.ascontiguousarray(Operator(gate).data, dtype=np.complex128)
    return _pairs_for_matrix(matrix.tobytes())


def _is_twirlable(operation: object, num_qubits: int) -> bool:
    return isinstance(operation, Gate) and num_qubits == 2 and not isinstance(operation, PauliGate)


def twirled_circuit(circuit: QuantumCircuit, rng: np.random.Generator) -> QuantumCircuit:
    """A copy of ``circuit`` with a random Pauli frame around each top-level 2-qubit gate.

    The result equals ``circuit`` as an operator (signs go into the global phase). Gates inside
    control flow are left alone.
    """
    twirled = circuit.copy_empty_like()
    negations = 0
    for instruction in circuit.data:
        operation = instruction.operation
        if not _is_twirlable(operation, len(instruction.qubits)):
            twirled.append(instruction)
            continue
        assert isinstance(operation, Gate)
        pairs = twirl_pairs(operation)
        if not pairs:
            twirled.append(instruction)
            continue
        before, after, negated = pairs[int(rng.integers(len(pairs)))]
        if before != "II":
            twirled.append(PauliGate(before), instruction.qubits)
        twirled.append(instruction)
        if after != "II":
            twirled.append(PauliGate(after), instruction.qubits)
        negations += negated
    twirled.global_phase = circuit.global_phase + math.pi * (negations % 2)
    return twirled


def measurement_twirl_signs(num_qubits: int, num_masks: int, rng: np.random.Generator) -> np.ndarray:
    """Random X-flip masks for measurement twirling: ``(num_masks, num_qubits)`` of +1/-1.

    Entry ``[m, q]`` is ``(-1)**flip`` of qubit ``q`` in mask ``m``; the mean over masks is the
    ``readout_twirl_signs`` an evaluator receives.
    """
    flips = rng.integers(0, 2, size=(num_masks, num_qubits))
    return np.where(flips == 1, -1.0, 1.0)
