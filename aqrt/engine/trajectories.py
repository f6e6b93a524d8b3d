"""Noisy simulation by Monte Carlo trajectories on the statevector (circuits with channel ops).

The lowered circuit is cut at its channel ops into unitary stretches; each stretch is bound with
the noiseless machinery (:meth:`LoweredCircuit.bind`: fused, classified, packed). A trajectory
runs the stretches in order from |0...0> and, at each channel, applies one branch picked at
random: a unitary mixture's branch i with its fixed probability p_i (an identity branch costs
nothing), a general Kraus channel's K_k with probability ||K_k psi||^2, then renormalised. The
average over trajectories of any quantity linear in rho is exact in expectation.

Every random number is drawn ahead from the caller's ``numpy.random.Generator``, in an order that
depends only on the inputs: one row of ``channels`` uniforms per trajectory (``channels + 1`` for
the sampler, the last one picks the basis state), trajectories in (binding, trajectory) order.
So results are the same for the same Generator state whatever the thread count, and the small and
wide paths draw the same numbers.

- Small widths (< ``simulate.WIDE_QUBITS``): the stretches are packed into one program and the
  trajectory kernels run batches of trajectories in parallel (:mod:`aqrt.engine.kernels.trajectories`).
  A batch holds at most ``simulate._BATCH_AMPLITUDES >> n`` trajectories (bounded work between
  cancellation polls); the states alive at once are one per work item being run.
- Wide: one trajectory at a time, amplitude-parallel and cache-blocked
  (:func:`aqrt.engine.simulate.evolve`). Only Kraus channels whose rest the trajectory drew cut
  the program there: a mixture channel is a dense op whose matrix each trajectory writes in, a
  Kraus channel's identity part is nothing (see ``wide_plan``), so a stretch between cuts costs
  the passes of a noiseless run.

A general Kraus channel is split as p * identity + (1 - p) * rest (:attr:`Channel.identity_split`):
its identity part is drawn ahead like a mixture's branch and costs nothing; only a trajectory that
draws the rest reads the state there. Trajectories of one binding whose draws pick the same
branches everywhere (no rest drawn) run the same operations, so they share one simulation; at a
device's error rates most do. A trajectory that draws some rest runs on its own, and on the small
path it starts at its first channel that does something, from the noiseless state there (computed
once per binding and channel): before it, it would have run the noiseless program bit for bit.

Cancellation is polled between batches (and between a wide trajectory's stretch groups).
Like :mod:`aqrt.engine.simulate`, this module loads numba: import it where the engine runs.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numba
import numpy as np

from . import simulate
from .kernels import trajectories as kernels
from .kernels.reductions import pauli_values_par
from .kernels.registry import select
from .lowering import GateOp, LoweredCircuit
from .noise import Channel
from .ops import DENSE, DIAG, PERM, BoundProgram, OpArrays

__all__ = ["trajectory_samples", "trajectory_term_values"]

_MAX_BATCH = 1 << 14  # trajectories per kernel call (bounds the uniforms and output held at once)
_MAX_BATCH_NUMBERS = 1 << 22  # uniforms per kernel call
_MOST_PER_CHUNK = 8
_WIDE_PLANS = 256  # wide plans (one per pattern of Kraus channels drawing their rest) kept at once


@dataclasses.dataclass
class _NoisyProgram:
    """A lowered circuit with channels, bound: its stretches and its channel table."""

    num_qubits: int
    stretches: list[BoundProgram]  # channels + 1 unitary stretches; channel c follows stretch c
    channels: kernels.ChannelTable
    branch_codes: list[np.ndarray]  # per mixture channel: branch -> the branch that stands for it (identities merged)
    identity_weights: np.ndarray  # per channel: a Kraus channel's identity weight p (drawn ahead), 0 for mixtures
    dense_branches: list[np.ndarray | None]  # per mixture channel: (branches, d*d) its unitaries, row-major
    _wide: dict[tuple[int, ...], list[_WideStretch]] = dataclasses.field(default_factory=dict)

    @property
    def num_channels(self) -> int:
        return len(self.stretches) - 1

    @property
    def num_bindings(self) -> int:
        return self.stretches[0].num_bindings

    def packed(self) -> tuple[BoundProgram, np.ndarray]:
        """The stretches as one program, and the segment bounds (see the kernels' docstring)."""
        program, bounds, _ = _concatenate(self.num_qubits, self.stretches, [])
        return program, bounds

    def wide_plan(self, rest: tuple[int, ...]) -> list[_WideStretch]:
        """The program cut at the Kraus channels ``rest`` only (those a trajectory draws the rest of),
        for the wide path (built once per cut pattern, a bounded number kept).

        A wide state costs a pass over memory per cache-blocked group, so neither unitary-mixture
        channels nor Kraus channels that drew their identity part cut the program: a mixture is a
        dense *slot* op whose entries live in the binding buffer, and a trajectory writes its
        chosen branch's matrix there before the stretch runs (identity branches too); a Kraus
        channel's identity part is nothing at all. So a stretch keeps one blocked schedule.
        """
        plan = self._wide.get(rest)
        if plan is None:
            if len(self._wide) >= _WIDE_PLANS:
                self._wide.clear()
            mixture = self.channels[2]
            plan = []
            for before, after in itertools.pairwise([-1, *rest, self.num_channels]):
                inside = range(before + 1, after)
                slots = [
                    (self.channels[0][c, : self.channels[1][c]], int(self.channels[1][c])) if mixture[c] else None
                    for c in inside
                ]
                program, _, offsets = _concatenate(self.num_qubits, self.stretches[before + 1 : after + 1], slots)
                mixtures = [c for c in inside if mixture[c]]
                plan.append(_WideStretch(program, mixtures, offsets, after if after < self.num_channels else -1))
            self._wide[rest] = plan
        return plan


@dataclasses.dataclass
class _WideStretch:
    """Stretches and the mixture channels between them as one program, then a Kraus channel (or none)."""

    program: BoundProgram
    mixtures: list[int]  # channel indices whose branch goes into a slot
    slot_offsets: list[int]  # where each slot's d*d entries start in a binding's row
    kraus: int  # the Kraus channel after this stretch (its rest drawn), -1 for none


def _prepare(lowered: LoweredCircuit, values: np.ndarray, dtype: Any) -> _NoisyProgram:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(lowered.parameter_names):
        raise ValueError(f"values must have shape (bindings, {len(lowered.parameter_names)}), got {values.shape}")
    stretches: list[BoundProgram] = []
    channel_ops: list[GateOp] = []
    current: list[GateOp] = []
    for op in lowered.ops:
        if op.channel is None:
            current.append(op)
            continue
        stretches.append(LoweredCircuit(lowered.num_qubits, current, lowered.parameter_names).bind(values, dtype=dtype))
        channel_ops.append(op)
        current = []
    stretches.append(LoweredCircuit(lowered.num_qubits, current, lowered.parameter_names).bind(values, dtype=dtype))
    table, codes = _channel_table(channel_ops, np.dtype(dtype))
    kraus_first = np.where(table[2] == 0, table[3], -1)
    has_identity = (kraus_first >= 0) & (table[5][np.maximum(kraus_first, 0)] == kernels.IDENTITY)
    identity_weights = np.where(has_identity, table[7][np.maximum(kraus_first, 0)], 0.0)
    dense: list[np.ndarray | None] = []
    dense_of: dict[int, np.ndarray] = {}  # id(channel) -> its unitaries, made once per channel object
    for op in channel_ops:
        channel = op.channel
        assert channel is not None
        if channel.unitaries is None:
            dense.append(None)
            continue
        if id(channel) not in dense_of:
            dense_of[id(channel)] = np.array([u.reshape(-1) for u in channel.unitaries], dtype=dtype)
        dense.append(dense_of[id(channel)])
    return _NoisyProgram(lowered.num_qubits, stretches, table, codes, identity_weights, dense)


def _branch_kind(unitary: np.ndarray) -> int:
    d = unitary.shape[0]
    if unitary[0, 0] != 0 and np.allclose(unitary, unitary[0, 0] * np.eye(d), rtol=0, atol=1e-12):
        return kernels.IDENTITY
    nonzero = np.abs(unitary) > 0
    if not (nonzero & ~np.eye(d, dtype=bool)).any():
        return DIAG
    if (nonzero.sum(axis=0) == 1).all() and (nonzero.sum(axis=1) == 1).all():
        return PERM
    return DENSE


def _channel_table(channel_ops: list[GateOp], dtype: np.dtype) -> tuple[kernels.ChannelTable, list[np.ndarray]]:
    """The channel table (see :mod:`aqrt.engine.kernels.trajectories`) and each channel's branch codes.

    A channel object used at many places (a noise model's usual case) has its branches stored once.
    """
    count = len(channel_ops)
    widest = max((len(op.qubits) for op in channel_ops), default=1)
    qubits = np.zeros((count, widest), dtype=np.int64)
    widths = np.zeros(count, dtype=np.int64)
    mixture = np.zeros(count, dtype=np.int64)
    first = np.zeros(count, dtype=np.int64)
    counts = np.zeros(count, dtype=np.int64)
    kinds: list[int] = []
    offsets: list[int] = []
    cumulative: list[float] = []
    parts: list[np.ndarray] = []
    size = 0
    codes: list[np.ndarray] = []
    stored: dict[int, tuple[int, np.ndarray]] = {}  # id(channel) -> (its first branch, its codes)
    for c, op in enumerate(channel_ops):
        channel: Channel | None = op.channel
        assert channel is not None
        qubits[c, : len(op.qubits)] = op.qubits
        widths[c] = len(op.qubits)
        mixture[c] = channel.is_unitary_mixture
        counts[c] = len(channel.kraus)
        if id(channel) in stored:
            first[c], code = stored[id(channel)]
            codes.append(code)
            continue
        first[c] = len(kinds)
        code = np.arange(counts[c], dtype=np.int64)
        if channel.is_unitary_mixture:
            assert channel.probabilities is not None and channel.unitaries is not None
            running = np.cumsum(channel.probabilities)
            running[-1] = 1.0
            identities = []
            for i, unitary in enumerate(channel.unitaries):
                kind = _branch_kind(unitary)
                entries = np.diagonal(unitary) if kind == DIAG else unitary.reshape(-1)
                if kind == kernels.IDENTITY:
                    entries = np.zeros(0, dtype=np.complex128)
                    identities.append(i)
                kinds.append(kind)
                offsets.append(size)
                parts.append(entries)
                size += entries.shape[0]
            cumulative.extend(running.tolist())
            if identities:
                code[identities] = identities[0]
        else:
            weight, rest = channel.identity_split
            operators = channel.kraus
            if weight > 0.0:  # the identity part first: drawn ahead, it never reads the state
                kinds.append(kernels.IDENTITY)
                offsets.append(size)
                parts.append(np.zeros(0, dtype=np.complex128))
                cumulative.append(1.0 if rest is None else weight)
                operators = () if rest is None else rest.kraus
                counts[c] = 1 + len(operators)
                code = np.arange(counts[c], dtype=np.int64)
            for operator in operators:
                kinds.append(DENSE)
                offsets.append(size)
                entries = np.concatenate([operator.reshape(-1), (operator.conj().T @ operator).reshape(-1)])
                parts.append(entries)
                size += entries.shape[0]
                cumulative.append(0.0)
        stored[id(channel)] = (int(first[c]), code)
        codes.append(code)
    entries_buffer = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)
    table: kernels.ChannelTable = (
        qubits,
        widths,
        mixture,
        first,
        counts,
        np.array(kinds, dtype=np.int64),
        np.array(offsets, dtype=np.int64),
        np.array(cumulative, dtype=np.float64),
        entries_buffer,
    )
    return table, codes


