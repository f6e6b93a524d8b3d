"""Kernels of the trajectory simulator: noise channels picked at random on statevectors.

Conventions in :mod:`aqrt.engine.kernels`. A noisy program is a unitary program (the op arrays of
:mod:`aqrt.engine.ops`) cut into segments by channels: ``bounds`` has ``channels + 2`` entries,
segment s is ops ``bounds[s]:bounds[s + 1]``, and channel s is applied after segment s.

Channels travel as one tuple of arrays, the *channel table* (built by
:mod:`aqrt.engine.trajectories`):

- ``qubits`` (channels, widest), ``widths`` (channels,): channel c acts on ``qubits[c, :widths[c]]``
- ``mixture`` (channels,): 1 for a unitary mixture (branch drawn with fixed probabilities),
  0 for general Kraus operators (branch drawn with probability ||K psi||^2)
- ``first``, ``count`` (channels,): channel c's branches are ``first[c] .. first[c] + count[c] - 1``
- ``kinds`` (branches,): how a branch applies: ``IDENTITY`` (nothing), DIAG (d diagonal entries),
  PERM or DENSE (d*d entries, row-major); a Kraus branch is DENSE and its d*d entries are followed
  by the d*d entries of K^dagger K (what its probability reads)
- ``offsets`` (branches,): first entry of the branch in ``entries``
- ``cumulative`` (branches,): a mixture's cumulative branch probabilities
- a Kraus channel whose identity part has weight p > 0 (:attr:`Channel.identity_split`) starts
  with an ``IDENTITY`` branch whose ``cumulative`` is p, followed by the Kraus operators of the
  rest: a uniform u < p picks the identity without reading the state, otherwise
  (u - p) / (1 - p), again uniform, picks a rest operator by ||K psi||^2
- ``entries``: every branch's entries, in the state's dtype

A trajectory's randomness is a row of uniforms in [0, 1), one per channel, drawn by the caller
before the kernel runs: results depend only on those numbers, never on the thread count.

- ``reduced_density``       the (d, d) reduced density matrix of a state on a few qubits
- ``reduced_density_par``   the same, parallel over chunks (wide states)
- ``choose_branch``         which branch a uniform picks (and the Kraus renormalisation)
- ``skips_identity``        whether a uniform picks a Kraus channel's identity branch
- ``apply_branch``          apply a channel's branch to a state, serially
- ``draw_basis_states``     basis states for many uniforms by the inverse CDF of |psi|^2, one pass
- ``noiseless_prefixes``    the states a program's segments reach with no channel applied
- ``run_trajectory``        one trajectory of a noisy program from |0...0> (or a prefix), serially
- ``trajectory_pauli_values``  many trajectories, every Pauli term's value, parallel over trajectories
- ``trajectory_samples``    many trajectories, basis states drawn from each, parallel over trajectories

Like :mod:`.interpreter`'s, these kernels hold the gate and reduction kernels they call in their
own cached machine code (see the note there on numba's per-file cache).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..ops import DIAG, PERM, OpTuple
from .apply import apply_1q, apply_2q, apply_dense, apply_diag, apply_perm
from .bits import CHUNK, group_offsets, insert_zeros
from .interpreter import run_program
from .reductions import pauli_values

__all__ = [
    "IDENTITY",
    "apply_branch",
    "choose_branch",
    "draw_basis_states",
    "noiseless_prefixes",
    "reduced_density",
    "reduced_density_par",
    "run_trajectory",
    "skips_identity",
    "trajectory_pauli_values",
    "trajectory_samples",
]

IDENTITY = -1  # branch kind of an identity (up to a global phase): nothing to apply

ChannelTable = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


@njit(cache=True, nogil=True)
def reduced_density(state: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """rho[i, j] = sum over the other qubits of psi[.. i ..] conj(psi[.. j ..]), complex128 (d, d)."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = group_offsets(qubits)
    sorted_qubits = np.sort(qubits)
    rho = np.zeros((d, d), dtype=np.complex128)
    amplitudes = np.empty(d, dtype=np.complex128)
    for g in range(state.shape[0] >> k):
        base = insert_zeros(g, sorted_qubits)
        for j in range(d):
            amplitudes[j] = state[base + offsets[j]]
        for i in range(d):
            for j in range(d):
                rho[i, j] += amplitudes[i] * np.conj(amplitudes[j])
    return rho


