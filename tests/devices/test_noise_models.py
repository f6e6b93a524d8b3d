"""Noise models (aqrt.noise, aqrt.backends.local.noise_models) against qiskit-aer.

Every error constructor builds Aer's channel (compared as superoperators); a device model read
from Aer holds Aer's entries; channels sit where Aer applies errors, which a density matrix
computed from our channels pins against Aer's density-matrix simulator; readout errors on bits
and on observables agree with sampling and with brute-force enumeration.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest
import qiskit_aer.noise as aer_noise
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import XGate
from qiskit.quantum_info import (
    DensityMatrix,
    Kraus,
    Operator,
    SparseObservable,
    SparsePauliOp,
    Statevector,
    SuperOp,
    random_statevector,
    random_unitary,
)
from qiskit_aer import AerSimulator

import aqrt.noise as noise
from aqrt.backends.local import noise_models
from aqrt.backends.local.noise_models import (
    ChannelInstruction,
    apply_readout,
    as_noise_model,
    device_noise_model,
    noisy_circuit,
    readout_matrices,
    readout_observable,
)
from aqrt.engine.lowering import lower_circuit
from aqrt.engine.noise import CHANNEL_INSTRUCTION
from aqrt.errors import InvalidInputError
from aqrt.noise import Channel, NoiseModel, ReadoutError

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def aer_superop(error: Any) -> np.ndarray:
    return np.asarray(SuperOp(error.to_quantumchannel()).data)


def assert_same_channel(ours: Channel, aers: Any) -> None:
    np.testing.assert_allclose(ours.superoperator(), aer_superop(aers), atol=1e-10)


def reference_density(circuit: QuantumCircuit) -> DensityMatrix:
    """The density matrix of a circuit of gates, resets, delays and aqrt channels (no measures)."""
    rho = DensityMatrix.from_int(0, 2**circuit.num_qubits)
    reset = Kraus([np.array([[1, 0], [0, 0]]), np.array([[0, 1], [0, 0]])])
    for instruction in circuit.data:
        qargs = [circuit.find_bit(q).index for q in instruction.qubits]
        operation = instruction.operation
        if operation.name == CHANNEL_INSTRUCTION:
            rho = rho.evolve(Kraus(list(operation.channel.kraus)), qargs)
        elif operation.name in ("barrier", "delay", "save_density_matrix"):
            continue
        elif operation.name == "reset":
            rho = rho.evolve(reset, qargs)
        else:
            rho = rho.evolve(Operator(operation), qargs)
    return rho


def aer_density(circuit: QuantumCircuit, model: Any) -> np.ndarray:
    saved = circuit.copy()
    saved.save_density_matrix()
    simulator = AerSimulator(method="density_matrix", noise_model=model)
    return np.asarray(simulator.run(saved, shots=1).result().data()["density_matrix"])


def channel_positions(circuit: QuantumCircuit) -> list[tuple[str, tuple[int, ...]]]:
    """The circuit's instructions as (name, qubit indices), channels named 'channel'."""
    return [
        (
            "channel" if i.operation.name == CHANNEL_INSTRUCTION else i.operation.name,
            tuple(circuit.find_bit(q).index for q in i.qubits),
        )
        for i in circuit.data
    ]


@pytest.fixture(scope="module")
def manila_models(manila: Any) -> tuple[Any, NoiseModel]:
    """FakeManilaV2's Aer model and aqrt's conversion of it."""
    aer_model = aer_noise.NoiseModel.from_backend(manila)
    return aer_model, NoiseModel.from_aer(aer_model)


# --------------------------------------------------------------------------------------------
# constructors equal Aer's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("param", "num_qubits"), [(0.0, 1), (0.03, 1), (0.7, 1), (4 / 3, 1), (0.05, 2), (16 / 15, 2)])
def test_depolarizing_error_equals_aers(param: float, num_qubits: int) -> None:
    ours = noise.depolarizing_error(param, num_qubits)
    assert_same_channel(ours, aer_noise.depolarizing_error(param, num_qubits))
    assert ours.is_unitary_mixture and ours.num_qubits == num_qubits


def test_pauli_and_unitary_mixtures_equal_aers() -> None:
    terms = [("IX", 0.1), ("ZY", 0.2), ("II", 0.6), ("XZ", 0.1)]
    ours = noise.pauli_error(terms)
    assert_same_channel(ours, aer_noise.pauli_error(terms))
    assert ours.is_unitary_mixture
    u1, u2 = random_unitary(4, seed=3).data, random_unitary(4, seed=4).data
    pairs = [(u1, 0.25), (u2, 0.5), (np.eye(4), 0.25)]
    assert_same_channel(noise.mixed_unitary_error(pairs), aer_noise.mixed_unitary_error(pairs))
    assert_same_channel(noise.coherent_unitary_error(u1), aer_noise.coherent_unitary_error(u1))


@pytest.mark.parametrize(("gamma", "population"), [(0.0, 0.0), (0.2, 0.0), (0.35, 0.1), (1.0, 0.3)])
def test_damping_errors_equal_aers(gamma: float, population: float) -> None:
    assert_same_channel(
        noise.amplitude_damping_error(gamma, population), aer_noise.amplitude_damping_error(gamma, population)
    )
    assert_same_channel(noise.phase_damping_error(gamma), aer_noise.phase_damping_error(gamma))
    assert_same_channel(
        noise.phase_amplitude_damping_error(gamma / 2, gamma / 3, population),
        aer_noise.phase_amplitude_damping_error(gamma / 2, gamma / 3, population),
    )


