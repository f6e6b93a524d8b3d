"""Reductions of a state: Pauli term values and probabilities.

Conventions in :mod:`aqrt.engine.kernels`. A Pauli term is (x_mask, z_mask); its value is
sum_i (-1)^popcount(i & z) conj(psi[i ^ x]) psi[i] = <psi| X^x Z^z |psi>; the caller folds Y
phases and coefficients into the term's weight (see :mod:`aqrt.engine.observables`). Values are
complex128 whatever the state's precision.

- ``pauli_values``       every term's value, serially (terms sharing an x mask share a pass)
- ``pauli_values_par``   the same, parallel over chunks (a pruned Walsh-Hadamard transform per chunk)
- ``probabilities_par``  |psi|^2 as float64, parallel
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import CHUNK, popcount_parity

__all__ = ["pauli_values", "pauli_values_par", "probabilities_par"]

PAIRS_WITHIN_BELOW = 5  # x masks below qubit 5 pair amplitudes within a chunk (see _flip_values)


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


# ---- pauli_values_par: one pass over the state per distinct x mask, pruned Walsh-Hadamard per chunk


@njit(cache=True, nogil=True)
def _transform_plan(masks: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan of an in-place Walsh-Hadamard transform over ``bits`` bits that computes only the
    outputs at ``masks`` (each below 2**bits): W(m) = sum_j (-1)^popcount(j & m) data[j], left
    at data[m].

    Stage k sums over bit b = bits - 1 - k (highest first), as the in-place transform does: after
    it, the block data[v * 2**b : (v + 1) * 2**b] holds prefix v (bits b.. of an output index,
    the bits below still input bits). Only the prefixes v = m >> b of wanted masks are made: for
    each parent u = v >> 1, the sum half (v even), the difference half (v odd) or both. A stage
    costs (its prefix count) * 2**b: for the 2n - 1 Ising terms about 4 * 2**bits in all, against
    bits * 2**bits for the full transform, and ~2**bits for a single term (each stage halves).

    Returns, per stage k, ``parents[k, p]`` and ``halves[k, p]`` (1: the sum, 2: the difference,
    3: both) of its p-th parent block, and ``counts[k]``, the number of its parent blocks.
    """
    num = masks.shape[0]
    order = _order_by(masks)
    parents = np.zeros((bits, max(num, 1)), dtype=np.int64)
    halves = np.zeros((bits, max(num, 1)), dtype=np.int64)
    counts = np.zeros(bits, dtype=np.int64)
    for k in range(bits):
        b = bits - 1 - k
        made = 0
        for t in range(num):  # ascending masks: ascending parents
            mask = masks[order[t]]
            parent = mask >> (b + 1)
            if made == 0 or parents[k, made - 1] != parent:
                parents[k, made] = parent
                made += 1
            halves[k, made - 1] |= 1 << ((mask >> b) & 1)
        counts[k] = made
    return parents, halves, counts


@njit(cache=True, nogil=True)
def _pruned_transform(
    data: np.ndarray, parents: np.ndarray, halves: np.ndarray, counts: np.ndarray, bits: int, done: int
) -> None:
    """Stages ``done``.. of the plan (the first ``done`` already in ``data``), in place. Slices,
    so that the inner loops carry no index wraparound checks and vectorise."""
    for k in range(done, bits):
        half = 1 << (bits - 1 - k)
        for p in range(counts[k]):
            start = parents[k, p] * 2 * half
            low = data[start : start + half]
            high = data[start + half : start + 2 * half]
            which = halves[k, p]
            if which == 3:
                for r in range(half):
                    a = low[r]
                    b = high[r]
                    low[r] = a + b
                    high[r] = a - b
            elif which == 1:
                for r in range(half):
                    low[r] += high[r]
            else:
                for r in range(half):
                    high[r] = low[r] - high[r]


@njit(cache=True, nogil=True)
def _chunk_bits(size: int) -> int:
    """log2 of the chunk a parallel work item transforms: CHUNK, or the whole ``size`` if smaller."""
    bits = 0
    while (1 << (bits + 1)) <= min(size, CHUNK):
        bits += 1
    return bits


