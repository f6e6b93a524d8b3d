"""Noise on the dynamic route: channels split a branch's shots over their operators, read-out errors
misread measured bits (mid-circuit ones before control flow reads them), checked against Aer with
the same noise model."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Instruction
from qiskit.quantum_info import Kraus, SparseObservable
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, ReadoutError, amplitude_damping_error, depolarizing_error

from aqrt.backends.local import dynamic
from aqrt.engine.noise import CHANNEL_INSTRUCTION, Channel

DEPOLARIZING_1Q = depolarizing_error(0.05, 1)
DEPOLARIZING_2Q = depolarizing_error(0.1, 2)
DAMPING = amplitude_damping_error(0.2)
READOUT = [[0.9, 0.1], [0.2, 0.8]]


def _channel(error: object, num_qubits: int) -> Instruction:
    instruction = Instruction(CHANNEL_INSTRUCTION, num_qubits, 0, [])
    instruction.channel = Channel.from_kraus(Kraus(error.to_quantumchannel()).data)  # type: ignore[attr-defined]
    return instruction


def _circuits() -> tuple[QuantumCircuit, QuantumCircuit, NoiseModel]:
    """The same dynamic circuit for Aer (noise from its model) and for aqrt (channels in place)."""
    q, c = QuantumRegister(3, "q"), ClassicalRegister(3, "c")
    ideal, noisy = QuantumCircuit(q, c), QuantumCircuit(q, c)
    ideal.h(0)
    ideal.cx(0, 1)
    ideal.measure(0, 0)
    with ideal.if_test((c[0], 1)):
        ideal.x(2)
    ideal.sx(1)
    ideal.measure(1, 1)
    ideal.measure(2, 2)
    noisy.h(0)
    noisy.append(_channel(DEPOLARIZING_1Q, 1), [0])
    noisy.cx(0, 1)
    noisy.append(_channel(DEPOLARIZING_2Q, 2), [0, 1])
    noisy.measure(0, 0)
    with noisy.if_test((c[0], 1)):
        noisy.x(2)
        noisy.append(_channel(DEPOLARIZING_1Q, 1), [2])
    noisy.sx(1)
    noisy.append(_channel(DAMPING, 1), [1])
    noisy.measure(1, 1)
    noisy.measure(2, 2)
    model = NoiseModel()
    model.add_all_qubit_quantum_error(DEPOLARIZING_1Q, ["h", "x"])
    model.add_all_qubit_quantum_error(DEPOLARIZING_2Q, ["cx"])
    model.add_quantum_error(DAMPING, ["sx"], [1])
    model.add_all_qubit_readout_error(ReadoutError(READOUT))
    return ideal, noisy, model


@pytest.fixture(scope="module")
def aer_counts() -> dict[str, int]:
    ideal, _, model = _circuits()
    return AerSimulator(noise_model=model, seed_simulator=11).run(ideal, shots=60_000).result().get_counts()


def test_noisy_dynamic_sampler_matches_aer(aer_counts: dict[str, int]) -> None:
    _, noisy, _ = _circuits()
    shots = 60_000
    readout = [np.array(READOUT)] * 3
    packed = dynamic.sample(noisy, np.zeros((1, 0)), [], shots, np.random.default_rng(3), readout=readout)["c"]
    outcomes, counts = np.unique(packed[0, :, 0], return_counts=True)
    ours = {format(int(o), "03b"): int(n) for o, n in zip(outcomes, counts, strict=True)}
    keys = set(ours) | set(aer_counts)
    distance = 0.5 * sum(abs(ours.get(k, 0) - aer_counts.get(k, 0)) for k in keys) / shots
    # Two samples of 60k shots over 8 outcomes differ by ~0.005 in total variation; without the
    # read-out errors, or with them applied after the condition is read, the distance is > 0.05.
    assert distance < 0.015


def test_readout_errors_are_read_by_control_flow() -> None:
    """A qubit left in |0> reads 1 with probability 0.1; the if_test then flips qubit 1 in those shots only."""
    q, c = QuantumRegister(2, "q"), ClassicalRegister(2, "c")
    circuit = QuantumCircuit(q, c)
    circuit.measure(0, 0)
    with circuit.if_test((c[0], 1)):
        circuit.x(1)
    circuit.measure(1, 1)
    exact = np.array([[1.0, 0.0], [0.0, 1.0]])
    packed = dynamic.sample(
        circuit, np.zeros((1, 0)), [], 20_000, np.random.default_rng(5), readout=[np.array(READOUT), exact]
    )["c"][0, :, 0]
    assert set(np.unique(packed)) == {0b00, 0b11}
    assert abs(np.mean(packed == 0b11) - 0.1) < 0.01  # sd 0.002


def test_noisy_estimator_monte_carlo_matches_aer() -> None:
    """Trajectory means agree with Aer's shot-averaged expectation values within a few standard errors."""
    ideal, noisy, model = _circuits()
    without_final = ideal.copy()
    without_final.data = [
        inst for inst in without_final.data if inst.operation.name != "measure" or inst.clbits[0] == ideal.clbits[0]
    ]
    noisy_estimator = noisy.copy()
    noisy_estimator.data = [
        inst for inst in noisy_estimator.data if inst.operation.name != "measure" or inst.clbits[0] == noisy.clbits[0]
    ]
    labels = ["IZZ", "ZII", "IXI", "ZIZ"]  # ZII reads the if_test, which reads a misread bit
    observables = [SparseObservable(label) for label in labels]
    means, errors = dynamic.noisy_expectation_values(
        noisy_estimator,
        np.zeros((1, 0)),
        [],
        observables,
        40_000,
        np.random.default_rng(7),
        readout=[np.array(READOUT)] * 3,
    )
    from qiskit.quantum_info import Pauli

    reference = without_final.copy()
    for label in labels:
        reference.save_expectation_value(Pauli(label), [0, 1, 2], label=label)  # type: ignore[attr-defined]
    data = AerSimulator(noise_model=model, seed_simulator=13).run(reference, shots=40_000).result().data()
    for j, label in enumerate(labels):
        if (
            label == "IXI"
        ):  # qubit 1 is left in |0> or |1> by qubit 0's measurement, then sx: X reads 0 in every trajectory
            assert abs(means[0, j]) < 1e-12 and errors[0, j] < 1e-12
        else:
            assert errors[0, j] > 0
        assert abs(means[0, j] - float(np.real(data[label]))) < 5 * np.sqrt(2) * max(errors[0, j], 1e-3), label


def test_exact_estimator_refuses_channels() -> None:
    _, noisy, _ = _circuits()
    with pytest.raises(ValueError, match="noisy_expectation_values"):
        dynamic.expectation_values(noisy, np.zeros((1, 0)), [], [SparseObservable("ZZZ")])
