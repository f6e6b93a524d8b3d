"""Compile the kernels (or load them from numba's on-disk cache) tier by tier, on tiny inputs.

The tiers are listed in :mod:`aqrt.engine.kernels`: a job's first run compiles only the tiers
it needs (:mod:`aqrt.backends.local.warmup` picks them), ``aqrt warmup`` and :func:`warmup`
with no ``tiers`` compile them all. Each tier calls its entry points once with the argument
types production passes, so that running a job afterwards compiles nothing more; the op
examples come from the op-kernel table (:data:`aqrt.engine.kernels.registry.OP_KERNELS`).

A real compile (not a cache load) says so once, when it starts, on the ``aqrt.engine`` logger
at INFO: the first run on a machine takes seconds per tier, later runs load in well under one.
Importing this module registers :func:`warmup` as the loader that :mod:`aqrt.engine.simulate`'s
entry points call for a tier they are about to use and the job did not load beforehand (a
SWAP's ``ops`` tier after a Bell job): so those compiles get the notice too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .kernels import (
    NOISY,
    OPS,
    SAMPLING,
    SMALL,
    SWEEP,
    TIERS,
    WIDE,
    dtype_name,
    mark_loaded,
    set_loader,
    tier_loaded,
)
from .kernels.interpreter import (
    apply_group_par,
    program_pauli_values,
    run_basic_program,
    run_program,
)
from .kernels.reductions import pauli_values, pauli_values_par, probabilities_par
from .kernels.registry import OP_KERNELS, OpKernel
from .kernels.sampling import pack_outcomes, state_outcomes
from .kernels.sweeps import binding_row, sweep_probabilities, sweep_term_values
from .ops import CTRL, DENSE, DIAG, PERM, SEL, OpArrays, entry_count
from .simulate import is_basic
from .threads import team_thread_ids

__all__ = ["TIERS", "is_warm", "warmup"]

logger = logging.getLogger("aqrt.engine")

_NUM_QUBITS = 3
_EXAMPLE_WIDTH = {DENSE: 3, CTRL: 3}  # example op width of a row that takes any width (else 2)

# A tier's entry points call those of the tiers it requires (a sweep runs run_program per
# binding): warming a tier warms them too, so that each loaded flag stands for its own kernels.
_REQUIRES: dict[str, tuple[str, ...]] = {
    SMALL: (),
    OPS: (),
    SWEEP: (OPS,),
    WIDE: (OPS,),
    NOISY: (SMALL, OPS),
    SAMPLING: (),
}

# What the notice calls each tier's kernels.
_NAMES = {
    SMALL: "small-state",
    OPS: "every-gate",
    SWEEP: "sweep",
    WIDE: "wide-state",
    NOISY: "noisy-circuit",
    SAMPLING: "sampling",
}


def _with_requirements(tiers: Iterable[str]) -> list[str]:
    """``tiers`` and the tiers they require, each once, requirements first."""
    ordered: list[str] = []
    for tier in tiers:
        if tier not in _REQUIRES:
            raise ValueError(f"unknown kernel tier {tier!r}; the tiers are {', '.join(TIERS)}")
        for needed in (*_REQUIRES[tier], tier):
            if needed not in ordered:
                ordered.append(needed)
    return ordered


def is_warm(dtype: str = "complex128", tiers: Iterable[str] = TIERS) -> bool:
    """True once :func:`warmup` has loaded ``tiers`` (default: all) for ``dtype`` in this process.

    Called before every tiny job (on the event loop), so the dtype's name and the tiers with
    their requirements are looked up, not recomputed: both are pure functions of the
    arguments. Whether the tiers are loaded is asked every time (nothing is remembered).
    """
    name = dtype_name(dtype)
    if isinstance(tiers, tuple):
        ordered = _ORDERED_TIERS.get(tiers)
        if ordered is None:
            ordered = _ORDERED_TIERS[tiers] = tuple(_with_requirements(tiers))
    else:
        ordered = tuple(_with_requirements(tiers))
    for tier in ordered:  # noqa: SIM110 (a loop, not all() over a generator: asked before every tiny job)
        if not tier_loaded(tier, name):
            return False
    return True


# is_warm's look-up: a tuple of tiers -> those tiers and the tiers they require (valid ones only:
# _with_requirements raises for the others).
_ORDERED_TIERS: dict[tuple[str, ...], tuple[str, ...]] = {}


def warmup(dtype: str = "complex128", tiers: Iterable[str] = TIERS) -> None:
    """Compile or load the kernels of ``tiers`` (default: every tier) for states of ``dtype``
    (complex128 or complex64), and the tiers they require; tiers loaded already cost nothing."""
    np_dtype = np.dtype(dtype)
    if np_dtype not in (np.complex128, np.complex64):
        raise ValueError(f"the engine runs complex128 or complex64 states, not {np_dtype.name}")
    pending = [tier for tier in _with_requirements(tiers) if not tier_loaded(tier, np_dtype.name)]
    if not pending:
        return
    with _compile_notice(pending, np_dtype.name):
        for tier in pending:
            _COMPILE[tier](np_dtype)
            mark_loaded(tier, np_dtype.name)


@contextmanager
def _compile_notice(tiers: list[str], dtype: str) -> Iterator[None]:
    """Logs the notice at numba's first real compile inside the block (a load from numba's
    cache sends no compile event), and at DEBUG how long the block took if it compiled."""
    from numba.core import event

    names = ", ".join(_NAMES[tier] for tier in tiers)
    message = (
        f"compiling the engine's {names} kernels for {dtype} "
        "(the first time on this machine only: numba caches them on disk)"
    )
    compiled = False

    class NoticeOnCompile(event.Listener):
        def on_start(self, _event: Any) -> None:
            nonlocal compiled
            if not compiled:
                compiled = True
                logger.info("%s", message)

        def on_end(self, _event: Any) -> None:
            pass

    start = time.perf_counter()
    with event.install_listener("numba:compile", NoticeOnCompile()):
        yield
    if compiled:
        logger.debug("the %s kernels for %s are compiled (%.1f s)", names, dtype, time.perf_counter() - start)


# -- example ops ------------------------------------------------------------------------------------


def _example_entries(kind: int, width: int, dtype: np.dtype) -> np.ndarray:
    """Identity entries of the kind (any values would do: only the types matter)."""
    if kind == DIAG:
        return np.ones(entry_count(DIAG, width), dtype=dtype)
    if kind == SEL:
        return np.tile(np.eye(2, dtype=dtype).reshape(-1), 2)
    size = int(np.sqrt(entry_count(kind, width)))
    return np.eye(size, dtype=dtype).reshape(-1)


def _example_op(kind: int, width: int, dtype: np.dtype) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, qubits, entries, aux) of an op on ``width`` qubits, in descending order (not the
    sorted case only)."""
    qubits = np.arange(width, dtype=np.int64)[::-1].copy()
    aux = np.zeros(2, dtype=np.int64)
    if kind == CTRL:
        aux[0] = int(sum(1 << int(q) for q in qubits[1:]))
    return kind, qubits, _example_entries(kind, width, dtype), aux


