"""Exact noisy simulation: the density matrix run on the statevector kernels.

A density matrix ``rho`` on ``n`` qubits is stored as a ``2n``-qubit vector with
``vec(rho)[i + (j << n)] = rho[i, j]`` (the convention of :meth:`Channel.superoperator
<aqrt.engine.noise.Channel.superoperator>`): qubit ``q`` of the row index is qubit ``q`` of the
vector, qubit ``q`` of the column index is qubit ``q + n``. Then

- a gate ``U`` on qubits ``Q`` (``rho -> U rho U^dagger``) is ``U`` on ``Q`` and ``conj(U)`` on
  ``Q + n``: two ordinary gate ops;
- a channel on ``Q`` is its superoperator, a (non-unitary) dense matrix on ``Q + (Q + n)``;
- ``|0><0|`` is the vector's index 0, where every program of the engine starts.

A channel absorbs the gates (and channels) just before it on its own qubits, so a noisy gate is
one superoperator pass over ``vec(rho)`` (:func:`density_program`).

So a circuit with channels becomes a noiseless ``2n``-qubit :class:`LoweredCircuit`, bound and run
by the existing packer, interpreter and cache-blocked wide path (:mod:`aqrt.engine.simulate`):
nothing here applies a matrix itself. The cost is that of a ``2n``-qubit statevector, so this path
is for small widths (:data:`DENSITY_MAX_QUBITS`); trajectories take wider circuits.

This module imports numpy only at module level; :mod:`aqrt.engine.simulate` (numba) loads on the
first run.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from .lowering import GateOp, LoweredCircuit, _embed
from .noise import Channel
from .ops import BoundProgram

if TYPE_CHECKING:
    from .simulate import Cancel

__all__ = ["DENSITY_MAX_QUBITS", "density_probabilities", "density_program", "density_term_values"]

# Widest n sent here by default, measured against aqrt.engine.trajectories on 10-layer circuits with
# a channel after every gate (one thread): one density run costs as much as ~250-300 trajectories at
# n <= 7, ~550-650 at n = 8, ~1400-1500 at n = 9, ~3000-5000 at n = 10, ~7500+ at n = 11 (x2 per
# qubit: 4**n against 2**n). With 4096 trajectories (IBM's default: 4096 shots, precision 1/64) the
# density run is 2x faster for expectation values at n = 9 and as fast as trajectory sampling there,
# 1.3x slower at n = 10 - and exact, which error mitigation's extrapolations need. vec(rho) at n = 9:
# 4 MiB.
DENSITY_MAX_QUBITS = 9

_GATHER_ENTRIES = 1 << 22  # entries gathered at once when reducing terms (bindings x x masks x 2**n)


def density_program(lowered: LoweredCircuit, values: np.ndarray, *, dtype: Any = np.complex128) -> BoundProgram:
    """The ``2n``-qubit program that evolves ``vec(rho)`` through ``lowered`` (gates and channels).

    ``values`` has shape (bindings, parameters), columns in ``lowered.parameter_names`` order (as
    :meth:`LoweredCircuit.bind`); ``dtype`` (complex128 or complex64) is the state's precision.

    A channel absorbs the gates and channels just before it on a subset of its qubits (noise models
    put one after every gate): their superoperators are multiplied into its own, so a noisy gate
    costs one pass over ``vec(rho)`` instead of three (measured: a third less time at n = 9-10 on
    circuits with a channel after every gate).
    """
    n = lowered.num_qubits
    values = np.asarray(values, dtype=np.float64)
    column = {name: j for j, name in enumerate(lowered.parameter_names)}
    steps: list[GateOp | _Noisy] = []  # gates of the circuit, and channels with what they absorbed
    for op in lowered.ops:
        if op.channel is None:
            steps.append(op)
            continue
        own = list(op.qubits)
        doubled = [*own, *(q + n for q in own)]
        before = np.eye(1 << len(doubled), dtype=np.complex128)
        for index in _absorbable(steps, set(own)):
            earlier = steps.pop(index)
            earlier_doubled = [*earlier.qubits, *(q + n for q in earlier.qubits)]
            matrix = (
                earlier.matrix if isinstance(earlier, _Noisy) else _gate_superoperator(lowered, earlier, values, column)
            )
            before = before @ _embed(matrix, earlier_doubled, doubled)  # indices descend: earlier ops multiply last
        steps.append(_Noisy(op.qubits, _superoperator(op.channel) @ before))
    ops: list[GateOp] = []
    for step in steps:
        if isinstance(step, _Noisy):
            ops.append(GateOp((*step.qubits, *(q + n for q in step.qubits)), matrix=step.matrix))
        else:
            ops.append(step)
            ops.append(_column_half(step, n))
    return LoweredCircuit(2 * n, ops, lowered.parameter_names).bind(values, dtype=dtype)


@dataclasses.dataclass
class _Noisy:
    """A channel with the steps it absorbed: one superoperator on ``qubits`` then ``qubits + n``."""

    qubits: tuple[int, ...]
    matrix: np.ndarray  # 2-d, or 3-d (one per binding) when it absorbed a parameterised gate


_LOOKBACK = 64  # steps a channel looks back for what it can absorb (bounds the cost on long circuits)


def _absorbable(steps: list[GateOp | _Noisy], own: set[int]) -> list[int]:
    """Indices (descending) of the latest steps a channel on ``own`` can absorb: going back, every
    step on a subset of its qubits, up to the first step on its qubits that is not one (steps on
    other qubits commute with all of these and are stepped over)."""
    taken: list[int] = []
    for index in range(len(steps) - 1, max(-1, len(steps) - 1 - _LOOKBACK), -1):
        step = steps[index]
        touched = own.intersection(step.qubits)
        if not touched:
            continue
        if (isinstance(step, GateOp) and step.control is not None) or len(touched) < len(step.qubits):
            break
        taken.append(index)
    return taken


def _column_half(op: GateOp, n: int) -> GateOp:
    """``op`` acting on the column index of rho: conjugated, on qubits shifted by ``n``."""
    control = None
    if op.control is not None:
        mask, value = op.control
        control = (mask << n, value << n)
    return dataclasses.replace(op, qubits=tuple(q + n for q in op.qubits), control=control, conjugate=not op.conjugate)


_SUPEROPERATORS: weakref.WeakKeyDictionary[Channel, np.ndarray] = weakref.WeakKeyDictionary()


def _superoperator(channel: Channel) -> np.ndarray:
    """``channel.superoperator()``, kept while the channel lives: a noise model's channels are built
    once per session and met in every job (np.kron over 16 Kraus pairs costs ~0.3 ms each time)."""
    matrix = _SUPEROPERATORS.get(channel)
    if matrix is None:
        matrix = channel.superoperator()
        matrix.flags.writeable = False
        _SUPEROPERATORS[channel] = matrix
    return matrix


def _gate_superoperator(lowered: LoweredCircuit, op: GateOp, values: np.ndarray, column: dict[str, int]) -> np.ndarray:
    """Gate ``op`` on ``vec(rho)`` over its qubits then the same qubits + n: 2-d, or 3-d per binding."""
    gate = lowered.bound_matrix(op, values, column)
    d = gate.shape[-1]
    # kron(conj(U), U): rows (i, k) and columns (j, l) hold conj(U)[i, j] * U[k, l].
    product = gate.conj()[..., :, None, :, None] * gate[..., None, :, None, :]
    return product.reshape(*gate.shape[:-2], d * d, d * d)


def density_term_values(
    lowered: LoweredCircuit,
    values: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
    *,
    dtype: Any = np.complex128,
    cancel: Cancel | None = None,
) -> np.ndarray:
    """``Tr(X^x Z^z rho)`` of every term for every binding, shape (bindings, terms), complex128.

    The value the statevector engine gives for a pure state (:mod:`aqrt.engine.observables`):
    ``Tr(X^x Z^z rho) = sum_a (-1)^popcount(a & z) rho[a, a ^ x]``, so the caller folds Y phases and
    coefficients into the term weights exactly as for the noiseless engine.

    Raises:
        EngineCancelled: ``cancel`` was set (polled between bindings and kernel groups).
    """
    x_masks = np.asarray(x_masks, dtype=np.int64)
    z_masks = np.asarray(z_masks, dtype=np.int64)
    n = lowered.num_qubits
    program = density_program(lowered, values, dtype=dtype)
    distinct_x, x_of_term = np.unique(x_masks, return_inverse=True)
    rows = np.arange(1 << n, dtype=np.int64)
    out = np.empty((program.num_bindings, x_masks.shape[0]), dtype=np.complex128)
    for b, vector in _final_vectors(program, cancel):
        out[b] = _pauli_traces(vector, n, rows, distinct_x, x_of_term.reshape(-1), z_masks)
    return out


def _pauli_traces(
    vector: np.ndarray, n: int, rows: np.ndarray, distinct_x: np.ndarray, x_of_term: np.ndarray, z_masks: np.ndarray
) -> np.ndarray:
    """Every term's trace from one ``vec(rho)``: for each x mask, gather ``g[a] = rho[a, a ^ x]``;
    its Walsh-Hadamard transform at ``z`` is ``sum_a (-1)^popcount(a & z) g[a]``, every z at once."""
    traces = np.empty(x_of_term.shape[0], dtype=np.complex128)
    per_call = max(1, _GATHER_ENTRIES >> n)
    for start in range(0, distinct_x.shape[0], per_call):
        block = distinct_x[start : start + per_call]
        gathered = vector[rows[None, :] + ((rows[None, :] ^ block[:, None]) << n)].astype(np.complex128)
        transformed = _walsh_hadamard(gathered)
        chosen = (x_of_term >= start) & (x_of_term < start + block.shape[0])
        traces[chosen] = transformed[x_of_term[chosen] - start, z_masks[chosen]]
    return traces


def _walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """Along the last axis (length 2**n): ``out[..., k] = sum_j values[..., j] (-1)^popcount(j & k)``."""
    out = values.copy()
    size = out.shape[-1]
    half = 1
    while half < size:
        pairs = out.reshape(*out.shape[:-1], size // (2 * half), 2, half)
        low = pairs[..., 0, :].copy()
        high = pairs[..., 1, :]
        pairs[..., 0, :] += high
        pairs[..., 1, :] = low - high
        half *= 2
    return out


def density_probabilities(
    lowered: LoweredCircuit, values: np.ndarray, *, dtype: Any = np.complex128, cancel: Cancel | None = None
) -> np.ndarray:
    """``diag(rho)`` of every binding, shape (bindings, 2**n), float64.

    Rounding can leave tiny negative diagonal entries: they are clipped to 0 and each row is
    renormalised to sum to 1, so the rows are distributions a sampler can draw from.

    Raises:
        EngineCancelled: ``cancel`` was set (polled between bindings and kernel groups).
    """
    n = lowered.num_qubits
    program = density_program(lowered, values, dtype=dtype)
    diagonal = np.arange(1 << n, dtype=np.int64) * ((1 << n) + 1)  # vec index of rho[i, i]
    out = np.empty((program.num_bindings, 1 << n), dtype=np.float64)
    for b, vector in _final_vectors(program, cancel):
        row = np.clip(vector[diagonal].real.astype(np.float64), 0.0, None)
        out[b] = row / row.sum()
    return out


def _final_vectors(program: BoundProgram, cancel: Cancel | None) -> Any:
    """(binding, ``vec(rho)``) for each binding in turn, each evolved from index 0 by
    :func:`aqrt.engine.simulate.evolve` (serial below ``WIDE_QUBITS``, cache-blocked and
    amplitude-parallel from there, polling ``cancel``)."""
    from .simulate import evolve

    for b in range(program.num_bindings):
        vector = np.zeros(1 << program.num_qubits, dtype=program.dtype)
        vector[0] = 1.0
        evolve(vector, program, b, cancel)
        yield b, vector
