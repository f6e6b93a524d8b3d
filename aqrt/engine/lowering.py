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
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import gates
from .kernels import dtype_name
from .noise import CHANNEL_INSTRUCTION, Channel
from .ops import CTRL, CX, DENSE, DIAG, PERM, SEL, BoundProgram, OpArrays, SweepAngles

__all__ = ["SWEEP_GATES", "LoweredCircuit", "LoweringError", "SweepPlan", "fused_width", "lower_circuit"]

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
    _sweep_plans: dict[str, SweepPlan | None] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def has_channels(self) -> bool:
        """Whether the circuit holds noise channels (then only the noisy simulators run it);
        read once (every bind asks: a 140-gate circuit's scan was a tenth of a one-binding job's
        lowering work), as the sweep plans are: a lowered circuit's ops do not change."""
        return any(op.channel is not None for op in self.ops)

    @functools.cached_property
    def parameter_columns(self) -> dict[str, int]:
        """Each parameter's column in the values :meth:`bind` takes (made once: a loop's every
        one-binding job binds)."""
        return {name: j for j, name in enumerate(self.parameter_names)}

    def bound_matrix(self, op: GateOp, values: np.ndarray, column: dict[str, int] | None = None) -> np.ndarray:
        """``op``'s matrix: static (2-d), or one per binding (3-d) for ``values`` of shape (bindings, parameters).

        ``column`` maps parameter names to columns of ``values`` (computed when not given).
        """
        if op.matrix is not None:
            return op.matrix.conj() if op.conjugate else op.matrix
        if column is None:
            column = self.parameter_columns
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

        With the default fusion, the program comes from the circuit's :class:`SweepPlan` when it
        has one (plans are shared by content, so a new session's circuit finds its plan made):
        the kernels make its entries from angles (``binding_buffers`` is made only if read; one
        binding's 32-op row in ~5 µs, where fusing its gates' matrices afresh took ~2 ms). By default
        gates are fused as production does: up to :func:`fused_width` qubits, and a CX or CZ
        goes into a select with the 1-qubit gate before it on its target. A given
        ``max_fused_qubits`` fuses up to that width: greedily, or, with ``fuse_by_cost``, only
        where the cost model says the fused op is cheaper (see ``_fuse``; tests and
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
        column = self.parameter_columns
        if max_fused_qubits == fused_width(self.num_qubits) and not by_cost:
            plan = self.sweep_plan(np.dtype(dtype))
            if plan is not None:
                return plan.bind(values, column, self)
        matrices = self._bulk_matrices(values, column)
        bound: list[tuple[tuple[int, ...], np.ndarray, tuple[int, int] | None]] = [
            (op.qubits, matrices[j] if j in matrices else self.bound_matrix(op, values, column), op.control)
            for j, op in enumerate(self.ops)
        ]
        fused = _absorb_controlled_paulis(_fuse(bound, max_fused_qubits, by_cost=by_cost))
        return _pack(self.num_qubits, fused, num_bindings, np.dtype(dtype))

    def sweep_plan(self, dtype: np.dtype) -> SweepPlan | None:
        """The program's structure for sweeps at ``dtype`` (made once, kept), or None when a
        parameterised gate has no in-kernel formula (:data:`SWEEP_GATES`)."""
        name = dtype_name(dtype)  # numpy's dtype.name is Python code, asked at every bind
        if name not in self._sweep_plans:
            self._sweep_plans[name] = _shared_sweep_plan(self, dtype)
        return self._sweep_plans[name]


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
# The control of a Bound that is a select (kind SEL): qubits (target, control), matrix the two
# 2x2s stacked on axis -3 ((2, 2, 2) static, (bindings, 2, 2, 2) per binding).
_SELECTED = (-1, -1)
_PAULI_X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
_PAULI_Z = np.array([[1, 0], [0, -1]], dtype=np.complex128)
_CZ_DIAGONAL = [1, 1, 1, -1]


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


def _controlled_pauli(qubits: tuple[int, ...], matrix: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """The ways to read a 2-qubit gate as a controlled Pauli: (target, control, the target's 2x2)
    for a CX, both orientations of a CZ (symmetric), none for anything else."""
    if len(qubits) != 2 or matrix.shape != (4, 4):
        return []
    pattern = _cx_pattern(matrix, qubits)
    if pattern is not None:
        return [(pattern[1], pattern[0], _PAULI_X)]
    if matrix.tolist() == np.diag(_CZ_DIAGONAL).tolist():
        return [(qubits[1], qubits[0], _PAULI_Z), (qubits[0], qubits[1], _PAULI_Z)]
    return []


def _absorb_controlled_paulis(ops: list[Bound]) -> list[Bound]:
    """Each CX or CZ whose target's latest op is a plain 1-qubit op U becomes, with U, one select
    at the CX's place: U where the control bit is 0, P U where it is 1 (P = X or Z). U moves
    forward past ops on other qubits only, and the select costs about what U costs (one pass, the
    same arithmetic), so the controlled gate's own pass over the state is gone."""
    out: list[Bound | None] = []
    last: dict[int, int] = {}
    for qubits, matrix, control in ops:
        if control is None:
            for target, control_qubit, pauli in _controlled_pauli(qubits, matrix):
                j = last.get(target)
                if j is None:
                    continue
                previous = out[j]
                assert previous is not None
                if previous[2] is not None or len(previous[0]) != 1:
                    continue
                first = previous[1]
                out[j] = None
                out.append(((target, control_qubit), np.stack([first, _matmul(pauli, first)], axis=-3), _SELECTED))
                last[target] = last[control_qubit] = len(out) - 1
                break
            else:
                out.append((qubits, matrix, control))
                for q in qubits:
                    last[q] = len(out) - 1
            continue
        out.append((qubits, matrix, control))
        for q in qubits:
            last[q] = len(out) - 1
    return [op for op in out if op is not None]


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


_OFF_DIAGONAL = {d: ~np.eye(d, dtype=bool) for d in (2, 4, 8, 16)}


def _classify(matrix: np.ndarray) -> int:
    if matrix.ndim == 2 and matrix.shape[0] <= 4:
        return _classify_small(matrix.tolist())
    nonzero = matrix != 0
    if nonzero.ndim == 3:
        nonzero = nonzero.any(axis=0)
    d = nonzero.shape[0]
    off_diagonal = _OFF_DIAGONAL.get(d)
    if off_diagonal is None:
        off_diagonal = ~np.eye(d, dtype=bool)
    if not (nonzero & off_diagonal).any():
        return DIAG
    if (nonzero.sum(axis=0) == 1).all() and (nonzero.sum(axis=1) == 1).all():
        return PERM
    return DENSE


def _classify_small(rows: list[list[complex]]) -> int:
    """:func:`_classify` of a static matrix of at most 4 x 4, in plain Python: numpy's calls on
    arrays this small cost ~12 us a matrix, most of packing a 60-gate program."""
    d = len(rows)
    nonzero = [[value != 0 for value in row] for row in rows]
    if not any(nonzero[r][c] for r in range(d) for c in range(d) if r != c):
        return DIAG
    if all(sum(row) == 1 for row in nonzero) and all(sum(nonzero[r][c] for r in range(d)) == 1 for c in range(d)):
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
    rows = matrix.tolist()
    if rows == _CX_LOW_ROWS:
        return qubits[0], qubits[1]
    if rows == _CX_HIGH_ROWS:
        return qubits[1], qubits[0]
    return None


_CX_LOW_ROWS = _CX_LOW_CONTROL.tolist()
_CX_HIGH_ROWS = _CX_HIGH_CONTROL.tolist()


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
        if control == _SELECTED:
            kinds[j] = SEL
            entries = matrix.reshape(*matrix.shape[:-3], 8)
        elif control is not None:
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
        if entries.ndim == 3 or (entries.ndim == 2 and kinds[j] in (DIAG, SEL)):
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


# -- sweeps: entries made inside the kernel from angles ------------------------------------------

# Gate codes of aqrt.engine.kernels.sweeps (that module loads numba): name -> (code, width, the
# scale of each angle column: 0.5 for the half angles of rotations, 1 for phases).
_STATIC = 0
SWEEP_GATES: dict[str, tuple[int, int, tuple[float, ...]]] = {
    "rx": (1, 1, (0.5,)),
    "ry": (2, 1, (0.5,)),
    "rz": (3, 1, (0.5,)),
    "p": (4, 1, (1.0,)),
    "u1": (4, 1, (1.0,)),
    "u": (5, 1, (0.5, 1.0, 1.0)),
    "u3": (5, 1, (0.5, 1.0, 1.0)),
    "u2": (6, 1, (1.0, 1.0)),
    "r": (7, 1, (0.5, 1.0)),
    "rzz": (8, 2, (0.5,)),
    "cp": (9, 2, (1.0,)),
    "cu1": (9, 2, (1.0,)),
    "crz": (10, 2, (0.5,)),
}
_DIAGONAL_CODES = frozenset({3, 4, 8, 9, 10})


@dataclasses.dataclass
class SweepPlan:
    """A lowered circuit's program for many bindings, with the entries of its parameterised ops
    left to the sweep kernels (:mod:`aqrt.engine.kernels.sweeps`): fused and packed once, as
    :meth:`LoweredCircuit.bind` fuses (runs of 1-qubit gates merged), with each parameterised
    op a *recipe*: the product of its gates' matrices, made per binding from the cosines and
    sines of its angle columns. Binding then costs the (bindings, columns) angle table (the
    parameter values times each column's scale) instead of every binding's matrices.

    An op's kind is decided by structure, not by values: a run of rz/p gates (and static
    diagonals) is diagonal, any other run dense. The per-binding path classifies by the
    values' non-zero entries (ry(0) everywhere makes a diagonal op there): the amplitudes agree
    within rounding.
    """

    template: BoundProgram  # ops and static buffer; its binding buffer is a zero placeholder
    recipes: np.ndarray
    factors: np.ndarray
    constants: np.ndarray
    columns: list[tuple[str, Any, float]]  # per angle column: ("value", column, scale) / ("slot", slot, scale)

    @functools.cached_property
    def _value_columns(self) -> tuple[list[int], list[int], np.ndarray, bool]:
        """The angle columns that are a parameter's value times a scale: their indices, their
        parameters' columns, the scales, and whether they are every angle column, each parameter
        once and in order (made once: every bind of the plan reads them)."""
        direct = [k for k, (kind, _, _) in enumerate(self.columns) if kind == "value"]
        sources = [self.columns[k][1] for k in direct]
        scales = np.array([self.columns[k][2] for k in direct])
        in_order = len(direct) == len(self.columns) and sources == list(range(len(sources)))
        return direct, sources, scales, in_order

    def bind(self, values: np.ndarray, column: dict[str, int], lowered: LoweredCircuit) -> BoundProgram:
        """The program for ``values`` (bindings, parameters) as angles; its binding buffers are
        made in numpy only if something reads them."""
        num_bindings = values.shape[0]
        direct, sources, scales, in_order = self._value_columns
        if in_order and len(sources) == values.shape[1]:
            angles = values * scales  # every parameter once, in order, as is: no gather
        else:
            angles = np.empty((num_bindings, len(self.columns)))
            if direct:
                angles[:, direct] = values[:, sources] * scales
            for k, (kind, slot, scale) in enumerate(self.columns):
                if kind == "slot":
                    angles[:, k] = _evaluate(slot, values, column) * scale
        sweep = SweepAngles(
            angles=np.ascontiguousarray(angles),
            row_width=int(self.template.binding_buffers.shape[1]),
            recipes=self.recipes,
            factors=self.factors,
            constants=self.constants,
        )
        dtype = self.template.dtype

        def materialize() -> np.ndarray:
            return _materialize(sweep, dtype)

        return BoundProgram(
            self.template.num_qubits,
            self.template.ops,
            self.template.static_buffer,
            cache=self.template.cache,  # what is derived from the ops alone (the schedule): made once per plan
            angles=sweep,
            materialize=materialize,
        )


# Plans by content, across lowered circuits: a session lowers its circuits afresh, so each new
# session's first sweep of a circuit would otherwise build the same plan again (~1.5 ms at
# n = 8, a tenth of a 1000-binding sweep's job there).
_PLANS: dict[tuple[Any, ...], SweepPlan | None] = {}
_MAX_PLANS = 32


def _shared_sweep_plan(lowered: LoweredCircuit, dtype: np.dtype) -> SweepPlan | None:
    key = _content_key(lowered, dtype)
    if key is None:
        return _sweep_plan(lowered, dtype)
    if key not in _PLANS:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = _sweep_plan(lowered, dtype)
    return _PLANS[key]


def _content_key(lowered: LoweredCircuit, dtype: np.dtype) -> tuple[Any, ...] | None:
    """What a sweep plan depends on, or None when an op is not keyed by content (channels,
    matrices per binding, parameters that are neither numbers nor named expressions)."""
    ops: list[tuple[Any, ...]] = []
    for op in lowered.ops:
        if op.channel is not None or (op.matrix is not None and op.matrix.ndim != 2):
            return None
        if op.matrix is not None:
            ops.append((op.qubits, op.control, op.conjugate, op.matrix.tobytes()))
            continue
        slots: list[float | str] = []
        for slot in op.slots:
            if isinstance(slot, (int, float)):
                slots.append(float(slot))
            elif hasattr(slot, "parameters"):  # a parameter expression: its text names its parameters
                slots.append(str(slot))
            else:
                return None
        ops.append((op.qubits, op.control, op.conjugate, op.operation.name, tuple(slots)))
    return (lowered.num_qubits, lowered.parameter_names, dtype.name, tuple(ops))


def _sweep_plan(lowered: LoweredCircuit, dtype: np.dtype) -> SweepPlan | None:
    if lowered.has_channels:
        return None
    # Fusion as bind() does it, on structure: a 1-qubit gate joins the open 1-qubit block on its
    # qubit; a CX or CZ closes the open 1-qubit block on its target into a select (as
    # _absorb_controlled_paulis does), which moves to the CX's place; every other gate is a
    # block of its own.
    blocks: list[list[int] | None] = []
    selects: dict[int, tuple[int, int, np.ndarray]] = {}  # block -> (target, control, Pauli)
    last_block: dict[int, int] = {}

    def open_one_qubit(b: int | None) -> bool:
        if b is None or b in selects:
            return False
        members = blocks[b]
        assert members is not None
        return len(lowered.ops[members[0]].qubits) == 1 and lowered.ops[members[0]].control is None

    for j, op in enumerate(lowered.ops):
        if op.conjugate or (op.matrix is not None and op.matrix.ndim != 2):
            return None  # the column half of a density matrix; matrices already per binding
        if op.matrix is None and _sweep_gate(op) is None:
            return None
        if op.control is None and len(op.qubits) == 1:
            b = last_block.get(op.qubits[0])
            if open_one_qubit(b):
                assert b is not None
                members = blocks[b]
                assert members is not None
                members.append(j)
                continue
        if op.control is None and op.matrix is not None:
            absorbed = False
            for target, control_qubit, pauli in _controlled_pauli(op.qubits, op.matrix):
                b = last_block.get(target)
                if open_one_qubit(b):
                    assert b is not None
                    members = blocks[b]
                    assert members is not None
                    blocks[b] = None
                    blocks.append([*members, j])
                    selects[len(blocks) - 1] = (target, control_qubit, pauli)
                    last_block[target] = last_block[control_qubit] = len(blocks) - 1
                    absorbed = True
                    break
            if absorbed:
                continue
        blocks.append([j])
        for q in op.qubits:
            last_block[q] = len(blocks) - 1
    bound: list[Bound] = []
    pending: list[tuple[int, list[int], int, np.ndarray | None]] = []  # (op, own gates, recipe kind, Pauli)
    for b, block in enumerate(blocks):
        if block is None:
            continue
        select = selects.get(b)
        members = block[:-1] if select is not None else block
        first = lowered.ops[members[0]]
        if all(lowered.ops[j].matrix is not None for j in members):
            matrix = first.matrix
            assert matrix is not None
            for j in members[1:]:
                gate = lowered.ops[j].matrix
                assert gate is not None
                matrix = _matmul(gate, matrix)
            if select is not None:
                target, control_qubit, pauli = select
                stacked = np.stack([matrix, _matmul(pauli, matrix)], axis=-3)
                bound.append(((target, control_qubit), stacked, _SELECTED))
            else:
                bound.append((first.qubits, matrix, first.control))
            continue
        if first.control is not None:
            return None
        if select is not None:
            target, control_qubit, pauli = select
            bound.append(((target, control_qubit), np.ones((1, 2, 2, 2)), _SELECTED))
            pending.append((len(bound) - 1, members, SEL, pauli))
            continue
        diagonal = all(_is_diagonal_factor(lowered.ops[j]) for j in members)
        width = len(first.qubits)
        placeholder = np.eye(1 << width)[None] if diagonal else np.ones((1, 1 << width, 1 << width))
        bound.append((first.qubits, placeholder, None))
        pending.append((len(bound) - 1, members, DIAG if diagonal else DENSE, None))
    template = _pack(lowered.num_qubits, bound, 1, dtype)
    recipes = np.zeros((len(pending), 5), dtype=np.int64)
    factors: list[list[int]] = []
    constants: list[np.ndarray] = []
    columns: list[tuple[str, Any, float]] = []
    column_of: dict[tuple[Any, ...], int] = {}
    parameter_column = {name: j for j, name in enumerate(lowered.parameter_names)}
    for r, (b, members, kind, controlled) in enumerate(pending):
        if template.ops.sources[b] != 1:
            return None  # placeholder not packed per binding: cannot happen for the kinds above
        recipes[r] = (
            kind,
            template.ops.offsets[b],
            len(factors),
            len(members) + (controlled is not None),
            1 if kind == SEL else template.ops.widths[b],
        )
        for j in members:
            op = lowered.ops[j]
            if op.matrix is not None:
                factors.append([_STATIC, len(constants), 0, 0])
                constants.append(np.asarray(op.matrix, dtype=np.complex128).reshape(4))
                continue
            code, _, scales = SWEEP_GATES[op.operation.name]
            refs = [0, 0, 0]
            for p, (slot, scale) in enumerate(zip(op.slots, scales, strict=True)):
                key = _column_key(slot, scale, parameter_column)
                if key not in column_of:
                    column_of[key] = len(columns)
                    columns.append(("value", key[1], scale) if key[0] == "value" else ("slot", slot, scale))
                refs[p] = column_of[key]
            factors.append([code, *refs])
        if controlled is not None:  # a select's last factor: the controlled gate's target matrix
            factors.append([_STATIC, len(constants), 0, 0])
            constants.append(controlled.reshape(4))
    return SweepPlan(
        template=template,
        recipes=recipes,
        factors=np.array(factors, dtype=np.int64).reshape(len(factors), 4),
        constants=np.array(constants, dtype=np.complex128).reshape(len(constants), 4),
        columns=columns,
    )


def _sweep_gate(op: GateOp) -> tuple[int, int, tuple[float, ...]] | None:
    """The sweep kernels' code of a parameterised op, or None when it has none."""
    if op.operation is None or op.channel is not None:
        return None
    gate = SWEEP_GATES.get(op.operation.name)
    if gate is None or gate[1] != len(op.qubits) or gates.formula_of(op.operation, len(op.slots)) is None:
        return None
    return gate


def _is_diagonal_factor(op: GateOp) -> bool:
    if op.matrix is not None:
        return bool(op.matrix.shape == (2, 2) and op.matrix[0, 1] == 0 and op.matrix[1, 0] == 0)
    return SWEEP_GATES[op.operation.name][0] in _DIAGONAL_CODES


def _column_key(slot: Any, scale: float, parameter_column: dict[str, int]) -> tuple[Any, ...]:
    if hasattr(slot, "parameters") and getattr(slot, "is_symbol", lambda: False)() and len(slot.parameters) == 1:
        return ("value", parameter_column[next(iter(slot.parameters)).name], scale)
    return ("slot", id(slot), scale)


def _materialize(sweep: SweepAngles, dtype: np.dtype) -> np.ndarray:
    """Every binding's entries from ``sweep``'s angles, in numpy: what the sweep kernels make
    per binding (``fill_binding_row``), for the paths that read binding buffers.

    Each angle column's cosines and sines are arrays over the bindings; for one binding they are
    Python floats, and the same products are Python complex arithmetic (numpy's per-call cost on
    one-element arrays made one binding of a 32-op program ~2 ms; as floats it is ~0.25 ms)."""
    num_bindings = sweep.angles.shape[0]
    cos: Sequence[Any]
    sin: Sequence[Any]
    columns: Any  # entry k of every binding: an array over the bindings, or one binding's list
    if num_bindings == 1:
        angles = sweep.angles[0].tolist()
        cos, sin = [math.cos(a) for a in angles], [math.sin(a) for a in angles]
        columns = [0j] * sweep.row_width
    else:
        cos, sin = list(np.cos(sweep.angles).T), list(np.sin(sweep.angles).T)
        columns = np.zeros((num_bindings, sweep.row_width), dtype=np.complex128).T
    factors = sweep.factors.tolist()
    constants = sweep.constants.tolist()
    for kind, offset, first, count, width in sweep.recipes.tolist():
        own = count - 1 if kind == SEL else count
        m = _factor_entries(factors[first], constants, cos, sin)
        for f in range(first + 1, first + own):
            a = _factor_entries(factors[f], constants, cos, sin)
            if kind != DIAG:
                m = (
                    a[0] * m[0] + a[1] * m[2],
                    a[0] * m[1] + a[1] * m[3],
                    a[2] * m[0] + a[3] * m[2],
                    a[2] * m[1] + a[3] * m[3],
                )
            else:
                m = (a[0] * m[0], a[1] * m[1], a[2] * m[2], a[3] * m[3])
        if kind == SEL:
            c = _factor_entries(factors[first + own], constants, cos, sin)
            selected = (
                c[0] * m[0] + c[1] * m[2],
                c[0] * m[1] + c[1] * m[3],
                c[2] * m[0] + c[3] * m[2],
                c[2] * m[1] + c[3] * m[3],
            )
            for e in range(4):
                columns[offset + 4 + e] = selected[e]
        if kind == DIAG and width == 1:
            columns[offset] = m[0]
            columns[offset + 1] = m[3]
        else:
            for e in range(4):
                columns[offset + e] = m[e]
    if num_bindings == 1:
        return np.array([columns], dtype=dtype)
    return np.ascontiguousarray(columns.T, dtype=dtype)


def _factor_entries(
    factor: list[int], constants: list[list[complex]], cos: Sequence[Any], sin: Sequence[Any]
) -> tuple[Any, Any, Any, Any]:
    """A factor's (m00, m01, m10, m11) for every binding (as the kernel's ``_factor``), from the
    cosines and sines of the angle columns (arrays over the bindings, or one binding's floats)."""
    code, a0, a1, a2 = factor
    if code == _STATIC:
        return tuple(complex(v) for v in constants[a0])  # type: ignore[return-value]

    def unit(k: int) -> Any:
        return cos[k] + 1j * sin[k]

    c, s = cos[a0], sin[a0]
    if code == 1:
        return c + 0j, -1j * s, -1j * s, c + 0j
    if code == 2:
        return c + 0j, -s + 0j, s + 0j, c + 0j
    if code == 3:
        return c - 1j * s, 0j, 0j, c + 1j * s
    if code == 4:
        return 1 + 0j, 0j, 0j, unit(a0)
    if code == 5:
        e_phi, e_lam = unit(a1), unit(a2)
        return c + 0j, -e_lam * s, e_phi * s, e_phi * e_lam * c
    if code == 6:
        r = 1.0 / math.sqrt(2.0)
        e_phi, e_lam = unit(a0), unit(a1)
        return r + 0j, -e_lam * r, e_phi * r, e_phi * e_lam * r
    if code == 7:
        e_phi = unit(a1)
        return c + 0j, -1j * e_phi.conjugate() * s, -1j * e_phi * s, c + 0j
    if code == 8:
        return c - 1j * s, c + 1j * s, c + 1j * s, c - 1j * s
    if code == 9:
        return 1 + 0j, 1 + 0j, 1 + 0j, unit(a0)
    return 1 + 0j, c - 1j * s, 1 + 0j, c + 1j * s
