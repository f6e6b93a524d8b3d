"""Classical expressions of dynamic circuits, compiled to closures over a classical memory.

The dynamic-circuit route (:mod:`.dynamic`) keeps, per outcome history, a :class:`Memory`: the
circuit's clbits as one integer (clbit i is bit i) and the standalone variables in slots. Every
``qiskit.circuit.classical.expr`` node it meets (conditions, switch targets, stores) is compiled
once into a Python closure that reads (or, for stores, rewrites) such a memory.

Semantics follow Qiskit's (``qiskit.circuit.classical``): ``Bool`` values are Python bools,
``Uint[w]`` values ints in ``[0, 2**w)`` (a register reads as an unsigned integer whose bit 0 is
the register's first clbit), ``Float`` values floats. Arithmetic, shifts and casts on ``Uint``
wrap modulo ``2**w``; ``Uint`` division truncates; a cast from ``Float`` to ``Uint`` truncates
toward zero and wraps. ``Duration`` and ``Stretch`` (timing types) have no meaning for a
simulation and are refused, as are unknown node kinds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from qiskit.circuit import ClassicalRegister, Clbit
from qiskit.circuit.classical import expr, types

__all__ = [
    "ClassicalEvaluationError",
    "Evaluator",
    "Memory",
    "Scope",
    "UnsupportedExpressionError",
    "Update",
    "VariableSlots",
    "compile_condition",
    "compile_store",
    "compile_switch_target",
    "compile_value",
    "register_reader",
    "with_bit",
]


class Memory(NamedTuple):
    """The classical state of one outcome history: clbits (bit i of ``bits`` is clbit i) and the
    values of the standalone variables, by slot."""

    bits: int
    variables: tuple[Any, ...]


Evaluator = Callable[[Memory], Any]
Update = Callable[[Memory], Memory]


class UnsupportedExpressionError(ValueError):
    """An expression (or a part of it) this evaluator does not implement; the message names it."""


class ClassicalEvaluationError(ValueError):
    """An expression has no value at run time (a division by zero, a bit index out of range)."""


class VariableSlots:
    """Slots of the standalone variables of one circuit, shared by all its scopes (blocks)."""

    def __init__(self) -> None:
        self._slots: dict[expr.Var, int] = {}
        self._initial: list[Any] = []

    def slot(self, var: expr.Var) -> int:
        """The slot of ``var``, allocated on first use with the zero of its type."""
        slot = self._slots.get(var)
        if slot is None:
            slot = self._slots[var] = len(self._initial)
            self._initial.append(_zero(var.type, f"variable {var.name!r}"))
        return slot

    def initial_memory(self) -> Memory:
        """All clbits 0, every variable the zero of its type (declared variables get their
        initial value from the ``store`` Qiskit puts at their declaration)."""
        return Memory(0, tuple(self._initial))


class Scope:
    """Where names resolve in one block: the outer clbit index of each of its clbits, and the
    circuit's variable slots."""

    def __init__(self, clbit_index: Mapping[Clbit, int], slots: VariableSlots) -> None:
        self.clbit_index = clbit_index
        self.slots = slots

    def clbit(self, bit: Clbit) -> int:
        index = self.clbit_index.get(bit)
        if index is None:
            raise UnsupportedExpressionError(f"clbit {bit!r} is not a clbit of the block that uses it")
        return index

    def register(self, register: ClassicalRegister) -> list[int]:
        return [self.clbit(bit) for bit in register]


def register_reader(columns: Sequence[int]) -> Callable[[int], int]:
    """A closure reading the unsigned integer whose bit i is clbit ``columns[i]`` (one shift and
    mask when the columns are consecutive, as a register's clbits usually are)."""
    columns = list(columns)
    if columns and columns == list(range(columns[0], columns[0] + len(columns))):
        low, mask = columns[0], (1 << len(columns)) - 1
        return lambda bits: (bits >> low) & mask

    def read(bits: int) -> int:
        value = 0
        for i, column in enumerate(columns):
            value |= ((bits >> column) & 1) << i
        return value

    return read


