"""Gate kernels written as explicit SIMD: 16 amplitudes at a time as one LLVM vector.

Conventions in :mod:`aqrt.engine.kernels`. numba's LLVM runs the loop vectoriser but not the SLP
vectoriser, so the loop kernels of :mod:`.apply` vectorise only along long contiguous runs: a
gate on qubits 0..3 (pair runs of 1..8 amplitudes) ran scalar at 1.1-2 ns per amplitude, and
runs of 16-32 amplitudes (qubits 4, 5) paid a call per run. These kernels write the vector code
themselves (numba intrinsics emitting LLVM IR): a *block* is ``BLOCK`` = 16 consecutive
amplitudes (qubits 0..3) held as one vector of 32 reals (re, im interleaved, as in memory:
4 zmm registers at complex128, 2 at complex64; LLVM splits the vector for narrower CPUs).

- Ops on qubits below 4 stay inside a block: amplitude i becomes sum_p c_p[i] x[i ^ p] over the
  xor patterns p spanned by the op's qubit bits, with c_p[i] = m[row(i), row(i ^ p)] (row(i):
  i's bits at the op's qubits). Partners are constant lane shuffles (``lane ^ 2p``) and a
  complex product on interleaved reals is two real ones, re' += Re(c) re - Im(c) im,
  im' += Re(c) im + Im(c) re: a coefficient vector times the partner plus a signed one times
  the partner with re and im swapped (shuffle ``lane ^ 1``). The shuffles must be compile-time
  constants, so each low qubit (or qubit set, or CX pair) is its own compiled loop.
- Gates on a qubit q >= 4 pair whole blocks (block b with bit q - 4 clear and block
  b + 2**(q-4)): one loop for every such q.
- Sums are explicit fused multiply-adds in a fixed order (no fast-math reassociation), so a
  kernel gives the same bits wherever LLVM inlines it.

- ``apply_1q_simd``    dense 2x2 on any qubit
- ``apply_cx_simd``    CX on any pair (lane shuffles, block swaps; no arithmetic; with a target
  below 4 only where ``LOW_TARGET_CX``)
- ``apply_dense_low``  dense 2**k x 2**k on one or two qubits, all below 4 (coefficients in a small table)
- ``apply_diag_low``   diagonal on qubits all below 4
- ``apply_select_simd`` one of two 2x2s on any qubit, picked by a control bit (a 1-qubit gate
  followed by a controlled Pauli on the same target: CX and CZ cost no pass of their own)

Each needs a C-contiguous complex64/complex128 state of at least 2 * ``BLOCK`` amplitudes. The
``try_*`` twins (for jitted callers: :mod:`.apply`) apply the op and return True where the state
allows, else return False and leave it to the caller's loops: the layout check is made at
compile time, so a caller compiles for any state array.
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm  # type: ignore[import-untyped]
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload

__all__ = [
    "BLOCK",
    "BLOCK_QUBITS",
    "LOW_TARGET_CX",
    "apply_1q_simd",
    "apply_cx_simd",
    "apply_dense_low",
    "apply_diag_low",
    "apply_select_simd",
    "try_1q_simd",
    "try_cx_simd",
    "try_dense_low",
    "try_diag_low",
    "try_select_simd",
]

BLOCK_QUBITS = 4
BLOCK = 1 << BLOCK_QUBITS  # amplitudes per block
_LANES = 2 * BLOCK  # reals per block


def _compiles_for_avx512() -> bool:
    # The CPU numba compiles for: the host unless NUMBA_CPU_NAME / NUMBA_CPU_FEATURES say otherwise.
    if config.CPU_NAME is None:  # type: ignore[attr-defined]  # set at run time by numba
        return bool(llvm.get_host_cpu_features().get("avx512f", False))
    return "+avx512f" in (config.CPU_FEATURES or "")  # type: ignore[attr-defined]


# CX with its target below 4 pays on AVX-512 (0.27 vs 0.4-0.6 ns per amplitude at complex128)
# but compiles to a slower loop than apply.py's for AVX2-only CPUs (0.9-1.4 ns, measured with
# NUMBA_CPU_NAME=haswell): callers use it only where this is True. A compile-time constant; numba's
# cache is keyed on the CPU, so code compiled for another CPU is not reused.
LOW_TARGET_CX = _compiles_for_avx512()
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
    context: Any,
    builder: ir.IRBuilder,
    state_type: Any,
    state: ir.Value,
    real: ir.Type,
    align: int,
    update: Any,
    untouched: Any = None,
) -> None:
    # for each block b: x = load; store update(x, b); blocks where ``untouched(b)`` holds are skipped
    array = context.make_array(state_type)(context, builder, state)
    vector = ir.VectorType(real, _LANES)
    data = builder.bitcast(array.data, vector.as_pointer())
    blocks = builder.lshr(array.nitems, ir.Constant(array.nitems.type, BLOCK_QUBITS))
    with cgutils.for_range(builder, blocks) as loop:
        touched = builder.not_(untouched(loop.index)) if untouched is not None else ir.Constant(ir.IntType(1), 1)
        with builder.if_then(touched, likely=True):
            pointer = builder.gep(data, [loop.index])
            x = builder.load(pointer, align=align)
            builder.store(update(x, loop.index), pointer, align=align)


def _pair_loop(
    context: Any,
    builder: ir.IRBuilder,
    state_type: Any,
    state: ir.Value,
    span: ir.Value,
    real: ir.Type,
    align: int,
    update: Any,
    untouched: Any = None,
) -> None:
    # for each pair of blocks (lo: bit ``span`` of the block index clear, hi = lo + 2**span):
    # (x, y) = loads; store update(x, y, lo); pairs where ``untouched(lo)`` holds are skipped
    array = context.make_array(state_type)(context, builder, state)
    data = builder.bitcast(array.data, ir.VectorType(real, _LANES).as_pointer())
    index_type = array.nitems.type
    span = _as_index(builder, span, index_type)
    one = ir.Constant(index_type, 1)
    distance = builder.shl(one, span)
    below = builder.sub(distance, one)
    pairs = builder.lshr(array.nitems, ir.Constant(index_type, BLOCK_QUBITS + 1))
    with cgutils.for_range(builder, pairs) as loop:
        lo = builder.or_(
            builder.shl(builder.lshr(loop.index, span), builder.add(span, one)), builder.and_(loop.index, below)
        )
        touched = builder.not_(untouched(lo)) if untouched is not None else ir.Constant(ir.IntType(1), 1)
        with builder.if_then(touched, likely=True):
            lo_pointer = builder.gep(data, [lo])
            hi_pointer = builder.gep(data, [builder.add(lo, distance)])
            x = builder.load(lo_pointer, align=align)
            y = builder.load(hi_pointer, align=align)
            new_x, new_y = update(x, y, lo)
            builder.store(new_x, lo_pointer, align=align)
            builder.store(new_y, hi_pointer, align=align)


def _insert_zero(builder: ir.IRBuilder, index: ir.Value, position: ir.Value) -> ir.Value:
    # ``index`` with a 0 bit inserted at ``position`` (the bits from there on move up one)
    one = ir.Constant(index.type, 1)
    below = builder.sub(builder.shl(one, position), one)
    return builder.or_(
        builder.shl(builder.lshr(index, position), builder.add(position, one)), builder.and_(index, below)
    )


def _fixed_block_loop(
    context: Any,
    builder: ir.IRBuilder,
    state_type: Any,
    state: ir.Value,
    bit: ir.Value,
    value: int,
    real: ir.Type,
    align: int,
    update: Any,
) -> None:
    # for each block b whose index has ``value`` at bit ``bit``: x = load; store update(x, b)
    array = context.make_array(state_type)(context, builder, state)
    data = builder.bitcast(array.data, ir.VectorType(real, _LANES).as_pointer())
    index_type = array.nitems.type
    bit = _as_index(builder, bit, index_type)
    fixed = builder.shl(ir.Constant(index_type, value), bit)
    blocks = builder.lshr(array.nitems, ir.Constant(index_type, BLOCK_QUBITS + 1))
    with cgutils.for_range(builder, blocks) as loop:
        block = builder.or_(_insert_zero(builder, loop.index, bit), fixed)
        pointer = builder.gep(data, [block])
        x = builder.load(pointer, align=align)
        builder.store(update(x, block), pointer, align=align)


def _fixed_pair_loop(
    context: Any,
    builder: ir.IRBuilder,
    state_type: Any,
    state: ir.Value,
    span: ir.Value,
    bit: ir.Value,
    value: int,
    real: ir.Type,
    align: int,
    update: Any,
) -> None:
    # ``_pair_loop`` over the pairs whose block index has ``value`` at bit ``bit`` (!= ``span``) only
    array = context.make_array(state_type)(context, builder, state)
    data = builder.bitcast(array.data, ir.VectorType(real, _LANES).as_pointer())
    index_type = array.nitems.type
    span = _as_index(builder, span, index_type)
    bit = _as_index(builder, bit, index_type)
    distance = builder.shl(ir.Constant(index_type, 1), span)
    fixed = builder.shl(ir.Constant(index_type, value), bit)
    lower = builder.select(builder.icmp_unsigned("<", span, bit), span, bit)
    upper = builder.select(builder.icmp_unsigned("<", span, bit), bit, span)
    pairs = builder.lshr(array.nitems, ir.Constant(index_type, BLOCK_QUBITS + 2))
    with cgutils.for_range(builder, pairs) as loop:
        lo = builder.or_(_insert_zero(builder, _insert_zero(builder, loop.index, lower), upper), fixed)
        lo_pointer = builder.gep(data, [lo])
        hi_pointer = builder.gep(data, [builder.add(lo, distance)])
        x = builder.load(lo_pointer, align=align)
        y = builder.load(hi_pointer, align=align)
        new_x, new_y = update(x, y, lo)
        builder.store(new_x, lo_pointer, align=align)
        builder.store(new_y, hi_pointer, align=align)


def _as_index(builder: ir.IRBuilder, value: ir.Value, index_type: ir.IntType) -> ir.Value:
    if value.type.width < index_type.width:
        return builder.sext(value, index_type)
    if value.type.width > index_type.width:
        return builder.trunc(value, index_type)
    return value


def _bit_set(builder: ir.IRBuilder, index: ir.Value, bit: ir.Value) -> ir.Value:
    # (index >> bit) & 1 as an i1
    bit = _as_index(builder, bit, index.type)
    return builder.trunc(builder.lshr(index, bit), ir.IntType(1))


def _matrix_entries(context: Any, builder: ir.IRBuilder, matrix_type: Any, matrix: ir.Value, real: ir.Type) -> ir.Value:
    # The 2x2 matrix as a vector of 8 reals in the state's precision: m[r, c] at 4r + 2c (re), + 1 (im).
    array = context.make_array(matrix_type)(context, builder, matrix)
    matrix_real = ir.DoubleType() if matrix_type.dtype == types.complex128 else ir.FloatType()
    entries = ir.Constant(ir.VectorType(real, 8), ir.Undefined)
    for r in range(2):
        for c in range(2):
            index = [context.get_constant(types.intp, r), context.get_constant(types.intp, c)]
            pointer = cgutils.get_item_pointer(context, builder, matrix_type, array, index)
            pointer = builder.bitcast(pointer, matrix_real.as_pointer())
            for part in range(2):
                value = builder.load(builder.gep(pointer, [ir.Constant(_I32, part)]))
                if isinstance(real, ir.FloatType) and isinstance(matrix_real, ir.DoubleType):
                    value = builder.fptrunc(value, real)
                elif isinstance(real, ir.DoubleType) and isinstance(matrix_real, ir.FloatType):
                    value = builder.fpext(value, real)
                entries = builder.insert_element(entries, value, ir.Constant(_I32, 4 * r + 2 * c + part))
    return entries


def _matrix_ok(m: Any) -> bool:
    return isinstance(m, types.Array) and m.ndim == 2 and m.dtype in (types.complex64, types.complex128)


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
    if found is None or not isinstance(qubit, types.IntegerLiteral) or not _matrix_ok(m):
        return None
    q = qubit.literal_value
    if not 0 <= q < BLOCK_QUBITS:
        return None
    real, align = found

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        terms = _low_terms(builder, _matrix_entries(context, builder, signature.args[1], args[1], real), q)
        _block_loop(context, builder, signature.args[0], args[0], real, align, lambda x, _: _mixed(builder, x, terms))
        return context.get_dummy_value()

    return types.void(state, m, qubit), codegen


def _low_terms(builder: ir.IRBuilder, entries: ir.Value, q: int) -> list[tuple[int, ir.Value, ir.Value]]:
    # A 2x2's lane coefficients on qubit q < 4 for ``_mixed``: (pattern, plain, signed) for the
    # amplitude itself and its partner i ^ 2**q, shuffled from the 8 entries (and their negations).
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
    return terms


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
        _block_loop(context, builder, signature.args[0], args[0], real, align, lambda x, _: _mixed(builder, x, terms))
        return context.get_dummy_value()

    return types.void(state, table, patterns), codegen


_table_blocks: Any = intrinsic(_table_blocks_typer)  # typed Any: numba's stub counts typingctx as an argument


def _uniform_coefficients(builder: ir.IRBuilder, entries: ir.Value) -> dict[tuple[int, int], tuple[ir.Value, ir.Value]]:
    # For each m[r, c]: (Re in every lane, -Im / +Im on real / imaginary lanes), from the 8 entries.
    negated = builder.fneg(entries)
    coefficients = {}
    for r in range(2):
        for c in range(2):
            entry = 4 * r + 2 * c
            plain = builder.shuffle_vector(entries, negated, _lane_mask([entry] * _LANES))
            signed = builder.shuffle_vector(entries, negated, _lane_mask([8 + entry + 1, entry + 1] * BLOCK))
            coefficients[r, c] = (plain, signed)
    return coefficients


def _high_1q_typer(typingctx: Any, state: Any, m: Any, qubit: Any) -> Any:
    """Dense 2x2 ``m`` on ``qubit`` >= 4 (a run-time value), pair of blocks by pair of blocks."""
    found = _state_types(state)
    if found is None or not isinstance(qubit, types.Integer) or not _matrix_ok(m):
        return None
    real, align = found

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        coefficients = _uniform_coefficients(
            builder, _matrix_entries(context, builder, signature.args[1], args[1], real)
        )
        span = builder.sub(args[2], ir.Constant(args[2].type, BLOCK_QUBITS))
        _pair_loop(context, builder, signature.args[0], args[0], span, real, align, _pair_update(builder, coefficients))
        return context.get_dummy_value()

    return types.void(state, m, qubit), codegen


_high_1q: Any = intrinsic(_high_1q_typer)  # typed Any: numba's stub counts typingctx as an argument


def _pair_update(builder: ir.IRBuilder, coefficients: dict[tuple[int, int], tuple[ir.Value, ir.Value]]) -> Any:
    # The update of a pair of blocks (x: the qubit's 0 half, y: its 1 half) by a 2x2's coefficients.
    def update(x: ir.Value, y: ir.Value, lo: ir.Value) -> tuple[ir.Value, ir.Value]:
        partners = ((x, _xor_shuffle(builder, x, 1)), (y, _xor_shuffle(builder, y, 1)))
        rows = []
        for r in range(2):
            total = None
            for c in range(2):
                for coefficient, partner in zip(coefficients[r, c], partners[c], strict=True):
                    total = (
                        builder.fmul(coefficient, partner)
                        if total is None
                        else _fma(builder, coefficient, partner, total)
                    )
            rows.append(total)
        return rows[0], rows[1]

    return update


def _control_lanes(builder: ir.IRBuilder, control: ir.Value) -> ir.Value:
    # <32 x i1>, loop-invariant: the lanes a CX on ``control`` swaps in every block it touches (a
    # lane's own bit for control < 4; all lanes for control >= 4, whose untouched blocks the loops
    # skip), built once before the loop.
    i32 = ir.IntType(32)
    lane_type = ir.VectorType(i32, _LANES)
    c = _as_index(builder, control, ir.IntType(64))
    high = builder.icmp_signed(">=", c, ir.Constant(c.type, BLOCK_QUBITS))
    c32 = builder.trunc(builder.select(high, ir.Constant(c.type, 0), c), i32)
    amplitude = ir.Constant(lane_type, [ir.Constant(i32, d >> 1) for d in range(_LANES)])
    shift = builder.shuffle_vector(
        builder.insert_element(ir.Constant(lane_type, ir.Undefined), c32, ir.Constant(i32, 0)),
        ir.Constant(lane_type, ir.Undefined),
        _lane_mask([0] * _LANES),
    )
    one = ir.Constant(lane_type, [ir.Constant(i32, 1)] * _LANES)
    in_lane = builder.trunc(builder.and_(builder.lshr(amplitude, shift), one), ir.VectorType(ir.IntType(1), _LANES))
    return builder.or_(in_lane, builder.select(high, _all_lanes(True), _all_lanes(False)))


def _outside_high_control(builder: ir.IRBuilder, control: ir.Value, block: ir.Value) -> ir.Value:
    # i1: control >= 4 and block ``block`` has the control bit clear (a CX leaves it as it is)
    c = _as_index(builder, control, block.type)
    high = builder.icmp_signed(">=", c, ir.Constant(c.type, BLOCK_QUBITS))
    block_shift = builder.select(high, builder.sub(c, ir.Constant(c.type, BLOCK_QUBITS)), ir.Constant(c.type, 0))
    return builder.and_(high, builder.not_(_bit_set(builder, block, block_shift)))


def _lane_bits(builder: ir.IRBuilder, lanes: ir.Value, real: ir.Type) -> ir.Value:
    # An i1 lane vector as all-ones / all-zeros integer lanes of the real type's width, for
    # bitwise blends (a <32 x i1> select legalises badly on CPUs without mask registers).
    width = 64 if isinstance(real, ir.DoubleType) else 32
    return builder.sext(lanes, ir.VectorType(ir.IntType(width), _LANES))


def _blend(builder: ir.IRBuilder, bits: ir.Value, chosen: ir.Value, other: ir.Value) -> ir.Value:
    # lanes of ``chosen`` where ``bits`` is all-ones, of ``other`` elsewhere: exact, bitwise
    as_bits = builder.bitcast(chosen, bits.type), builder.bitcast(other, bits.type)
    mixed = builder.or_(builder.and_(as_bits[0], bits), builder.and_(as_bits[1], builder.not_(bits)))
    return builder.bitcast(mixed, chosen.type)


def _all_lanes(value: bool) -> ir.Constant:
    bit = ir.IntType(1)
    return ir.Constant(ir.VectorType(bit, _LANES), [ir.Constant(bit, int(value))] * _LANES)


def _cx_target_low_typer(typingctx: Any, state: Any, control: Any, target: Any) -> Any:
    """CX with the literal ``target`` < 4 and any ``control`` (run time): each block takes the
    target's lane shuffle on its controlled lanes."""
    found = _state_types(state)
    if found is None or not isinstance(control, types.Integer) or not isinstance(target, types.IntegerLiteral):
        return None
    real, align = found
    t = target.literal_value

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        controlled = _lane_bits(builder, _control_lanes(builder, args[1]), real)

        def update(x: ir.Value, block: ir.Value) -> ir.Value:
            return _blend(builder, controlled, _xor_shuffle(builder, x, 2 << t), x)

        def untouched(block: ir.Value) -> ir.Value:
            return _outside_high_control(builder, args[1], block)

        _block_loop(context, builder, signature.args[0], args[0], real, align, update, untouched)
        return context.get_dummy_value()

    return types.void(state, control, target), codegen