def _row_width(row: OpKernel) -> int:
    return row.width if row.width is not None else _EXAMPLE_WIDTH.get(row.kind, 2)


class _Program:
    """Example ops packed as production packs them (:func:`aqrt.engine.lowering` ``_pack``)."""

    def __init__(self, examples: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], dtype: np.dtype) -> None:
        count = len(examples)
        widest = max(qubits.shape[0] for _, qubits, _, _ in examples)
        ops = OpArrays(
            kinds=np.array([kind for kind, _, _, _ in examples], dtype=np.int64),
            qubits=np.zeros((count, widest), dtype=np.int64),
            widths=np.array([qubits.shape[0] for _, qubits, _, _ in examples], dtype=np.int64),
            aux=np.array([aux for _, _, _, aux in examples], dtype=np.int64).reshape(count, 2),
            sources=np.zeros(count, dtype=np.int64),
            offsets=np.cumsum([0] + [entries.shape[0] for _, _, entries, _ in examples[:-1]]).astype(np.int64),
        )
        for j, (_, qubits, _, _) in enumerate(examples):
            ops.qubits[j, : qubits.shape[0]] = qubits
        self.ops = ops
        self.arrays = ops.as_tuple()  # the form production passes
        self.static_buffer = np.concatenate([entries for _, _, entries, _ in examples]).astype(dtype)
        self.binding_buffers = np.zeros((2, 0), dtype=dtype)
        self.masks = np.array([0, 1], dtype=np.int64)
        self.state = np.zeros(1 << _NUM_QUBITS, dtype=dtype)
        self.state[0] = 1


def _every_row_program(dtype: np.dtype) -> _Program:
    """One example op per serial row of the op-kernel table: every branch of ``run_program``."""
    rows = [row for row in OP_KERNELS if not row.parallel]
    return _Program([_example_op(row.kind, _row_width(row), dtype) for row in rows], dtype)


def _apply_rows(parallel: bool, dtype: np.dtype) -> None:
    state = np.zeros(1 << _NUM_QUBITS, dtype=dtype)
    state[0] = 1
    for row in OP_KERNELS:
        if row.parallel == parallel:
            _, qubits, entries, aux = _example_op(row.kind, _row_width(row), dtype)
            row.apply(state, qubits, entries, aux)


# -- the tiers --------------------------------------------------------------------------------------


