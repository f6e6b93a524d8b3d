"""Fake devices are accepted wherever a backend is (Session, Batch, job mode; by object and by
name) and, run without noise (``LocalService(noise=False)``), compute what aqrt_statevector
computes for the same circuit: same seed, same counts; the same expectation values. (With their
noise, the default, they agree with Aer: tests/devices/test_noisy_devices.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import (
    BackendMismatchError,
    Batch,
    Estimator,
    LocalService,
    Sampler,
    Session,
    UnsupportedCircuitError,
)
from aqrt.backends.local import DeviceBackend
from aqrt.backends.local.device import DEVICE_NOISE, NOISELESS

from .support import isa_for

pytestmark = pytest.mark.asyncio

SEED = 1234
SHOTS = 2000


def _ghz3() -> QuantumCircuit:
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    circuit.ry(0.4, 2)
    return circuit


@pytest.fixture(scope="module")
def sampled(manila) -> QuantumCircuit:
    """A measured 3-qubit circuit, ISA for FakeManilaV2 (5 qubits)."""
    circuit = _ghz3()
    circuit.measure_all()
    return isa_for(manila, circuit)


@pytest.fixture(scope="module")
def estimated(manila) -> tuple[QuantumCircuit, SparsePauliOp]:
    """The same circuit unmeasured, ISA for FakeManilaV2, and ZZZ + 0.5 XXI laid out on it."""
    circuit = isa_for(manila, _ghz3())
    observable = SparsePauliOp(["ZZZ", "XXI"], [1.0, 0.5]).apply_layout(circuit.layout)
    return circuit, observable


async def _statevector_counts(circuit: QuantumCircuit) -> dict[str, int]:
    result = await Sampler(mode="aqrt_statevector", options={"seed": SEED}).run([circuit], shots=SHOTS)
    return result[0].data.meas.get_counts()


async def _statevector_evs(pub: tuple[QuantumCircuit, SparsePauliOp]) -> float:
    result = await Estimator(mode="aqrt_statevector").run([pub])
    return float(result[0].data.evs)


@pytest.mark.parametrize("by", ["object", "name"])
async def test_a_session_on_a_fake_device(manila, sampled, estimated, by) -> None:
    expected_counts = await _statevector_counts(sampled)
    expected_evs = await _statevector_evs(estimated)
    service = LocalService(noise=False)
    async with Session(service=service, backend=manila if by == "object" else "fake_manila") as session:
        backend = session.backend
        assert isinstance(backend, DeviceBackend)
        assert backend.name == "fake_manila" and backend.num_qubits == 5
        assert session.service is service
        assert backend.service is session.service
        sampler = Sampler(options={"seed": SEED})
        estimator = Estimator(mode=manila)  # the same device, by object: this session's
        assert sampler.session is session and estimator.session is session
        counts = (await sampler.run([sampled], shots=SHOTS))[0].data.meas.get_counts()
        evs = float((await estimator.run([estimated]))[0].data.evs)
    assert counts == expected_counts
    assert evs == pytest.approx(expected_evs, abs=1e-12)
    assert set(counts) == {"000", "100", "011", "111"}  # a wrong bit order or layout fails here


@pytest.mark.parametrize("by", ["object", "name"])
async def test_a_batch_on_a_fake_device(manila, sampled, by) -> None:
    expected = await _statevector_counts(sampled)
    async with Batch(service=LocalService(noise=False), backend=manila if by == "object" else "fake_manila") as batch:
        sampler = Sampler(mode=batch, options={"seed": SEED})
        jobs = [sampler.run([sampled], shots=SHOTS) for _ in range(3)]
        results = [await job for job in jobs]
    assert batch.backend.name == "fake_manila"
    assert [result[0].data.meas.get_counts() for result in results] == [expected] * 3


@pytest.mark.parametrize("by", ["object", "name"])
async def test_job_mode_on_a_fake_device(manila, sampled, estimated, by) -> None:
    service = LocalService(noise=False)
    mode = service.device(manila) if by == "object" else service.backend("fake_manila")
    sampler = Sampler(mode=mode, options={"seed": SEED})
    estimator = Estimator(mode=mode)
    assert sampler.session is None and estimator.session is None
    assert sampler.backend.name == estimator.backend.name == "fake_manila"
    sample = await sampler.run([sampled], shots=SHOTS)
    estimate = await estimator.run([estimated])
    assert sample.metadata["backend"] == estimate.metadata["backend"] == "fake_manila"
    assert sample[0].data.meas.get_counts() == await _statevector_counts(sampled)
    assert float(estimate[0].data.evs) == pytest.approx(await _statevector_evs(estimated), abs=1e-12)
    for result in (sample, estimate):
        assert {key: result.metadata[key] for key in NOISELESS} == NOISELESS  # never silently noiseless
    plain = await Sampler(mode="aqrt_statevector", options={"seed": SEED}).run([sampled], shots=SHOTS)
    assert "noise" not in plain.metadata


async def test_optimization_level_on_a_device(manila, estimated) -> None:
    """A device refuses non-ISA circuits whatever the options (as IBM's do); an ISA circuit
    re-optimised at optimization_level runs for the device's target."""
    exact = LocalService(noise=False).device(manila)
    result = await Estimator(mode=exact, options={"optimization_level": 3}).run([estimated])
    assert float(result[0].data.evs) == pytest.approx(await _statevector_evs(estimated), abs=1e-12)
    circuit = QuantumCircuit(5)
    circuit.h(0)
    with pytest.raises(UnsupportedCircuitError, match="not supported by the target"):
        Estimator(mode=exact, options={"optimization_level": 1}).run([(circuit, "ZIIII")])


async def test_the_counts_follow_the_exact_distribution(manila, sampled) -> None:
    """Not only equal to aqrt_statevector's: the counts are those of the exact state (a
    device backend that dropped or permuted qubits would fail)."""
    exact = LocalService(noise=False).device(manila)
    counts = (await Sampler(mode=exact, options={"seed": SEED}).run([sampled], shots=SHOTS))[0].data.meas
    probabilities = {key: value / SHOTS for key, value in counts.get_counts().items()}
    # ry(0.4) on qubit 2 (the leftmost bit) of (|000> + |111>)/sqrt(2)
    kept, flipped = np.cos(0.2) ** 2 / 2, np.sin(0.2) ** 2 / 2
    expected = {"000": kept, "100": flipped, "011": flipped, "111": kept}
    assert set(probabilities) == set(expected)
    for key, probability in expected.items():
        assert abs(probabilities[key] - probability) < 0.035, (key, probabilities)


async def test_a_primitive_inside_a_session_on_another_device_is_refused(manila, sherbrooke) -> None:
    async with Session(backend=manila):
        with pytest.raises(BackendMismatchError, match="fake_sherbrooke"):
            Sampler(mode=sherbrooke)
        with pytest.raises(BackendMismatchError, match="aqrt_statevector"):
            Sampler(mode="aqrt_statevector")


async def test_a_qiskit_backend_runs_only_on_a_local_service(manila) -> None:
    class RemoteLike:
        """A Service that is not local (needs I/O for its backends)."""

        def known_backend(self, name=None):
            return None

        async def fetch_backend(self, name=None):
            raise AssertionError("not reached")

    with pytest.raises(TypeError, match="runs on a LocalService"):
        Session(service=RemoteLike(), backend=manila)
    with pytest.raises(TypeError, match="a name, an aqrt Backend or a Qiskit BackendV2"):
        Session(backend=object())


async def test_a_session_on_a_given_local_service_uses_its_device_backend(manila) -> None:
    service = LocalService()
    backend = service.backend("fake_manila")
    async with Session(service=service, backend=manila) as session:
        assert session.backend is backend
    async with Session(backend=backend) as session:
        assert session.backend is backend and session.service is service


async def test_a_device_backend_says_whether_it_runs_with_noise(manila) -> None:
    assert LocalService().device(manila).result_metadata == DEVICE_NOISE
    assert DEVICE_NOISE["noise"] == "device"
    assert (
        LocalService(noise=False).device(manila).result_metadata
        == NOISELESS
        == {
            "noise": "none",
            "simulator": "noiseless statevector; the device's noise model is not applied",
        }
    )
    assert LocalService().backend().result_metadata == {}