_cx_target_low: Any = intrinsic(_cx_target_low_typer)  # typed Any: numba's stub counts typingctx as an argument


def _cx_target_high_typer(typingctx: Any, state: Any, control: Any, target: Any) -> Any:
    """CX with ``target`` >= 4 and any ``control`` (both run time): pairs of blocks trade their
    controlled lanes; with ``control`` >= 4, only the pairs whose block index has the control bit
    set are read and written (half the memory traffic)."""
    found = _state_types(state)
    if found is None or not isinstance(control, types.Integer) or not isinstance(target, types.Integer):
        return None
    real, align = found

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        controlled = _lane_bits(builder, _control_lanes(builder, args[1]), real)

        def update(x: ir.Value, y: ir.Value, lo: ir.Value) -> tuple[ir.Value, ir.Value]:
            return _blend(builder, controlled, y, x), _blend(builder, controlled, x, y)

        def untouched(lo: ir.Value) -> ir.Value:
            return _outside_high_control(builder, args[1], lo)

        span = builder.sub(args[2], ir.Constant(args[2].type, BLOCK_QUBITS))
        _pair_loop(context, builder, signature.args[0], args[0], span, real, align, update, untouched)
        return context.get_dummy_value()

    return types.void(state, control, target), codegen


_cx_target_high: Any = intrinsic(_cx_target_high_typer)  # typed Any: numba's stub counts typingctx as an argument