def _compile_small(dtype: np.dtype) -> None:
    """``run_basic_program``, the serial term values, a tiny Sampler job's run and draws, and one
    binding's entries from its angles (what a small job calls)."""
    examples = [_example_op(row.kind, _row_width(row), dtype) for row in OP_KERNELS if not row.parallel]
    examples = [op for op in examples if op[1].shape[0] == 1 or op[0] not in (DENSE, PERM)]
    examples.append(_example_op(PERM, 1, dtype))  # a one-qubit permutation: its own branch
    program = _Program(examples, dtype)
    if not is_basic(program.ops):
        raise AssertionError("the small tier's example program has an op run_basic_program does not run")
    binding = program.binding_buffers[0]
    run_basic_program(program.state, program.arrays, program.static_buffer, binding)
    pauli_values(program.state, program.masks, program.masks)
    outcomes = np.empty(2, dtype=np.int64)
    state_outcomes(program.state, np.array([0.25, 0.75]), outcomes)
    pack_outcomes(outcomes, np.array([0, 1], dtype=np.int64), np.zeros((1, 2, 1), dtype=np.uint8)[0])
    _compile_binding_row(dtype)


def _compile_ops(dtype: np.dtype) -> None:
    """``run_program`` (every op kind), its term values, and the serial rows called alone."""
    _apply_rows(False, dtype)
    program = _every_row_program(dtype)
    binding = program.binding_buffers[0]
    run_program(program.state, program.arrays, program.static_buffer, binding)
    program_pauli_values(_NUM_QUBITS, program.arrays, program.static_buffer, binding, program.masks, program.masks)
    _compile_binding_row(dtype)


def _compile_sweep(dtype: np.dtype) -> None:
    """Whole programs for many bindings, parallel over bindings (:mod:`.kernels.sweeps`): one
    signature per dtype serves sweeps bound from angles and from per-binding rows alike."""
    program = _every_row_program(dtype)
    rows = np.zeros((2, 0), dtype=dtype)  # binding rows (bindings, entries)
    angles = np.zeros((2, 0))  # angle table (bindings, columns)
    recipes = np.zeros((0, 5), dtype=np.int64)
    factors = np.zeros((0, 4), dtype=np.int64)
    constants = np.zeros((0, 4), dtype=np.complex128)
    imaginary = np.zeros(program.masks.shape[0], dtype=np.int64)
    common = (_NUM_QUBITS, program.arrays, program.static_buffer, 0, False, angles, recipes, factors, constants, rows)
    sweep_term_values(*common, program.masks, program.masks, imaginary, False)
    sweep_probabilities(*common)
    team_thread_ids()  # what aqrt.engine.threads.pin_team runs once the parallel tiers load


def _compile_wide(dtype: np.dtype) -> None:
    """The cache-blocked group kernel, the amplitude-parallel rows and reductions, and a wide
    program's binding entries from angles."""
    _apply_rows(True, dtype)
    program = _every_row_program(dtype)
    no_high = np.zeros(0, dtype=np.int64)  # one chunk: the whole state (the ops use every qubit)
    for from_zero in (False, True):
        apply_group_par(
            program.state,
            _NUM_QUBITS,
            no_high,
            program.arrays,
            program.static_buffer,
            program.binding_buffers[0],
            from_zero,
            0,
        )
    pauli_values_par(program.state, program.masks, program.masks)
    probabilities_par(program.state)
    _compile_binding_row(dtype)
    team_thread_ids()


def _compile_binding_row(dtype: np.dtype) -> None:
    """One binding's entries from angles (a program bound from its circuit's sweep plan), which
    every tier that runs a single binding makes before it runs."""
    recipes = np.array([[DENSE, 0, 0, 1, 1]], dtype=np.int64)  # one ry from angle column 0
    row = np.zeros(4, dtype=dtype)
    binding_row(
        np.zeros(1), recipes, np.array([[2, 0, 0, 0]], dtype=np.int64), np.zeros((0, 4), dtype=np.complex128), row
    )


def _compile_noisy(dtype: np.dtype) -> None:
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


def _compile_sampling(dtype: np.dtype) -> None:
    """Shots drawn from probabilities and packed (:mod:`aqrt.engine.sampling`): float64
    probabilities whatever the state's precision."""
    from .kernels.sampling import probability_total, sort_draws, sorted_outcomes

    probabilities = np.array([[0.5, 0.0, 0.0, 0.5]])[0]  # a row of the (bindings, 2**n) array
    draws = np.array([0.25, 0.75])
    outcomes = np.empty(2, dtype=np.int64)
    order = np.empty(2, dtype=np.int64)
    sort_draws(draws, probability_total(probabilities), order)
    sorted_outcomes(probabilities, draws, order, outcomes)
    packed = np.zeros((1, 2, 1), dtype=np.uint8)
    pack_outcomes(outcomes, np.array([0, 1], dtype=np.int64), packed[0])


def _load_tier(tier: str, dtype: str) -> None:
    warmup(dtype, (tier,))


_COMPILE: dict[str, Callable[[np.dtype], None]] = {
    SMALL: _compile_small,
    OPS: _compile_ops,
    SWEEP: _compile_sweep,
    WIDE: _compile_wide,
    NOISY: _compile_noisy,
    SAMPLING: _compile_sampling,
}

set_loader(_load_tier)  # the engine's entry points load the tier they are about to use
