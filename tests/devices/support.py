"""Helpers the device tests share."""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager


def bell(measure: bool = True) -> QuantumCircuit:
    """H on qubit 0, CX 0 -> 1 (and both measured)."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


def isa_for(device: Any, circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` transpiled for ``device`` at level 1, seeded."""
    return generate_preset_pass_manager(backend=device, optimization_level=1, seed_transpiler=7).run(circuit)
