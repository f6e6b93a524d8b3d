"""Reductions of a state: Pauli term values and probabilities.

Conventions in :mod:`aqrt.engine.kernels`. A Pauli term is (x_mask, z_mask); its value is
sum_i (-1)^popcount(i & z) conj(psi[i ^ x]) psi[i] = <psi| X^x Z^z |psi>; the caller folds Y
phases and coefficients into the term's weight (see :mod:`aqrt.engine.observables`). Values are
complex128 whatever the state's precision.

- ``pauli_values``       every term's value, serially (terms sharing an x mask share a pass)
- ``pauli_values_par``   the same, parallel over chunks (Walsh-Hadamard per chunk for many terms)
- ``probabilities_par``  |psi|^2 as float64, parallel
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import CHUNK, parity, popcount_parity, walsh_hadamard

__all__ = ["pauli_values", "pauli_values_par", "probabilities_par"]

WHT_MIN_TERMS = 8  # from this many terms sharing an x mask, a Walsh-Hadamard transform per chunk pays


@njit(cache=True, nogil=True)
def _order_by(keys: np.ndarray) -> np.ndarray:
    """Indices of ``keys`` in ascending key order (a stable bottom-up merge sort).

    The reductions need the terms grouped by x mask, in no particular order: written out here
    because numba's own ``np.argsort`` compiles in over a second, which every first job paid.
    """
    n = keys.shape[0]
    order = np.arange(n)
    merged = np.empty(n, dtype=np.int64)
    run = 1
    while run < n:
        for low in range(0, n, 2 * run):
            middle = min(low + run, n)
            high = min(low + 2 * run, n)
            i = low
            j = middle
            for k in range(low, high):
                if j >= high or (i < middle and keys[order[i]] <= keys[order[j]]):
                    merged[k] = order[i]
                    i += 1
                else:
                    merged[k] = order[j]
                    j += 1
        order, merged = merged, order
        run *= 2
    return order


@njit(cache=True, nogil=True, fastmath=True)
def _signed_sum(values: np.ndarray, z: int, high: int) -> float:
    """sum_g (-1)^popcount(i_g & z) values[g], with i_g = g with a 0 bit inserted at ``high``
    (``high`` < 0: i_g = g)."""
    total = 0.0
    if high < 0:
        for g in range(values.shape[0]):
            total += (1 - 2 * popcount_parity(g & z)) * values[g]
        return total
    below = (1 << high) - 1
    for g in range(values.shape[0]):
        i = ((g >> high) << (high + 1)) | (g & below)
        total += (1 - 2 * popcount_parity(i & z)) * values[g]
    return total


@njit(cache=True, nogil=True)
def pauli_values(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """Value of every Pauli term, serially; terms sharing an x mask share the products.

    For x != 0 the amplitudes pair up as (i, i ^ x), i with bit ``high`` (x's highest) clear:
    with p = conj(psi[i ^ x]) psi[i] and c = (-1)^popcount(x & z), the pair contributes
    sign(i) (p + c conj(p)), that is 2 sign(i) Re(p) (c = 1) or 2i sign(i) Im(p) (c = -1). So
    a term is one branch-free signed sum of real numbers over half the amplitudes (sweeps of
    small circuits spend most of their time here: 20 random terms are 20 distinct x masks);
    diagonal terms are signed sums of the probabilities.
    """
    values = np.zeros(x_masks.shape[0], dtype=np.complex128)
    order = _order_by(x_masks)
    size = state.shape[0]
    real_parts = np.empty(size >> 1)
    imaginary_parts = np.empty(size >> 1)
    start = 0
    num_terms = x_masks.shape[0]
    while start < num_terms:
        x = x_masks[order[start]]
        stop = start
        while stop < num_terms and x_masks[order[stop]] == x:
            stop += 1
        if x == 0:
            probabilities = np.empty(size)
            for i in range(size):
                a = state[i]
                probabilities[i] = a.real * a.real + a.imag * a.imag
            for t in range(start, stop):
                values[order[t]] = _signed_sum(probabilities, z_masks[order[t]], -1)
            start = stop
            continue
        high = 0
        while x >> (high + 1):
            high += 1
        below = (1 << high) - 1
        for g in range(size >> 1):
            i = ((g >> high) << (high + 1)) | (g & below)
            p = np.conj(state[i ^ x]) * state[i]
            real_parts[g] = p.real
            imaginary_parts[g] = p.imag
        for t in range(start, stop):
            term = order[t]
            z = z_masks[term]
            if popcount_parity(x & z) == 0:
                values[term] = 2.0 * _signed_sum(real_parts, z, high)
            else:
                values[term] = 2.0j * _signed_sum(imaginary_parts, z, high)
        start = stop
    return values


@njit(cache=True, nogil=True, parallel=True)
def pauli_values_par(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """As :func:`pauli_values`, parallel over chunks of amplitudes (one pass per distinct x mask).

    With many terms per x mask, each chunk's products are Walsh-Hadamard transformed once, so a
    term costs one lookup per chunk instead of a parity per amplitude.
    """
    num_terms = x_masks.shape[0]
    values = np.zeros(num_terms, dtype=np.complex128)
    order = _order_by(x_masks)
    size = state.shape[0]
    chunk_size = min(CHUNK, size)
    num_chunks = size // chunk_size
    start = 0
    while start < num_terms:
        x = x_masks[order[start]]
        stop = start
        while stop < num_terms and x_masks[order[stop]] == x:
            stop += 1
        group = stop - start
        use_transform = group >= WHT_MIN_TERMS
        partial = np.zeros((num_chunks, group), dtype=np.complex128)
        for chunk in prange(num_chunks):
            first = chunk * chunk_size
            if use_transform:
                buffer = np.empty(chunk_size, dtype=np.complex128)
                for j in range(chunk_size):
                    a = state[first + j]
                    if x == 0:
                        buffer[j] = a.real * a.real + a.imag * a.imag
                    else:
                        buffer[j] = np.conj(state[(first + j) ^ x]) * a
                walsh_hadamard(buffer)
                for t in range(group):
                    z = z_masks[order[start + t]]
                    value = buffer[z & (chunk_size - 1)]
                    partial[chunk, t] = -value if parity(first & z) else value
                continue
            for i in range(first, first + chunk_size):
                a = state[i]
                if x == 0:  # noqa: SIM108 (kept as in the measured kernel)
                    p = complex(a.real * a.real + a.imag * a.imag, 0.0)
                else:
                    p = np.conj(state[i ^ x]) * a
                for t in range(group):
                    if parity(i & z_masks[order[start + t]]):
                        partial[chunk, t] -= p
                    else:
                        partial[chunk, t] += p
        for t in range(group):
            values[order[start + t]] = partial[:, t].sum()
        start = stop
    return values


@njit(cache=True, nogil=True, parallel=True)
def probabilities_par(state: np.ndarray) -> np.ndarray:
    """|psi|^2 as float64, parallel."""
    out = np.empty(state.shape[0], dtype=np.float64)
    for i in prange(state.shape[0]):
        out[i] = state[i].real * state[i].real + state[i].imag * state[i].imag
    return out
