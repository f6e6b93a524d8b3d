"""Monte Carlo trajectories (aqrt.engine.trajectories) against exact references: density matrices
evolved by qiskit.quantum_info (means, probabilities) and the full trajectory tree enumerated
(the per-trajectory spread behind the standard errors). Statistical checks use fixed seeds and
bounds a wrong implementation (no noise, wrong branch weights, no renormalisation) fails."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import numba
import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Instruction, Parameter
from qiskit.quantum_info import DensityMatrix, Kraus, Operator, Statevector, random_quantum_channel
from scipy.stats import chisquare

from aqrt.engine import lower_circuit, simulate
from aqrt.engine import trajectories as traj
from aqrt.engine.kernels import trajectories as kernels
from aqrt.engine.noise import CHANNEL_INSTRUCTION, Channel
from aqrt.noise import depolarizing_error, thermal_relaxation_error

I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
PAULIS = [I2, X, Y, Z]


def depolarizing(p: float, k: int) -> Channel:
    """k-qubit depolarizing as a mixture of the 4**k Paulis (identity weight 1 - p + p / 4**k)."""
    mats = [np.array([[1.0]])]
    for _ in range(k):
        mats = [np.kron(b, a) for a in PAULIS for b in mats]
    weights = np.full(4**k, p / 4**k)
    weights[0] += 1 - p
    return Channel.mixture(weights, mats)


def amplitude_damping(gamma: float) -> Channel:
    return Channel.from_kraus([np.diag([1, np.sqrt(1 - gamma)]), np.array([[0, np.sqrt(gamma)], [0, 0]])])


def kraus_2q(seed: int) -> Channel:
    channel = Channel.from_kraus(Kraus(random_quantum_channel(4, seed=seed)).data)
    assert not channel.is_unitary_mixture
    return channel


def instruction(channel: Channel) -> Instruction:
    ins = Instruction(CHANNEL_INSTRUCTION, channel.num_qubits, 0, [])
    ins.channel = channel  # type: ignore[attr-defined]
    return ins


def exact_density(circuit: QuantumCircuit) -> np.ndarray:
    """The circuit's final density matrix (channels as Kraus maps), by qiskit.quantum_info."""
    rho = DensityMatrix.from_int(0, 2**circuit.num_qubits)
    for item in circuit.data:
        qargs = [circuit.find_bit(q).index for q in item.qubits]
        if item.operation.name == CHANNEL_INSTRUCTION:
            rho = rho.evolve(Kraus(list(item.operation.channel.kraus)), qargs=qargs)
        else:
            rho = rho.evolve(Operator(item.operation), qargs=qargs)
    return np.asarray(rho.data)


def pauli_value(rho: np.ndarray, x: int, z: int) -> complex:
    """Tr(X^x Z^z rho) = sum_i (-1)^popcount(i & z) rho[i, i ^ x]."""
    index = np.arange(rho.shape[0])
    signs = np.array([(-1) ** bin(i & z).count("1") for i in index])
    return complex((signs * rho[index, index ^ x]).sum())


def random_noisy_circuit(n: int, seed: int, *, mixtures_only: bool = False) -> QuantumCircuit:
    """Layers of parameterised rotations and CX, with channels of every kind after the gates."""
    rng = np.random.default_rng(seed)
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(n)
    for layer in range(3):
        for q in range(n):
            circuit.ry(a if (q + layer) % 2 else float(rng.uniform(0, np.pi)), q)
            circuit.rz(b * (q + 1), q)
            kind = rng.integers(3)
            if kind == 0:
                circuit.append(instruction(depolarizing(0.15, 1)), [q])
            elif kind == 1 and not mixtures_only:
                circuit.append(instruction(amplitude_damping(0.25)), [q])
        if n >= 2:
            order = rng.permutation(n)
            pair = [int(order[0]), int(order[1])]  # non-adjacent and reversed pairs too
            circuit.cx(*pair)
            if mixtures_only or layer != 1:
                circuit.append(instruction(depolarizing(0.2, 2)), pair)
            else:
                circuit.append(instruction(kraus_2q(seed + layer)), pair)
    return circuit