def _select_typer_checks(state: Any, m0: Any, m1: Any, control: Any) -> tuple[ir.Type, int] | None:
    found = _state_types(state)
    if found is None or not _matrix_ok(m0) or not _matrix_ok(m1) or not isinstance(control, types.Integer):
        return None
    return found


def _select_low_typer(typingctx: Any, state: Any, m0: Any, m1: Any, control: Any, target: Any) -> Any:
    """2x2 ``m0`` on the literal ``target`` (< 4) where the ``control`` bit is 0, ``m1`` where it
    is 1. A control below 4 picks per lane (the coefficients blended once, before the loop); a
    control from 4 on picks per block: a loop over the blocks with its bit clear (``m0``), then
    one over those with it set (``m1``)."""
    found = _select_typer_checks(state, m0, m1, control)
    if found is None or not isinstance(target, types.IntegerLiteral) or not 0 <= target.literal_value < BLOCK_QUBITS:
        return None
    real, align = found
    t = target.literal_value

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        state_type, state_value, control_value = signature.args[0], args[0], args[3]
        terms0 = _low_terms(builder, _matrix_entries(context, builder, signature.args[1], args[1], real), t)
        terms1 = _low_terms(builder, _matrix_entries(context, builder, signature.args[2], args[2], real), t)
        c = _as_index(builder, control_value, ir.IntType(64))
        with builder.if_else(builder.icmp_signed(">=", c, ir.Constant(c.type, BLOCK_QUBITS))) as (high, low):
            with high:
                bit = builder.sub(c, ir.Constant(c.type, BLOCK_QUBITS))
                for value, terms in ((0, terms0), (1, terms1)):
                    _fixed_block_loop(
                        context,
                        builder,
                        state_type,
                        state_value,
                        bit,
                        value,
                        real,
                        align,
                        lambda x, _, terms=terms: _mixed(builder, x, terms),
                    )
            with low:
                bits = _lane_bits(builder, _control_lanes(builder, control_value), real)
                chosen = [
                    (pattern, _blend(builder, bits, plain1, plain0), _blend(builder, bits, signed1, signed0))
                    for (pattern, plain0, signed0), (_, plain1, signed1) in zip(terms0, terms1, strict=True)
                ]
                _block_loop(
                    context, builder, state_type, state_value, real, align, lambda x, _: _mixed(builder, x, chosen)
                )
        return context.get_dummy_value()

    return types.void(state, m0, m1, control, target), codegen


