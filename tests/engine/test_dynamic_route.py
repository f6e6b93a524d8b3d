"""The dynamic-circuit route (aqrt.backends.local.dynamic): exact bitstrings of deterministic
dynamic circuits, Qiskit's byte layout bit for bit, distributions and expectation values against
an independent exact oracle, seeding, branch counts, cancellation and refusals.

The oracle (:func:`exact_outcomes`) is a classical-quantum state: a density matrix per classical
memory, evolved instruction by instruction (a measurement splits each entry into two projected
ones, entries with equal memory are summed), with its own small evaluator of classical
expressions. It shares nothing with the route but Qiskit's circuit objects.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import CASE_DEFAULT, Clbit, Parameter
from qiskit.circuit.classical import expr, types
from qiskit.circuit.controlflow import BreakLoopOp
from qiskit.primitives import StatevectorSampler
from qiskit.primitives.containers import BitArray
from qiskit.quantum_info import DensityMatrix, Operator, SparseObservable, SparsePauliOp
from scipy.stats import chisquare

from aqrt._concurrency import CancelFlag
from aqrt.backends.local import dynamic
from aqrt.backends.local.reference import final_measurements
from aqrt.engine import simulate, warmup
from aqrt.errors import UnsupportedCircuitError

NO_VALUES = np.zeros((1, 0))


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    warmup()


def run(circuit: QuantumCircuit, shots: int = 64, seed: int = 7, **kwargs: Any) -> dict[str, BitArray]:
    """The route's samples of one binding, as BitArrays."""
    arrays = dynamic.sample(circuit, NO_VALUES, [], shots, np.random.default_rng(seed), **kwargs)
    return {creg.name: BitArray(arrays[creg.name][0], creg.size) for creg in circuit.cregs}


def only(bits: BitArray) -> str:
    """The one bitstring every shot gave (fails if the shots differ)."""
    counts = bits.get_counts()
    assert len(counts) == 1, counts
    return next(iter(counts))


# -- the exact oracle -----------------------------------------------------------------------------

P0 = Operator(np.array([[1, 0], [0, 0]]))
P1 = Operator(np.array([[0, 0], [0, 1]]))
LOWER = Operator(np.array([[0, 1], [0, 0]]))  # |0><1|: reset's second Kraus operator
CUTOFF = 1e-15


