"""Bound programs run with numpy alone: a process's first small jobs, before numba is loaded.

A fresh process would otherwise wait for numba's import and the ``small`` tier of kernels (about
0.7 s from numba's cache, seconds to compile them the first time on a machine) before its first
Bell job; this interpreter runs such a job in microseconds and imports nothing but numpy. The
local backend uses it only while the ``small`` tier for the job's precision is not loaded in the
process, and only for jobs small enough for the event loop (:mod:`aqrt.backends.local.warmup`);
once the kernels are loaded the numba serial paths run everything.

Every op kind of :mod:`aqrt.engine.ops` runs here, in its conventions (qubit q is bit q of an
amplitude index; a k-qubit op's matrix has ``qubits[j]`` as bit j of its row and column index):

- one-qubit dense and permutation ops: the 2x2 update of each amplitude pair (``apply_1q``'s),
  one batched matrix product on a view of the state
- CX: the target's amplitude pairs swapped where the control bit is set
- CTRL: the 2x2 update on the target's pairs where ``(index & mask) == value``
- SEL: the first 2x2 on the target's pairs where the control bit is 0, the second where it is 1
  (one batched product of both on a view of the state)
- DIAG: ``state[i] *= diag[bits of i at qubits]``
- dense and permutation ops on k >= 2 qubits: the matrix contracted with the state's k axes

Term values and probabilities are what :mod:`aqrt.engine.kernels.reductions` and
:func:`aqrt.engine.simulate.serial_probabilities` compute: products of amplitudes in the
state's precision, sums in float64, term values complex128, probabilities float64 (|a|^2 in the
state's precision). The amplitudes agree with the numba kernels' to rounding, not bit for bit:
numba's kernels may contract a product and a sum into one fused multiply-add and group terms
in SIMD lanes, numpy rounds each step; so probabilities can differ in their last bits, and a
seeded Sampler draw that lands within that difference of a boundary between two outcomes (about
1e-16 of a shot's chance for complex128 states) could pick the neighbouring outcome.
"""

from __future__ import annotations

import numpy as np

from .ops import CTRL, CX, DENSE, DIAG, PERM, SEL, BoundProgram

__all__ = ["MAX_QUBITS", "final_state", "probabilities", "run_program", "term_values"]

MAX_QUBITS = 16  # widest state this interpreter runs (2**16 amplitudes: milliseconds per op)

_indices: dict[int, np.ndarray] = {}  # 2**n amplitude indices per width, shared by every program


def _amplitude_indices(num_qubits: int) -> np.ndarray:
    indices = _indices.get(num_qubits)
    if indices is None:
        indices = _indices[num_qubits] = np.arange(1 << num_qubits, dtype=np.int64)
    return indices


def _pair_update(state: np.ndarray, target: int, m: np.ndarray) -> None:
    """2x2 ``m`` on every amplitude pair of ``target`` (state viewed as (high, 2, low))."""
    pairs = state.reshape(-1, 2, 1 << target)
    pairs[...] = m @ pairs


def _pairs_where(indices: np.ndarray, target: int, mask: int, value: int) -> np.ndarray:
    """Indices with ``target``'s bit clear and ``(index & mask) == value``."""
    return indices[(indices & (mask | (1 << target))) == value]


def _controlled(state: np.ndarray, indices: np.ndarray, target: int, mask: int, value: int, m: np.ndarray) -> None:
    low = _pairs_where(indices, target, mask & ~(1 << target), value & ~(1 << target))
    high = low | (1 << target)
    a0 = state[low]
    a1 = state[high]
    state[low] = m[0, 0] * a0 + m[0, 1] * a1
    state[high] = m[1, 0] * a0 + m[1, 1] * a1


