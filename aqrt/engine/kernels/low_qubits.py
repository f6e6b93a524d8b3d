"""Ops on the lowest qubits, 16 amplitudes at a time in vector registers.

Conventions in :mod:`aqrt.engine.kernels`. An op whose qubits are all below ``BLOCK_QUBITS``
mixes amplitudes only inside blocks of ``BLOCK`` consecutive ones (qubits 0..3), whose pairs run
too short for the loop kernels of :mod:`.apply` to vectorise (numba's LLVM runs the loop
vectoriser but not the SLP vectoriser). These kernels hold a block as one LLVM vector of 32
reals (re, im interleaved, as in memory) and write its update with constant lane shuffles: a
gate on qubit q reads each amplitude's partner through the shuffle ``lane ^ 2**(q+1)``, so the
loop over blocks is straight SIMD code (4 zmm registers per block at complex128, 2 at
complex64) whatever q is.

For a dense op on qubits Q (all below 4), amplitude i of a block becomes
sum_p c_p[i] * x[i ^ p] over the xor patterns p spanned by Q, with c_p[i] = m[row(i), row(i ^ p)]
(row(i): i's bits at Q). A complex product on interleaved reals is two real ones:
re' += Re(c) re - Im(c) im, im' += Re(c) im + Im(c) re, i.e. a coefficient vector times the
partner and a signed one times the partner with re/im swapped (shuffle ``lane ^ 1``).

- ``apply_low_1q``     dense 2x2 on qubit q < 4 (lane coefficients built in registers from m)
- ``apply_low_dense``  dense 2**k x 2**k on qubits all below 4 (k <= 2 here; lane coefficients in a small table)
- ``apply_low_diag``   diagonal on qubits all below 4
- ``apply_low_cx``     CX with control and target below 4: one constant shuffle per block, no arithmetic

Each needs a C-contiguous complex64/complex128 state of at least ``BLOCK`` amplitudes. The
``try_low_*`` twins (for jitted callers: :mod:`.apply`) apply the op and return True where the
state allows, else return False and leave it to the caller: the check on the array's layout is
made at compile time, so a caller compiles for any state array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = [
    "BLOCK",
    "BLOCK_QUBITS",
    "apply_low_1q",
    "apply_low_cx",
    "apply_low_dense",
    "apply_low_diag",
    "try_low_1q",
    "try_low_cx",
    "try_low_dense",
    "try_low_diag",
]

BLOCK_QUBITS = 4
BLOCK = 1 << BLOCK_QUBITS  # amplitudes per block
_LANES = 2 * BLOCK  # reals per block
_I32 = ir.IntType(32)


def _state_types(state: Any) -> tuple[ir.Type, int] | None:
    # (LLVM real type, alignment) for a C-contiguous complex state, else None (no typing).
    if not isinstance(state, types.Array) or state.ndim != 1 or state.layout != "C":
        return None
    if state.dtype == types.complex128:
        return ir.DoubleType(), 8
    if state.dtype == types.complex64:
        return ir.FloatType(), 4
    return None


def _lane_mask(lanes: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I32, len(lanes)), [ir.Constant(_I32, lane) for lane in lanes])


def _xor_shuffle(builder: ir.IRBuilder, x: ir.Value, pattern: int) -> ir.Value:
    # Lane d reads lane d ^ pattern (pattern in reals: 2 * amplitude pattern, + 1 to swap re/im).
    if pattern == 0:
        return x
    return builder.shuffle_vector(x, x, _lane_mask([d ^ pattern for d in range(_LANES)]))


def _block_loop(
    context: Any, builder: ir.IRBuilder, state_type: Any, state: ir.Value, real: ir.Type, align: int, update: Any
) -> None:
    # for each block: x = load; store update(x)
    array = context.make_array(state_type)(context, builder, state)
    vector = ir.VectorType(real, _LANES)
    data = builder.bitcast(array.data, vector.as_pointer())
    blocks = builder.lshr(array.nitems, ir.Constant(array.nitems.type, BLOCK_QUBITS))
    with cgutils.for_range(builder, blocks) as loop:
        pointer = builder.gep(data, [loop.index])
        x = builder.load(pointer, align=align)
        builder.store(update(x), pointer, align=align)


def _fma(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    # a * b + c lane by lane, one rounding (llvm.fma on the vector type)
    suffix = f"v{a.type.count}f{64 if isinstance(a.type.element, ir.DoubleType) else 32}"
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(a.type, [a.type] * 3), f"llvm.fma.{suffix}")
    return builder.call(fma, [a, b, c])


def _mixed(builder: ir.IRBuilder, x: ir.Value, terms: list[tuple[int, ir.Value, ir.Value]]) -> ir.Value:
    # sum over (pattern, plain, signed) of plain * x[d ^ 2p] + signed * x[d ^ 2p ^ 1], as explicit
    # fused multiply-adds in a fixed order: the same rounding wherever LLVM inlines the loop.
    total = None
    for pattern, plain, signed in terms:
        for coefficient, lane_pattern in ((plain, 2 * pattern), (signed, 2 * pattern + 1)):
            partner = _xor_shuffle(builder, x, lane_pattern)
            total = builder.fmul(coefficient, partner) if total is None else _fma(builder, coefficient, partner, total)
    return total


def _one_qubit_blocks_typer(typingctx: Any, state: Any, m: Any, qubit: Any) -> Any:
    """Dense 2x2 ``m`` on the literal ``qubit`` (< 4), block by block; the lane coefficients are
    shuffles of m's 8 reals (and their negations), built once before the loop."""
    found = _state_types(state)
    if found is None or not isinstance(qubit, types.IntegerLiteral) or not isinstance(m, types.Array):
        return None
    q = qubit.literal_value
    if not 0 <= q < BLOCK_QUBITS or m.ndim != 2 or m.dtype not in (types.complex64, types.complex128):
        return None
    real, align = found
    matrix_real = ir.DoubleType() if m.dtype == types.complex128 else ir.FloatType()

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        matrix_type = signature.args[1]
        matrix = context.make_array(matrix_type)(context, builder, args[1])
        entries = ir.Constant(ir.VectorType(real, 8), ir.Undefined)
        for r in range(2):
            for c in range(2):
                index = [context.get_constant(types.intp, r), context.get_constant(types.intp, c)]
                pointer = cgutils.get_item_pointer(context, builder, matrix_type, matrix, index)
                pointer = builder.bitcast(pointer, matrix_real.as_pointer())
                for part in range(2):  # m[r, c] as reals 4r + 2c (re) and + 1 (im), in the state's precision
                    value = builder.load(builder.gep(pointer, [ir.Constant(_I32, part)]))
                    if matrix_real != real:
                        value = (
                            builder.fptrunc(value, real)
                            if isinstance(real, ir.FloatType)
                            else builder.fpext(value, real)
                        )
                    entries = builder.insert_element(entries, value, ir.Constant(_I32, 4 * r + 2 * c + part))
        negated = builder.fneg(entries)  # lanes 8..15 of the two-operand shuffles below
        terms = []
        for flip in (0, 1):  # partner i ^ (flip << q)
            plain, signed = [], []
            for i in range(BLOCK):
                row = (i >> q) & 1
                entry = 4 * row + 2 * (row ^ flip)
                plain += [entry, entry]
                signed += [8 + entry + 1, entry + 1]  # -Im on the real lane, +Im on the imaginary lane
            terms.append(
                (
                    flip << q,
                    builder.shuffle_vector(entries, negated, _lane_mask(plain)),
                    builder.shuffle_vector(entries, negated, _lane_mask(signed)),
                )
            )
        _block_loop(context, builder, signature.args[0], args[0], real, align, lambda x: _mixed(builder, x, terms))
        return context.get_dummy_value()

    return types.void(state, m, qubit), codegen


