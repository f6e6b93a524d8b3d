"""Transpiling at ``options.optimization_level``: once per distinct circuit per session.

The pass managers are Qiskit's presets, one per level, built on first use and shared by the
backend's jobs: for the statevector backend its basis (every standard gate, any qubits), for a
device backend the device's target (its basis and coupling map), as the device would need.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from qiskit.circuit import QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping

from ...options import Options

__all__ = ["BASIS_GATES", "OPTIMIZATION_BASIS", "Transpiler"]

# Every standard gate is native to the simulator (the statevector backend's target has them all).
BASIS_GATES = sorted(set(get_standard_gate_name_mapping()) - {"global_phase"})

# What ``optimization_level`` transpiles to on the statevector backend: every standard gate but
# with ``cx`` as the only two-qubit one. Given several two-qubit gates, Qiskit's preset pass
# managers choose among them in an order that changes from process to process (string hashing),
# even with ``seed_transpiler`` fixed, so the same job gave values differing in the last digits
# run to run; with one two-qubit gate the choice is made the same way every time.
OPTIMIZATION_BASIS = sorted(
    name
    for name, gate in get_standard_gate_name_mapping().items()
    if name != "global_phase" and (gate.num_qubits != 2 or name == "cx")
)


class Transpiler:
    """Transpiles circuits for a local backend, caching results in the session's cache."""

    def __init__(self, target: Callable[[], Any] | None = None) -> None:
        self._target = target
        self._pass_managers: dict[int, Any] = {}
        self._lock = threading.Lock()

    def prepare(
        self, circuit: QuantumCircuit, fingerprint: str, options: Options, cache: dict[Any, Any]
    ) -> QuantumCircuit:
        """``circuit`` transpiled at ``options.optimization_level`` (itself when that is None)."""
        level = options.optimization_level
        if level is None:
            return circuit
        key = ("transpiled", level, fingerprint)
        cached = cache.get(key)
        if cached is None:
            cached = self._pass_manager(level).run(circuit)
            cache[key] = cached
        return cached

    def _pass_manager(self, level: int) -> Any:
        with self._lock:
            if level not in self._pass_managers:
                from qiskit.transpiler import generate_preset_pass_manager

                target = self._target() if self._target is not None else None
                if target is None:
                    self._pass_managers[level] = generate_preset_pass_manager(
                        optimization_level=level, basis_gates=OPTIMIZATION_BASIS, seed_transpiler=0
                    )
                else:
                    self._pass_managers[level] = generate_preset_pass_manager(
                        optimization_level=level, target=target, seed_transpiler=0
                    )
            return self._pass_managers[level]