_select_low: Any = intrinsic(_select_low_typer)  # typed Any: numba's stub counts typingctx as an argument


def _select_high_typer(typingctx: Any, state: Any, m0: Any, m1: Any, control: Any, target: Any) -> Any:
    """As ``_select_low`` for a ``target`` >= 4 (a run-time value): pairs of blocks."""
    found = _select_typer_checks(state, m0, m1, control)
    if found is None or not isinstance(target, types.Integer):
        return None
    real, align = found

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        state_type, state_value, control_value = signature.args[0], args[0], args[3]
        first = _uniform_coefficients(builder, _matrix_entries(context, builder, signature.args[1], args[1], real))
        second = _uniform_coefficients(builder, _matrix_entries(context, builder, signature.args[2], args[2], real))
        span = builder.sub(args[4], ir.Constant(args[4].type, BLOCK_QUBITS))
        c = _as_index(builder, control_value, ir.IntType(64))
        with builder.if_else(builder.icmp_signed(">=", c, ir.Constant(c.type, BLOCK_QUBITS))) as (high, low):
            with high:
                bit = builder.sub(c, ir.Constant(c.type, BLOCK_QUBITS))
                for value, coefficients in ((0, first), (1, second)):
                    _fixed_pair_loop(
                        context,
                        builder,
                        state_type,
                        state_value,
                        span,
                        bit,
                        value,
                        real,
                        align,
                        _pair_update(builder, coefficients),
                    )
            with low:
                bits = _lane_bits(builder, _control_lanes(builder, control_value), real)
                chosen = {
                    key: (
                        _blend(builder, bits, second[key][0], first[key][0]),
                        _blend(builder, bits, second[key][1], first[key][1]),
                    )
                    for key in first
                }
                _pair_loop(context, builder, state_type, state_value, span, real, align, _pair_update(builder, chosen))
        return context.get_dummy_value()

    return types.void(state, m0, m1, control, target), codegen