@pytest.mark.parametrize(
    ("t1", "t2", "time", "population"),
    [
        (50e-6, 30e-6, 1e-6, 0.0),  # t2 < t1: Aer's reset/Z mixture
        (50e-6, 50e-6, 3e-6, 0.02),
        (50e-6, 80e-6, 2e-6, 0.05),  # t1 < t2 <= 2 t1: Aer's Kraus channel
        (40e-6, 80e-6, 10e-6, 0.0),  # t2 = 2 t1
        (np.inf, 60e-6, 5e-6, 0.0),  # pure dephasing
        (np.inf, np.inf, 5e-6, 0.0),
        (70e-6, 60e-6, 0.0, 0.1),
    ],
)
def test_thermal_relaxation_error_equals_aers(t1: float, t2: float, time: float, population: float) -> None:
    ours = noise.thermal_relaxation_error(t1, t2, time, population)
    assert_same_channel(ours, aer_noise.thermal_relaxation_error(t1, t2, time, population))
    assert len(ours.kraus) <= 4  # canonical form: at most d^2 operators


def test_reset_and_kraus_errors_equal_aers() -> None:
    assert_same_channel(noise.reset_error(0.1, 0.25), aer_noise.reset_error(0.1, 0.25))
    assert_same_channel(noise.reset_error(0.3), aer_noise.reset_error(0.3))
    kraus = Kraus(aer_noise.amplitude_damping_error(0.3).to_quantumchannel()).data
    assert_same_channel(noise.kraus_error(kraus), aer_noise.kraus_error(kraus))
    # A Kraus set that is a unitary mixture stays one.
    mixture = noise.kraus_error([np.sqrt(0.9) * np.eye(2), np.sqrt(0.1) * np.array([[0, 1], [1, 0]])])
    assert mixture.is_unitary_mixture
    np.testing.assert_allclose(sorted(mixture.probabilities), [0.1, 0.9])


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda: noise.depolarizing_error(1.5, 1), "param"),
        (lambda: noise.depolarizing_error(0.1, 0), "num_qubits"),
        (lambda: noise.pauli_error([("XQ", 1.0)]), "Pauli label"),
        (lambda: noise.pauli_error([("X", 0.5), ("Z", 0.4)]), "sum to 1"),
        (lambda: noise.pauli_error([("X", 0.5), ("ZZ", 0.5)]), "same length"),
        (lambda: noise.amplitude_damping_error(-0.1), "gamma"),
        (lambda: noise.phase_damping_error(1.2), "gamma"),
        (lambda: noise.phase_amplitude_damping_error(0.6, 0.6), r"param_amp \+ param_phase"),
        (lambda: noise.thermal_relaxation_error(10, 30, 1), "t2"),
        (lambda: noise.thermal_relaxation_error(-1, 1, 1), "t1"),
        (lambda: noise.thermal_relaxation_error(10, 10, -1), "time"),
        (lambda: noise.thermal_relaxation_error(10, 10, 1, 1.5), "excited_state_population"),
        (lambda: noise.kraus_error([np.eye(2), np.eye(2)]), "trace preserving"),
        (lambda: noise.kraus_error([]), "operators"),
        (lambda: noise.mixed_unitary_error([(np.array([[1, 1], [0, 1]]), 1.0)]), "unitary"),
        (lambda: noise.reset_error(0.7, 0.6), "prob0"),
        (lambda: ReadoutError([[0.9, 0.2], [0.1, 0.9]]), "summing to 1"),
        (lambda: ReadoutError(np.eye(4)), "correlated"),
    ],
)
def test_bad_parameters_raise_errors_naming_them(build: Any, named: str) -> None:
    with pytest.raises(InvalidInputError, match=named) as caught:
        build()
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------------------------
# the model's look-ups follow Aer
# --------------------------------------------------------------------------------------------


def test_local_errors_replace_all_qubit_ones_and_additions_compose_as_in_aer() -> None:
    first, second = noise.depolarizing_error(0.02), noise.amplitude_damping_error(0.1)
    local = noise.phase_damping_error(0.2)
    two = noise.depolarizing_error(0.05, 2)
    ours = NoiseModel()
    ours.add_quantum_error(first, ["x", "sx"])
    ours.add_quantum_error(second, "x")  # composes: first, then second
    ours.add_quantum_error(local, "x", [2])
    ours.add_quantum_error(two, "cx", [0, 1])
    ours.add_quantum_error(noise.depolarizing_error(0.0), "sx", [1])  # ideal: not added
    aers = aer_noise.NoiseModel()
    aers.add_all_qubit_quantum_error(aer_noise.depolarizing_error(0.02, 1), ["x", "sx"], warnings=False)
    aers.add_all_qubit_quantum_error(aer_noise.amplitude_damping_error(0.1), "x", warnings=False)
    aers.add_quantum_error(aer_noise.phase_damping_error(0.2), "x", [2], warnings=False)
    aers.add_quantum_error(aer_noise.depolarizing_error(0.05, 2), "cx", [0, 1], warnings=False)
    converted = NoiseModel.from_aer(aers)
    for model in (ours, converted):
        assert_same_channel(
            model.quantum_error("x", (0,)),
            aer_noise.depolarizing_error(0.02, 1).compose(aer_noise.amplitude_damping_error(0.1)),
        )
        assert_same_channel(model.quantum_error("x", (2,)), aer_noise.phase_damping_error(0.2))
        assert_same_channel(model.quantum_error("sx", (1,)), aer_noise.depolarizing_error(0.02, 1))
        assert_same_channel(model.quantum_error("cx", (0, 1)), aer_noise.depolarizing_error(0.05, 2))
        assert model.quantum_error("cx", (1, 0)) is None
        assert model.quantum_error("rz", (0,)) is None
        assert model.noise_instructions == sorted(aers.noise_instructions) == ["cx", "sx", "x"]
        assert not model.is_ideal
    assert NoiseModel().is_ideal
    with pytest.raises(InvalidInputError, match="2-qubit instruction 'cx'"):
        ours.add_quantum_error(first, "cx")
    with pytest.raises(InvalidInputError, match="qubits"):
        ours.add_quantum_error(two, "cz", [0])
    with pytest.raises(InvalidInputError, match="Channel"):
        ours.add_quantum_error(aer_noise.depolarizing_error(0.1, 1), "x")  # type: ignore[arg-type]


