"""Every kernel of the op-kernel table against the other kernels of its op kind and against a
slow, obvious numpy oracle (the idea of PennyLane Lightning's CompareKernels tests).

For every op kind and width, on seeded random states of several sizes (qubits 0 and n-1 and
both qubit orders included), in complex128 and complex64: each row of ``OP_KERNELS`` that takes
the op (serial and amplitude-parallel variants, specialised and generic) must match the oracle
and every other such row within the dtype's tolerance. The jitted interpreter ``run_program``,
the one dispatcher not driven by the table, must give bit for bit what the table's serial row
gives, and :func:`registry.apply_op` must read entries as ``run_program`` does.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aqrt.engine import warmup
from aqrt.engine.kernels import OPS, SMALL
from aqrt.engine.kernels.interpreter import run_program
from aqrt.engine.kernels.registry import OP_KERNELS, OpKernel, apply_op, select
from aqrt.engine.ops import CTRL, CX, DENSE, DIAG, KIND_NAMES, PERM, SEL, OpArrays, entry_count

DTYPES = [np.complex128, np.complex64]
TOLERANCE = {np.complex128: 1e-12, np.complex64: 1e-5}
WIDTHS = {DENSE: (1, 2, 3, 4), DIAG: (1, 2, 3), PERM: (1, 2, 3), CTRL: (1, 2, 3, 4), CX: (2,), SEL: (2,)}
# 1-7 cross the SIMD thresholds (qubit 4 and up); 14 spans several parallel work items
NUM_QUBITS = (1, 2, 3, 5, 7, 14)
CASES = [(kind, width) for kind, widths in WIDTHS.items() for width in widths]


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    # the op kernels and run_program only: every tier of both precisions is minutes of compiling
    for dtype in DTYPES:
        warmup(np.dtype(dtype).name, (SMALL, OPS))


def _rows(kind: int, width: int) -> list[OpKernel]:
    return [row for row in OP_KERNELS if row.kind == kind and row.width in (None, width)]


def _case_id(case: tuple[int, int]) -> str:
    return f"{KIND_NAMES[case[0]]}-{case[1]}q"


# -- random ops and the oracle ---------------------------------------------------------------------


def _random_state(n: int, rng: np.random.Generator, dtype: type) -> np.ndarray:
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    return np.ascontiguousarray(state / np.linalg.norm(state), dtype=dtype)


def _qubit_orders(n: int, width: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random, ascending and descending orders, and orders with qubits 0 and n-1 at either end."""
    chosen = sorted(int(q) for q in rng.choice(n, size=width, replace=False))
    orders = [[int(q) for q in rng.permutation(chosen)], chosen, chosen[::-1]]
    if width == 1:
        orders += [[0], [n - 1]]
    else:
        middle = [int(q) for q in rng.choice(np.arange(1, n - 1), size=width - 2, replace=False)] if n > 2 else []
        orders += [[0, *middle, n - 1], [n - 1, *middle, 0]]
    if n >= 13:  # wide states: fewer, costlier cases
        orders = orders[:1] + orders[-2:]
    return [np.array(order, dtype=np.int64) for order in orders]


