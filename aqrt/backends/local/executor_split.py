"""An executor item's circuit cut into independent parts, each run on its own.

The executor's client-side Estimator measures every qubit of the device: on a 127-qubit device a
GHZ-4 becomes a template circuit whose 123 other qubits each get twirling gates and a
measurement. Those qubits never interact with the others (no multi-qubit gate, no shared
classical bit), so the state is a product over groups of qubits and the outcome distribution is
the product of the groups' distributions: each group runs as a circuit of its own, on the same
device qubits (so the device's noise lands where it would), and every shot's bits are the groups'
bits side by side. qiskit-ibm-runtime's local mode (Aer) simulates such a circuit whole and runs
out of memory; this makes it cost what its largest group costs.

A circuit with control flow, classical conditions or classical variables is never cut (its
groups may talk through classical bits).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["CircuitPart", "split_circuit"]

_NO_EFFECT = frozenset({"barrier", "delay"})


@dataclasses.dataclass(frozen=True)
class CircuitPart:
    """One independent group of a circuit's qubits.

    Attributes:
        circuit: the circuit's instructions on these qubits only (same width, bits and registers,
            so device qubits and clbit positions stay those of the whole).
        parameter_columns: for each of ``circuit.parameters``, its index in the whole circuit's.
        qubits: the group's qubit indices.
    """

    circuit: Any
    parameter_columns: np.ndarray
    qubits: tuple[int, ...]


class _Groups:
    """Union-find over qubit indices."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first: int, second: int) -> None:
        self.parent[self.find(first)] = self.find(second)


def _independent_groups(circuit: Any) -> list[list[int]] | None:
    """The active qubits in groups that share no gate and no clbit, or None when the circuit
    cannot be cut (control flow, conditions, classical variables, a clbit read by a gate)."""
    from qiskit.circuit import ControlFlowOp

    if circuit.num_vars or circuit.num_input_vars or circuit.num_captured_vars:
        return None
    groups = _Groups(circuit.num_qubits)
    writer: dict[int, int] = {}
    active: set[int] = set()
    for instruction in circuit.data:
        operation = instruction.operation
        if operation.name in _NO_EFFECT:
            continue
        if isinstance(operation, ControlFlowOp):
            return None
        qubits = [circuit.find_bit(qubit).index for qubit in instruction.qubits]
        if instruction.clbits and operation.name != "measure":
            return None  # a gate that reads classical bits
        active.update(qubits)
        for qubit in qubits[1:]:
            groups.union(qubits[0], qubit)
        for clbit in instruction.clbits:
            index = circuit.find_bit(clbit).index
            if index in writer:
                groups.union(writer[index], qubits[0])
            else:
                writer[index] = qubits[0]
    found: dict[int, list[int]] = {}
    for qubit in sorted(active):
        found.setdefault(groups.find(qubit), []).append(qubit)
    return list(found.values())


def _pack(groups: list[list[int]], capacity: int) -> list[list[int]]:
    """Groups packed first-fit, largest first, into parts of at most ``capacity`` qubits (a group
    larger than that is a part of its own)."""
    parts: list[list[int]] = []
    for group in sorted(groups, key=len, reverse=True):
        for part in parts:
            if len(part) + len(group) <= capacity:
                part.extend(group)
                break
        else:
            parts.append(list(group))
    return [sorted(part) for part in parts]


def split_circuit(circuit: Any, *, max_part_qubits: int) -> list[CircuitPart] | None:
    """``circuit`` cut into parts of at most ``max_part_qubits`` active qubits where its qubits
    fall into independent groups; None when it stays whole (it fits, has one group, or cannot be
    cut)."""
    groups = _independent_groups(circuit)
    if groups is None or len(groups) < 2 or sum(len(group) for group in groups) <= max_part_qubits:
        return None
    columns = {parameter: index for index, parameter in enumerate(circuit.parameters)}
    parts = []
    for qubits in _pack(groups, max_part_qubits):
        members = {circuit.qubits[index] for index in qubits}
        part = circuit.copy_empty_like()
        for instruction in circuit.data:
            if instruction.operation.name not in _NO_EFFECT and members.issuperset(instruction.qubits):
                part.append(instruction.operation, instruction.qubits, instruction.clbits)
        part_columns = np.array([columns[parameter] for parameter in part.parameters], dtype=np.intp)
        parts.append(CircuitPart(part, part_columns, tuple(qubits)))
    return parts
