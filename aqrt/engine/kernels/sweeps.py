"""Sweeps of small states at the compute bound: the bindings' gate matrices made inside the
kernel from their angles, and the Pauli terms of several bindings' states reduced together.

Conventions in :mod:`aqrt.engine.kernels` (op format in :mod:`aqrt.engine.ops`).

- ``sincos_row``            cos and sin of a binding's angle columns, one vectorised loop
- ``fill_binding_row``      one binding's entries of a program from its angles' cosines and sines
  (a recipe per parameterised op: :mod:`aqrt.engine.lowering`, ``SweepPlan``)
- ``fill_lane_rows``        the same for ``LANES`` bindings at once, as lanes (vectorised loops),
  up to a global phase per lane
- ``lane_term_values``      every Pauli term's value on several states held as lanes
- ``diagonal_values``       every diagonal term's value on one state (one Walsh-Hadamard transform)
- ``sweep_term_values``     for many bindings: fill the binding's row (from its angles, or copied
  from a program's binding buffers), run the program from |0...0>, every term's value; parallel
  over bindings
- ``sweep_probabilities``   the same, |psi_b|^2

Small programs of the common ops (``basic``) run on lane states (:mod:`.lanes`): the states of
``LANE_BINDINGS`` bindings side by side, each gate applied to all of them at once; other
programs run binding by binding on the serial kernels, their final states copied into lanes.

Why lanes. A term (x, z) is sum_i s(i) conj(psi[i ^ x]) psi[i], s(i) = (-1)^popcount(i & z): on
one state, psi[i ^ x] is a gather (bits 0..3 of x permute amplitudes inside every vector), and
a 256-amplitude state gives the vector loops little to run. With the final states of
``LANE_BINDINGS`` bindings side by side (amplitude i of each as one row), row i ^ x is a
contiguous vector: a term is one signed multiply-add per pair of rows and lane (measured at
n = 8, 20 random terms: 10-25% less time for the whole sweep than the per-state dot products,
gathers included, that it replaced; the same for terms that are mostly diagonal).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..ops import CTRL, CX, DENSE, DIAG, SEL, OpTuple
from .apply import apply_controlled, apply_cx, apply_diag
from .bits import walsh_hadamard
from .interpreter import run_basic_program, run_program
from .lanes import LANES, lane_matmul, lane_term, lane_two_factors, run_lanes
from .simd import BLOCK_QUBITS, LOW_TARGET_CX, apply_1q_simd, apply_cx_simd, apply_select_simd

__all__ = [
    "GATE_CODES",
    "LANE_BINDINGS",
    "MIN_AMPLITUDES",
    "SINCOS_LIMIT",
    "WORK_ITEMS",
    "diagonal_values",
    "fill_binding_row",
    "fill_lane_rows",
    "lane_term_values",
    "sincos_row",
    "sweep_probabilities",
    "sweep_term_values",
]

MIN_AMPLITUDES = 1 << (BLOCK_QUBITS + 1)  # smaller states run on run_basic_program (no SIMD kernels)
WORK_ITEMS = 64  # a sweep's bindings are split into at most this many parallel work items

# Gate codes of a recipe's factors (see fill_binding_row); angles are column indices of the
# binding's cosine/sine rows, already scaled (half angles for rotations).
_STATIC = 0  # a static 2x2 (or 4-entry diagonal) from the recipe's constant matrices
_RX = 1  # (theta/2)
_RY = 2  # (theta/2)
_RZ = 3  # (phi/2)
_PHASE = 4  # (lambda)
_U = 5  # (theta/2, phi, lambda)
_U2 = 6  # (phi, lambda)
_R = 7  # (theta/2, phi)
_RZZ = 8  # (theta/2): 2-qubit diagonal
_CPHASE = 9  # (lambda): 2-qubit diagonal diag(1, 1, 1, e^{i lambda})
_CRZ = 10  # (phi/2): 2-qubit diagonal diag(1, e^{-i phi/2}, 1, e^{i phi/2})
GATE_CODES = {
    "rx": _RX,
    "ry": _RY,
    "rz": _RZ,
    "p": _PHASE,
    "u1": _PHASE,
    "u": _U,
    "u3": _U,
    "u2": _U2,
    "r": _R,
    "rzz": _RZZ,
    "cp": _CPHASE,
    "cu1": _CPHASE,
    "crz": _CRZ,
}


# -- binding rows from angles ------------------------------------------------------------------------

# sin and cos as fdlibm computes them (Cody-Waite reduction by pi/2 in three 33-bit parts, then
# its kernel polynomials on [-pi/4, pi/4]), written out so that a binding's row of angles is
# one vectorised loop: libm's scalar calls (or numpy's per-call passes, ~12 ns an element here)
# cost more than the rest of a small binding's entries. Within an ulp or two of libm's for
# |x| <= SINCOS_LIMIT; larger angles take libm's.
SINCOS_LIMIT = 1.0e5
_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11


@njit(cache=True, nogil=True)
def sincos_row(angles: np.ndarray, cosines: np.ndarray, sines: np.ndarray) -> None:
    """cosines[k], sines[k] = cos(angles[k]), sin(angles[k])."""
    largest = 0.0
    for k in range(angles.shape[0]):
        largest = max(largest, abs(angles[k]))
    if not largest <= SINCOS_LIMIT:  # (NaN too)
        for k in range(angles.shape[0]):
            cosines[k] = np.cos(angles[k])
            sines[k] = np.sin(angles[k])
        return
    for k in range(angles.shape[0]):
        x = angles[k]
        n = np.rint(x * _TWO_OVER_PI)
        r = ((x - n * _PIO2_1) - n * _PIO2_2) - n * _PIO2_3
        z = r * r
        s = r + z * r * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
        hz = 0.5 * z
        w = 1.0 - hz
        c = w + (((1.0 - w) - hz) + z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6))))))
        quadrant = np.int64(n)
        odd = (quadrant & 1) != 0
        sine = c if odd else s
        cosine = s if odd else c
        sines[k] = -sine if (quadrant & 2) != 0 else sine
        cosines[k] = -cosine if ((quadrant + 1) & 2) != 0 else cosine


@njit(cache=True, nogil=True, inline="always")
def _unit(cosines: np.ndarray, sines: np.ndarray, column: int) -> complex:
    return complex(cosines[column], sines[column])


@njit(cache=True, nogil=True, inline="always")
def _factor(
    code: int, angles: np.ndarray, cosines: np.ndarray, sines: np.ndarray, constants: np.ndarray
) -> tuple[complex, complex, complex, complex]:
    """A 1-qubit factor's 2x2 (m00, m01, m10, m11), or a 2-qubit diagonal's four entries."""
    a0 = angles[0]
    if code == _STATIC:
        return constants[a0, 0], constants[a0, 1], constants[a0, 2], constants[a0, 3]
    if code == _RX:
        c, s = cosines[a0], sines[a0]
        return complex(c, 0.0), complex(0.0, -s), complex(0.0, -s), complex(c, 0.0)
    if code == _RY:
        c, s = cosines[a0], sines[a0]
        return complex(c, 0.0), complex(-s, 0.0), complex(s, 0.0), complex(c, 0.0)
    if code == _RZ:
        c, s = cosines[a0], sines[a0]
        return complex(c, -s), 0j, 0j, complex(c, s)
    if code == _PHASE:
        return 1.0 + 0j, 0j, 0j, _unit(cosines, sines, a0)
    if code == _U:
        c, s = cosines[a0], sines[a0]
        e_phi = _unit(cosines, sines, angles[1])
        e_lam = _unit(cosines, sines, angles[2])
        return complex(c, 0.0), -e_lam * s, e_phi * s, e_phi * e_lam * c
    if code == _U2:
        r = 1.0 / np.sqrt(2.0)
        e_phi = _unit(cosines, sines, a0)
        e_lam = _unit(cosines, sines, angles[1])
        return complex(r, 0.0), -e_lam * r, e_phi * r, e_phi * e_lam * r
    if code == _R:
        c, s = cosines[a0], sines[a0]
        e_phi = _unit(cosines, sines, angles[1])
        return complex(c, 0.0), -1j * np.conj(e_phi) * s, -1j * e_phi * s, complex(c, 0.0)
    if code == _RZZ:
        c, s = cosines[a0], sines[a0]
        return complex(c, -s), complex(c, s), complex(c, s), complex(c, -s)
    if code == _CPHASE:
        return 1.0 + 0j, 1.0 + 0j, 1.0 + 0j, _unit(cosines, sines, a0)
    # _CRZ
    c, s = cosines[a0], sines[a0]
    return 1.0 + 0j, complex(c, -s), 1.0 + 0j, complex(c, s)


@njit(cache=True, nogil=True)
def fill_binding_row(
    row: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
) -> None:
    """One binding's row of a program's binding entries, from the cosines and sines of its angle
    columns (one binding's rows of the plan's tables).

    ``recipes[r] = (kind, offset, first factor, factor count, width)``: op r's entries go to
    ``row[offset:]``: a DENSE 1-qubit op's 2x2 (row-major) is the product of its factors, the last
    applied leftmost (as fusion multiplies them); a DIAG op's diagonal is the product of its
    factors' diagonals (2 entries on one qubit, 4 for the 2-qubit diagonal gates); a SEL op's
    first 2x2 is the product of all its factors but the last, a static 2x2 (the controlled
    gate's target matrix), and its second 2x2 that matrix times the first.
    ``factors[f] = (gate code, angle column, angle column, angle column)``; a STATIC factor's
    first column is its row of ``constants`` (four entries: a 2x2 row-major, or a diagonal).
    """
    for r in range(recipes.shape[0]):
        kind = recipes[r, 0]
        offset = recipes[r, 1]
        first = recipes[r, 2]
        count = recipes[r, 3]
        own = count - 1 if kind == SEL else count
        m00, m01, m10, m11 = _factor(factors[first, 0], factors[first, 1:], cosines, sines, constants)
        for f in range(first + 1, first + own):
            a00, a01, a10, a11 = _factor(factors[f, 0], factors[f, 1:], cosines, sines, constants)
            if kind != DIAG:
                m00, m01, m10, m11 = (
                    a00 * m00 + a01 * m10,
                    a00 * m01 + a01 * m11,
                    a10 * m00 + a11 * m10,
                    a10 * m01 + a11 * m11,
                )
            else:  # diagonals multiply entry by entry (a 1-qubit one as (m00, m11))
                m00, m01, m10, m11 = a00 * m00, a01 * m01, a10 * m10, a11 * m11
        if kind == SEL:
            c00, c01, c10, c11 = _factor(factors[first + own, 0], factors[first + own, 1:], cosines, sines, constants)
            row[offset + 4] = c00 * m00 + c01 * m10
            row[offset + 5] = c00 * m01 + c01 * m11
            row[offset + 6] = c10 * m00 + c11 * m10
            row[offset + 7] = c10 * m01 + c11 * m11
        if kind != DIAG:
            row[offset] = m00
            row[offset + 1] = m01
            row[offset + 2] = m10
            row[offset + 3] = m11
        elif recipes[r, 4] == 1:  # a 1-qubit diagonal: (m00, m11)
            row[offset] = m00
            row[offset + 1] = m11
        else:
            row[offset] = m00
            row[offset + 1] = m01
            row[offset + 2] = m10
            row[offset + 3] = m11


# -- binding rows of LANES bindings at once -----------------------------------------------------------
# The same entries as fill_binding_row, for the bindings of a lane state: every loop over lanes is
# innermost and straight-line (a gate's code is chosen outside it), so that LLVM vectorises it;
# a binding's entries one by one cost more than the gates they make at n = 8.


@njit(cache=True, nogil=True)
def _lane_factor(
    code: int,
    columns: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    constants: np.ndarray,
    fr: np.ndarray,
    fi: np.ndarray,
) -> None:
    """:func:`_factor` for every lane: entry e's real and imaginary parts into ``fr[e]``,
    ``fi[e]``, from ``cosines[column, lane]``, ``sines[column, lane]``."""
    a0 = columns[0]
    if code == _STATIC:
        for e in range(4):
            value = constants[a0, e]
            for lane in range(LANES):
                fr[e, lane] = value.real
                fi[e, lane] = value.imag
        return
    if code in (_U, _U2):  # (c, e_phi s; e_lam s, e_phi e_lam c) and the like
        phi = a0 if code == _U2 else columns[1]
        lam = columns[1] if code == _U2 else columns[2]
        r = 1.0 / np.sqrt(2.0)
        for lane in range(LANES):
            c = r if code == _U2 else cosines[a0, lane]
            s = r if code == _U2 else sines[a0, lane]
            pr, pi = cosines[phi, lane], sines[phi, lane]
            lr, li = cosines[lam, lane], sines[lam, lane]
            fr[0, lane], fi[0, lane] = c, 0.0
            fr[1, lane], fi[1, lane] = -lr * s, -li * s
            fr[2, lane], fi[2, lane] = pr * s, pi * s
            fr[3, lane], fi[3, lane] = (pr * lr - pi * li) * c, (pr * li + pi * lr) * c
        return
    if code == _R:
        for lane in range(LANES):
            c, s = cosines[a0, lane], sines[a0, lane]
            pr, pi = cosines[columns[1], lane], sines[columns[1], lane]
            fr[0, lane], fi[0, lane] = c, 0.0
            fr[1, lane], fi[1, lane] = -pi * s, -pr * s
            fr[2, lane], fi[2, lane] = pi * s, -pr * s
            fr[3, lane], fi[3, lane] = c, 0.0
        return
    table = _ONE_ANGLE[code]  # one angle: each entry K + A c + B s, the same loop for every code
    for e in range(4):
        kr, ar, br = table[0, 0, e], table[1, 0, e], table[2, 0, e]
        ki, ai, bi = table[0, 1, e], table[1, 1, e], table[2, 1, e]
        for lane in range(LANES):
            c, s = cosines[a0, lane], sines[a0, lane]
            fr[e, lane] = kr + ar * c + br * s
            fi[e, lane] = ki + ai * c + bi * s


def _one_angle_table() -> np.ndarray:
    """The entries of every one-angle gate code as K + A c + B s (c, s: its angle column's cosine
    and sine), indexed [code, (K, A, B), (real, imaginary), entry]. Coefficients are 0 and +-1,
    so each entry is exactly the c, s, -s, 1 or 0 that :func:`_factor` gives."""
    k, a, b, re, im = 0, 1, 2, 0, 1
    terms = {  # code: (entry, part, term, coefficient) of each non-zero coefficient
        _RX: [(0, re, a, 1), (1, im, b, -1), (2, im, b, -1), (3, re, a, 1)],  # (c, -i s; -i s, c)
        _RY: [(0, re, a, 1), (1, re, b, -1), (2, re, b, 1), (3, re, a, 1)],  # (c, -s; s, c)
        _RZ: [(0, re, a, 1), (0, im, b, -1), (3, re, a, 1), (3, im, b, 1)],  # diag(c - i s, c + i s)
        _PHASE: [(0, re, k, 1), (3, re, a, 1), (3, im, b, 1)],  # diag(1, c + i s)
        _RZZ: [(e, re, a, 1) for e in range(4)] + [(0, im, b, -1), (1, im, b, 1), (2, im, b, 1), (3, im, b, -1)],
        _CPHASE: [(0, re, k, 1), (1, re, k, 1), (2, re, k, 1), (3, re, a, 1), (3, im, b, 1)],
        _CRZ: [(0, re, k, 1), (1, re, a, 1), (1, im, b, -1), (2, re, k, 1), (3, re, a, 1), (3, im, b, 1)],
    }
    table = np.zeros((11, 3, 2, 4))
    for code, nonzero in terms.items():
        for entry, part, term, coefficient in nonzero:
            table[code, term, part, entry] = coefficient
    return table


_ONE_ANGLE = _one_angle_table()


@njit(cache=True, nogil=True, inline="always")
def _one_angle(code: int) -> bool:
    """Whether a 1-qubit factor of gate ``code`` is :data:`_ONE_ANGLE`'s K + A c + B s."""
    return code in (_RX, _RY, _RZ, _PHASE)


@njit(cache=True, nogil=True)
def fill_lane_rows(
    cosines: np.ndarray,
    sines: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
    rows_re: np.ndarray,
    rows_im: np.ndarray,
) -> None:
    """:func:`fill_binding_row` for ``LANES`` bindings at once: entry e of lane l's row into
    ``rows_re[e, l]``, ``rows_im[e, l]``, from ``cosines[column, l]``, ``sines[column, l]``.
    The same entries, but for an op fused from ry then rz: its matrix without rz's global phase
    (row 0 real: :func:`~.lanes.lane_two_factors`), which lane states, read only as
    probabilities and expectation values, never show."""
    fr = np.empty((4, LANES))
    fi = np.empty((4, LANES))
    mr = np.empty((4, LANES))
    mi = np.empty((4, LANES))
    no_static = np.empty(0, dtype=np.complex128)  # lane_two_factors' "no select": no second matrix
    for r in range(recipes.shape[0]):
        kind = recipes[r, 0]
        offset = recipes[r, 1]
        first = recipes[r, 2]
        own = recipes[r, 3] - 1 if kind == SEL else recipes[r, 3]
        if (
            kind != DIAG
            and own == 2
            and _one_angle(factors[first, 0])
            and _one_angle(factors[first + 1, 0])
            and (kind != SEL or factors[first + 2, 0] == _STATIC)
        ):
            # the commonest parameterised op (ry then rz, say, before a CX on their qubit): both
            # factors, their product and a select's second matrix in one pass of vectors over
            # the lanes, from the angles' cosines and sines, into the rows; ry then rz without
            # rz's global phase (a lane state's phase is never read), so that row 0 is real
            static = constants[factors[first + 2, 1]] if kind == SEL else no_static
            drop_phase = factors[first, 0] == _RY and factors[first + 1, 0] == _RZ
            lane_two_factors(
                _ONE_ANGLE,
                factors[first],
                factors[first + 1],
                cosines,
                sines,
                rows_re,
                rows_im,
                offset,
                static,
                1 if drop_phase else 0,
            )
            continue
        _lane_factor(factors[first, 0], factors[first, 1:], cosines, sines, constants, mr, mi)
        for f in range(first + 1, first + own):
            _lane_factor(factors[f, 0], factors[f, 1:], cosines, sines, constants, fr, fi)
            if kind != DIAG:
                lane_matmul(fr, fi, mr, mi, mr, mi)
            else:  # diagonals multiply entry by entry
                for e in range(4):
                    for lane in range(LANES):
                        re = fr[e, lane] * mr[e, lane] - fi[e, lane] * mi[e, lane]
                        mi[e, lane] = fr[e, lane] * mi[e, lane] + fi[e, lane] * mr[e, lane]
                        mr[e, lane] = re
        if kind == SEL:  # the second 2x2: the controlled gate's target matrix times the first
            _lane_factor(factors[first + own, 0], factors[first + own, 1:], cosines, sines, constants, fr, fi)
            lane_matmul(fr, fi, mr, mi, rows_re[offset + 4 : offset + 8], rows_im[offset + 4 : offset + 8])
        if kind == DIAG and recipes[r, 4] == 1:  # a 1-qubit diagonal: (m00, m11)
            for lane in range(LANES):
                rows_re[offset, lane], rows_im[offset, lane] = mr[0, lane], mi[0, lane]
                rows_re[offset + 1, lane], rows_im[offset + 1, lane] = mr[3, lane], mi[3, lane]
            continue
        for e in range(4):
            for lane in range(LANES):
                rows_re[offset + e, lane] = mr[e, lane]
                rows_im[offset + e, lane] = mi[e, lane]


@njit(cache=True, nogil=True)
def binding_row(
    angles: np.ndarray, recipes: np.ndarray, factors: np.ndarray, constants: np.ndarray, row: np.ndarray
) -> None:
    """One binding's entries into ``row`` (zeroed first) from its angle columns ``angles``: what a
    plan's ``materialize`` makes in numpy, for a wide state's one binding (microseconds, not
    numpy calls per op)."""
    cosines = np.empty(angles.shape[0])
    sines = np.empty(angles.shape[0])
    sincos_row(angles, cosines, sines)
    row[:] = 0
    fill_binding_row(row, cosines, sines, recipes, factors, constants)


@njit(cache=True, nogil=True)
def _run_basic_simd(state: np.ndarray, ops: OpTuple, static_buffer: np.ndarray, binding_buffer: np.ndarray) -> None:
    """``run_basic_program`` on a state the SIMD kernels take (C-contiguous, at least
    ``MIN_AMPLITUDES`` amplitudes): 1-qubit dense ops and CX call them directly, the same
    kernels ``apply_1q``/``apply_cx`` route to there, without their layout checks and fallback
    loops (measured at n = 8: 77 against 108 ns a 1-qubit gate, 45 against 63 ns a CX)."""
    kinds, qubits, widths, aux, sources, offsets = ops
    for j in range(kinds.shape[0]):
        k = widths[j]
        buffer = static_buffer if sources[j] == 0 else binding_buffer
        start = offsets[j]
        kind = kinds[j]
        if kind == CX:
            if qubits[j, 1] >= BLOCK_QUBITS or LOW_TARGET_CX:
                apply_cx_simd(state, qubits[j, 0], qubits[j, 1])
            else:
                apply_cx(state, qubits[j, 0], qubits[j, 1])
        elif kind == DENSE and k == 1:
            apply_1q_simd(state, qubits[j, 0], buffer[start : start + 4].reshape((2, 2)))
        elif kind == SEL:
            m0 = buffer[start : start + 4].reshape((2, 2))
            apply_select_simd(state, qubits[j, 0], qubits[j, 1], m0, buffer[start + 4 : start + 8].reshape((2, 2)))
        elif kind == DIAG:
            apply_diag(state, qubits[j, :k], buffer[start : start + (1 << k)])
        elif kind == CTRL:
            m = buffer[start : start + 4].reshape((2, 2))
            apply_controlled(state, qubits[j, 0], aux[j, 0], aux[j, 1], m)
        elif k != 1:
            raise ValueError("_run_basic_simd: an op on several qubits that only run_program runs")
        else:  # a one-qubit permutation, as run_basic_program runs it
            apply_controlled(state, qubits[j, 0], 0, 0, buffer[start : start + 4].reshape((2, 2)))


@njit(cache=True, nogil=True)
def _run(state: np.ndarray, ops: OpTuple, static_buffer: np.ndarray, row: np.ndarray, basic: bool) -> None:
    if not basic:
        run_program(state, ops, static_buffer, row)
    elif state.shape[0] >= MIN_AMPLITUDES:
        _run_basic_simd(state, ops, static_buffer, row)
    else:
        run_basic_program(state, ops, static_buffer, row)


@njit(cache=True, nogil=True)
def _chunk_size(num_bindings: int) -> int:
    """Bindings per parallel work item: at most ``WORK_ITEMS`` items (a binding of a small state
    is microseconds; its scratch arrays are made once per item)."""
    return max(1, (num_bindings + WORK_ITEMS - 1) // WORK_ITEMS)


@njit(cache=True, nogil=True)
def _prepare(
    state: np.ndarray,
    row: np.ndarray,
    given: np.ndarray,
    angles: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
) -> None:
    """A binding's entries into ``row`` (``given``, its row of a program's binding buffers, if
    not empty; then its recipes' from its angles), and ``state`` reset to |0...0>."""
    _fill_row(row, given, angles, cosines, sines, recipes, factors, constants)
    state[:] = 0.0
    state[0] = 1.0


@njit(cache=True, nogil=True)
def _fill_row(
    row: np.ndarray,
    given: np.ndarray,
    angles: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
) -> None:
    if given.shape[0] > 0:
        row[:] = given
    sincos_row(angles, cosines, sines)
    fill_binding_row(row, cosines, sines, recipes, factors, constants)


@njit(cache=True, nogil=True)
def _lane_rows(
    first: int,
    lanes: int,
    rows: np.ndarray,
    angles: np.ndarray,
    lane_angles: np.ndarray,
    cosines: np.ndarray,
    sines: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
    rows_re: np.ndarray,
    rows_im: np.ndarray,
) -> None:
    """Bindings first..first+lanes-1's entries as lanes (a lane past ``lanes`` repeats the last):
    their rows of ``rows``, then their recipes' entries from their angles (``lane_angles``,
    ``cosines``, ``sines``: scratch of shape (angle columns, ``LANES``))."""
    for lane in range(LANES):
        b = first + min(lane, lanes - 1)
        for e in range(rows.shape[1]):
            rows_re[e, lane] = rows[b, e].real
            rows_im[e, lane] = rows[b, e].imag
        for k in range(angles.shape[1]):
            lane_angles[k, lane] = angles[b, k]
    if recipes.shape[0] == 0:
        return
    size = lane_angles.size
    sincos_row(lane_angles.reshape(size), cosines.reshape(size), sines.reshape(size))
    fill_lane_rows(cosines, sines, recipes, factors, constants, rows_re, rows_im)


@njit(cache=True, nogil=True)
def _run_lanes_from_zero(
    reals: np.ndarray,
    imags: np.ndarray,
    ops: OpTuple,
    static_buffer: np.ndarray,
    rows_re: np.ndarray,
    rows_im: np.ndarray,
    cr: np.ndarray,
    ci: np.ndarray,
) -> None:
    """The lane states reset to |0...0>, then the program (a function of its own: inlined into
    a prange body, the same loops ran ~5x slower)."""
    reals[:] = 0.0
    imags[:] = 0.0
    reals[0, :] = 1.0
    run_lanes(reals, imags, ops, static_buffer, rows_re, rows_im, cr, ci, 1)


@njit(cache=True, nogil=True)
def _lane_scratch(
    size: int, row_width: int, angle_columns: int, coefficient_rows: int, static_buffer: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A work item's arrays for :func:`_lane_states`: the lane states (real and imaginary parts),
    the bindings' entries, ``run_lanes``' coefficient rows (each in the state's real dtype, shape
    (2, rows, ``LANES``)), and the angles with their cosines and sines (3, columns, ``LANES``)."""
    real = static_buffer.real.dtype
    states = np.empty((2, size, LANES), dtype=real)
    entries = np.empty((2, row_width, LANES), dtype=real)
    coefficients = np.empty((2, coefficient_rows, LANES), dtype=real)
    trigonometry = np.empty((3, angle_columns, LANES))
    return states, entries, coefficients, trigonometry


@njit(cache=True, nogil=True)
def _lane_states(
    first: int,
    lanes: int,
    rows: np.ndarray,
    angles: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
    ops: OpTuple,
    static_buffer: np.ndarray,
    scratch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Bindings first..first+lanes-1's final states as the lanes of ``scratch``'s states (from
    :func:`_lane_scratch`): their entries, then the program from |0...0>."""
    states, entries, coefficients, trigonometry = scratch
    _lane_rows(
        first,
        lanes,
        rows,
        angles,
        trigonometry[0],
        trigonometry[1],
        trigonometry[2],
        recipes,
        factors,
        constants,
        entries[0],
        entries[1],
    )
    _run_lanes_from_zero(
        states[0], states[1], ops, static_buffer, entries[0], entries[1], coefficients[0], coefficients[1]
    )


@njit(cache=True, nogil=True)
def _coefficient_rows(ops: OpTuple) -> int:
    """Rows of ``run_lanes``' coefficient scratch for ``ops``: 8, or a wide diagonal's 2**k."""
    kinds = ops[0]
    widths = ops[2]
    rows = 8
    for j in range(kinds.shape[0]):
        if kinds[j] == DIAG:
            rows = max(rows, 1 << widths[j])
    return rows


@njit(cache=True, nogil=True, parallel=True)
def sweep_probabilities(
    num_qubits: int,
    ops: OpTuple,
    static_buffer: np.ndarray,
    row_width: int,
    basic: bool,
    angles: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """Probabilities |psi_b|^2 of every binding's final state, shape (bindings, 2**n)."""
    num_bindings = angles.shape[0]
    size = 1 << num_qubits
    out = np.empty((num_bindings, size), dtype=np.float64)
    per_chunk = _chunk_size(num_bindings)
    if basic:  # whole lane groups per work item
        per_chunk = LANES * ((per_chunk + LANES - 1) // LANES)
    coefficient_rows = _coefficient_rows(ops)
    for chunk in prange((num_bindings + per_chunk - 1) // per_chunk):
        row = np.empty(row_width, dtype=static_buffer.dtype)
        cosines = np.empty(angles.shape[1])
        sines = np.empty(angles.shape[1])
        stop = min(num_bindings, (chunk + 1) * per_chunk)
        if basic:
            scratch = _lane_scratch(size, row_width, angles.shape[1], coefficient_rows, static_buffer)
            reals, imags = scratch[0][0], scratch[0][1]
            for first in range(chunk * per_chunk, stop, LANES):
                lanes = min(LANES, stop - first)
                _lane_states(first, lanes, rows, angles, recipes, factors, constants, ops, static_buffer, scratch)
                for lane in range(lanes):
                    for i in range(size):
                        re = np.float64(reals[i, lane])
                        im = np.float64(imags[i, lane])
                        out[first + lane, i] = re * re + im * im
            continue
        state = np.empty(size, dtype=static_buffer.dtype)
        for b in range(chunk * per_chunk, stop):
            _prepare(state, row, rows[b], angles[b], cosines, sines, recipes, factors, constants)
            _run(state, ops, static_buffer, row, basic)
            for i in range(state.shape[0]):
                out[b, i] = state[i].real * state[i].real + state[i].imag * state[i].imag
    return out


LANE_BINDINGS = LANES  # bindings whose final states are reduced together, as lanes of one vector


@njit(cache=True, nogil=True)
def _diagonal_lane_values(
    reals: np.ndarray,
    imags: np.ndarray,
    lane: int,
    probabilities: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`diagonal_values` of lane ``lane``'s state."""
    for i in range(reals.shape[0]):
        re = np.float64(reals[i, lane])
        im = np.float64(imags[i, lane])
        probabilities[i] = re * re + im * im
    walsh_hadamard(probabilities)
    for t in range(x_masks.shape[0]):
        if x_masks[t] == 0:
            out[t] = complex(probabilities[z_masks[t]], 0.0)


@njit(cache=True, nogil=True)
def diagonal_values(
    state: np.ndarray, probabilities: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray, out: np.ndarray
) -> None:
    """``out[t]`` for every diagonal term (x = 0): one Walsh-Hadamard transform of the state's
    probabilities gives every z's signed sum at once (``probabilities``: scratch, the state's size)."""
    for i in range(state.shape[0]):
        a = state[i]
        probabilities[i] = np.float64(a.real) * np.float64(a.real) + np.float64(a.imag) * np.float64(a.imag)
    walsh_hadamard(probabilities)
    for t in range(x_masks.shape[0]):
        if x_masks[t] == 0:
            out[t] = complex(probabilities[z_masks[t]], 0.0)


@njit(cache=True, nogil=True, fastmath=True)
def lane_term_values(
    reals: np.ndarray,
    imags: np.ndarray,
    lanes: int,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
    imaginary: np.ndarray,
    transform: bool,
    out: np.ndarray,
) -> None:
    """Every term's value for ``lanes`` states held as lanes: ``reals[i, l]``, ``imags[i, l]``
    (``LANE_BINDINGS`` columns) are amplitude i of state l; ``out[l, t]`` gets term t's value
    on state l (each term one :func:`~.lanes.lane_term` over all lanes).

    Row i ^ x of a lane array is a contiguous vector, so a term costs no gather: per pair
    (i, i ^ x) (i with x's highest bit clear) one signed multiply-add per lane, of
    Re(conj(psi[i ^ x]) psi[i]) for real terms or Im(...) for imaginary ones (``imaginary[t]``:
    popcount(x & z) odd), twice; diagonal terms (x = 0) sum the signed probabilities, unless
    ``transform`` (then the caller has their values: :func:`diagonal_values`).
    """
    acc = np.empty(LANES)
    for t in range(x_masks.shape[0]):
        x = x_masks[t]
        if x == 0 and transform:
            continue
        lane_term(reals, imags, x, z_masks[t], imaginary[t], acc)
        scale = 1.0 if x == 0 else 2.0
        for lane in range(lanes):
            value = scale * acc[lane]
            out[lane, t] = complex(0.0, value) if imaginary[t] else complex(value, 0.0)


@njit(cache=True, nogil=True, parallel=True)
def sweep_term_values(
    num_qubits: int,
    ops: OpTuple,
    static_buffer: np.ndarray,
    row_width: int,
    basic: bool,
    angles: np.ndarray,
    recipes: np.ndarray,
    factors: np.ndarray,
    constants: np.ndarray,
    rows: np.ndarray,
    x_masks: np.ndarray,
    z_masks: np.ndarray,
    imaginary: np.ndarray,
    transform: bool,
) -> np.ndarray:
    """For each binding b (row of ``angles``): its entries (its row of ``rows``, the program's
    binding buffers, when the program has them instead of angles: then ``angles`` has no columns
    and there are no recipes; else ``rows`` has no columns), the program from |0...0>, every
    Pauli term's value; shape (bindings, terms). Parallel over bindings; the final states of
    ``LANE_BINDINGS`` bindings at a time are reduced together (:func:`lane_term_values`), the
    diagonal terms of each state by :func:`diagonal_values` when ``transform``."""
    num_bindings = angles.shape[0]
    num_terms = x_masks.shape[0]
    out = np.empty((num_bindings, num_terms), dtype=np.complex128)
    size = 1 << num_qubits
    per_chunk = _chunk_size(num_bindings)
    per_chunk = LANE_BINDINGS * ((per_chunk + LANE_BINDINGS - 1) // LANE_BINDINGS)
    coefficient_rows = _coefficient_rows(ops)
    for chunk in prange((num_bindings + per_chunk - 1) // per_chunk):
        row = np.empty(row_width, dtype=static_buffer.dtype)
        cosines = np.empty(angles.shape[1])
        sines = np.empty(angles.shape[1])
        state = np.empty(size, dtype=static_buffer.dtype)
        scratch = _lane_scratch(
            size, row_width if basic else 0, angles.shape[1] if basic else 0, coefficient_rows, static_buffer
        )
        reals, imags = scratch[0][0], scratch[0][1]
        values = np.empty((LANE_BINDINGS, num_terms), dtype=np.complex128)
        probabilities = np.empty(size if transform else 0)
        stop = min(num_bindings, (chunk + 1) * per_chunk)
        for first in range(chunk * per_chunk, stop, LANE_BINDINGS):
            lanes = min(LANE_BINDINGS, stop - first)
            if basic:  # the bindings' states as lanes, gate by gate
                _lane_states(first, lanes, rows, angles, recipes, factors, constants, ops, static_buffer, scratch)
                if transform:
                    for lane in range(lanes):
                        _diagonal_lane_values(reals, imags, lane, probabilities, x_masks, z_masks, out[first + lane])
            else:
                for lane in range(lanes):
                    b = first + lane
                    _prepare(state, row, rows[b], angles[b], cosines, sines, recipes, factors, constants)
                    _run(state, ops, static_buffer, row, basic)
                    for i in range(size):
                        reals[i, lane] = state[i].real
                        imags[i, lane] = state[i].imag
                    if transform:
                        diagonal_values(state, probabilities, x_masks, z_masks, out[b])
            lane_term_values(reals, imags, lanes, x_masks, z_masks, imaginary, transform, values)
            for lane in range(lanes):
                for t in range(num_terms):
                    if x_masks[t] != 0 or not transform:
                        out[first + lane, t] = values[lane, t]
    return out