class Oracle:
    """Exact classical-quantum evolution of a dynamic circuit (see the module docstring)."""

    def __init__(self, circuit: QuantumCircuit) -> None:
        self.circuit = circuit
        self.variables: list[expr.Var] = []
        self._collect(circuit)

    def _collect(self, block: QuantumCircuit) -> None:
        for var in block.iter_vars():
            if var not in self.variables:
                self.variables.append(var)
        for instruction in block.data:
            for inner in getattr(instruction.operation, "blocks", ()):
                self._collect(inner)

    def run(self) -> dict[tuple[tuple[int, ...], tuple[Any, ...]], DensityMatrix]:
        circuit = self.circuit
        zero = DensityMatrix.from_label("0" * circuit.num_qubits)
        initial = tuple(0.0 if v.type.kind is types.Float else 0 for v in self.variables)
        entries = {((0,) * circuit.num_clbits, initial): zero}
        scope = {bit: i for i, bit in enumerate(circuit.clbits)}
        normal, broke, continued = self.block(circuit, list(range(circuit.num_qubits)), scope, entries)
        assert not broke and not continued
        return normal

    def block(self, block: QuantumCircuit, qubits: list[int], scope: dict[Clbit, int], entries: dict) -> tuple:
        broke: dict = {}
        continued: dict = {}
        local = {bit: i for i, bit in enumerate(block.qubits)}
        for instruction in block.data:
            if not entries:
                break
            op = instruction.operation
            name = op.name
            qargs = [qubits[local[q]] for q in instruction.qubits]
            cargs = [scope[c] for c in instruction.clbits]
            if name in ("barrier", "delay"):
                continue
            if name == "measure":
                entries = self.measure(entries, qargs[0], cargs[0])
            elif name == "reset":
                entries = {key: rho.evolve(P0, qargs) + rho.evolve(LOWER, qargs) for key, rho in entries.items()}
            elif name == "store":
                entries = merge(*({self.store(op.lvalue, op.rvalue, key, scope): rho} for key, rho in entries.items()))
            elif name == "if_else":
                condition = to_expr(op.condition)
                yes, no = self.split(entries, lambda key: bool(self.value(condition, key, scope)))
                inner = [self.run_inner(op.blocks[0], instruction, qubits, local, scope, yes)]
                if len(op.blocks) > 1:
                    inner.append(self.run_inner(op.blocks[1], instruction, qubits, local, scope, no))
                else:
                    inner.append((no, {}, {}))
                entries = merge(inner[0][0], inner[1][0])
                broke = merge(broke, inner[0][1], inner[1][1])
                continued = merge(continued, inner[0][2], inner[1][2])
            elif name == "switch_case":
                target = op.target if isinstance(op.target, expr.Expr) else expr.lift(op.target)
                results = []
                remaining = entries
                for values, body in op.cases_specifier():
                    matching_values = [v for v in values if v is not CASE_DEFAULT]
                    if CASE_DEFAULT in values:
                        chosen, remaining = remaining, {}
                    else:
                        chosen, remaining = self.split(
                            remaining, lambda key: int(self.value(target, key, scope)) in matching_values
                        )
                    results.append(self.run_inner(body, instruction, qubits, local, scope, chosen))
                entries = merge(remaining, *(r[0] for r in results))
                broke = merge(broke, *(r[1] for r in results))
                continued = merge(continued, *(r[2] for r in results))
            elif name == "for_loop":
                indexset, parameter, body = op.params
                done: dict = {}
                for value in indexset:
                    bound = body.assign_parameters({parameter: value}) if parameter in set(body.parameters) else body
                    normal, b, c = self.run_inner(bound, instruction, qubits, local, scope, entries)
                    done = merge(done, b)
                    entries = merge(normal, c)
                entries = merge(entries, done)
            elif name == "while_loop":
                condition = to_expr(op.condition)
                done = {}
                for _ in range(400):
                    active, finished = self.split(entries, lambda key: bool(self.value(condition, key, scope)))
                    done = merge(done, finished)
                    if sum(float(np.real(rho.trace())) for rho in active.values()) < CUTOFF:
                        break
                    normal, b, c = self.run_inner(op.blocks[0], instruction, qubits, local, scope, active)
                    done = merge(done, b)
                    entries = merge(normal, c)
                entries = done
            elif name == "box":
                entries, b, c = self.run_inner(op.blocks[0], instruction, qubits, local, scope, entries)
                broke, continued = merge(broke, b), merge(continued, c)
            elif name == "break_loop":
                return {}, merge(broke, entries), continued
            elif name == "continue_loop":
                return {}, broke, merge(continued, entries)
            else:
                entries = {key: rho.evolve(op, qargs) for key, rho in entries.items()}
        return entries, broke, continued

    def run_inner(self, body, instruction, qubits, local, scope, entries) -> tuple:
        inner_qubits = [qubits[local[q]] for q in instruction.qubits]
        inner_scope = {bit: scope[outer] for bit, outer in zip(body.clbits, instruction.clbits, strict=True)}
        if not entries:
            return {}, {}, {}
        return self.block(body, inner_qubits, inner_scope, entries)

    def measure(self, entries: dict, qubit: int, clbit: int) -> dict:
        out: dict = {}
        for (bits, variables), rho in entries.items():
            for outcome, projector in ((0, P0), (1, P1)):
                new_bits = (*bits[:clbit], outcome, *bits[clbit + 1 :])
                projected = rho.evolve(projector, [qubit])
                if float(np.real(projected.trace())) > CUTOFF:
                    out = merge(out, {(new_bits, variables): projected})
        return out

    @staticmethod
    def split(entries: dict, predicate: Callable[[Any], bool]) -> tuple[dict, dict]:
        yes = {key: rho for key, rho in entries.items() if predicate(key)}
        return yes, {key: rho for key, rho in entries.items() if key not in yes}

    # classical expressions, evaluated directly on the tree

    def value(self, node: expr.Expr, key: tuple, scope: dict[Clbit, int]) -> Any:
        bits, variables = key
        if isinstance(node, expr.Value):
            return node.value
        if isinstance(node, expr.Var):
            if isinstance(node.var, Clbit):
                return bits[scope[node.var]] == 1
            if isinstance(node.var, ClassicalRegister):
                return sum(bits[scope[bit]] * 2**i for i, bit in enumerate(node.var))
            return variables[self.variables.index(node)]
        if isinstance(node, expr.Cast):
            operand = self.value(node.operand, key, scope)
            if node.type.kind is types.Bool:
                return operand != 0
            if node.type.kind is types.Float:
                return float(operand)
            return int(operand) % 2**node.type.width
        if isinstance(node, expr.Index):
            return (self.value(node.target, key, scope) // 2 ** self.value(node.index, key, scope)) % 2 == 1
        if isinstance(node, expr.Unary):
            operand = self.value(node.operand, key, scope)
            if node.op is expr.Unary.Op.LOGIC_NOT or node.type.kind is types.Bool:
                return not operand
            if node.op is expr.Unary.Op.BIT_NOT:
                return 2**node.type.width - 1 - operand
            return -operand
        assert isinstance(node, expr.Binary)
        a, b = self.value(node.left, key, scope), self.value(node.right, key, scope)
        op = node.op
        modulus = 2**node.type.width if node.type.kind is types.Uint else None
        table: dict[Any, Callable[[], Any]] = {
            expr.Binary.Op.BIT_AND: lambda: a & b,
            expr.Binary.Op.BIT_OR: lambda: a | b,
            expr.Binary.Op.BIT_XOR: lambda: a ^ b,
            expr.Binary.Op.LOGIC_AND: lambda: bool(a) and bool(b),
            expr.Binary.Op.LOGIC_OR: lambda: bool(a) or bool(b),
            expr.Binary.Op.EQUAL: lambda: a == b,
            expr.Binary.Op.NOT_EQUAL: lambda: a != b,
            expr.Binary.Op.LESS: lambda: a < b,
            expr.Binary.Op.LESS_EQUAL: lambda: a <= b,
            expr.Binary.Op.GREATER: lambda: a > b,
            expr.Binary.Op.GREATER_EQUAL: lambda: a >= b,
            expr.Binary.Op.SHIFT_LEFT: lambda: (a * 2**b) % modulus,
            expr.Binary.Op.SHIFT_RIGHT: lambda: a // 2**b,
            expr.Binary.Op.ADD: lambda: (a + b) % modulus if modulus else a + b,
            expr.Binary.Op.SUB: lambda: (a - b) % modulus if modulus else a - b,
            expr.Binary.Op.MUL: lambda: (a * b) % modulus if modulus else a * b,
            expr.Binary.Op.DIV: lambda: a // b if modulus else a / b,
        }
        return table[op]()

    def store(self, lvalue: expr.Expr, rvalue: expr.Expr, key: tuple, scope: dict[Clbit, int]) -> tuple:
        bits, variables = list(key[0]), list(key[1])
        value = self.value(rvalue, key, scope)
        if isinstance(lvalue, expr.Index):
            index = self.value(lvalue.index, key, scope)
            target = lvalue.target
            if isinstance(target.var, ClassicalRegister):
                bits[scope[target.var[index]]] = int(bool(value))
            else:
                slot = self.variables.index(target)
                old = variables[slot]
                variables[slot] = old - (old // 2**index % 2) * 2**index + int(bool(value)) * 2**index
        elif isinstance(lvalue.var, Clbit):
            bits[scope[lvalue.var]] = int(bool(value))
        elif isinstance(lvalue.var, ClassicalRegister):
            for i, bit in enumerate(lvalue.var):
                bits[scope[bit]] = (int(value) // 2**i) % 2
        else:
            variables[self.variables.index(lvalue)] = value
        return tuple(bits), tuple(variables)


def to_expr(condition: Any) -> expr.Expr:
    return expr.lift_legacy_condition(condition) if isinstance(condition, tuple) else condition


def merge(*parts: dict) -> dict:
    out: dict = {}
    for part in parts:
        for key, rho in part.items():
            out[key] = out[key] + rho if key in out else rho
    return out


def exact_outcomes(circuit: QuantumCircuit) -> tuple[dict[str, float], DensityMatrix]:
    """The exact distribution of the joint register bitstring (registers joined by spaces, last
    register first, as Qiskit prints them), and the mixed final state."""
    distribution: dict[str, float] = {}
    total = None
    for (bits, _), rho in Oracle(circuit).run().items():
        label = joined_label(circuit, bits)
        distribution[label] = distribution.get(label, 0.0) + float(np.real(rho.trace()))
        total = rho if total is None else total + rho
    assert total is not None
    return distribution, total


def joined_label(circuit: QuantumCircuit, bits: tuple[int, ...]) -> str:
    index = {bit: i for i, bit in enumerate(circuit.clbits)}
    return " ".join("".join(str(bits[index[bit]]) for bit in reversed(list(creg))) for creg in reversed(circuit.cregs))


def joined_counts(circuit: QuantumCircuit, arrays: dict[str, np.ndarray], binding: int = 0) -> dict[str, int]:
    """Counts of the joint register bitstring of the route's samples."""
    columns = [BitArray(arrays[creg.name][binding], creg.size).get_bitstrings() for creg in reversed(circuit.cregs)]
    counts: dict[str, int] = {}
    for labels in zip(*columns, strict=True):
        label = " ".join(labels)
        counts[label] = counts.get(label, 0) + 1
    return counts


def goodness_of_fit(counts: dict[str, int], distribution: dict[str, float]) -> float:
    """Chi-square p-value of counts against exact probabilities (rare outcomes pooled; an outcome
    of probability zero that occurs gives 0)."""
    shots = sum(counts.values())
    if any(distribution.get(label, 0.0) < 1e-12 for label in counts):
        return 0.0
    observed, expected = [], []
    pooled_observed = pooled_expected = 0.0
    for label, probability in distribution.items():
        if probability * shots < 5:
            pooled_observed += counts.get(label, 0)
            pooled_expected += probability * shots
        else:
            observed.append(counts.get(label, 0))
            expected.append(probability * shots)
    if pooled_expected > 0:
        observed.append(pooled_observed)
        expected.append(pooled_expected)
    if len(observed) < 2:
        return 1.0 if observed[0] == shots else 0.0
    expected_array = np.array(expected) * shots / sum(expected)
    return float(chisquare(observed, expected_array).pvalue)


# -- random dynamic circuits -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Where:
    """Where the builder is: nesting depth, the innermost loop ("for"/"while", which decides
    whether break/continue may appear), its parameter, how many times the scope runs (for-loop
    iterations), and whether it is inside the while loop (whose body neither splits nor writes
    the loop's condition bit, so that it ends with probability one)."""

    depth: int = 0
    loop: str | None = None
    loop_parameter: Any = None
    repeats: int = 1
    in_while: bool = False
    reserved_qubit: int | None = None  # the while loop's qubit, which its body leaves alone

    def inner(self, **changes: Any) -> Where:
        return dataclasses.replace(self, depth=self.depth + 1, **changes)


class Builder:
    """Draws a random dynamic circuit with the control-flow builders (hypothesis ``draw``)."""

    def __init__(self, draw: Callable[..., Any], *, aer_safe: bool, budget: int) -> None:
        self.draw = draw
        self.aer_safe = aer_safe
        self.budget = budget
        self.theta = Parameter("theta")
        self.splits = 8  # measurements and resets, counted once per loop iteration
        self.has_while = False
        num_qubits = draw(st.integers(1, 4))
        sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
        self.circuit = QuantumCircuit(
            QuantumRegister(num_qubits, "q"), *(ClassicalRegister(s, f"c{k}") for k, s in enumerate(sizes))
        )
        self.variables: list[expr.Var] = []
        if not aer_safe:
            self.variables.append(self.circuit.add_var("n", expr.lift(draw(st.integers(0, 7)), types.Uint(3))))
            self.variables.append(self.circuit.add_var("flag", expr.lift(draw(st.booleans()))))

    def build(self) -> QuantumCircuit:
        qc = self.circuit
        if self.aer_safe:  # Aer 0.18 fails to load a circuit whose first measurement is in a block
            qc.measure(0, 0)
        self.fill(Where())
        for qubit in range(qc.num_qubits):
            if self.draw(st.booleans()):
                qc.measure(qubit, self.draw(st.integers(0, qc.num_clbits - 1)))
        return qc

    def qubit(self, where: Where | None = None) -> int:
        reserved = where.reserved_qubit if where is not None else None
        return self.draw(st.sampled_from([q for q in range(self.circuit.num_qubits) if q != reserved]))

    def angle(self, loop_parameter: Any) -> Any:
        kind = self.draw(
            st.sampled_from(["float", "theta", "loop"] if loop_parameter is not None else ["float", "theta"])
        )
        if kind == "theta":
            return self.theta * 0.5 + 0.1
        if kind == "loop":
            return loop_parameter * 0.7 + 0.2
        return self.draw(st.floats(-math.pi, math.pi))

    def condition(self) -> Any:
        qc = self.circuit
        creg = self.draw(st.sampled_from(qc.cregs))
        bit = qc.clbits[self.draw(st.integers(0, qc.num_clbits - 1))]
        other = qc.clbits[self.draw(st.integers(0, qc.num_clbits - 1))]
        value = self.draw(st.integers(0, 2**creg.size - 1))
        kinds = ["bit", "register", "equal", "less", "and", "or_not", "xor_cast"]
        if not self.aer_safe:
            kinds += ["index", "shift", "variable", "flag", "arithmetic"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "bit":
            return (bit, self.draw(st.booleans()))
        if kind == "register":
            return (creg, value)
        if kind == "equal":
            return expr.equal(creg, value)
        if kind == "less":
            return expr.less(creg, value)
        if kind == "and":
            return expr.bit_and(bit, other)
        if kind == "or_not":
            return expr.logic_or(expr.logic_not(bit), other)
        if kind == "xor_cast":
            return expr.not_equal(expr.bit_xor(creg, expr.lift(value, types.Uint(creg.size))), 0)
        if kind == "index":
            return expr.index(creg, self.draw(st.integers(0, creg.size - 1)))
        if kind == "shift":
            return expr.equal(expr.shift_right(expr.shift_left(creg, 1), 1), value)
        if kind == "variable":
            return expr.greater_equal(self.variables[0], value % 8)
        if kind == "flag":
            return expr.logic_and(self.variables[1], bit)
        return expr.equal(expr.bit_and(expr.add(self.variables[0], expr.cast(creg, types.Uint(3))), 3), value % 4)

    def fill(self, where: Where) -> None:
        """Instructions into the current scope (see :class:`Where`)."""
        qc = self.circuit
        count = self.draw(st.integers(1, 5))
        for _ in range(count):
            if self.budget <= 0:
                return
            self.budget -= 1
            free_qubits = qc.num_qubits - (where.reserved_qubit is not None)
            kinds = ["gate", "gate"] * (free_qubits > 0) + ["gate2"] * (free_qubits > 1)
            if not where.in_while and self.splits >= where.repeats:  # no splits in a while body
                kinds += ["measure", "reset"]
            if where.depth < 2:
                kinds += ["if", "if_else", "switch"]
                if where.repeats == 1:  # loops do not nest (branch counts would explode)
                    kinds.append("for")
                if where.loop is None and where.depth == 0 and not self.has_while:
                    kinds.append("while")
            kinds.append("barrier")
            if where.loop is not None:
                kinds += ["break"] + (["continue"] if where.loop == "for" else [])
            if not self.aer_safe:
                kinds += ["box"] if where.depth < 2 else []
                if not where.in_while:  # nothing writes the while loop's bit
                    kinds += ["store", "store_register_bit"]
            kind = self.draw(st.sampled_from(kinds))
            if kind == "gate":
                name = self.draw(st.sampled_from(["h", "x", "sx", "t", "rx", "ry"]))
                if name in ("rx", "ry"):
                    getattr(qc, name)(self.angle(where.loop_parameter), self.qubit(where))
                else:
                    getattr(qc, name)(self.qubit(where))
            elif kind == "gate2":
                if free_qubits >= 2:
                    a = self.qubit(where)
                    b = self.draw(
                        st.sampled_from([q for q in range(qc.num_qubits) if q not in (a, where.reserved_qubit)])
                    )
                    name = self.draw(st.sampled_from(["cx", "cz", "cry"]))
                    if name == "cry":
                        qc.cry(self.angle(where.loop_parameter), a, b)
                    else:
                        getattr(qc, name)(a, b)
            elif kind == "barrier":
                qc.barrier()
            elif kind == "measure":
                self.splits -= where.repeats
                qc.measure(self.qubit(), self.draw(st.integers(0, qc.num_clbits - 1)))
            elif kind == "reset":
                self.splits -= where.repeats
                qc.reset(self.qubit())
            elif kind in ("if", "if_else"):
                with qc.if_test(self.condition()) as otherwise:
                    self.fill(where.inner())
                if kind == "if_else":
                    with otherwise:
                        self.fill(where.inner())
            elif kind == "switch":
                self.switch(where)
            elif kind == "for":
                iterations = self.draw(st.integers(0, 3))
                with qc.for_loop(range(iterations)) as parameter:
                    self.fill(where.inner(loop="for", loop_parameter=parameter, repeats=max(iterations, 1)))
            elif kind == "while":
                self.has_while = True
                qubit, clbit = self.qubit(), self.draw(st.integers(0, qc.num_clbits - 1))
                qc.reset(qubit)
                qc.h(qubit)
                qc.measure(qubit, clbit)
                with qc.while_loop((qc.clbits[clbit], 0)):
                    self.fill(where.inner(loop="while", in_while=True, reserved_qubit=qubit))
                    qc.reset(qubit)
                    qc.h(qubit)
                    qc.measure(qubit, clbit)
            elif kind in ("break", "continue"):
                with qc.if_test(self.condition()):
                    (qc.break_loop if kind == "break" else qc.continue_loop)()
            elif kind == "store":
                self.store()
            elif kind == "store_register_bit":
                creg = self.draw(st.sampled_from(qc.cregs))
                qc.store(expr.index(creg, self.draw(st.integers(0, creg.size - 1))), self.condition_expr())
            elif kind == "box":
                with qc.box():  # break/continue cannot leave a box
                    self.fill(where.inner(loop=None))

    def condition_expr(self) -> expr.Expr:
        return to_expr(self.condition())

    def store(self) -> None:
        qc = self.circuit
        target = self.draw(st.sampled_from(["n", "flag", "clbit", "register"]))
        if target == "n":
            source = self.draw(st.sampled_from(qc.cregs))
            qc.store(self.variables[0], expr.bit_xor(expr.add(self.variables[0], 1), expr.cast(source, types.Uint(3))))
        elif target == "flag":
            qc.store(self.variables[1], self.condition_expr())
        elif target == "clbit":
            qc.store(qc.clbits[self.draw(st.integers(0, qc.num_clbits - 1))], self.condition_expr())
        else:
            creg = self.draw(st.sampled_from(qc.cregs))
            qc.store(creg, expr.cast(expr.shift_left(self.variables[0], 1), types.Uint(creg.size)))

    def switch(self, where: Where) -> None:
        qc = self.circuit
        creg = self.draw(st.sampled_from(qc.cregs))
        target: Any = creg
        if not self.aer_safe and self.draw(st.booleans()):
            target = expr.bit_and(creg, 1)
        values = self.draw(st.lists(st.integers(0, 2**creg.size - 1), min_size=1, max_size=3, unique=True))
        with qc.switch(target) as case:
            for value in values:
                with case(value):
                    self.fill(where.inner())
            if self.draw(st.booleans()):
                with case(case.DEFAULT):
                    self.fill(where.inner())


@st.composite
def dynamic_circuits(draw: Callable[..., Any], aer_safe: bool = False) -> QuantumCircuit:
    return Builder(draw, aer_safe=aer_safe, budget=16).build()


def bindings_of(circuit: QuantumCircuit) -> tuple[np.ndarray, list[str]]:
    """Two values of theta when the circuit uses it, else the one empty binding."""
    if circuit.num_parameters:
        return np.array([[0.3], [1.9]]), ["theta"]
    return NO_VALUES, []


def bind(circuit: QuantumCircuit, values: np.ndarray) -> QuantumCircuit:
    names = [p.name for p in circuit.parameters]
    return circuit.assign_parameters(dict(zip(names, values.tolist(), strict=True)), strict=False)


# -- deterministic dynamic circuits ----------------------------------------------------------------


def test_feed_forward_x_measure_if_x() -> None:
    qc = QuantumCircuit(2, 2)
    qc.x(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)) as otherwise:
        qc.x(1)
    with otherwise:
        qc.h(1)
    qc.measure(1, 1)
    assert only(run(qc)["c"]) == "11"


def test_else_branch_runs_when_the_condition_fails() -> None:
    qc = QuantumCircuit(2, 2)
    qc.measure(0, 0)
    with qc.if_test(expr.logic_not(qc.clbits[0])) as otherwise:
        qc.x(1)
    with otherwise:
        qc.x(0)
    qc.measure(1, 1)
    qc.measure(0, 0)
    assert only(run(qc)["c"]) == "10"


def test_reset_then_measure_gives_zero() -> None:
    qc = QuantumCircuit(1, 2)
    qc.h(0)
    qc.measure(0, 0)  # random
    qc.reset(0)
    qc.measure(0, 1)  # always 0
    samples = run(qc, shots=400)["c"]
    counts = samples.get_counts()
    assert set(counts) == {"00", "01"}
    assert 120 < counts["01"] < 280


def test_reset_of_one_then_x_gives_one() -> None:
    qc = QuantumCircuit(2, 2)
    qc.x([0, 1])
    qc.reset(0)
    qc.measure(0, 0)
    qc.reset(1)
    qc.x(1)
    qc.measure(1, 1)
    assert only(run(qc)["c"]) == "10"


@pytest.mark.parametrize(("iterations", "expected"), [(0, "0"), (3, "1"), (4, "0")])
def test_for_loop_binds_its_parameter_per_iteration(iterations: int, expected: str) -> None:
    # sum_{i < k} i * pi: 0, 3 pi (an X up to phase), 6 pi (the identity)
    qc = QuantumCircuit(1, 1)
    with qc.for_loop(range(iterations)) as i:
        qc.rx(i * math.pi, 0)
    qc.measure(0, 0)
    assert only(run(qc)["c"]) == expected


def test_for_loop_counts_into_a_register() -> None:
    qc = QuantumCircuit(1)
    count = ClassicalRegister(4, "count")
    qc.add_register(count)
    n = qc.add_var("n", expr.lift(0, types.Uint(4)))
    with qc.for_loop(range(5)):
        qc.store(n, expr.add(n, 1))
    qc.store(count, n)
    assert only(run(qc)["count"]) == "0101"


def test_while_loop_until_a_measured_bit() -> None:
    qc = QuantumCircuit(1)
    flag = ClassicalRegister(1, "flag")
    rounds = ClassicalRegister(3, "rounds")
    qc.add_register(flag)
    qc.add_register(rounds)
    k = qc.add_var("k", expr.lift(0, types.Uint(3)))
    qc.measure(0, flag[0])  # 0
    with qc.while_loop((flag[0], 0)):
        qc.x(0)  # |1> on the first pass
        qc.measure(0, flag[0])
        qc.store(k, expr.add(k, 1))
    qc.store(rounds, k)
    samples = run(qc)
    assert only(samples["flag"]) == "1"
    assert only(samples["rounds"]) == "001"


def test_while_loop_on_a_variable_with_break_and_continue() -> None:
    qc = QuantumCircuit(1)
    out = ClassicalRegister(4, "out")
    qc.add_register(out)
    k = qc.add_var("k", expr.lift(0, types.Uint(4)))
    total = qc.add_var("total", expr.lift(0, types.Uint(4)))
    with qc.while_loop(expr.less(k, 10)):
        qc.store(k, expr.add(k, 1))
        with qc.if_test(expr.equal(k, 2)):
            qc.continue_loop()  # 2 is not added
        with qc.if_test(expr.equal(k, 5)):
            qc.break_loop()  # neither is 5; the loop ends
        qc.store(total, expr.add(total, k))
    qc.store(out, total)  # 1 + 3 + 4 = 8
    assert only(run(qc)["out"]) == "1000"


def test_for_loop_break_and_continue() -> None:
    qc = QuantumCircuit(2)
    out = ClassicalRegister(4, "out")
    qc.add_register(out)
    total = qc.add_var("total", expr.lift(0, types.Uint(4)))
    with qc.for_loop(range(6)) as i:
        qc.rx(i * math.pi, 1)  # X on odd i, skipped when continued or after break
        with qc.if_test(expr.equal(total, 3)):
            qc.break_loop()
        qc.store(total, expr.add(total, 1))
        with qc.if_test(expr.equal(total, 2)):
            qc.continue_loop()
        qc.x(0)
    qc.store(out, total)
    qc.measure(0, out[3])  # X ran for total = 1 and 3 (not 2): even, so 0
    samples = run(qc)
    assert only(samples["out"]) == "0011"


@pytest.mark.parametrize("value", range(4))
def test_switch_on_a_register(value: int) -> None:
    qc = QuantumCircuit(3)
    c = ClassicalRegister(2, "c")
    d = ClassicalRegister(2, "d")
    qc.add_register(c)
    qc.add_register(d)
    for bit in range(2):
        if (value >> bit) & 1:
            qc.x(bit)
    qc.measure([0, 1], c)
    with qc.switch(c) as case:
        with case(0):
            pass
        with case(1, 2):
            qc.x(2)
        with case(case.DEFAULT):
            qc.measure(0, d[1])  # 1 (for 3)
    qc.measure(2, d[0])
    expected = {0: "00", 1: "01", 2: "01", 3: "10"}[value]
    assert only(run(qc)["d"]) == expected


def test_switch_on_an_expression_without_default_falls_through() -> None:
    qc = QuantumCircuit(2)
    c = ClassicalRegister(3, "c")
    qc.add_register(c)
    qc.x(0)
    qc.measure(0, c[2])  # c = 4
    with qc.switch(expr.shift_right(c, 1)) as case:  # 2
        with case(1):
            qc.x(1)
        with case(3):
            qc.x(1)
    qc.measure(1, c[0])
    assert only(run(qc)["c"]) == "100"


def test_two_measurements_into_one_clbit_last_write_wins() -> None:
    qc = QuantumCircuit(2, 2)
    qc.x(0)
    qc.measure(0, 0)
    qc.measure(1, 0)  # overwrites with 0
    qc.measure(0, 1)
    assert only(run(qc)["c"]) == "10"
    qc = QuantumCircuit(2, 1)
    qc.x(0)
    qc.measure(1, 0)
    qc.measure(0, 0)  # overwrites with 1
    assert only(run(qc)["c"]) == "1"


def test_mid_circuit_overwrite_feeds_forward_the_last_value() -> None:
    qc = QuantumCircuit(3, 2)
    qc.x(0)
    qc.measure(0, 0)  # 1
    qc.measure(1, 0)  # 0: last write wins before the condition reads it
    with qc.if_test((qc.clbits[0], 0)):
        qc.x(2)
    qc.measure(2, 1)
    assert only(run(qc)["c"]) == "10"


def test_expressions_on_registers_and_variables() -> None:
    qc = QuantumCircuit(1)
    a = ClassicalRegister(4, "a")
    b = ClassicalRegister(8, "b")
    flags = ClassicalRegister(6, "flags")
    qc.add_register(a)
    qc.add_register(b)
    qc.add_register(flags)
    qc.x(0)
    qc.measure(0, a[0])
    qc.measure(0, a[2])  # a = 5
    v = qc.add_var("v", expr.lift(200, types.Uint(8)))
    f = qc.add_var("f", expr.lift(2.5))
    qc.store(b, expr.add(expr.mul(v, 2), expr.cast(a, types.Uint(8))))  # 400 + 5 mod 256 = 149
    qc.store(flags[0], expr.index(a, 2))  # 1
    qc.store(flags[1], expr.equal(expr.shift_left(a, 2), 4))  # 20 mod 16 = 4: 1
    qc.store(flags[2], expr.equal(expr.bit_not(a), 10))  # 1
    qc.store(flags[3], expr.less(expr.sub(expr.cast(a, types.Uint(8)), 6), 200))  # 255: 0
    qc.store(flags[4], expr.greater(expr.mul(f, 2.0), 4.5))  # 5.0 > 4.5: 1
    qc.store(flags[5], expr.equal(expr.div(v, 7), 28))  # 1
    samples = run(qc)
    assert only(samples["a"]) == "0101"
    assert only(samples["b"]) == format(149, "08b")
    assert only(samples["flags"]) == "110111"


def test_store_into_a_bit_of_a_variable_and_of_a_register() -> None:
    qc = QuantumCircuit(1)
    out = ClassicalRegister(3, "out")
    qc.add_register(out)
    v = qc.add_var("v", expr.lift(1, types.Uint(3)))
    qc.store(expr.index(v, 2), True)  # 5
    qc.store(expr.index(v, 0), False)  # 4
    qc.store(out, v)
    qc.store(expr.index(out, 0), True)  # 5
    assert only(run(qc)["out"]) == "101"


def test_box_and_inlined_instruction_with_a_measurement() -> None:
    inner = QuantumCircuit(1, 1)
    inner.x(0)
    inner.measure(0, 0)
    qc = QuantumCircuit(2, 2)
    qc.append(inner.to_instruction(), [1], [0])
    with qc.box():
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(0)
    qc.measure(0, 1)
    assert only(run(qc)["c"]) == "11"


def test_parameters_are_bound_per_binding() -> None:
    theta = Parameter("theta")
    qc = QuantumCircuit(2, 2)
    qc.rx(theta, 0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.rx(theta, 1)
    qc.measure(1, 1)
    values = np.array([[0.0], [math.pi], [0.0]])
    arrays = dynamic.sample(qc, values, ["theta"], 32, np.random.default_rng(1))
    assert arrays["c"].shape == (3, 32, 1)
    assert [only(BitArray(arrays["c"][b], 2)) for b in range(3)] == ["00", "11", "00"]


def test_loose_clbits_and_overlapping_registers() -> None:
    loose = [Clbit(), Clbit()]
    qc = QuantumCircuit(QuantumRegister(2, "q"), loose)
    shared = ClassicalRegister(bits=loose)
    qc.add_register(shared)
    qc.add_register(ClassicalRegister(bits=[loose[1]], name="tail"))
    qc.x(1)
    qc.measure(0, loose[0])
    with qc.if_test((loose[0], 0)):
        qc.measure(1, loose[1])
    samples = run(qc)
    assert only(samples[shared.name]) == "10"
    assert only(samples["tail"]) == "1"


def test_complex64_gives_the_same_bits() -> None:
    qc = QuantumCircuit(2, 2)
    qc.x(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    qc.measure(1, 1)
    assert only(run(qc, dtype=np.complex64)["c"]) == "11"


def test_zero_shots_and_empty_registers() -> None:
    qc = QuantumCircuit(1)
    qc.add_register(ClassicalRegister(0, "empty"))
    qc.add_register(ClassicalRegister(2, "c"))
    qc.measure(0, 0)
    qc.reset(0)
    arrays = dynamic.sample(qc, NO_VALUES, [], 0, np.random.default_rng(1))
    assert arrays["empty"].shape == (1, 0, 0)
    assert arrays["c"].shape == (1, 0, 1)
    arrays = dynamic.sample(qc, NO_VALUES, [], 5, np.random.default_rng(1))
    assert arrays["empty"].shape == (1, 5, 0)
    assert list(arrays) == ["empty", "c"]


# -- Qiskit's layout, bit for bit ------------------------------------------------------------------


def test_layout_equals_statevector_sampler_with_repeated_measurements() -> None:
    qc = QuantumCircuit(QuantumRegister(10, "q"), ClassicalRegister(10, "wide"), ClassicalRegister(3, "small"))
    qc.x([0, 2, 3, 7, 9])
    qc.cx(9, 8)
    for q in range(10):
        qc.measure(q, q)
    qc.measure(1, 0)  # overwrites wide[0] with 0
    qc.measure(9, 11)
    qc.measure(5, 11)  # overwrites small[1] with 0
    qc.measure(8, 12)
    qc.measure(0, 10)
    assert dynamic.needs_branching(qc)
    reference = StatevectorSampler(seed=3).run([(qc, None, 20)]).result()[0].data
    ours = run(qc, shots=20)
    for name in ("wide", "small"):
        assert ours[name].num_bits == reference[name].num_bits
        np.testing.assert_array_equal(ours[name].array, reference[name].array)
    assert only(ours["wide"]) == "1110001100"


# -- distributions and expectation values against the oracle ---------------------------------------


def hand_written_circuits() -> Iterator[tuple[str, QuantumCircuit]]:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.ry(1.1, 1)
    qc.reset(0)
    qc.ry(0.4, 0)
    qc.measure([0, 1], [0, 1])
    yield "feed_forward_reset", qc

    qc = QuantumCircuit(3, 3)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)) as otherwise:
        qc.rx(0.9, 2)
    with otherwise:
        qc.h(2)
    qc.measure(1, 1)
    qc.reset(1)
    with qc.while_loop((qc.clbits[2], 0)):
        qc.h(1)
        qc.measure(1, 2)
        qc.reset(1)
    qc.measure(2, 0)
    yield "while_repeat_until_success", qc

    c = ClassicalRegister(2, "c")
    d = ClassicalRegister(2, "d")
    qc = QuantumCircuit(QuantumRegister(3, "q"), c, d)
    qc.h([0, 1])
    qc.measure([0, 1], c)
    with qc.switch(c) as case:
        with case(0):
            qc.ry(0.3, 2)
        with case(1, 2):
            qc.ry(1.3, 2)
        with case(case.DEFAULT):
            qc.h(2)
            qc.measure(2, d[1])
    with qc.for_loop(range(2)) as i:
        qc.rx(0.5 * i + 0.2, 2)
        qc.measure(2, d[0])
        with qc.if_test(expr.equal(d, 1)):
            qc.break_loop()
    yield "switch_for_break", qc


@pytest.mark.parametrize(("name", "circuit"), list(hand_written_circuits()))
def test_hand_written_distributions_match_the_oracle(name: str, circuit: QuantumCircuit) -> None:
    distribution, _ = exact_outcomes(circuit)
    arrays = dynamic.sample(circuit, NO_VALUES, [], 4096, np.random.default_rng(11))
    assert goodness_of_fit(joined_counts(circuit, arrays), distribution) > 1e-4


def test_a_wrong_distribution_fails_the_fit() -> None:
    """The bound can fail: a biased coin against a fair one."""
    rng = np.random.default_rng(0)
    heads = int(rng.binomial(4096, 0.45))
    assert goodness_of_fit({"0": 4096 - heads, "1": heads}, {"0": 0.5, "1": 0.5}) < 1e-4
    assert goodness_of_fit({"0": 4000, "1": 96}, {"0": 1.0}) == 0.0


@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(circuit=dynamic_circuits(aer_safe=False), seed=st.integers(0, 2**32 - 1))
def test_random_dynamic_circuits_match_the_oracle(circuit: QuantumCircuit, seed: int) -> None:
    values, names = bindings_of(circuit)
    arrays = dynamic.sample(circuit, values, names, 4096, np.random.default_rng(seed))
    for binding in range(values.shape[0]):
        distribution, _ = exact_outcomes(bind(circuit, values[binding]))
        p_value = goodness_of_fit(joined_counts(circuit, arrays, binding), distribution)
        assert p_value > 1e-4, (binding, circuit.draw(output="text", fold=-1))


def observables_for(num_qubits: int) -> list[SparseObservable]:
    rng = np.random.default_rng(num_qubits)
    labels = ["".join(rng.choice(list("IXYZ01+-rl"), size=num_qubits)) for _ in range(6)]
    labels += ["Z" * num_qubits, "X" + "I" * (num_qubits - 1)]
    return [SparseObservable.from_label(label) * (0.5 + k) for k, label in enumerate(labels)]


def oracle_expectations(circuit: QuantumCircuit, observables: list[SparseObservable]) -> np.ndarray:
    _, rho = exact_outcomes(circuit)
    return np.array([np.real(rho.expectation_value(SparsePauliOp.from_sparse_observable(o))) for o in observables])


@pytest.mark.parametrize(("name", "circuit"), list(hand_written_circuits()))
def test_hand_written_expectation_values_are_exact(name: str, circuit: QuantumCircuit) -> None:
    observables = observables_for(circuit.num_qubits)
    ours = dynamic.expectation_values(circuit, NO_VALUES, [], observables)
    assert ours.shape == (1, len(observables))
    np.testing.assert_allclose(ours[0], oracle_expectations(circuit, observables), atol=1e-10, rtol=0)


def test_expectation_of_reset_and_feed_forward_by_hand() -> None:
    # H; measure -> c; if c: X on q1; reset q0. Then q0 = |0>, q1 = c: <Z1> = 0, <Z0> = 1, <Z0 Z1> = 0,
    # and <X0> = 1 after an H on q0 (nothing branches afterwards).
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    qc.reset(0)
    observables = [SparseObservable(label) for label in ("ZI", "IZ", "ZZ", "1I")]
    np.testing.assert_allclose(
        dynamic.expectation_values(qc, NO_VALUES, [], observables)[0], [0.0, 1.0, 0.0, 0.5], atol=1e-12
    )
    qc.h(0)
    np.testing.assert_allclose(
        dynamic.expectation_values(qc, NO_VALUES, [], [SparseObservable("IX")])[0], [1.0], atol=1e-12
    )


def test_reset_of_a_weakly_entangled_qubit_still_splits() -> None:
    # q1 is |0> or cos(0.15)|0> + sin(0.15)|1> with q0: after the reset q1 is their even mixture.
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cry(0.3, 0, 1)
    qc.reset(0)
    observables = [SparseObservable("ZI"), SparseObservable("XI"), SparseObservable("IZ")]
    expected = [0.5 + 0.5 * math.cos(0.3), 0.5 * math.sin(0.3), 1.0]
    np.testing.assert_allclose(
        dynamic.expectation_values(qc, NO_VALUES, [], observables)[0], expected, atol=1e-12, rtol=0
    )
    np.testing.assert_allclose(oracle_expectations(qc, observables), expected, atol=1e-12, rtol=0)


def test_terminal_measurements_dephase_in_the_estimator() -> None:
    qc = QuantumCircuit(1, 1)
    qc.h(0)
    qc.measure(0, 0)
    observables = [SparseObservable("X"), SparseObservable("Z"), SparseObservable("+")]
    np.testing.assert_allclose(
        dynamic.expectation_values(qc, NO_VALUES, [], observables)[0], [0.0, 0.0, 0.5], atol=1e-12
    )


@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(circuit=dynamic_circuits(aer_safe=False))
def test_random_dynamic_expectation_values_are_exact(circuit: QuantumCircuit) -> None:
    observables = observables_for(circuit.num_qubits)
    values, names = bindings_of(circuit)
    ours = dynamic.expectation_values(circuit, values, names, observables)
    for binding in range(values.shape[0]):
        expected = oracle_expectations(bind(circuit, values[binding]), observables)
        np.testing.assert_allclose(ours[binding], expected, atol=1e-10, rtol=0)


# -- seeds, branch counts, cancellation ------------------------------------------------------------


def coin_circuit() -> QuantumCircuit:
    qc = QuantumCircuit(3, 3)
    qc.h([0, 1, 2])
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.ry(0.7, 1)
    qc.measure([1, 2], [1, 2])
    return qc


def test_same_seed_same_samples_different_seed_different_samples() -> None:
    qc = coin_circuit()
    first = dynamic.sample(qc, NO_VALUES, [], 500, np.random.default_rng(5))["c"]
    again = dynamic.sample(qc, NO_VALUES, [], 500, np.random.default_rng(5))["c"]
    other = dynamic.sample(qc, NO_VALUES, [], 500, np.random.default_rng(6))["c"]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_shot_order_is_shuffled() -> None:
    qc = QuantumCircuit(1, 1)
    qc.h(0)
    qc.measure(0, 0)
    qc.reset(0)  # the measurement is mid-circuit: it splits the shots into two branches
    bits = dynamic.sample(qc, NO_VALUES, [], 2000, np.random.default_rng(2))["c"][0, :, 0]
    runs = 1 + int(np.count_nonzero(bits[1:] != bits[:-1]))
    assert 900 < runs < 1100  # grouped by outcome would give 2 runs; a fair shuffle about 1000


def test_few_branches_for_a_wide_circuit_with_two_mid_circuit_measurements() -> None:
    n = 16
    qc = QuantumCircuit(QuantumRegister(n, "q"), ClassicalRegister(2, "mid"), ClassicalRegister(n, "out"))
    qc.h(range(n))
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.measure(0, 0)
    qc.ry(0.3, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(5)
    qc.measure(1, 1)
    qc.h(1)
    qc.rz(0.2, range(n))
    qc.measure(range(n), range(2, n + 2))
    arrays, branches = dynamic._run_sampler(
        qc, NO_VALUES, [], 10_000, np.random.default_rng(3), None, dtype=np.complex128
    )
    assert branches == [4]
    assert arrays["out"].shape == (1, 10_000, 2)
    mid = BitArray(arrays["mid"][0], 2).get_counts()
    assert all(2200 < mid.get(label, 0) < 2800 for label in ("00", "01", "10", "11")), mid


def test_cancel_flag_stops_the_run() -> None:
    flag = CancelFlag()
    flag.set()
    with pytest.raises(simulate.EngineCancelled):
        dynamic.sample(coin_circuit(), NO_VALUES, [], 10, np.random.default_rng(1), flag)
    with pytest.raises(simulate.EngineCancelled):
        dynamic.expectation_values(coin_circuit(), NO_VALUES, [], [SparseObservable("ZZZ")], flag)


def test_estimator_refuses_too_many_branches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamic, "_MAX_ESTIMATOR_BRANCHES", 64)
    qc = QuantumCircuit(1, 1)
    for _ in range(7):  # 128 histories
        qc.h(0)
        qc.measure(0, 0)
    qc.h(0)
    with pytest.raises(UnsupportedCircuitError, match="more than 64 outcome histories"):
        dynamic.expectation_values(qc, NO_VALUES, [], [SparseObservable("Z")])
    qc = QuantumCircuit(1, 1)
    for _ in range(6):  # 64 histories: within the cap
        qc.h(0)
        qc.measure(0, 0)
    observables = [SparseObservable("I"), SparseObservable("Z")]  # every history kept: probabilities sum to 1
    np.testing.assert_allclose(dynamic.expectation_values(qc, NO_VALUES, [], observables), [[1.0, 0.0]], atol=1e-12)


def test_estimator_drops_negligible_branches() -> None:
    qc = QuantumCircuit(1, 1)
    qc.ry(1e-9, 0)  # probability of 1 is 2.5e-19
    qc.measure(0, 0)
    qc.h(0)
    observables = [SparseObservable("X")]
    np.testing.assert_allclose(dynamic.expectation_values(qc, NO_VALUES, [], observables), [[1.0]], atol=1e-12)


# -- which circuits need this route, and which it refuses ------------------------------------------


def test_needs_branching() -> None:
    plain = QuantumCircuit(2, 2)
    plain.h(0)
    plain.cx(0, 1)
    plain.barrier()
    plain.measure([0, 1], [0, 1])
    assert not dynamic.needs_branching(plain)
    twice_same_qubit = plain.copy()
    twice_same_qubit.measure(0, 1)  # after measure(1, 1): into the same clbit
    assert dynamic.needs_branching(twice_same_qubit)
    mid = QuantumCircuit(1, 1)
    mid.measure(0, 0)
    mid.x(0)
    assert dynamic.needs_branching(mid)
    reset = QuantumCircuit(1)
    reset.reset(0)
    assert dynamic.needs_branching(reset)
    flow = QuantumCircuit(1, 1)
    with flow.if_test((flow.clbits[0], 1)):
        flow.x(0)
    assert dynamic.needs_branching(flow)
    variables = QuantumCircuit(1)
    variables.add_var("v", False)
    assert dynamic.needs_branching(variables)
    inner = QuantumCircuit(1, 1)
    inner.measure(0, 0)
    wrapped = QuantumCircuit(1, 1)
    wrapped.append(inner.to_instruction(), [0], [0])
    assert dynamic.needs_branching(wrapped)
    unitary = QuantumCircuit(1)
    unitary.h(0)
    gate_wrapped = QuantumCircuit(1, 1)
    gate_wrapped.append(unitary.to_gate(), [0])
    gate_wrapped.measure(0, 0)
    assert not dynamic.needs_branching(gate_wrapped)


def test_needs_branching_agrees_with_final_measurements() -> None:
    """Measurements in random places: branching exactly when ``final_measurements`` (the statevector
    route's reading of terminal measurements) leaves one out."""
    rng = np.random.default_rng(4)
    for _ in range(400):
        qc = QuantumCircuit(int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        for _ in range(int(rng.integers(1, 9))):
            kind = rng.random()
            if kind < 0.5:
                qc.measure(int(rng.integers(qc.num_qubits)), int(rng.integers(qc.num_clbits)))
            elif kind < 0.6:
                qc.barrier()
            else:
                qc.x(int(rng.integers(qc.num_qubits)))
        terminal = final_measurements(qc)[1]
        expected = any(i.operation.name == "measure" and p not in terminal for p, i in enumerate(qc.data))
        assert dynamic.needs_branching(qc) == expected, qc.draw(output="text")


def test_unsupported_names_the_construct() -> None:
    qc = QuantumCircuit(2, 1)
    qc.h(0)
    qc.initialize([0, 1], [1])
    message = dynamic.unsupported(qc, program="sampler")
    assert message is not None and "instruction 1" in message and "initialize" in message and "[1]" in message
    with pytest.raises(UnsupportedCircuitError, match="initialize"):
        dynamic.sample(qc, NO_VALUES, [], 1, np.random.default_rng(0))

    nested = QuantumCircuit(2, 1)
    with nested.if_test((nested.clbits[0], 0)):
        nested.initialize([0, 1], [1])
    message = dynamic.unsupported(nested, program="estimator")
    assert message is not None and "instruction 0.0.0" in message

    inputs = QuantumCircuit(1, inputs=[expr.Var.new("a", types.Bool())])
    message = dynamic.unsupported(inputs, program="sampler")
    assert message is not None and "'a'" in message

    stray = QuantumCircuit(1, 1)
    stray.append(BreakLoopOp(1, 1), [0], [0])
    message = dynamic.unsupported(stray, program="sampler")
    assert message is not None and "outside a loop" in message

    from qiskit.circuit import Duration

    timed = QuantumCircuit(1, 1)
    timed.add_var("d", expr.lift(Duration.dt(5)))
    message = dynamic.unsupported(timed, program="sampler")
    assert message is not None and "instruction 0 (store" in message and "Duration" in message

    with pytest.raises(ValueError, match="program"):
        dynamic.unsupported(QuantumCircuit(1), program="neither")


def test_unsupported_accepts_every_supported_construct() -> None:
    for _, circuit in hand_written_circuits():
        assert dynamic.unsupported(circuit, program="sampler") is None
        assert dynamic.unsupported(circuit, program="estimator") is None


def test_unrolling_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    qc = QuantumCircuit(1)
    with qc.for_loop(range(1000)):
        with qc.for_loop(range(2000)):
            qc.x(0)
    message = dynamic.unsupported(qc, program="sampler")
    assert message is not None and "unrolls to more than" in message
    monkeypatch.setattr(dynamic, "_MAX_LOOP_ITERATIONS", 50)
    forever = QuantumCircuit(1, 1)
    with forever.while_loop((forever.clbits[0], 0)):
        forever.x(0)
        forever.x(0)
        forever.measure(0, 0)
    with pytest.raises(UnsupportedCircuitError, match="more than 50 iterations"):
        dynamic.sample(forever, NO_VALUES, [], 1, np.random.default_rng(0))


def test_division_by_zero_is_reported() -> None:
    qc = QuantumCircuit(1)
    out = ClassicalRegister(2, "out")
    qc.add_register(out)
    qc.store(out, expr.div(out, out))
    with pytest.raises(UnsupportedCircuitError, match="division by zero"):
        dynamic.sample(qc, NO_VALUES, [], 1, np.random.default_rng(0))


def test_importing_the_route_does_not_load_numba() -> None:
    import subprocess
    import sys

    code = "import sys, aqrt.backends.local.dynamic; print('numba' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "False"
