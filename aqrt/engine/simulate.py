"""Running bound programs: expectation values, probabilities and final states.

Small states (fewer than ``WIDE_QUBITS`` qubits) run whole programs in one kernel call per batch
of bindings (parallel over bindings, :mod:`aqrt.engine.kernels.interpreter`); wide states run one
binding at a time, cache-blocked (:mod:`aqrt.engine.blocking`), with kernels parallel over
amplitudes. States start at |0...0> and have the program's dtype; term values are complex128
(see :mod:`aqrt.engine.kernels.reductions`), probabilities float64.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .blocking import Group, schedule_groups
from .kernels.interpreter import (
    apply_group_par,
    program_pauli_values,
    run_program,
    sweep_pauli_values,
    sweep_probabilities,
)
from .kernels.reductions import pauli_values_par, probabilities_par
from .kernels.registry import apply_op
from .ops import WIDE_QUBITS, BoundProgram

__all__ = [
    "WIDE_QUBITS",
    "EngineCancelled",
    "binding_batches",
    "evolve",
    "final_state",
    "probabilities",
    "run_serial",
    "serial_probabilities",
    "term_values",
]

_BATCH_AMPLITUDES = 1 << 22  # bindings per kernel call are capped so their states fit in cache/RAM


class Cancel(Protocol):
    """Anything with ``is_set()``: the engine polls it between kernel calls."""

    def is_set(self) -> bool: ...


class EngineCancelled(Exception):
    """The cancel flag was seen between kernel calls."""


def _check(cancel: Cancel | None) -> None:
    if cancel is not None and cancel.is_set():
        raise EngineCancelled


def _batches(program: BoundProgram) -> list[tuple[int, int]]:
    per_call = max(1, _BATCH_AMPLITUDES >> program.num_qubits)
    return [(start, min(program.num_bindings, start + per_call)) for start in range(0, program.num_bindings, per_call)]


def _initial_state(program: BoundProgram) -> np.ndarray:
    state = np.zeros(1 << program.num_qubits, dtype=program.dtype)
    state[0] = 1.0
    return state


def final_state(program: BoundProgram, binding: int = 0, *, parallel: bool | None = None) -> np.ndarray:
    """The state after the program for one binding, from |0...0>."""
    state = _initial_state(program)
    wide = program.num_qubits >= WIDE_QUBITS if parallel is None else parallel
    if wide:
        _run_wide(state, program, binding, None)
    else:
        run_program(state, program.ops.as_tuple(), program.static_buffer, program.binding_buffers[binding])
    return state


def evolve(
    state: np.ndarray, program: BoundProgram, binding: int = 0, cancel: Cancel | None = None, *, serial: bool = False
) -> None:
    """Apply the program (one binding's matrices) to ``state`` in place.

    ``state`` must have ``2**program.num_qubits`` amplitudes of the program's dtype. This is how
    callers that keep their own states (the dynamic-circuit route: a state per outcome history)
    run the unitary stretches between measurements. ``serial``: serial kernels only.
    """
    if state.shape != (1 << program.num_qubits,) or state.dtype != program.dtype:
        raise ValueError(
            f"state must have shape ({1 << program.num_qubits},) and dtype {program.dtype}, "
            f"got {state.shape} {state.dtype}"
        )
    if program.num_qubits >= WIDE_QUBITS and not serial:
        _run_wide(state, program, binding, cancel)
    else:
        _check(cancel)
        run_program(state, program.ops.as_tuple(), program.static_buffer, program.binding_buffers[binding])


def run_serial(program: BoundProgram, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """Term values of every binding with serial kernels only (safe on any thread)."""
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    ops = program.ops.as_tuple()
    for b in range(program.num_bindings):
        out[b] = program_pauli_values(
            program.num_qubits, ops, program.static_buffer, program.binding_buffers[b], x_masks, z_masks
        )
    return out


def serial_probabilities(program: BoundProgram, start: int, stop: int) -> np.ndarray:
    """|psi_b|^2 for bindings start..stop-1 with serial kernels only (safe on any thread)."""
    out = np.empty((stop - start, 1 << program.num_qubits))
    state = np.empty(1 << program.num_qubits, dtype=program.dtype)
    ops = program.ops.as_tuple()
    for b in range(start, stop):
        state[:] = 0
        state[0] = 1.0
        run_program(state, ops, program.static_buffer, program.binding_buffers[b])
        out[b - start] = state.real**2 + state.imag**2
    return out


def term_values(
    program: BoundProgram, x_masks: np.ndarray, z_masks: np.ndarray, cancel: Cancel | None = None
) -> np.ndarray:
    """Value of every Pauli term for every binding, shape (bindings, terms)."""
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    if program.num_qubits < WIDE_QUBITS:
        for start, stop in _batches(program):
            _check(cancel)
            out[start:stop] = sweep_pauli_values(
                program.num_qubits,
                program.ops.as_tuple(),
                program.static_buffer,
                program.binding_buffers[start:stop],
                x_masks,
                z_masks,
            )
        return out
    for b in range(program.num_bindings):
        state = _initial_state(program)
        _run_wide(state, program, b, cancel)
        out[b] = pauli_values_par(state, x_masks, z_masks)
    return out


def probabilities(program: BoundProgram, start: int, stop: int, cancel: Cancel | None = None) -> np.ndarray:
    """|psi_b|^2 for bindings start..stop-1, shape (stop - start, 2**n)."""
    _check(cancel)
    if program.num_qubits < WIDE_QUBITS:
        return sweep_probabilities(
            program.num_qubits, program.ops.as_tuple(), program.static_buffer, program.binding_buffers[start:stop]
        )
    out = np.empty((stop - start, 1 << program.num_qubits))
    for b in range(start, stop):
        state = _initial_state(program)
        _run_wide(state, program, b, cancel)
        out[b - start] = probabilities_par(state)
    return out


def binding_batches(program: BoundProgram) -> list[tuple[int, int]]:
    """Binding ranges whose probabilities fit one call of :func:`probabilities`."""
    return _batches(program)


def _run_wide(state: np.ndarray, program: BoundProgram, binding: int, cancel: Cancel | None) -> None:
    """Cache-blocked: one pass over the state per group of ops (see ``blocking``); an op too
    wide for a chunk runs alone with its amplitude-parallel kernel from the op-kernel table."""
    groups: list[Group] | None = program.cache.get("groups")
    if groups is None:
        groups = program.cache["groups"] = schedule_groups(program)
    binding_buffer = program.binding_buffers[binding]
    for group in groups:
        _check(cancel)
        if group.standalone:
            apply_op(state, group.ops, 0, program.static_buffer, binding_buffer, parallel=True)
        else:
            apply_group_par(state, group.low, group.high, group.ops.as_tuple(), program.static_buffer, binding_buffer)
