"""The Qiskit ``Target`` of aqrt's statevector backend, and what a target's basis is.

The statevector engine runs any standard gate on any qubits, so its target is Qiskit's
"anything goes" form: ``Target(num_qubits=None)`` with every instruction global (no qubit
list, no properties). ``generate_preset_pass_manager(backend=...)`` then translates to the
standard gates and routes nothing (no coupling map).
"""

from __future__ import annotations

from qiskit.circuit import (
    BreakLoopOp,
    ContinueLoopOp,
    ForLoopOp,
    Gate,
    IfElseOp,
    SwitchCaseOp,
    WhileLoopOp,
)
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler import Target

from .transpile import BASIS_GATES

__all__ = ["CONTROL_FLOW", "basis_gates", "statevector_target"]

# The control-flow operations a target declares by class (they take any number of qubits).
CONTROL_FLOW = {
    "if_else": IfElseOp,
    "while_loop": WhileLoopOp,
    "for_loop": ForLoopOp,
    "switch_case": SwitchCaseOp,
    "break_loop": BreakLoopOp,
    "continue_loop": ContinueLoopOp,
}


def statevector_target(description: str | None = None) -> Target:
    """A fresh target for the statevector engine: every standard gate, ``measure``, ``reset``
    and ``delay`` (all in :data:`~.transpile.BASIS_GATES`) and the control-flow operations,
    each global; ``num_qubits`` is None (any width)."""
    target = Target(description=description, num_qubits=None)
    standard = get_standard_gate_name_mapping()
    for name in BASIS_GATES:
        target.add_instruction(standard[name], name=name)
    for name, operation_class in CONTROL_FLOW.items():
        target.add_instruction(operation_class, name=name)
    return target


def basis_gates(target: Target) -> list[str]:
    """The names of the target's gates, sorted: what a backend configuration calls
    ``basis_gates`` (no ``measure``, ``reset``, ``delay`` or control flow)."""
    return sorted(name for name in target.operation_names if isinstance(target.operation_from_name(name), Gate))
