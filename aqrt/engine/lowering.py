"""Circuit -> flat program lowering, gate fusion, and per-binding matrices in bulk.

A circuit is lowered once into :class:`LoweredCircuit` (gate ops with static matrices or
parameter slots); :meth:`LoweredCircuit.bind` then computes every binding's matrices at once
(vectorised formulas for the standard parameterised gates), fuses neighbouring gates, classifies
each fused op by structure (diagonal / permutation / dense / multi-controlled / CX), and packs a
:class:`~aqrt.engine.ops.BoundProgram` of flat arrays for the kernels (format in :mod:`aqrt.engine.ops`).

Circuits are read through their duck-typed interface (``data``, ``operation.to_matrix()``,
``params``, ``definition``); this module imports only numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import gates
from .noise import CHANNEL_INSTRUCTION, Channel
from .ops import CTRL, CX, DENSE, DIAG, PERM, BoundProgram, OpArrays

__all__ = ["LoweredCircuit", "LoweringError", "fused_width", "lower_circuit"]

MAX_DENSE_QUBITS = 10  # widest gate applied as a dense matrix; wider gates must be controlled-1q
_SKIPPED = frozenset({"barrier", "delay", "id", "store"})
_NON_UNITARY = frozenset({"measure", "reset", "initialize", "if_else", "while_loop", "for_loop", "switch_case", "box"})


class LoweringError(ValueError):
    """The circuit holds an instruction the engine cannot run (named in the message)."""


@dataclasses.dataclass
class GateOp:
    """One gate of a lowered circuit.

    ``matrix`` is set for static gates; parameterised gates keep their operation and parameter
    slots, and get matrices per binding in :meth:`LoweredCircuit.bind`. ``control`` is set for
    wide multi-controlled 1-qubit gates: (control mask, control value), with ``qubits[0]`` the
    target and ``matrix`` the 2x2 base matrix. ``channel`` is set (and nothing else) for a noise
    channel (:class:`~aqrt.engine.noise.Channel`), which only the noisy simulators run;
    ``conjugate`` makes :meth:`LoweredCircuit.bind` use the complex conjugate of the gate's matrix
    (the column half of a density matrix).
    """

    qubits: tuple[int, ...]
    matrix: np.ndarray | None = None
    operation: Any = None
    slots: tuple[Any, ...] = ()
    control: tuple[int, int] | None = None
    channel: Channel | None = None
    conjugate: bool = False


def fused_width(num_qubits: int) -> int:
    """Widest fused block the engine uses (the default of :meth:`LoweredCircuit.bind`): runs of
    1-qubit gates are merged (and diagonal runs), at every width.

    Fusing two 1-qubit gates and the 2-qubit gate between them into one 4x4 where the cost model
    says it pays (``bind(..., max_fused_qubits=2)``, see ``_fuse``) did not make the wide
    workload faster (n = 20-24, benchmarks/README.md) and costs ~4x more binding time (an
    18-qubit, 2040-gate circuit: 94 ms against 20 ms), paid by every job that binds afresh (job
    mode, aqrt serve): so it is not the default. 3 or more qubit dense blocks cost more
    arithmetic than the cache passes they save with these kernels.
    """
    return 1


@dataclasses.dataclass
class LoweredCircuit:
    """A circuit as gate ops; bind it to parameter values to get a :class:`BoundProgram`."""

    num_qubits: int
    ops: list[GateOp]
    parameter_names: tuple[str, ...]

    @property
    def has_channels(self) -> bool:
        """Whether the circuit holds noise channels (then only the noisy simulators run it)."""
        return any(op.channel is not None for op in self.ops)

    def bound_matrix(self, op: GateOp, values: np.ndarray, column: dict[str, int] | None = None) -> np.ndarray:
        """``op``'s matrix: static (2-d), or one per binding (3-d) for ``values`` of shape (bindings, parameters).

        ``column`` maps parameter names to columns of ``values`` (computed when not given).
        """
        if op.matrix is not None:
            return op.matrix.conj() if op.conjugate else op.matrix
        if column is None:
            column = {name: j for j, name in enumerate(self.parameter_names)}
        params = [_evaluate(slot, values, column) for slot in op.slots]
        matrix = gates.batched_matrix(op.operation, params, values.shape[0])
        return matrix.conj() if op.conjugate else matrix

    def _bulk_matrices(self, values: np.ndarray, column: dict[str, int]) -> dict[int, np.ndarray]:
        """Matrices of the parameterised gates that have a vectorised formula, op index -> (bindings,
        d, d): the gates sharing a formula are evaluated in one call over all their bindings (a
        1000-binding sweep of a 64-rotation circuit: 2 formula calls instead of 64)."""
        by_formula: dict[Any, list[tuple[int, list[np.ndarray]]]] = {}
        for j, op in enumerate(self.ops):
            if op.matrix is not None or op.channel is not None:
                continue
            formula = gates.formula_of(op.operation, len(op.slots))
            if formula is not None:
                params = [_evaluate(slot, values, column) for slot in op.slots]
                by_formula.setdefault(formula, []).append((j, params))
        num_bindings = values.shape[0]
        out: dict[int, np.ndarray] = {}
        for formula, members in by_formula.items():
            stacked = [np.concatenate([params[p] for _, params in members]) for p in range(len(members[0][1]))]
            matrices = formula(*stacked)
            for g, (j, _) in enumerate(members):
                matrix = matrices[g * num_bindings : (g + 1) * num_bindings]
                out[j] = matrix.conj() if self.ops[j].conjugate else matrix
        return out

    def bind(
        self,
        values: np.ndarray,
        *,
        max_fused_qubits: int | None = None,
        fuse_by_cost: bool = False,
        dtype: Any = np.complex128,
    ) -> BoundProgram:
        """The program for ``values`` of shape (bindings, parameters) (columns in ``parameter_names`` order).

        By default gates are fused as production does: up to :func:`fused_width` qubits. A
        given ``max_fused_qubits`` fuses up to that width: greedily, or, with ``fuse_by_cost``,
        only where the cost model says the fused op is cheaper (see ``_fuse``; tests and
        experiments). ``dtype`` (complex128 or complex64) is the precision of the matrices and
        of the state.
        """
        by_cost = fuse_by_cost
        if max_fused_qubits is None:
            max_fused_qubits = fused_width(self.num_qubits)
        values = np.asarray(values, dtype=np.float64)
        num_bindings = values.shape[0]
        if self.has_channels:
            raise LoweringError("this circuit holds noise channels: run it on a noisy simulator")
        column = {name: j for j, name in enumerate(self.parameter_names)}
        matrices = self._bulk_matrices(values, column)
        bound: list[tuple[tuple[int, ...], np.ndarray, tuple[int, int] | None]] = [
            (op.qubits, matrices[j] if j in matrices else self.bound_matrix(op, values, column), op.control)
            for j, op in enumerate(self.ops)
        ]
        fused = _fuse(bound, max_fused_qubits, by_cost=by_cost)
        return _pack(self.num_qubits, fused, num_bindings, np.dtype(dtype))


def lower_circuit(circuit: Any, parameter_names: Sequence[str] | None = None) -> LoweredCircuit:
    """Lower ``circuit`` (measurements already removed) into gate ops.

    Raises:
        LoweringError: for non-unitary instructions or gates too wide to simulate densely.
    """
    names = tuple(parameter_names) if parameter_names is not None else tuple(p.name for p in circuit.parameters)
    ops: list[GateOp] = []
    qubit_index = {bit: i for i, bit in enumerate(circuit.qubits)}
    _lower_into(circuit, [qubit_index[q] for q in circuit.qubits], ops, position_prefix="")
    return LoweredCircuit(circuit.num_qubits, ops, names)


def _lower_into(circuit: Any, qubit_map: list[int], ops: list[GateOp], position_prefix: str) -> None:
    local = {bit: i for i, bit in enumerate(circuit.qubits)}
    for position, instruction in enumerate(circuit.data):
        operation = instruction.operation
        name = operation.name
        qubits = tuple(qubit_map[local[q]] for q in instruction.qubits)
        where = f"{position_prefix}{position}"
        if name in _SKIPPED or name == "global_phase" or not qubits:
            continue
        if name == CHANNEL_INSTRUCTION:
            ops.append(GateOp(qubits, channel=operation.channel))
            continue
        if name in _NON_UNITARY or getattr(operation, "_condition", None) is not None:
            raise LoweringError(f"instruction {where} ({name} on qubit(s) {list(qubits)}) is not a unitary gate")
        free = _has_free_parameters(operation)
        control = _controlled_1q(operation, qubits)
        if control is not None and _has_matrix(operation.base_gate, free):
            target_first = (qubits[-1], *qubits[:-1])
            if free:
                ops.append(GateOp(target_first, None, operation.base_gate, tuple(operation.base_gate.params), control))
            else:
                ops.append(GateOp(target_first, _matrix(operation.base_gate), control=control))
            continue
        if len(qubits) <= MAX_DENSE_QUBITS and hasattr(operation, "to_matrix") and _has_matrix(operation, free):
            if free:
                ops.append(GateOp(qubits, None, operation, tuple(operation.params)))
            else:
                ops.append(GateOp(qubits, _matrix(operation)))
            continue
        definition = getattr(operation, "definition", None)
        if definition is None:
            raise LoweringError(
                f"instruction {where} ({name} on {len(qubits)} qubit(s)) has no matrix and no definition"
            )
        _lower_into(definition, list(qubits), ops, position_prefix=f"{where}.")


def _has_free_parameters(operation: Any) -> bool:
    return any(hasattr(p, "parameters") and len(p.parameters) > 0 for p in getattr(operation, "params", ()))


def _has_matrix(operation: Any, free: bool) -> bool:
    if free:
        return gates.supports_parameterised(operation)
    try:
        operation.to_matrix()
    except Exception:  # gates with only a definition raise various errors here
        return False
    return True


def _matrix(operation: Any) -> np.ndarray:
    return np.ascontiguousarray(operation.to_matrix(), dtype=np.complex128)


def _controlled_1q(operation: Any, qubits: tuple[int, ...]) -> tuple[int, int] | None:
    """(control mask, control value) for multi-controlled 1-qubit gates wide enough to need it."""
    base = getattr(operation, "base_gate", None)
    num_ctrl = getattr(operation, "num_ctrl_qubits", 0)
    if base is None or num_ctrl < 1 or base.num_qubits != 1 or len(qubits) != num_ctrl + 1:
        return None
    if len(qubits) <= 2:  # cx, cz, crx, ...: the dense/perm/diag kernels are as fast
        return None
    mask = value = 0
    ctrl_state = int(operation.ctrl_state)
    for j, q in enumerate(qubits[:-1]):
        mask |= 1 << q
        if (ctrl_state >> j) & 1:
            value |= 1 << q
    return mask, value


def _evaluate(slot: Any, values: np.ndarray, column: dict[str, int]) -> np.ndarray:
    """A gate parameter's value for every binding, shape (bindings,)."""
    num_bindings = values.shape[0]
    if not hasattr(slot, "parameters"):
        return np.full(num_bindings, complex(slot).real if np.iscomplexobj(slot) else float(slot))
    parameters = list(slot.parameters)
    if getattr(slot, "is_symbol", lambda: False)() and len(parameters) == 1:
        return values[:, column[parameters[0].name]]
    if not parameters:
        return np.full(num_bindings, float(slot.numeric()))
    cols = [column[p.name] for p in parameters]
    out = np.empty(num_bindings)
    for b in range(num_bindings):
        out[b] = float(
            np.real(complex(slot.bind_all({p: values[b, c] for p, c in zip(parameters, cols, strict=True)})))
        )
    return out


