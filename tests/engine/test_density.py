"""The density-matrix path (aqrt.engine.density) against Qiskit's ``DensityMatrix`` evolved with the
same gates and Kraus channels: random parameterised circuits with channels of every kind, both
precisions, the wide cache-blocked path, non-unitary superoperators the packer classifies as
diagonal or permutation, the noiseless case against the statevector engine, cancellation."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Instruction, Parameter
from qiskit.circuit.library import MCXGate
from qiskit.quantum_info import DensityMatrix, Kraus, random_quantum_channel

from aqrt.engine import lower_circuit, simulate, warmup
from aqrt.engine.density import (
    DENSITY_MAX_QUBITS,
    density_probabilities,
    density_program,
    density_term_values,
)
from aqrt.engine.noise import CHANNEL_INSTRUCTION, Channel
from aqrt.engine.ops import CX, DENSE, DIAG, PERM, BoundProgram

I2 = np.eye(2)
PX = np.array([[0, 1], [1, 0]], dtype=complex)
PY = np.array([[0, -1j], [1j, 0]])
PZ = np.diag([1.0 + 0j, -1.0])
PAULIS = [I2, PX, PY, PZ]


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    warmup()
    warmup("complex64")


def depolarizing(num_qubits: int, p: float) -> Channel:
    """The depolarizing channel as the unitary mixture of all Paulis."""
    paulis = [np.eye(1)]
    for _ in range(num_qubits):
        paulis = [np.kron(a, b) for a in paulis for b in PAULIS]
    rest = p / len(paulis)
    return Channel.mixture([1 - p + rest] + [rest] * (len(paulis) - 1), paulis)


def amplitude_damping(gamma: float) -> Channel:
    return Channel.from_kraus([np.array([[1, 0], [0, np.sqrt(1 - gamma)]]), np.array([[0, np.sqrt(gamma)], [0, 0]])])


def random_kraus_2q(seed: int) -> Channel:
    """A generic (not unitary-mixture) 2-qubit CPTP map."""
    channel = Channel.from_kraus(Kraus(random_quantum_channel(4, rank=3, seed=seed)).data)
    assert not channel.is_unitary_mixture
    return channel


def dephasing(p: float) -> Channel:
    """Superoperator diag(1, 1-2p, 1-2p, 1): packed as DIAG with non-unit entries."""
    return Channel.mixture([1 - p, p], [I2, PZ])


def x_or_y(p: float) -> Channel:
    """p X rho X + (1-p) Y rho Y: anti-diagonal superoperator (1, 2p-1, 2p-1, 1), packed as PERM."""
    return Channel.mixture([p, 1 - p], [PX, PY])


def channel_instruction(channel: Channel) -> Instruction:
    instruction = Instruction(name=CHANNEL_INSTRUCTION, num_qubits=channel.num_qubits, num_clbits=0, params=[])
    instruction.channel = channel  # type: ignore[attr-defined]
    return instruction


def with_channel(circuit: QuantumCircuit, channel: Channel, qubits: list[int]) -> None:
    circuit.append(channel_instruction(channel), qubits)


def reference(circuit: QuantumCircuit, values: np.ndarray) -> list[np.ndarray]:
    """Qiskit's density matrix of each binding: gates as operators, channels as Kraus maps."""
    out = []
    for row in values:
        bound = circuit.assign_parameters(dict(zip(circuit.parameters, row, strict=True)))
        rho = DensityMatrix.from_int(0, 2**circuit.num_qubits)
        for instruction in bound.data:
            qargs = [bound.find_bit(q).index for q in instruction.qubits]
            operation = instruction.operation
            if operation.name == CHANNEL_INSTRUCTION:
                rho = rho.evolve(Kraus(list(operation.channel.kraus)), qargs)
            else:
                rho = rho.evolve(operation, qargs)
        out.append(rho.data)
    return out


def pauli_matrix(x: int, z: int, num_qubits: int) -> np.ndarray:
    """X^x Z^z as a matrix (qubit 0 the least significant bit), built independently of the engine."""
    matrix = np.eye(1)
    for q in reversed(range(num_qubits)):
        factor = (PX if (x >> q) & 1 else I2) @ (PZ if (z >> q) & 1 else I2)
        matrix = np.kron(matrix, factor)
    return matrix


