"""A device's ``Target`` from its Runtime configuration document.

The configuration (``GET /backends/{name}/configuration``) lists each gate with the qubits it
acts on (``gates[].coupling_map``), the basis, ``supported_instructions`` (measure, reset,
delay, control flow) and ``dt``: enough for the transpiler and for IBM's ISA check. Error
rates and durations (the properties document) are not read: aqrt transpiles for a device's
instruction set, it does not pick the best qubits.
"""

from __future__ import annotations

from typing import Any

from qiskit.circuit import Delay, IfElseOp, Measure, Parameter, Reset, SwitchCaseOp, WhileLoopOp
from qiskit.circuit.controlflow import BreakLoopOp, ContinueLoopOp, ForLoopOp
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler import Target

__all__ = ["target_from_configuration"]

_CONTROL_FLOW = {
    "if_else": IfElseOp,
    "while_loop": WhileLoopOp,
    "for_loop": ForLoopOp,
    "switch_case": SwitchCaseOp,
    "break_loop": BreakLoopOp,
    "continue_loop": ContinueLoopOp,
}


def target_from_configuration(configuration: dict[str, Any]) -> Target:
    """The target a device's configuration describes (its gates on their qubits, measure, reset,
    delay and control flow where listed); gates Qiskit does not know are left out."""
    width = int(configuration.get("n_qubits", configuration.get("num_qubits", 0)))
    dt = configuration.get("dt")
    target = Target(
        description=configuration.get("description"),
        num_qubits=width,
        dt=float(dt) if isinstance(dt, int | float) else None,
    )
    standard = get_standard_gate_name_mapping()
    everywhere = {(qubit,): None for qubit in range(width)}
    pairs = [tuple(pair) for pair in configuration.get("coupling_map") or []]
    listed: set[str] = set()
    for gate in configuration.get("gates") or []:
        name = gate.get("name")
        if name not in standard or name in listed:
            continue
        operation = standard[name]
        qargs = [tuple(q) for q in gate.get("coupling_map") or []]
        if not qargs:
            qargs = list(everywhere) if operation.num_qubits == 1 else pairs
        target.add_instruction(operation, {q: None for q in qargs if len(q) == operation.num_qubits}, name=name)
        listed.add(name)
    for name in configuration.get("basis_gates") or []:
        if name in standard and name not in listed:
            operation = standard[name]
            qargs = list(everywhere) if operation.num_qubits == 1 else pairs
            target.add_instruction(operation, {q: None for q in qargs if len(q) == operation.num_qubits}, name=name)
            listed.add(name)
    supported = set(configuration.get("supported_instructions") or ["measure", "reset", "delay"])
    for name, operation in (("measure", Measure()), ("reset", Reset()), ("delay", Delay(Parameter("t")))):
        if name in supported and name not in target:
            target.add_instruction(operation, dict(everywhere))
    for name, operation_class in _CONTROL_FLOW.items():
        if name in supported and name not in target:
            target.add_instruction(operation_class, name=name)
    return target
