"""A PUB's circuit as it will run: transpiled (if asked), idle qubits dropped, and the method chosen.

Preparation is computed once per distinct circuit (and program) per session and kept in the
session cache; every place that runs a local PUB (the runner, its chunks, Dask workers) goes
through it, so they all simulate the same thing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import SparseObservable

from ...job import Program
from .compaction import compact_circuit, restrict_observable
from .content_cache import ByContent
from .routes import STATEVECTOR, choose_method

__all__ = ["PreparedCircuit", "prepare_circuit", "shared_preparation"]


@dataclasses.dataclass(frozen=True)
class PreparedCircuit:
    """What runs for one PUB circuit.

    Attributes:
        circuit: the circuit the engine runs (transpiled if asked, on its active qubits only).
        active: the index, in the circuit as given (after transpiling), of each of ``circuit``'s qubits.
        num_qubits: the width of the circuit as given (after transpiling).
        layout: the transpiler's layout, which the PUB's observables must follow, or None.
        method: how it runs, a route of :mod:`.routes`: ``"statevector"``, ``"stabilizer"`` or ``"dynamic"``.
    """

    circuit: QuantumCircuit
    active: tuple[int, ...]
    num_qubits: int
    layout: Any
    method: str

    @property
    def renumbered(self) -> bool:
        """Whether observables need mapping onto ``circuit`` (a layout, or dropped qubits)."""
        return self.layout is not None or len(self.active) != self.num_qubits

    def observable(self, observable: SparseObservable) -> SparseObservable:
        """A PUB observable (on the circuit as given) as an observable on :attr:`circuit`."""
        if self.layout is not None:
            observable = observable.apply_layout(self.layout, self.num_qubits)
        return restrict_observable(observable, self.active)

    def pub_observables(self, pub: Any) -> list[SparseObservable]:
        """An Estimator PUB's observables, flattened in C order, as observables on :attr:`circuit`."""
        observables = pub.observables
        return [self.observable(observables.slice(index)) for index in np.ndindex(*observables.shape)]

    def registers(self) -> list[tuple[str, list[int]]]:
        """Each classical register of :attr:`circuit` with its clbit positions, as the finishers take them."""
        return [(register.name, list(range(register.size))) for register in self.circuit.cregs]

    def metadata(self) -> dict[str, Any]:
        """The PUB result's ``simulator_metadata`` (as Aer names it): method and qubits simulated."""
        return {"method": self.method, "active_qubits": len(self.active), "num_qubits": self.num_qubits}


def prepare_circuit(
    given: QuantumCircuit, transpiled: QuantumCircuit, program: Program, *, drop_idle: bool = True
) -> PreparedCircuit:
    """Drop the idle qubits of ``transpiled`` (the PUB's circuit ``given``, transpiled or itself)
    and choose its route; ``drop_idle=False`` keeps every qubit and the statevector route (the
    reference engine simulates the circuit as given)."""
    if not drop_idle:
        everything = tuple(range(transpiled.num_qubits))
        layout = transpiled.layout if transpiled is not given else None
        return PreparedCircuit(transpiled, everything, transpiled.num_qubits, layout, STATEVECTOR)
    compact = compact_circuit(transpiled)
    layout = transpiled.layout if transpiled is not given else None
    method = choose_method(compact.circuit, program)
    return PreparedCircuit(compact.circuit, compact.active, compact.num_qubits, layout, method)


# What preparing a circuit run as given found (its active qubits, its width, its route and, when
# qubits were dropped, the compact circuit made from its content), by (program, fingerprint),
# across sessions: a new session's first job of a circuit would otherwise find it again.
_PREPARED_BY_CONTENT = ByContent(64)


def shared_preparation(given: QuantumCircuit, fingerprint: str, program: Program) -> PreparedCircuit:
    """``prepare_circuit(given, given, program)`` for a circuit run as given (not transpiled),
    from the process-wide cache by ``fingerprint``. The cache never keeps the caller's circuit:
    a circuit whose qubits are all active is prepared as ``given`` itself."""
    key = (program, fingerprint)
    found = _PREPARED_BY_CONTENT.get(key)
    if found is None:
        prepared = prepare_circuit(given, given, program)
        compact = prepared.circuit if prepared.circuit is not given else None
        _PREPARED_BY_CONTENT.put(key, (prepared.active, prepared.num_qubits, prepared.method, compact))
        return prepared
    active, num_qubits, method, compact = found
    return PreparedCircuit(compact if compact is not None else given, active, num_qubits, None, method)