def test_readout_errors_as_in_aer() -> None:
    model = NoiseModel()
    assert model.readout_error(0) is None
    model.add_readout_error([[0.97, 0.03], [0.08, 0.92]])
    model.add_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]), [3])
    model.add_readout_error([[0.99, 0.01], [0.05, 0.95]], [3])  # replaces, as Aer
    model.add_readout_error(np.eye(2), [4])  # ideal: not added, the all-qubit one applies
    np.testing.assert_allclose(model.readout_error(0), [[0.97, 0.03], [0.08, 0.92]])
    np.testing.assert_allclose(model.readout_error(3), [[0.99, 0.01], [0.05, 0.95]])
    np.testing.assert_allclose(model.readout_error(4), [[0.97, 0.03], [0.08, 0.92]])
    assert model.noise_instructions == ["measure"]
    with pytest.raises(InvalidInputError, match="correlated"):
        model.add_readout_error([[0.9, 0.1], [0.1, 0.9]], [0, 1])
    correlated = aer_noise.NoiseModel()
    correlated.add_readout_error(aer_noise.ReadoutError(np.full((4, 4), 0.25)), [1, 2])
    with pytest.raises(InvalidInputError, match=r"qubits \[1, 2\] is correlated"):
        NoiseModel.from_aer(correlated)


def test_from_aer_of_a_device_model_has_aers_entries_and_channels(manila: Any, manila_models: Any) -> None:
    aer_model, ours = manila_models
    expected = set()
    readout = {}
    for entry in aer_model.to_dict()["errors"]:
        if entry["type"] == "qerror":
            expected |= {(op, tuple(q)) for op in entry["operations"] for q in entry["gate_qubits"]}
        else:
            readout[tuple(entry["gate_qubits"][0])] = np.asarray(entry["probabilities"])
    found = {(name, qubits) for name, qubits, _ in ours.quantum_error_entries()}
    assert found == expected and len(found) == 28
    for name, table in aer_model._local_quantum_errors.items():
        for qubits, error in table.items():
            assert_same_channel(ours.quantum_error(name, qubits), error)
    assert set(readout) == {(q,) for q in range(5)}
    for (qubit,), probabilities in readout.items():
        np.testing.assert_allclose(ours.readout_error(qubit), probabilities)
    assert ours.has_delay_relaxation and ours.dt == manila.dt
    properties = manila.target.qubit_properties[2]
    relaxation = ours.delay_error(2, 1e-6)
    assert_same_channel(relaxation, aer_noise.thermal_relaxation_error(properties.t1, properties.t2, 1e-6))
    assert sorted(ours.noise_instructions) == sorted(aer_model.noise_instructions)


def test_from_aer_converts_pauli_and_lindblad_errors() -> None:
    from qiskit.quantum_info import PauliList

    pauli = aer_noise.PauliError(PauliList(["IX", "ZZ", "II"]), [0.1, 0.2, 0.7])
    lindblad = aer_noise.PauliLindbladError(PauliList(["X", "Z"]), [0.05, 0.02])
    model = aer_noise.NoiseModel()
    model.add_quantum_error(pauli, "cx", [0, 1])
    model.add_all_qubit_quantum_error(lindblad, "sx")
    ours = NoiseModel.from_aer(model)
    assert_same_channel(ours.quantum_error("cx", (0, 1)), pauli)
    assert_same_channel(ours.quantum_error("sx", (3,)), lindblad)
    assert ours.quantum_error("cx", (0, 1)).is_unitary_mixture


