"""Helpers the session tests share."""

from __future__ import annotations

import asyncio

from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp


def h_pub() -> tuple[QuantumCircuit, SparsePauliOp]:
    """A one-qubit Estimator PUB: H, then <Z> (exactly 0)."""
    circuit = QuantumCircuit(1)
    circuit.h(0)
    return circuit, SparsePauliOp("Z")


def aqrt_tasks() -> list[asyncio.Task[object]]:
    """The runtime's own tasks (supervisors, runners, job-mode jobs) alive on this loop."""
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("aqrt")]
