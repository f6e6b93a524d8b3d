"""Only the qubits a circuit uses are simulated; results keep the circuit's full layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ClassicalRegister, Parameter, QuantumRegister
from qiskit.quantum_info import SparseObservable, SparsePauliOp, Statevector

from aqrt import CircuitTooLargeError, Estimator, LocalService, Sampler, Session
from aqrt.backends.local.compaction import active_qubits, compact_circuit, restrict_observable
from aqrt.backends.local.memory import format_bytes


def _sparse_circuit(width: int, used: list[int]) -> QuantumCircuit:
    """A circuit ``width`` qubits wide acting on ``used``, with barriers and delays across all of them."""
    theta = Parameter("theta")
    circuit = QuantumCircuit(width)
    circuit.barrier()
    circuit.h(used[0])
    for a, b in itertools.pairwise(used):
        circuit.cx(a, b)
    circuit.ry(theta, used[-1])
    circuit.delay(100, range(width))
    circuit.rz(0.4, used[1])
    return circuit


def test_active_qubits_ignore_barriers_and_delays() -> None:
    circuit = _sparse_circuit(40, [3, 17, 39])
    assert active_qubits(circuit) == (3, 17, 39)
    compact = compact_circuit(circuit)
    assert compact.circuit.num_qubits == 3 and compact.active == (3, 17, 39) and compact.num_qubits == 40
    full = QuantumCircuit(3)
    full.h(range(3))
    assert compact_circuit(full).circuit is full


@pytest.mark.parametrize("label", ["IIIXIZ", "0I1III", "I+IlIr", "ZZZZZZ", "IYIIII", "XIIIII", "-IIII0"])
def test_an_observable_on_idle_qubits_takes_their_value_in_zero(label: str) -> None:
    circuit = QuantumCircuit(6)
    circuit.h(1)
    circuit.cx(1, 4)
    circuit.ry(0.7, 2)
    compact = compact_circuit(circuit)
    observable = SparseObservable(label)
    expected = Statevector(circuit).expectation_value(SparsePauliOp.from_sparse_observable(observable))
    restricted = restrict_observable(observable, compact.active)
    assert restricted.num_qubits == 3
    got = (
        Statevector(compact.circuit).expectation_value(SparsePauliOp.from_sparse_observable(restricted))
        if restricted.num_terms
        else 0.0
    )
    assert got == pytest.approx(expected, abs=1e-12)


def test_memory_figures_use_sensible_units() -> None:
    assert format_bytes(3 << 60) == "3.0 EiB"
    assert format_bytes(32 << 127) == "2^132 bytes"
    assert format_bytes(256 << 20) == "256.0 MiB"


@pytest.mark.asyncio
async def test_a_wide_sparse_circuit_runs_on_its_active_qubits() -> None:
    width, used = 100, [5, 60, 99]
    circuit = _sparse_circuit(width, used)
    small = _sparse_circuit(3, [0, 1, 2])
    terms = [("ZZ", [0, 1], 1.0), ("Z", [2], 0.5), ("XY", [1, 2], 0.3), ("Y", [0], 0.2)]
    where = {0: 5, 1: 60, 2: 99}
    observables = [SparsePauliOp.from_sparse_list([(p, [where[q] for q in qs], c) for p, qs, c in terms], width)]
    small_observables = [SparsePauliOp.from_sparse_list(terms, 3)]
    values = np.linspace(0, np.pi, 7)
    async with Session(service=LocalService(max_qubits=20)):
        wide_result = await Estimator().run([(circuit, observables, values)])
    expected = [
        Statevector(small.assign_parameters([value])).expectation_value(small_observables[0]).real for value in values
    ]
    np.testing.assert_allclose(wide_result[0].data.evs, expected, atol=1e-12)
    assert wide_result[0].metadata["simulator_metadata"] == {
        "method": "statevector",
        "active_qubits": 3,
        "num_qubits": 100,
    }


@pytest.mark.asyncio
async def test_sampler_keeps_the_full_classical_layout() -> None:
    qreg = QuantumRegister(64, "q")
    alpha, beta = ClassicalRegister(3, "alpha"), ClassicalRegister(2, "beta")
    circuit = QuantumCircuit(qreg, alpha, beta)
    circuit.x(10)
    circuit.h(63)
    circuit.cx(63, 40)
    circuit.measure(10, alpha[2])
    circuit.measure(63, alpha[0])
    circuit.measure(40, beta[1])
    circuit.measure(7, beta[0])  # measured, so active, but idle otherwise: always 0
    result = await Sampler().run([circuit], shots=2000)
    counts_alpha = result[0].data.alpha.get_counts()
    counts_beta = result[0].data.beta.get_counts()
    assert set(counts_alpha) == {"100", "101"} and set(counts_beta) == {"00", "10"}
    joint = result[0].join_data().get_counts()
    assert set(joint) == {"00100", "10101"}  # beta's high bit always equals alpha's low bit
    assert result[0].metadata["simulator_metadata"]["active_qubits"] == 4


@pytest.mark.asyncio
async def test_the_memory_guard_counts_active_qubits() -> None:
    service = LocalService(max_qubits=4)
    circuit = QuantumCircuit(30)
    circuit.ry(0.3, range(0, 30, 6))  # 5 active qubits of 30 (not Clifford: that would run on stim)
    with pytest.raises(CircuitTooLargeError, match=r"acts on 5 qubits \(25 of its 30 qubits are idle\).*at most 4"):
        Estimator(mode=service.backend()).run([(circuit, "Z" * 30)])
    circuit = QuantumCircuit(30)
    circuit.h(range(0, 30, 10))
    result = await Estimator(mode=service.backend()).run([(circuit, "X" * 30)])
    assert float(result[0].data.evs) == pytest.approx(0.0)
    result = await Estimator(mode=service.backend()).run([(circuit, "I" * 9 + "X" + "I" * 9 + "X" + "I" * 9 + "X")])
    assert float(result[0].data.evs) == pytest.approx(1.0)
