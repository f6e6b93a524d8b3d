"""Lane states (:mod:`aqrt.engine.kernels.lanes`): several bindings' small states side by side.

``run_lanes`` must give each lane what the per-state interpreter gives that lane's binding, for
every op kind a basic program holds (1-qubit dense and permutation ops, selects, CX, diagonals
on 1-3 qubits, multi-controlled 1-qubit gates), in both precisions; an op's real rows must run
as real arithmetic with the complex update's results; ``lane_term`` must give each lane's
signed sum as the definition in :mod:`aqrt.engine.kernels.reductions` says.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from aqrt.engine import lower_circuit, simulate, warmup
from aqrt.engine.kernels.interpreter import run_basic_program
from aqrt.engine.kernels.lanes import LANES, _lane_pairs, _lane_select, _real_rows, lane_term, run_lanes
from aqrt.engine.ops import CTRL, CX, DENSE, DIAG, SEL

DTYPES = [np.complex128, np.complex64]
TOLERANCE = {np.complex128: 1e-12, np.complex64: 2e-5}


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    for dtype in DTYPES:
        warmup(np.dtype(dtype).name, tiers=("small", "sweep"))


def _basic_circuit(n: int, depth: int, rng: np.random.Generator) -> QuantumCircuit:
    """Parameterised rotations and every basic op kind, on random qubits."""
    theta = ParameterVector("t", depth)
    circuit = QuantumCircuit(n)
    for k in range(depth):
        q = [int(v) for v in rng.choice(n, size=3, replace=False)]
        choice = k % 8
        if choice == 0:
            circuit.ry(theta[k], q[0])
            circuit.rz(0.3 * theta[k], q[0])
        elif choice == 1:
            circuit.cx(q[0], q[1])  # a select with the rotation before it, or a CX
        elif choice == 2:
            circuit.rzz(theta[k], q[0], q[1])  # a 2-qubit diagonal
        elif choice == 3:
            circuit.ccx(q[0], q[1], q[2])  # multi-controlled 1-qubit (CTRL)
        elif choice == 4:
            circuit.x(q[0])  # a 1-qubit permutation
        elif choice == 5:
            circuit.rx(theta[k], q[1])
            circuit.cz(q[0], q[1])
        elif choice == 6:
            circuit.append(_three_qubit_diagonal(rng), q)
        else:
            circuit.u(theta[k], 0.5, -0.25, q[2])
    return circuit


def _three_qubit_diagonal(rng: np.random.Generator) -> object:
    from qiskit.circuit.library import DiagonalGate

    return DiagonalGate(list(np.exp(1j * rng.uniform(0, 2 * np.pi, 8))))


@pytest.mark.parametrize("from_zero", [True, False], ids=["from-zero", "from-a-state"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", [3, 5, 8])
def test_run_lanes_gives_each_lane_its_bindings_state(n: int, dtype: type, from_zero: bool) -> None:
    """From |0...0> only the rows an op can reach so far are run (live rows); from any other
    state, every row."""
    rng = np.random.default_rng(n)
    circuit = _basic_circuit(n, 40, rng)
    values = rng.uniform(0, 2 * np.pi, (LANES, circuit.num_parameters))
    program = lower_circuit(circuit).bind(values, dtype=dtype)
    assert simulate.is_basic(program.ops)
    assert {SEL, CX, DIAG, CTRL, DENSE} <= set(program.ops.kinds.tolist())
    real = np.dtype(dtype).type(0).real.dtype
    buffers = program.binding_buffers
    rows_re = np.ascontiguousarray(buffers.real.T, dtype=real)
    rows_im = np.ascontiguousarray(buffers.imag.T, dtype=real)
    start = np.zeros((1 << n, LANES), dtype=np.complex128)
    if from_zero:
        start[0] = 1.0
    else:
        start = rng.normal(size=start.shape) + 1j * rng.normal(size=start.shape)
        start /= np.linalg.norm(start, axis=0)
    re = np.ascontiguousarray(start.real, dtype=real)
    im = np.ascontiguousarray(start.imag, dtype=real)
    scratch = np.empty((8, LANES), dtype=real), np.empty((8, LANES), dtype=real)
    live_rows = 1 if from_zero else 1 << n
    run_lanes(re, im, program.ops.as_tuple(), program.static_buffer, rows_re, rows_im, *scratch, live_rows)
    for lane in range(LANES):
        state = start[:, lane].astype(dtype)
        run_basic_program(state, program.ops.as_tuple(), program.static_buffer, buffers[lane])
        np.testing.assert_allclose(re[:, lane] + 1j * im[:, lane], state, rtol=0, atol=TOLERANCE[dtype])


@njit
def _pairs(re, im, cr, ci, target, mask, value, real_rows):  # type: ignore[no-untyped-def]
    _lane_pairs(re, im, cr, ci, target, mask, value, real_rows)  # intrinsics: jitted callers only


@njit
def _select(re, im, cr, ci, target, control, real_rows):  # type: ignore[no-untyped-def]
    _lane_select(re, im, cr, ci, target, control, real_rows)


@njit
def _found_real_rows(ci, count):  # type: ignore[no-untyped-def]
    return _real_rows(ci, count)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_real_rows_run_as_real_arithmetic_with_the_complex_updates_results(dtype: type) -> None:
    """A row of an op's 2x2 whose imaginary parts are zero in every lane is found (run_lanes'
    test) and updated without them, for 1-qubit, controlled and select ops: bit for bit what the
    complex update gives (it adds their exact zero products); one complex lane, even a tiny
    imaginary part, keeps the row complex."""
    rng = np.random.default_rng(11)
    real = np.dtype(dtype).type(0).real.dtype
    n = 5
    start_re = rng.normal(size=(1 << n, LANES)).astype(real)
    start_im = rng.normal(size=(1 << n, LANES)).astype(real)
    for real_rows in range(16):  # bit r: coefficient rows 2r, 2r + 1 (a select's 2x2s' rows)
        cr = rng.normal(size=(8, LANES)).astype(real)
        ci = rng.normal(size=(8, LANES)).astype(real)
        for r in range(4):
            if real_rows >> r & 1:
                ci[2 * r : 2 * r + 2] = -0.0 if r == 1 else 0.0
        assert _found_real_rows(ci, 8) == real_rows
        assert _found_real_rows(ci, 4) == real_rows & 3
        runs = [
            lambda re, im, flags: _pairs(re, im, cr, ci, 2, 0, 0, flags & 3),
            lambda re, im, flags: _pairs(re, im, cr, ci, 0, 0b10010, 0b00010, flags & 3),  # controlled
            lambda re, im, flags: _select(re, im, cr, ci, 3, 1, flags),
            lambda re, im, flags: _select(re, im, cr, ci, 1, 4, flags),
        ]
        for run in runs:
            complex_re, complex_im = start_re.copy(), start_im.copy()
            run(complex_re, complex_im, 0)
            real_re, real_im = start_re.copy(), start_im.copy()
            run(real_re, real_im, real_rows)
            np.testing.assert_array_equal(real_re, complex_re)
            np.testing.assert_array_equal(real_im, complex_im)
            assert not np.array_equal(real_re, start_re)
    ci = np.zeros((8, LANES), dtype=real)
    ci[1, LANES - 1] = np.finfo(real).tiny
    ci[6, 0] = -1.0
    assert _found_real_rows(ci, 8) == 0b0110


@njit
def _lane_term(re: np.ndarray, im: np.ndarray, x: int, z: int, odd: int, out: np.ndarray) -> None:
    lane_term(re, im, x, z, odd, out)  # an intrinsic: jitted callers only


def _signed_sum(state: np.ndarray, x: int, z: int) -> complex:
    index = np.arange(state.shape[0])
    signs = 1.0 - 2.0 * (np.bitwise_count(index & z) & 1)
    return complex(np.sum(signs * np.conj(state[index ^ x]) * state))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_lane_term_is_each_lanes_signed_sum(dtype: type) -> None:
    rng = np.random.default_rng(3)
    n = 6
    real = np.dtype(dtype).type(0).real.dtype
    states = rng.normal(size=(LANES, 1 << n)) + 1j * rng.normal(size=(LANES, 1 << n))
    states = (states / np.linalg.norm(states, axis=1, keepdims=True)).astype(dtype)
    re = np.ascontiguousarray(states.real.T, dtype=real)
    im = np.ascontiguousarray(states.imag.T, dtype=real)
    out = np.empty(LANES)
    for x, z in [(0, 0), (0, 0b101), (0, 63), (1, 0), (0b100100, 0b000110), (32, 32), (0b111, 0b010), (63, 63)]:
        odd = int(np.bitwise_count(x & z) & 1)
        _lane_term(re, im, x, z, odd, out)
        for lane in range(LANES):
            expected = _signed_sum(states[lane].astype(np.complex128), x, z)
            # the kernel's sum runs over rows with x's highest bit clear (each pair once): half
            found = out[lane] * (1.0 if x == 0 else 2.0)
            exact = expected.imag if odd else expected.real
            assert abs(found - exact) < 10 * TOLERANCE[dtype], (x, z, lane)
