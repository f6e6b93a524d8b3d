"""The routes a local PUB takes: statevector, stabilizer (stim) and dynamic, chosen automatically
and named in the PUB's ``simulator_metadata``; chunked (progress) runs equal unchunked ones."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Clifford, Pauli, SparsePauliOp, StabilizerState, random_clifford

from aqrt import CircuitTooLargeError, Estimator, LocalService, Options, Sampler, Session, UnsupportedCircuitError
from aqrt.backends.local.routes import STABILIZER_FROM

pytestmark = pytest.mark.asyncio


def _ghz(width: int, *, measure: bool) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(width - 1):
        circuit.cx(qubit, qubit + 1)
    if measure:
        circuit.measure_all()
    return circuit


def _method(result) -> str:
    return result.metadata["simulator_metadata"]["method"]


@pytest.mark.parametrize("width", [50, 100, 200])
async def test_ghz_samples_exactly_on_the_stabilizer_route(width: int) -> None:
    shots = 4000
    result = (await Sampler(mode=LocalService().backend()).run([_ghz(width, measure=True)], shots=shots))[0]
    assert _method(result) == "stabilizer"
    counts = result.data.meas.get_counts()
    assert set(counts) == {"0" * width, "1" * width}
    assert abs(counts["0" * width] - shots / 2) < 5 * np.sqrt(shots) / 2  # 5 sigma of a fair coin


async def test_ghz_100_with_10000_shots_takes_well_under_a_second() -> None:
    backend = LocalService().backend()
    circuit = _ghz(100, measure=True)
    await Sampler(mode=backend).run([circuit], shots=10)  # imports stim
    start = time.perf_counter()
    await Sampler(mode=backend).run([circuit], shots=10_000)
    assert time.perf_counter() - start < 1.0  # ~10 ms measured; a generous bound that proves the route


async def test_wide_clifford_estimates_are_exact() -> None:
    width = 120
    circuit = random_clifford(width, seed=7).to_circuit()
    rng = np.random.default_rng(3)
    paulis = ["".join(rng.choice(list("IXYZ"), width)) for _ in range(6)]
    stabilizers = Clifford(circuit).to_labels(mode="S")[:3]  # +-1 exactly
    labels = paulis + [label.lstrip("+-") for label in stabilizers]
    result = (await Estimator(mode=LocalService().backend()).run([(circuit, [SparsePauliOp(p) for p in labels])]))[0]
    assert _method(result) == "stabilizer"
    state = StabilizerState(Clifford(circuit))
    expected = [state.expectation_value(Pauli(label)) for label in labels]
    assert np.array_equal(result.data.evs, np.asarray(expected, dtype=float))
    assert set(np.abs(result.data.evs[-3:])) == {1.0}


async def test_small_clifford_circuits_stay_on_the_statevector_route() -> None:
    result = (await Sampler(mode=LocalService().backend()).run([_ghz(STABILIZER_FROM - 1, measure=True)]))[0]
    assert _method(result) == "statevector"


async def test_a_wide_circuit_that_is_not_clifford_is_refused() -> None:
    circuit = _ghz(60, measure=True)
    circuit.t(3)
    with pytest.raises(CircuitTooLargeError, match="acts on 60 qubits"):
        Sampler(mode=LocalService(max_qubits=25).backend()).run([circuit])
    estimated = _ghz(60, measure=False)
    estimated.reset(5)  # the stabilizer route's Estimator takes unitary circuits only
    with pytest.raises(CircuitTooLargeError, match="acts on 60 qubits"):
        Estimator(mode=LocalService(max_qubits=25).backend()).run([(estimated, "Z" * 60)])


async def test_dynamic_circuits_run_in_session_and_job_mode() -> None:
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(1)
    circuit.reset(0)
    circuit.measure([0, 1, 2], [0, 1, 2])
    async with Session(service=LocalService()):
        in_session = (await Sampler(options=Options(seed=5)).run([circuit], shots=1000))[0]
    job_mode = (await Sampler(mode=LocalService().backend(), options=Options(seed=5)).run([circuit], shots=1000))[0]
    assert _method(in_session) == "dynamic"
    counts = in_session.data.c.get_counts()
    assert set(counts) == {"000", "010"} and abs(counts["010"] - 500) < 80
    assert np.array_equal(in_session.data.c.array, job_mode.data.c.array)  # same seed, same shots


async def test_the_estimator_averages_over_mid_circuit_outcomes() -> None:
    circuit = QuantumCircuit(2, 1)
    circuit.ry(1.0, 0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(1)
    circuit.reset(0)
    result = (await Estimator(mode=LocalService().backend()).run([(circuit, ["ZZ", "ZI", "IZ", "XI"])]))[0]
    assert _method(result) == "dynamic"
    p1 = np.sin(0.5) ** 2  # probability that qubit 0 measured 1 (then qubit 1 is flipped)
    np.testing.assert_allclose(result.data.evs, [1 - 2 * p1, 1 - 2 * p1, 1.0, 0.0], atol=1e-12)


async def test_an_unsupported_construct_is_refused_at_run_with_a_qiskit_error() -> None:
    from qiskit.exceptions import QiskitError

    circuit = QuantumCircuit(2, 2)
    circuit.initialize([0, 1], [0])
    circuit.measure([0, 1], [0, 1])
    with pytest.raises(UnsupportedCircuitError, match="initialize") as info:
        Sampler(mode=LocalService().backend()).run([circuit])
    assert isinstance(info.value, QiskitError)


async def test_routed_pubs_run_whole_when_progress_is_watched() -> None:
    """With progress watched, statevector PUBs run in chunks; routed ones run as one chunk each,
    and every result equals the unwatched run's (same seed)."""
    dynamic = QuantumCircuit(2, 2)
    dynamic.h(0)
    dynamic.measure(0, 0)
    with dynamic.if_test((dynamic.clbits[0], 0)):
        dynamic.h(1)
    dynamic.measure(1, 1)
    pubs = [(_ghz(40, measure=True), None, 300), (dynamic, None, 500), (_ghz(3, measure=True), None, 200)]

    async def run(watch: bool):
        async with Session(service=LocalService()) as session:
            job = Sampler(session=session, options=Options(seed=9)).run(pubs)
            updates = []
            if watch:
                job.add_progress_callback(updates.append)
            return await job, updates

    plain, _ = await run(False)
    watched, updates = await run(True)
    assert [_method(r) for r in watched] == ["stabilizer", "dynamic", "statevector"]
    for a, b in zip(plain, watched, strict=True):
        assert np.array_equal(a.join_data().array, b.join_data().array)
    assert updates and updates[-1].done