def random_terms(num_qubits: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 2**num_qubits, count)
    z = rng.integers(0, 2**num_qubits, count)
    x[:3], z[:3] = 0, [0, 1, 2**num_qubits - 1]  # identity and diagonal terms too
    return x.astype(np.int64), z.astype(np.int64)


def check_against_reference(
    circuit: QuantumCircuit, values: np.ndarray, seed: int, atol: float, dtype: type = np.complex128
) -> None:
    n = circuit.num_qubits
    lowered = lower_circuit(circuit)
    assert lowered.has_channels
    x, z = random_terms(n, 24, np.random.default_rng(seed))
    probabilities = density_probabilities(lowered, values, dtype=dtype)
    traces = density_term_values(lowered, values, x, z, dtype=dtype)
    assert probabilities.shape == (values.shape[0], 2**n) and probabilities.dtype == np.float64
    assert traces.shape == (values.shape[0], x.shape[0]) and traces.dtype == np.complex128
    for b, rho in enumerate(reference(circuit, values)):
        np.testing.assert_allclose(probabilities[b], np.real(np.diag(rho)), atol=atol)
        expected = [np.sum(pauli_matrix(int(xm), int(zm), n).T * rho) for xm, zm in zip(x, z, strict=True)]
        np.testing.assert_allclose(traces[b], expected, atol=atol)


A, B = Parameter("a"), Parameter("b")


