"""Compile every kernel once on tiny inputs (numba caches the machine code on disk).

Driven by the op-kernel table (:data:`aqrt.engine.kernels.registry.OP_KERNELS`): every row is
called once on an example op, then the example ops, packed into one program, go through every
program-level entry point (the interpreter, the sweeps, the cache-blocked group kernel and the
reductions), with the argument types production passes.
"""

from __future__ import annotations

import numpy as np

from .kernels.interpreter import (
    apply_group_par,
    program_pauli_values,
    run_program,
    sweep_pauli_values,
    sweep_probabilities,
)
from .kernels.reductions import pauli_values, pauli_values_par, probabilities_par
from .kernels.registry import OP_KERNELS, OpKernel
from .ops import CTRL, DENSE, DIAG, OpArrays, entry_count

__all__ = ["is_warm", "warmup"]

_NUM_QUBITS = 3
_EXAMPLE_WIDTH = {DENSE: 3, CTRL: 3}  # example op width of a row that takes any width (else 2)

_warm: set[str] = set()


def is_warm(dtype: str = "complex128") -> bool:
    """True once :func:`warmup` has run for ``dtype`` in this process."""
    return dtype in _warm


def warmup(dtype: str = "complex128") -> None:
    """Compile or load every kernel for states of ``dtype`` (complex128 or complex64)."""
    if dtype in _warm:
        return
    _compile(np.dtype(dtype))
    _warm.add(dtype)


def _example_entries(row: OpKernel, width: int, dtype: np.dtype) -> np.ndarray:
    """Identity entries of the row's kind (any values would do: only the types matter)."""
    if row.kind == DIAG:
        return np.ones(entry_count(DIAG, width), dtype=dtype)
    size = int(np.sqrt(entry_count(row.kind, width)))
    return np.eye(size, dtype=dtype).reshape(-1)


def _compile(dtype: np.dtype) -> None:
    state = np.zeros(1 << _NUM_QUBITS, dtype=dtype)
    state[0] = 1
    rows = []  # (kind, qubits, entries, aux) of every row's example op
    for row in OP_KERNELS:
        width = row.width if row.width is not None else _EXAMPLE_WIDTH.get(row.kind, 2)
        qubits = np.arange(width, dtype=np.int64)[::-1].copy()  # descending: not the sorted case only
        entries = _example_entries(row, width, dtype)
        aux = np.zeros(2, dtype=np.int64)
        if row.kind == CTRL:
            aux[0] = int(sum(1 << int(q) for q in qubits[1:]))
        row.apply(state, qubits, entries, aux)
        rows.append((row.kind, qubits, entries, aux))

    count = len(rows)
    widest = max(qubits.shape[0] for _, qubits, _, _ in rows)
    ops = OpArrays(
        kinds=np.array([kind for kind, _, _, _ in rows], dtype=np.int64),
        qubits=np.zeros((count, widest), dtype=np.int64),
        widths=np.array([qubits.shape[0] for _, qubits, _, _ in rows], dtype=np.int64),
        aux=np.array([aux for _, _, _, aux in rows], dtype=np.int64).reshape(count, 2),
        sources=np.zeros(count, dtype=np.int64),
        offsets=np.cumsum([0] + [entries.shape[0] for _, _, entries, _ in rows[:-1]]).astype(np.int64),
    )
    for j, (_, qubits, _, _) in enumerate(rows):
        ops.qubits[j, : qubits.shape[0]] = qubits
    arrays = ops.as_tuple()  # the form production passes
    static_buffer = np.concatenate([entries for _, _, entries, _ in rows]).astype(dtype)
    binding_buffers = np.zeros((2, 0), dtype=dtype)
    masks = np.array([0, 1], dtype=np.int64)

    run_program(state, arrays, static_buffer, binding_buffers[0])
    program_pauli_values(_NUM_QUBITS, arrays, static_buffer, binding_buffers[0], masks, masks)
    sweep_pauli_values(_NUM_QUBITS, arrays, static_buffer, binding_buffers, masks, masks)
    sweep_probabilities(_NUM_QUBITS, arrays, static_buffer, binding_buffers)
    no_high = np.zeros(0, dtype=np.int64)  # one chunk: the whole state (the ops use every qubit)
    apply_group_par(state, _NUM_QUBITS, no_high, arrays, static_buffer, binding_buffers[0])
    pauli_values(state, masks, masks)
    pauli_values_par(state, masks, masks)
    probabilities_par(state)
    _compile_trajectories(dtype)


def _compile_trajectories(dtype: np.dtype) -> None:
    """The trajectory kernels (:mod:`aqrt.engine.trajectories`): both public functions on a tiny
    circuit with a unitary mixture and a Kraus channel, and the wide path's channel kernels."""
    from .kernels.trajectories import choose_branch, draw_basis_states, reduced_density_par
    from .lowering import GateOp, LoweredCircuit
    from .noise import Channel
    from .trajectories import _prepare, trajectory_samples, trajectory_term_values

    flip = Channel.mixture([0.5, 0.5], [np.eye(4), np.diag([1.0, -1.0, -1.0, 1.0])])
    damping = Channel.from_kraus([np.diag([1.0, 0.5]), np.array([[0.0, np.sqrt(0.75)], [0.0, 0.0]])])
    hadamard = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
    mixtures_only = LoweredCircuit(2, [GateOp((0,), hadamard), GateOp((0, 1), channel=flip)], ())
    with_kraus = LoweredCircuit(2, [*mixtures_only.ops, GateOp((1,), channel=damping)], ())
    values = np.zeros((1, 0))
    masks = np.array([0, 1], dtype=np.int64)
    for lowered in (mixtures_only, with_kraus):
        trajectory_term_values(lowered, values, masks, masks, 2, np.random.default_rng(0), dtype=dtype)
        trajectory_samples(lowered, values, 2, np.random.default_rng(0), dtype=dtype)  # grouped
    trajectory_samples(mixtures_only, values, 2, np.random.default_rng(0), dtype=dtype, group=False)
    table = _prepare(with_kraus, values, dtype).channels
    state = np.full(4, 0.5, dtype=dtype)
    choose_branch(table, 1, 0.5, reduced_density_par(state, np.array([1], dtype=np.int64)))
    draw_basis_states(state, np.array([0.5]), np.empty(1, dtype=np.int64))