_one_qubit_blocks: Any = intrinsic(_one_qubit_blocks_typer)  # typed Any: numba's stub counts typingctx as an argument


def _table_blocks_typer(typingctx: Any, state: Any, table: Any, patterns: Any) -> Any:
    """x[i] <- sum_p c_p[i] x[i ^ p] for the xor patterns p in the literal bit set ``patterns``;
    ``table`` (2 rows per pattern, in increasing p: plain and signed lane coefficients, _LANES
    reals each, the state's real dtype) is loaded into registers once, before the loop."""
    found = _state_types(state)
    if found is None or not isinstance(patterns, types.IntegerLiteral) or not isinstance(table, types.Array):
        return None
    chosen = [p for p in range(BLOCK) if (patterns.literal_value >> p) & 1]
    if not chosen or table.layout != "C" or table.ndim != 2:
        return None
    real, align = found
    if (table.dtype == types.float64) != isinstance(real, ir.DoubleType):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        rows = context.make_array(signature.args[1])(context, builder, args[1])
        pointer = builder.bitcast(rows.data, ir.VectorType(real, _LANES).as_pointer())
        loaded = [
            builder.load(builder.gep(pointer, [ir.Constant(_I32, r)]), align=align) for r in range(2 * len(chosen))
        ]
        terms = [(p, loaded[2 * t], loaded[2 * t + 1]) for t, p in enumerate(chosen)]
        _block_loop(context, builder, signature.args[0], args[0], real, align, lambda x: _mixed(builder, x, terms))
        return context.get_dummy_value()

    return types.void(state, table, patterns), codegen