def _random_op(
    kind: int, qubits: np.ndarray, rng: np.random.Generator, dtype: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entries, aux, matrix): the op's buffer entries (in ``dtype``) and aux row as the kernels
    read them, and its 2**k x 2**k matrix on ``qubits`` (bit j of the row/column index <->
    qubits[j]) built from those entries by the definitions in aqrt.engine.ops."""
    width = qubits.shape[0]
    d = 1 << width
    aux = np.zeros(2, dtype=np.int64)
    size = entry_count(kind, width)
    raw = rng.normal(size=size) + 1j * rng.normal(size=size)
    if kind == PERM:  # one non-zero per column, at a random row
        raw = np.zeros((d, d), dtype=np.complex128)
        raw[rng.permutation(d), np.arange(d)] = rng.normal(size=d) + 1j * rng.normal(size=d)
    entries = np.ascontiguousarray(raw.reshape(-1), dtype=dtype)
    exact = entries.astype(np.complex128)  # the oracle uses the entries as rounded to the dtype
    if kind in (DENSE, PERM):  # dense: not unitary, so every entry must land where it belongs
        return entries, aux, exact.reshape(d, d)
    if kind == DIAG:
        return entries, aux, np.diag(exact)
    matrix = np.eye(d, dtype=np.complex128)
    if kind == CTRL:  # qubits = (target, *controls); control state bit j - 1 <-> qubits[j]
        ctrl_state = int(rng.integers(1 << (width - 1)))
        for j in range(1, width):
            aux[0] |= 1 << int(qubits[j])
            aux[1] |= ((ctrl_state >> (j - 1)) & 1) << int(qubits[j])
        base = exact.reshape(2, 2)
        for r in range(d):
            for c in range(d):
                if r >> 1 == c >> 1 == ctrl_state:  # the controls agree and are active
                    matrix[r, c] = base[r & 1, c & 1]
        return entries, aux, matrix
    if kind == SEL:  # qubits = (target, control): the first 2x2 on the target (bit 0) where the control (bit 1) is 0
        pair = exact.reshape(2, 2, 2)
        matrix = np.zeros((d, d), dtype=np.complex128)
        for r in range(d):
            for c in range(d):
                if r >> 1 == c >> 1:
                    matrix[r, c] = pair[r >> 1][r & 1, c & 1]
        return entries, aux, matrix
    assert kind == CX  # qubits = (control, target): the target (bit 1) flips where the control (bit 0) is set
    matrix = matrix[:, [c ^ 2 if c & 1 else c for c in range(4)]]
    return entries, aux, matrix


def _oracle(state: np.ndarray, qubits: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """new[i] = sum_c matrix[r(i), c] * state[i with the op's bits set to c], in complex128."""
    psi = state.astype(np.complex128)
    index = np.arange(psi.shape[0])
    row = np.zeros_like(index)
    op_mask = 0
    for j, q in enumerate(qubits):
        row |= ((index >> int(q)) & 1) << j
        op_mask |= 1 << int(q)
    rest = index & ~op_mask
    out = np.zeros_like(psi)
    for c in range(matrix.shape[1]):
        source = rest.copy()
        for j, q in enumerate(qubits):
            source |= ((c >> j) & 1) << int(q)
        out += matrix[row, c] * psi[source]
    return out


# -- the table's rows against the oracle and each other --------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_kernel_of_an_op_matches_the_oracle_and_the_others(case: tuple[int, int], dtype: type) -> None:
    kind, width = case
    rows = _rows(kind, width)
    assert {row.parallel for row in rows} == {False, True}, "every op needs a serial and a parallel kernel"
    tolerance = TOLERANCE[dtype]
    rng = np.random.default_rng(1000 * kind + width)
    checked = 0
    for n in NUM_QUBITS:
        if n < width:
            continue
        for qubits in _qubit_orders(n, width, rng):
            state = _random_state(n, rng, dtype)
            entries, aux, matrix = _random_op(kind, qubits, rng, dtype)
            expected = _oracle(state, qubits, matrix)
            results = {}
            for row in rows:
                out = state.copy()
                row.apply(out, qubits, entries, aux)
                assert out.dtype == dtype
                where = f"{row.name} ({'parallel' if row.parallel else 'serial'}) n={n} qubits={qubits.tolist()}"
                np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance, err_msg=where)
                results[where] = out
            for (a, first), (b, second) in itertools.combinations(results.items(), 2):
                np.testing.assert_allclose(first, second, rtol=0, atol=tolerance, err_msg=f"{a} vs {b}")
            checked += 1
    assert checked >= 3


def test_every_row_of_the_table_is_compared() -> None:
    compared = {id(row) for kind, width in CASES for row in _rows(kind, width)}
    assert compared == {id(row) for row in OP_KERNELS}
    assert set(WIDTHS) == set(KIND_NAMES)


def test_select_prefers_the_row_specialised_for_the_width() -> None:
    for row in OP_KERNELS:
        width = row.width if row.width is not None else 3
        assert select(row.kind, width, row.parallel) is row
    with pytest.raises(ValueError, match="no serial kernel"):
        select(99, 1, False)