def with_bit(memory: Memory, index: int, value: int | bool) -> Memory:
    """``memory`` with clbit ``index`` set to ``value``."""
    bits = (memory.bits | (1 << index)) if value else (memory.bits & ~(1 << index))
    return Memory(bits, memory.variables)


def _with_register(bits: int, columns: Sequence[int], value: int) -> int:
    for i, column in enumerate(columns):
        bits = (bits | (1 << column)) if (value >> i) & 1 else (bits & ~(1 << column))
    return bits


# -- types ------------------------------------------------------------------------------------------


def _kind(type_: types.Type, what: str) -> Any:
    kind = type_.kind
    if kind not in (types.Bool, types.Uint, types.Float):
        raise UnsupportedExpressionError(f"{what} has type {type_}, which a simulation gives no value")
    return kind


def _zero(type_: types.Type, what: str) -> Any:
    kind = _kind(type_, what)
    return False if kind is types.Bool else 0 if kind is types.Uint else 0.0


def _mask(type_: types.Type) -> int:
    return (1 << type_.width) - 1


def _coerce(type_: types.Type, what: str) -> Callable[[Any], Any]:
    """The conversion of a value into ``type_`` (Qiskit's Cast semantics)."""
    kind = _kind(type_, what)
    if kind is types.Bool:
        return bool
    if kind is types.Float:
        return float
    mask = _mask(type_)
    return lambda value: int(value) & mask  # int() truncates floats toward zero; bools become 0/1


# -- values -----------------------------------------------------------------------------------------


def compile_value(node: expr.Expr, scope: Scope) -> Evaluator:
    """A closure computing ``node``'s value from a memory.

    Raises:
        UnsupportedExpressionError: for node kinds, operators or types not implemented here.
    """
    if isinstance(node, expr.Value):
        return _compile_literal(node)
    if isinstance(node, expr.Var):
        return _compile_var(node, scope)
    if isinstance(node, expr.Cast):
        convert = _coerce(node.type, "a cast")
        _kind(node.operand.type, "a cast's operand")
        operand = compile_value(node.operand, scope)
        return lambda memory: convert(operand(memory))
    if isinstance(node, expr.Unary):
        return _compile_unary(node, scope)
    if isinstance(node, expr.Binary):
        return _compile_binary(node, scope)
    if isinstance(node, expr.Index):
        return _compile_index(node, scope)
    raise UnsupportedExpressionError(f"expression node {type(node).__name__} ({node}) is not supported")


def _compile_literal(node: expr.Value) -> Evaluator:
    value = _coerce(node.type, f"the value {node.value!r}")(node.value)
    return lambda memory: value


def _compile_var(node: expr.Var, scope: Scope) -> Evaluator:
    target = node.var
    if isinstance(target, Clbit):
        index = scope.clbit(target)
        return lambda memory: bool((memory.bits >> index) & 1)
    if isinstance(target, ClassicalRegister):
        read = register_reader(scope.register(target))
        convert = _coerce(node.type, f"register {target.name!r}")
        return lambda memory: convert(read(memory.bits))
    if not node.standalone:
        raise UnsupportedExpressionError(f"variable {node} refers to {target!r}, which is not supported")
    slot = scope.slots.slot(node)
    return lambda memory: memory.variables[slot]


def _compile_unary(node: expr.Unary, scope: Scope) -> Evaluator:
    operand = compile_value(node.operand, scope)
    kind = _kind(node.type, f"the operation {node.op.name}")
    if node.op is expr.Unary.Op.LOGIC_NOT:
        return lambda memory: not operand(memory)
    if node.op is expr.Unary.Op.BIT_NOT:
        if kind is types.Bool:
            return lambda memory: not operand(memory)
        if kind is types.Uint:
            mask = _mask(node.type)
            return lambda memory: ~operand(memory) & mask
    if node.op is expr.Unary.Op.NEGATE:
        if kind is types.Float:
            return lambda memory: -operand(memory)
        if kind is types.Uint:
            mask = _mask(node.type)
            return lambda memory: -operand(memory) & mask
    raise UnsupportedExpressionError(f"unary operation {node.op.name} on {node.operand.type} is not supported")


