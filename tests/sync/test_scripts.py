"""The facade used as a script uses it: no event loop anywhere, blocking calls, exact values."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

import aqrt
from aqrt.sync import Batch, Estimator, LocalService, Sampler, Session


def _rotated_bell() -> tuple[QuantumCircuit, Parameter]:
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit.rz(0.3, 1)
    circuit.h(1)
    return circuit, theta


def _exact(circuit: QuantumCircuit, theta: Parameter, value: float, observable: SparsePauliOp) -> float:
    return float(np.real(Statevector(circuit.assign_parameters({theta: value})).expectation_value(observable)))


def test_an_estimator_in_a_session_gives_the_statevector_values() -> None:
    circuit, theta = _rotated_bell()
    observable = SparsePauliOp(["ZZ", "XI", "IY"], coeffs=[1.0, 0.5, -0.25])
    values = np.linspace(0, np.pi, 5)
    with Session(backend="aqrt_statevector") as session:
        job = Estimator(mode=session).run([(circuit, observable, values.reshape(-1, 1))])
        result = job.result()
    expected = [_exact(circuit, theta, value, observable) for value in values]
    np.testing.assert_allclose(result[0].data.evs, expected, atol=1e-10)
    assert job.status() == "DONE"
    assert job.session_id == session.session_id
    assert session.status() is aqrt.SessionState.CLOSED


def test_a_primitive_made_inside_the_block_joins_the_session() -> None:
    circuit, _ = _rotated_bell()
    with Session() as session:
        job = Estimator().run([(circuit, "ZZ", [0.4])])
        assert Estimator().session is session
    assert job.session_id == session.session_id
    assert job.in_final_state()
    with Session() as session, pytest.raises(aqrt.BackendMismatchError, match="a session has one backend"):
        Estimator("fake_sherbrooke")


def test_a_batch_runs_jobs_concurrently_and_keeps_each_result_its_own() -> None:
    circuit, theta = _rotated_bell()
    values = [0.1, 0.7, 1.3, 2.9]
    with Batch(max_concurrency=2) as batch:
        estimator = Estimator(mode=batch)
        jobs = [estimator.run([(circuit, "ZZ", [value])]) for value in values]
    assert batch.statistics()["done"] == len(values)
    for job, value in zip(jobs, values, strict=True):
        assert job.result()[0].data.evs == pytest.approx(_exact(circuit, theta, value, SparsePauliOp("ZZ")), abs=1e-10)


def test_job_mode_with_no_session() -> None:
    circuit = QuantumCircuit(1)
    circuit.x(0)
    result = Estimator().run([(circuit, "Z")]).result()
    assert result[0].data.evs == pytest.approx(-1.0)


def test_seeded_sampler_counts_repeat_and_follow_the_distribution() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    shots = 4000

    def sample() -> dict[str, int]:
        sampler = Sampler(options={"simulator": {"seed_simulator": 11}})
        sampler.options.default_shots = shots
        return sampler.run([circuit]).result()[0].data.meas.get_counts()

    first, second = sample(), sample()
    assert first == second
    assert set(first) == {"00", "11"}
    assert abs(first["00"] - shots / 2) < 5 * np.sqrt(shots / 4)  # 5 sigma of a fair binomial


def test_sampler_shots_argument_and_an_unseeded_run() -> None:
    circuit = QuantumCircuit(1)
    circuit.x(0)
    circuit.measure_all()
    counts = Sampler().run([circuit], shots=37).result()[0].data.meas.get_counts()
    assert counts == {"1": 37}


def test_estimator_options_dict_and_attribute() -> None:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    estimator = Estimator(options={"default_shots": 10_000, "seed_estimator": 5})
    assert estimator.options.default_shots == 10_000
    noisy = estimator.run([(circuit, "Z")]).result()[0].data.evs
    # precision 1/sqrt(10000) = 0.01: the estimate is drawn, not exact (5 sigma bound)
    assert noisy != 0.0
    assert abs(noisy) < 0.05
    estimator.options.default_shots = None
    assert estimator.run([(circuit, "Z")]).result()[0].data.evs == pytest.approx(0.0, abs=1e-12)


def test_a_device_backend_from_the_service_runs_through_the_facade() -> None:
    backend = LocalService().backend("fake_manila")
    circuit = QuantumCircuit(backend.num_qubits, 1)
    circuit.x(0)
    circuit.measure(0, 0)
    with Session(backend=backend) as session:
        sampler = Sampler(mode=session, options={"simulator": {"seed_simulator": 3}})
        counts = sampler.run([circuit], shots=400).result()[0].data.c.get_counts()
    assert session.backend.name == "fake_manila"
    # qubit 0 flipped; the device's read-out and gate errors flip a few percent of the shots
    assert 0.8 * 400 < counts["1"] < 400
