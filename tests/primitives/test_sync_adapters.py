"""EngineEstimator / EngineSampler: Qiskit's synchronous V2 interfaces over the engine."""

from __future__ import annotations

import concurrent.futures
import pickle
import threading

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Instruction, Parameter
from qiskit.circuit.random import random_circuit
from qiskit.exceptions import QiskitError
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2, StatevectorEstimator, StatevectorSampler
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob
from qiskit.providers import JobStatus
from qiskit.quantum_info import SparsePauliOp

from aqrt import InvalidPubError, UnsupportedCircuitError
from aqrt._concurrency import engine_executor
from aqrt.primitives import EngineEstimator, EngineSampler


def _parametric() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.ry(a, 1)
    circuit.cx(0, 2)
    circuit.rzz(b, 1, 2)
    circuit.rx(a + b, 0)
    return circuit


def test_engine_estimator_is_a_qiskit_estimator_and_matches_statevector_estimator() -> None:
    estimator = EngineEstimator()
    assert isinstance(estimator, BaseEstimatorV2)
    circuit = _parametric()
    observables = [[SparsePauliOp("ZZI")], [SparsePauliOp(["XIX", "IYY"], [0.5, -1.5])]]
    values = np.random.default_rng(3).uniform(-3, 3, (2, 4, 2))  # bindings (2, 4) x observables (2, 1)
    pubs = [(circuit, observables, values), (random_circuit(4, 4, seed=5), SparsePauliOp("XYZI"))]
    ours = estimator.run(pubs).result()
    theirs = StatevectorEstimator().run(pubs).result()
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.data.evs.shape == ref.data.evs.shape
        np.testing.assert_allclose(mine.data.evs, ref.data.evs, atol=1e-10)
        assert np.array_equal(mine.data.stds, ref.data.stds) and mine.data.stds.dtype == ref.data.stds.dtype
        assert mine.metadata == ref.metadata  # {"target_precision", "circuit_metadata"}, nothing more
    assert ours.metadata == theirs.metadata == {"version": 2}


def test_adapters_have_qiskit_s_attributes() -> None:
    generator = np.random.default_rng(5)
    estimator = EngineEstimator(default_precision=0.01, seed=generator)
    sampler = EngineSampler(default_shots=77, seed=9)
    assert estimator.default_precision == StatevectorEstimator(default_precision=0.01).default_precision
    assert estimator.seed is generator  # kept as given, as StatevectorEstimator does
    assert sampler.default_shots == 77 and sampler.seed == 9
    assert EngineEstimator().seed is None and EngineSampler().default_shots == 1024


def test_an_int_seed_gives_identical_pubs_identical_draws_as_qiskit_does() -> None:
    pub = (_parametric(), SparsePauliOp("ZZZ"), [0.3, 0.7], 0.1)
    ours = EngineEstimator(seed=3).run([pub, pub]).result()
    theirs = StatevectorEstimator(seed=3).run([pub, pub]).result()
    assert ours[0].data.evs == ours[1].data.evs
    assert theirs[0].data.evs == theirs[1].data.evs
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.measure_all()
    samples = EngineSampler(seed=3).run([circuit, circuit], shots=200).result()
    assert samples[0].data.meas.get_bitstrings() == samples[1].data.meas.get_bitstrings()


def test_a_generator_seed_advances_from_pub_to_pub_and_run_to_run() -> None:
    pub = (_parametric(), SparsePauliOp("ZZZ"), [0.3, 0.7], 0.1)
    estimator = EngineEstimator(seed=np.random.default_rng(8))
    first = estimator.run([pub, pub]).result()
    again = estimator.run([pub]).result()
    assert first[0].data.evs != first[1].data.evs
    assert again[0].data.evs not in (first[0].data.evs, first[1].data.evs)
    replay = EngineEstimator(seed=np.random.default_rng(8)).run([pub, pub]).result()
    assert [float(r.data.evs) for r in replay] == [float(r.data.evs) for r in first]  # reproducible


