"""Small states of several bindings at once, as lanes: the gates of a sweep applied to
``LANES`` bindings' states side by side.

Conventions in :mod:`aqrt.engine.kernels` (op format in :mod:`aqrt.engine.ops`). A lane state is
two real arrays of shape (2**n, ``LANES``) in the state's real precision: ``re[i, l]`` and
``im[i, l]`` are amplitude i of binding l's state. Each op's entries are per lane too (a
binding's row of entries, or the program's static entries, the same in every lane).

Why. A small state (n = 8: 256 amplitudes, 4 KiB) gives a gate kernel little to run: per op a
fixed cost (dispatch, coefficient vectors built from the matrix) of the order of the arithmetic
itself. With the bindings as lanes, amplitude i of every binding is one contiguous row, so a
gate is plain loops whose inner loop (the lanes) is one vector: no lane shuffles, and the fixed
cost of an op is paid once for ``LANES`` bindings. The final lane states are also the layout
:func:`aqrt.engine.kernels.sweeps.lane_term_values` reduces terms from.

- ``run_lanes``  a basic program (:func:`aqrt.engine.simulate.is_basic`: CX, select, diagonal,
  controlled and 1-qubit ops) on lane states
- ``lane_term``  one Pauli term's signed sum on every lane (jitted callers only)
- ``lane_matmul``  a 2x2 times a 2x2, lane by lane (jitted callers only: a sweep's entries)
- ``lane_two_factors``  the product of two one-angle gates' 2x2s from their angles' cosines and
  sines, lane by lane (jitted callers only: a sweep's entries)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ..ops import CTRL, CX, DIAG, SEL, OpTuple
from .simd import _as_index, _fma, _insert_zero

__all__ = ["LANES", "lane_matmul", "lane_term", "lane_two_factors", "run_lanes"]

LANES = 8  # bindings per lane state (8 float64 lanes: one 512-bit vector per amplitude row)

# numba's LLVM runs the loop vectoriser but not the SLP vectoriser, and the loop vectoriser
# left the lane loops scalar (it cannot prove the row arrays do not overlap): the kernels below
# write the vector code themselves, one <LANES x real> vector per row, as :mod:`.simd` does; a
# 2x2 update runs over the rows once per 256-bit part of them (``_parts``), which keeps its
# coefficients in registers.


def _lane_array(array: Any) -> ir.Type | None:
    # The LLVM real type of a C-contiguous 2-d float array (rows of LANES reals), else None.
    if not isinstance(array, types.Array) or array.ndim != 2 or array.layout != "C":
        return None
    if array.dtype == types.float64:
        return ir.DoubleType()
    if array.dtype == types.float32:
        return ir.FloatType()
    return None


def _rows(context: Any, builder: ir.IRBuilder, array_type: Any, array: ir.Value, real: ir.Type) -> tuple[Any, Any]:
    # (pointer to the rows as vectors, the array's number of rows)
    made = context.make_array(array_type)(context, builder, array)
    rows = cgutils.unpack_tuple(builder, made.shape, 2)[0]
    return builder.bitcast(made.data, ir.VectorType(real, LANES).as_pointer()), rows


def _typed_lanes(*arrays: Any) -> ir.Type | None:
    reals = [_lane_array(array) for array in arrays]
    if any(real is None for real in reals) or len({array.dtype for array in arrays}) != 1:
        return None
    return reals[0]


def _parts(real: ir.Type) -> int:
    """Sub-vectors a lane row is updated in: one 256-bit register's worth at a time (4 doubles or
    8 floats), so that a 2x2's coefficients stay in registers through the pair loop (with
    float64 rows updated whole, they spilled to the stack and were loaded again per pair)."""
    width = 4 if isinstance(real, ir.DoubleType) else 8
    return max(1, LANES // width)


@contextlib.contextmanager
def _rows_clear_of(builder: ir.IRBuilder, bits: ir.Value, count: ir.Value) -> Iterator[ir.Value]:
    """A loop over the first ``count`` rows whose ``bits`` are clear, in order: the body gets the
    row; the next one is the carry of +1 through those bits (set them, add, clear them), three
    integer operations a row instead of a bit insertion per bit."""
    row = cgutils.alloca_once_value(builder, ir.Constant(bits.type, 0))
    with cgutils.for_range(builder, count):
        current = builder.load(row)
        yield current
        carried = builder.add(builder.or_(current, bits), ir.Constant(bits.type, 1))
        builder.store(builder.and_(carried, builder.not_(bits)), row)


def _pair_update(
    builder: ir.IRBuilder,
    real: ir.Type,
    re_rows: Any,
    im_rows: Any,
    cr_rows: Any,
    ci_rows: Any,
    first: ir.Value,
    real_rows: tuple[bool, bool] = (False, False),
    part: int = 0,
) -> Any:
    """update(i0, i1): part ``part`` of rows i0, i1 (a sub-vector of ``_parts(real)``) <- the
    2x2 in coefficient rows first..first+3 (m00, m01, m10, m11 per lane) times them; the
    coefficients are loaded here, once, before the caller's loop. A row of the 2x2 named real in
    ``real_rows`` (its entries' imaginary parts zero in every lane) costs half the arithmetic:
    its imaginary parts are neither loaded nor multiplied (the same roundings as the complex
    update, which adds their exact zero products)."""
    index = first.type
    align = 4 if isinstance(real, ir.FloatType) else 8
    parts = _parts(real)
    sub = ir.VectorType(real, LANES // parts).as_pointer()
    re_sub, im_sub, cr_sub, ci_sub = (builder.bitcast(rows, sub) for rows in (re_rows, im_rows, cr_rows, ci_rows))
    scale, offset = ir.Constant(index, parts), ir.Constant(index, part)

    def at(rows: Any, row: ir.Value) -> Any:
        return builder.gep(rows, [builder.add(builder.mul(row, scale), offset)])

    def coefficient(rows: Any, e: int) -> ir.Value:
        return builder.load(at(rows, builder.add(first, ir.Constant(index, e))), align=align)

    cre = [coefficient(cr_sub, e) for e in range(4)]
    cim = [None if real_rows[e // 2] else coefficient(ci_sub, e) for e in range(4)]

    def update(i0: ir.Value, i1: ir.Value) -> None:
        pointers = [at(re_sub, i0), at(im_sub, i0), at(re_sub, i1), at(im_sub, i1)]
        a0r, a0i, a1r, a1i = (builder.load(p, align=align) for p in pointers)
        # -a0i, -a1i (exact), not negated coefficients: the negation folds into the
        # multiply-adds, and the coefficients take no registers more
        n0i, n1i = builder.fneg(a0i), builder.fneg(a1i)
        out = []
        for c0 in (0, 2):  # output row i0 (entries 0, 1), row i1 (entries 2, 3)
            c1 = c0 + 1
            if real_rows[c0 // 2]:
                out.append(_fma(builder, cre[c0], a0r, builder.fmul(cre[c1], a1r)))
                out.append(_fma(builder, cre[c0], a0i, builder.fmul(cre[c1], a1i)))
                continue
            out.append(
                _fma(
                    builder,
                    cre[c0],
                    a0r,
                    _fma(builder, cim[c0], n0i, _fma(builder, cre[c1], a1r, builder.fmul(cim[c1], n1i))),
                )
            )
            out.append(
                _fma(
                    builder,
                    cre[c0],
                    a0i,
                    _fma(builder, cim[c0], a0r, _fma(builder, cre[c1], a1i, builder.fmul(cim[c1], a1r))),
                )
            )
        for p, v in zip(pointers, out, strict=True):
            builder.store(v, p, align=align)

    return update


def _by_real_rows(builder: ir.IRBuilder, flags: ir.Value, emit: Any) -> None:
    """``emit(real_rows)`` once for each of the four (row 0 real, row 1 real), run where the
    runtime ``flags`` (bit 0: row 0, bit 1: row 1) are those; any other value runs the complex
    version."""
    after = builder.append_basic_block("real_rows.after")
    blocks = [builder.append_basic_block(f"real_rows.{code}") for code in range(4)]
    switch = builder.switch(flags, blocks[0])
    for code, block in enumerate(blocks):
        switch.add_case(ir.Constant(flags.type, code), block)
        builder.position_at_end(block)
        emit((bool(code & 1), bool(code & 2)))
        builder.branch(after)
    builder.position_at_end(after)


def _lane_pairs_typer(
    typingctx: Any, re: Any, im: Any, cr: Any, ci: Any, target: Any, mask: Any, value: Any, real_rows: Any
) -> Any:
    """Rows i0, i0 + 2**target (i0 with the target bit clear and (i0 & mask) == value) <- the
    2x2 in coefficient rows 0..3 (m00, m01, m10, m11: real parts in ``cr``, imaginary in ``ci``,
    per lane) times them; the coefficients are loaded once, before the loop. ``real_rows``: bit
    r set when row r's imaginary parts are zero in every lane (then its arithmetic is real)."""
    real = _typed_lanes(re, im, cr, ci)
    if real is None or not all(isinstance(t, types.Integer) for t in (target, mask, value, real_rows)):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        re_rows, size = _rows(context, builder, signature.args[0], args[0], real)
        im_rows, _ = _rows(context, builder, signature.args[1], args[1], real)
        cr_rows, _ = _rows(context, builder, signature.args[2], args[2], real)
        ci_rows, _ = _rows(context, builder, signature.args[3], args[3], real)
        index = size.type
        target, mask, value, flags = (_as_index(builder, a, index) for a in args[4:])
        bit = builder.shl(ir.Constant(index, 1), target)

        def loop(real_rows: tuple[bool, bool]) -> None:
            for part in range(_parts(real)):
                update = _pair_update(
                    builder, real, re_rows, im_rows, cr_rows, ci_rows, ir.Constant(index, 0), real_rows, part
                )
                with _rows_clear_of(builder, bit, builder.lshr(size, ir.Constant(index, 1))) as i0:
                    chosen = builder.icmp_unsigned("==", builder.and_(i0, mask), value)
                    with builder.if_then(chosen, likely=True):
                        update(i0, builder.or_(i0, bit))

        _by_real_rows(builder, flags, loop)
        return context.get_dummy_value()

    return types.void(re, im, cr, ci, target, mask, value, real_rows), codegen


_lane_pairs: Any = intrinsic(_lane_pairs_typer)  # typed Any: numba's stub counts typingctx as an argument


def _lane_select_typer(
    typingctx: Any, re: Any, im: Any, cr: Any, ci: Any, target: Any, control: Any, real_rows: Any
) -> Any:
    """A SEL op: rows i0, i0 + 2**target <- coefficient rows 0..3's 2x2 times them where i0 has
    the control bit clear, rows 4..7's where it is set; one loop over the quarter of the rows
    whose target and control bits are clear per half. ``real_rows``: bits 0, 1 the first 2x2's
    real rows, bits 2, 3 the second's (as :func:`_lane_pairs_typer`)."""
    real = _typed_lanes(re, im, cr, ci)
    if real is None or not all(isinstance(t, types.Integer) for t in (target, control, real_rows)):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        re_rows, size = _rows(context, builder, signature.args[0], args[0], real)
        im_rows, _ = _rows(context, builder, signature.args[1], args[1], real)
        cr_rows, _ = _rows(context, builder, signature.args[2], args[2], real)
        ci_rows, _ = _rows(context, builder, signature.args[3], args[3], real)
        index = size.type
        target, control, flags = (_as_index(builder, a, index) for a in args[4:])
        target_bit = builder.shl(ir.Constant(index, 1), target)
        control_bit = builder.shl(ir.Constant(index, 1), control)
        both = builder.or_(target_bit, control_bit)
        for half, fixed in ((0, ir.Constant(index, 0)), (4, control_bit)):

            def loop(real_rows: tuple[bool, bool], half: int = half, fixed: ir.Value = fixed) -> None:
                first = ir.Constant(index, half)
                for part in range(_parts(real)):
                    update = _pair_update(builder, real, re_rows, im_rows, cr_rows, ci_rows, first, real_rows, part)
                    with _rows_clear_of(builder, both, builder.lshr(size, ir.Constant(index, 2))) as clear:
                        i0 = builder.or_(clear, fixed)
                        update(i0, builder.or_(i0, target_bit))

            half_flags = builder.and_(builder.lshr(flags, ir.Constant(index, half // 2)), ir.Constant(index, 3))
            _by_real_rows(builder, half_flags, loop)
        return context.get_dummy_value()

    return types.void(re, im, cr, ci, target, control, real_rows), codegen


_lane_select: Any = intrinsic(_lane_select_typer)  # typed Any: numba's stub counts typingctx as an argument


def _lane_swap_typer(typingctx: Any, re: Any, im: Any, control: Any, target: Any) -> Any:
    """CX: rows i0, i0 + 2**target trade places where i0 has the control bit set."""
    real = _typed_lanes(re, im)
    if real is None or not isinstance(control, types.Integer) or not isinstance(target, types.Integer):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        re_rows, size = _rows(context, builder, signature.args[0], args[0], real)
        im_rows, _ = _rows(context, builder, signature.args[1], args[1], real)
        index = size.type
        control, target = (_as_index(builder, a, index) for a in args[2:])
        align = 4 if isinstance(real, ir.FloatType) else 8
        bit = builder.shl(ir.Constant(index, 1), target)
        one = ir.Constant(index, 1)
        with cgutils.for_range(builder, builder.lshr(size, one)) as loop:
            i0 = _insert_zero(builder, loop.index, target)
            controlled = builder.trunc(builder.lshr(i0, control), ir.IntType(1))
            with builder.if_then(controlled):
                i1 = builder.or_(i0, bit)
                for rows in (re_rows, im_rows):
                    p0, p1 = builder.gep(rows, [i0]), builder.gep(rows, [i1])
                    v0, v1 = builder.load(p0, align=align), builder.load(p1, align=align)
                    builder.store(v1, p0, align=align)
                    builder.store(v0, p1, align=align)
        return context.get_dummy_value()

    return types.void(re, im, control, target), codegen


_lane_swap: Any = intrinsic(_lane_swap_typer)  # typed Any: numba's stub counts typingctx as an argument


def _lane_scale_typer(typingctx: Any, re: Any, im: Any, cr: Any, ci: Any, entry: Any) -> Any:
    """A diagonal: row i times coefficient row ``entry[i]`` (lane by lane, complex)."""
    real = _typed_lanes(re, im, cr, ci)
    if real is None or not isinstance(entry, types.Array) or entry.dtype != types.int64 or entry.ndim != 1:
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        re_rows, size = _rows(context, builder, signature.args[0], args[0], real)
        im_rows, _ = _rows(context, builder, signature.args[1], args[1], real)
        cr_rows, _ = _rows(context, builder, signature.args[2], args[2], real)
        ci_rows, _ = _rows(context, builder, signature.args[3], args[3], real)
        entries = context.make_array(signature.args[4])(context, builder, args[4])
        align = 4 if isinstance(real, ir.FloatType) else 8
        with cgutils.for_range(builder, size) as loop:
            pointer = cgutils.get_item_pointer(context, builder, signature.args[4], entries, [loop.index])
            e = _as_index(builder, builder.load(pointer), size.type)
            c_re = builder.load(builder.gep(cr_rows, [e]), align=align)
            c_im = builder.load(builder.gep(ci_rows, [e]), align=align)
            p_re, p_im = builder.gep(re_rows, [loop.index]), builder.gep(im_rows, [loop.index])
            a_re, a_im = builder.load(p_re, align=align), builder.load(p_im, align=align)
            builder.store(_fma(builder, c_re, a_re, builder.fneg(builder.fmul(c_im, a_im))), p_re, align=align)
            builder.store(_fma(builder, c_re, a_im, builder.fmul(c_im, a_re)), p_im, align=align)
        return context.get_dummy_value()

    return types.void(re, im, cr, ci, entry), codegen


_lane_scale: Any = intrinsic(_lane_scale_typer)  # typed Any: numba's stub counts typingctx as an argument


def _lane_term_typer(typingctx: Any, re: Any, im: Any, x: Any, z: Any, odd: Any, out: Any) -> Any:
    """``out[l]`` <- sum over rows of (-1)^popcount(i & z) times, for x = 0, |psi_l[i]|^2; else
    (over the rows i with x's highest bit clear) Re(conj(psi_l[i ^ x]) psi_l[i]), or its Im when
    ``odd``. Products and sums in float64 (a float32 state's rows are widened first)."""
    real = _typed_lanes(re, im)
    if real is None or not all(isinstance(t, types.Integer) for t in (x, z, odd)):
        return None
    if not isinstance(out, types.Array) or out.dtype != types.float64 or out.layout != "C" or out.ndim != 1:
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        re_rows, size = _rows(context, builder, signature.args[0], args[0], real)
        im_rows, _ = _rows(context, builder, signature.args[1], args[1], real)
        index = size.type
        x, z, odd = (_as_index(builder, a, index) for a in args[2:5])
        align = 4 if isinstance(real, ir.FloatType) else 8
        wide = ir.VectorType(ir.DoubleType(), LANES)
        zero = ir.Constant(wide, [ir.Constant(ir.DoubleType(), 0.0)] * LANES)
        ctpop = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(index, [index]), f"llvm.ctpop.i{index.width}"
        )
        one = ir.Constant(index, 1)
        # x's highest bit (for x = 0: every row, with itself as its partner)
        leading = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(index, [index, ir.IntType(1)]), f"llvm.ctlz.i{index.width}"
        )
        diagonal = builder.icmp_unsigned("==", x, ir.Constant(index, 0))
        high = builder.sub(
            ir.Constant(index, index.width - 1), builder.call(leading, [x, ir.Constant(ir.IntType(1), 1)])
        )
        count = builder.select(diagonal, size, builder.lshr(size, one))
        is_odd = builder.icmp_unsigned("!=", odd, ir.Constant(index, 0))
        accumulator = cgutils.alloca_once_value(builder, zero)

        def widened(pointer: Any) -> ir.Value:
            value = builder.load(pointer, align=align)
            return value if isinstance(real, ir.DoubleType) else builder.fpext(value, wide)

        def sum_rows(imaginary: bool) -> None:
            # one loop per part, so that a term computes only the part it needs
            with cgutils.for_range(builder, count) as loop:
                i = builder.select(
                    diagonal,
                    loop.index,
                    _insert_zero(builder, loop.index, builder.select(diagonal, ir.Constant(index, 0), high)),
                )
                partner = builder.xor(i, x)
                re_i, im_i = widened(builder.gep(re_rows, [i])), widened(builder.gep(im_rows, [i]))
                re_p, im_p = widened(builder.gep(re_rows, [partner])), widened(builder.gep(im_rows, [partner]))
                if imaginary:
                    value = _fma(builder, re_p, im_i, builder.fneg(builder.fmul(im_p, re_i)))
                else:
                    value = _fma(builder, re_p, re_i, builder.fmul(im_p, im_i))
                negative = builder.trunc(builder.call(ctpop, [builder.and_(i, z)]), ir.IntType(1))
                signed = builder.select(negative, builder.fneg(value), value)
                builder.store(builder.fadd(builder.load(accumulator), signed), accumulator)

        with builder.if_else(is_odd) as (imaginary_term, real_term):
            with imaginary_term:
                sum_rows(True)
            with real_term:
                sum_rows(False)
        made = context.make_array(signature.args[5])(context, builder, args[5])
        builder.store(builder.load(accumulator), builder.bitcast(made.data, wide.as_pointer()), align=8)
        return context.get_dummy_value()

    return types.void(re, im, x, z, odd, out), codegen


lane_term: Any = intrinsic(_lane_term_typer)  # typed Any: numba's stub counts typingctx as an argument


def _complex_product(builder: ir.IRBuilder, a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
    """a times b, each (real, imaginary), as complex multiplication rounds it (no fused multiply-adds)."""
    (ar, ai), (br, bi) = a, b
    return (
        builder.fsub(builder.fmul(ar, br), builder.fmul(ai, bi)),
        builder.fadd(builder.fmul(ar, bi), builder.fmul(ai, br)),
    )


def _product_2x2(builder: ir.IRBuilder, a: list[Any], m: list[Any]) -> list[tuple[Any, Any]]:
    """The 2x2 ``a`` times the 2x2 ``m``, each four (real, imaginary) entries, row-major, as
    complex multiplication rounds them (no fused multiply-adds)."""
    product = []
    for row, column in ((0, 0), (0, 1), (1, 0), (1, 1)):
        first_re, first_im = _complex_product(builder, a[2 * row], m[column])
        second_re, second_im = _complex_product(builder, a[2 * row + 1], m[2 + column])
        product.append((builder.fadd(first_re, second_re), builder.fadd(first_im, second_im)))
    return product


def _store_entries(
    builder: ir.IRBuilder, entries: list[tuple[Any, Any]], re_rows: Any, im_rows: Any, first: ir.Value, real: ir.Type
) -> None:
    """Rows ``first``.. of the lane arrays ``re_rows``, ``im_rows`` (of ``real`` numbers) <-
    ``entries``' float64 vectors, narrowed for a float32 array."""
    narrow = not isinstance(real, ir.DoubleType)
    for e, (re, im) in enumerate(entries):
        row = builder.add(first, ir.Constant(first.type, e))
        for value, rows in ((re, re_rows), (im, im_rows)):
            stored = builder.fptrunc(value, ir.VectorType(real, LANES)) if narrow else value
            builder.store(stored, builder.gep(rows, [row]), align=4 if narrow else 8)


def _lane_matmul_typer(typingctx: Any, ar: Any, ai: Any, mr: Any, mi: Any, out_re: Any, out_im: Any) -> Any:
    """``out`` <- the 2x2 ``a`` times the 2x2 ``m``, lane by lane: each a (4, ``LANES``) float64
    array of entries (row-major) split in real and imaginary parts; ``out`` may be ``m``.
    Products and sums as complex multiplication rounds them (no fused multiply-adds), so that
    the entries are those a binding's own row gets."""
    arrays = (ar, ai, mr, mi, out_re, out_im)
    if any(not isinstance(a, types.Array) or a.ndim != 2 or a.layout != "C" for a in arrays):
        return None
    if any(a.dtype != types.float64 for a in arrays[:4]) or len({out_re.dtype, out_im.dtype}) != 1:
        return None
    out_real = _lane_array(out_re)
    if out_real is None:
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        double = ir.DoubleType()
        rows = [_rows(context, builder, signature.args[k], args[k], double)[0] for k in range(4)]
        out_rows = [_rows(context, builder, signature.args[k], args[k], out_real)[0] for k in (4, 5)]
        index = ir.IntType(64)
        a_re, a_im, m_re, m_im = (
            [builder.load(builder.gep(r, [ir.Constant(index, e)]), align=8) for e in range(4)] for r in rows
        )
        product = _product_2x2(builder, list(zip(a_re, a_im, strict=True)), list(zip(m_re, m_im, strict=True)))
        _store_entries(builder, product, out_rows[0], out_rows[1], ir.Constant(index, 0), out_real)
        return context.get_dummy_value()

    return types.void(ar, ai, mr, mi, out_re, out_im), codegen


lane_matmul: Any = intrinsic(_lane_matmul_typer)  # typed Any: numba's stub counts typingctx as an argument


def _lane_two_factors_typer(
    typingctx: Any,
    table: Any,
    first: Any,
    second: Any,
    cosines: Any,
    sines: Any,
    out_re: Any,
    out_im: Any,
    offset: Any,
    static: Any,
    drop_phase: Any,
) -> Any:
    """Rows ``offset``..``offset + 3`` of ``out_re``, ``out_im`` (entries by lanes) <- factor
    ``second`` times factor ``first``, lane by lane: each factor a row (gate code, angle column,
    ...) of a sweep plan's factors whose code's 2x2 is ``table[code]``'s K + A c + B s per entry
    (c, s: its angle column's row of ``cosines``, ``sines``). With a ``static`` 2x2 (4 complex
    entries; none: 0 entries), rows ``offset + 4``.. get ``static`` times that product (a
    select's second matrix). Entries and products rounded as complex arithmetic rounds them (no
    fused multiply-adds): what ``lane_matmul`` makes of the factors' entries.

    ``drop_phase`` (for a real ``first`` and a diagonal ``second`` of unit entries, diag(d0, d1):
    ry then rz): the product times conj(d0), a global phase per lane, instead: ``first``'s real
    row 0 as it is and its row 1 times d1 conj(d0), so that row 0 is real (half the arithmetic
    when the lanes run it); only for states whose global phase is never read."""
    if not isinstance(table, types.Array) or table.ndim != 4 or table.layout != "C" or table.dtype != types.float64:
        return None
    for row in (first, second):
        if not isinstance(row, types.Array) or row.ndim != 1 or not isinstance(row.dtype, types.Integer):
            return None
    if any(_lane_array(a) != ir.DoubleType() for a in (cosines, sines)) or not isinstance(offset, types.Integer):
        return None
    out_real = _typed_lanes(out_re, out_im)
    if out_real is None:
        return None
    if not isinstance(static, types.Array) or static.ndim != 1 or static.dtype != types.complex128:
        return None
    if not isinstance(drop_phase, types.Integer):
        return None

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        double = ir.DoubleType()
        index = ir.IntType(64)
        wide = ir.VectorType(double, LANES)
        coefficients = builder.bitcast(
            context.make_array(signature.args[0])(context, builder, args[0]).data, double.as_pointer()
        )
        cos_rows, _ = _rows(context, builder, signature.args[3], args[3], double)
        sin_rows, _ = _rows(context, builder, signature.args[4], args[4], double)
        re_rows, _ = _rows(context, builder, signature.args[5], args[5], out_real)
        im_rows, _ = _rows(context, builder, signature.args[6], args[6], out_real)
        at = _as_index(builder, args[7], index)
        static_array = context.make_array(signature.args[8])(context, builder, args[8])
        static_count = cgutils.unpack_tuple(builder, static_array.shape, 1)[0]
        static_entries = builder.bitcast(static_array.data, double.as_pointer())

        def splat(value: ir.Value) -> ir.Value:
            vector = builder.insert_element(ir.Constant(wide, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
            mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
            return builder.shuffle_vector(vector, vector, mask)

        def entries(k: int) -> list[tuple[ir.Value, ir.Value]]:
            row_type = signature.args[1 + k]
            row = context.make_array(row_type)(context, builder, args[1 + k])
            code, column = (
                _as_index(
                    builder,
                    builder.load(cgutils.get_item_pointer(context, builder, row_type, row, [ir.Constant(index, i)])),
                    index,
                )
                for i in (0, 1)
            )
            c = builder.load(builder.gep(cos_rows, [column]), align=8)
            s = builder.load(builder.gep(sin_rows, [column]), align=8)
            base = builder.mul(code, ir.Constant(index, 24))  # table[code]: (3, 2, 4) doubles
            made = []
            for e in range(4):
                parts = []
                for part in (0, 1):
                    k_, a_, b_ = (
                        splat(
                            builder.load(
                                builder.gep(
                                    coefficients, [builder.add(base, ir.Constant(index, term * 8 + part * 4 + e))]
                                )
                            )
                        )
                        for term in (0, 1, 2)
                    )
                    parts.append(builder.fadd(builder.fadd(k_, builder.fmul(a_, c)), builder.fmul(b_, s)))
                made.append((parts[0], parts[1]))
            return made

        first_entries, second_entries = entries(0), entries(1)
        product = _product_2x2(builder, second_entries, first_entries)
        # with drop_phase, second is diag(d0, d1): first's row 0 as it is, row 1 times d1 conj(d0)
        (d0r, d0i), (d1r, d1i) = second_entries[0], second_entries[3]
        phase = (  # d1 conj(d0), rounded as complex multiplication rounds it
            builder.fadd(builder.fmul(d1r, d0r), builder.fmul(d1i, d0i)),
            builder.fsub(builder.fmul(d1i, d0r), builder.fmul(d1r, d0i)),
        )
        rephased = first_entries[:2] + [_complex_product(builder, phase, entry) for entry in first_entries[2:]]
        dropped = builder.icmp_unsigned("!=", _as_index(builder, args[9], index), ir.Constant(index, 0))
        product = [
            (builder.select(dropped, fr, pr), builder.select(dropped, fi, pi))
            for (fr, fi), (pr, pi) in zip(rephased, product, strict=True)
        ]
        _store_entries(builder, product, re_rows, im_rows, at, out_real)
        with builder.if_then(builder.icmp_unsigned("==", static_count, ir.Constant(static_count.type, 4))):
            fixed = [
                tuple(
                    splat(builder.load(builder.gep(static_entries, [ir.Constant(index, 2 * e + part)])))
                    for part in (0, 1)
                )
                for e in range(4)
            ]
            selected = _product_2x2(builder, fixed, product)  # a select's second matrix
            _store_entries(builder, selected, re_rows, im_rows, builder.add(at, ir.Constant(index, 4)), out_real)
        return context.get_dummy_value()

    return types.void(table, first, second, cosines, sines, out_re, out_im, offset, static, drop_phase), codegen


lane_two_factors: Any = intrinsic(_lane_two_factors_typer)  # typed Any: numba's stub counts typingctx as an argument


@njit(cache=True, nogil=True)
def _diagonal(re: np.ndarray, im: np.ndarray, qubits: np.ndarray, cr: np.ndarray, ci: np.ndarray) -> None:
    entry = np.empty(re.shape[0], dtype=np.int64)
    for i in range(re.shape[0]):
        sub = 0
        for b in range(qubits.shape[0]):
            sub |= ((i >> qubits[b]) & 1) << b
        entry[i] = sub
    _lane_scale(re, im, cr, ci, entry)


@njit(cache=True, nogil=True, inline="always")
def _real_rows(ci: np.ndarray, count: int) -> int:
    """Bit r set when coefficient rows 2r, 2r + 1 (row r of an op's 2x2s, two 2x2s for a
    select) have no imaginary part in any lane: that row's update is real arithmetic."""
    real_rows = (1 << (count >> 1)) - 1
    for e in range(count):
        for lane in range(LANES):
            if ci[e, lane] != 0:
                real_rows &= ~(1 << (e >> 1))
                break
    return real_rows


@njit(cache=True, nogil=True)
def run_lanes(
    re: np.ndarray,
    im: np.ndarray,
    ops: OpTuple,
    static_buffer: np.ndarray,
    rows_re: np.ndarray,
    rows_im: np.ndarray,
    cr: np.ndarray,
    ci: np.ndarray,
    live_rows: int,
) -> None:
    """Apply every op of a basic program to the lane states ``re``, ``im`` in place.

    ``rows_re[e, l]``, ``rows_im[e, l]``: entry e of lane l's binding row; ``cr``, ``ci``: scratch
    of at least (8, ``LANES``) (a diagonal on k qubits needs 2**k rows), the state's real dtype.
    A 1-qubit permutation runs as a dense 2x2 (its zero entries add exact zeros).

    ``live_rows`` (a power of two): rows from there on are zero (1 for |0...0>). An op runs on
    rows below 2**(its highest qubit + 1), or the live rows if more; only ops not diagonal widen
    them: a circuit's first layer on |0...0> costs a fraction of its passes.
    """
    kinds, qubits, widths, aux, sources, offsets = ops
    for j in range(kinds.shape[0]):
        kind = kinds[j]
        k = widths[j]
        if kind != DIAG:
            for b in range(k):
                live_rows = max(live_rows, 2 << qubits[j, b])
        live_re = re[:live_rows]
        live_im = im[:live_rows]
        if kind == CX:
            _lane_swap(live_re, live_im, qubits[j, 0], qubits[j, 1])
            continue
        count = (1 << k) if kind == DIAG else (8 if kind == SEL else 4)
        start = offsets[j]
        if sources[j] == 0:
            for e in range(count):
                entry = static_buffer[start + e]
                for lane in range(LANES):
                    cr[e, lane] = entry.real
                    ci[e, lane] = entry.imag
        else:
            for e in range(count):
                for lane in range(LANES):
                    cr[e, lane] = rows_re[start + e, lane]
                    ci[e, lane] = rows_im[start + e, lane]
        if kind == DIAG:
            _diagonal(live_re, live_im, qubits[j, :k], cr, ci)
            continue
        real_rows = _real_rows(ci, count)
        if kind == SEL:
            _lane_select(live_re, live_im, cr, ci, qubits[j, 0], qubits[j, 1], real_rows)
        elif kind == CTRL:
            _lane_pairs(live_re, live_im, cr, ci, qubits[j, 0], aux[j, 0], aux[j, 1], real_rows)
        elif k == 1:
            _lane_pairs(live_re, live_im, cr, ci, qubits[j, 0], 0, 0, real_rows)
        else:
            raise ValueError("run_lanes: an op on several qubits that only run_program runs")
