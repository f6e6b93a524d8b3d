"""Fake devices run with their noise, as qiskit-ibm-runtime's local mode runs them, and agree with
Aer on the same noise model (``AerSimulator.from_backend``) within statistical error; a job's
``simulator.noise_model`` option runs any Aer model; resilience levels mitigate for real.

Aer's results are computed once per module, outside the event loop; the bounds are a few standard
errors of the shots used, which a wrong implementation (no read-out errors, no relaxation, noise in
the wrong place) exceeds by far.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp
from qiskit_aer import AerSimulator
from qiskit_aer.noise import (
    NoiseModel,
    ReadoutError,
    amplitude_damping_error,
    depolarizing_error,
    pauli_error,
    phase_damping_error,
    thermal_relaxation_error,
)

from aqrt import Batch, Estimator, LocalService, Sampler, Session
from aqrt.backends.local import DeviceBackend

from .support import bell, isa_for

pytestmark = pytest.mark.asyncio

SHOTS = 40_000


def _distance(ours: dict[str, int], theirs: dict[str, int]) -> float:
    """Total variation distance between two count dictionaries (normalised)."""
    total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
    keys = set(ours) | set(theirs)
    return 0.5 * sum(abs(ours.get(k, 0) / total_ours - theirs.get(k, 0) / total_theirs) for k in keys)


def _z_expectation(counts: dict[str, int], qubits: list[int]) -> float:
    total = sum(counts.values())
    value = 0.0
    for key, count in counts.items():
        bits = key.replace(" ", "")[::-1]
        value += (-1) ** sum(int(bits[q]) for q in qubits) * count
    return value / total


# -- sampler ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bell_isa(manila) -> QuantumCircuit:
    return isa_for(manila, bell())


@pytest.fixture(scope="module")
def aer_bell(manila, bell_isa) -> dict[str, int]:
    return AerSimulator.from_backend(manila, seed_simulator=3).run(bell_isa, shots=SHOTS).result().get_counts()


async def test_bell_on_a_noisy_device_matches_aer(manila, bell_isa, aer_bell) -> None:
    async with Session(backend=manila):
        result = await Sampler(options={"seed": 5}).run([bell_isa], shots=SHOTS)
    counts = result[0].data.meas.get_counts()
    odd = (counts.get("01", 0) + counts.get("10", 0)) / SHOTS
    assert 0.02 < odd < 0.2  # the device's noise is there (local mode: ~5.9 %)
    assert _distance(counts, aer_bell) < 0.012  # two 40k-shot samples: ~0.004
    assert result.metadata["noise"] == "device"
    assert result[0].metadata["simulator_metadata"]["method"] in ("density_matrix", "dynamic")


async def test_noise_false_is_exact(manila, bell_isa) -> None:
    backend = LocalService(noise=False).device(manila)
    result = await Sampler(mode=backend, options={"seed": 5}).run([bell_isa], shots=4000)
    assert set(result[0].data.meas.get_counts()) == {"00", "11"}
    assert result.metadata["noise"] == "none"


@pytest.fixture(scope="module")
def dynamic_isa(manila) -> QuantumCircuit:
    q, c = QuantumRegister(3, "q"), ClassicalRegister(3, "c")
    circuit = QuantumCircuit(q, c)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    with circuit.if_test((c[0], 1)):
        circuit.x(2)
    circuit.sx(1)
    circuit.measure(1, 1)
    circuit.measure(2, 2)
    return isa_for(manila, circuit)


@pytest.fixture(scope="module")
def aer_dynamic(manila, dynamic_isa) -> dict[str, int]:
    return AerSimulator.from_backend(manila, seed_simulator=4).run(dynamic_isa, shots=SHOTS).result().get_counts()


async def test_noisy_dynamic_circuit_matches_aer(manila, dynamic_isa, aer_dynamic) -> None:
    result = await Sampler(mode=manila, options={"seed": 9}).run([dynamic_isa], shots=SHOTS)
    counts = result[0].data.c.get_counts()
    assert _distance(counts, aer_dynamic) < 0.015
    assert result[0].metadata["simulator_metadata"]["method"] == "dynamic"


# -- estimator --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_isa(manila) -> list[tuple[QuantumCircuit, list[SparsePauliOp], dict[str, int]]]:
    """Random 4-qubit circuits on FakeManilaV2, Z-type observables, and Aer's counts of them."""
    cases = []
    simulator = AerSimulator.from_backend(manila, seed_simulator=21)
    for seed in (1, 2, 3):
        circuit = random_circuit(4, 4, max_operands=2, seed=seed)
        isa = isa_for(manila, circuit)
        labels = ["IIZZ", "ZIIZ", "IZZZ", "ZZZZ"]
        observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in labels]
        measured = isa.copy()
        measured.measure_all()
        counts = simulator.run(measured, shots=SHOTS).result().get_counts()
        cases.append((isa, observables, counts))
    return cases


