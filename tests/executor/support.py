"""Circuits the executor tests share."""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager


def ghz_isa(target: Any, *, angle: float | None = None, measure: bool = False) -> QuantumCircuit:
    """GHZ-4 (or, with ``angle``, ry(angle) on qubit 0 then the cx chain), transpiled for ``target``;
    measured, with an x on qubit 3 (outcomes 1000 / 0111: a reversed bit order would read 0001 / 1110)."""
    circuit = QuantumCircuit(4)
    if angle is None:
        circuit.h(0)
    else:
        circuit.ry(angle, 0)
    for qubit in range(3):
        circuit.cx(qubit, qubit + 1)
    if measure:
        circuit.x(3)
        circuit.measure_all()
    return generate_preset_pass_manager(optimization_level=1, target=target, seed_transpiler=1).run(circuit)