_select_high: Any = intrinsic(_select_high_typer)  # typed Any: numba's stub counts typingctx as an argument


@njit(cache=True, nogil=True)
def apply_1q_simd(state: np.ndarray, q: int, m: np.ndarray) -> None:
    """Dense 2x2 ``m`` on qubit ``q``."""
    if q >= BLOCK_QUBITS:
        _high_1q(state, m, q)
    elif q == 0:  # one literal per low qubit: numba needs the lane shuffles as compile-time constants
        _one_qubit_blocks(state, m, 0)
    elif q == 1:
        _one_qubit_blocks(state, m, 1)
    elif q == 2:
        _one_qubit_blocks(state, m, 2)
    else:
        _one_qubit_blocks(state, m, 3)


@njit(cache=True, nogil=True)
def apply_cx_simd(state: np.ndarray, control: int, target: int) -> None:
    """CX(control, target)."""
    if target >= BLOCK_QUBITS:
        _cx_target_high(state, control, target)
    elif target == 0:  # one literal per low target: the lane shuffle is a compile-time constant
        _cx_target_low(state, control, 0)
    elif target == 1:
        _cx_target_low(state, control, 1)
    elif target == 2:
        _cx_target_low(state, control, 2)
    else:
        _cx_target_low(state, control, 3)