# -- fusion -----------------------------------------------------------------------------------------

Bound = tuple[tuple[int, ...], np.ndarray, "tuple[int, int] | None"]


# Relative cost per amplitude of one op by (kind, width), measured with the serial kernels on a
# cache-resident 2**16 chunk (qubits >= 4, complex128; complex64 has the same ordering):
# 1q dense 0.39 ns, CX 0.14, 2q dense 0.74 (SIMD quads), 1q/2q diagonal ~0.4 (SIMD runs), a
# generic k-qubit dense/permutation op several ns (gathered, scalar). Fusion merges ops only
# when the fused op costs less than the ops it replaces.
# Below qubit VECTOR_QUBIT the 2-qubit kernel falls back to the generic one (several ns).
_COST = {(DENSE, 1): 1.0, (DENSE, 2): 1.9, (CX, 2): 0.35, (DIAG, 1): 0.8, (DIAG, 2): 2.0, (PERM, 1): 1.0}
_GENERIC_COST = 12.0  # wider dense / permutation / diagonal ops, low 2-qubit dense: gathered, scalar
_FUSE_GAIN = 0.9  # fuse when the fused op costs at most this share of the parts
_VECTOR_QUBIT = 4  # aqrt.engine.kernels.apply.VECTOR_QUBIT (that module loads numba)