async def test_dynamic_circuits_that_differ_only_in_a_condition_have_different_fingerprints() -> None:
    from aqrt.backends.local.fingerprint import circuit_fingerprint

    def build(value: int) -> QuantumCircuit:
        circuit = QuantumCircuit(2, 2)
        circuit.h(0)
        circuit.measure(0, 0)
        with circuit.if_test((circuit.clbits[0], value)):
            circuit.x(1)
        circuit.measure(1, 1)
        return circuit

    assert circuit_fingerprint(build(1)) == circuit_fingerprint(build(1))
    assert circuit_fingerprint(build(1)) != circuit_fingerprint(build(0))


async def test_a_session_does_not_confuse_dynamic_circuits_that_differ_only_in_a_condition() -> None:
    def build(value: int) -> QuantumCircuit:
        circuit = QuantumCircuit(2, 2)
        circuit.x(0)
        circuit.measure(0, 0)
        with circuit.if_test((circuit.clbits[0], value)):
            circuit.x(1)
        circuit.measure(1, 1)
        return circuit

    async with Session(service=LocalService()):
        first = (await Sampler().run([build(1)], shots=10))[0].data.c.get_counts()
        second = (await Sampler().run([build(0)], shots=10))[0].data.c.get_counts()
    assert first == {"11": 10} and second == {"01": 10}


async def test_an_annotated_operation_runs_inside_a_dynamic_circuit() -> None:
    from qiskit.circuit import AnnotatedOperation, InverseModifier
    from qiskit.circuit.library import SGate

    circuit = QuantumCircuit(1, 2)
    circuit.h(0)
    circuit.append(AnnotatedOperation(SGate(), InverseModifier()), [0])  # S^dagger
    circuit.append(AnnotatedOperation(SGate(), InverseModifier()), [0])  # Z overall
    circuit.h(0)  # |1>
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(0)
    circuit.measure(0, 1)
    result = (await Sampler(mode=LocalService().backend()).run([circuit], shots=20))[0]
    assert _method(result) == "dynamic" and result.data.c.get_counts() == {"01": 20}