_table_blocks: Any = intrinsic(_table_blocks_typer)  # typed Any: numba's stub counts typingctx as an argument


def _cx_blocks_typer(typingctx: Any, state: Any, code: Any) -> Any:
    """CX(control, target) with ``code`` = 4 * control + target (literal, both below 4): every
    block is one constant shuffle."""
    found = _state_types(state)
    if found is None or not isinstance(code, types.IntegerLiteral):
        return None
    control, target = divmod(code.literal_value, BLOCK_QUBITS)
    if control == target or not 0 <= control < BLOCK_QUBITS:
        return None
    real, align = found
    lanes = []
    for i in range(BLOCK):
        source = i ^ (1 << target) if (i >> control) & 1 else i
        lanes += [2 * source, 2 * source + 1]

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        mask = _lane_mask(lanes)
        _block_loop(
            context, builder, signature.args[0], args[0], real, align, lambda x: builder.shuffle_vector(x, x, mask)
        )
        return context.get_dummy_value()

    return types.void(state, code), codegen


_cx_blocks: Any = intrinsic(_cx_blocks_typer)  # typed Any: numba's stub counts typingctx as an argument


@njit(cache=True, nogil=True)
def apply_low_1q(state: np.ndarray, q: int, m: np.ndarray) -> None:
    """Dense 2x2 ``m`` on qubit ``q`` < 4."""
    if q == 0:
        _one_qubit_blocks(state, m, 0)
    elif q == 1:
        _one_qubit_blocks(state, m, 1)
    elif q == 2:
        _one_qubit_blocks(state, m, 2)
    else:
        _one_qubit_blocks(state, m, 3)


@njit(cache=True, nogil=True)
def apply_low_cx(state: np.ndarray, control: int, target: int) -> None:
    """CX(control, target), both below 4."""
    code = 4 * control + target
    # One literal per ordered pair: numba needs the shuffle as a compile-time constant.
    if code == 1:
        _cx_blocks(state, 1)
    elif code == 2:
        _cx_blocks(state, 2)
    elif code == 3:
        _cx_blocks(state, 3)
    elif code == 4:
        _cx_blocks(state, 4)
    elif code == 6:
        _cx_blocks(state, 6)
    elif code == 7:
        _cx_blocks(state, 7)
    elif code == 8:
        _cx_blocks(state, 8)
    elif code == 9:
        _cx_blocks(state, 9)
    elif code == 11:
        _cx_blocks(state, 11)
    elif code == 12:
        _cx_blocks(state, 12)
    elif code == 13:
        _cx_blocks(state, 13)
    else:
        _cx_blocks(state, 14)


@njit(cache=True, nogil=True)
def _row_of(i: int, qubits: np.ndarray) -> int:
    row = 0
    for b in range(qubits.shape[0]):
        row |= ((i >> qubits[b]) & 1) << b
    return row