@pytest.mark.parametrize("serializable", [False, True])
def test_from_dict_reads_aers_dict_form_without_aer(manila_models: Any, serializable: bool) -> None:
    aer_model, converted = manila_models
    custom = aer_noise.NoiseModel()
    unitary = random_unitary(2, seed=8).data
    kraus = Kraus(aer_noise.thermal_relaxation_error(50e-6, 70e-6, 1e-6).to_quantumchannel()).data
    custom.add_all_qubit_quantum_error(aer_noise.mixed_unitary_error([(unitary, 0.3), (np.eye(2), 0.7)]), "h")
    custom.add_quantum_error(aer_noise.kraus_error(kraus), "x", [2])
    custom.add_quantum_error(aer_noise.reset_error(0.1, 0.05), "reset", [1])
    custom.add_all_qubit_quantum_error(aer_noise.depolarizing_error(0.05, 2), "rzz")
    custom.add_all_qubit_readout_error([[0.9, 0.1], [0.2, 0.8]])
    for aers, reference in ((aer_model, converted), (custom, NoiseModel.from_aer(custom))):
        ours = NoiseModel.from_dict(aers.to_dict(serializable=serializable))
        entries = {(name, qubits): channel for name, qubits, channel in ours.quantum_error_entries()}
        expected = {(name, qubits): channel for name, qubits, channel in reference.quantum_error_entries()}
        assert set(entries) == set(expected)
        for key, channel in entries.items():
            np.testing.assert_allclose(channel.superoperator(), expected[key].superoperator(), atol=1e-10)
        for qubit in range(5):
            np.testing.assert_allclose(ours.readout_error(qubit), reference.readout_error(qubit))
        assert not ours.has_delay_relaxation  # the dict form carries none
    wrapped = {"__type__": "NoiseModel", "__value__": custom.to_dict()}
    assert as_noise_model(wrapped).quantum_error("h", (4,)) is not None
    with pytest.raises(InvalidInputError, match="errors"):
        NoiseModel.from_dict({"gates": []})
    bad = {
        "errors": [
            {
                "type": "qerror",
                "operations": ["x"],
                "instructions": [[{"name": "measure", "qubits": [0]}]],
                "probabilities": [1.0],
            }
        ]
    }
    with pytest.raises(InvalidInputError, match="'measure' is not supported"):
        NoiseModel.from_dict(bad)


# --------------------------------------------------------------------------------------------
# placement, and the density matrix against Aer's
# --------------------------------------------------------------------------------------------


def test_channels_sit_where_aer_applies_errors() -> None:
    model = NoiseModel()
    model.add_quantum_error(noise.depolarizing_error(0.1), ["x", "sx", "measure", "reset", "delay"])
    model.add_quantum_error(noise.depolarizing_error(0.1, 2), "cx", [7, 5])
    model.add_quantum_error(noise.depolarizing_error(0.1), "mine", [5])
    model.set_delay_relaxation({5: 100e-6, 7: 80e-6}, {5: 90e-6, 7: 100e-6}, dt=1e-9)
    circuit = QuantumCircuit(2, 2)
    circuit.x(0)
    circuit.rz(0.3, 1)
    circuit.barrier()
    circuit.cx(0, 1)
    circuit.cx(1, 0)  # cx on (5, 7): no error there
    circuit.append(XGate(label="mine"), [1])  # looked up by its label, as Aer does
    circuit.delay(100, 0, unit="dt")
    circuit.reset(1)
    circuit.measure(0, 0)
    noisy = noisy_circuit(circuit, model, [7, 5])
    assert channel_positions(noisy) == [
        ("x", (0,)),
        ("channel", (0,)),
        ("rz", (1,)),
        ("barrier", (0, 1)),
        ("cx", (0, 1)),
        ("channel", (0, 1)),
        ("cx", (1, 0)),
        ("x", (1,)),
        ("channel", (1,)),
        ("delay", (0,)),
        ("channel", (0,)),  # the model's error for 'delay'
        ("channel", (0,)),  # then the thermal relaxation over 100 dt
        ("reset", (1,)),
        ("channel", (1,)),
        ("channel", (0,)),  # a measure's error comes BEFORE the measure
        ("measure", (0,)),
    ]
    relaxation = noisy.data[11].operation.channel
    assert_same_channel(relaxation, aer_noise.thermal_relaxation_error(80e-6, 100e-6, 100e-9))
    assert noisy.num_clbits == 2 and circuit.data == noisy_circuit(circuit, NoiseModel(), [7, 5]).data
    with pytest.raises(InvalidInputError, match="physical qubits"):
        noisy_circuit(circuit, model, [7])


def test_control_flow_blocks_get_their_instructions_noise_on_the_bound_qubits() -> None:
    model = NoiseModel()
    model.add_quantum_error(noise.depolarizing_error(0.1), "x", [4])
    model.add_quantum_error(noise.depolarizing_error(0.1, 2), "cx", [4, 9])
    model.set_delay_relaxation({4: 1e-4, 9: 1e-4}, {4: 1e-4, 9: 1e-4})
    circuit = QuantumCircuit(3, 1)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)) as else_:
        circuit.x(2)
        circuit.delay(50, 2, unit="ns")  # relaxation inside blocks too, as Aer simulates it
    with else_:
        circuit.cx(2, 1)
    with circuit.for_loop(range(2)):
        circuit.x(2)
        circuit.x(1)
    noisy = noisy_circuit(circuit, model, [0, 9, 4])
    if_else, for_loop = noisy.data[1].operation, noisy.data[2].operation
    true_body, false_body = if_else.blocks
    assert [n for n, _ in channel_positions(true_body)] == ["x", "channel", "delay", "channel"]
    assert_same_channel(true_body.data[3].operation.channel, aer_noise.thermal_relaxation_error(1e-4, 1e-4, 50e-9))
    assert [n for n, _ in channel_positions(false_body)] == ["cx", "channel"]
    assert [n for n, _ in channel_positions(for_loop.blocks[0])] == ["x", "channel", "x"]
    # the channel in the loop body acts on the body's qubit bound to circuit qubit 2 (device 4)
    body = for_loop.blocks[0]
    body_qubit = body.find_bit(body.data[1].qubits[0]).index
    outer = noisy.data[2].qubits[body_qubit]
    assert noisy.find_bit(outer).index == 2