def _select(state: np.ndarray, target: int, control: int, matrices: np.ndarray) -> None:
    """``matrices[0]`` on ``target``'s amplitude pairs where the ``control`` bit is 0,
    ``matrices[1]`` where it is 1: one batched 2x2 product on a view of the state (axes above,
    at and between the two bits), not two updates of gathered indices (~20 numpy calls)."""
    high, low = max(target, control), min(target, control)
    view = state.reshape(-1, 2, 1 << (high - low - 1), 2, 1 << low)  # axes 1 and 3: bits high, low
    if control == high:  # (above, control, between, target, below)
        view[...] = matrices[None, :, None] @ view
    else:  # (above, target, between, control, below) as (above, between, control, target, below)
        pairs = view.transpose(0, 2, 3, 1, 4)
        pairs[...] = matrices[None, None] @ pairs


def _cx(state: np.ndarray, indices: np.ndarray, control: int, target: int) -> None:
    low = _pairs_where(indices, target, 1 << control, 1 << control)
    high = low | (1 << target)
    state[low], state[high] = state[high], state[low]


def _diag(state: np.ndarray, indices: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> None:
    sub = np.zeros_like(indices)
    for b, q in enumerate(qubits):
        sub |= ((indices >> int(q)) & 1) << b
    state *= diag[sub]


def _dense(state: np.ndarray, num_qubits: int, qubits: np.ndarray, m: np.ndarray) -> None:
    """``m`` on ``qubits`` by contraction: the state as a tensor of n axes, axis n-1-q for qubit q
    (C order), the matrix as 2k axes, rows then columns, bit k-1 first in each."""
    k = qubits.shape[0]
    tensor = state.reshape((2,) * num_qubits)
    matrix = m.reshape((2,) * (2 * k))
    column_axes = [k + (k - 1 - j) for j in range(k)]
    state_axes = [num_qubits - 1 - int(q) for q in qubits]
    moved = np.tensordot(matrix, tensor, axes=(column_axes, state_axes))
    # moved's axes: the rows (bits k-1..0 of the op, i.e. qubits[k-1]..qubits[0]), then the rest.
    row_targets = [num_qubits - 1 - int(qubits[k - 1 - r]) for r in range(k)]
    state[:] = np.moveaxis(moved, list(range(k)), row_targets).reshape(-1)


def run_program(state: np.ndarray, program: BoundProgram, binding: int = 0) -> None:
    """Apply every op of ``program`` (binding ``binding``'s entries) to ``state`` in place
    (a C-contiguous array of ``2**program.num_qubits`` amplitudes: its views are updated)."""
    if state.shape != (1 << program.num_qubits,) or not state.flags.c_contiguous:
        raise ValueError(
            f"state must be a C-contiguous array of shape ({1 << program.num_qubits},), got shape {state.shape}"
        )
    ops = program.ops
    num_qubits = program.num_qubits
    indices = _amplitude_indices(num_qubits)
    binding_buffer = program.binding_buffers[binding]
    for j in range(ops.num_ops):
        kind = int(ops.kinds[j])
        width = int(ops.widths[j])
        qubits = ops.qubits[j, :width]
        buffer = program.static_buffer if ops.sources[j] == 0 else binding_buffer
        start = int(ops.offsets[j])
        if kind == CX:
            _cx(state, indices, int(qubits[0]), int(qubits[1]))
        elif kind == DIAG:
            _diag(state, indices, qubits, buffer[start : start + (1 << width)])
        elif kind == CTRL:
            m = buffer[start : start + 4].reshape(2, 2)
            _controlled(state, indices, int(qubits[0]), int(ops.aux[j, 0]), int(ops.aux[j, 1]), m)
        elif kind == SEL:
            _select(state, int(qubits[0]), int(qubits[1]), buffer[start : start + 8].reshape(2, 2, 2))
        elif kind in (DENSE, PERM):
            d = 1 << width
            m = buffer[start : start + d * d].reshape(d, d)
            if width == 1:
                _pair_update(state, int(qubits[0]), m)
            else:
                _dense(state, num_qubits, qubits, m)
        else:
            raise ValueError(f"unknown op kind {kind} at op {j}")


def final_state(program: BoundProgram, binding: int = 0) -> np.ndarray:
    """The state after ``program`` (one binding) from |0...0>, in the program's precision."""
    if program.num_qubits > MAX_QUBITS:
        raise ValueError(f"the numpy interpreter runs states of up to {MAX_QUBITS} qubits, not {program.num_qubits}")
    state = np.zeros(1 << program.num_qubits, dtype=program.dtype)
    state[0] = 1.0
    run_program(state, program, binding)
    return state


_TERM_BLOCK_ELEMENTS = 1 << 14  # terms are reduced in blocks of about this many (term, amplitude) pairs


def _pauli_values(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """sum_i (-1)^popcount(i & z) conj(psi[i ^ x]) psi[i] per term, as ``pauli_values`` computes
    it: diagonal terms (x = 0) are signed sums of |psi|^2; otherwise the amplitudes pair up as
    (i, i ^ x) with bit ``high`` (x's highest) of i clear, and with p = conj(psi[i ^ x]) psi[i]
    (in the state's precision) a term is 2 sum sign(i) Re(p), or 2i sum sign(i) Im(p) when
    popcount(x & z) is odd: the same formula, so the imaginary part of a Hermitian term's value
    is an exact zero here too. Terms are reduced a block at a time, each block in a few numpy
    calls over a (terms, amplitudes) table (a 20-term observable at 8 qubits: ~110 µs, not 260)."""
    indices = _amplitude_indices(int(state.shape[0]).bit_length() - 1)
    values = np.zeros(x_masks.shape[0], dtype=np.complex128)
    squares = (state.real * state.real + state.imag * state.imag).astype(np.float64)
    block = max(1, _TERM_BLOCK_ELEMENTS // indices.shape[0])
    for first in range(0, x_masks.shape[0], block):
        x = np.asarray(x_masks[first : first + block], dtype=np.int64)
        z = np.asarray(z_masks[first : first + block], dtype=np.int64)
        signs = 1.0 - 2.0 * (np.bitwise_count(indices[None, :] & z[:, None]) & 1)
        diagonal = x == 0
        values[first : first + block][diagonal] = signs[diagonal] @ squares
        if diagonal.all():
            continue
        x, z, signs = x[~diagonal], z[~diagonal], signs[~diagonal]
        high = np.array([int(v).bit_length() - 1 for v in x], dtype=np.int64)
        paired = ((indices[None, :] >> high[:, None]) & 1) == 0  # i with x's highest bit clear
        product = np.conj(state[indices[None, :] ^ x[:, None]]) * state[None, :]
        odd = (np.bitwise_count(x & z) & 1).astype(bool)
        weights = np.where(paired, signs, 0.0)
        real_sums = 2.0 * np.sum(weights * product.real.astype(np.float64), axis=1)
        imaginary_sums = 2.0 * np.sum(weights * product.imag.astype(np.float64), axis=1)
        values[first : first + block][~diagonal] = np.where(odd, 1j * imaginary_sums, real_sums + 0j)
    return values


def term_values(program: BoundProgram, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """Every Pauli term's value for every binding, shape (bindings, terms), complex128: what
    :func:`aqrt.engine.simulate.run_serial` returns."""
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    for b in range(program.num_bindings):
        out[b] = _pauli_values(final_state(program, b), x_masks, z_masks)
    return out


def probabilities(program: BoundProgram, start: int, stop: int) -> np.ndarray:
    """|psi_b|^2 for bindings start..stop-1, shape (stop - start, 2**n), float64: what
    :func:`aqrt.engine.simulate.serial_probabilities` returns."""
    out = np.empty((stop - start, 1 << program.num_qubits))
    for b in range(start, stop):
        state = final_state(program, b)
        out[b - start] = state.real**2 + state.imag**2
    return out
