"""The program interpreter: whole programs in one kernel call (op format in :mod:`aqrt.engine.ops`).

``ops`` is an :class:`~aqrt.engine.ops.OpArrays` record as its plain tuple (``as_tuple()``),
unpacked in :func:`run_program` only; an op's entries are read from ``static_buffer`` or
``binding_buffer`` (one binding's row of the program's binding buffers).

- ``run_program``           every op in order on a state, serially (the jitted op dispatcher)
- ``run_basic_program``     the same for programs of the common ops only
  (:func:`aqrt.engine.simulate.is_basic`)
- ``program_pauli_values``  one binding from |0...0>, then every Pauli term's value, serially

Sweeps over many bindings run on :mod:`.sweeps` (each binding's gate entries made in the kernel
from its angles, parallel over bindings).
- ``apply_group_par``       a group of ops chunk by chunk on a wide state, parallel over chunks

numba caches each kernel's machine code keyed on its own source file: the kernels it calls from
:mod:`.apply` and :mod:`.reductions` are compiled into it, so changing those files alone leaves
this module's cached code stale (a change here, or deleting the ``*.nbi``/``*.nbc`` files,
recompiles it).

Why two serial interpreters: numba compiles a function together with every kernel it may call,
so ``run_program`` costs the compile of every op kernel (the k-qubit dense and permutation ones
sort their qubits, which alone is seconds cold) before its first op runs. ``run_basic_program``
calls only the CX, select, diagonal, controlled and one-qubit kernels, the ops of most small circuits
(Bell, GHZ, rotation layers with CX or CZ): a first job of such a circuit compiles only those.
It has no jitted wrappers (its callers call ``pauli_values`` on its state themselves): numba
optimises a function's whole call tree again in every jitted caller, seconds per layer cold.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..ops import CTRL, CX, DENSE, DIAG, PERM, SEL, OpTuple
from .apply import apply_1q, apply_2q, apply_controlled, apply_cx, apply_dense, apply_diag, apply_perm, apply_select
from .bits import insert_zeros
from .reductions import pauli_values

__all__ = [
    "apply_group_par",
    "program_pauli_values",
    "run_basic_program",
    "run_program",
]


@njit(cache=True, nogil=True)
def run_program(state: np.ndarray, ops: OpTuple, static_buffer: np.ndarray, binding_buffer: np.ndarray) -> None:
    """Apply every op of ``ops`` to ``state`` in order, serially.

    The branches are the serial rows of :data:`aqrt.engine.kernels.registry.OP_KERNELS`, written
    out because numba dispatches statically (tests check the two agree bit for bit).
    """
    kinds, qubits, widths, aux, sources, offsets = ops
    for j in range(kinds.shape[0]):
        k = widths[j]
        op_qubits = qubits[j, :k]
        buffer = static_buffer if sources[j] == 0 else binding_buffer
        start = offsets[j]
        kind = kinds[j]
        if kind == CX:
            apply_cx(state, op_qubits[0], op_qubits[1])
        elif kind == SEL:
            m0 = buffer[start : start + 4].reshape((2, 2))
            m1 = buffer[start + 4 : start + 8].reshape((2, 2))
            apply_select(state, op_qubits[0], op_qubits[1], m0, m1)
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
def run_basic_program(state: np.ndarray, ops: OpTuple, static_buffer: np.ndarray, binding_buffer: np.ndarray) -> None:
    """:func:`run_program` for the programs :func:`aqrt.engine.simulate.is_basic` accepts
    (CX, select, diagonal and controlled ops, one-qubit matrices), with their kernels only.

    Every op goes to the kernel ``run_program`` gives it, except a one-qubit permutation (X, Y,
    fused with phases), which goes to ``apply_controlled`` with no controls: a 2x2 matrix on
    every amplitude pair, without compiling the k-qubit permutation kernel. Its zero entries
    add exact zeros, so the amplitudes are ``apply_perm``'s: the same bits for X and Y (entries
    0, +-1, +-i), within a rounding of the product otherwise.
    """
    kinds, qubits, widths, aux, sources, offsets = ops
    for j in range(kinds.shape[0]):
        k = widths[j]
        op_qubits = qubits[j, :k]
        buffer = static_buffer if sources[j] == 0 else binding_buffer
        start = offsets[j]
        kind = kinds[j]
        if kind == CX:
            apply_cx(state, op_qubits[0], op_qubits[1])
        elif kind == SEL:
            m0 = buffer[start : start + 4].reshape((2, 2))
            m1 = buffer[start + 4 : start + 8].reshape((2, 2))
            apply_select(state, op_qubits[0], op_qubits[1], m0, m1)
        elif kind == DIAG:
            apply_diag(state, op_qubits, buffer[start : start + (1 << k)])
        elif kind == CTRL:
            m = buffer[start : start + 4].reshape((2, 2))
            apply_controlled(state, op_qubits[0], aux[j, 0], aux[j, 1], m)
        elif k != 1:
            raise ValueError("run_basic_program: an op on several qubits that only run_program runs")
        elif kind == DENSE:
            apply_1q(state, op_qubits[0], buffer[start : start + 4].reshape((2, 2)))
        else:
            apply_controlled(state, op_qubits[0], 0, 0, buffer[start : start + 4].reshape((2, 2)))


@njit(cache=True, nogil=True)
def _state_after(num_qubits: int, ops: OpTuple, static_buffer: np.ndarray, binding_buffer: np.ndarray) -> np.ndarray:
    state = np.zeros(1 << num_qubits, dtype=static_buffer.dtype)
    state[0] = 1.0
    run_program(state, ops, static_buffer, binding_buffer)
    return state


@njit(cache=True, nogil=True)
def program_pauli_values(
    num_qubits: int,
    ops: OpTuple,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
) -> np.ndarray:
    """One binding, serially: run the program from |0...0> and return every term's value."""
    state = _state_after(num_qubits, ops, static_buffer, binding_buffer)
    return pauli_values(state, x_masks, z_masks)