def without_channels(circuit: QuantumCircuit) -> QuantumCircuit:
    out = circuit.copy_empty_like()
    for item in circuit.data:
        if item.operation.name != CHANNEL_INSTRUCTION:
            out.append(item)
    return out


BINDINGS = np.array([[0.3, -0.7], [1.9, 0.4], [-2.5, 2.2]])


def exact_terms(circuit: QuantumCircuit, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    out = np.empty((BINDINGS.shape[0], x.shape[0]), dtype=complex)
    for row, binding in enumerate(BINDINGS):
        rho = exact_density(circuit.assign_parameters(dict(zip(circuit.parameters, binding, strict=True))))
        out[row] = [pauli_value(rho, int(xm), int(zm)) for xm, zm in zip(x, z, strict=True)]
    return out


def random_terms(n: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**n, count)
    z = rng.integers(0, 2**n, count)
    x[0] = z[0] = 0  # the identity: value 1 on every trajectory
    z[1], x[1] = (1 << n) - 1, 0  # Z on every qubit
    return x.astype(np.int64), z.astype(np.int64)


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    circuit = QuantumCircuit(1)
    circuit.append(instruction(amplitude_damping(0.5)), [0])
    lowered = lower_circuit(circuit)
    for dtype in (np.complex128, np.complex64):
        traj.trajectory_term_values(
            lowered,
            np.zeros((1, 0)),
            np.zeros(1, np.int64),
            np.zeros(1, np.int64),
            2,
            np.random.default_rng(0),
            dtype=dtype,
        )
        traj.trajectory_samples(lowered, np.zeros((1, 0)), 2, np.random.default_rng(0), dtype=dtype)


# -- term values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_term_means_agree_with_the_density_matrix_within_five_standard_errors(n: int) -> None:
    circuit = random_noisy_circuit(n, seed=10 + n)
    x, z = random_terms(n, 10, seed=n)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    trajectories = 3000
    means, errors = traj.trajectory_term_values(lowered, BINDINGS, x, z, trajectories, np.random.default_rng(n))
    exact = exact_terms(circuit, x, z)
    assert means.shape == errors.shape == exact.shape
    assert means.dtype == np.complex128 and errors.dtype == np.float64
    np.testing.assert_allclose(means[:, 0], 1.0, atol=1e-12)  # identity: no spread
    np.testing.assert_allclose(errors[:, 0], 0.0, atol=1e-12)
    deviation = np.abs(means - exact)
    assert (deviation <= 5 * errors + 1e-9).all(), (deviation / np.maximum(errors, 1e-300)).max()
    # the noise matters: a simulator ignoring the channels would be many standard errors off
    noiseless = exact_terms(without_channels(circuit), x, z)
    assert (np.abs(noiseless - exact) > 10 * errors + 0.02).any()


def unravelled_kraus(channel: Channel) -> list[np.ndarray]:
    """The Kraus operators a trajectory picks among: a general channel's identity part (weight p,
    ``Channel.identity_split``) as sqrt(p) I, then its rest's operators times sqrt(1 - p)."""
    weight, rest = channel.identity_split
    if channel.is_unitary_mixture or weight == 0:
        return list(channel.kraus)
    identity = np.sqrt(weight) * np.eye(channel.kraus[0].shape[0])
    return [identity] + ([] if rest is None else [np.sqrt(1 - weight) * k for k in rest.kraus])


def _enumerate(circuit: QuantumCircuit) -> list[tuple[float, np.ndarray]]:
    """Every trajectory of the circuit with its probability (Kraus branches weighted by ||K psi||^2,
    a general channel's identity part a branch of its own)."""
    leaves = [(1.0, Statevector.from_int(0, 2**circuit.num_qubits))]
    for item in circuit.data:
        qargs = [circuit.find_bit(q).index for q in item.qubits]
        if item.operation.name != CHANNEL_INSTRUCTION:
            leaves = [(p, psi.evolve(Operator(item.operation), qargs=qargs)) for p, psi in leaves]
            continue
        grown = []
        for p, psi in leaves:
            for k in unravelled_kraus(item.operation.channel):
                branch = psi.evolve(Operator(k), qargs=qargs)
                weight = float(np.vdot(branch.data, branch.data).real)
                if weight > 1e-15:
                    grown.append((p * weight, Statevector(branch.data / np.sqrt(weight))))
        leaves = grown
    return leaves


def test_standard_errors_are_the_true_spread_over_root_trajectories() -> None:
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.append(instruction(amplitude_damping(0.4)), [0])
    circuit.cx(0, 2)
    circuit.append(instruction(depolarizing(0.3, 2)), [2, 0])
    circuit.ry(0.8, 1)
    circuit.cx(1, 0)
    circuit.append(instruction(kraus_2q(3)), [1, 2])
    circuit.append(instruction(depolarizing(0.4, 1)), [1])
    x = np.array([0, 1, 0, 5, 2, 7], dtype=np.int64)
    z = np.array([1, 0, 6, 5, 3, 0], dtype=np.int64)
    leaves = _enumerate(circuit)
    weights = np.array([p for p, _ in leaves])
    assert abs(weights.sum() - 1) < 1e-9
    per_leaf = np.array(
        [
            [pauli_value(np.outer(psi.data, psi.data.conj()), int(a), int(b)) for a, b in zip(x, z, strict=True)]
            for _, psi in leaves
        ]
    )
    true_mean = weights @ per_leaf
    true_sd = np.sqrt(weights @ np.abs(per_leaf - true_mean) ** 2)
    np.testing.assert_allclose(
        true_mean, [pauli_value(exact_density(circuit), int(a), int(b)) for a, b in zip(x, z, strict=True)], atol=1e-9
    )  # the tree is the channel
    trajectories = 20000
    means, errors = traj.trajectory_term_values(
        lower_circuit(circuit), np.zeros((1, 0)), x, z, trajectories, np.random.default_rng(5)
    )
    assert (np.abs(means[0] - true_mean) <= 5 * true_sd / np.sqrt(trajectories)).all()
    np.testing.assert_allclose(errors[0] * np.sqrt(trajectories), true_sd, rtol=0.05)
    assert true_sd.min() > 0.2  # every term spreads: the check above has teeth


def test_observable_weights_give_the_observables_errors_with_covariances() -> None:
    circuit = random_noisy_circuit(3, seed=2)
    x, z = random_terms(3, 6, seed=2)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    weights = np.array([[0, 1, 1, 0, 0.5, 0], [0.2, 0, 0, 1, 0, -1]], dtype=complex)
    terms, _ = traj.trajectory_term_values(lowered, BINDINGS, x, z, 500, np.random.default_rng(9))
    observables, observable_errors = traj.trajectory_term_values(
        lowered, BINDINGS, x, z, 500, np.random.default_rng(9), weights=weights
    )
    np.testing.assert_allclose(observables, terms @ weights.T, atol=1e-12)
    assert observable_errors.shape == (3, 2) and (observable_errors > 0).all()


def test_noiseless_circuit_is_exact_with_zero_error() -> None:
    circuit = QuantumCircuit(4)
    circuit.h(0)
    for q in range(3):
        circuit.cx(q, q + 1)
    x = np.array([0, 15, 0], dtype=np.int64)
    z = np.array([15, 0, 3], dtype=np.int64)
    means, errors = traj.trajectory_term_values(
        lower_circuit(circuit), np.zeros((2, 0)), x, z, 5, np.random.default_rng(0)
    )
    np.testing.assert_allclose(means, [[1, 1, 1]] * 2, atol=1e-12)
    np.testing.assert_allclose(errors, 0, atol=1e-12)


def test_single_precision_runs_and_agrees() -> None:
    circuit = random_noisy_circuit(4, seed=4)
    x, z = random_terms(4, 8, seed=4)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    double, errors = traj.trajectory_term_values(lowered, BINDINGS, x, z, 400, np.random.default_rng(1))
    single, _ = traj.trajectory_term_values(lowered, BINDINGS, x, z, 400, np.random.default_rng(1), dtype=np.complex64)
    # same uniforms: same branches except where a Kraus draw sits within float32 error of a boundary
    np.testing.assert_allclose(single, double, atol=max(1e-4, 6 * float(errors.max())))
    assert np.abs(single - double).max() < 1e-3


# -- samples ---------------------------------------------------------------------------------------------


def exact_probabilities(circuit: QuantumCircuit, binding: np.ndarray) -> np.ndarray:
    bound = circuit.assign_parameters(dict(zip(circuit.parameters, binding, strict=True)))
    return np.clip(np.real(np.diagonal(exact_density(bound))), 0, None)


def assert_fits(samples: np.ndarray, probabilities: np.ndarray) -> None:
    """Chi-square (bins with expected count >= 5, the rest pooled) p > 1e-4, and no impossible outcome."""
    shots = samples.shape[0]
    counts = np.bincount(samples, minlength=probabilities.shape[0])
    assert counts[probabilities < 1e-14].sum() == 0
    expected = probabilities * shots
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    wanted = np.append(expected[big], expected[~big].sum())
    if wanted[-1] < 5:
        observed, wanted = observed[:-1], wanted[:-1]
        wanted *= observed.sum() / wanted.sum()
    assert chisquare(observed, wanted).pvalue > 1e-4


@pytest.mark.parametrize(
    ("n", "mixtures_only", "group"),
    [(2, True, True), (3, False, True), (4, True, False), (5, True, True), (6, False, False)],
)
def test_samples_follow_the_density_matrix_diagonal(n: int, mixtures_only: bool, group: bool) -> None:
    circuit = random_noisy_circuit(n, seed=20 + n, mixtures_only=mixtures_only)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    shots = 6000
    samples = traj.trajectory_samples(lowered, BINDINGS, shots, np.random.default_rng(n), group=group)
    assert samples.shape == (3, shots) and samples.dtype == np.int64
    for row, binding in enumerate(BINDINGS):
        assert_fits(samples[row], exact_probabilities(circuit, binding))


def test_grouping_is_exact_and_the_shot_order_carries_no_grouping() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.append(instruction(depolarizing(0.5, 1)), [0])
    circuit.cx(0, 1)
    circuit.append(instruction(depolarizing(0.3, 2)), [0, 1])
    lowered = lower_circuit(circuit)
    shots = 20000
    grouped = traj.trajectory_samples(lowered, np.zeros((1, 0)), shots, np.random.default_rng(3))[0]
    single = traj.trajectory_samples(lowered, np.zeros((1, 0)), shots, np.random.default_rng(3), group=False)[0]
    probabilities = exact_probabilities(circuit, np.zeros(0))
    assert_fits(grouped, probabilities)
    assert_fits(single, probabilities)
    # in shot order, consecutive shots are independent: the (previous, next) pairs fit the product law
    pairs = grouped[:-1] * 4 + grouped[1:]
    assert_fits(pairs, np.outer(probabilities, probabilities).reshape(-1))


@pytest.mark.parametrize("mixtures_only", [True, False])
def test_one_channel_object_at_many_places(mixtures_only: bool) -> None:
    """A noise model puts the same channel object after every gate of a kind (stored once)."""
    flip = instruction(depolarizing(0.2, 2))
    damp = instruction(depolarizing(0.3, 1) if mixtures_only else amplitude_damping(0.3))
    circuit = QuantumCircuit(3)
    for q in range(3):
        circuit.ry(0.4 + q, q)
        circuit.append(damp, [q])
    for pair in ([0, 1], [2, 1], [0, 2]):
        circuit.cx(*pair)
        circuit.append(flip, pair)
        circuit.append(damp, [pair[1]])
    lowered = lower_circuit(circuit)
    x, z = random_terms(3, 8, seed=3)
    means, errors = traj.trajectory_term_values(lowered, np.zeros((1, 0)), x, z, 4000, np.random.default_rng(4))
    rho = exact_density(circuit)
    exact = np.array([pauli_value(rho, int(a), int(b)) for a, b in zip(x, z, strict=True)])
    assert (np.abs(means[0] - exact) <= 5 * errors[0] + 1e-9).all()
    samples = traj.trajectory_samples(lowered, np.zeros((1, 0)), 8000, np.random.default_rng(4))
    assert_fits(samples[0], exact_probabilities(circuit, np.zeros(0)))


def test_kraus_channels_are_never_grouped_and_stay_exact() -> None:
    circuit = QuantumCircuit(1)
    circuit.x(0)
    circuit.append(instruction(amplitude_damping(0.3)), [0])
    circuit.h(0)
    circuit.append(instruction(amplitude_damping(0.6)), [0])
    samples = traj.trajectory_samples(lower_circuit(circuit), np.zeros((1, 0)), 20000, np.random.default_rng(8))
    assert_fits(samples[0], exact_probabilities(circuit, np.zeros(0)))


def test_zero_shots_and_no_channels() -> None:
    circuit = QuantumCircuit(3)
    circuit.x(1)
    lowered = lower_circuit(circuit)
    assert traj.trajectory_samples(lowered, np.zeros((2, 0)), 0, np.random.default_rng(0)).shape == (2, 0)
    for group in (True, False):
        samples = traj.trajectory_samples(lowered, np.zeros((2, 0)), 7, np.random.default_rng(0), group=group)
        assert (samples == 2).all()


# -- determinism, wide path, cancellation ----------------------------------------------------------------


def _both(lowered: Any, values: np.ndarray, seed: int, count: int = 64) -> tuple[np.ndarray, ...]:
    x, z = random_terms(lowered.num_qubits, 5, seed=1)
    means, errors = traj.trajectory_term_values(lowered, values, x, z, count, np.random.default_rng(seed))
    grouped = traj.trajectory_samples(lowered, values, count, np.random.default_rng(seed))
    single = traj.trajectory_samples(lowered, values, count, np.random.default_rng(seed), group=False)
    return means, errors, grouped, single


def test_same_seed_same_result_whatever_the_threads_and_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    circuit = random_noisy_circuit(4, seed=7)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    first = _both(lowered, BINDINGS, 11)
    again = _both(lowered, BINDINGS, 11)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one_thread = _both(lowered, BINDINGS, 11)
    finally:
        numba.set_num_threads(threads)
    monkeypatch.setattr(traj, "_MAX_BATCH", 5)
    small_batches = _both(lowered, BINDINGS, 11)
    other_seed = _both(lowered, BINDINGS, 12)
    for a, b, c, d, e in zip(first, again, one_thread, small_batches, other_seed, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_allclose(a, d, rtol=0, atol=1e-12)  # sums by batch: rounding only
        assert not np.array_equal(a, e)


def test_wide_path_at_17_qubits_draws_what_the_small_path_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 17
    assert n >= simulate.WIDE_QUBITS
    circuit = QuantumCircuit(n)
    a = Parameter("a")
    circuit.h(0)
    circuit.ry(a, 16)
    circuit.append(instruction(depolarizing(0.3, 1)), [0])
    circuit.cx(0, 16)
    circuit.append(instruction(amplitude_damping(0.4)), [16])
    circuit.cx(16, 9)
    circuit.append(instruction(depolarizing(0.4, 2)), [9, 0])
    circuit.rx(0.7, 9)
    lowered = lower_circuit(circuit, ["a"])
    values = np.array([[0.4], [2.0]])
    wide = _both(lowered, values, 4)
    monkeypatch.setattr(simulate, "WIDE_QUBITS", n + 1)
    small = _both(lowered, values, 4)
    np.testing.assert_allclose(wide[0], small[0], atol=1e-9)
    np.testing.assert_allclose(wide[1], small[1], atol=1e-9)
    np.testing.assert_array_equal(wide[2], small[2])  # the same uniforms pick the same basis states
    np.testing.assert_array_equal(wide[3], small[3])
    # and against the exact value on the active qubits (0, 9, 16 -> 0, 1, 2 of a 3-qubit circuit)
    active = QuantumCircuit(3)
    for item in circuit.data:
        active.append(item.operation, [{0: 0, 9: 1, 16: 2}[circuit.find_bit(q).index] for q in item.qubits])
    x = np.array([0, 0, 1 | (1 << 16)], dtype=np.int64)
    z = np.array([1, (1 << 16) | (1 << 9), 0], dtype=np.int64)
    monkeypatch.setattr(simulate, "WIDE_QUBITS", n)
    means, errors = traj.trajectory_term_values(lowered, values, x, z, 300, np.random.default_rng(2))
    for row, value in enumerate(values):
        rho = exact_density(active.assign_parameters({active.parameters[0]: value[0]}))
        exact = [pauli_value(rho, 0, 1), pauli_value(rho, 0, 6), pauli_value(rho, 5, 0)]
        assert (np.abs(means[row] - exact) <= 5 * errors[row] + 1e-9).all()


class _CancelAfter:
    """Set after ``polls`` calls of is_set (the engine polls between batches)."""

    def __init__(self, polls: int) -> None:
        self.remaining = polls

    def is_set(self) -> bool:
        self.remaining -= 1
        return self.remaining < 0


@pytest.mark.parametrize("wide", [False, True])
def test_cancellation_between_batches(monkeypatch: pytest.MonkeyPatch, wide: bool) -> None:
    circuit = random_noisy_circuit(3, seed=1)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    monkeypatch.setattr(traj, "_MAX_BATCH", 4)
    if wide:
        monkeypatch.setattr(simulate, "WIDE_QUBITS", 3)
    x, z = random_terms(3, 3, seed=0)
    calls = [
        lambda cancel: traj.trajectory_term_values(
            lowered, BINDINGS, x, z, 50, np.random.default_rng(0), cancel=cancel
        ),
        lambda cancel: traj.trajectory_samples(lowered, BINDINGS, 50, np.random.default_rng(0), cancel=cancel),
    ]
    for call in calls:
        with pytest.raises(simulate.EngineCancelled):
            call(_CancelAfter(0))
        with pytest.raises(simulate.EngineCancelled):
            call(_CancelAfter(3))  # set mid-way: later batches do not run
        call(_CancelAfter(10**9))


def test_bad_arguments() -> None:
    circuit = random_noisy_circuit(2, seed=1)
    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
    zero = np.zeros(1, dtype=np.int64)
    with pytest.raises(ValueError, match="trajectories"):
        traj.trajectory_term_values(lowered, BINDINGS, zero, zero, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="values"):
        traj.trajectory_term_values(lowered, np.zeros((2, 1)), zero, zero, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shots"):
        traj.trajectory_samples(lowered, BINDINGS, -1, np.random.default_rng(0))


@pytest.mark.slow
def test_warmup_compiles_what_the_trajectory_paths_run() -> None:
    """After warmup() for both precisions, the small and wide trajectory paths (term values, grouped
    and ungrouped samples, mixtures and Kraus channels) compile no kernel signature more."""
    code = """
        import json, sys
        import numpy as np
        from numba.core.dispatcher import Dispatcher
        from aqrt.engine import lower_circuit, simulate, warmup
        from aqrt.engine import trajectories as traj
        from aqrt.engine.kernels import apply, apply_par, bits, interpreter, reductions
        from aqrt.engine.kernels import trajectories as kernels
        sys.path.insert(0, "tests/engine")
        from test_trajectories import BINDINGS, random_noisy_circuit, random_terms

        for dtype in ("complex64", "complex128"):
            warmup(dtype)
        modules = (kernels, interpreter, apply, apply_par, reductions, bits)
        every = [v for m in modules for v in vars(m).values() if isinstance(v, Dispatcher)]
        before = {id(k): len(k.signatures) for k in every}
        x, z = random_terms(4, 5, seed=1)
        for wide_from in (simulate.WIDE_QUBITS, 3):
            simulate.WIDE_QUBITS = wide_from
            for dtype in (np.complex64, np.complex128):
                for mixtures_only in (True, False):
                    circuit = random_noisy_circuit(4, 3, mixtures_only=mixtures_only)
                    lowered = lower_circuit(circuit, [p.name for p in circuit.parameters])
                    rng = np.random.default_rng(0)
                    traj.trajectory_term_values(lowered, BINDINGS, x, z, 5, rng, dtype=dtype)
                    traj.trajectory_samples(lowered, BINDINGS, 5, rng, dtype=dtype)
                    traj.trajectory_samples(lowered, BINDINGS, 5, rng, dtype=dtype, group=False)
        print(json.dumps(sorted(k.__name__ for k in every if len(k.signatures) != before[id(k)])))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# -- device-like channels: a Kraus channel that is mostly the identity -------------------------------------


def device_channel(k: int, depolarizing: float, time: float) -> Channel:
    """A device gate's error as a noise model gives it: depolarizing, then thermal relaxation of
    every qubit for the gate's duration (T1 = 1, T2 = 0.8): one Kraus channel, not a mixture."""
    relaxation = thermal_relaxation_error(1.0, 0.8, time)
    operators = [np.eye(1)]
    for _ in range(k):
        operators = [np.kron(r, o) for r in relaxation.kraus for o in operators]
    channel = depolarizing_error(depolarizing, k).then(Channel.from_kraus(operators))
    assert not channel.is_unitary_mixture and 0 < channel.identity_split[0] < 1
    return channel


def device_noisy_circuit(n: int, seed: int, scale: float = 1.0) -> QuantumCircuit:
    """Layers of rotations and CX, each gate followed by its device-like error (one object per kind)."""
    rng = np.random.default_rng(seed)
    a = Parameter("a")
    single = instruction(device_channel(1, 0.03 * scale, 0.02 * scale))
    double = instruction(device_channel(2, 0.08 * scale, 0.05 * scale))
    circuit = QuantumCircuit(n)
    for layer in range(3):
        for q in range(n):
            circuit.ry(a * (q + 1) if layer == 1 else float(rng.uniform(0, np.pi)), q)
            circuit.append(single, [q])
        for q in range(layer % 2, n - 1, 2):
            circuit.cx(q, q + 1)
            circuit.append(double, [q, q + 1])
    return circuit


def test_device_channel_table_puts_the_identity_part_first() -> None:
    device = device_channel(2, 0.08, 0.05)
    weight, rest = device.identity_split
    assert rest is not None
    circuit = QuantumCircuit(2)
    circuit.append(instruction(device), [0, 1])
    circuit.append(instruction(amplitude_damping(0.3)), [1])
    noisy = traj._prepare(lower_circuit(circuit), np.zeros((1, 0)), np.complex128)
    _, _, mixture, first, counts, kinds, _, cumulative, _ = noisy.channels
    assert mixture.tolist() == [0, 0]
    assert kinds[first[0]] == kernels.IDENTITY and cumulative[first[0]] == weight
    assert counts[0] == 1 + len(rest.kraus)
    assert kinds[first[1]] != kernels.IDENTITY  # amplitude damping has no identity part
    np.testing.assert_array_equal(noisy.identity_weights, [weight, 0.0])
    # the channel table's operators are the identity part and the rest: together the channel
    superoperator = weight * np.eye(16) + (1 - weight) * rest.superoperator()
    np.testing.assert_allclose(superoperator, device.superoperator(), atol=1e-9)


@pytest.mark.parametrize("n", [3, 5])
def test_device_like_channels_agree_with_the_density_matrix(n: int) -> None:
    circuit = device_noisy_circuit(n, seed=30 + n)
    lowered = lower_circuit(circuit, ["a"])
    bindings = BINDINGS[:, :1]
    x, z = random_terms(n, 8, seed=n)
    means, errors = traj.trajectory_term_values(lowered, bindings, x, z, 3000, np.random.default_rng(n))
    exact = np.empty_like(means)
    noiseless = np.empty_like(means)
    for row, value in enumerate(bindings):
        for out, which in ((exact, circuit), (noiseless, without_channels(circuit))):
            rho = exact_density(which.assign_parameters({which.parameters[0]: value[0]}))
            out[row] = [pauli_value(rho, int(a), int(b)) for a, b in zip(x, z, strict=True)]
    assert (np.abs(means - exact) <= 5 * errors + 1e-9).all(), (np.abs(means - exact) / errors).max()
    assert (np.abs(noiseless - exact) > 10 * errors + 0.02).any()  # the noise matters
    for group in (True, False):
        samples = traj.trajectory_samples(lowered, bindings, 6000, np.random.default_rng(n), group=group)
        for row, value in enumerate(bindings):
            assert_fits(samples[row], exact_probabilities(circuit, value))


def _counting(monkeypatch: pytest.MonkeyPatch, resumed: list[int] | None = None) -> list[int]:
    """Record how many trajectories each kernel call simulates (and how many start from a prefix)."""
    simulated: list[int] = []
    for name in ("trajectory_pauli_values", "trajectory_samples"):
        kernel = getattr(kernels, name)

        def counted(*args: Any, kernel: Any = kernel) -> np.ndarray:
            simulated.append(args[7].shape[0])
            if resumed is not None:
                resumed.append(int((args[8][:, 0] >= 0).sum()))
            return kernel(*args)

        monkeypatch.setattr(kernels, name, counted)
    return simulated


def test_trajectories_that_draw_the_same_branches_share_a_simulation_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    circuit = device_noisy_circuit(4, seed=3, scale=0.1)
    circuit.append(instruction(depolarizing(0.1, 2)), [1, 3])  # a mixture's branches split the shared ones
    lowered = lower_circuit(circuit, ["a"])
    bindings = BINDINGS[:, :1]
    x, z = random_terms(4, 6, seed=4)
    trajectories = 2000
    resumed: list[int] = []
    simulated = _counting(monkeypatch, resumed)
    means, errors = traj.trajectory_term_values(lowered, bindings, x, z, trajectories, np.random.default_rng(6))
    shared_simulations = sum(simulated)
    assert shared_simulations < 0.4 * trajectories * bindings.shape[0]
    assert sum(resumed) > 0.5 * shared_simulations  # most of the rest start where their first error acts

    def no_sharing(noisy: Any, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(uniforms.shape[0], dtype=np.int64)
        return rows, rows

    def from_the_start(noisy: Any, program: Any, bounds: Any, uniforms: np.ndarray, binding_of: Any) -> Any:
        resume = np.zeros((uniforms.shape[0], 2), dtype=np.int64)
        resume[:, 0] = -1
        return resume, np.zeros((1, 1), dtype=program.dtype)

    monkeypatch.setattr(traj, "_share", no_sharing)
    monkeypatch.setattr(traj, "_resumes", from_the_start)
    simulated.clear()
    alone_means, alone_errors = traj.trajectory_term_values(
        lowered, bindings, x, z, trajectories, np.random.default_rng(6)
    )
    assert sum(simulated) == trajectories * bindings.shape[0]
    np.testing.assert_array_equal(means, alone_means)  # a shared state is the state each would have had
    np.testing.assert_array_equal(errors, alone_errors)
    monkeypatch.undo()

    simulated = _counting(monkeypatch)
    shots = 20000
    samples = traj.trajectory_samples(lowered, bindings, shots, np.random.default_rng(7))
    assert sum(simulated) < 0.4 * shots * bindings.shape[0]
    for row, value in enumerate(bindings):
        assert_fits(samples[row], exact_probabilities(circuit, value))


def test_device_like_channels_same_seed_same_result_whatever_the_threads() -> None:
    lowered = lower_circuit(device_noisy_circuit(4, seed=9), ["a"])
    values = BINDINGS[:, :1]
    first = _both(lowered, values, 3)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one_thread = _both(lowered, values, 3)
    finally:
        numba.set_num_threads(threads)
    other_seed = _both(lowered, values, 4)
    for a, b, c in zip(first, one_thread, other_seed, strict=True):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_wide_path_with_device_like_channels_draws_what_the_small_path_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = 17
    circuit = QuantumCircuit(n)
    single, double = instruction(device_channel(1, 0.2, 0.1)), instruction(device_channel(2, 0.3, 0.2))
    circuit.h(0)
    circuit.append(single, [0])
    circuit.cx(0, 16)
    circuit.append(double, [0, 16])
    circuit.ry(0.9, 9)
    circuit.append(single, [9])
    circuit.cx(16, 9)
    circuit.append(double, [16, 9])
    lowered = lower_circuit(circuit)
    values = np.zeros((1, 0))
    wide = _both(lowered, values, 5, count=24)
    assert len(traj._prepare(lowered, values, np.complex128).wide_plan((1,))) == 2  # cut only where a rest is drawn
    monkeypatch.setattr(simulate, "WIDE_QUBITS", n + 1)
    small = _both(lowered, values, 5, count=24)
    np.testing.assert_allclose(wide[0], small[0], atol=1e-9)
    np.testing.assert_allclose(wide[1], small[1], atol=1e-9)
    np.testing.assert_array_equal(wide[2], small[2])
    np.testing.assert_array_equal(wide[3], small[3])