def test_engine_estimator_precision_and_seed() -> None:
    pub = (_parametric(), SparsePauliOp("ZZZ"), [0.3, 0.7])
    first = EngineEstimator(seed=11, default_precision=0.05).run([pub]).result()[0]
    second = EngineEstimator(seed=11).run([pub], precision=0.05).result()[0]
    assert first.data.evs == second.data.evs
    assert first.metadata["target_precision"] == 0.05


def test_engine_sampler_is_a_qiskit_sampler_with_qiskit_bit_layout() -> None:
    sampler = EngineSampler(default_shots=64, seed=2)
    assert isinstance(sampler, BaseSamplerV2)
    circuit = QuantumCircuit(4, 4)
    circuit.x([0, 3])
    circuit.measure([0, 1, 2, 3], [3, 1, 0, 2])
    ours = sampler.run([circuit]).result()[0].data.c
    theirs = StatevectorSampler(default_shots=64).run([circuit]).result()[0].data.c
    assert ours.num_shots == 64
    np.testing.assert_array_equal(ours.array, theirs.array)


def test_engine_sampler_counts_follow_the_distribution() -> None:
    circuit = QuantumCircuit(1)
    circuit.ry(2 * np.arcsin(np.sqrt(0.3)), 0)
    circuit.measure_all()
    counts = EngineSampler(seed=4).run([circuit], shots=20000).result()[0].data.meas.get_counts()
    assert counts["1"] / 20000 == pytest.approx(0.3, abs=0.015)


def test_bad_pubs_raise_at_run() -> None:
    with pytest.raises(InvalidPubError, match="PUB 0"):
        EngineEstimator().run([(_parametric(), SparsePauliOp("ZZ"))])
    circuit = QuantumCircuit(1, 1)
    circuit.initialize([0, 1], [0])
    circuit.measure(0, 0)
    with pytest.raises(InvalidPubError, match="initialize"):
        EngineSampler().run([circuit])


def test_a_circuit_the_engine_cannot_run_raises_a_qiskit_error_too() -> None:
    opaque = QuantumCircuit(1)
    opaque.append(Instruction("mystery", 1, 0, []), [0])  # no matrix, no definition: never runnable
    with pytest.raises(UnsupportedCircuitError, match=r"^PUB 0: instruction 0 \(mystery") as info:
        EngineEstimator().run([(opaque, SparsePauliOp("Z"))])
    assert isinstance(info.value, QiskitError) and isinstance(info.value, InvalidPubError)
    assert info.value.pub_index == 0 and info.value.message == str(info.value)
    initialized = QuantumCircuit(1, 1)
    initialized.initialize([0, 1], [0])
    initialized.measure(0, 0)
    with pytest.raises(QiskitError, match="initialize"):
        EngineSampler().run([initialized])  # refused at run(), before a job exists


@pytest.mark.parametrize("seed", [7, "generator"])
def test_precision_noise_is_statevector_estimators_draw_for_draw(seed) -> None:
    """An int seed or a Generator gives exactly the values StatevectorEstimator gives."""
    circuit = _parametric()
    values = np.random.default_rng(3).uniform(-3, 3, (4, 2))
    pubs = [(circuit, [[SparsePauliOp("ZZI")], [SparsePauliOp("XIX")]], values, 0.05), (circuit, "IZZ", values[0])]

    def make(factory):
        return factory(seed=np.random.default_rng(11) if seed == "generator" else seed)

    ours, theirs = make(EngineEstimator), make(StatevectorEstimator)
    for _ in range(2):  # a Generator advances from run to run, in both
        mine = ours.run(pubs, precision=0.2).result()
        reference = theirs.run(pubs, precision=0.2).result()
        for a, b in zip(mine, reference, strict=True):
            np.testing.assert_allclose(a.data.evs, b.data.evs, rtol=0, atol=1e-12)
            assert np.array_equal(a.data.stds, b.data.stds)
            assert a.metadata == b.metadata


