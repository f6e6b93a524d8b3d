"""Running lowered programs: expectation values, probabilities and final states.

Small states run whole programs in one kernel call per batch of bindings (parallel over
bindings); wide states run op by op with kernels parallel over amplitudes.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from . import kernels
from .blocking import schedule_groups
from .lowering import Program

__all__ = ["WIDE_QUBITS", "EngineCancelled", "final_state", "probabilities", "run_serial", "term_values"]

WIDE_QUBITS = 17  # from this width on, one binding at a time with amplitude-parallel kernels
_BATCH_AMPLITUDES = 1 << 22  # bindings per kernel call are capped so their states fit in cache/RAM


class Cancel(Protocol):
    """Anything with ``is_set()``: the engine polls it between kernel calls."""

    def is_set(self) -> bool: ...


class EngineCancelled(Exception):
    """The cancel flag was seen between kernel calls."""


def _check(cancel: Cancel | None) -> None:
    if cancel is not None and cancel.is_set():
        raise EngineCancelled


def _batches(program: Program) -> list[tuple[int, int]]:
    per_call = max(1, _BATCH_AMPLITUDES >> program.num_qubits)
    return [(start, min(program.num_bindings, start + per_call)) for start in range(0, program.num_bindings, per_call)]


def final_state(program: Program, binding: int = 0, *, parallel: bool | None = None) -> np.ndarray:
    """The state after the program for one binding, from |0...0>."""
    state = np.zeros(1 << program.num_qubits, dtype=program.dtype)
    state[0] = 1.0
    wide = program.num_qubits >= WIDE_QUBITS if parallel is None else parallel
    if wide:
        _run_wide(state, program, binding, None)
    else:
        kernels.run_program(state, *program.arrays(), program.static_buffer, program.binding_buffers[binding])
    return state


def run_serial(program: Program, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """Term values of every binding with serial kernels only (safe on any thread)."""
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    arrays = program.arrays()
    for b in range(program.num_bindings):
        out[b] = kernels.program_pauli_values(
            program.num_qubits, *arrays, program.static_buffer, program.binding_buffers[b], x_masks, z_masks
        )
    return out


def term_values(program: Program, x_masks: np.ndarray, z_masks: np.ndarray, cancel: Cancel | None = None) -> np.ndarray:
    """Value of every Pauli term for every binding, shape (bindings, terms)."""
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    if program.num_qubits < WIDE_QUBITS:
        for start, stop in _batches(program):
            _check(cancel)
            out[start:stop] = kernels.sweep_pauli_values(
                program.num_qubits,
                *program.arrays(),
                program.static_buffer,
                program.binding_buffers[start:stop],
                x_masks,
                z_masks,
            )
        return out
    for b in range(program.num_bindings):
        state = np.zeros(1 << program.num_qubits, dtype=program.dtype)
        state[0] = 1.0
        _run_wide(state, program, b, cancel)
        out[b] = kernels.pauli_values_par(state, x_masks, z_masks)
    return out


def probabilities(program: Program, start: int, stop: int, cancel: Cancel | None = None) -> np.ndarray:
    """|psi_b|^2 for bindings start..stop-1, shape (stop - start, 2**n)."""
    _check(cancel)
    if program.num_qubits < WIDE_QUBITS:
        return kernels.sweep_probabilities(
            program.num_qubits, *program.arrays(), program.static_buffer, program.binding_buffers[start:stop]
        )
    out = np.empty((stop - start, 1 << program.num_qubits))
    for b in range(start, stop):
        state = np.zeros(1 << program.num_qubits, dtype=program.dtype)
        state[0] = 1.0
        _run_wide(state, program, b, cancel)
        out[b - start] = kernels.probabilities_par(state)
    return out


def binding_batches(program: Program) -> list[tuple[int, int]]:
    """Binding ranges whose probabilities fit one call of :func:`probabilities`."""
    return _batches(program)


def _run_wide(state: np.ndarray, program: Program, binding: int, cancel: Cancel | None) -> None:
    """Cache-blocked: one pass over the state per group of ops (see ``blocking``)."""
    groups = program.cache.get("groups")
    if groups is None:
        groups = program.cache["groups"] = schedule_groups(program)
    binding_buffer = program.binding_buffers[binding]
    for group in groups:
        _check(cancel)
        if group.standalone:
            _apply_alone(state, group, program.static_buffer, binding_buffer)
            continue
        kernels.apply_group_par(
            state,
            group.low,
            group.high,
            group.kinds,
            group.qubits,
            group.widths,
            group.aux,
            group.sources,
            group.offsets,
            program.static_buffer,
            binding_buffer,
        )


def _apply_alone(state: np.ndarray, group: Any, static_buffer: np.ndarray, binding_buffer: np.ndarray) -> None:
    """One op too wide for a chunk, with the amplitude-parallel kernels."""
    k = int(group.widths[0])
    op_qubits = np.ascontiguousarray(group.qubits[0, :k])
    buffer = static_buffer if group.sources[0] == 0 else binding_buffer
    start = int(group.offsets[0])
    kind = int(group.kinds[0])
    if kind == kernels.CX:
        m = np.array([[0, 1], [1, 0]], dtype=state.dtype)
        kernels.apply_controlled_par(state, int(op_qubits[1]), 1 << int(op_qubits[0]), 1 << int(op_qubits[0]), m)
    elif kind == kernels.DIAG:
        kernels.apply_diag_par(state, op_qubits, buffer[start : start + (1 << k)])
    elif kind == kernels.CTRL:
        m = buffer[start : start + 4].reshape(2, 2)
        kernels.apply_controlled_par(state, int(op_qubits[0]), int(group.aux[0, 0]), int(group.aux[0, 1]), m)
    else:
        d = 1 << k
        m = buffer[start : start + d * d].reshape(d, d)
        if kind == kernels.PERM:
            kernels.apply_perm_par(state, op_qubits, m)
        elif k == 1:
            kernels.apply_1q_par(state, int(op_qubits[0]), m)
        else:
            kernels.apply_dense_par(state, op_qubits, m)