def _op_cost(matrix: np.ndarray, qubits: tuple[int, ...] | list[int], control: tuple[int, int] | None) -> float:
    if control is not None:
        return _GENERIC_COST
    kind = _classify(matrix)
    if kind == PERM and _cx_pattern(matrix, tuple(qubits)) is not None:
        kind = CX
    if kind == DENSE and len(qubits) == 2 and min(qubits) < _VECTOR_QUBIT:
        return _GENERIC_COST
    return _COST.get((kind, len(qubits)), _GENERIC_COST * (1 << len(qubits)) / 8)


@dataclasses.dataclass
class _Block:
    qubits: list[int]
    matrix: np.ndarray
    control: tuple[int, int] | None
    cost: float
    alive: bool = True


def _fuse(ops: list[Bound], max_qubits: int, *, by_cost: bool = True) -> list[Bound]:
    """Greedy fusion. A gate joins (or merges) the latest blocks on its qubits when no later
    block touches their qubits, the union stays within ``max_qubits`` and, ``by_cost``, the
    fused op is cheaper than the blocks and the gate apart (``_COST``). Two open blocks on
    disjoint qubits merge through a 2-qubit gate (u (x) v then cx -> one 4x4). Controlled-wide
    gates are never fused."""
    blocks: list[_Block] = []
    last_block: dict[int, int] = {}
    by_cost = by_cost and max_qubits > 1  # merging 1-qubit runs always pays: no costs needed
    for qubits, matrix, control in ops:
        gate_cost = _op_cost(matrix, qubits, control) if by_cost else 0.0
        if control is None and len(qubits) <= max_qubits:
            joined = _try_join(blocks, last_block, list(qubits), matrix, gate_cost, max_qubits, by_cost)
            if joined:
                continue
        blocks.append(_Block(list(qubits), matrix, control, gate_cost))
        for q in qubits:
            last_block[q] = len(blocks) - 1
    return [(tuple(b.qubits), b.matrix, b.control) for b in blocks if b.alive]