def test_a_pub_not_in_a_list_gets_qiskits_message() -> None:
    circuit = QuantumCircuit(1)
    with pytest.raises(ValueError, match="An invalid Estimator pub-like was given"):
        EngineEstimator().run((circuit, SparsePauliOp("Z")))
    with pytest.raises(ValueError, match="An invalid Sampler pub-like was given"):
        EngineSampler().run(circuit)


def test_a_job_has_qiskit_s_job_interface_and_waits_its_turn_on_the_engine_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    estimator = EngineEstimator()
    done = estimator.run([(circuit, SparsePauliOp("X"))])
    assert done.in_final_state()  # a tiny job ran on the calling thread, within run()
    assert isinstance(done, BasePrimitiveJob) and isinstance(done.job_id(), str)
    assert done.result()[0].data.evs == pytest.approx(1.0)
    assert done.status() is JobStatus.DONE and done.done() and not done.cancel()
    copy = pickle.loads(pickle.dumps(done))
    assert copy.status() is JobStatus.DONE and copy.result()[0].data.evs == pytest.approx(1.0)
    assert copy.job_id() == done.job_id()

    theta = Parameter("theta")
    rotation = QuantumCircuit(1)
    rotation.ry(theta, 0)
    angles = np.linspace(0, np.pi, 64)  # 64 bindings: more than a job run inline may cost
    release = threading.Event()
    busy = engine_executor().submit(release.wait, 30)  # the one engine worker, held
    try:
        waiting = estimator.run([(rotation, "Z", angles)])
        behind = estimator.run([(rotation, "Z", angles), (circuit, "X")])  # a big PUB and a tiny one
        assert waiting.status() is JobStatus.QUEUED and not waiting.in_final_state()
        assert waiting.cancel() and waiting.cancelled() and waiting.status() is JobStatus.CANCELLED
        with pytest.raises(concurrent.futures.CancelledError):
            waiting.result()
        assert behind.status() is JobStatus.QUEUED
    finally:
        release.set()
    assert busy.result() is True
    np.testing.assert_allclose(behind.result()[0].data.evs, np.cos(angles), atol=1e-12)
    assert behind.result()[1].data.evs == pytest.approx(1.0) and behind.done()

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(estimator._backend.runner, "run", fail)
    failed = estimator.run([(circuit, SparsePauliOp("X"))])
    with pytest.raises(RuntimeError, match="the engine broke"):
        failed.result()
    assert failed.status() is JobStatus.ERROR and failed.in_final_state() and not failed.done()
    with pytest.raises(RuntimeError, match="the engine broke"):
        pickle.loads(pickle.dumps(failed)).result()


def test_tiny_jobs_run_inline_and_give_what_the_worker_gives() -> None:
    """The same PUBs, seeded, inline (tiny) and on the worker (while a job of the same primitive
    holds its cache there): the same values and the same draws."""
    circuit = _parametric()
    measured = circuit.measure_all(inplace=False)
    pub = (circuit, [SparsePauliOp("ZZI"), SparsePauliOp("XIY")], [0.3, -1.1], 0.05)
    estimator, sampler = EngineEstimator(seed=5), EngineSampler(seed=5)
    inline_values = estimator.run([pub]).result()[0].data.evs
    inline_counts = sampler.run([(measured, [0.3, -1.1])], shots=500).result()[0].data.meas.get_counts()
    release = threading.Event()
    busy = engine_executor().submit(release.wait, 30)
    try:
        with estimator._cache_lock, sampler._cache_lock:  # as while a job of theirs runs on the worker
            on_worker = estimator.run([pub])
            drawn = sampler.run([(measured, [0.3, -1.1])], shots=500)
        assert not on_worker.in_final_state() and not drawn.in_final_state()
    finally:
        release.set()
    busy.result()
    np.testing.assert_array_equal(on_worker.result()[0].data.evs, inline_values)
    assert drawn.result()[0].data.meas.get_counts() == inline_counts
