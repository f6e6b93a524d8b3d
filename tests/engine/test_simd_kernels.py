"""The explicit-SIMD kernels (``aqrt.engine.kernels.simd``) and the serial kernels that route to
them, against Qiskit's ``Statevector`` in both precisions: 1-qubit gates and CX on every qubit
and pair (matrix layout and precision varied), 2-qubit dense, permutation and diagonal ops on
every pair of low qubits, the fallbacks (states under 32 amplitudes, non-contiguous states), and
random circuits with gates on qubits 0..5 and the highest qubit through the serial interpreter
and the cache-blocked wide path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit.circuit import QuantumCircuit
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import Operator, Statevector, random_unitary

from aqrt.engine import lower_circuit, simulate
from aqrt.engine.kernels import apply, simd

TOLERANCE = {np.complex128: 1e-12, np.complex64: 2e-6}
DTYPES = [np.complex128, np.complex64]


def _state(n: int, rng: np.random.Generator, dtype: type) -> np.ndarray:
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    return np.ascontiguousarray(state / np.linalg.norm(state), dtype=dtype)


def _evolve(state: np.ndarray, qubits: list[int], matrix: np.ndarray) -> np.ndarray:
    return Statevector(state.astype(np.complex128)).evolve(Operator(matrix), qargs=list(qubits)).data


def _check(got: np.ndarray, expected: np.ndarray, dtype: type) -> None:
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 7])
def test_one_qubit_on_every_qubit(dtype: type, n: int) -> None:
    rng = np.random.default_rng(1)
    for q, layout in itertools.product(range(n), ["C", "F", "transposed", "complex128", "complex64"]):
        m = random_unitary(2, seed=10 * q + n).data
        given = {
            "C": np.ascontiguousarray(m, dtype=dtype),
            "F": np.asfortranarray(m, dtype=dtype),
            "transposed": np.ascontiguousarray(m.T, dtype=dtype).T,
            "complex128": m.astype(np.complex128),
            "complex64": m.astype(np.complex64),
        }[layout]
        state = _state(n, rng, dtype)
        expected = _evolve(state, [q], given)
        for kernel in (simd.apply_1q_simd, apply.apply_1q):
            got = state.copy()
            kernel(got, q, given)
            _check(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_two_qubit_ops_on_every_low_pair(dtype: type) -> None:
    rng = np.random.default_rng(2)
    n = 5
    for a, b in itertools.permutations(range(4), 2):
        qubits = np.array([a, b], dtype=np.int64)
        state = _state(n, rng, dtype)
        dense = np.ascontiguousarray(random_unitary(4, seed=a * 4 + b).data, dtype=dtype)
        permutation = np.zeros((4, 4), dtype=dtype)
        permutation[rng.permutation(4), np.arange(4)] = np.exp(1j * rng.uniform(-np.pi, np.pi, size=4))
        diagonal = np.exp(1j * rng.uniform(-np.pi, np.pi, size=4)).astype(dtype)
        cases = [
            (apply.apply_2q, (a, b, dense), dense),
            (apply.apply_dense, (qubits, dense), dense),
            (simd.apply_dense_low, (qubits, dense), dense),
            (apply.apply_perm, (qubits, permutation), permutation),
            (apply.apply_diag, (qubits, diagonal), np.diag(diagonal)),
            (simd.apply_diag_low, (qubits, diagonal), np.diag(diagonal)),
        ]
        for kernel, args, matrix in cases:
            got = state.copy()
            kernel(got, *args)
            _check(got, _evolve(state, [a, b], matrix), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cx_on_every_pair(dtype: type) -> None:
    """Both low, control low and target high, both high, control high and target low."""
    rng = np.random.default_rng(6)
    n = 7
    cx = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]])  # control = first qubit
    for control, target in itertools.permutations(range(n), 2):
        state = _state(n, rng, dtype)
        expected = _evolve(state, [control, target], cx)
        for kernel in (simd.apply_cx_simd, apply.apply_cx):
            got = state.copy()
            kernel(got, control, target)
            _check(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wider_diagonals_on_low_qubits(dtype: type) -> None:
    rng = np.random.default_rng(3)
    for qubits in ([2, 0, 3], [3, 1, 0, 2], [1]):
        state = _state(6, rng, dtype)
        diagonal = np.exp(1j * rng.uniform(-np.pi, np.pi, size=1 << len(qubits))).astype(dtype)
        got = state.copy()
        apply.apply_diag(got, np.array(qubits, dtype=np.int64), diagonal)
        _check(got, _evolve(state, qubits, np.diag(diagonal)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_and_strided_states_take_the_loop_kernels(dtype: type) -> None:
    """Under 32 amplitudes, or a non-contiguous state, the serial kernels keep their own loops."""
    rng = np.random.default_rng(4)
    m = np.ascontiguousarray(random_unitary(2, seed=4).data, dtype=dtype)
    for n in (1, 2, 3, 4):
        state = _state(n, rng, dtype)
        got = state.copy()
        apply.apply_1q(got, n - 1, m)
        _check(got, _evolve(state, [n - 1], m), dtype)
    backing = _state(7, rng, dtype)
    strided = backing[::2]  # 64 amplitudes, every other one of the backing array
    expected = _evolve(strided.copy(), [1], m)
    apply.apply_1q(strided, 1, m)
    _check(np.ascontiguousarray(strided), expected, dtype)
    expected = _evolve(strided.copy(), [0, 2], np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]))
    apply.apply_cx(strided, 0, 2)
    _check(np.ascontiguousarray(strided), expected, dtype)
    expected = _evolve(strided.copy(), [5], m)
    apply.apply_1q(strided, 5, m)
    _check(np.ascontiguousarray(strided), expected, dtype)


def _random_circuit(n: int, depth: int, seed: int) -> QuantumCircuit:
    """Gates on qubits 0..5 and the highest qubit: 1-qubit rotations, cx/cz/swap/rzz pairs and
    random 2-qubit unitaries, so every low kernel and its neighbours at qubits 4, 5 and n-1 run."""
    rng = np.random.default_rng(seed)
    qubits = sorted({0, 1, 2, 3, 4, 5, n - 1} & set(range(n)))
    circuit = QuantumCircuit(n)
    for layer in range(depth):
        for q in qubits:
            circuit.u(*rng.uniform(-np.pi, np.pi, size=3), q)
        a, b = (int(q) for q in rng.choice(qubits, size=2, replace=False))
        match layer % 5:
            case 0:
                circuit.cx(a, b)
            case 1:
                circuit.cz(a, b)
            case 2:
                circuit.swap(a, b)
            case 3:
                circuit.rzz(rng.uniform(-np.pi, np.pi), a, b)
            case _:
                circuit.append(UnitaryGate(random_unitary(4, seed=seed + layer)), [a, b])
        circuit.t(qubits[layer % len(qubits)])
    return circuit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "parallel"), [(6, False), (9, False), (9, True), (17, True)])
def test_random_circuits_against_statevector(dtype: type, n: int, parallel: bool) -> None:
    """Serial interpreter (small states) and the cache-blocked wide path (``parallel=True``;
    17 qubits is the production wide width), with 1- and 2-qubit fusion."""
    tolerance = 1e-10 if dtype == np.complex128 else 1e-5
    for seed, width in [(5, 1), (6, 2)]:
        circuit = _random_circuit(n, depth=12, seed=seed)
        expected = Statevector(circuit).data
        program = lower_circuit(circuit).bind(np.zeros((1, 0)), max_fused_qubits=width, dtype=dtype)
        got = simulate.final_state(program, parallel=parallel)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