@njit(cache=True, nogil=True, parallel=True)
def _diagonal_values(state: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """sum_i (-1)^popcount(i & z) |psi[i]|^2 for every z, all in one pass over the state.

    Per chunk (i = first + j, j < 2**bits) the sign splits as parity(first & z) times
    (-1)^popcount(j & z): the chunk's probabilities go through the pruned transform at the low
    bits of the masks, and each term takes its value there, signed by the chunk's high bits. The
    transform's first stage is done while the probabilities are made (float64 whatever the
    state's precision).
    """
    bits = _chunk_bits(state.shape[0])
    chunk = 1 << bits
    num_chunks = state.shape[0] >> bits
    num = z_masks.shape[0]
    low_masks = z_masks & (chunk - 1)
    parents, halves, counts = _transform_plan(low_masks, bits)
    partial = np.empty((num, num_chunks))
    for c in prange(num_chunks):
        first = c << bits
        data = np.empty(chunk)
        if bits == 0:
            a = state[first]
            data[0] = np.float64(a.real) * np.float64(a.real) + np.float64(a.imag) * np.float64(a.imag)
        elif bits >= 2 and counts[1] == 2 and halves[1, 0] == 3 and halves[1, 1] == 3:
            # the first two stages whole (four outputs): made with the probabilities
            quarter = chunk >> 2
            q0 = state[first : first + quarter]
            q1 = state[first + quarter : first + 2 * quarter]
            q2 = state[first + 2 * quarter : first + 3 * quarter]
            q3 = state[first + 3 * quarter : first + chunk]
            out0 = data[:quarter]
            out1 = data[quarter : 2 * quarter]
            out2 = data[2 * quarter : 3 * quarter]
            out3 = data[3 * quarter :]
            for j in range(quarter):
                a = q0[j]
                b = q1[j]
                c_ = q2[j]
                d = q3[j]
                p0 = np.float64(a.real) * np.float64(a.real) + np.float64(a.imag) * np.float64(a.imag)
                p1 = np.float64(b.real) * np.float64(b.real) + np.float64(b.imag) * np.float64(b.imag)
                p2 = np.float64(c_.real) * np.float64(c_.real) + np.float64(c_.imag) * np.float64(c_.imag)
                p3 = np.float64(d.real) * np.float64(d.real) + np.float64(d.imag) * np.float64(d.imag)
                s02 = p0 + p2
                d02 = p0 - p2
                s13 = p1 + p3
                d13 = p1 - p3
                out0[j] = s02 + s13
                out1[j] = s02 - s13
                out2[j] = d02 + d13
                out3[j] = d02 - d13
            _pruned_transform(data, parents, halves, counts, bits, 2)
        else:
            half = chunk >> 1
            low = state[first : first + half]
            high = state[first + half : first + chunk]
            sums = data[:half]
            differences = data[half:]
            which = halves[0, 0]
            for j in range(half):
                a = low[j]
                b = high[j]
                pa = np.float64(a.real) * np.float64(a.real) + np.float64(a.imag) * np.float64(a.imag)
                pb = np.float64(b.real) * np.float64(b.real) + np.float64(b.imag) * np.float64(b.imag)
                if which & 1:
                    sums[j] = pa + pb
                if which & 2:
                    differences[j] = pa - pb
            _pruned_transform(data, parents, halves, counts, bits, 1)
        for t in range(num):
            value = data[low_masks[t]]
            partial[t, c] = -value if popcount_parity(first & z_masks[t]) else value
    values = np.empty(num)
    for t in range(num):
        values[t] = partial[t].sum()
    return values


@njit(cache=True, nogil=True)
def _pair_products(
    own: np.ndarray,
    partner: np.ndarray,
    swap: int,
    real_out: np.ndarray,
    imaginary_out: np.ndarray,
    real: bool,
    imaginary: bool,
    scale: float,
) -> None:
    """``scale`` Re and/or ``scale`` Im (as asked) of conj(partner[r ^ swap]) own[r], as float64."""
    if swap == 0:
        for r in range(own.shape[0]):
            a = own[r]
            b = partner[r]
            ar, ai, br, bi = np.float64(a.real), np.float64(a.imag), np.float64(b.real), np.float64(b.imag)
            if real:
                real_out[r] = scale * (br * ar + bi * ai)
            if imaginary:
                imaginary_out[r] = scale * (br * ai - bi * ar)
        return
    for r in range(own.shape[0]):
        a = own[r]
        b = partner[r ^ swap]
        ar, ai, br, bi = np.float64(a.real), np.float64(a.imag), np.float64(b.real), np.float64(b.imag)
        if real:
            real_out[r] = scale * (br * ar + bi * ai)
        if imaginary:
            imaginary_out[r] = scale * (br * ai - bi * ar)


@njit(cache=True, nogil=True, parallel=True)
def _flip_values(state: np.ndarray, x: int, z_masks: np.ndarray, imaginary: np.ndarray) -> np.ndarray:
    """For x != 0, every term's sum_g sign(i_g) 2 Re(p_g) (``imaginary[t]`` false) or
    2 Im(p_g) (true), p_g = conj(psi[i_g ^ x]) psi[i_g], over the i_g whose bit h (x's highest)
    is clear: i_g is g with a 0 inserted at bit h (see :func:`pauli_values`).

    sign(i_g) = (-1)^popcount(g & z') with z' the mask z less its bit h (higher bits moved down
    one), so over g this is :func:`_diagonal_values`' problem on the products: chunks of g, a
    pruned transform of the real parts for the real terms and of the imaginary parts for the
    others. Within a chunk the amplitudes i_g run in blocks of 2**min(h, bits) consecutive
    indices whose partners i_g ^ x are one block too (permuted by x's low bits).

    Short blocks (h below ``PAIRS_WITHIN_BELOW``) cost more in loop overhead than they save:
    there every amplitude i of a chunk of the whole state is paired with i ^ x in the same chunk,
    and the sum over all i of sign(i) Re or Im of conj(psi[i ^ x]) psi[i] (each pair twice, as
    sign(i ^ x) = sign(i) (-1)^popcount(x & z)) is the value, with the masks as they are.
    """
    h = 0
    while x >> (h + 1):
        h += 1
    below = (1 << h) - 1
    within = h < PAIRS_WITHIN_BELOW
    if within:
        bits = _chunk_bits(state.shape[0])
        squeezed = z_masks
    else:
        bits = _chunk_bits(state.shape[0] >> 1)
        squeezed = (z_masks & below) | ((z_masks >> (h + 1)) << h)
    chunk = 1 << bits
    num_chunks = (state.shape[0] >> (0 if within else 1)) >> bits
    num = z_masks.shape[0]
    num_imaginary = 0
    for t in range(num):
        if imaginary[t]:
            num_imaginary += 1
    real_terms = np.empty(num - num_imaginary, dtype=np.int64)
    imaginary_terms = np.empty(num_imaginary, dtype=np.int64)
    r = 0
    for t in range(num):
        if imaginary[t]:
            imaginary_terms[t - r] = t
        else:
            real_terms[r] = t
            r += 1
    need_real = real_terms.shape[0] > 0
    need_imaginary = imaginary_terms.shape[0] > 0
    low_masks = squeezed & (chunk - 1)
    real_plan = _transform_plan(low_masks[real_terms], bits)
    imaginary_plan = _transform_plan(low_masks[imaginary_terms], bits)
    block = 1 << min(h, bits)
    swap = x & (block - 1)
    partial = np.empty((num, num_chunks))
    for c in prange(num_chunks):
        first = c << bits
        real_parts = np.empty(chunk)
        imaginary_parts = np.empty(chunk)
        if within:
            amplitudes = state[first : first + chunk]
            _pair_products(amplitudes, amplitudes, x, real_parts, imaginary_parts, need_real, need_imaginary, 1.0)
        else:
            for start in range(0, chunk, block):
                g = first + start
                i = ((g >> h) << (h + 1)) | (g & below)
                k = (i ^ x) - swap
                _pair_products(
                    state[i : i + block],
                    state[k : k + block],
                    swap,
                    real_parts[start : start + block],
                    imaginary_parts[start : start + block],
                    need_real,
                    need_imaginary,
                    2.0,
                )
        if need_real:
            parents, halves, counts = real_plan
            _pruned_transform(real_parts, parents, halves, counts, bits, 0)
            for term in real_terms:
                value = real_parts[low_masks[term]]
                partial[term, c] = -value if popcount_parity(first & squeezed[term]) else value
        if need_imaginary:
            parents, halves, counts = imaginary_plan
            _pruned_transform(imaginary_parts, parents, halves, counts, bits, 0)
            for term in imaginary_terms:
                value = imaginary_parts[low_masks[term]]
                partial[term, c] = -value if popcount_parity(first & squeezed[term]) else value
    values = np.empty(num)
    for t in range(num):
        values[t] = partial[t].sum()
    return values


@njit(cache=True, nogil=True)
def pauli_values_par(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """As :func:`pauli_values`, parallel over chunks of amplitudes: one pass over the state per
    distinct x mask (all diagonal terms share one), float64 sums whatever the state's precision.

    Per chunk, a Walsh-Hadamard transform pruned to the terms' masks (:func:`_transform_plan`)
    gives every term of the x mask at the cost of about one to four additions per amplitude for
    the usual observables, instead of a parity per amplitude and term.
    """
    num_terms = x_masks.shape[0]
    values = np.zeros(num_terms, dtype=np.complex128)
    order = _order_by(x_masks)
    start = 0
    while start < num_terms:
        x = x_masks[order[start]]
        stop = start
        while stop < num_terms and x_masks[order[stop]] == x:
            stop += 1
        terms = order[start:stop]
        z = z_masks[terms]
        if x == 0:
            found = _diagonal_values(state, z)
            for s in range(stop - start):
                values[terms[s]] = found[s]
        else:
            imaginary = np.empty(stop - start, dtype=np.bool_)
            for s in range(stop - start):
                imaginary[s] = popcount_parity(x & z[s]) == 1
            found = _flip_values(state, x, z, imaginary)
            for s in range(stop - start):
                values[terms[s]] = complex(0.0, found[s]) if imaginary[s] else complex(found[s], 0.0)
        start = stop
    return values


@njit(cache=True, nogil=True, parallel=True)
def probabilities_par(state: np.ndarray) -> np.ndarray:
    """|psi|^2 as float64, parallel."""
    out = np.empty(state.shape[0], dtype=np.float64)
    for i in prange(state.shape[0]):
        out[i] = state[i].real * state[i].real + state[i].imag * state[i].imag
    return out