def test_measure_error_acts_before_the_measure_in_aer_and_here() -> None:
    flip = aer_noise.pauli_error([("X", 0.3), ("I", 0.7)])
    aers = aer_noise.NoiseModel()
    aers.add_all_qubit_quantum_error(flip, "measure")
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    counts = AerSimulator(noise_model=aers, seed_simulator=11).run(circuit, shots=20000).result().get_counts()
    assert abs(counts.get("1", 0) / 20000 - 0.3) < 5 * np.sqrt(0.21 / 20000)  # before: the flip is read
    noisy = noisy_circuit(circuit, NoiseModel.from_aer(aers), [0])
    assert [n for n, _ in channel_positions(noisy)] == ["channel", "measure"]


def test_density_matrix_of_a_device_circuit_equals_aers(manila: Any, manila_models: Any) -> None:
    aer_model, ours = manila_models
    logical = QuantumCircuit(3)
    logical.h(0)
    logical.cx(0, 1)
    logical.ry(0.7, 2)
    logical.cx(1, 2)
    logical.sx(1)
    logical.reset(0)
    logical.x(0)
    device = transpile(logical, manila, initial_layout=[3, 2, 4], optimization_level=0, seed_transpiler=3)
    device.delay(800, 4, unit="dt")  # on logical qubit 2
    device.delay(2, 2, unit="us")  # on logical qubit 1
    device.sx(4)
    expected = aer_density(device, aer_model)
    # The full-width circuit, and the same circuit with the idle qubits 0 and 1 dropped.
    full = reference_density(noisy_circuit(device, ours, range(5)))
    np.testing.assert_allclose(full.data, expected, atol=1e-9)
    active = [2, 3, 4]
    compact = QuantumCircuit(3)
    for instruction in device.data:
        qubits = [active.index(device.find_bit(q).index) for q in instruction.qubits]
        compact.append(instruction.operation, qubits)
    reduced = reference_density(noisy_circuit(compact, ours, active))
    # Full index = 4 * (compact index) + (bits of qubits 0, 1); the idle qubits stay in |0>.
    traced = expected.reshape(8, 4, 8, 4)[:, 0, :, 0]
    np.testing.assert_allclose(reduced.data, traced, atol=1e-9)
    np.testing.assert_allclose(np.trace(traced), 1, atol=1e-12)
    assert np.abs(expected - reference_density(device).data).max() > 1e-3  # the noise did something


def test_density_matrix_of_a_dynamic_circuit_equals_aers(manila: Any, manila_models: Any) -> None:
    """Gates in a taken branch get their noise, and a delay there its relaxation, as in Aer."""
    aer_model, ours = manila_models
    circuit = QuantumCircuit(5, 1)
    circuit.sx(1)
    circuit.cx(1, 2)
    circuit.measure(0, 0)  # qubit 0 is never touched: reads 0, so the true branch runs
    with circuit.if_test((circuit.clbits[0], 0)) as else_:
        circuit.x(2)
        circuit.delay(4000, 2, unit="dt")
        circuit.cx(2, 1)
    with else_:
        circuit.x(1)
    circuit.delay(3000, 1, unit="dt")
    circuit.sx(2)
    # Aer draws the measured bit with its read-out error (the else branch ~4 % of runs): its reference
    # here has none, which changes no channel (read-out errors act on bits, never as channels).
    expected = aer_density(circuit, aer_noise.NoiseModel.from_backend(manila, readout_error=False))
    noisy = noisy_circuit(circuit, ours, range(5))
    flat = QuantumCircuit(5)
    for instruction in noisy.data:
        if instruction.operation.name == "measure":
            continue
        if instruction.operation.name == "if_else":
            block = instruction.operation.blocks[0]
            outer = [noisy.find_bit(q).index for q in instruction.qubits]
            for inner in block.data:
                flat.append(inner.operation, [outer[block.find_bit(q).index] for q in inner.qubits])
            continue
        flat.append(instruction.operation, [noisy.find_bit(q).index for q in instruction.qubits])
    np.testing.assert_allclose(reference_density(flat).data, expected, atol=1e-9)
    (if_else,) = [i.operation for i in noisy.data if i.operation.name == "if_else"]
    names = [i.operation.name for i in if_else.blocks[0].data]
    assert names == ["x", CHANNEL_INSTRUCTION, "delay", CHANNEL_INSTRUCTION, "cx", CHANNEL_INSTRUCTION]
    loop = QuantumCircuit(5)
    loop.sx(1)
    with loop.for_loop(range(3)):
        loop.delay(2000, 1, unit="dt")
        loop.sx(1)
    unrolled = QuantumCircuit(5)
    unrolled.sx(1)
    for _ in range(3):
        unrolled.delay(2000, 1, unit="dt")
        unrolled.sx(1)
    body = noisy_circuit(loop, ours, range(5)).data[2].operation.blocks[0]  # after sx and its channel
    assert [n for n, _ in channel_positions(body)] == ["delay", "channel", "sx", "channel"]
    np.testing.assert_allclose(
        reference_density(noisy_circuit(unrolled, ours, range(5))).data, aer_density(loop, aer_model), atol=1e-9
    )