_RELATIONS: dict[Any, Callable[[Any, Any], bool]] = {
    expr.Binary.Op.EQUAL: operator.eq,
    expr.Binary.Op.NOT_EQUAL: operator.ne,
    expr.Binary.Op.LESS: operator.lt,
    expr.Binary.Op.LESS_EQUAL: operator.le,
    expr.Binary.Op.GREATER: operator.gt,
    expr.Binary.Op.GREATER_EQUAL: operator.ge,
}
_BITWISE: dict[Any, Callable[[Any, Any], Any]] = {
    expr.Binary.Op.BIT_AND: operator.and_,
    expr.Binary.Op.BIT_OR: operator.or_,
    expr.Binary.Op.BIT_XOR: operator.xor,
}
_ARITHMETIC: dict[Any, Callable[[Any, Any], Any]] = {
    expr.Binary.Op.ADD: operator.add,
    expr.Binary.Op.SUB: operator.sub,
    expr.Binary.Op.MUL: operator.mul,
}


def _compile_binary(node: expr.Binary, scope: Scope) -> Evaluator:
    op = node.op
    what = f"the operation {op.name}"
    kind = _kind(node.type, what)
    _kind(node.left.type, f"{what}'s left operand")
    _kind(node.right.type, f"{what}'s right operand")
    left = compile_value(node.left, scope)
    right = compile_value(node.right, scope)
    if op in _RELATIONS:
        relation = _RELATIONS[op]
        return lambda memory: relation(left(memory), right(memory))
    if op is expr.Binary.Op.LOGIC_AND:
        return lambda memory: bool(left(memory)) and bool(right(memory))
    if op is expr.Binary.Op.LOGIC_OR:
        return lambda memory: bool(left(memory)) or bool(right(memory))
    if op in _BITWISE and kind in (types.Bool, types.Uint):
        bitwise = _BITWISE[op]
        return lambda memory: bitwise(left(memory), right(memory))
    if kind is types.Uint:
        mask = _mask(node.type)
        if op is expr.Binary.Op.SHIFT_LEFT:
            width = node.type.width  # a shift by the width or more leaves zero (without a huge int)
            return lambda memory: _shift_left(left(memory), right(memory), width) & mask
        if op is expr.Binary.Op.SHIFT_RIGHT:
            return lambda memory: left(memory) >> right(memory)
        if op in _ARITHMETIC:
            arithmetic = _ARITHMETIC[op]
            return lambda memory: arithmetic(left(memory), right(memory)) & mask
        if op is expr.Binary.Op.DIV:
            return lambda memory: _divide(left(memory), right(memory), operator.floordiv)
    if kind is types.Float:
        if op in _ARITHMETIC:
            arithmetic = _ARITHMETIC[op]
            return lambda memory: float(arithmetic(left(memory), right(memory)))
        if op is expr.Binary.Op.DIV:
            return lambda memory: float(_divide(left(memory), right(memory), operator.truediv))
    raise UnsupportedExpressionError(
        f"binary operation {op.name} on {node.left.type} and {node.right.type} is not supported"
    )


def _shift_left(value: int, shift: int, width: int) -> int:
    return value << shift if shift < width else 0


def _divide(numerator: Any, denominator: Any, divide: Callable[[Any, Any], Any]) -> Any:
    if denominator == 0:
        raise ClassicalEvaluationError(f"division by zero in a classical expression ({numerator} / 0)")
    return divide(numerator, denominator)


def _compile_index(node: expr.Index, scope: Scope) -> Evaluator:
    if node.target.type.kind is not types.Uint or node.index.type.kind is not types.Uint:
        raise UnsupportedExpressionError(f"indexing {node.target.type} by {node.index.type} is not supported")
    target = compile_value(node.target, scope)
    index = compile_value(node.index, scope)
    return lambda memory: bool((target(memory) >> index(memory)) & 1)


# -- conditions, switch targets, stores -------------------------------------------------------------


