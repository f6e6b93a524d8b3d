"""A PUB's circuit is lowered once per content in a process, and its observables' term table
built once: a new session running a circuit with the same content (another object) finds it
lowered; a circuit changed in place is lowered again and gives the new circuit's values."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt import Estimator, LocalService, Sampler, Session
from aqrt.backends.local import engine_pubs

from ..sweeps import ansatz

pytestmark = pytest.mark.asyncio

N = 18  # wide: the job runs on the engine worker, not inline


def _ansatz(seed: int) -> QuantumCircuit:
    circuit = ansatz(N, 1)
    circuit.rx(0.1 * seed, 0)  # a static gate whose angle tells the variants apart
    return circuit


async def _value(circuit: QuantumCircuit, values: np.ndarray) -> float:
    async with Session(service=LocalService()) as session:
        result = await Estimator(mode=session).run([(circuit, SparsePauliOp("Z" + "I" * (N - 1)), values)])
    return float(result[0].data.evs)


def _expected(circuit: QuantumCircuit, values: np.ndarray) -> float:
    state = Statevector(circuit.assign_parameters(values))
    return float(state.expectation_value(SparsePauliOp("Z" + "I" * (N - 1))).real)


async def test_a_new_session_finds_a_circuit_of_the_same_content_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    lowered: list[int] = []
    real_lower = engine_pubs.lower_circuit

    def counting_lower(circuit: QuantumCircuit, names: object = None) -> object:
        lowered.append(circuit.num_qubits)
        return real_lower(circuit, names)

    monkeypatch.setattr(engine_pubs, "lower_circuit", counting_lower)
    values = np.random.default_rng(1).uniform(0, 2 * np.pi, 2 * N)
    first = await _value(_ansatz(seed=7), values)
    count = len(lowered)
    second = await _value(_ansatz(seed=7), values)  # another object, the same content
    assert len(lowered) == count
    assert second == first
    expected = await asyncio.to_thread(_expected, _ansatz(seed=7), values)
    assert abs(first - expected) < 1e-10


async def test_a_circuit_changed_in_place_is_lowered_again() -> None:
    values = np.random.default_rng(2).uniform(0, 2 * np.pi, 2 * N)
    circuit = _ansatz(seed=3)
    before = await _value(circuit, values)
    circuit.x(N - 1)  # the last qubit flipped: <Z on it> changes sign
    after = await _value(circuit, values)
    assert abs(before + after) < 1e-10
    expected = await asyncio.to_thread(_expected, circuit, values)
    assert abs(after - expected) < 1e-10


async def test_sampler_circuits_of_the_same_content_share_their_lowering(monkeypatch: pytest.MonkeyPatch) -> None:
    lowered: list[int] = []
    real_lower = engine_pubs.lower_circuit

    def counting_lower(circuit: QuantumCircuit, names: object = None) -> object:
        lowered.append(circuit.num_qubits)
        return real_lower(circuit, names)

    monkeypatch.setattr(engine_pubs, "lower_circuit", counting_lower)

    def measured() -> QuantumCircuit:
        circuit = QuantumCircuit(N)
        circuit.h(range(N))
        circuit.measure_all()
        return circuit

    counts = []
    for _ in range(2):
        async with Session(service=LocalService()) as session:
            result = await Sampler(mode=session, options={"seed": 5}).run([measured()], shots=64)
        counts.append(result[0].data.meas.get_counts())
    assert len(lowered) == 1
    assert counts[0] == counts[1]


async def test_a_new_session_finds_the_term_table_of_observables_of_the_same_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Term tables of observables on circuits as given are kept by content across sessions, and
    an observable of other content (another coefficient) gets its own table and its value."""
    built: list[int] = []
    real_build = engine_pubs.build_term_table_sparse

    def counting_build(observables: list[object]) -> object:
        built.append(len(observables))
        return real_build(observables)

    monkeypatch.setattr(engine_pubs, "build_term_table_sparse", counting_build)
    values = np.random.default_rng(4).uniform(0, 2 * np.pi, 2 * N)
    circuit = _ansatz(seed=5)
    observable = SparsePauliOp(["Z" + "I" * (N - 1), "I" * (N - 2) + "XX"], coeffs=[0.5, 1.5])

    async def value(operator: SparsePauliOp) -> float:
        async with Session(service=LocalService()) as session:
            result = await Estimator(mode=session).run([(circuit, operator, values)])
        return float(result[0].data.evs)

    first = await value(observable)
    count = len(built)
    assert await value(SparsePauliOp(observable.paulis.copy(), observable.coeffs.copy())) == first
    assert len(built) == count  # found by content in the second session
    scaled = SparsePauliOp(observable.paulis.copy(), 2 * observable.coeffs)
    assert await value(scaled) == pytest.approx(2 * first, abs=1e-10)
    assert len(built) == count + 1
    state = await asyncio.to_thread(lambda: Statevector(circuit.assign_parameters(values)))
    assert first == pytest.approx(float(state.expectation_value(observable).real), abs=1e-10)