@njit(cache=True, nogil=True, parallel=True)
def apply_group_par(
    state: np.ndarray,
    low: int,
    high: np.ndarray,
    ops: OpTuple,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
    from_zero: bool = False,
    zero_outside: int = 0,
) -> None:
    """Apply a group of ops chunk by chunk (see :mod:`aqrt.engine.blocking`), parallel over chunks.

    A chunk is the 2**(low + h) amplitudes varying over qubits 0..low-1 and ``high`` (sorted),
    gathered as 2**h contiguous runs; local qubit low + b stands for ``high[b]``, and ``ops`` are
    in that local numbering. When ``high`` follows ``low`` without a gap, a chunk is one run of
    the state: it is updated in place, with no gather and scatter. With ``from_zero`` the state
    is taken as |0...0> whatever it holds (it is not read): each chunk starts from zeros, which
    spares the pass over the state that clearing it first would cost; and since a group's ops act
    within chunks, every chunk but the one holding amplitude 0 stays zero: those are only cleared.
    ``zero_outside``: qubits that are 0 in every non-zero amplitude (none of the earlier ops of a
    run from |0...0> touched them); a chunk on any of them is zero and stays zero: it is skipped.
    """
    h = high.shape[0]
    run = 1 << low
    local_size = run << h
    num_chunks = state.shape[0] // local_size
    contiguous = True  # high = low, low + 1, ...: each chunk is one run of the state, updated in place
    for b in range(h):
        if high[b] != low + b:
            contiguous = False
    run_starts = np.zeros(1 << h, dtype=np.int64)
    for j in range(1 << h):
        for b in range(h):
            if (j >> b) & 1:
                run_starts[j] |= 1 << high[b]
    for chunk in prange(num_chunks):
        base = insert_zeros(np.int64(chunk) << low, high)
        if base & zero_outside:
            continue
        if from_zero and base != 0:  # zeros, and the group's ops keep them zero
            if contiguous:
                state[base : base + local_size] = 0
            else:
                for j in range(1 << h):
                    start = base + run_starts[j]
                    for i in range(run):
                        state[start + i] = 0
            continue
        buffer = state[base : base + local_size] if contiguous else np.empty(local_size, dtype=state.dtype)
        if from_zero:
            buffer[:] = 0
            buffer[0] = 1
        elif not contiguous:
            for j in range(1 << h):
                start = base + run_starts[j]
                local = j * run
                for i in range(run):
                    buffer[local + i] = state[start + i]
        run_program(buffer, ops, static_buffer, binding_buffer)
        if contiguous:
            continue
        for j in range(1 << h):
            start = base + run_starts[j]
            local = j * run
            for i in range(run):
                state[start + i] = buffer[local + i]
