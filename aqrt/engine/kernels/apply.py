"""Serial gate application: one op on a whole state (small states, and the interpreter's ops).

Conventions in :mod:`aqrt.engine.kernels`. Every kernel updates ``state`` in place.

- ``apply_1q``          dense 2x2 on one qubit (SIMD pair runs from qubit ``VECTOR_QUBIT`` on)
- ``apply_2q``          dense 4x4 on two qubits (SIMD quad runs when both are high enough)
- ``apply_dense``       dense 2**k x 2**k on any k qubits
- ``apply_diag``        diagonal on k qubits (2**k entries; SIMD runs from qubit ``VECTOR_QUBIT`` on)
- ``apply_perm``        generalised permutation on k qubits (dense storage, amplitudes moved)
- ``apply_controlled``  2x2 on a target where (index & control mask) == control value
- ``apply_cx``          CX(control, target): swaps, no arithmetic
- ``apply_select``      one of two 2x2s on a target, picked by a control bit

Where the state is a C-contiguous array of at least 32 amplitudes, 1-qubit gates, selects and
CX on any qubits, and 1-/2-qubit dense and permutation ops and diagonals whose qubits all lie below
``BLOCK_QUBITS`` (4), run on :mod:`.simd`'s explicit vector kernels (16 amplitudes per vector):
pair runs on low qubits are too short for the loops here to vectorise. The loops stay for other
states and other ops.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import group_offsets, insert_zeros, permutation_of
from .simd import BLOCK_QUBITS, LOW_TARGET_CX, try_1q_simd, try_cx_simd, try_dense_low, try_diag_low, try_select_simd

__all__ = [
    "apply_1q",
    "apply_2q",
    "apply_controlled",
    "apply_cx",
    "apply_dense",
    "apply_diag",
    "apply_perm",
    "apply_select",
]

VECTOR_QUBIT = 4  # from this target qubit on, pair runs are long enough for SIMD


@njit(cache=True, nogil=True, inline="always")
def _all_low(qubits: np.ndarray) -> bool:
    return qubits.max() < BLOCK_QUBITS


@njit(cache=True, nogil=True, fastmath=True)
def _pair_update(lo: np.ndarray, hi: np.ndarray, m: np.ndarray) -> None:
    # Two distinct array arguments: LLVM checks they do not overlap and vectorises the loop.
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    for i in range(lo.shape[0]):
        a0 = lo[i]
        a1 = hi[i]
        lo[i] = m00 * a0 + m01 * a1
        hi[i] = m10 * a0 + m11 * a1


@njit(cache=True, nogil=True, fastmath=True)
def _swap(lo: np.ndarray, hi: np.ndarray) -> None:
    for i in range(lo.shape[0]):
        a = lo[i]
        lo[i] = hi[i]
        hi[i] = a


@njit(cache=True, nogil=True)
def apply_1q(state: np.ndarray, q: int, m: np.ndarray) -> None:
    """Dense 2x2 ``m`` on qubit ``q``."""
    if try_1q_simd(state, q, m):
        return
    stride = 1 << q
    if q >= VECTOR_QUBIT:
        for base in range(0, state.shape[0], 2 * stride):
            _pair_update(state[base : base + stride], state[base + stride : base + 2 * stride], m)
        return
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    for base in range(0, state.shape[0], 2 * stride):
        for i0 in range(base, base + stride):
            i1 = i0 + stride
            a0 = state[i0]
            a1 = state[i1]
            state[i0] = m00 * a0 + m01 * a1
            state[i1] = m10 * a0 + m11 * a1


@njit(cache=True, nogil=True, fastmath=True)
def _quad_update(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, m: np.ndarray) -> None:
    # Four distinct array arguments (the four amplitudes of each group), so the loop vectorises.
    for i in range(a.shape[0]):
        v0 = a[i]
        v1 = b[i]
        v2 = c[i]
        v3 = d[i]
        a[i] = m[0, 0] * v0 + m[0, 1] * v1 + m[0, 2] * v2 + m[0, 3] * v3
        b[i] = m[1, 0] * v0 + m[1, 1] * v1 + m[1, 2] * v2 + m[1, 3] * v3
        c[i] = m[2, 0] * v0 + m[2, 1] * v1 + m[2, 2] * v2 + m[2, 3] * v3
        d[i] = m[3, 0] * v0 + m[3, 1] * v1 + m[3, 2] * v2 + m[3, 3] * v3


@njit(cache=True, nogil=True)
def apply_2q(state: np.ndarray, q0: int, q1: int, m: np.ndarray) -> None:
    """Dense 4x4 ``m`` on (q0, q1); SIMD runs when both qubits are at least ``VECTOR_QUBIT``."""
    low = min(q0, q1)
    high = max(q0, q1)
    if low < VECTOR_QUBIT:
        apply_dense(state, np.array([q0, q1], dtype=np.int64), m)
        return
    s0 = 1 << q0
    s1 = 1 << q1
    run = 1 << low
    for outer in range(0, state.shape[0], 2 << high):
        for start in range(outer, outer + (1 << high), 2 * run):
            _quad_update(
                state[start : start + run],
                state[start + s0 : start + s0 + run],
                state[start + s1 : start + s1 + run],
                state[start + s0 + s1 : start + s0 + s1 + run],
                m,
            )


@njit(cache=True, nogil=True)
def apply_cx(state: np.ndarray, control: int, target: int) -> None:
    """CX: swap the target's 0/1 amplitudes where the control bit is set."""
    if (target >= BLOCK_QUBITS or LOW_TARGET_CX) and try_cx_simd(state, control, target):
        return
    control_bit = 1 << control
    stride = 1 << target
    size = state.shape[0]
    if control > target:  # the control bit is constant over each block of 2 * stride
        for base in range(control_bit, size, 2 * stride):
            if base & control_bit:
                _swap(state[base : base + stride], state[base + stride : base + 2 * stride])
        return
    run = control_bit  # control < target: runs of 2**control amplitudes with the control set
    if control < VECTOR_QUBIT:  # runs too short for calls per run
        for base in range(0, size, 2 * stride):
            for i0 in range(base, base + stride):
                if i0 & control_bit:
                    i1 = i0 + stride
                    a0 = state[i0]
                    state[i0] = state[i1]
                    state[i1] = a0
        return
    for base in range(0, size, 2 * stride):
        for start in range(base + run, base + stride, 2 * run):
            _swap(state[start : start + run], state[start + stride : start + stride + run])