def _concatenate(
    num_qubits: int, programs: list[BoundProgram], slots: list[tuple[np.ndarray, int] | None]
) -> tuple[BoundProgram, np.ndarray, list[int]]:
    """The programs as one program, its segment bounds (counting no slots), and where each slot's entries start.

    ``slots`` is empty or has one entry per gap between programs: None for nothing, or (qubits,
    width) for a dense op reading its entries from the binding buffer, after the programs' own
    binding entries.
    """
    widest = max([p.ops.qubits.shape[1] for p in programs] + [slot[1] for slot in slots if slot is not None])
    binding_width = sum(p.binding_buffers.shape[1] for p in programs)
    static_shift = binding_shift = 0
    slot_shift = binding_width
    kinds, qubits, widths, aux, sources, offsets = [], [], [], [], [], []
    bounds = [0]
    slot_offsets = []
    for j, p in enumerate(programs):
        ops = p.ops
        padded = np.zeros((ops.num_ops, widest), dtype=np.int64)
        padded[:, : ops.qubits.shape[1]] = ops.qubits
        kinds.append(ops.kinds)
        qubits.append(padded)
        widths.append(ops.widths)
        aux.append(ops.aux)
        sources.append(ops.sources)
        offsets.append(ops.offsets + np.where(ops.sources == 0, static_shift, binding_shift))
        static_shift += p.static_buffer.shape[0]
        binding_shift += p.binding_buffers.shape[1]
        bounds.append(bounds[-1] + ops.num_ops)
        slot = slots[j] if j < len(slots) else None
        if slot is None:
            continue
        slot_qubits, width = slot
        row = np.zeros((1, widest), dtype=np.int64)
        row[0, :width] = slot_qubits
        slot_offsets.append(slot_shift)
        for part, value in ((kinds, [DENSE]), (widths, [width]), (sources, [1]), (offsets, [slot_shift])):
            part.append(np.array(value, dtype=np.int64))
        qubits.append(row)
        aux.append(np.zeros((1, 2), dtype=np.int64))
        slot_shift += 1 << (2 * int(width))
    arrays = OpArrays(
        kinds=np.concatenate(kinds).astype(np.int64),
        qubits=np.ascontiguousarray(np.concatenate(qubits), dtype=np.int64),
        widths=np.concatenate(widths).astype(np.int64),
        aux=np.ascontiguousarray(np.concatenate(aux), dtype=np.int64).reshape(-1, 2),
        sources=np.concatenate(sources).astype(np.int64),
        offsets=np.concatenate(offsets).astype(np.int64),
    )
    static = np.ascontiguousarray(np.concatenate([p.static_buffer for p in programs]))
    per_binding = np.concatenate([p.binding_buffers for p in programs], axis=1)
    if slot_shift > binding_width:
        extra = np.zeros((per_binding.shape[0], slot_shift - binding_width), per_binding.dtype)
        per_binding = np.concatenate([per_binding, extra], axis=1)
    program = BoundProgram(num_qubits, arrays, static, np.ascontiguousarray(per_binding))
    return program, np.array(bounds, dtype=np.int64), slot_offsets


