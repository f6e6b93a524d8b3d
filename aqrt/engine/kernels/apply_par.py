"""Amplitude-parallel gate application: one op on a wide state, parallel over amplitudes.

Conventions in :mod:`aqrt.engine.kernels`. Called from the engine worker only (numba's thread
pool); every kernel updates ``state`` in place and matches its serial twin in
:mod:`aqrt.engine.kernels.apply`.

- ``apply_1q_par``          dense 2x2 on one qubit, parallel over amplitude pairs
- ``apply_dense_par``       dense 2**k x 2**k, parallel over chunks of amplitude groups
- ``apply_diag_par``        diagonal on k qubits, parallel over amplitudes
- ``apply_perm_par``        generalised permutation, parallel over chunks of amplitude groups
- ``apply_controlled_par``  multi-controlled 2x2, parallel over amplitude pairs (CX too)
- ``apply_select_par``      one of two 2x2s picked by a control bit, parallel over amplitude pairs
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import CHUNK, group_offsets, insert_zeros, permutation_of

__all__ = [
    "apply_1q_par",
    "apply_controlled_par",
    "apply_dense_par",
    "apply_diag_par",
    "apply_perm_par",
    "apply_select_par",
]


@njit(cache=True, nogil=True, parallel=True)
def apply_1q_par(state: np.ndarray, q: int, m: np.ndarray) -> None:
    """Dense 2x2 ``m`` on qubit ``q``, parallel over amplitude pairs."""
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    low = (1 << q) - 1
    bit = 1 << q
    half = state.shape[0] >> 1
    for g in prange(half):
        i0 = ((g >> q) << (q + 1)) | (g & low)
        i1 = i0 | bit
        a0 = state[i0]
        a1 = state[i1]
        state[i0] = m00 * a0 + m01 * a1
        state[i1] = m10 * a0 + m11 * a1


@njit(cache=True, nogil=True, parallel=True)
def apply_dense_par(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
    """Dense 2**k x 2**k ``m`` on ``qubits``, parallel over chunks of amplitude groups."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = group_offsets(qubits)
    sorted_qubits = np.sort(qubits)
    groups = state.shape[0] >> k
    num_chunks = (groups + CHUNK - 1) // CHUNK
    for chunk in prange(num_chunks):
        buffer = np.empty(d, dtype=state.dtype)
        for g in range(chunk * CHUNK, min(groups, (chunk + 1) * CHUNK)):
            base = insert_zeros(g, sorted_qubits)
            for j in range(d):
                buffer[j] = state[base + offsets[j]]
            for r in range(d):
                acc = m[r, 0] * buffer[0]
                for c in range(1, d):
                    acc += m[r, c] * buffer[c]
                state[base + offsets[r]] = acc


@njit(cache=True, nogil=True, parallel=True)
def apply_diag_par(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> None:
    """Diagonal on ``qubits``, parallel over amplitudes."""
    k = qubits.shape[0]
    for i in prange(state.shape[0]):
        sub = 0
        for b in range(k):
            sub |= ((i >> qubits[b]) & 1) << b
        state[i] *= diag[sub]


@njit(cache=True, nogil=True, parallel=True)
def apply_perm_par(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
    """Generalised permutation ``m`` on ``qubits``, parallel over chunks of amplitude groups."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = group_offsets(qubits)
    sorted_qubits = np.sort(qubits)
    rows, factors = permutation_of(m)
    groups = state.shape[0] >> k
    num_chunks = (groups + CHUNK - 1) // CHUNK
    for chunk in prange(num_chunks):
        buffer = np.empty(d, dtype=state.dtype)
        for g in range(chunk * CHUNK, min(groups, (chunk + 1) * CHUNK)):
            base = insert_zeros(g, sorted_qubits)
            for j in range(d):
                buffer[j] = state[base + offsets[j]]
            for c in range(d):
                state[base + offsets[rows[c]]] = factors[c] * buffer[c]


@njit(cache=True, nogil=True, parallel=True)
def apply_controlled_par(state: np.ndarray, target: int, control_mask: int, control_value: int, m: np.ndarray) -> None:
    """2x2 ``m`` on ``target`` where (index & control_mask) == control_value, parallel over pairs."""
    m00, m01, m10, m11 = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    low = (1 << target) - 1
    bit = 1 << target
    half = state.shape[0] >> 1
    for g in prange(half):
        i0 = ((g >> target) << (target + 1)) | (g & low)
        if (i0 & control_mask) == control_value:
            i1 = i0 | bit
            a0 = state[i0]
            a1 = state[i1]
            state[i0] = m00 * a0 + m01 * a1
            state[i1] = m10 * a0 + m11 * a1


@njit(cache=True, nogil=True, parallel=True)
def apply_select_par(state: np.ndarray, target: int, control: int, m0: np.ndarray, m1: np.ndarray) -> None:
    """2x2 ``m0`` on ``target`` where the ``control`` bit is 0, ``m1`` where it is 1, parallel over pairs."""
    low = (1 << target) - 1
    bit = 1 << target
    half = state.shape[0] >> 1
    for g in prange(half):
        i0 = ((g >> target) << (target + 1)) | (g & low)
        m = m1 if (i0 >> control) & 1 else m0
        i1 = i0 | bit
        a0 = state[i0]
        a1 = state[i1]
        state[i0] = m[0, 0] * a0 + m[0, 1] * a1
        state[i1] = m[1, 0] * a0 + m[1, 1] * a1
