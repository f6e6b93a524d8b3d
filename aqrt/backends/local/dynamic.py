"""The dynamic-circuit route of the local backend: mid-circuit measurement, reset, control flow,
classical expressions and variables, on the numba engine's statevectors.

A circuit is compiled once per PUB into a flat list of steps: unitary stretches (lowered and bound
by the engine), ``measure``, ``reset``, jumps on a condition, switch tables and stores. ``if_else``,
``switch_case``, ``while_loop``, ``break_loop`` and ``continue_loop`` become jumps; ``for_loop``
bodies are unrolled with the loop parameter bound per iteration (a body that does not use it is
lowered once for all iterations); ``box`` bodies and non-gate instructions with a definition are
inlined. Classical expressions are compiled to closures (:mod:`.classical`).

The compiled program is then interpreted per binding over *branches*, one per outcome history:
(step, statevector, classical memory, shots or probability). A measurement or reset splits a
branch in two, each with the collapsed, renormalised state (copied only when both survive), so
shots that share a history share one state, and a circuit with few distinct histories costs about
one statevector run. A reset of a qubit that is not entangled with the others does not split (both
outcomes leave the same state). Branches are explored depth-first, so the states held at once are
bounded by the splits pending on the current path.

- Sampler: a branch's shots are split with ``rng.binomial``; a side with no shots is dropped.
  Measurements that end the circuit (a run of ``measure`` after the last step anything can jump
  to) do not split: each branch draws its shots' outcomes from its marginal distribution. Every
  branch's shots are then emitted and shuffled with the same generator, so the shot order is not
  grouped by outcome. Everything is drawn from ``rng`` alone: the same generator state gives the
  same samples.
- Estimator: branches are split by exact probability; a branch whose probability falls below
  ``1e-14`` is dropped (what it would add is below that bound times the observable's norm), and
  more than ``2**16`` branches in one binding raise :class:`~aqrt.errors.UnsupportedCircuitError`
  (the count depends on the state, so it is known only at run time). The value is the sum over
  histories of probability times the branch's expectation value, what hardware estimates;
  measurements that end the circuit dephase their qubits instead of splitting.

Differences from Qiskit's sampler and Aer, on purpose: parameters are not assigned per binding;
each unitary stretch is lowered once with the circuit's parameters free and bound for all
bindings at once (as the main engine route does), which is exact because control flow reads only
classical data. A ``while_loop`` that runs more than ``2**20`` iterations in one history raises
:class:`~aqrt.errors.UnsupportedCircuitError` rather than running forever, and so does a circuit
whose ``for_loop`` bodies unroll to more than ``2**20`` instructions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import CASE_DEFAULT, CONTROL_FLOW_OP_NAMES, Gate, Instruction, QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping

from ..._concurrency import CancelFlag
from ...engine import BoundProgram, LoweringError, lower_circuit
from ...engine.noise import CHANNEL_INSTRUCTION, Channel
from ...engine.observables import build_term_table_sparse
from ...errors import UnsupportedCircuitError
from .classical import (
    ClassicalEvaluationError,
    Memory,
    Scope,
    UnsupportedExpressionError,
    VariableSlots,
    compile_condition,
    compile_store,
    compile_switch_target,
    register_reader,
    with_bit,
)

__all__ = ["expectation_values", "needs_branching", "noisy_expectation_values", "sample", "unsupported"]

_MAX_ESTIMATOR_BRANCHES = 1 << 16  # outcome histories per binding the estimator follows at most
_MIN_BRANCH_PROBABILITY = 1e-14  # estimator branches less likely than this are dropped
_MAX_UNROLLED = 1 << 20  # instructions after unrolling for_loops
_MAX_LOOP_ITERATIONS = 1 << 20  # backward jumps (while_loop iterations) per history
_NORM_CHUNK = 1 << 16  # amplitudes per temporary when summing half a state's norm
_PRODUCT_TOLERANCE = 1e-24  # squared distance of a reset's two outcome states treated as equal

# Step opcodes of a compiled program; a step is a tuple (opcode, operands...).
_UNITARY = 0  # (program,)             apply a bound program (every binding's matrices)
_MEASURE = 1  # (qubit, clbit)
_RESET = 2  # (qubit,)
_JUMP = 3  # (target,)
_BRANCH = 4  # (condition, target)   go on when the condition holds, else jump to target
_SWITCH = 5  # (value, table, default)
_STORE = 6  # (update,)
_CHANNEL = 7  # (qubits, channel)    a noise channel: the branch splits over its operators

_TRANSPARENT = frozenset({"barrier", "delay"})
_REFUSED = frozenset({"initialize"})  # has a definition (reset + preparation), refused as the other routes do
_NON_UNITARY = CONTROL_FLOW_OP_NAMES | {"measure", "reset", "store"}


class _Unsupported(Exception):
    """A construct this route cannot run; the message names it."""


class _Label:
    """A jump target, placed (given a step index) once the compiler reaches it."""

    __slots__ = ("pc",)

    def __init__(self) -> None:
        self.pc = -1


@dataclasses.dataclass
class _Program:
    """A compiled circuit: steps up to ``tail_start``, then a run of measurements that end it."""

    num_qubits: int
    steps: list[tuple[Any, ...]]
    tail_start: int
    tail_qubits: tuple[int, ...]  # distinct qubits the tail measures, ascending
    tail_clbits: dict[int, int]  # clbit -> position in tail_qubits of the last measurement into it
    initial_memory: Memory
    tail_flips: tuple[tuple[float, float] | None, ...] = ()  # per tail qubit: P(read 1 | 0), P(read 0 | 1)

    @property
    def has_channels(self) -> bool:
        return any(step[0] == _CHANNEL for step in self.steps)


# -- which circuits, and which not ------------------------------------------------------------------


def needs_branching(circuit: QuantumCircuit) -> bool:
    """True when the circuit cannot run as one unitary followed by terminal measurements: any control flow,
    reset, store/vars, a measurement that is not terminal, or two terminal measurements into one clbit.

    Also true for a non-gate instruction whose definition holds any of these (this route inlines it).
    """
    if circuit.num_vars:
        return True
    counts = circuit.count_ops()
    names = set(counts)
    if names & (CONTROL_FLOW_OP_NAMES | {"reset", "store"}):
        return True
    if not names <= _standard_names():
        for instruction in circuit.data:
            operation = instruction.operation
            if operation.name not in _standard_names() and _is_instruction(operation):
                definition = operation.definition
                if definition is not None and _definition_branches(definition):
                    return True
    measurements = counts.get("measure", 0)
    return measurements > 0 and _has_nonterminal_measurement(circuit, measurements)


def _has_nonterminal_measurement(circuit: QuantumCircuit, measurements: int) -> bool:
    """Whether a measurement is not terminal, as ``reference.final_measurements`` has it: something
    other than a barrier or delay touches its qubit or clbit after it (a later measurement of the
    same qubit does not count). Walks back from the end, so measurements at the end cost only
    themselves."""
    qubit_index = {bit: i for i, bit in enumerate(circuit.qubits)}
    clbit_index = {bit: i for i, bit in enumerate(circuit.clbits)}
    busy_qubits: set[int] = set()
    busy_clbits: set[int] = set()
    for instruction in reversed(circuit.data):
        name = instruction.operation.name
        if name in _TRANSPARENT:
            continue
        if name == "measure":
            qubit, clbit = qubit_index[instruction.qubits[0]], clbit_index[instruction.clbits[0]]
            if qubit in busy_qubits or clbit in busy_clbits:
                return True
            busy_clbits.add(clbit)
            measurements -= 1
            if not measurements:
                return False
            continue
        busy_qubits.update(qubit_index[q] for q in instruction.qubits)
        busy_clbits.update(clbit_index[c] for c in instruction.clbits)
    return False


def _definition_branches(definition: QuantumCircuit) -> bool:
    """Whether an inlined definition holds anything but gates (a measurement in it is never terminal
    for the caller's purposes: the instruction may be followed by anything)."""
    for instruction in definition.data:
        operation = instruction.operation
        if operation.name in _TRANSPARENT or not _is_instruction(operation):
            continue
        if operation.name in _NON_UNITARY:
            return True
        inner = operation.definition
        if inner is not None and _definition_branches(inner):
            return True
    return False


def _is_instruction(operation: Any) -> bool:
    """A non-gate instruction (measure, reset, control flow, or one with a definition to inline);
    gates and other unitary operations (``AnnotatedOperation``) go to the engine as they are."""
    return isinstance(operation, Instruction) and not isinstance(operation, Gate)


@functools.cache
def _standard_names() -> frozenset[str]:
    """Names that are surely a standard gate, a measurement or transparent (no definition to look into)."""
    gates = {name for name, op in get_standard_gate_name_mapping().items() if isinstance(op, Gate)}
    return frozenset(gates | _TRANSPARENT | {"measure"})


def unsupported(circuit: QuantumCircuit, *, program: str) -> str | None:
    """A message naming the first construct this route cannot run (instruction position, name, qubits), or None.

    ``program`` is ``"sampler"`` or ``"estimator"``; both accept the same constructs (the estimator's
    branch cap depends on the state, so it is checked at run time). Compiles the circuit's control
    flow and expressions without lowering or simulating anything. A gate the engine cannot lower
    (e.g. a wide gate without a definition) is found only at run time.
    """
    if program not in ("sampler", "estimator"):
        raise ValueError(f"program must be 'sampler' or 'estimator', not {program!r}")
    if not circuit.num_input_vars and set(circuit.count_ops()) <= _standard_names() | {"reset"}:
        return None  # gates, measurements and resets only: nothing to refuse, and no pass over the circuit
    try:
        _Compiler(circuit, lower=False).compile()
    except _Unsupported as error:
        return str(error)
    return None


# -- compiling --------------------------------------------------------------------------------------


class _Compiler:
    """Circuit -> :class:`_Program`. With ``lower=False`` it only checks (no lowering; each
    for_loop body is compiled once and its instructions counted once per iteration)."""

    def __init__(
        self,
        circuit: QuantumCircuit,
        *,
        lower: bool,
        values: np.ndarray | None = None,
        names: Sequence[str] = (),
        dtype: Any = np.complex128,
        flips: Sequence[tuple[float, float] | None] = (),
    ) -> None:
        self.circuit = circuit
        self.flips = tuple(flips)
        self.lower = lower
        self.values = np.zeros((1, 0)) if values is None else np.asarray(values, dtype=np.float64)
        self.names = tuple(names)
        self.dtype = np.dtype(dtype)
        self.slots = VariableSlots()
        self.steps: list[list[Any]] = []
        self._pending: list[tuple[Any, tuple[int, ...], str, tuple[int, int, int]]] = []
        self._segments: dict[tuple[tuple[int, int, int], ...], BoundProgram] = {}
        self._alive: dict[int, Any] = {}  # blocks whose id() keys the segment cache
        self._qubit_maps: dict[tuple[int, ...], int] = {}
        self._bound_bodies: dict[tuple[int, Any], QuantumCircuit] = {}
        self._loops: list[tuple[_Label, _Label]] = []  # (break target, continue target) per loop
        self._weight = 1  # iterations an instruction stands for (check mode: for_loops not unrolled)
        self._size = 0

    def compile(self) -> _Program:
        circuit = self.circuit
        if circuit.num_input_vars:
            names = ", ".join(repr(var.name) for var in circuit.iter_input_vars())
            raise _Unsupported(f"the circuit has input variables ({names}), which a primitive gives no values")
        scope = Scope({bit: i for i, bit in enumerate(circuit.clbits)}, self.slots)
        self._compile_block(circuit, tuple(range(circuit.num_qubits)), scope, "")
        self._flush()
        steps = [self._resolve(step) for step in self.steps]
        return _with_tail(circuit.num_qubits, steps, self.slots.initial_memory())

    # -- emitting

    def _emit(self, *step: Any) -> None:
        self._flush()
        self.steps.append(list(step))

    def _place(self, label: _Label) -> None:
        self._flush()
        label.pc = len(self.steps)

    @staticmethod
    def _resolve(step: list[Any]) -> tuple[Any, ...]:
        def pc(target: Any) -> Any:
            return target.pc if isinstance(target, _Label) else target

        if step[0] == _SWITCH:
            return (_SWITCH, step[1], {value: pc(label) for value, label in step[2].items()}, pc(step[3]))
        return tuple(pc(operand) for operand in step)

    def _count(self, where: str) -> None:
        self._size += self._weight
        if self._size > _MAX_UNROLLED:
            raise _Unsupported(f"instruction {where}: the circuit unrolls to more than {_MAX_UNROLLED} instructions")

    # -- unitary stretches

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self.lower:
            return
        key = tuple(origin for _, _, _, origin in pending)
        program = self._segments.get(key)
        if program is None:
            program = self._segments[key] = self._lower([(op, qubits) for op, qubits, _, _ in pending], pending)
        self.steps.append([_UNITARY, program])

    def _lower(self, gates: list[tuple[Any, tuple[int, ...]]], pending: list[Any]) -> BoundProgram:
        try:
            return lower_circuit(self._stretch(gates), self.names).bind(self.values, dtype=self.dtype)
        except LoweringError as stretch_error:
            for op, qubits, where, _ in pending:  # find the gate at fault, to name it
                try:
                    lower_circuit(self._stretch([(op, qubits)]), self.names)
                except LoweringError as error:
                    raise _Unsupported(f"instruction {where} ({op.name} on qubit(s) {list(qubits)}): {error}") from None
            raise _Unsupported(f"instructions {pending[0][2]} to {pending[-1][2]}: {stretch_error}") from None

    def _stretch(self, gates: list[tuple[Any, tuple[int, ...]]]) -> QuantumCircuit:
        stretch = QuantumCircuit(self.circuit.num_qubits)
        for operation, qubits in gates:
            stretch.append(operation, qubits, copy=False)
        return stretch

    # -- blocks

    def _compile_block(self, block: QuantumCircuit, qubit_map: tuple[int, ...], scope: Scope, prefix: str) -> None:
        self._alive[id(block)] = block
        map_id = self._qubit_maps.setdefault(qubit_map, len(self._qubit_maps))
        local = {bit: i for i, bit in enumerate(block.qubits)}
        for position, instruction in enumerate(block.data):
            operation = instruction.operation
            name = operation.name
            where = f"{prefix}{position}"
            if name in _TRANSPARENT:
                continue
            qubits = tuple(qubit_map[local[q]] for q in instruction.qubits)
            self._count(where)
            if not _is_instruction(operation):
                self._pending.append((operation, qubits, where, (id(block), position, map_id)))
                continue
            try:
                clbits = tuple(scope.clbit(c) for c in instruction.clbits)
                self._compile_instruction(operation, qubits, clbits, scope, where)
            except UnsupportedExpressionError as error:
                raise _Unsupported(f"instruction {where} ({name} on qubit(s) {list(qubits)}): {error}") from None

    def _inner_scope(self, block: QuantumCircuit, clbits: tuple[int, ...]) -> Scope:
        return Scope(dict(zip(block.clbits, clbits, strict=True)), self.slots)

    def _compile_instruction(
        self, operation: Any, qubits: tuple[int, ...], clbits: tuple[int, ...], scope: Scope, where: str
    ) -> None:
        name = operation.name
        if name == "measure":
            flip = self.flips[qubits[0]] if qubits[0] < len(self.flips) else None
            self._emit(_MEASURE, qubits[0], clbits[0], flip)
        elif name == CHANNEL_INSTRUCTION:
            self._emit(_CHANNEL, qubits, _PreparedChannel.of(operation.channel))
        elif name == "reset":
            self._emit(_RESET, qubits[0])
        elif name == "store":
            self._emit(_STORE, compile_store(operation.lvalue, operation.rvalue, scope))
        elif name == "if_else":
            self._compile_if(operation, qubits, clbits, scope, where)
        elif name == "while_loop":
            self._compile_while(operation, qubits, clbits, scope, where)
        elif name == "for_loop":
            self._compile_for(operation, qubits, clbits, where)
        elif name == "switch_case":
            self._compile_switch(operation, qubits, clbits, scope, where)
        elif name == "box":
            body = operation.blocks[0]
            self._compile_block(body, qubits, self._inner_scope(body, clbits), f"{where}.0.")
        elif name in ("break_loop", "continue_loop"):
            if not self._loops:
                raise _Unsupported(f"instruction {where} ({name}) is outside a loop")
            self._emit(_JUMP, self._loops[-1][0 if name == "break_loop" else 1])
        elif name in _REFUSED or name in CONTROL_FLOW_OP_NAMES or operation.definition is None:
            raise _Unsupported(
                f"instruction {where} ({name} on qubit(s) {list(qubits)}) is {name!r}, which this backend cannot run"
            )
        else:
            definition = operation.definition
            self._compile_block(definition, qubits, self._inner_scope(definition, clbits), f"{where}.")

    def _compile_if(
        self, operation: Any, qubits: tuple[int, ...], clbits: tuple[int, ...], scope: Scope, where: str
    ) -> None:
        condition = compile_condition(operation.condition, scope)
        true_body, false_body = operation.blocks[0], operation.blocks[1] if len(operation.blocks) > 1 else None
        otherwise, end = _Label(), _Label()
        self._emit(_BRANCH, condition, otherwise)
        self._compile_block(true_body, qubits, self._inner_scope(true_body, clbits), f"{where}.0.")
        if false_body is not None:
            self._emit(_JUMP, end)
        self._place(otherwise)
        if false_body is not None:
            self._compile_block(false_body, qubits, self._inner_scope(false_body, clbits), f"{where}.1.")
            self._place(end)

    def _compile_while(
        self, operation: Any, qubits: tuple[int, ...], clbits: tuple[int, ...], scope: Scope, where: str
    ) -> None:
        condition = compile_condition(operation.condition, scope)
        body = operation.blocks[0]
        top, end = _Label(), _Label()
        self._place(top)
        self._emit(_BRANCH, condition, end)
        self._loops.append((end, top))
        self._compile_block(body, qubits, self._inner_scope(body, clbits), f"{where}.0.")
        self._loops.pop()
        self._emit(_JUMP, top)
        self._place(end)

    def _compile_for(self, operation: Any, qubits: tuple[int, ...], clbits: tuple[int, ...], where: str) -> None:
        indexset, parameter, body = operation.params
        values = list(indexset)
        scope = self._inner_scope(body, clbits)
        end = _Label()
        if not self.lower:  # check the body once, counting it once per iteration
            weight = self._weight
            self._weight *= max(len(values), 1)
            self._loops.append((end, _Label()))
            self._compile_block(body, qubits, scope, f"{where}.0.")
            self._loops.pop()
            self._weight = weight
            return
        uses_parameter = parameter is not None and parameter in set(body.parameters)
        for value in values:
            iteration = self._bind_loop(body, parameter, value) if uses_parameter else body
            following = _Label()
            self._loops.append((end, following))
            self._compile_block(iteration, qubits, self._inner_scope(iteration, clbits), f"{where}.0.")
            self._loops.pop()
            self._place(following)
        self._place(end)

    def _bind_loop(self, body: QuantumCircuit, parameter: Any, value: Any) -> QuantumCircuit:
        key = (id(body), value)
        bound = self._bound_bodies.get(key)
        if bound is None:
            bound = self._bound_bodies[key] = body.assign_parameters({parameter: value}, inplace=False)
        return bound

    def _compile_switch(
        self, operation: Any, qubits: tuple[int, ...], clbits: tuple[int, ...], scope: Scope, where: str
    ) -> None:
        target = compile_switch_target(operation.target, scope)
        cases = list(operation.cases_specifier())
        labels = [_Label() for _ in cases]
        end = _Label()
        table: dict[int, _Label] = {}
        default = end
        for (case_values, _), label in zip(cases, labels, strict=True):
            for value in case_values:
                if value is CASE_DEFAULT:
                    default = label
                else:
                    table.setdefault(int(value), label)
        self._emit(_SWITCH, target, table, default)
        for k, ((_, block), label) in enumerate(zip(cases, labels, strict=True)):
            self._place(label)
            self._compile_block(block, qubits, self._inner_scope(block, clbits), f"{where}.{k}.")
            if k < len(cases) - 1:
                self._emit(_JUMP, end)
        self._place(end)


def _with_tail(num_qubits: int, steps: list[tuple[Any, ...]], initial: Memory) -> _Program:
    """The program, with the run of measurements that ends it (and that no jump lands inside) apart."""
    tail_start = len(steps)
    while tail_start > 0 and steps[tail_start - 1][0] == _MEASURE:
        tail_start -= 1
    for step in steps:
        if step[0] in (_JUMP, _BRANCH):
            targets = [step[-1]]
        elif step[0] == _SWITCH:
            targets = [*step[2].values(), step[3]]
        else:
            continue
        for target in targets:
            if tail_start < target < len(steps):
                tail_start = target
    tail = steps[tail_start:]
    tail_qubits = tuple(sorted({step[1] for step in tail}))
    column = {qubit: j for j, qubit in enumerate(tail_qubits)}
    tail_clbits = {step[2]: column[step[1]] for step in tail}  # later measurements overwrite: last write wins
    flip_of = {step[1]: step[3] for step in tail}
    tail_flips = tuple(flip_of[qubit] for qubit in tail_qubits)
    return _Program(num_qubits, steps[:tail_start], tail_start, tail_qubits, tail_clbits, initial, tail_flips)


def _compile(
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: Sequence[str],
    dtype: Any,
    flips: Sequence[tuple[float, float] | None] = (),
) -> _Program:
    try:
        return _Compiler(circuit, lower=True, values=values, names=names, dtype=dtype, flips=flips).compile()
    except _Unsupported as error:
        raise UnsupportedCircuitError(0, str(error)) from None


# -- states -----------------------------------------------------------------------------------------


def _half_norms(state: np.ndarray, qubit: int) -> tuple[float, float]:
    """Squared norms of the parts of ``state`` with ``qubit`` = 0 and = 1 (temporaries stay small)."""
    view = state.reshape(-1, 2, 1 << qubit)
    rows = max(1, _NORM_CHUNK >> qubit)
    norm0 = norm1 = 0.0
    for start in range(0, view.shape[0], rows):
        block = view[start : start + rows]
        zero, one = block[:, 0, :], block[:, 1, :]
        norm0 += float(np.vdot(zero, zero).real)
        norm1 += float(np.vdot(one, one).real)
    return norm0, norm1


def _unentangled(state: np.ndarray, qubit: int, norm0: float, norm1: float) -> bool:
    """Whether ``qubit`` is in a product state with the rest, so that a reset leaves one state
    whatever the outcome: the normalised halves agree up to a global phase, to a squared distance
    below ``_PRODUCT_TOLERANCE`` (computed from the differences, so without cancellation)."""
    view = state.reshape(-1, 2, 1 << qubit)
    rows = max(1, _NORM_CHUNK >> qubit)
    overlap = 0j
    for start in range(0, view.shape[0], rows):
        block = view[start : start + rows]
        overlap += complex(np.vdot(block[:, 0, :], block[:, 1, :]))
    if abs(overlap) == 0.0:
        return False
    phase = overlap / abs(overlap)
    scale0, scale1 = phase / np.sqrt(norm0), 1.0 / np.sqrt(norm1)
    distance = 0.0
    for start in range(0, view.shape[0], rows):
        block = view[start : start + rows]
        difference = block[:, 1, :] * scale1 - block[:, 0, :] * scale0
        distance += float(np.vdot(difference, difference).real)
        if distance > _PRODUCT_TOLERANCE:
            return False
    return True


def _collapse(state: np.ndarray, qubit: int, outcome: int, norm: float, *, reset: bool) -> None:
    """Project ``state`` on ``qubit`` = ``outcome`` and renormalise (in place); with ``reset``, then
    flip the qubit to 0."""
    view = state.reshape(-1, 2, 1 << qubit)
    view[:, 1 - outcome, :] = 0
    view[:, outcome, :] *= 1.0 / np.sqrt(norm)
    if reset and outcome:
        view[:, 0, :] = view[:, 1, :]
        view[:, 1, :] = 0


def _marginal(state: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """Probabilities of ``qubits`` (ascending); outcome index bit j is ``qubits[j]``."""
    probabilities = np.abs(state).astype(np.float64, copy=False)
    np.square(probabilities, out=probabilities)
    num_qubits = state.shape[0].bit_length() - 1
    if qubits != tuple(range(num_qubits)):
        summed = tuple(num_qubits - 1 - q for q in range(num_qubits) if q not in qubits)
        probabilities = probabilities.reshape((2,) * num_qubits).sum(axis=summed)
    marginal = probabilities.reshape(-1)
    return marginal / marginal.sum()


def _apply_local(state: np.ndarray, qubits: tuple[int, ...], matrix: np.ndarray) -> np.ndarray:
    """``matrix`` (qubit ``qubits[j]`` = bit j of its index) applied to ``state``: a new array."""
    k = len(qubits)
    n = state.shape[0].bit_length() - 1
    axes = [n - 1 - q for q in reversed(qubits)]  # tensor axis of each matrix row bit, most significant first
    tensor = np.tensordot(matrix.reshape((2,) * (2 * k)), state.reshape((2,) * n), axes=(list(range(k, 2 * k)), axes))
    return np.ascontiguousarray(np.moveaxis(tensor, list(range(k)), axes).reshape(-1), dtype=state.dtype)


def _reduced_density(state: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """The reduced density matrix of ``qubits`` (qubit ``qubits[j]`` = bit j of its index)."""
    k = len(qubits)
    n = state.shape[0].bit_length() - 1
    axes = [n - 1 - q for q in reversed(qubits)]
    rows = np.moveaxis(state.reshape((2,) * n), axes, list(range(k))).reshape(1 << k, -1)
    return rows @ rows.conj().T


_IDENTITY = -1  # the branch of a channel that leaves the state as it is


@dataclasses.dataclass(frozen=True)
class _PreparedChannel:
    """A channel as the interpreter applies it.

    A unitary mixture splits a branch by its fixed weights (its identity branch, if any, leaves
    the state alone). Any other channel is ``p * identity + (1 - p) * rest``
    (:attr:`~aqrt.engine.noise.Channel.identity_split`): the branch is first split by ``p``, which
    does not depend on the state, and only the ``rest`` share looks at the state: each of
    ``rest``'s operators weighs ``<K^dagger K>``, read from the channel's reduced density matrix,
    and only the chosen operators are applied. A device's gate error is mostly identity
    (p = 0.95-0.9997), so most shots pass it at no cost.
    """

    channel: Channel
    identity: int  # a unitary mixture's identity branch, or _IDENTITY
    idle: float = 0.0  # p: the identity's weight in a channel that is not a mixture
    rest: Channel | None = None
    effects: np.ndarray | None = None  # (operators, d, d): K^dagger K of rest's operators

    @classmethod
    def of(cls, channel: Channel) -> _PreparedChannel:
        if channel.unitaries is not None:
            eye = np.eye(channel.unitaries[0].shape[0])
            for i, unitary in enumerate(channel.unitaries):
                if np.allclose(unitary / unitary[0, 0], eye, atol=1e-12) and abs(abs(unitary[0, 0]) - 1) < 1e-12:
                    return cls(channel, i)
            return cls(channel, _IDENTITY)
        idle, rest = channel.identity_split
        effects = None if rest is None else np.stack([op.conj().T @ op for op in rest.kraus])
        return cls(channel, _IDENTITY, idle, rest, effects)

    def shares(self, count: Any, state: np.ndarray, qubits: tuple[int, ...], choose: Choose) -> list[tuple[int, Any]]:
        """``count`` divided over the channel's branches: (branch, share) pairs, shares non-zero."""
        if self.channel.probabilities is not None:
            split = choose(count, self.channel.probabilities)
            return [(self._mixture_branch(i), share) for i, share in enumerate(split) if share]
        if self.rest is None:
            return [(_IDENTITY, count)]
        idle, busy = choose(count, np.array([self.idle, 1.0 - self.idle]))
        out = [(_IDENTITY, idle)] if idle else []
        if busy:
            assert self.effects is not None
            density = _reduced_density(state, qubits)
            weights = np.clip(np.einsum("kij,ji->k", self.effects, density).real, 0.0, None)
            split = choose(busy, weights / weights.sum())
            out += [(i, share) for i, share in enumerate(split) if share]
        return out

    def _mixture_branch(self, index: int) -> int:
        return _IDENTITY if index == self.identity else index

    def apply(self, state: np.ndarray, qubits: tuple[int, ...], branch: int) -> np.ndarray:
        """The state after ``branch``, renormalised: ``state`` itself for the identity, else a new array."""
        if branch == _IDENTITY:
            return state
        if self.channel.unitaries is not None:
            return _apply_local(state, qubits, self.channel.unitaries[branch])
        assert self.rest is not None
        result = _apply_local(state, qubits, self.rest.kraus[branch])
        norm = float(np.vdot(result, result).real)
        if norm > 0:
            result *= 1.0 / np.sqrt(norm)
        return result


# -- interpreting -----------------------------------------------------------------------------------

Split = Callable[[Any, float, float], tuple[Any, Any]]
Choose = Callable[[Any, np.ndarray], np.ndarray]  # a branch's count divided over weights (zeros dropped)
Finish = Callable[[np.ndarray, Memory, Any], None]


def _explore(
    program: _Program,
    binding: int,
    count: Any,
    split: Split,
    finish: Finish,
    cancel: CancelFlag | None,
    *,
    dtype: Any,
    max_branches: int | None = None,
    choose: Choose | None = None,
) -> int:
    """Run every outcome history of one binding depth-first; ``finish`` gets each at the tail.

    ``count`` is what a branch carries (shots or probability); ``split(count, norm0, norm1)``
    divides it between the outcomes (a falsy share drops that side). ``choose(count, weights)``
    divides it over a noise channel's operators and over a measurement's read-out errors (the
    recorded bit flipped or not; the state keeps the true outcome). Returns how many branches
    there were.
    """
    from ...engine.simulate import EngineCancelled, evolve

    state = np.zeros(1 << program.num_qubits, dtype=dtype)
    state[0] = 1.0
    stack: list[tuple[int, np.ndarray, Memory, Any]] = [(0, state, program.initial_memory, count)]
    steps, end = program.steps, program.tail_start
    branches = 1

    def fork() -> None:
        nonlocal branches
        branches += 1
        if max_branches is not None and branches > max_branches:
            raise UnsupportedCircuitError(0, f"the circuit has more than {max_branches} outcome histories to follow")

    def record(pc: int, state: np.ndarray, memory: Memory, step: tuple[Any, ...], outcome: int, count: Any) -> Any:
        """Write a measurement's outcome, as read out (maybe flipped), into ``memory``; a read-out
        error that splits the branch pushes the flipped side. Returns (memory, count) that go on."""
        flip = step[3]
        if flip is None or not flip[outcome]:
            return with_bit(memory, step[2], outcome), count
        assert choose is not None
        keep, flipped = choose(count, np.array([1.0 - flip[outcome], flip[outcome]]))
        if keep and flipped:
            fork()
            stack.append((pc, state.copy(), with_bit(memory, step[2], 1 - outcome), flipped))
        if keep:
            return with_bit(memory, step[2], outcome), keep
        return with_bit(memory, step[2], 1 - outcome), flipped

    try:
        while stack:
            pc, state, memory, count = stack.pop()
            iterations = 0
            while pc < end:
                step = steps[pc]
                kind = step[0]
                if kind == _UNITARY:
                    if cancel is not None and cancel.is_set():
                        raise EngineCancelled
                    evolve(state, step[1], binding, cancel)
                elif kind in (_MEASURE, _RESET):
                    qubit, reset = step[1], kind == _RESET
                    norm0, norm1 = _half_norms(state, qubit)
                    if reset and norm0 > 0.0 and norm1 > 0.0 and _unentangled(state, qubit, norm0, norm1):
                        # both outcomes leave the same state: one branch, from the likelier side
                        count0, count1 = (count, 0) if norm0 >= norm1 else (0, count)
                    else:
                        count0, count1 = split(count, norm0, norm1)
                    if count0 and count1:
                        fork()
                        other = state.copy()
                        _collapse(other, qubit, 1, norm1, reset=reset)
                        other_memory, other_count = (
                            (memory, count1) if reset else record(pc + 1, other, memory, step, 1, count1)
                        )
                        stack.append((pc + 1, other, other_memory, other_count))
                    outcome = 0 if count0 else 1
                    _collapse(state, qubit, outcome, norm1 if outcome else norm0, reset=reset)
                    count = count0 if count0 else count1
                    if not reset:
                        memory, count = record(pc + 1, state, memory, step, outcome, count)
                elif kind == _CHANNEL:
                    assert choose is not None
                    qubits, prepared = step[1], step[2]
                    branches_here = sorted(
                        prepared.shares(count, state, qubits, choose), key=lambda pair: -float(pair[1])
                    )
                    for branch, share in branches_here[1:]:
                        fork()
                        other = prepared.apply(state, qubits, branch)
                        stack.append((pc + 1, other.copy() if other is state else other, memory, share))
                    branch, count = branches_here[0]
                    state = prepared.apply(state, qubits, branch)
                elif kind == _BRANCH:
                    if not step[1](memory):
                        pc = step[2]
                        continue
                elif kind == _JUMP:
                    if step[1] <= pc:
                        iterations += 1
                        if iterations > _MAX_LOOP_ITERATIONS:
                            raise UnsupportedCircuitError(
                                0, f"a while_loop ran more than {_MAX_LOOP_ITERATIONS} iterations"
                            )
                    pc = step[1]
                    continue
                elif kind == _SWITCH:
                    pc = step[2].get(step[1](memory), step[3])
                    continue
                else:
                    memory = step[1](memory)
                pc += 1
            if cancel is not None and cancel.is_set():
                raise EngineCancelled
            finish(state, memory, count)
    except ClassicalEvaluationError as error:
        raise UnsupportedCircuitError(0, str(error)) from None
    return branches


def _split_shots(rng: np.random.Generator) -> Split:
    def split(shots: int, norm0: float, norm1: float) -> tuple[int, int]:
        if norm1 <= 0.0:
            return shots, 0
        if norm0 <= 0.0:
            return 0, shots
        ones = int(rng.binomial(shots, min(1.0, norm1 / (norm0 + norm1))))
        return shots - ones, ones

    return split


def _choose_shots(rng: np.random.Generator) -> Choose:
    def choose(shots: int, weights: np.ndarray) -> np.ndarray:
        """``weights`` are non-negative and sum to 1 (every caller normalises them)."""
        if weights.shape[0] == 2:
            second = int(rng.binomial(shots, min(1.0, max(0.0, float(weights[1])))))
            return np.array([shots - second, second])
        return rng.multinomial(shots, weights)

    return choose


def _choose_probability(probability: float, weights: np.ndarray) -> np.ndarray:
    shares = probability * np.asarray(weights, dtype=np.float64)
    keep = shares >= _MIN_BRANCH_PROBABILITY
    if not keep.any():  # keep the likeliest
        keep = np.arange(shares.shape[0]) == int(np.argmax(shares))
    return np.where(keep, shares, 0.0)


def _flip_probabilities(
    readout: Sequence[np.ndarray | None] | None, num_qubits: int
) -> tuple[tuple[float, float] | None, ...]:
    """Per qubit, (P(read 1 | 0), P(read 0 | 1)) from assignment matrices ``[true][measured]``; None: exact."""
    if readout is None:
        return ()
    if len(readout) != num_qubits:
        raise ValueError(f"readout has {len(readout)} entries, the circuit {num_qubits} qubits")
    return tuple(None if m is None else (float(m[0][1]), float(m[1][0])) for m in readout)


def _flip_tail(
    outcomes: np.ndarray, flips: tuple[tuple[float, float] | None, ...], rng: np.random.Generator
) -> np.ndarray:
    """Tail outcomes (bit j = tail qubit j) with each bit misread as its qubit's read-out error says."""
    for j, flip in enumerate(flips):
        if flip is None:
            continue
        bits = (outcomes >> j) & 1
        misread = rng.random(outcomes.shape[0]) < np.where(bits == 1, flip[1], flip[0])
        outcomes = outcomes ^ (misread.astype(outcomes.dtype) << j)
    return outcomes


def _split_probability(probability: float, norm0: float, norm1: float) -> tuple[float, float]:
    total = norm0 + norm1
    p0, p1 = probability * norm0 / total, probability * norm1 / total
    if p0 < _MIN_BRANCH_PROBABILITY and p1 < _MIN_BRANCH_PROBABILITY:  # keep the likelier side
        return (p0, 0.0) if p0 >= p1 else (0.0, p1)
    return (p0 if p0 >= _MIN_BRANCH_PROBABILITY else 0.0), (p1 if p1 >= _MIN_BRANCH_PROBABILITY else 0.0)


def _binding_values(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"values must have shape (bindings, {len(names)}), got {values.shape}")
    return values


# -- sampler ----------------------------------------------------------------------------------------

_Leaf = tuple[int, int, "np.ndarray | None"]  # (clbits, shots, tail outcomes per shot)


def sample(
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: list[str],
    shots: int,
    rng: np.random.Generator,
    cancel: CancelFlag | None = None,
    *,
    dtype: Any = np.complex128,
    readout: Sequence[np.ndarray | None] | None = None,
) -> dict[str, np.ndarray]:
    """Per classical register of circuit.cregs (in that order): packed uint8 array (bindings, shots, ceil(bits/8)),
    Qiskit's BitArray byte layout (big-endian bytes, clbit 0 = lowest bit of the last byte; see `_pack` in
    aqrt/backends/local/reference.py). values: (bindings, parameters) float array whose columns follow `names`
    (parameter names, as aqrt.backends.local.reference._flat_bindings returns them).

    Noise: channel instructions (:data:`~aqrt.engine.noise.CHANNEL_INSTRUCTION`) split a branch's shots
    over the channel's operators (multinomially; each shot is one exact trajectory, shots with the same
    history share one state), and ``readout`` (per circuit qubit, an assignment matrix
    ``[true][measured]`` or None) misreads measured bits: mid-circuit ones before control flow reads
    them, as hardware does; the state keeps the true outcome.

    Raises:
        UnsupportedCircuitError: a construct this route cannot run (PUB index 0: the caller knows the PUB).
        EngineCancelled: ``cancel`` was set.
    """
    return _run_sampler(circuit, values, names, shots, rng, cancel, dtype=dtype, readout=readout)[0]


def _run_sampler(
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: Sequence[str],
    shots: int,
    rng: np.random.Generator,
    cancel: CancelFlag | None,
    *,
    dtype: Any,
    readout: Sequence[np.ndarray | None] | None = None,
) -> tuple[dict[str, np.ndarray], list[int]]:
    """:func:`sample`, and how many branches (outcome histories) each binding followed."""
    values = _binding_values(values, names)
    program = _compile(circuit, values, names, dtype, _flip_probabilities(readout, circuit.num_qubits))
    registers = [(creg.name, [circuit.find_bit(bit).index for bit in creg]) for creg in circuit.cregs]
    out = {
        name: np.zeros((values.shape[0], shots, (len(columns) + 7) // 8), dtype=np.uint8) for name, columns in registers
    }
    branch_counts = []
    for binding in range(values.shape[0]):
        leaves: list[_Leaf] = []

        def finish(state: np.ndarray, memory: Memory, count: int) -> None:
            outcomes = None
            if program.tail_qubits:
                marginal = _marginal(state, program.tail_qubits)
                outcomes = rng.choice(marginal.shape[0], size=count, p=marginal)
            leaves.append((memory.bits, count, outcomes))

        if shots > 0:
            branch_counts.append(
                _explore(
                    program,
                    binding,
                    shots,
                    _split_shots(rng),
                    finish,
                    cancel,
                    dtype=np.dtype(dtype),
                    choose=_choose_shots(rng),
                )
            )
        else:
            branch_counts.append(0)
        if program.tail_qubits and any(program.tail_flips) and leaves:  # read-out errors, all shots at once
            flipped = _flip_tail(np.concatenate([leaf[2] for leaf in leaves]), program.tail_flips, rng)
            bounds = np.cumsum([0] + [leaf[1] for leaf in leaves])
            leaves = [
                (leaf[0], leaf[1], flipped[a:b]) for leaf, a, b in zip(leaves, bounds[:-1], bounds[1:], strict=True)
            ]
        order = rng.permutation(shots)
        for name, columns in registers:
            out[name][binding] = _register_bytes(program, leaves, columns, shots)[order]
    return out, branch_counts


def _register_bytes(program: _Program, leaves: list[_Leaf], columns: list[int], shots: int) -> np.ndarray:
    """One register's shots (in leaf order) as BitArray bytes: the leaf's clbits, with the bits the
    tail measured taken from each shot's outcome."""
    num_bytes = (len(columns) + 7) // 8
    out = np.empty((shots, num_bytes), dtype=np.uint8)
    from_tail = [(i, program.tail_clbits[c]) for i, c in enumerate(columns) if c in program.tail_clbits]
    cleared = ~sum(1 << i for i, _ in from_tail)
    read = register_reader(columns)
    row = 0
    for bits, count, outcomes in leaves:
        block = out[row : row + count]
        block[:] = np.frombuffer((read(bits) & cleared).to_bytes(num_bytes, "big"), dtype=np.uint8)
        if outcomes is not None:
            for i, j in from_tail:
                block[:, num_bytes - 1 - i // 8] |= (((outcomes >> j) & 1) << (i % 8)).astype(np.uint8)
        row += count
    return out


# -- estimator --------------------------------------------------------------------------------------


def expectation_values(
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: list[str],
    observables: Sequence[Any],
    cancel: CancelFlag | None = None,
    *,
    dtype: Any = np.complex128,
    readout: Sequence[np.ndarray | None] | None = None,
) -> np.ndarray:
    """(bindings, len(observables)) float64, EXACT: the sum over outcome histories of probability x <O> in that
    branch (what hardware estimates). Each observable is a qiskit.quantum_info.SparseObservable on
    circuit.num_qubits qubits (may contain projector terms). ``readout`` misreads mid-circuit measurements
    as in :func:`sample` (both readings followed, by probability). Circuits with noise channels go to
    :func:`noisy_expectation_values`.

    Raises:
        UnsupportedCircuitError: a construct this route cannot run, or more than ``2**16`` histories.
        EngineCancelled: ``cancel`` was set.
    """
    return _estimate(circuit, values, names, observables, cancel, dtype, readout, None)[0]


def noisy_expectation_values(
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: list[str],
    observables: Sequence[Any],
    trajectories: int,
    rng: np.random.Generator,
    cancel: CancelFlag | None = None,
    *,
    dtype: Any = np.complex128,
    readout: Sequence[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo estimate over ``trajectories`` trajectories (channels and outcomes drawn as the
    sampler draws shots; trajectories with one history share a state): the mean of each observable,
    and its standard error, both (bindings, len(observables)) float64."""
    if trajectories < 1:
        raise ValueError(f"trajectories must be >= 1, got {trajectories}")
    return _estimate(circuit, values, names, observables, cancel, dtype, readout, (trajectories, rng))


def _estimate(
    circuit: QuantumCircuit,
    values: np.ndarray,
    names: list[str],
    observables: Sequence[Any],
    cancel: CancelFlag | None,
    dtype: Any,
    readout: Sequence[np.ndarray | None] | None,
    monte_carlo: tuple[int, np.random.Generator] | None,
) -> tuple[np.ndarray, np.ndarray]:
    from ...engine.kernels.reductions import pauli_values, pauli_values_par
    from ...engine.simulate import WIDE_QUBITS

    for observable in observables:
        if observable.num_qubits != circuit.num_qubits:
            raise ValueError(f"an observable has {observable.num_qubits} qubits, the circuit {circuit.num_qubits}")
    values = _binding_values(values, names)
    program = _compile(circuit, values, names, dtype, _flip_probabilities(readout, circuit.num_qubits))
    if monte_carlo is None and program.has_channels:
        raise ValueError("a circuit with noise channels is estimated by noisy_expectation_values")
    table = build_term_table_sparse(observables)
    dephased = sum(1 << q for q in program.tail_qubits)  # measurements that end the circuit
    kept = np.flatnonzero((table.x_masks & dephased) == 0)
    x_masks = np.ascontiguousarray(table.x_masks[kept])
    z_masks = np.ascontiguousarray(table.z_masks[kept])
    reduce = pauli_values_par if circuit.num_qubits >= WIDE_QUBITS else pauli_values
    means = np.zeros((values.shape[0], len(observables)), dtype=np.float64)
    errors = np.zeros_like(means)
    for binding in range(values.shape[0]):
        first = np.zeros(len(observables), dtype=np.float64)
        second = np.zeros(len(observables), dtype=np.float64)

        def finish(state: np.ndarray, memory: Memory, weight: float) -> None:
            term_values = np.zeros(table.num_terms, dtype=np.complex128)
            if kept.shape[0]:
                term_values[kept] = reduce(state, x_masks, z_masks)
            value = table.combine(term_values)
            first[:] += weight * value
            second[:] += weight * value * value

        if monte_carlo is None:
            _explore(
                program,
                binding,
                1.0,
                _split_probability,
                finish,
                cancel,
                dtype=np.dtype(dtype),
                max_branches=_MAX_ESTIMATOR_BRANCHES,
                choose=_choose_probability,
            )
            means[binding] = first
        else:
            trajectories, rng = monte_carlo
            _explore(
                program,
                binding,
                trajectories,
                _split_shots(rng),
                finish,
                cancel,
                dtype=np.dtype(dtype),
                choose=_choose_shots(rng),
            )
            means[binding] = first / trajectories
            if trajectories > 1:
                spread = np.clip(second / trajectories - means[binding] ** 2, 0.0, None)
                errors[binding] = np.sqrt(spread / (trajectories - 1))
    return means, errors