def test_density_matrix_with_every_channel_type_equals_aers() -> None:
    t1, t2 = 60e-6, 90e-6
    ours = NoiseModel()
    aers = aer_noise.NoiseModel(basis_gates=["h", "x", "sx", "rz", "cx", "unitary", "id"])
    pairs = [
        (noise.depolarizing_error(0.04), aer_noise.depolarizing_error(0.04, 1), "h", None),
        (noise.depolarizing_error(0.06, 2), aer_noise.depolarizing_error(0.06, 2), "cx", None),
        (
            noise.pauli_error([("XZ", 0.1), ("II", 0.9)]),
            aer_noise.pauli_error([("XZ", 0.1), ("II", 0.9)]),
            "cx",
            [1, 2],
        ),
        (noise.amplitude_damping_error(0.1, 0.05), aer_noise.amplitude_damping_error(0.1, 0.05), "x", None),
        (noise.phase_damping_error(0.15), aer_noise.phase_damping_error(0.15), "sx", None),
        (noise.thermal_relaxation_error(t1, t2, 3e-6), aer_noise.thermal_relaxation_error(t1, t2, 3e-6), "sx", [0]),
        (noise.reset_error(0.05, 0.02), aer_noise.reset_error(0.05, 0.02), "reset", None),
        (noise.depolarizing_error(0.2), aer_noise.depolarizing_error(0.2, 1), "rz", [2]),
    ]
    kraus = Kraus(aer_noise.phase_amplitude_damping_error(0.1, 0.1).to_quantumchannel()).data
    unitary = random_unitary(2, seed=5).data
    pairs.append((noise.kraus_error(kraus), aer_noise.kraus_error(kraus), "id", None))
    pairs.append(
        (
            noise.mixed_unitary_error([(unitary, 0.2), (np.eye(2), 0.8)]),
            aer_noise.mixed_unitary_error([(unitary, 0.2), (np.eye(2), 0.8)]),
            "x",
            [1],
        )
    )
    for channel, error, name, qubits in pairs:
        ours.add_quantum_error(channel, name, qubits)
        if qubits is None:
            aers.add_all_qubit_quantum_error(error, name, warnings=False)
        else:
            aers.add_quantum_error(error, name, qubits, warnings=False)
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    circuit.x(1)
    circuit.x(2)
    circuit.sx(0)
    circuit.sx(2)
    circuit.rz(0.4, 2)
    circuit.id(1)
    circuit.reset(2)
    circuit.h(2)
    circuit.cx(2, 0)
    expected = aer_density(circuit, aers)
    for model in (ours, NoiseModel.from_aer(aers)):
        np.testing.assert_allclose(reference_density(noisy_circuit(circuit, model, range(3))).data, expected, atol=1e-9)


def test_channel_instructions_lower_to_channel_ops() -> None:
    channel = noise.depolarizing_error(0.1, 2)
    circuit = QuantumCircuit(3)
    circuit.h(2)
    circuit.append(ChannelInstruction(channel), [2, 0])
    lowered = lower_circuit(circuit)
    assert lowered.has_channels
    assert lowered.ops[1].channel is channel and lowered.ops[1].qubits == (2, 0)
    assert ChannelInstruction(channel) == ChannelInstruction(noise.depolarizing_error(0.1, 2))
    assert ChannelInstruction(channel) != ChannelInstruction(noise.depolarizing_error(0.2, 2))
    assert circuit.copy().data[1].operation.channel is channel


# --------------------------------------------------------------------------------------------
# readout errors: on bits and on observables
# --------------------------------------------------------------------------------------------

ASYMMETRIC = [
    np.array([[0.96, 0.04], [0.11, 0.89]]),
    None,
    np.array([[0.90, 0.10], [0.03, 0.97]]),
    np.array([[0.985, 0.015], [0.06, 0.94]]),
]


def test_apply_readout_flips_bits_at_their_rates() -> None:
    rng = np.random.default_rng(5)
    shots = 200_000
    outcomes = np.where(np.arange(shots) % 2 == 0, 0b0000, 0b1111).astype(np.int64).reshape(400, 500)
    noisy = apply_readout(outcomes, [0, 1, 2], ASYMMETRIC, rng)
    assert noisy.shape == outcomes.shape and noisy.dtype == outcomes.dtype
    assert ((noisy >> 3) & 1 == (outcomes >> 3) & 1).all()  # qubit 3 not measured
    assert ((noisy >> 1) & 1 == (outcomes >> 1) & 1).all()  # qubit 1 read exactly
    for qubit in (0, 2):
        matrix = ASYMMETRIC[qubit]
        for true in (0, 1):
            rows = ((outcomes >> qubit) & 1) == true
            rate = np.mean(((noisy[rows] >> qubit) & 1) != true)
            expected = matrix[true, 1 - true]
            assert abs(rate - expected) < 5 * np.sqrt(expected * (1 - expected) / rows.sum()), (qubit, true, rate)
    assert (apply_readout(outcomes, [], ASYMMETRIC, rng) == outcomes).all()