def random_noisy_circuit(num_qubits: int, depth: int, seed: int) -> QuantumCircuit:
    """Parameterised 1- and 2-qubit gates (and a Toffoli), each followed at random by a channel of
    some kind, 2-qubit ones on random (non-adjacent, reversed) qubit pairs."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(num_qubits)
    one_qubit = [depolarizing(1, 0.1), amplitude_damping(0.25), dephasing(0.2), x_or_y(0.3)]
    two_qubit = [depolarizing(2, 0.15), random_kraus_2q(seed)]
    for _ in range(depth):
        q = int(rng.integers(num_qubits))
        kind = int(rng.integers(6))
        if kind == 0:
            circuit.rx(A * float(rng.uniform(0.5, 2)), q)
        elif kind == 1:
            circuit.ry(B + float(rng.uniform(0, 1)), q)
        elif kind == 2:
            circuit.u(A, 0.3, B, q)
        elif num_qubits >= 2 and kind == 3:
            a, b = (int(v) for v in rng.choice(num_qubits, 2, replace=False))
            circuit.cx(a, b)
        elif num_qubits >= 2 and kind == 4:
            a, b = (int(v) for v in rng.choice(num_qubits, 2, replace=False))
            circuit.rzz(A - B, a, b)
        elif num_qubits >= 3:
            a, b, c = (int(v) for v in rng.choice(num_qubits, 3, replace=False))
            circuit.ccx(a, b, c)
        else:
            circuit.h(q)
        if rng.random() < 0.6:
            with_channel(circuit, one_qubit[int(rng.integers(len(one_qubit)))], [int(rng.integers(num_qubits))])
        if num_qubits >= 2 and rng.random() < 0.4:
            a, b = (int(v) for v in rng.choice(num_qubits, 2, replace=False))
            with_channel(circuit, two_qubit[int(rng.integers(len(two_qubit)))], [a, b])
    if not circuit.parameters:
        circuit.rz(A + B, 0)
    return circuit


def bindings(circuit: QuantumCircuit, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (count, len(circuit.parameters)))


@pytest.mark.parametrize("num_qubits", [1, 2, 3, 4, 5, 6])
def test_random_noisy_circuits_match_qiskit_density_matrix(num_qubits: int) -> None:
    for seed in range(3):
        circuit = random_noisy_circuit(num_qubits, depth=6 * num_qubits, seed=100 * num_qubits + seed)
        check_against_reference(circuit, bindings(circuit, 3, seed), seed, atol=1e-10)


@pytest.mark.parametrize("num_qubits", [2, 5])
def test_complex64_is_accurate_to_single_precision(num_qubits: int) -> None:
    circuit = random_noisy_circuit(num_qubits, depth=20, seed=7 + num_qubits)
    check_against_reference(circuit, bindings(circuit, 2, 3), 3, atol=2e-5, dtype=np.complex64)


def test_every_channel_kind_on_reversed_and_non_adjacent_qubits() -> None:
    circuit = QuantumCircuit(5)
    circuit.h(range(5))
    circuit.ry(A, 1)
    circuit.cx(0, 3)
    circuit.rzz(B, 4, 1)
    with_channel(circuit, depolarizing(1, 0.2), [3])
    with_channel(circuit, depolarizing(2, 0.3), [4, 0])
    with_channel(circuit, amplitude_damping(0.4), [1])
    with_channel(circuit, random_kraus_2q(5), [3, 1])
    with_channel(circuit, random_kraus_2q(6), [0, 4])
    circuit.append(MCXGate(3), [4, 0, 2, 1])  # a multi-controlled op: its column half shifts the controls
    with_channel(circuit, dephasing(0.35), [2])
    with_channel(circuit, x_or_y(0.2), [0])
    circuit.crx(A + B, 2, 4)
    with_channel(circuit, amplitude_damping(0.3), [4])
    check_against_reference(circuit, bindings(circuit, 4, 1), 1, atol=1e-10)


def test_non_unitary_diagonal_and_permutation_superoperators_are_packed_and_run() -> None:
    """A dephasing superoperator is diagonal with entries 1 - 2p, an X/Y mixture's is anti-diagonal
    with entries 2p - 1: the packer classifies them DIAG / PERM, and the kernels must not assume
    unit-modulus entries. (The CXs keep the channels from absorbing the gates before them.)"""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.ry(A, 1)
    circuit.cx(0, 1)
    with_channel(circuit, dephasing(0.3), [0])
    with_channel(circuit, x_or_y(0.15), [1])
    circuit.cx(1, 0)
    with_channel(circuit, amplitude_damping(0.5), [0])
    program = density_program(lower_circuit(circuit), np.array([[0.7]]))
    assert program.num_qubits == 4
    assert packed_kinds(program) >= {(DIAG, (0, 2)), (PERM, (1, 3)), (DENSE, (0, 2))}
    check_against_reference(circuit, np.array([[0.7], [-2.0]]), 0, atol=1e-12)


def packed_kinds(program: BoundProgram) -> set[tuple[int, tuple[int, ...]]]:
    ops = program.ops
    return {(int(k), tuple(int(q) for q in ops.qubits[j, : ops.widths[j]])) for j, k in enumerate(ops.kinds)}


def test_a_channel_absorbs_the_gates_and_channels_before_it_on_its_qubits() -> None:
    """A 1-qubit channel on 0 absorbs ry(a) on 0 (stepping over a CX on other qubits); a 2-qubit
    channel on (0, 2) absorbs rx, a CX and that channel, and stops at the CX on (1, 2): five ops
    (the CX on (1, 2) and the final H as two halves each, one superoperator, per binding)."""
    circuit = QuantumCircuit(3)
    circuit.ry(A, 0)
    circuit.cx(1, 2)
    with_channel(circuit, amplitude_damping(0.2), [0])
    circuit.cx(2, 0)
    circuit.rx(B, 2)
    with_channel(circuit, random_kraus_2q(3), [0, 2])
    circuit.h(1)
    values = np.array([[0.3, 1.0], [2.0, -0.5], [-1.0, 0.1]])
    program = density_program(lower_circuit(circuit), values)
    assert program.num_ops == 5
    assert packed_kinds(program) >= {(DENSE, (0, 2, 3, 5)), (CX, (1, 2)), (CX, (4, 5))}
    assert program.binding_buffers.shape[1] == 4**4  # absorbed ry(a) and rx(b): one matrix per binding
    check_against_reference(circuit, values, 2, atol=1e-12)


def test_wide_path_matches_at_nine_qubits() -> None:
    """n = 9: a 2n = 18-qubit vector, beyond WIDE_QUBITS: cache-blocked groups, 4-qubit
    superoperators on high qubits, a multi-controlled op."""
    assert simulate.WIDE_QUBITS <= 18
    circuit = QuantumCircuit(9)
    for q in range(9):
        circuit.ry(A * (q + 1) / 9, q)
    circuit.cx(0, 8)
    with_channel(circuit, depolarizing(2, 0.2), [8, 0])
    circuit.ccx(2, 7, 4)
    with_channel(circuit, random_kraus_2q(9), [5, 6])
    with_channel(circuit, amplitude_damping(0.3), [7])
    circuit.rzz(B, 3, 7)
    with_channel(circuit, dephasing(0.1), [3])
    with_channel(circuit, x_or_y(0.4), [7])
    for q in range(0, 9, 2):
        circuit.rx(B, q)
        with_channel(circuit, depolarizing(1, 0.05), [q])
    values = np.array([[0.4, -1.1], [2.5, 0.3]])
    # Non-unit DIAG and PERM superoperators, and a 4-qubit one, on high qubits of the wide path:
    assert packed_kinds(density_program(lower_circuit(circuit), values)) >= {
        (DIAG, (3, 12)),
        (PERM, (7, 16)),
        (DENSE, (5, 6, 14, 15)),
    }
    check_against_reference(circuit, values, 9, atol=1e-10)


@pytest.mark.parametrize("num_qubits", [3, 9])
def test_noiseless_circuit_equals_the_statevector_engine(num_qubits: int) -> None:
    circuit = random_noisy_circuit(num_qubits, depth=4 * num_qubits, seed=num_qubits)
    noiseless = QuantumCircuit(num_qubits)
    for instruction in circuit.data:
        if instruction.operation.name != CHANNEL_INSTRUCTION:
            noiseless.append(instruction)
    lowered = lower_circuit(noiseless, [p.name for p in circuit.parameters])
    assert not lowered.has_channels
    values = bindings(circuit, 3, 2)
    x, z = random_terms(num_qubits, 16, np.random.default_rng(4))
    program = lowered.bind(values)
    np.testing.assert_allclose(
        density_term_values(lowered, values, x, z), simulate.term_values(program, x, z), atol=1e-10
    )
    np.testing.assert_allclose(
        density_probabilities(lowered, values), simulate.probabilities(program, 0, values.shape[0]), atol=1e-10
    )


def test_probabilities_are_distributions() -> None:
    circuit = random_noisy_circuit(4, depth=30, seed=11)
    probabilities = density_probabilities(lower_circuit(circuit), bindings(circuit, 5, 1), dtype=np.complex64)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    # Noise spreads the weight: a noisy 4-qubit circuit has no deterministic outcome.
    assert (probabilities.max(axis=1) < 0.99).all()


class CountingCancel:
    """Set from the ``after``-th poll on: cancellation seen between bindings or kernel groups."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.polls = 0

    def is_set(self) -> bool:
        self.polls += 1
        return self.polls > self.after