@njit(cache=True, nogil=True, parallel=True)
def reduced_density_par(state: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """As :func:`reduced_density`, parallel over fixed chunks (the sum order does not depend on threads)."""
    k = qubits.shape[0]
    d = 1 << k
    offsets = group_offsets(qubits)
    sorted_qubits = np.sort(qubits)
    groups = state.shape[0] >> k
    num_chunks = (groups + CHUNK - 1) // CHUNK
    partial = np.zeros((num_chunks, d, d), dtype=np.complex128)
    for chunk in prange(num_chunks):
        amplitudes = np.empty(d, dtype=np.complex128)
        for g in range(chunk * CHUNK, min(groups, (chunk + 1) * CHUNK)):
            base = insert_zeros(g, sorted_qubits)
            for j in range(d):
                amplitudes[j] = state[base + offsets[j]]
            for i in range(d):
                for j in range(d):
                    partial[chunk, i, j] += amplitudes[i] * np.conj(amplitudes[j])
    rho = np.zeros((d, d), dtype=np.complex128)
    for chunk in range(num_chunks):
        rho += partial[chunk]
    return rho


@njit(cache=True, nogil=True)
def choose_branch(channels: ChannelTable, c: int, u: float, rho: np.ndarray) -> tuple[int, float]:
    """The branch of channel ``c`` that uniform ``u`` picks, and the factor its matrix is scaled by.

    A mixture's branch i covers [cumulative[i - 1], cumulative[i]) (``rho`` is not read); a Kraus
    branch k has probability Tr(K_k^dagger K_k rho) (``rho`` the state's reduced density matrix on
    the channel's qubits) and is scaled by 1 / sqrt of it, so the state stays normalised; a Kraus
    channel with an identity branch first picks it for u below its weight (``rho`` not read).
    """
    _, widths, mixture, first, count, _, offsets, cumulative, entries = channels
    start = first[c]
    last = start + count[c] - 1
    if mixture[c]:
        b = start
        while b < last and u >= cumulative[b]:
            b += 1
        return b, 1.0
    kinds = channels[5]
    if kinds[start] == IDENTITY:
        weight = cumulative[start]
        if u < weight:
            return start, 1.0
        u = (u - weight) / (1.0 - weight)
        start += 1
    d = 1 << widths[c]
    total = 0.0
    for i in range(d):
        total += rho[i, i].real
    target = u * total
    accumulated = 0.0
    chosen = -1
    chosen_probability = 0.0
    for b in range(start, last + 1):
        products = entries[offsets[b] + d * d : offsets[b] + 2 * d * d].reshape((d, d))
        probability = 0.0
        for i in range(d):
            for j in range(d):
                probability += (products[i, j] * rho[j, i]).real
        if probability > 0.0:
            chosen = b
            chosen_probability = probability
            accumulated += probability
            if target < accumulated:
                break
    return chosen, 1.0 / np.sqrt(chosen_probability)


@njit(cache=True, nogil=True)
def skips_identity(channels: ChannelTable, c: int, u: float) -> bool:
    """Whether uniform ``u`` picks Kraus channel ``c``'s identity branch (nothing to do, state not read)."""
    start = channels[3][c]
    return channels[5][start] == IDENTITY and u < channels[7][start]


@njit(cache=True, nogil=True)
def apply_branch(state: np.ndarray, channels: ChannelTable, c: int, b: int, scale: float) -> None:
    """Apply branch ``b`` of channel ``c`` (its matrix times ``scale``) to ``state``, serially."""
    qubits, widths, _, _, _, kinds, offsets, _, entries = channels
    kind = kinds[b]
    if kind == IDENTITY:
        return
    k = widths[c]
    d = 1 << k
    op_qubits = qubits[c, :k]
    start = offsets[b]
    if kind == DIAG:
        apply_diag(state, op_qubits, entries[start : start + d])
        return
    matrix = entries[start : start + d * d].reshape((d, d))
    if kind == PERM:
        apply_perm(state, op_qubits, matrix)
        return
    if scale != 1.0:
        scaled = np.empty((d, d), dtype=entries.dtype)
        for i in range(d):
            for j in range(d):
                scaled[i, j] = matrix[i, j] * scale
        matrix = scaled
    if k == 1:
        apply_1q(state, op_qubits[0], matrix)
    elif k == 2:
        apply_2q(state, op_qubits[0], op_qubits[1], matrix)
    else:
        apply_dense(state, op_qubits, matrix)


@njit(cache=True, nogil=True)
def run_trajectory(
    state: np.ndarray,
    ops: OpTuple,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
    bounds: np.ndarray,
    channels: ChannelTable,
    uniforms: np.ndarray,
    resume: int,
    prefix: np.ndarray,
) -> None:
    """Run one trajectory in ``state``: segment, channel, segment, ... (serial).

    ``uniforms`` holds at least one number per channel (channel c reads ``uniforms[c]``). With
    ``resume`` -1 the trajectory starts from |0...0>; with ``resume`` r >= 0 it starts from
    ``prefix``, the state after segment r of a trajectory whose every channel before r did nothing
    (see :func:`noiseless_prefixes`), at channel r.
    """
    kinds, qubits, widths, aux, sources, offsets = ops
    if resume < 0:
        state[:] = 0
        state[0] = 1
    else:
        state[:] = prefix
    no_rho = np.zeros((1, 1), dtype=np.complex128)
    num_channels = bounds.shape[0] - 2
    for s in range(max(resume, 0), num_channels + 1):
        a = bounds[s]
        z = bounds[s + 1]
        if z > a and s > resume:
            segment = (kinds[a:z], qubits[a:z], widths[a:z], aux[a:z], sources[a:z], offsets[a:z])
            run_program(state, segment, static_buffer, binding_buffer)
        if s < num_channels:
            if channels[2][s]:
                b, scale = choose_branch(channels, s, uniforms[s], no_rho)
            elif skips_identity(channels, s, uniforms[s]):
                continue
            else:
                rho = reduced_density(state, channels[0][s, : channels[1][s]])
                b, scale = choose_branch(channels, s, uniforms[s], rho)
            apply_branch(state, channels, s, b, scale)


@njit(cache=True, nogil=True)
def noiseless_prefixes(
    num_qubits: int,
    ops: OpTuple,
    static_buffer: np.ndarray,
    binding_buffer: np.ndarray,
    bounds: np.ndarray,
    after: np.ndarray,
) -> np.ndarray:
    """The states after segments 0..after[i] with no channel applied (``after`` ascending): where a
    trajectory whose channels before ``after[i]`` all did nothing stands at channel ``after[i]``."""
    kinds, qubits, widths, aux, sources, offsets = ops
    out = np.empty((after.shape[0], 1 << num_qubits), dtype=static_buffer.dtype)
    state = np.zeros(1 << num_qubits, dtype=static_buffer.dtype)
    state[0] = 1
    s = 0
    for i in range(after.shape[0]):
        while s <= after[i]:
            a = bounds[s]
            z = bounds[s + 1]
            if z > a:
                segment = (kinds[a:z], qubits[a:z], widths[a:z], aux[a:z], sources[a:z], offsets[a:z])
                run_program(state, segment, static_buffer, binding_buffer)
            s += 1
        out[i] = state
    return out


@njit(cache=True, nogil=True, parallel=True)
def trajectory_pauli_values(
    num_qubits: int,
    ops: OpTuple,
    static_buffer: np.ndarray,
    binding_buffers: np.ndarray,
    binding_of: np.ndarray,
    bounds: np.ndarray,
    channels: ChannelTable,
    uniforms: np.ndarray,
    resume: np.ndarray,
    prefixes: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
    per_chunk: int,
) -> np.ndarray:
    """Trajectory t (row t of ``uniforms``, binding ``binding_of[t]``, started at channel
    ``resume[t, 0]`` from ``prefixes[resume[t, 1]]`` when that is >= 0, see :func:`run_trajectory`): every Pauli
    term's value on its final state, shape (trajectories, terms). Parallel over chunks of
    ``per_chunk`` trajectories, which share a state buffer (the results do not depend on it)."""
    count = uniforms.shape[0]
    out = np.empty((count, x_masks.shape[0]), dtype=np.complex128)
    num_chunks = (count + per_chunk - 1) // per_chunk
    for chunk in prange(num_chunks):
        state = np.empty(1 << num_qubits, dtype=static_buffer.dtype)
        for t in range(chunk * per_chunk, min(count, (chunk + 1) * per_chunk)):
            run_trajectory(
                state,
                ops,
                static_buffer,
                binding_buffers[binding_of[t]],
                bounds,
                channels,
                uniforms[t],
                resume[t, 0],
                prefixes[resume[t, 1]],
            )
            out[t, :] = pauli_values(state, x_masks, z_masks)
    return out


@njit(cache=True, nogil=True)
def draw_basis_states(state: np.ndarray, draws: np.ndarray, out: np.ndarray) -> None:
    """out[r] = the basis state the inverse CDF of |state|^2 gives for draws[r], one pass."""
    order = np.argsort(draws)
    size = state.shape[0]
    i = 0
    last_nonzero = 0
    accumulated = state[0].real * state[0].real + state[0].imag * state[0].imag
    for r in range(order.shape[0]):
        target = draws[order[r]]
        while accumulated <= target and i < size - 1:
            i += 1
            p = state[i].real * state[i].real + state[i].imag * state[i].imag
            if p > 0.0:
                last_nonzero = i
            accumulated += p
        out[order[r]] = i if accumulated > target else last_nonzero


@njit(cache=True, nogil=True, parallel=True)
def trajectory_samples(
    num_qubits: int,
    ops: OpTuple,
    static_buffer: np.ndarray,
    binding_buffers: np.ndarray,
    binding_of: np.ndarray,
    bounds: np.ndarray,
    channels: ChannelTable,
    uniforms: np.ndarray,
    resume: np.ndarray,
    prefixes: np.ndarray,
    draws: np.ndarray,
    draw_starts: np.ndarray,
    per_chunk: int,
) -> np.ndarray:
    """Trajectory t (row t of ``uniforms``, binding ``binding_of[t]``, ``resume[t]`` and
    ``prefixes`` as :func:`trajectory_pauli_values`) gives the basis states for
    ``draws[draw_starts[t]:draw_starts[t + 1]]`` (inverse CDF of its |psi|^2), int64 in ``draws``
    order. Parallel over chunks of ``per_chunk`` trajectories (as :func:`trajectory_pauli_values`)."""
    count = uniforms.shape[0]
    out = np.empty(draws.shape[0], dtype=np.int64)
    num_chunks = (count + per_chunk - 1) // per_chunk
    for chunk in prange(num_chunks):
        state = np.empty(1 << num_qubits, dtype=static_buffer.dtype)
        for t in range(chunk * per_chunk, min(count, (chunk + 1) * per_chunk)):
            run_trajectory(
                state,
                ops,
                static_buffer,
                binding_buffers[binding_of[t]],
                bounds,
                channels,
                uniforms[t],
                resume[t, 0],
                prefixes[resume[t, 1]],
            )
            a = draw_starts[t]
            z = draw_starts[t + 1]
            draw_basis_states(state, draws[a:z], out[a:z])
    return out