@njit(cache=True, nogil=True)
def apply_dense(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
    """Dense 2**k x 2**k ``m`` on ``qubits``."""
    k = qubits.shape[0]
    if k <= 2 and _all_low(qubits) and try_dense_low(state, qubits, m):
        return
    d = 1 << k
    offsets = group_offsets(qubits)
    sorted_qubits = np.sort(qubits)
    buffer = np.empty(d, dtype=state.dtype)
    for g in range(state.shape[0] >> k):
        base = insert_zeros(g, sorted_qubits)
        for j in range(d):
            buffer[j] = state[base + offsets[j]]
        for r in range(d):
            acc = m[r, 0] * buffer[0]
            for c in range(1, d):
                acc += m[r, c] * buffer[c]
            state[base + offsets[r]] = acc


@njit(cache=True, nogil=True, fastmath=True)
def _scale(run: np.ndarray, factor: complex) -> None:
    for i in range(run.shape[0]):
        run[i] *= factor


@njit(cache=True, nogil=True)
def apply_diag(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> None:
    """Diagonal on ``qubits``: state[i] *= diag[bits of i at qubits]. From a lowest qubit of
    ``VECTOR_QUBIT`` on, the 2**lowest contiguous amplitudes below it share one entry (SIMD runs)."""
    k = qubits.shape[0]
    if _all_low(qubits) and try_diag_low(state, qubits, diag):
        return
    lowest = qubits[0]
    for b in range(1, k):
        lowest = min(lowest, qubits[b])
    if lowest >= VECTOR_QUBIT:
        run = 1 << lowest
        for base in range(0, state.shape[0], run):
            sub = 0
            for b in range(k):
                sub |= ((base >> qubits[b]) & 1) << b
            _scale(state[base : base + run], diag[sub])
        return
    for i in range(state.shape[0]):
        sub = 0
        for b in range(k):
            sub |= ((i >> qubits[b]) & 1) << b
        state[i] *= diag[sub]


@njit(cache=True, nogil=True)
def apply_perm(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
    """Generalised permutation matrix ``m`` on ``qubits`` (moves amplitudes, multiplies by phases).
    One or two qubits below ``BLOCK_QUBITS`` run as a dense block: the zero entries add exact
    zeros, so the amplitudes are the same."""
    k = qubits.shape[0]
    if k <= 2 and _all_low(qubits) and try_dense_low(state, qubits, m):
        return
    d = 1 << k
    offsets = group_offsets(qubits)
    sorted_qubits = np.sort(qubits)
    rows, factors = permutation_of(m)
    buffer = np.empty(d, dtype=state.dtype)
    for g in range(state.shape[0] >> k):
        base = insert_zeros(g, sorted_qubits)
        for j in range(d):
            buffer[j] = state[base + offsets[j]]
        for c in range(d):
            state[base + offsets[rows[c]]] = factors[c] * buffer[c]


@njit(cache=True, nogil=True)
def apply_controlled(state: np.ndarray, target: int, control_mask: int, control_value: int, m: np.ndarray) -> None:
    """2x2 ``m`` on ``target`` where (index & control_mask) == control_value."""
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    low = (1 << target) - 1
    bit = 1 << target
    for g in range(state.shape[0] >> 1):
        i0 = ((g >> target) << (target + 1)) | (g & low)
        if (i0 & control_mask) != control_value:
            continue
        i1 = i0 | bit
        a0 = state[i0]
        a1 = state[i1]
        state[i0] = m00 * a0 + m01 * a1
        state[i1] = m10 * a0 + m11 * a1


@njit(cache=True, nogil=True)
def apply_select(state: np.ndarray, target: int, control: int, m0: np.ndarray, m1: np.ndarray) -> None:
    """2x2 ``m0`` on ``target`` where the ``control`` bit is 0, ``m1`` where it is 1."""
    if try_select_simd(state, target, control, m0, m1):
        return
    low = (1 << target) - 1
    bit = 1 << target
    for g in range(state.shape[0] >> 1):
        i0 = ((g >> target) << (target + 1)) | (g & low)
        m = m1 if (i0 >> control) & 1 else m0
        i1 = i0 | bit
        a0 = state[i0]
        a1 = state[i1]
        state[i0] = m[0, 0] * a0 + m[0, 1] * a1
        state[i1] = m[1, 0] * a0 + m[1, 1] * a1