@njit(cache=True, nogil=True)
def _dense_table(state: np.ndarray, qubits: np.ndarray, m: np.ndarray, patterns: int) -> np.ndarray:
    table = np.zeros((2 * BLOCK, _LANES), dtype=state.real.dtype)
    t = 0
    for p in range(BLOCK):
        if not (patterns >> p) & 1:
            continue
        for i in range(BLOCK):
            c = m[_row_of(i, qubits), _row_of(i ^ p, qubits)]
            table[2 * t, 2 * i] = c.real
            table[2 * t, 2 * i + 1] = c.real
            table[2 * t + 1, 2 * i] = -c.imag
            table[2 * t + 1, 2 * i + 1] = c.imag
        t += 1
    return table


@njit(cache=True, nogil=True)
def apply_low_dense(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
    """Dense 2**k x 2**k ``m`` on ``qubits``, one or two of them, all below 4."""
    mask = 0
    for b in range(qubits.shape[0]):
        mask |= 1 << qubits[b]
    patterns = 0  # the xor patterns spanned by the op's qubit bits, as a bit set
    for p in range(BLOCK):
        if p & ~mask == 0:
            patterns |= 1 << p
    table = _dense_table(state, qubits, m, patterns)
    # One literal per qubit set (a 1-qubit op here only comes from a caller that has a matrix to spare).
    if mask == 0b0011:
        _table_blocks(state, table, 0b1111)
    elif mask == 0b0101:
        _table_blocks(state, table, 0b110011)
    elif mask == 0b0110:
        _table_blocks(state, table, 0b1010101)
    elif mask == 0b1001:
        _table_blocks(state, table, 0b1100000011)
    elif mask == 0b1010:
        _table_blocks(state, table, 0b10100000101)
    elif mask == 0b1100:
        _table_blocks(state, table, 0b1000100010001)
    else:
        apply_low_1q(state, qubits[0], m)


@njit(cache=True, nogil=True)
def apply_low_diag(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> None:
    """Diagonal on ``qubits``, all below 4: one lane-wise complex product per block."""
    table = np.empty((2, _LANES), dtype=state.real.dtype)
    for i in range(BLOCK):
        c = diag[_row_of(i, qubits)]
        table[0, 2 * i] = c.real
        table[0, 2 * i + 1] = c.real
        table[1, 2 * i] = -c.imag
        table[1, 2 * i + 1] = c.imag
    _table_blocks(state, table, 1)


def _low_ready(state: Any) -> bool:
    # At compile time: a state type these kernels take.
    return _state_types(state) is not None


def try_low_1q(state: np.ndarray, q: int, m: np.ndarray) -> bool:
    """``apply_low_1q`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_low_cx(state: np.ndarray, control: int, target: int) -> bool:
    """``apply_low_cx`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_low_dense(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> bool:
    """``apply_low_dense`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_low_diag(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> bool:
    """``apply_low_diag`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


@overload(try_low_1q, jit_options={"nogil": True})
def _try_low_1q(state: Any, q: Any, m: Any) -> Any:
    if not _low_ready(state):

        def declined(state: Any, q: Any, m: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, q: Any, m: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < BLOCK:
            return False
        apply_low_1q(state, q, m)
        return True

    return run


@overload(try_low_cx, jit_options={"nogil": True})
def _try_low_cx(state: Any, control: Any, target: Any) -> Any:
    if not _low_ready(state):

        def declined(state: Any, control: Any, target: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, control: Any, target: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < BLOCK:
            return False
        apply_low_cx(state, control, target)
        return True

    return run


@overload(try_low_dense, jit_options={"nogil": True})
def _try_low_dense(state: Any, qubits: Any, m: Any) -> Any:
    if not _low_ready(state):

        def declined(state: Any, qubits: Any, m: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, qubits: Any, m: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < BLOCK:
            return False
        apply_low_dense(state, qubits, m)
        return True

    return run


@overload(try_low_diag, jit_options={"nogil": True})
def _try_low_diag(state: Any, qubits: Any, diag: Any) -> Any:
    if not _low_ready(state):

        def declined(state: Any, qubits: Any, diag: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, qubits: Any, diag: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < BLOCK:
            return False
        apply_low_diag(state, qubits, diag)
        return True

    return run
