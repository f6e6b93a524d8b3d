"""Running bound programs: expectation values, probabilities and final states.

Small states (fewer than ``WIDE_QUBITS`` qubits) run whole programs in one kernel call per batch
of bindings (parallel over bindings, :mod:`aqrt.engine.kernels.sweeps`: a sweep bound from
angles has each binding's gate entries made inside the kernel; the Pauli terms of several
bindings' states are reduced together); wide states run one binding at a time, cache-blocked
(:mod:`aqrt.engine.blocking`), with kernels parallel over amplitudes, and so does a single
binding from ``ONE_BINDING_WIDE_QUBITS`` qubits on (parallel over amplitudes beats one thread
there). States start at |0...0> and have the program's dtype; term values are complex128 (see
:mod:`aqrt.engine.kernels.reductions`), probabilities float64.

One binding of a smaller state runs serially, through ``run_basic_program`` when the program has
only the common ops (see :mod:`aqrt.engine.kernels.interpreter`), so that a first small job
compiles the ``small`` tier of kernels only (tiers in :mod:`aqrt.engine.kernels`). Each entry
point loads the tier it is about to use (:func:`~aqrt.engine.kernels.ensure_loaded`: through the
warm-up, which says so when it compiles), except the serial paths (:func:`run_serial`,
:func:`serial_probabilities`), which run inline on the event loop and never compile: they raise
:class:`KernelsNotLoaded` when their tier is not loaded in this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from .blocking import Group, schedule_groups
from .kernels import OPS, SMALL, SWEEP, WIDE, KernelsNotLoaded, dtype_name, ensure_loaded, tier_loaded
from .kernels.interpreter import (
    apply_group_par,
    program_pauli_values,
    run_basic_program,
    run_program,
)
from .kernels.reductions import pauli_values, pauli_values_par, probabilities_par
from .kernels.registry import apply_op
from .kernels.sampling import pack_outcomes, state_outcomes
from .kernels.sweeps import binding_row, sweep_probabilities, sweep_term_values
from .ops import CTRL, CX, DIAG, ONE_BINDING_WIDE_QUBITS, SEL, WIDE_QUBITS, BoundProgram, OpArrays, runs_wide

__all__ = [
    "ONE_BINDING_WIDE_QUBITS",
    "WIDE_QUBITS",
    "EngineCancelled",
    "KernelsNotLoaded",
    "binding_batches",
    "evolve",
    "final_state",
    "is_basic",
    "probabilities",
    "run_serial",
    "serial_outcomes",
    "serial_pack",
    "serial_probabilities",
    "serial_tier",
    "term_values",
]

_BATCH_AMPLITUDES = 1 << 22  # bindings per kernel call are capped so their states fit in cache/RAM
# A wide state whose amplitudes are read and dropped (values, probabilities) is kept for the next
# run of its size, up to this many bytes (24 qubits in complex128): on this project's VM the first
# touch of fresh pages cost 10-25 ms per 16 MiB, as much as a 20-qubit circuit's gates.
SCRATCH_STATE_BYTES = 1 << 28
_scratch_states: dict[tuple[int, str], np.ndarray] = {}
_scratch_lock = threading.Lock()


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


@contextmanager
def _scratch_state(program: BoundProgram, *, cleared: bool = True) -> Iterator[np.ndarray]:
    """|0...0> for a wide run whose state is read and dropped: the last such state of this size
    and dtype is reused (zeroed) instead of allocated; one is kept, for the next run. Not
    ``cleared``: a reused state keeps whatever it holds (for a run from zero, ``_run_wide``'s
    ``from_zero``, which clears it chunk by chunk as it goes)."""
    key = (program.num_qubits, program.dtype.str)
    with _scratch_lock:
        state = _scratch_states.pop(key, None)
        if state is None:
            _scratch_states.clear()  # another size: let the kept one go before allocating
    if state is None:
        state = np.zeros(1 << program.num_qubits, dtype=program.dtype)
    elif cleared:
        state[:] = 0
    state[0] = 1.0
    try:
        yield state
    finally:
        if state.nbytes <= SCRATCH_STATE_BYTES:
            with _scratch_lock:
                _scratch_states.clear()
                _scratch_states[key] = state


def is_basic(ops: OpArrays) -> bool:
    """Whether ``run_basic_program`` runs every op of ``ops``: CX, select, diagonal and controlled
    ops of any width, dense and permutation ops on one qubit."""
    kinds = ops.kinds
    return bool(np.all((kinds == CX) | (kinds == SEL) | (kinds == DIAG) | (kinds == CTRL) | (ops.widths == 1)))


def _is_basic(program: BoundProgram) -> bool:
    basic: bool | None = program.cache.get("basic")
    if basic is None:
        basic = program.cache["basic"] = is_basic(program.ops)
    return basic


def serial_tier(program: BoundProgram) -> str:
    """The tier of kernels that runs ``program`` serially: ``small`` for the common ops, else ``ops``."""
    return SMALL if _is_basic(program) else OPS


def _run_serially(state: np.ndarray, program: BoundProgram, binding: int) -> None:
    run = run_basic_program if _is_basic(program) else run_program
    run(state, program.ops.as_tuple(), program.static_buffer, _binding_row(program, binding))


def _serial_values(program: BoundProgram, binding: int, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    if _is_basic(program):  # two calls, not one jitted wrapper: the small tier compiles less
        state = _initial_state(program)
        run_basic_program(state, program.ops.as_tuple(), program.static_buffer, _binding_row(program, binding))
        return pauli_values(state, x_masks, z_masks)
    return program_pauli_values(
        program.num_qubits,
        program.ops.as_tuple(),
        program.static_buffer,
        _binding_row(program, binding),
        x_masks,
        z_masks,
    )


def _load(tier: str, program: BoundProgram) -> None:
    ensure_loaded(tier, dtype_name(program.dtype))


def _require_loaded(program: BoundProgram) -> None:
    tier = serial_tier(program)
    dtype = dtype_name(program.dtype)
    if not tier_loaded(tier, dtype):
        raise KernelsNotLoaded(tier, dtype)


def final_state(program: BoundProgram, binding: int = 0, *, parallel: bool | None = None) -> np.ndarray:
    """The state after the program for one binding, from |0...0>."""
    state = _initial_state(program)
    wide = program.num_qubits >= WIDE_QUBITS if parallel is None else parallel
    if wide:
        _run_wide(state, program, binding, None)
    else:
        _load(serial_tier(program), program)
        _run_serially(state, program, binding)
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
        _load(serial_tier(program), program)
        _run_serially(state, program, binding)


def run_serial(program: BoundProgram, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """Term values of every binding with serial kernels only (safe on any thread, the event
    loop's included: it never compiles).

    Raises:
        KernelsNotLoaded: the program's serial tier (:func:`serial_tier`) is not loaded yet.
    """
    _require_loaded(program)
    num_bindings = program.num_bindings
    if num_bindings == 1:  # a tiny job's: the kernel's own array, no copy into another
        return _serial_values(program, 0, x_masks, z_masks).reshape(1, -1)
    out = np.empty((num_bindings, x_masks.shape[0]), dtype=np.complex128)
    for b in range(num_bindings):
        out[b] = _serial_values(program, b, x_masks, z_masks)
    return out


def serial_outcomes(program: BoundProgram, binding: int, uniforms: np.ndarray) -> np.ndarray:
    """The outcomes of draws ``uniforms`` (doubles in [0, 1)) from binding ``binding``'s final
    state: what :func:`serial_probabilities` and numpy's ``searchsorted`` of the draws scaled by
    the probabilities' sum give, bit for bit, in two kernel calls (a tiny Sampler job's: the
    program, then the draws from its state). For the programs the ``small`` tier runs
    (:func:`serial_tier`).

    Raises:
        KernelsNotLoaded: the ``small`` tier is not loaded yet.
        ValueError: the program needs the ``ops`` tier.
    """
    if not _is_basic(program):
        raise ValueError("serial_outcomes runs the programs of the small tier only (see serial_tier)")
    _require_loaded(program)
    state = _initial_state(program)
    run_basic_program(state, program.ops.as_tuple(), program.static_buffer, _binding_row(program, binding))
    out = np.empty(uniforms.shape[0], dtype=np.int64)
    state_outcomes(state, uniforms, out)
    return out


def serial_pack(outcomes: np.ndarray, columns: np.ndarray, out: np.ndarray) -> None:
    """``out`` (shots, bytes; zeroed) <- the outcomes' bits as ``BitArray`` bytes, clbit ``c``
    from bit ``columns[c]`` (negative: never measured, 0). The ``small`` tier loads this
    packing kernel too: call it after :func:`serial_outcomes` (which checks the tier), and it
    compiles nothing."""
    pack_outcomes(outcomes, columns, out)


def serial_probabilities(program: BoundProgram, start: int, stop: int) -> np.ndarray:
    """|psi_b|^2 for bindings start..stop-1 with serial kernels only (safe on any thread, the
    event loop's included: it never compiles).

    Raises:
        KernelsNotLoaded: the program's serial tier (:func:`serial_tier`) is not loaded yet.
    """
    _require_loaded(program)
    out = np.empty((stop - start, 1 << program.num_qubits))
    state = np.empty(1 << program.num_qubits, dtype=program.dtype)
    for b in range(start, stop):
        state[:] = 0
        state[0] = 1.0
        _run_serially(state, program, b)
        out[b - start] = state.real**2 + state.imag**2
    return out


def term_values(
    program: BoundProgram, x_masks: np.ndarray, z_masks: np.ndarray, cancel: Cancel | None = None
) -> np.ndarray:
    """Value of every Pauli term for every binding, shape (bindings, terms)."""
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    if _runs_serially(program, program.num_bindings):
        _check(cancel)  # one binding: serially (what a sweep runs per binding), without the sweep tier
        _load(serial_tier(program), program)
        out[0] = _serial_values(program, 0, x_masks, z_masks)
        return out
    if not runs_wide(program.num_qubits, program.num_bindings):
        _load(SWEEP, program)
        imaginary, transform = _term_flags(x_masks, z_masks, program.num_qubits)
        batches = _batches(program)
        for start, stop in batches:
            _check(cancel)
            values = sweep_term_values(
                program.num_qubits,
                program.ops.as_tuple(),
                program.static_buffer,
                *_sweep_arguments(program, start, stop),
                x_masks,
                z_masks,
                imaginary,
                transform,
            )
            if len(batches) == 1:
                return values  # the kernel's own array: no copy (320 KB for 1000 bindings of 20 terms)
            out[start:stop] = values
        return out
    for b in range(program.num_bindings):
        with _scratch_state(program, cleared=False) as state:
            _run_wide(state, program, b, cancel, from_zero=True)
            out[b] = pauli_values_par(state, x_masks, z_masks)
    return out


def probabilities(program: BoundProgram, start: int, stop: int, cancel: Cancel | None = None) -> np.ndarray:
    """|psi_b|^2 for bindings start..stop-1, shape (stop - start, 2**n)."""
    _check(cancel)
    if _runs_serially(program, stop - start):
        out = np.empty((1, 1 << program.num_qubits))
        state = _initial_state(program)  # one binding: serially, as a sweep computes it
        _load(serial_tier(program), program)
        _run_serially(state, program, start)
        out[0] = state.real**2 + state.imag**2
        return out
    if not runs_wide(program.num_qubits, stop - start):
        _load(SWEEP, program)
        return sweep_probabilities(
            program.num_qubits,
            program.ops.as_tuple(),
            program.static_buffer,
            *_sweep_arguments(program, start, stop),
        )
    out = np.empty((stop - start, 1 << program.num_qubits))
    for b in range(start, stop):
        with _scratch_state(program, cleared=False) as state:
            _run_wide(state, program, b, cancel, from_zero=True)
            out[b - start] = probabilities_par(state)
    return out


def _runs_serially(program: BoundProgram, bindings: int) -> bool:
    """Whether ``bindings`` of ``program`` run with the serial kernels: one binding of a state
    below ``ONE_BINDING_WIDE_QUBITS`` qubits."""
    return bindings == 1 and not runs_wide(program.num_qubits, bindings)


_NO_RECIPES = (
    np.zeros((0, 5), dtype=np.int64),
    np.zeros((0, 4), dtype=np.int64),
    np.zeros((0, 4), dtype=np.complex128),
)


def _sweep_arguments(
    program: BoundProgram, start: int, stop: int
) -> tuple[int, bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sweep kernels' arguments for bindings start..stop-1 after the program's: row width,
    basic, angles, recipes, factors, constants, rows (see ``kernels.sweeps.sweep_term_values``)."""
    angles = program.angles
    basic = _is_basic(program)
    if angles is not None:
        rows = np.zeros((stop - start, 0), dtype=program.dtype)
        return (
            angles.row_width,
            basic,
            angles.angles[start:stop],
            angles.recipes,
            angles.factors,
            angles.constants,
            rows,
        )
    buffers = program.binding_buffers[start:stop]
    no_angles = np.zeros((stop - start, 0))
    return (buffers.shape[1], basic, no_angles, *_NO_RECIPES, buffers)


def _term_flags(x_masks: np.ndarray, z_masks: np.ndarray, num_qubits: int) -> tuple[np.ndarray, bool]:
    """Per term, whether its value is imaginary (popcount(x & z) odd); and whether the diagonal
    terms are many enough (more than ``num_qubits / 2``) for one Walsh-Hadamard transform of the
    probabilities, which costs about that many terms' passes, to give them all."""
    imaginary = (np.bitwise_count(np.asarray(x_masks) & np.asarray(z_masks)) & 1).astype(np.int64)
    transform = bool(np.count_nonzero(np.asarray(x_masks) == 0) > max(1, num_qubits // 2))
    return imaginary, transform


def binding_batches(program: BoundProgram) -> list[tuple[int, int]]:
    """Binding ranges whose probabilities fit one call of :func:`probabilities`."""
    return _batches(program)


def _run_wide(
    state: np.ndarray, program: BoundProgram, binding: int, cancel: Cancel | None, *, from_zero: bool = False
) -> None:
    """Cache-blocked: one pass over the state per group of ops (see ``blocking``); an op too
    wide for a chunk runs alone with its amplitude-parallel kernel from the op-kernel table.
    ``from_zero``: run from |0...0> whatever ``state`` holds (the first group clears it as it goes);
    later groups then skip the chunks on qubits no group has touched yet (zero, and kept zero)."""
    _load(WIDE, program)
    groups: list[Group] | None = program.cache.get("groups")
    if groups is None:
        groups = program.cache["groups"] = schedule_groups(program)
    binding_buffer = _binding_row(program, binding)
    every_qubit = (1 << program.num_qubits) - 1
    touched = 0 if from_zero else every_qubit  # qubits an amplitude may have set so far
    if from_zero and (not groups or groups[0].standalone):
        state[:] = 0
        state[0] = 1.0
        from_zero = False
    for group in groups:
        _check(cancel)
        if group.standalone:
            apply_op(state, group.ops, 0, program.static_buffer, binding_buffer, parallel=True)
            touched = every_qubit
        else:
            apply_group_par(
                state,
                group.low,
                group.high,
                group.ops.as_tuple(),
                program.static_buffer,
                binding_buffer,
                from_zero,
                0 if from_zero else every_qubit & ~touched,
            )
            touched |= (1 << group.low) - 1
            for qubit in group.high:
                touched |= 1 << int(qubit)
        from_zero = False


def _binding_row(program: BoundProgram, binding: int) -> np.ndarray:
    """The binding's entries: its row of the binding buffers, or, for a program bound from
    angles whose buffers are not made, the row made from its angles by a kernel (loaded with
    every tier that runs one binding: small, ops and wide)."""
    angles = program.angles
    if angles is None or program.materialized:
        return program.binding_buffers[binding]
    row = np.empty(angles.row_width, dtype=program.dtype)
    binding_row(angles.angles[binding], angles.recipes, angles.factors, angles.constants, row)
    return row