async def test_noisy_estimator_matches_aer_counts(manila, random_isa) -> None:
    """Level 0 (no mitigation): exact noisy values, read-out errors included, as Aer's shots say."""
    async with Batch(backend=manila):
        estimator = Estimator(options={"resilience_level": 0})
        jobs = [estimator.run([(isa, observables)]) for isa, observables, _ in random_isa]
        results = [await job for job in jobs]
    for (_, observables, counts), result in zip(random_isa, results, strict=True):
        for observable, value in zip(observables, result[0].data.evs, strict=True):
            qubits = [int(i) for i in np.flatnonzero(observable.paulis[0].z)]
            reference = _z_expectation(counts, qubits)
            assert abs(value - reference) < 5 / np.sqrt(SHOTS), (observable, value, reference)


async def test_device_noise_model_is_built_once(manila, monkeypatch) -> None:
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    calls = []
    original = NoiseModel.from_backend

    def counting(backend, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(backend)
        return original(backend, *args, **kwargs)

    monkeypatch.setattr(NoiseModel, "from_backend", counting)
    device = await _made_off_loop(FakeManilaV2)
    circuit = await _made_off_loop(lambda: isa_for(device, bell()))
    async with Batch(backend=device):
        for _ in range(3):
            await Sampler().run([circuit], shots=100)
    assert len(calls) == 1


async def _made_off_loop(factory):  # type: ignore[no-untyped-def]
    import anyio.to_thread

    return await anyio.to_thread.run_sync(factory)


# -- custom models as the simulator.noise_model option ---------------------------------------------


@pytest.fixture(scope="module")
def every_channel() -> NoiseModel:
    """An Aer model with each kind of error Aer offers."""
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.02, 1), ["h", "sx"])
    model.add_all_qubit_quantum_error(depolarizing_error(0.06, 2), ["cx"])
    model.add_quantum_error(amplitude_damping_error(0.1), ["x"], [0])
    model.add_quantum_error(phase_damping_error(0.15), ["x"], [1])
    model.add_quantum_error(pauli_error([("X", 0.05), ("Z", 0.05), ("I", 0.9)]), ["ry"], [2])
    model.add_all_qubit_quantum_error(thermal_relaxation_error(50e3, 70e3, 800), ["rz"])
    model.add_all_qubit_readout_error(ReadoutError([[0.97, 0.03], [0.08, 0.92]]))
    return model


@pytest.fixture(scope="module")
def custom_case(every_channel) -> tuple[QuantumCircuit, dict[str, int]]:
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.x(0)
    circuit.x(1)
    circuit.ry(0.7, 2)
    circuit.cx(1, 2)
    circuit.rz(0.3, 2)
    circuit.sx(2)
    circuit.measure_all()
    counts = AerSimulator(noise_model=every_channel, seed_simulator=8).run(circuit, shots=SHOTS).result().get_counts()
    return circuit, counts


async def test_noise_model_option_runs_every_channel_kind(every_channel, custom_case) -> None:
    circuit, aer_counts = custom_case
    sampler = Sampler(options={"seed": 2, "simulator": {"noise_model": every_channel}})
    result = await sampler.run([circuit], shots=SHOTS)
    counts = result[0].data.meas.get_counts()
    assert _distance(counts, aer_counts) < 0.015
    exact = await Sampler(options={"seed": 2}).run([circuit], shots=SHOTS)
    assert _distance(exact[0].data.meas.get_counts(), aer_counts) > 0.05  # the noise matters here


# -- resilience -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ghz4(manila) -> tuple[QuantumCircuit, SparsePauliOp]:
    circuit = QuantumCircuit(4)
    circuit.h(0)
    for q in range(3):
        circuit.cx(q, q + 1)
    isa = isa_for(manila, circuit)
    return isa, SparsePauliOp("ZZZZ").apply_layout(isa.layout)


async def test_resilience_levels_mitigate_ghz4(manila, ghz4) -> None:
    """GHZ-4 <ZZZZ> (ideal 1.0): biased at level 0, within 0.05 at level 1 (TREX), within 0.03 at
    level 2 (TREX + ZNE + gate twirling)."""
    isa, observable = ghz4
    values = {}
    async with Batch(backend=manila):
        for level in (0, 1, 2):
            estimator = Estimator(options={"resilience_level": level, "seed": 11})
            result = await estimator.run([(isa, observable)])
            values[level] = float(result[0].data.evs)
    assert values[0] < 0.93
    assert abs(values[1] - 1.0) < 0.05
    assert abs(values[2] - 1.0) < 0.03
    assert abs(values[2] - 1.0) < abs(values[0] - 1.0)


