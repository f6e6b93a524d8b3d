"""Whether a circuit is ISA for a device's target: the check IBM's primitives run before a job.

An ISA (instruction set architecture) circuit uses only the target's instructions, each on
qubits the target has it for: a device's basis gates on its coupled qubits. Qiskit Runtime
refuses any other circuit at ``run()`` (qiskit-ibm-runtime's ``validate_isa_circuits``); a
device backend of aqrt refuses it the same way, with the same words, so code that passes here
passes there. The circuit is read as IBM reads it: qubit ``i`` is the circuit's ``i``-th
qubit (a transpiled circuit's physical qubit), ``barrier`` and ``store`` need no support, and
the blocks of control-flow operations are checked too, their qubits mapped to the outer ones.
"""

from __future__ import annotations

import math

from qiskit.circuit import ControlFlowOp, ParameterExpression, QuantumCircuit, Qubit
from qiskit.transpiler import Target

from ..errors import CircuitTooLargeError, UnsupportedCircuitError

__all__ = ["TRANSPILE_ADVICE", "check_isa", "non_isa_reason"]

#: What qiskit-ibm-runtime adds to every non-ISA refusal (its wording, kept).
TRANSPILE_ADVICE = (
    "Circuits that do not match the target hardware definition are no longer supported after "
    "March 4, 2024. See the transpilation documentation (https://quantum.cloud.ibm.com/docs/guides/transpile) "
    "for instructions to transform circuits and the primitive examples "
    "(https://quantum.cloud.ibm.com/docs/guides/primitives-examples) to see this coupled with operator "
    "transformations."
)

_ALWAYS_ALLOWED = {"barrier", "store"}
# IBM calibrates rzz for angles in [0, pi/2] only; a little past pi/2 is float rounding.
_RZZ_MAX = math.pi / 2 + 1e-10


def non_isa_reason(circuit: QuantumCircuit, target: Target) -> str | None:
    """Why ``circuit`` is not ISA for ``target`` (IBM's sentence), or None if it is.

    Only the width is checked when the circuit is wider than the target.
    """
    if target.num_qubits is not None and circuit.num_qubits > target.num_qubits:
        return f"The circuit has {circuit.num_qubits} qubits but the target system requires {target.num_qubits} qubits."
    return _first_unsupported(circuit, target, {qubit: index for index, qubit in enumerate(circuit.qubits)})


def check_isa(index: int, circuit: QuantumCircuit, target: Target) -> None:
    """Refuse PUB ``index`` unless its circuit is ISA for ``target``.

    Raises:
        CircuitTooLargeError: the circuit is wider than the target (aqrt's error for width).
        UnsupportedCircuitError: an instruction the target does not have on those qubits (an
            ``InvalidPubError`` and a ``QiskitError``, as IBM's ``IBMInputValueError``).
    """
    reason = non_isa_reason(circuit, target)
    if reason is None:
        return
    if target.num_qubits is not None and circuit.num_qubits > target.num_qubits:
        raise CircuitTooLargeError(f"PUB {index}: {reason} {TRANSPILE_ADVICE}")
    raise UnsupportedCircuitError(index, f"{reason} {TRANSPILE_ADVICE}")


def _first_unsupported(circuit: QuantumCircuit, target: Target, indices: dict[Qubit, int]) -> str | None:
    """Why the first unsupported instruction of ``circuit`` (the top circuit or a block, whose
    qubits ``indices`` maps to the top circuit's indices) is not ISA, or None."""
    for instruction in circuit.data:
        operation = instruction.operation
        name = operation.name
        qargs = tuple(indices[qubit] for qubit in instruction.qubits)
        if name not in _ALWAYS_ALLOWED and not target.instruction_supported(name, qargs):
            return f"The instruction {name} on qubits {qargs} is not supported by the target system."
        if name == "rzz":
            angle = operation.params[0]
            if not isinstance(angle, ParameterExpression) and not 0.0 <= float(angle) <= _RZZ_MAX:
                return (
                    f"The instruction {name} on qubits {qargs} is supported only for angles in the range "
                    f"[0, pi/2], but an angle ({angle}) outside of this range has been requested."
                )
        if isinstance(operation, ControlFlowOp):
            for block in operation.blocks:
                pairs = zip(instruction.qubits, block.qubits, strict=True)
                inner = {block_qubit: indices[qubit] for qubit, block_qubit in pairs}
                reason = _first_unsupported(block, target, inner)
                if reason is not None:
                    return reason
    return None