def brute_force_readout(state: Statevector, observable: SparsePauliOp, matrices: list[Any], twirl: np.ndarray) -> float:
    """Each term measured in its eigenbasis, every noisy outcome enumerated with its probability."""
    num_qubits = state.num_qubits
    total = 0.0
    for label, coefficient in observable.to_list():
        letters = label[::-1]  # letters[q] acts on qubit q
        rotation = QuantumCircuit(num_qubits)
        for qubit, letter in enumerate(letters):
            if letter == "X":
                rotation.h(qubit)
            elif letter == "Y":
                rotation.sdg(qubit)
                rotation.h(qubit)
        probabilities = state.evolve(rotation).probabilities()  # index bit q = qubit q
        support = [q for q, letter in enumerate(letters) if letter != "I"]
        value = 0.0
        for true in range(2**num_qubits):
            for measured in range(2**num_qubits):
                weight = probabilities[true]
                for qubit in range(num_qubits):
                    t, m = (true >> qubit) & 1, (measured >> qubit) & 1
                    matrix = matrices[qubit] if matrices[qubit] is not None else np.eye(2)
                    flip = (1 - twirl[qubit]) / 2  # twirled: an X before the measure, undone on the bit
                    effective = (1 - flip) * matrix + flip * matrix[::-1, ::-1]
                    weight *= effective[t, m]
                parity = sum((measured >> q) & 1 for q in support) % 2
                value += weight * (-1) ** parity
        total += np.real(coefficient) * value
    return total


@pytest.mark.parametrize("twirl", [None, [0.0, 1.0, 0.0, 0.0], [0.3, -0.5, 1.0, 0.0], [-1.0, 1.0, 0.5, 0.8]])
def test_readout_observable_is_exact_against_enumeration(twirl: list[float] | None) -> None:
    state = random_statevector(16, seed=17)
    observable = SparsePauliOp.from_list(
        [("ZZZZ", 0.7), ("IXYZ", -0.4), ("YIIX", 0.25), ("IIZI", 1.1), ("XXXX", 0.3), ("IIII", 0.2)]
    )
    signs = np.ones(4) if twirl is None else np.asarray(twirl)
    transformed = readout_observable(observable, ASYMMETRIC, twirl)
    observed = float(np.real(state.expectation_value(transformed)))
    assert abs(observed - brute_force_readout(state, observable, ASYMMETRIC, signs)) < 1e-10
    ideal = float(np.real(state.expectation_value(observable)))
    assert abs(observed - ideal) > 1e-3  # the readout errors matter here


def test_readout_observable_matches_sampled_bits() -> None:
    state = random_statevector(8, seed=23)
    probabilities = state.probabilities()
    rng = np.random.default_rng(29)
    shots = 400_000
    outcomes = rng.choice(8, size=shots, p=probabilities)
    matrices = ASYMMETRIC[:3]
    noisy = apply_readout(outcomes, [0, 1, 2], matrices, rng)
    for label in ("ZZZ", "IZZ", "ZIZ", "ZII", "IIZ"):
        support = [q for q, letter in enumerate(label[::-1]) if letter == "Z"]
        parity = sum((noisy >> q) & 1 for q in support) % 2
        sampled = float(np.mean(1 - 2 * parity))
        exact = float(np.real(state.expectation_value(readout_observable(SparsePauliOp(label), matrices))))
        assert abs(sampled - exact) < 5 / np.sqrt(shots), label


def test_readout_observable_accepts_sparse_observables_and_exact_readout() -> None:
    observable = SparseObservable.from_list([("0+", 1.0), ("ZZ", 0.5)])
    unchanged = readout_observable(observable, [None, None])
    assert unchanged.equiv(SparsePauliOp.from_sparse_observable(observable))
    twirled = readout_observable(SparsePauliOp(["ZZ", "XI"], [1.0, 2.0]), ASYMMETRIC[2:], [0.0, 0.0])
    b = [1 - m[0, 1] - m[1, 0] for m in ASYMMETRIC[2:]]
    assert twirled.equiv(SparsePauliOp(["ZZ", "XI"], [b[0] * b[1], 2 * b[1]]))
    coin = np.full((2, 2), 0.5)  # a qubit read at random: every term on it reads 0
    assert readout_observable(SparsePauliOp(["ZZ", "ZI"]), [coin, None]).equiv(SparsePauliOp("ZI"))
    assert readout_observable(SparsePauliOp("Z" * 20), [coin] + ASYMMETRIC[:1] * 19).equiv(SparsePauliOp("I" * 20, [0]))
    with pytest.raises(InvalidInputError, match="readout matrices"):
        readout_observable(SparsePauliOp("ZZZ"), ASYMMETRIC[:2])
    with pytest.raises(InvalidInputError, match="twirl_signs"):
        readout_observable(SparsePauliOp("ZZ"), ASYMMETRIC[:2], [2.0, 0.0])


def test_wide_terms_keep_their_largest_orders() -> None:
    width = 20
    rng = np.random.default_rng(3)
    matrices = []
    for _ in range(width):
        p10, p01 = rng.uniform(0.005, 0.03), rng.uniform(0.01, 0.06)
        matrices.append(np.array([[1 - p10, p10], [p01, 1 - p01]]))
    bits = rng.integers(0, 2, width)
    z = 1 - 2 * bits  # <Z_q> on the basis state |bits>
    a = np.array([m[1, 0] - m[0, 1] for m in matrices])
    b = np.array([1 - m[1, 0] - m[0, 1] for m in matrices])
    exact = float(np.prod(a + b * z))  # observed <Z...Z> on a product state
    started = time.perf_counter()
    transformed = readout_observable(SparsePauliOp("Z" * width), matrices)
    elapsed = time.perf_counter() - started
    assert len(transformed) <= noise_models.MAX_WIDE_READOUT_TERMS
    zs = transformed.paulis.z
    value = float(np.real(np.sum(transformed.coeffs * np.prod(np.where(zs, z, 1), axis=1))))
    assert abs(value - exact) < 1e-8 * abs(exact) + 1e-12
    assert elapsed < 5.0
    # Up to the exact limit every subset above the cut-off is kept: here all 2^6.
    narrow = readout_observable(SparsePauliOp("Z" * 6), matrices[:6])
    assert len(narrow) == 2**6