async def test_device_backend_accepts_an_aqrt_noise_model(manila, bell_isa) -> None:
    from aqrt.noise import NoiseModel as AqrtNoiseModel
    from aqrt.noise import ReadoutError as AqrtReadoutError

    model = AqrtNoiseModel()
    model.add_readout_error(AqrtReadoutError([[0.5, 0.5], [0.5, 0.5]]))
    backend = DeviceBackend(manila, noise=model)
    result = await Sampler(mode=backend, options={"seed": 1}).run([bell_isa], shots=8000)
    counts = result[0].data.meas.get_counts()
    assert all(abs(counts.get(key, 0) / 8000 - 0.25) < 0.03 for key in ("00", "01", "10", "11"))
    assert result.metadata["noise"] == "custom"


# -- wider than the density-matrix path -------------------------------------------------------------


@pytest.fixture(scope="module")
def wide_case() -> tuple[QuantumCircuit, NoiseModel, dict[str, int]]:
    """GHZ-11 (beyond the 9-qubit density-matrix path) with a light model, and Aer's counts."""
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 2), ["cx"])
    model.add_all_qubit_quantum_error(
        thermal_relaxation_error(60e3, 50e3, 300).compose(depolarizing_error(0.002, 1)), ["h"]
    )
    model.add_all_qubit_readout_error(ReadoutError([[0.98, 0.02], [0.04, 0.96]]))
    circuit = QuantumCircuit(11)
    circuit.h(0)
    for qubit in range(10):
        circuit.cx(qubit, qubit + 1)
    measured = circuit.measure_all(inplace=False)
    simulator = AerSimulator(method="density_matrix", noise_model=model, seed_simulator=5)
    return circuit, model, simulator.run(measured, shots=SHOTS).result().get_counts()


async def test_wide_noisy_estimator_runs_trajectories(wide_case) -> None:
    circuit, model, counts = wide_case
    qubit_sets = [[0, 10], [0, 1, 2, 3], list(range(11))]
    observables = [
        SparsePauliOp("".join("Z" if q in qubits else "I" for q in reversed(range(11)))) for qubits in qubit_sets
    ]
    estimator = Estimator(options={"resilience_level": 0, "seed": 3, "simulator": {"noise_model": model}})
    result = await estimator.run([(circuit, observables)], precision=0.02)
    assert result[0].metadata["simulator_metadata"]["method"] == "trajectories"
    assert result[0].metadata["simulator_metadata"]["trajectories"] == 2500
    for qubits, value, error in zip(qubit_sets, result[0].data.evs, result[0].data.stds, strict=True):
        assert 0 < error < 0.02
        reference = _z_expectation(counts, qubits)
        assert abs(value - reference) < 4 * np.hypot(error, 1 / np.sqrt(SHOTS)), (qubits, value, reference)


async def test_wide_noisy_sampler_matches_aer(wide_case) -> None:
    """Compared on the Hamming weight of the outcomes (12 bins; 2048 outcomes are too sparse)."""
    circuit, model, counts = wide_case
    sampler = Sampler(options={"seed": 4, "simulator": {"noise_model": model}})
    result = await sampler.run([circuit.measure_all(inplace=False)], shots=SHOTS)
    assert result[0].metadata["simulator_metadata"]["method"] == "dynamic"

    def weights(table: dict[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for key, count in table.items():
            weight = str(key.count("1"))
            out[weight] = out.get(weight, 0) + count
        return out

    assert _distance(weights(result[0].data.meas.get_counts()), weights(counts)) < 0.015


async def test_mitigation_shrinks_the_bias_of_other_observables(manila, ghz4) -> None:
    """On GHZ-4, <XXXX>, <ZZII> and <IIZZ> are 1 without noise: level 2 is closer on each than level 0."""
    isa, _ = ghz4
    labels = ["XXXX", "ZZII", "IIZZ", "ZIIZ"]
    observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in labels]
    async with Batch(backend=manila):
        raw = await Estimator(options={"resilience_level": 0}).run([(isa, observables)])
        mitigated = await Estimator(options={"resilience_level": 2, "seed": 5}).run([(isa, observables)])
    for label, before, after in zip(labels, raw[0].data.evs, mitigated[0].data.evs, strict=True):
        assert abs(after - 1.0) < abs(before - 1.0) / 2, (label, before, after)
    assert mitigated[0].data.evs_extrapolated.shape[:1] == (4,)
