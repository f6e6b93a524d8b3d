"""Index arithmetic shared by the kernels (qubit q is bit q of an amplitude index), and the
Walsh-Hadamard transform over it."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CHUNK", "group_offsets", "insert_zeros", "parity", "permutation_of", "popcount_parity", "walsh_hadamard"]

CHUNK = 1 << 12  # amplitudes (or amplitude groups) per parallel work item


@njit(cache=True, inline="always")
def insert_zeros(index: int | np.int64, sorted_qubits: np.ndarray) -> int | np.int64:
    """``index`` with a 0 bit inserted at each of ``sorted_qubits`` (ascending): the base
    amplitude of group ``index`` of an op on those qubits."""
    for q in sorted_qubits:
        low = index & ((1 << q) - 1)
        index = ((index >> q) << (q + 1)) | low
    return index


@njit(cache=True, inline="always")
def parity(value: int) -> int:
    """popcount(value) mod 2, for values below 2**64."""
    value ^= value >> 32
    value ^= value >> 16
    value ^= value >> 8
    value ^= value >> 4
    return (0x6996 >> (value & 0xF)) & 1


@njit(cache=True, inline="always")
def popcount_parity(value: int) -> int:
    """popcount(value) mod 2 for 0 <= value < 2**63, branch-free (the SWAR popcount, which LLVM
    turns into one popcnt instruction where the CPU has it): for signed sums in vectorised loops."""
    value = value - ((value >> 1) & 0x5555555555555555)
    value = (value & 0x3333333333333333) + ((value >> 2) & 0x3333333333333333)
    value = (value + (value >> 4)) & 0x0F0F0F0F0F0F0F0F
    return ((value * 0x0101010101010101) >> 56) & 1


@njit(cache=True)
def group_offsets(qubits: np.ndarray) -> np.ndarray:
    """offsets[j]: the amplitude offset of local index j (bit b of j <-> ``qubits[b]``)."""
    size = 1 << qubits.shape[0]
    offsets = np.zeros(size, dtype=np.int64)
    for j in range(size):
        for b in range(qubits.shape[0]):
            if (j >> b) & 1:
                offsets[j] |= 1 << qubits[b]
    return offsets


@njit(cache=True)
def permutation_of(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a one-non-zero-per-column matrix: target row and factor of every column."""
    d = matrix.shape[0]
    rows = np.zeros(d, dtype=np.int64)
    factors = np.zeros(d, dtype=matrix.dtype)
    for c in range(d):
        for r in range(d):
            if matrix[r, c] != 0:
                rows[c] = r
                factors[c] = matrix[r, c]
    return rows, factors


@njit(cache=True, nogil=True)
def walsh_hadamard(buffer: np.ndarray) -> None:
    """In place: buffer[k] <- sum_j buffer[j] (-1)^popcount(j & k)."""
    half = 1
    size = buffer.shape[0]
    while half < size:
        for base in range(0, size, 2 * half):
            for j in range(base, base + half):
                a = buffer[j]
                b = buffer[j + half]
                buffer[j] = a + b
                buffer[j + half] = a - b
        half *= 2