def compile_condition(condition: Any, scope: Scope) -> Evaluator:
    """A closure for an ``if_test``/``while_loop`` condition: a Bool expression or a legacy
    ``(Clbit, bool)`` / ``(ClassicalRegister, int)`` pair."""
    if isinstance(condition, tuple):
        condition = expr.lift_legacy_condition(condition)
    if not isinstance(condition, expr.Expr) or condition.type.kind is not types.Bool:
        raise UnsupportedExpressionError(f"condition {condition!r} is not a Boolean expression")
    evaluate = compile_value(condition, scope)
    return lambda memory: bool(evaluate(memory))


def compile_switch_target(target: Any, scope: Scope) -> Evaluator:
    """A closure for a ``switch`` target (a Clbit, a ClassicalRegister or a Uint/Bool expression),
    as an int (a Bool target gives 0 or 1, which equal Qiskit's ``False``/``True`` case labels)."""
    node = target if isinstance(target, expr.Expr) else expr.lift(target)
    if node.type.kind not in (types.Bool, types.Uint):
        raise UnsupportedExpressionError(f"switch target {node} has type {node.type}")
    evaluate = compile_value(node, scope)
    return lambda memory: int(evaluate(memory))


def compile_store(lvalue: expr.Expr, rvalue: expr.Expr, scope: Scope) -> Update:
    """A closure returning the memory after ``store(lvalue, rvalue)``.

    Targets: a clbit, a register, a standalone variable, or one bit (``Index``) of a register or of a
    ``Uint`` variable.
    """
    value = compile_value(rvalue, scope)
    if isinstance(lvalue, expr.Var):
        return _store_var(lvalue, value, scope)
    if isinstance(lvalue, expr.Index) and isinstance(lvalue.target, expr.Var):
        return _store_bit(lvalue.target, compile_value(lvalue.index, scope), value, scope)
    raise UnsupportedExpressionError(f"a store into {lvalue} is not supported")


def _store_var(lvalue: expr.Var, value: Evaluator, scope: Scope) -> Update:
    target = lvalue.var
    if isinstance(target, Clbit):
        index = scope.clbit(target)
        return lambda memory: with_bit(memory, index, bool(value(memory)))
    if isinstance(target, ClassicalRegister):
        columns = scope.register(target)
        mask = (1 << len(columns)) - 1
        return lambda memory: Memory(_with_register(memory.bits, columns, int(value(memory)) & mask), memory.variables)
    if not lvalue.standalone:
        raise UnsupportedExpressionError(f"a store into {lvalue} is not supported")
    slot = scope.slots.slot(lvalue)
    convert = _coerce(lvalue.type, f"variable {lvalue.name!r}")

    def store(memory: Memory) -> Memory:
        variables = list(memory.variables)
        variables[slot] = convert(value(memory))
        return Memory(memory.bits, tuple(variables))

    return store


def _store_bit(target: expr.Var, index: Evaluator, value: Evaluator, scope: Scope) -> Update:
    if target.type.kind is not types.Uint:
        raise UnsupportedExpressionError(f"a store into a bit of {target} is not supported")
    width = target.type.width
    if isinstance(target.var, ClassicalRegister):
        columns = scope.register(target.var)

        def store_register_bit(memory: Memory) -> Memory:
            return with_bit(memory, columns[_bit_index(index(memory), width)], bool(value(memory)))

        return store_register_bit
    if not target.standalone:
        raise UnsupportedExpressionError(f"a store into a bit of {target} is not supported")
    slot = scope.slots.slot(target)

    def store_variable_bit(memory: Memory) -> Memory:
        bit = 1 << _bit_index(index(memory), width)
        variables = list(memory.variables)
        variables[slot] = (variables[slot] | bit) if value(memory) else (variables[slot] & ~bit)
        return Memory(memory.bits, tuple(variables))

    return store_variable_bit


def _bit_index(index: int, width: int) -> int:
    if not 0 <= index < width:
        raise ClassicalEvaluationError(f"a store into bit {index} of a {width}-bit value")
    return index
