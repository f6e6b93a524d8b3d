"""Parameterised circuits and grids shared by the sweep, progress and Dask tests."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.quantum_info import SparsePauliOp


def ansatz(num_qubits: int, layers: int, *, measure: bool = False, named: bool = False) -> QuantumCircuit:
    """A hardware-efficient ansatz with 2 * num_qubits parameters reused across layers
    (``named``: plain parameters p00, p01, ... whose order survives an OpenQASM 3 round trip)."""
    theta = [Parameter(f"p{i:02d}") for i in range(2 * num_qubits)] if named else ParameterVector("t", 2 * num_qubits)
    circuit = QuantumCircuit(num_qubits)
    for _ in range(layers):
        for q in range(num_qubits):
            circuit.ry(theta[q], q)
            circuit.rz(theta[num_qubits + q], q)
        for q in range(num_qubits - 1):
            circuit.cx(q, q + 1)
    if measure:
        circuit.measure_all()
    return circuit


def grid(num_bindings: int, num_parameters: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(num_bindings, num_parameters))


def observables(num_qubits: int) -> list[SparsePauliOp]:
    return [
        SparsePauliOp("Z" * num_qubits),
        SparsePauliOp.from_sparse_list([("XX", [0, 1], 0.5), ("Z", [num_qubits - 1], -1.5)], num_qubits),
    ]