def _try_join(
    blocks: list[_Block],
    last_block: dict[int, int],
    qubits: list[int],
    matrix: np.ndarray,
    cost: float,
    limit: int,
    by_cost: bool,
) -> bool:
    """Fuse the gate into the open blocks on its qubits if that pays; True when done."""
    latest = sorted({last_block[q] for q in qubits if q in last_block})
    if not latest or blocks[latest[-1]].control is not None:
        return False
    # The gate moves back to the latest block on its qubits (``target``); an earlier block can
    # move forward to it only while it is still the latest block on each of its own qubits.
    target = latest[-1]
    movable = [
        j for j in latest[:-1] if blocks[j].control is None and all(last_block[q] == j for q in blocks[j].qubits)
    ]
    for merged in (movable, []):  # merge every movable block, else join the target alone
        union = list(blocks[target].qubits)
        for j in merged:
            union += [q for q in blocks[j].qubits if q not in union]
        union += [q for q in qubits if q not in union]
        if len(union) > limit:
            continue
        product = _embed(blocks[target].matrix, blocks[target].qubits, union)
        for j in merged:  # disjoint from the target's qubits: the order among them does not matter
            product = _matmul(_embed(blocks[j].matrix, blocks[j].qubits, union), product)
        fused = _matmul(_embed(matrix, qubits, union), product)
        fused_cost = _op_cost(fused, union, None) if by_cost else 0.0
        parts = cost + blocks[target].cost + sum(blocks[j].cost for j in merged)
        if by_cost and fused_cost > _FUSE_GAIN * parts:
            continue
        block = blocks[target]
        block.qubits, block.matrix, block.cost = union, fused, fused_cost
        for j in merged:
            blocks[j].alive = False
            for q in blocks[j].qubits:
                last_block[q] = target
        for q in qubits:
            last_block[q] = target
        return True
    return False


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b over the last two axes (batch axes broadcast); 2x2 products written out, since numpy's
    batched matmul of many 2x2 matrices costs ~5x more (it dominated binding a 1000-binding sweep)."""
    if a.shape[-1] != 2:
        return a @ b
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    out[..., 0, 0] = a[..., 0, 0] * b[..., 0, 0] + a[..., 0, 1] * b[..., 1, 0]
    out[..., 0, 1] = a[..., 0, 0] * b[..., 0, 1] + a[..., 0, 1] * b[..., 1, 1]
    out[..., 1, 0] = a[..., 1, 0] * b[..., 0, 0] + a[..., 1, 1] * b[..., 1, 0]
    out[..., 1, 1] = a[..., 1, 0] * b[..., 0, 1] + a[..., 1, 1] * b[..., 1, 1]
    return out


def _embed(matrix: np.ndarray, qubits: list[int], target: list[int]) -> np.ndarray:
    """``matrix`` on ``qubits`` as a matrix on ``target`` (a superset), batch axes kept."""
    if list(qubits) == list(target):
        return matrix
    d = 1 << len(target)
    index = np.arange(d)
    positions = [target.index(q) for q in qubits]
    sub = np.zeros(d, dtype=np.int64)
    for j, pos in enumerate(positions):
        sub |= ((index >> pos) & 1) << j
    rest_mask = sum(1 << p for p in range(len(target)) if p not in positions)
    same_rest = (index[:, None] & rest_mask) == (index[None, :] & rest_mask)
    expanded = matrix[..., sub[:, None], sub[None, :]]
    return np.where(same_rest, expanded, 0)


# -- packing ----------------------------------------------------------------------------------------


def _classify(matrix: np.ndarray) -> int:
    nonzero = np.abs(matrix) > 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(axis=0)
    d = nonzero.shape[0]
    if not (nonzero & ~np.eye(d, dtype=bool)).any():
        return DIAG
    if (nonzero.sum(axis=0) == 1).all() and (nonzero.sum(axis=1) == 1).all():
        return PERM
    return DENSE


_CX_LOW_CONTROL = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.complex128)
_CX_HIGH_CONTROL = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=np.complex128)


def _cx_pattern(matrix: np.ndarray, qubits: tuple[int, ...]) -> tuple[int, int] | None:
    """(control, target) if ``matrix`` on ``qubits`` is exactly a CX, else None."""
    if matrix.shape[-1] != 4:
        return None
    if matrix.ndim == 3:
        if not (matrix == matrix[0]).all():
            return None
        matrix = matrix[0]
    if np.array_equal(matrix, _CX_LOW_CONTROL):
        return qubits[0], qubits[1]
    if np.array_equal(matrix, _CX_HIGH_CONTROL):
        return qubits[1], qubits[0]
    return None


def _pack(num_qubits: int, ops: list[Bound], num_bindings: int, dtype: np.dtype) -> BoundProgram:
    count = len(ops)
    max_width = max((len(q) for q, _, _ in ops), default=1)
    kinds = np.zeros(count, dtype=np.int64)
    qubits = np.zeros((count, max(max_width, 1)), dtype=np.int64)
    widths = np.zeros(count, dtype=np.int64)
    aux = np.zeros((count, 2), dtype=np.int64)
    sources = np.zeros(count, dtype=np.int64)
    offsets = np.zeros(count, dtype=np.int64)
    static_parts: list[np.ndarray] = []
    binding_parts: list[np.ndarray] = []
    static_size = binding_size = 0
    flat: np.ndarray
    for j, (op_qubits, matrix, control) in enumerate(ops):
        widths[j] = len(op_qubits)
        qubits[j, : len(op_qubits)] = op_qubits
        if control is not None:
            kinds[j] = CTRL
            aux[j] = control
            entries = matrix
        else:
            kinds[j] = _classify(matrix)
            control_target = _cx_pattern(matrix, op_qubits) if kinds[j] == PERM else None
            if control_target is not None:
                kinds[j] = CX
                qubits[j, :2] = control_target
                continue  # reads no matrix entries
            entries = np.diagonal(matrix, axis1=-2, axis2=-1) if kinds[j] == DIAG else matrix
        if entries.ndim == 3 or (entries.ndim == 2 and kinds[j] == DIAG):
            flat = entries.reshape(num_bindings, int(np.prod(entries.shape[1:])))
            sources[j], offsets[j] = 1, binding_size
            binding_parts.append(flat)
            binding_size += flat.shape[1]
        else:
            flat = entries.reshape(-1)
            sources[j], offsets[j] = 0, static_size
            static_parts.append(flat)
            static_size += flat.shape[0]
    static_buffer = np.ascontiguousarray(np.concatenate(static_parts) if static_parts else np.zeros(0), dtype=dtype)
    binding_buffers = np.ascontiguousarray(
        np.concatenate(binding_parts, axis=1) if binding_parts else np.zeros((num_bindings, 0)), dtype=dtype
    )
    arrays = OpArrays(kinds=kinds, qubits=qubits, widths=widths, aux=aux, sources=sources, offsets=offsets)
    return BoundProgram(num_qubits, arrays, static_buffer, binding_buffers)
