"""Circuit fingerprints: the key under which a session caches a circuit's transpiled and
lowered forms, so a session's later jobs reuse what its first job computed."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
from qiskit import qpy
from qiskit.circuit import CONTROL_FLOW_OP_NAMES, QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping

__all__ = ["circuit_fingerprint"]

_STANDARD_GATES = get_standard_gate_name_mapping()
_CLASSICAL = frozenset({*CONTROL_FLOW_OP_NAMES, "store"})


def circuit_fingerprint(circuit: QuantumCircuit) -> str:
    """A digest of a circuit's structure, equal only for circuits that simulate identically.

    Standard gates are named by name, parameters and control state; any other operation by its
    matrix or, failing that, by its definition (recursively), since custom gates share names.
    A circuit with control flow, stores or variables is digested whole from its QPY form: its
    conditions, expressions and nested blocks are structure a gate-by-gate digest cannot see.
    """
    digest = hashlib.blake2b(digest_size=16)
    if circuit.num_vars or not _CLASSICAL.isdisjoint(circuit.count_ops()):
        buffer = io.BytesIO()
        qpy.dump(circuit.copy(name="fingerprint"), buffer)  # names are often counters ("circuit-47")
        digest.update(buffer.getvalue())
    else:
        _digest_circuit(circuit, digest)
    return digest.hexdigest()


def _digest_circuit(circuit: QuantumCircuit, digest: Any) -> None:
    # Text is gathered and hashed in one update per run of standard gates: the same bytes as
    # updating piece by piece, with fewer calls.
    parts = [f"{circuit.num_qubits},{circuit.num_clbits},{_param_text(circuit.global_phase)}|"]
    qubit_index = {bit: i for i, bit in enumerate(circuit.qubits)}
    clbit_index = {bit: i for i, bit in enumerate(circuit.clbits)}
    for instruction in circuit.data:
        if instruction.is_standard_gate():  # name and params say it all; no Python gate is built
            parts.append(f"{instruction.name}:")
            for param in instruction.params:
                parts.append(_param_text(param))
                parts.append(",")
        else:
            digest.update("".join(parts).encode())
            parts = []
            _digest_operation(instruction.operation, digest)
        parts.append(repr([qubit_index[q] for q in instruction.qubits]))
        parts.append(repr([clbit_index[c] for c in instruction.clbits]))
    for register in circuit.cregs:
        parts.append(f"{register.name}:{register.size}")
    digest.update("".join(parts).encode())


def _digest_operation(operation: Any, digest: Any) -> None:
    name = operation.name
    digest.update(f"{name}/{operation.num_qubits}/{getattr(operation, 'ctrl_state', '')}:".encode())
    params = getattr(operation, "params", ())
    for param in params:
        digest.update(param.tobytes() if isinstance(param, np.ndarray) else _param_text(param).encode())
        digest.update(b",")
    standard = _STANDARD_GATES.get(name)
    if standard is not None and type(operation) is type(standard):
        return
    if not any(hasattr(p, "parameters") for p in params):
        try:
            digest.update(np.asarray(operation.to_matrix(), dtype=np.complex128).tobytes())
            return
        except Exception:  # no matrix: describe it by its definition
            pass
    definition = getattr(operation, "definition", None)
    digest.update(type(operation).__qualname__.encode())
    if definition is not None:
        _digest_circuit(definition, digest)


def _param_text(value: Any) -> str:
    # str(), not repr(): a ParameterExpression's repr holds a memory address.
    return str(value) if hasattr(value, "parameters") else repr(value)
