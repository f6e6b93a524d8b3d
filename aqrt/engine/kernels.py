"""Numba kernels of the statevector engine.

Conventions:
- A state of n qubits is a C-contiguous complex128 (or complex64) array of length 2**n; qubit q
  is bit q of the amplitude index (Qiskit's little-endian order).
- A k-qubit operator on qubits (q_0, ..., q_{k-1}) is a (2**k, 2**k) matrix whose row/column
  index has q_j as bit j (Qiskit's convention). ``qubits`` arrays are in that gate order.
- Kernels update the state in place. ``*_par`` kernels are parallel over amplitudes (for wide
  states, called from the engine worker only); the ``run_program`` interpreter is serial and is
  the unit of parallelism over bindings in sweeps.
- A Pauli term is (x_mask, z_mask): its value is sum_i (-1)^popcount(i & z) conj(psi[i ^ x]) psi[i];
  the caller folds Y phases and coefficients into the term's weight.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Op kinds of a lowered program.
DENSE = 0  # dense k-qubit matrix
DIAG = 1  # diagonal: the matrix buffer holds the 2**k diagonal entries
PERM = 2  # one non-zero per row/column (X, CX, SWAP, CCX, Y, ...): dense storage, permuted apply
CTRL = 3  # multi-controlled 1-qubit gate: 2x2 base matrix; aux = (control mask, control value)
CX = 4  # controlled-X: qubits = (control, target); no matrix entries are read

_CHUNK = 1 << 12  # amplitudes per parallel work item


@njit(cache=True, inline="always")
def _insert_zeros(index: int, sorted_qubits: np.ndarray) -> int:
    for q in sorted_qubits:
        low = index & ((1 << q) - 1)
        index = ((index >> q) << (q + 1)) | low
    return index


@njit(cache=True, inline="always")
def _parity(value: int) -> int:
    value ^= value >> 32
    value ^= value >> 16
    value ^= value >> 8
    value ^= value >> 4
    return (0x6996 >> (value & 0xF)) & 1


@njit(cache=True)
def _offsets(qubits: np.ndarray) -> np.ndarray:
    size = 1 << qubits.shape[0]
    offsets = np.zeros(size, dtype=np.int64)
    for j in range(size):
        for b in range(qubits.shape[0]):
            if (j >> b) & 1:
                offsets[j] |= 1 << qubits[b]
    return offsets


@njit(cache=True)
def _perm_of(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


# -- serial kernels (small states; the program interpreter) --------------------------------------


_VECTOR_QUBIT = 4  # from this target qubit on, pair runs are long enough for SIMD


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
    """Dense 2x2 on qubit q."""
    stride = 1 << q
    if q >= _VECTOR_QUBIT:
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
    """Dense 4x4 on (q0, q1); SIMD runs when both qubits are at least ``_VECTOR_QUBIT``."""
    low = min(q0, q1)
    high = max(q0, q1)
    if low < _VECTOR_QUBIT:
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
    control_bit = 1 << control
    stride = 1 << target
    size = state.shape[0]
    if control > target:  # the control bit is constant over each block of 2 * stride
        for base in range(control_bit, size, 2 * stride):
            if base & control_bit:
                _swap(state[base : base + stride], state[base + stride : base + 2 * stride])
        return
    run = control_bit  # control < target: runs of 2**control amplitudes with the control set
    if control < _VECTOR_QUBIT:  # runs too short for calls per run
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
    """Dense 2**k x 2**k on ``qubits``."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = _offsets(qubits)
    sorted_qubits = np.sort(qubits)
    buffer = np.empty(d, dtype=state.dtype)
    for g in range(state.shape[0] >> k):
        base = _insert_zeros(g, sorted_qubits)
        for j in range(d):
            buffer[j] = state[base + offsets[j]]
        for r in range(d):
            acc = m[r, 0] * buffer[0]
            for c in range(1, d):
                acc += m[r, c] * buffer[c]
            state[base + offsets[r]] = acc