@njit(cache=True, nogil=True)
def apply_select_simd(state: np.ndarray, target: int, control: int, m0: np.ndarray, m1: np.ndarray) -> None:
    """2x2 ``m0`` on ``target`` where the ``control`` bit is 0, ``m1`` where it is 1."""
    if target >= BLOCK_QUBITS:
        _select_high(state, m0, m1, control, target)
    elif target == 0:  # one literal per low target: the lane shuffles are compile-time constants
        _select_low(state, m0, m1, control, 0)
    elif target == 1:
        _select_low(state, m0, m1, control, 1)
    elif target == 2:
        _select_low(state, m0, m1, control, 2)
    else:
        _select_low(state, m0, m1, control, 3)


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
def apply_dense_low(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> None:
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
        apply_1q_simd(state, qubits[0], m)


@njit(cache=True, nogil=True)
def apply_diag_low(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> None:
    """Diagonal on ``qubits``, all below 4: one lane-wise complex product per block."""
    table = np.empty((2, _LANES), dtype=state.real.dtype)
    for i in range(BLOCK):
        c = diag[_row_of(i, qubits)]
        table[0, 2 * i] = c.real
        table[0, 2 * i + 1] = c.real
        table[1, 2 * i] = -c.imag
        table[1, 2 * i + 1] = c.imag
    _table_blocks(state, table, 1)


def _simd_ready(state: Any) -> bool:
    # At compile time: a state type these kernels take.
    return _state_types(state) is not None


def try_1q_simd(state: np.ndarray, q: int, m: np.ndarray) -> bool:
    """``apply_1q_simd`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_cx_simd(state: np.ndarray, control: int, target: int) -> bool:
    """``apply_cx_simd`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_select_simd(state: np.ndarray, target: int, control: int, m0: np.ndarray, m1: np.ndarray) -> bool:
    """``apply_select_simd`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_dense_low(state: np.ndarray, qubits: np.ndarray, m: np.ndarray) -> bool:
    """``apply_dense_low`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


def try_diag_low(state: np.ndarray, qubits: np.ndarray, diag: np.ndarray) -> bool:
    """``apply_diag_low`` if the state allows (jitted callers only), and whether it ran."""
    raise NotImplementedError("jitted code only")


@overload(try_1q_simd, jit_options={"nogil": True})
def _try_1q_simd(state: Any, q: Any, m: Any) -> Any:
    if not _simd_ready(state):

        def declined(state: Any, q: Any, m: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, q: Any, m: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < 2 * BLOCK:  # a pair of blocks at least (q >= 4 needs 32 amplitudes)
            return False
        apply_1q_simd(state, q, m)
        return True

    return run


@overload(try_cx_simd, jit_options={"nogil": True})
def _try_cx_simd(state: Any, control: Any, target: Any) -> Any:
    if not _simd_ready(state):

        def declined(state: Any, control: Any, target: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, control: Any, target: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < 2 * BLOCK:
            return False
        apply_cx_simd(state, control, target)
        return True

    return run


@overload(try_select_simd, jit_options={"nogil": True})
def _try_select_simd(state: Any, target: Any, control: Any, m0: Any, m1: Any) -> Any:
    if not _simd_ready(state):

        def declined(state: Any, target: Any, control: Any, m0: Any, m1: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, target: Any, control: Any, m0: Any, m1: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < 2 * BLOCK:
            return False
        apply_select_simd(state, target, control, m0, m1)
        return True

    return run


@overload(try_dense_low, jit_options={"nogil": True})
def _try_dense_low(state: Any, qubits: Any, m: Any) -> Any:
    if not _simd_ready(state):

        def declined(state: Any, qubits: Any, m: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, qubits: Any, m: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < 2 * BLOCK:
            return False
        apply_dense_low(state, qubits, m)
        return True

    return run


@overload(try_diag_low, jit_options={"nogil": True})
def _try_diag_low(state: Any, qubits: Any, diag: Any) -> Any:
    if not _simd_ready(state):

        def declined(state: Any, qubits: Any, diag: Any) -> bool:  # pragma: no cover - compiled
            return False

        return declined

    def run(state: Any, qubits: Any, diag: Any) -> bool:  # pragma: no cover - compiled
        if state.shape[0] < 2 * BLOCK:
            return False
        apply_diag_low(state, qubits, diag)
        return True

    return run