@pytest.mark.parametrize("num_qubits", [3, 9])
def test_cancel_is_polled_and_raises(num_qubits: int) -> None:
    circuit = random_noisy_circuit(num_qubits, depth=10, seed=3)
    lowered = lower_circuit(circuit)
    values = bindings(circuit, 4, 0)
    x, z = random_terms(num_qubits, 4, np.random.default_rng(0))
    already = threading.Event()
    already.set()
    with pytest.raises(simulate.EngineCancelled):
        density_term_values(lowered, values, x, z, cancel=already)
    with pytest.raises(simulate.EngineCancelled):
        density_probabilities(lowered, values, cancel=already)
    later = CountingCancel(after=1)  # the first poll passes, the next one (a later binding or group) stops the run
    with pytest.raises(simulate.EngineCancelled):
        density_probabilities(lowered, values, cancel=later)
    assert later.polls == 2
    never = threading.Event()
    assert density_probabilities(lowered, values, cancel=never).shape == (4, 2**num_qubits)


def test_max_width_fits_memory() -> None:
    """The default widest density width keeps vec(rho) small (4**n amplitudes of 16 bytes)."""
    assert 8 <= DENSITY_MAX_QUBITS <= 11
    assert 16 * 4**DENSITY_MAX_QUBITS <= 64 * 2**20
