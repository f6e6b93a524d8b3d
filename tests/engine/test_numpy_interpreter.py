"""The numpy interpreter (a process's first small jobs, before numba loads) computes what the
numba kernels compute: the same amplitudes to rounding for every op kind and width, Qiskit's
``Statevector`` for lowered circuits, and the serial reductions' term values and probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import Operator, Pauli, Statevector, random_unitary

from aqrt.engine import lower_circuit, numpy_interpreter, simulate, warmup
from aqrt.engine.kernels.interpreter import run_program
from aqrt.engine.kernels.reductions import pauli_values
from aqrt.engine.ops import CTRL, CX, DENSE, DIAG, PERM, SEL, BoundProgram, OpArrays

from .support import random_op

DTYPES = [np.complex128, np.complex64]
# complex128: a few roundings per op; complex64: single precision over tens of ops
TOLERANCE = {np.complex128: 1e-12, np.complex64: 2e-5}
OP_CASES = [
    (DENSE, 1),
    (DENSE, 2),
    (DENSE, 3),
    (PERM, 1),
    (PERM, 2),
    (PERM, 3),
    (DIAG, 1),
    (DIAG, 2),
    (DIAG, 3),
    (CTRL, 1),
    (CTRL, 2),
    (CTRL, 3),
    (CX, 2),
]


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    for dtype in ("complex128", "complex64"):
        warmup(dtype, ["small", "ops"])


def _program(n: int, ops: list[tuple[int, np.ndarray, np.ndarray, list]], dtype: type) -> BoundProgram:
    """A bound program of ``ops``; odd ops read their entries from the binding's buffer."""
    widest = max(qubits.shape[0] for _, qubits, _, _ in ops)
    qubit_rows = np.zeros((len(ops), widest), dtype=np.int64)
    sources = np.zeros(len(ops), dtype=np.int64)
    offsets = np.zeros(len(ops), dtype=np.int64)
    static: list[complex] = []
    binding: list[complex] = []
    for j, (_, qubits, entries, _) in enumerate(ops):
        qubit_rows[j, : qubits.shape[0]] = qubits
        sources[j] = j % 2
        buffer = binding if j % 2 else static
        offsets[j] = len(buffer)
        buffer.extend(entries.tolist())
    arrays = OpArrays(
        kinds=np.array([kind for kind, _, _, _ in ops], dtype=np.int64),
        qubits=qubit_rows,
        widths=np.array([qubits.shape[0] for _, qubits, _, _ in ops], dtype=np.int64),
        aux=np.array([aux for _, _, _, aux in ops], dtype=np.int64).reshape(len(ops), 2),
        sources=sources,
        offsets=offsets,
    )
    return BoundProgram(
        num_qubits=n,
        ops=arrays,
        static_buffer=np.array([*static, 0], dtype=dtype),
        binding_buffers=np.array([[*binding, 0]], dtype=dtype),
    )