# -- the jitted interpreter against the table ------------------------------------------------------


def _one_op_program(kind: int, qubits: np.ndarray, entries: np.ndarray, aux: np.ndarray) -> OpArrays:
    return OpArrays(
        kinds=np.array([kind], dtype=np.int64),
        qubits=qubits.reshape(1, -1).copy(),
        widths=np.array([qubits.shape[0]], dtype=np.int64),
        aux=aux.reshape(1, 2).copy(),
        sources=np.zeros(1, dtype=np.int64),
        offsets=np.zeros(1, dtype=np.int64),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_run_program_dispatches_every_op_as_the_table_does(case: tuple[int, int], dtype: type) -> None:
    kind, width = case
    rng = np.random.default_rng(2000 * kind + width)
    for n in (max(width, 2), 6, 9):
        for qubits in _qubit_orders(n, width, rng):
            state = _random_state(n, rng, dtype)
            entries, aux, _ = _random_op(kind, qubits, rng, dtype)
            by_table = state.copy()
            select(kind, width, parallel=False).apply(by_table, qubits, entries, aux)
            by_interpreter = state.copy()
            ops = _one_op_program(kind, qubits, entries, aux)
            static = entries if entries.shape[0] else np.zeros(1, dtype=dtype)
            run_program(by_interpreter, ops.as_tuple(), static, np.zeros(0, dtype=dtype))
            np.testing.assert_array_equal(by_interpreter, by_table, err_msg=f"n={n} qubits={qubits.tolist()}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_apply_op_reads_a_program_as_run_program_does(dtype: type) -> None:
    """A program of every kind, entries in the static and the binding buffer: op by op through
    the table (serial rows: bit for bit; parallel rows: within tolerance) equals run_program."""
    rng = np.random.default_rng(3)
    n = 7
    static_parts: list[np.ndarray] = []
    binding_parts: list[np.ndarray] = []
    rows = []
    for kind, width in CASES * 2:
        qubits = _qubit_orders(n, width, rng)[0]
        entries, aux, _ = _random_op(kind, qubits, rng, dtype)
        source = int(rng.integers(2)) if entries.shape[0] else 0
        parts = binding_parts if source else static_parts
        offset = sum(part.shape[0] for part in parts)
        parts.append(entries)
        rows.append((kind, qubits, aux, source, offset))
    widest = max(qubits.shape[0] for _, qubits, _, _, _ in rows)
    ops = OpArrays(
        kinds=np.array([kind for kind, *_ in rows], dtype=np.int64),
        qubits=np.zeros((len(rows), widest), dtype=np.int64),
        widths=np.array([qubits.shape[0] for _, qubits, *_ in rows], dtype=np.int64),
        aux=np.array([aux for _, _, aux, _, _ in rows], dtype=np.int64),
        sources=np.array([source for *_, source, _ in rows], dtype=np.int64),
        offsets=np.array([offset for *_, offset in rows], dtype=np.int64),
    )
    for j, (_, qubits, *_) in enumerate(rows):
        ops.qubits[j, : qubits.shape[0]] = qubits
    static_buffer = np.concatenate(static_parts).astype(dtype)
    binding_buffer = np.concatenate(binding_parts).astype(dtype)
    assert sum(entry_count(kind, qubits.shape[0]) for kind, qubits, *_ in rows) == (
        static_buffer.shape[0] + binding_buffer.shape[0]
    )
    state = _random_state(n, rng, dtype)
    expected = state.copy()
    run_program(expected, ops.as_tuple(), static_buffer, binding_buffer)
    for parallel in (False, True):
        out = state.copy()
        for j in range(ops.num_ops):
            apply_op(out, ops, j, static_buffer, binding_buffer, parallel=parallel)
        if parallel:  # the random ops are not unitary: the tolerance scales with the amplitudes
            scale = float(np.abs(expected).max())
            np.testing.assert_allclose(out, expected, rtol=0, atol=TOLERANCE[dtype] * scale)
        else:
            np.testing.assert_array_equal(out, expected)