def test_readout_matrices_follow_the_physical_qubits(manila_models: Any) -> None:
    _, ours = manila_models
    matrices = readout_matrices(ours, [4, 0])
    np.testing.assert_allclose(matrices[0], ours.readout_error(4))
    np.testing.assert_allclose(matrices[1], ours.readout_error(0))


# --------------------------------------------------------------------------------------------
# built once; the optional dependency
# --------------------------------------------------------------------------------------------


def test_device_noise_model_is_built_once_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []

    def slow_build(backend: Any, **kwargs: Any) -> NoiseModel:
        built.append(backend)
        time.sleep(0.2)
        return NoiseModel()

    monkeypatch.setattr(NoiseModel, "from_backend", staticmethod(slow_build))

    class Device:
        pass

    first, second = Device(), Device()
    results: list[NoiseModel] = []
    threads = [threading.Thread(target=lambda: results.append(device_noise_model(first))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(built) == 1 and len(results) == 4 and all(r is results[0] for r in results)
    assert device_noise_model(first) is results[0]
    assert device_noise_model(second) is not results[0] and built == [first, second]


def test_device_noise_model_of_a_fake_device(manila: Any) -> None:
    model = device_noise_model(manila)
    assert device_noise_model(manila) is model
    assert model.quantum_error("cx", (0, 1)) is not None and model.readout_error(4) is not None


def test_an_aer_model_is_converted_once_until_it_changes() -> None:
    aers = aer_noise.NoiseModel()
    aers.add_all_qubit_quantum_error(aer_noise.depolarizing_error(0.1, 1), "x")
    first = as_noise_model(aers)
    assert as_noise_model(aers) is first
    aers.add_quantum_error(aer_noise.depolarizing_error(0.2, 1), "x", [1])
    second = as_noise_model(aers)
    assert second is not first and second.quantum_error("x", (1,)) is not None
    assert as_noise_model(second) is second
    with pytest.raises(InvalidInputError, match="noise_model"):
        as_noise_model(0.1)
    with pytest.raises(InvalidInputError, match="errors"):
        as_noise_model({"x": 0.1})


def test_a_dict_model_is_converted_once_per_content(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dict form (as the official client sends simulator.noise_model) is converted once per
    content: the same content (a new dict, new Aer error ids, arrays included) reuses the
    conversion; a change of 1e-12 converts again; only the last DICT_MODELS_KEPT are kept."""
    conversions: list[int] = []
    original = NoiseModel.from_dict.__func__  # type: ignore[attr-defined]

    def counting(cls: type[NoiseModel], data: Any) -> NoiseModel:
        conversions.append(1)
        return original(cls, data)

    monkeypatch.setattr(NoiseModel, "from_dict", classmethod(counting))
    monkeypatch.setattr(noise_models, "_dict_models", type(noise_models._dict_models)())

    def model_dict(p: float) -> dict[str, Any]:
        aers = aer_noise.NoiseModel()
        aers.add_all_qubit_quantum_error(aer_noise.depolarizing_error(p, 1), "x")
        return aers.to_dict()  # holds numpy arrays (not the serializable form)

    first = as_noise_model(model_dict(0.1))
    assert as_noise_model(model_dict(0.1)) is first and len(conversions) == 1
    assert as_noise_model(model_dict(0.1 + 1e-12)) is not first and len(conversions) == 2
    for k in range(noise_models.DICT_MODELS_KEPT):
        as_noise_model(model_dict(0.01 * (k + 2)))
    assert len(conversions) == 2 + noise_models.DICT_MODELS_KEPT
    as_noise_model(model_dict(0.1))  # pushed out by the newer ones: converted again
    assert len(conversions) == 3 + noise_models.DICT_MODELS_KEPT


def test_missing_qiskit_aer_is_reported_with_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    monkeypatch.setitem(sys.modules, "qiskit_aer.noise", None)
    with pytest.raises(ImportError, match=r"aqrt\[noise\]"):
        NoiseModel.from_backend(object())
    with pytest.raises(ImportError, match=r"pip install -e '\.\[noise\]'"):
        NoiseModel.from_aer(object())
    # aqrt's own API needs no qiskit-aer
    model = NoiseModel()
    model.add_quantum_error(noise.thermal_relaxation_error(1e-4, 1e-4, 1e-7), "sx")
    assert model.quantum_error("sx", (0,)) is not None


def test_aqrt_noise_imports_without_qiskit_aer() -> None:
    code = (
        "import sys; sys.modules['qiskit_aer'] = None\n"
        "import aqrt, aqrt.noise, aqrt.backends.local.noise_models\n"
        "print(aqrt.noise.depolarizing_error(0.1).num_qubits)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