@njit(cache=True, nogil=True)
def apply_diag(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> None:
    """Diagonal on ``qubits``: state[i] *= diag[bits of i at qubits]."""
    k = qubits.shape[0]
    for i in range(state.shape[0]):
        sub = 0
        for b in range(k):
            sub |= ((i >> qubits[b]) & 1) << b
        state[i] *= diag[sub]


@njit(cache=True, nogil=True)
def apply_perm(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
    """Generalised permutation matrix on ``qubits`` (moves amplitudes, multiplies by phases)."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = _offsets(qubits)
    sorted_qubits = np.sort(qubits)
    rows, factors = _perm_of(m)
    buffer = np.empty(d, dtype=state.dtype)
    for g in range(state.shape[0] >> k):
        base = _insert_zeros(g, sorted_qubits)
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
def run_program(
    state: np.ndarray,
    kinds: np.ndarray,
    qubits: np.ndarray,
    widths: np.ndarray,
    aux: np.ndarray,
    sources: np.ndarray,
    offsets: np.ndarray,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
) -> None:
    """Apply a lowered program serially.

    Op j acts on ``qubits[j, :widths[j]]``; its matrix (or diagonal) starts at ``offsets[j]`` in
    ``static_buffer`` (sources[j] == 0) or in ``binding_buffer`` (sources[j] == 1).
    """
    for j in range(kinds.shape[0]):
        k = widths[j]
        op_qubits = qubits[j, :k]
        buffer = static_buffer if sources[j] == 0 else binding_buffer
        start = offsets[j]
        kind = kinds[j]
        if kind == CX:
            apply_cx(state, op_qubits[0], op_qubits[1])
        elif kind == DIAG:
            apply_diag(state, op_qubits, buffer[start : start + (1 << k)])
        elif kind == CTRL:
            m = buffer[start : start + 4].reshape((2, 2))
            apply_controlled(state, op_qubits[0], aux[j, 0], aux[j, 1], m)
        else:
            d = 1 << k
            m = buffer[start : start + d * d].reshape((d, d))
            if kind == PERM:
                apply_perm(state, op_qubits, m)
            elif k == 1:
                apply_1q(state, op_qubits[0], m)
            elif k == 2:
                apply_2q(state, op_qubits[0], op_qubits[1], m)
            else:
                apply_dense(state, op_qubits, m)


@njit(cache=True, nogil=True)
def pauli_values(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """Value of every Pauli term (see module docstring), serially; terms sharing an x mask
    share one pass over the state (diagonal terms read only probabilities)."""
    values = np.zeros(x_masks.shape[0], dtype=np.complex128)
    order = np.argsort(x_masks, kind="mergesort")
    start = 0
    num_terms = x_masks.shape[0]
    while start < num_terms:
        x = x_masks[order[start]]
        stop = start
        while stop < num_terms and x_masks[order[stop]] == x:
            stop += 1
        for i in range(state.shape[0]):
            a = state[i]
            if x == 0:
                p = complex(a.real * a.real + a.imag * a.imag, 0.0)
            else:
                p = np.conj(state[i ^ x]) * a
            for t in range(start, stop):
                term = order[t]
                if _parity(i & z_masks[term]):
                    values[term] -= p
                else:
                    values[term] += p
        start = stop
    return values


@njit(cache=True, nogil=True)
def program_pauli_values(
    num_qubits: int,
    kinds: np.ndarray,
    qubits: np.ndarray,
    widths: np.ndarray,
    aux: np.ndarray,
    sources: np.ndarray,
    offsets: np.ndarray,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
) -> np.ndarray:
    """One binding, serially: run the program from |0...0> and return every term's value."""
    state = _state_after(num_qubits, kinds, qubits, widths, aux, sources, offsets, static_buffer, binding_buffer)
    return pauli_values(state, x_masks, z_masks)


@njit(cache=True, nogil=True)
def _state_after(
    num_qubits: int,
    kinds: np.ndarray,
    qubits: np.ndarray,
    widths: np.ndarray,
    aux: np.ndarray,
    sources: np.ndarray,
    offsets: np.ndarray,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
) -> np.ndarray:
    state = np.zeros(1 << num_qubits, dtype=static_buffer.dtype)
    state[0] = 1.0
    run_program(state, kinds, qubits, widths, aux, sources, offsets, static_buffer, binding_buffer)
    return state


@njit(cache=True, nogil=True, parallel=True)
def sweep_pauli_values(
    num_qubits: int,
    kinds: np.ndarray,
    qubits: np.ndarray,
    widths: np.ndarray,
    aux: np.ndarray,
    sources: np.ndarray,
    offsets: np.ndarray,
    static_buffer: np.ndarray,
    binding_buffers: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
) -> np.ndarray:
    """For each binding b (row of ``binding_buffers``): run the program from |0...0> and return
    every Pauli term's value, shape (bindings, terms). Parallel over bindings."""
    num_bindings = binding_buffers.shape[0]
    out = np.empty((num_bindings, x_masks.shape[0]), dtype=np.complex128)
    for b in prange(num_bindings):
        out[b, :] = program_pauli_values(
            num_qubits,
            kinds,
            qubits,
            widths,
            aux,
            sources,
            offsets,
            static_buffer,
            binding_buffers[b],
            x_masks,
            z_masks,
        )
    return out


@njit(cache=True, nogil=True, parallel=True)
def sweep_probabilities(
    num_qubits: int,
    kinds: np.ndarray,
    qubits: np.ndarray,
    widths: np.ndarray,
    aux: np.ndarray,
    sources: np.ndarray,
    offsets: np.ndarray,
    static_buffer: np.ndarray,
    binding_buffers: np.ndarray,
) -> np.ndarray:
    """Probabilities |psi_b|^2 of every binding's final state, shape (bindings, 2**n)."""
    num_bindings = binding_buffers.shape[0]
    out = np.empty((num_bindings, 1 << num_qubits), dtype=np.float64)
    for b in prange(num_bindings):
        state = _state_after(
            num_qubits, kinds, qubits, widths, aux, sources, offsets, static_buffer, binding_buffers[b]
        )
        for i in range(state.shape[0]):
            out[b, i] = state[i].real * state[i].real + state[i].imag * state[i].imag
    return out


@njit(cache=True, nogil=True, parallel=True)
def apply_group_par(
    state: np.ndarray,
    low: int,
    high: np.ndarray,
    kinds: np.ndarray,
    qubits: np.ndarray,
    widths: np.ndarray,
    aux: np.ndarray,
    sources: np.ndarray,
    offsets: np.ndarray,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
) -> None:
    """Apply a group of ops chunk by chunk (see ``aqrt.engine.blocking``), parallel over chunks.

    A chunk is the 2**(low + h) amplitudes varying over qubits 0..low-1 and ``high`` (sorted),
    gathered as 2**h contiguous runs; local qubit low + b stands for ``high[b]``.
    """
    h = high.shape[0]
    run = 1 << low
    local_size = run << h
    num_chunks = state.shape[0] // local_size
    run_starts = np.zeros(1 << h, dtype=np.int64)
    for j in range(1 << h):
        for b in range(h):
            if (j >> b) & 1:
                run_starts[j] |= 1 << high[b]
    for chunk in prange(num_chunks):
        base = _insert_zeros(np.int64(chunk) << low, high)
        buffer = np.empty(local_size, dtype=state.dtype)
        for j in range(1 << h):
            start = base + run_starts[j]
            local = j * run
            for i in range(run):
                buffer[local + i] = state[start + i]
        run_program(buffer, kinds, qubits, widths, aux, sources, offsets, static_buffer, binding_buffer)
        for j in range(1 << h):
            start = base + run_starts[j]
            local = j * run
            for i in range(run):
                state[start + i] = buffer[local + i]


# -- parallel kernels (wide states, one op at a time) ---------------------------------------------


@njit(cache=True, nogil=True, parallel=True)
def apply_1q_par(state: np.ndarray, q: int, m: np.ndarray) -> None:
    """Dense 2x2 on qubit q, parallel over amplitude pairs."""
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
    """Dense 2**k x 2**k on ``qubits``, parallel over chunks of amplitude groups."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = _offsets(qubits)
    sorted_qubits = np.sort(qubits)
    groups = state.shape[0] >> k
    num_chunks = (groups + _CHUNK - 1) // _CHUNK
    for chunk in prange(num_chunks):
        buffer = np.empty(d, dtype=state.dtype)
        for g in range(chunk * _CHUNK, min(groups, (chunk + 1) * _CHUNK)):
            base = _insert_zeros(g, sorted_qubits)
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
    """Generalised permutation on ``qubits``, parallel over chunks of amplitude groups."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = _offsets(qubits)
    sorted_qubits = np.sort(qubits)
    rows, factors = _perm_of(m)
    groups = state.shape[0] >> k
    num_chunks = (groups + _CHUNK - 1) // _CHUNK
    for chunk in prange(num_chunks):
        buffer = np.empty(d, dtype=state.dtype)
        for g in range(chunk * _CHUNK, min(groups, (chunk + 1) * _CHUNK)):
            base = _insert_zeros(g, sorted_qubits)
            for j in range(d):
                buffer[j] = state[base + offsets[j]]
            for c in range(d):
                state[base + offsets[rows[c]]] = factors[c] * buffer[c]


@njit(cache=True, nogil=True, parallel=True)
def apply_controlled_par(state: np.ndarray, target: int, control_mask: int, control_value: int, m: np.ndarray) -> None:
    """Multi-controlled 2x2 on ``target``, parallel over amplitude pairs."""
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


_WHT_MIN_TERMS = 8  # from this many terms sharing an x mask, a Walsh-Hadamard transform per chunk pays


@njit(cache=True, nogil=True)
def _walsh_hadamard(buffer: np.ndarray) -> None:
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


@njit(cache=True, nogil=True, parallel=True)
def pauli_values_par(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """As :func:`pauli_values`, parallel over chunks of amplitudes (one pass per distinct x mask).

    With many terms per x mask, each chunk's products are Walsh-Hadamard transformed once, so a
    term costs one lookup per chunk instead of a parity per amplitude.
    """
    num_terms = x_masks.shape[0]
    values = np.zeros(num_terms, dtype=np.complex128)
    order = np.argsort(x_masks, kind="mergesort")
    size = state.shape[0]
    chunk_size = min(_CHUNK, size)
    num_chunks = size // chunk_size
    start = 0
    while start < num_terms:
        x = x_masks[order[start]]
        stop = start
        while stop < num_terms and x_masks[order[stop]] == x:
            stop += 1
        group = stop - start
        use_transform = group >= _WHT_MIN_TERMS
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
                _walsh_hadamard(buffer)
                for t in range(group):
                    z = z_masks[order[start + t]]
                    value = buffer[z & (chunk_size - 1)]
                    partial[chunk, t] = -value if _parity(first & z) else value
                continue
            for i in range(first, first + chunk_size):
                a = state[i]
                if x == 0:
                    p = complex(a.real * a.real + a.imag * a.imag, 0.0)
                else:
                    p = np.conj(state[i ^ x]) * a
                for t in range(group):
                    if _parity(i & z_masks[order[start + t]]):
                        partial[chunk, t] -= p
                    else:
                        partial[chunk, t] += p
        for t in range(group):
            values[order[start + t]] = partial[:, t].sum()
        start = stop
    return values


@njit(cache=True, nogil=True, parallel=True)
def probabilities_par(state: np.ndarray) -> np.ndarray:
    """|psi|^2, parallel."""
    out = np.empty(state.shape[0], dtype=np.float64)
    for i in prange(state.shape[0]):
        out[i] = state[i].real * state[i].real + state[i].imag * state[i].imag
    return out