def _batch_size(num_qubits: int, row: int) -> int:
    by_memory = simulate._BATCH_AMPLITUDES >> num_qubits
    return max(1, min(_MAX_BATCH, _MAX_BATCH_NUMBERS // max(1, row), by_memory))


def _per_chunk(count: int) -> int:
    """Trajectories per parallel work item of a kernel call: up to 8 share a state buffer, but at
    least 4 items per thread when the batch allows (results do not depend on it)."""
    return max(1, min(_MOST_PER_CHUNK, count // (4 * numba.get_num_threads())))


def _is_wide(num_qubits: int) -> bool:
    return num_qubits >= simulate.WIDE_QUBITS


# -- one trajectory on a wide state ------------------------------------------------------------------


def _wide_trajectory(
    noisy: _NoisyProgram, binding: int, uniforms: np.ndarray, cancel: simulate.Cancel | None
) -> np.ndarray:
    """The final state of one trajectory: each stretch of its wide plan (cut where it draws a
    Kraus channel's rest) cache-blocked and amplitude-parallel with its mixture branches in its
    slots, then that Kraus channel's rest operator."""
    dtype = noisy.stretches[0].dtype
    state = np.zeros(1 << noisy.num_qubits, dtype=dtype)
    state[0] = 1
    table = noisy.channels
    channel_qubits, widths, _, first, counts, _, offsets, cumulative, entries = table
    rest = np.flatnonzero((table[2] == 0) & (uniforms[: noisy.num_channels] >= noisy.identity_weights))
    for stretch in noisy.wide_plan(tuple(rest.tolist())):
        row = stretch.program.binding_buffers[binding]
        for c, at in zip(stretch.mixtures, stretch.slot_offsets, strict=True):
            start, count = int(first[c]), int(counts[c])
            branch = min(int(np.searchsorted(cumulative[start : start + count], uniforms[c], side="right")), count - 1)
            matrices = noisy.dense_branches[c]
            assert matrices is not None
            row[at : at + matrices.shape[1]] = matrices[branch]
        simulate.evolve(state, stretch.program, binding, cancel)
        c = stretch.kraus
        if c < 0:
            continue
        k = int(widths[c])
        op_qubits = np.ascontiguousarray(channel_qubits[c, :k])
        b, scale = kernels.choose_branch(table, c, float(uniforms[c]), kernels.reduced_density_par(state, op_qubits))
        d = 1 << k
        matrix = (entries[int(offsets[b]) : int(offsets[b]) + d * d] * scale).astype(dtype)
        select(DENSE, k, parallel=True).apply(state, op_qubits, matrix, np.zeros(2, dtype=np.int64))
    return state


def _wide_draws(state: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Basis states for uniforms ``draws`` (inverse CDF of |state|^2, the small path's kernel)."""
    out = np.empty(draws.shape[0], dtype=np.int64)
    kernels.draw_basis_states(state, np.ascontiguousarray(draws), out)
    return out


# -- public API --------------------------------------------------------------------------------------


def trajectory_term_values(
    lowered: LoweredCircuit,
    values: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
    trajectories: int,
    rng: np.random.Generator,
    *,
    dtype: Any = np.complex128,
    cancel: simulate.Cancel | None = None,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per binding, the mean over ``trajectories`` trajectories of each Pauli term's value, and its
    standard error.

    ``values`` is (bindings, parameters) in ``lowered.parameter_names`` order; a term is
    (x_mask, z_mask) with value <psi| X^x Z^z |psi> (as :mod:`aqrt.engine.kernels.reductions`).
    Returns ``(means, standard_errors)``: (bindings, terms) complex128 and float64, the standard
    error being the sample standard deviation (of the complex values, ddof 1) / sqrt(trajectories),
    NaN for a single trajectory. With ``weights`` (observables, terms), the same for each
    observable's per-trajectory value ``term_values @ weights.T`` instead of each term (the
    observables' errors then include the terms' covariances).

    Raises:
        simulate.EngineCancelled: ``cancel`` was set (polled between batches).
    """
    if trajectories < 1:
        raise ValueError(f"trajectories must be at least 1, got {trajectories}")
    noisy = _prepare(lowered, values, dtype)
    x_masks = np.ascontiguousarray(x_masks, dtype=np.int64)
    z_masks = np.ascontiguousarray(z_masks, dtype=np.int64)
    num_bindings = noisy.num_bindings
    width = x_masks.shape[0] if weights is None else weights.shape[0]
    sums = np.zeros((num_bindings, width), dtype=np.complex128)
    squares = np.zeros((num_bindings, width), dtype=np.float64)
    shifts = np.zeros((num_bindings, width), dtype=np.complex128)  # first value: keeps the variance sum exact

    def accumulate(binding: int, rows: np.ndarray, is_first: bool) -> None:
        if weights is not None:
            rows = rows @ weights.T
        if is_first:
            shifts[binding] = rows[0]
        centred = rows - shifts[binding]
        sums[binding] += centred.sum(axis=0)
        squares[binding] += (centred.real**2 + centred.imag**2).sum(axis=0)

    num_channels = noisy.num_channels
    total = num_bindings * trajectories
    wide = _is_wide(noisy.num_qubits)
    program, bounds = noisy.packed() if not wide else (noisy.stretches[0], np.zeros(0, dtype=np.int64))
    ops = program.ops.as_tuple()
    per_call = _batch_size(noisy.num_qubits, num_channels)
    for start in range(0, total, per_call):
        simulate._check(cancel)
        stop = min(total, start + per_call)
        uniforms = rng.random((stop - start, num_channels))
        indices = np.arange(start, stop, dtype=np.int64)
        binding_of = indices // trajectories
        # trajectories of one binding whose draws pick the same branches share one simulation
        simulated_parts: list[np.ndarray] = []
        row_of = np.empty(stop - start, dtype=np.int64)
        for binding in range(int(binding_of[0]), int(binding_of[-1]) + 1):
            mine = np.flatnonzero(binding_of == binding)
            simulated, shared_row = _share(noisy, uniforms[mine])
            row_of[mine] = shared_row + sum(part.shape[0] for part in simulated_parts)
            simulated_parts.append(mine[simulated])
        simulated_rows = np.concatenate(simulated_parts)
        if wide:
            values = np.empty((simulated_rows.shape[0], x_masks.shape[0]), dtype=np.complex128)
            for r, row in enumerate(simulated_rows.tolist()):
                simulate._check(cancel)
                state = _wide_trajectory(noisy, int(binding_of[row]), uniforms[row], cancel)
                values[r] = pauli_values_par(state, x_masks, z_masks)
        else:
            simulated_uniforms = np.ascontiguousarray(uniforms[simulated_rows])
            simulated_bindings = np.ascontiguousarray(binding_of[simulated_rows])
            resume, prefixes = _resumes(noisy, program, bounds, simulated_uniforms, simulated_bindings)
            values = kernels.trajectory_pauli_values(
                noisy.num_qubits,
                ops,
                program.static_buffer,
                program.binding_buffers,
                simulated_bindings,
                bounds,
                noisy.channels,
                simulated_uniforms,
                resume,
                prefixes,
                x_masks,
                z_masks,
                _per_chunk(simulated_rows.shape[0]),
            )
        rows = values[row_of]
        for binding in range(int(binding_of[0]), int(binding_of[-1]) + 1):
            mine = binding_of == binding
            accumulate(binding, rows[mine], bool((indices[mine] % trajectories == 0).any()))
    mean_offset = sums / trajectories
    means = shifts + mean_offset
    if trajectories == 1:
        return means, np.full((num_bindings, width), np.nan)
    variance = (squares - trajectories * np.abs(mean_offset) ** 2) / (trajectories - 1)
    return means, np.sqrt(np.clip(variance, 0.0, None) / trajectories)


def trajectory_samples(
    lowered: LoweredCircuit,
    values: np.ndarray,
    shots: int,
    rng: np.random.Generator,
    *,
    dtype: Any = np.complex128,
    cancel: simulate.Cancel | None = None,
    group: bool = True,
) -> np.ndarray:
    """(bindings, shots) int64 basis-state indices over all n qubits, each shot from its own trajectory.

    With ``group`` (the default), each shot's channel draws come first: shots whose draws pick
    the same branches (identity branches counted as one, every Kraus channel its identity part)
    share one simulation, and each draws its own basis state from that final state: the same
    distribution as one trajectory per shot (exact), far fewer simulations at low error rates. A
    shot that draws a Kraus channel's rest runs its own trajectory. Shots keep their own places,
    so their order carries no grouping.

    Raises:
        simulate.EngineCancelled: ``cancel`` was set (polled between batches).
    """
    if shots < 0:
        raise ValueError(f"shots must be non-negative, got {shots}")
    noisy = _prepare(lowered, values, dtype)
    if group:
        return _grouped_samples(noisy, shots, rng, cancel)
    num_bindings = noisy.num_bindings
    num_channels = noisy.num_channels
    out = np.empty((num_bindings, shots), dtype=np.int64)
    flat_out = out.reshape(-1)
    total = num_bindings * shots
    if _is_wide(noisy.num_qubits):
        for flat in range(total):
            simulate._check(cancel)
            uniforms = rng.random(num_channels + 1)
            state = _wide_trajectory(noisy, flat // shots, uniforms, cancel)
            flat_out[flat] = _wide_draws(state, uniforms[num_channels:])[0]
        return out
    program, bounds = noisy.packed()
    ops = program.ops.as_tuple()
    per_call = _batch_size(noisy.num_qubits, num_channels + 1)
    for start in range(0, total, per_call):
        simulate._check(cancel)
        stop = min(total, start + per_call)
        uniforms = rng.random((stop - start, num_channels + 1))
        binding_of = np.arange(start, stop, dtype=np.int64) // shots
        resume, prefixes = _resumes(noisy, program, bounds, uniforms[:, :num_channels], binding_of)
        flat_out[start:stop] = kernels.trajectory_samples(
            noisy.num_qubits,
            ops,
            program.static_buffer,
            program.binding_buffers,
            binding_of,
            bounds,
            noisy.channels,
            uniforms,
            resume,
            prefixes,
            np.ascontiguousarray(uniforms[:, num_channels]),
            np.arange(stop - start + 1, dtype=np.int64),
            _per_chunk(stop - start),
        )
    return out


def _grouped_samples(
    noisy: _NoisyProgram, shots: int, rng: np.random.Generator, cancel: simulate.Cancel | None
) -> np.ndarray:
    """Shots sharing simulations where their draws pick the same branches (see :func:`trajectory_samples`).

    Per binding, in chunks of shots: a row of channel uniforms and a basis-state draw per shot;
    each simulated trajectory then draws the basis states of every shot it stands for.
    """
    num_channels = noisy.num_channels
    out = np.empty((noisy.num_bindings, shots), dtype=np.int64)
    wide = _is_wide(noisy.num_qubits)
    program, bounds = noisy.packed() if not wide else (noisy.stretches[0], np.zeros(0, dtype=np.int64))
    ops = program.ops.as_tuple()
    rows_per_draw = max(1, _MAX_BATCH_NUMBERS // (num_channels + 1))
    per_call = _batch_size(noisy.num_qubits, num_channels)
    for binding in range(noisy.num_bindings):
        for start in range(0, shots, rows_per_draw):
            simulate._check(cancel)
            stop = min(shots, start + rows_per_draw)
            uniforms = rng.random((stop - start, num_channels))
            draws = rng.random(stop - start)
            simulated, row_of = _share(noisy, uniforms)
            order = np.argsort(row_of, kind="stable")
            starts = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=simulated.shape[0]))])
            starts = starts.astype(np.int64)
            sorted_draws = np.ascontiguousarray(draws[order])
            representative = np.ascontiguousarray(uniforms[simulated])
            picked = np.empty(stop - start, dtype=np.int64)
            if wide:
                for p in range(simulated.shape[0]):
                    simulate._check(cancel)
                    state = _wide_trajectory(noisy, binding, representative[p], cancel)
                    picked[starts[p] : starts[p + 1]] = _wide_draws(state, sorted_draws[starts[p] : starts[p + 1]])
            else:
                every_binding = np.full(simulated.shape[0], binding, dtype=np.int64)
                resume, prefixes = _resumes(noisy, program, bounds, representative, every_binding)
                for p0 in range(0, simulated.shape[0], per_call):
                    simulate._check(cancel)
                    p1 = min(simulated.shape[0], p0 + per_call)
                    picked[starts[p0] : starts[p1]] = kernels.trajectory_samples(
                        noisy.num_qubits,
                        ops,
                        program.static_buffer,
                        program.binding_buffers,
                        every_binding[p0:p1],
                        bounds,
                        noisy.channels,
                        representative[p0:p1],
                        resume[p0:p1],
                        prefixes,
                        sorted_draws[starts[p0] : starts[p1]],
                        starts[p0 : p1 + 1] - starts[p0],
                        _per_chunk(p1 - p0),
                    )
            out[binding, start + order] = picked
    return out


def _share(noisy: _NoisyProgram, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of ``uniforms`` (trajectories of one binding) to simulate, and for every row the
    index (into those) of the simulation that stands for it.

    Rows whose every mixture channel draws the same branch (identity branches counted as one) and
    whose every Kraus channel draws its identity part run the same operations, so they share the
    first such row's simulation (the same state, bit for bit). A row that draws a Kraus channel's
    rest reads the state there (||K psi||^2) and runs on its own.
    """
    count, num_channels = uniforms.shape
    table = noisy.channels
    mixture, first, cumulative = table[2], table[3], table[7]
    kraus = np.flatnonzero(mixture == 0)
    alone = (uniforms[:, kraus] >= noisy.identity_weights[kraus]).any(axis=1)
    shared = np.flatnonzero(~alone)
    lone = np.flatnonzero(alone)
    row_of = np.empty(count, dtype=np.int64)
    if shared.shape[0] == 0:
        leaders = shared
    elif num_channels == kraus.shape[0]:  # no mixture: every shared row is the all-identity trajectory
        leaders = shared[:1]
        row_of[shared] = 0
    else:
        patterns = np.empty((shared.shape[0], num_channels - kraus.shape[0]), dtype=np.int32)
        for column, c in enumerate(np.flatnonzero(mixture).tolist()):
            f, code = int(first[c]), noisy.branch_codes[c]
            branch = np.searchsorted(cumulative[f : f + code.shape[0]], uniforms[shared, c], side="right")
            patterns[:, column] = code[np.minimum(branch, code.shape[0] - 1)]
        keys = np.ascontiguousarray(patterns).view(np.dtype((np.void, patterns.itemsize * patterns.shape[1])))
        _, first_row, inverse = np.unique(keys.reshape(-1), return_index=True, return_inverse=True)
        leaders = shared[first_row]
        row_of[shared] = inverse.reshape(-1)
    row_of[lone] = leaders.shape[0] + np.arange(lone.shape[0])
    return np.concatenate([leaders, lone]), row_of


def _resumes(
    noisy: _NoisyProgram, program: BoundProgram, bounds: np.ndarray, uniforms: np.ndarray, binding_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where each trajectory (a row of ``uniforms``, its binding in ``binding_of``) may start: the
    kernels' ``resume`` (trajectories, 2) and ``prefixes``.

    Until the first channel whose draw does something (a mixture's non-identity branch or a Kraus
    channel's rest) a trajectory runs the noiseless program, so it starts at that channel from the
    noiseless state there (the same bits it would have reached), computed once per binding and
    channel. At most ``_BATCH_AMPLITUDES >> (n + 1)`` prefix states are kept, the most used ones.
    """
    count, num_channels = uniforms.shape
    resume = np.zeros((count, 2), dtype=np.int64)
    resume[:, 0] = -1
    no_prefix = np.zeros((1, 1), dtype=program.dtype)
    if count == 0 or num_channels == 0:
        return resume, no_prefix
    table = noisy.channels
    mixture, first, kinds, cumulative = table[2], table[3], table[5], table[7]
    idle = np.empty((count, num_channels), dtype=bool)
    kraus = np.flatnonzero(mixture == 0)
    idle[:, kraus] = uniforms[:, kraus] < noisy.identity_weights[kraus]
    for c in np.flatnonzero(mixture).tolist():
        f, branches = int(first[c]), int(table[4][c])
        branch = np.minimum(np.searchsorted(cumulative[f : f + branches], uniforms[:, c], side="right"), branches - 1)
        idle[:, c] = kinds[f + branch] == kernels.IDENTITY
    at = np.argmin(idle, axis=1)  # the first channel that does something (0 when none does)
    acting = np.flatnonzero(~idle[np.arange(count), at])
    if acting.shape[0] == 0:
        return resume, no_prefix
    keys = binding_of[acting] * num_channels + at[acting]
    distinct, uses = np.unique(keys, return_counts=True)
    most = max(0, simulate._BATCH_AMPLITUDES >> (noisy.num_qubits + 1))
    if distinct.shape[0] > most:
        distinct = np.sort(distinct[np.argsort(-uses, kind="stable")[:most]])
    if distinct.shape[0] == 0:
        return resume, no_prefix
    parts = []
    for binding in np.unique(distinct // num_channels).tolist():
        after = distinct[distinct // num_channels == binding] % num_channels
        parts.append(
            kernels.noiseless_prefixes(
                noisy.num_qubits,
                program.ops.as_tuple(),
                program.static_buffer,
                program.binding_buffers[binding],
                bounds,
                np.ascontiguousarray(after),
            )
        )
    prefixes = np.concatenate(parts)  # in ``distinct`` order: bindings ascending, channels ascending within
    where = np.searchsorted(distinct, keys)
    found = (where < distinct.shape[0]) & (distinct[np.minimum(where, distinct.shape[0] - 1)] == keys)
    resume[acting[found], 0] = at[acting[found]]
    resume[acting[found], 1] = where[found]
    return resume, prefixes