def _random_state(n: int, rng: np.random.Generator, dtype: type) -> np.ndarray:
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    return np.ascontiguousarray(state / np.linalg.norm(state), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_op_kind_gives_the_numba_kernels_amplitudes(dtype: type) -> None:
    """Each op kind and width alone, then random programs of all of them, on states below and
    above the SIMD kernels' threshold: numba's run_program's amplitudes, to rounding."""
    rng = np.random.default_rng(5)
    for n in (3, 5, 8):
        programs = [[random_op(kind, width, n, rng)] for kind, width in OP_CASES]
        programs += [[random_op(*OP_CASES[i], n, rng) for i in rng.integers(len(OP_CASES), size=30)] for _ in range(3)]
        for ops in programs:
            program = _program(n, ops, dtype)
            state = _random_state(n, rng, dtype)
            by_numpy, by_numba = state.copy(), state.copy()
            numpy_interpreter.run_program(by_numpy, program)
            run_program(by_numba, program.ops.as_tuple(), program.static_buffer, program.binding_buffers[0])
            assert by_numpy.dtype == dtype
            scale = float(np.abs(by_numba).max())
            np.testing.assert_allclose(
                by_numpy,
                by_numba,
                rtol=0,
                atol=TOLERANCE[dtype] * scale,
                err_msg=f"n={n} kinds={program.ops.kinds.tolist()}",
            )


def _random_circuit(n: int, depth: int, rng: np.random.Generator) -> QuantumCircuit:
    """Gates whose lowering covers every op kind: 1-qubit rotations and Paulis, CX, CZ and RZZ
    (diagonal), controlled rotations and CCX (CTRL), SWAP (PERM), RXX and 2-3 qubit unitaries
    (DENSE)."""
    circuit = QuantumCircuit(n)
    for _ in range(depth):
        choice = int(rng.integers(10))
        qubits = [int(q) for q in rng.choice(n, size=3, replace=False)]
        angle = float(rng.uniform(0, 2 * np.pi))
        if choice == 0:
            circuit.h(qubits[0])
            circuit.ry(angle, qubits[1])
        elif choice == 1:
            circuit.cx(qubits[0], qubits[1])
        elif choice == 2:
            circuit.cz(qubits[0], qubits[1])
            circuit.rzz(angle, qubits[1], qubits[2])
        elif choice == 3:
            circuit.crx(angle, qubits[0], qubits[1])
        elif choice == 4:
            circuit.ccx(*qubits)
        elif choice == 5:
            circuit.swap(qubits[0], qubits[1])
        elif choice == 6:
            circuit.rxx(angle, qubits[0], qubits[1])
        elif choice == 7:
            circuit.append(UnitaryGate(random_unitary(8, seed=int(rng.integers(1 << 30)))), qubits)
        elif choice == 8:
            circuit.x(qubits[0])
            circuit.y(qubits[1])
            circuit.t(qubits[2])
        else:
            circuit.rz(angle, qubits[0])
            circuit.sx(qubits[1])
    return circuit


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_lowered_circuits_give_qiskits_statevector(dtype: type) -> None:
    rng = np.random.default_rng(11)
    kinds: set[int] = set()
    for n in (3, 4, 6):
        for _ in range(4):
            circuit = _random_circuit(n, 25, rng)
            program = lower_circuit(circuit).bind(np.zeros((1, 0)), dtype=dtype)
            kinds |= set(program.ops.kinds.tolist())
            state = numpy_interpreter.final_state(program)
            assert state.dtype == dtype
            np.testing.assert_allclose(state, Statevector(circuit).data, rtol=0, atol=TOLERANCE[dtype])
    assert kinds == {CX, DIAG, CTRL, DENSE, PERM, SEL}  # every op kind was run


def _term_masks(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    paulis = [Pauli(label) for label in labels]
    x = np.array([int(np.dot(p.x, 1 << np.arange(p.num_qubits))) for p in paulis], dtype=np.int64)
    z = np.array([int(np.dot(p.z, 1 << np.arange(p.num_qubits))) for p in paulis], dtype=np.int64)
    return x, z


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_term_values_and_probabilities_are_the_serial_paths(dtype: type) -> None:
    """Term values (every x/z mix, repeated x masks) are numba's run_serial's, their imaginary
    parts exact zeros where numba's are (the same pair formula); probabilities are
    serial_probabilities'; every binding of a parameterised circuit."""
    rng = np.random.default_rng(3)
    labels = ["IIII", "ZZII", "IZIZ", "XXII", "XYZI", "YYYY", "IXIX", "ZIXY", "XIII", "IIIY", "ZZZZ"]
    x, z = _term_masks(labels)
    circuit = _random_circuit(4, 30, rng)
    from qiskit.circuit import Parameter

    theta = Parameter("theta")
    circuit.ry(theta, 2)
    circuit.cx(2, 3)
    program = lower_circuit(circuit, ["theta"]).bind(np.linspace(0, 3, 5).reshape(5, 1), dtype=dtype)
    tolerance = TOLERANCE[dtype]
    by_numpy = numpy_interpreter.term_values(program, x, z)
    by_numba = simulate.run_serial(program, x, z)
    assert by_numpy.dtype == np.complex128 and by_numpy.shape == (5, len(labels))
    np.testing.assert_allclose(by_numpy, by_numba, rtol=0, atol=tolerance)
    np.testing.assert_array_equal(by_numpy.imag == 0, by_numba.imag == 0)
    probabilities = numpy_interpreter.probabilities(program, 1, 4)
    assert probabilities.dtype == np.float64 and probabilities.shape == (3, 16)
    np.testing.assert_allclose(probabilities, simulate.serial_probabilities(program, 1, 4), rtol=0, atol=tolerance)
    without_y = [t for t, label in enumerate(labels) if "Y" not in label]  # a term's value leaves out Y's phase
    for b in range(5):  # and Qiskit's values, from the state itself
        bound = circuit.assign_parameters([float(np.linspace(0, 3, 5)[b])])
        expected = [Statevector(bound).expectation_value(Pauli(labels[t])) for t in without_y]
        np.testing.assert_allclose(by_numpy[b, without_y], expected, rtol=0, atol=10 * tolerance)


def test_pauli_values_of_a_state_are_the_kernels() -> None:
    """On random 9-qubit states and many terms (shared x masks included): numba's pauli_values."""
    rng = np.random.default_rng(21)
    for dtype in DTYPES:
        state = _random_state(9, rng, dtype)
        x = rng.integers(0, 1 << 9, size=40).astype(np.int64)
        x[::4] = 0
        x[1::5] = x[2]
        z = rng.integers(0, 1 << 9, size=40).astype(np.int64)
        np.testing.assert_allclose(
            numpy_interpreter._pauli_values(state, x, z), pauli_values(state, x, z), rtol=0, atol=TOLERANCE[dtype]
        )


def test_a_program_wider_than_the_interpreter_or_a_bad_state_is_refused() -> None:
    wide = QuantumCircuit(numpy_interpreter.MAX_QUBITS + 1)
    wide.h(0)
    program = lower_circuit(wide).bind(np.zeros((1, 0)))
    with pytest.raises(ValueError, match=f"up to {numpy_interpreter.MAX_QUBITS} qubits"):
        numpy_interpreter.final_state(program)
    bell = lower_circuit(QuantumCircuit(2)).bind(np.zeros((1, 0)))
    for state in (np.zeros(8, dtype=np.complex128), np.zeros(8, dtype=np.complex128)[::2]):
        with pytest.raises(ValueError, match="C-contiguous array of shape"):
            numpy_interpreter.run_program(state, bell)


def test_a_dense_op_follows_qiskits_qubit_order() -> None:
    """A 3-qubit unitary on qubits given out of order: bit j of its index is qubits[j]."""
    matrix = random_unitary(8, seed=4)
    circuit = QuantumCircuit(5)
    circuit.h(range(5))
    circuit.append(UnitaryGate(matrix), [4, 0, 2])
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    expected = Statevector(circuit).data
    np.testing.assert_allclose(numpy_interpreter.final_state(program), expected, rtol=0, atol=1e-12)
    assert np.allclose(Operator(circuit).data @ np.eye(32)[0], expected)
