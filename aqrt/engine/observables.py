"""Observables as Pauli terms the kernels understand.

A term is (x_mask, z_mask, weight): its contribution is weight * sum_i (-1)^popcount(i & z)
conj(psi[i ^ x]) psi[i], i.e. weight * <psi| X^x Z^z |psi>. A label character Y is i X Z, so it
sets both masks and multiplies the weight by i. Projector characters (0 1 + - r l) are expanded
into Paulis: |0><0| = (I + Z) / 2, and so on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["TermLayout", "TermTable", "build_term_table", "build_term_table_sparse", "term_layout"]

_PROJECTORS = {"0": ("Z", 1), "1": ("Z", -1), "+": ("X", 1), "-": ("X", -1), "r": ("Y", 1), "l": ("Y", -1)}
_MAX_EXPANDED = 1 << 16
_COMPLEX128 = np.dtype(np.complex128)  # combine's one-term case compares dtypes by identity


class TermTable:
    """Distinct Pauli terms across observables, and each observable's weights over them.

    ``weights`` has shape (observables, terms): observable o's value is
    ``(weights[o] * term_values).sum()``.
    """

    def __init__(self, x_masks: np.ndarray, z_masks: np.ndarray, weights: np.ndarray) -> None:
        self.x_masks = x_masks
        self.z_masks = z_masks
        self.weights = weights

    @property
    def num_terms(self) -> int:
        return int(self.x_masks.shape[0])

    def combine(self, term_values: np.ndarray) -> np.ndarray:
        """Observable values (real part, as Qiskit reports) from term values (..., terms).

        Written as two real products: a complex matrix product goes to BLAS's zgemm, which took
        5-12 ms for (1000, 20) @ (20, 1) once numba's parallel threads had run in the process
        (measured; the real products take ~20 us there too).
        """
        values = np.asarray(term_values)
        weights = self.weights
        if values.dtype is _COMPLEX128 and weights.shape == (1, 1) and values.ndim == 2:
            weight = complex(weights[0, 0])
            if not weight.imag:  # one real term (a tiny job's): one product, 1.5 us less, the same values
                return values.real * weight.real
        return values.real @ weights.real.T - values.imag @ weights.imag.T


def build_term_table(observables: Iterable[Mapping[str, complex]], num_qubits: int) -> TermTable:
    """Terms of every observable (label -> coefficient dicts, Qiskit label order: qubit 0 last)."""
    index: dict[tuple[int, int], int] = {}
    rows: list[dict[int, complex]] = []
    for observable in observables:
        row: dict[int, complex] = {}
        for label, coeff in observable.items():
            if len(label) != num_qubits:
                raise ValueError(f"observable label {label!r} has {len(label)} qubits, the circuit {num_qubits}")
            for x, z, weight in _expand(label):
                key = (x, z)
                t = index.setdefault(key, len(index))
                row[t] = row.get(t, 0) + complex(coeff) * weight
        rows.append(row)
    return _table(index, rows)


# SparseObservable bit-term codes (qiskit.quantum_info.SparseObservable.BitTerm) -> label characters.
_BIT_TERM_CHARS = {1: "Z", 2: "X", 3: "Y", 9: "0", 5: "1", 10: "+", 6: "-", 11: "r", 7: "l"}


def build_term_table_sparse(observables: Iterable[object]) -> TermTable:
    """Terms of SparseObservable-like objects (``coeffs``, ``bit_terms``, ``indices``,
    ``boundaries`` arrays), without going through label strings."""
    index: dict[tuple[int, int], int] = {}
    rows: list[dict[int, complex]] = []
    for observable in observables:
        coeffs = np.asarray(observable.coeffs)  # type: ignore[attr-defined]
        bit_terms = np.asarray(observable.bit_terms, dtype=np.int64).tolist()  # type: ignore[attr-defined]
        indices = np.asarray(observable.indices, dtype=np.int64).tolist()  # type: ignore[attr-defined]
        boundaries = np.asarray(observable.boundaries, dtype=np.int64).tolist()  # type: ignore[attr-defined]
        row: dict[int, complex] = {}
        for k in range(len(boundaries) - 1):
            coeff = complex(coeffs[k])
            for x, z, weight in _expand_sparse(bit_terms, indices, boundaries[k], boundaries[k + 1]):
                t = index.setdefault((x, z), len(index))
                row[t] = row.get(t, 0) + coeff * weight
        rows.append(row)
    return _table(index, rows)


def _expand_sparse(bit_terms: list[int], indices: list[int], start: int, stop: int) -> list[tuple[int, int, complex]]:
    x = z = 0
    weight = 1.0 + 0j
    projectors = []
    for j in range(start, stop):
        code, bit = bit_terms[j], 1 << indices[j]
        if code == 2:
            x |= bit
        elif code == 1:
            z |= bit
        elif code == 3:
            x |= bit
            z |= bit
            weight *= 1j
        else:
            projectors.append((code, bit))
    terms = [(x, z, weight)]
    for code, bit in projectors:
        pauli, sign = _PROJECTORS[_BIT_TERM_CHARS[code]]
        expanded = []
        for tx, tz, tw in terms:
            expanded.append((tx, tz, tw * 0.5))
            nx, nz, nw = _times(tx, tz, tw, pauli, bit)
            expanded.append((nx, nz, nw * 0.5 * sign))
        terms = expanded
        if len(terms) > _MAX_EXPANDED:
            raise ValueError("an observable term has too many projectors to expand")
    return terms


def _table(index: dict[tuple[int, int], int], rows: list[dict[int, complex]]) -> TermTable:
    x_masks = np.array([k[0] for k in index], dtype=np.int64)
    z_masks = np.array([k[1] for k in index], dtype=np.int64)
    weights = np.zeros((len(rows), len(index)), dtype=np.complex128)
    for o, row in enumerate(rows):
        for t, w in row.items():
            weights[o, t] = w
    return TermTable(x_masks, z_masks, weights)


def _expand(label: str) -> list[tuple[int, int, complex]]:
    terms: list[tuple[int, int, complex]] = [(0, 0, 1.0 + 0j)]
    for position, char in enumerate(reversed(label)):
        bit = 1 << position
        if char == "I":
            continue
        if char in "XYZ":
            terms = [_times(x, z, w, char, bit) for x, z, w in terms]
        elif char in _PROJECTORS:
            pauli, sign = _PROJECTORS[char]
            expanded = []
            for x, z, w in terms:
                expanded.append((x, z, w * 0.5))
                nx, nz, nw = _times(x, z, w, pauli, bit)
                expanded.append((nx, nz, nw * 0.5 * sign))
            terms = expanded
            if len(terms) > _MAX_EXPANDED:
                raise ValueError(f"observable label {label!r} has too many projectors to expand")
        else:
            raise ValueError(f"observable label {label!r} has an unknown character {char!r}")
    return terms


def _times(x: int, z: int, weight: complex, char: str, bit: int) -> tuple[int, int, complex]:
    if char == "X":
        return x | bit, z, weight
    if char == "Z":
        return x, z | bit, weight
    return x | bit, z | bit, weight * 1j  # Y = i X Z


# The arrays of a TermLayout, in the order aqrt.engine.kernels.sweeps.term_values_fast takes them.
TermLayout = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]

_BLOCK_QUBITS = 4  # aqrt.engine.kernels.sweeps.BLOCK: 16 amplitudes per block
_MAX_RUN_BLOCKS = 8  # blocks per run of a term's dot product (256 reals)


def term_layout(x_masks: np.ndarray, z_masks: np.ndarray, num_qubits: int) -> TermLayout:
    """The terms (x_mask, z_mask) laid out for :func:`aqrt.engine.kernels.sweeps.term_values_fast`
    on states of ``num_qubits`` qubits (made once per sweep; the kernel's docstring says how it
    uses them).

    A term's value is a signed dot product over runs of ``term_run`` reals (``R`` blocks of 16
    amplitudes, R a power of two, at most 8 and at most the lowest set bit of x >> 4 allows: the
    partner run is then contiguous). Per term: ``term_index`` (its index in ``x_masks``),
    ``term_low_xor`` (the xor of a real's index inside a block: 2 (x & 15), and 1 more for an
    imaginary term), ``term_run``,
    ``term_run_xor`` (the partner run's xor: x >> 4 in runs), ``term_run_high`` (that xor's
    highest bit, 0 when it is 0), ``term_run_z`` (z >> 4 in runs: the run's sign),
    ``term_imaginary`` (1 when popcount(x & z) is odd: the value is imaginary) and
    ``lane_weights`` (terms, 256): the sign of each real of a run, (-1)^popcount(j & z) for
    amplitude j of the run (an imaginary term's even reals negated: with the partner's real
    k ^ 1, Im(conj(a) b) = a_re b_im - a_im b_re). Then ``diagonal_index`` and ``diagonal_z``: the diagonal terms
    (x = 0) that one Walsh-Hadamard transform of the probabilities gives, when there are more
    than ``num_qubits / 2`` of them (a transform costs about ``num_qubits / 2`` terms' passes);
    otherwise they are dot terms too.
    """
    x = np.asarray(x_masks, dtype=np.int64)
    z = np.asarray(z_masks, dtype=np.int64)
    diagonal = x == 0
    by_transform = bool(diagonal.sum() > max(1, num_qubits // 2))
    dot_terms = np.flatnonzero(~diagonal) if by_transform else np.arange(x.shape[0])
    num_blocks = max(1, (1 << num_qubits) >> _BLOCK_QUBITS)
    count = dot_terms.shape[0]
    low_xor = np.zeros(count, dtype=np.int64)
    run = np.zeros(count, dtype=np.int64)
    run_xor = np.zeros(count, dtype=np.int64)
    run_high = np.zeros(count, dtype=np.int64)
    run_z = np.zeros(count, dtype=np.int64)
    imaginary = np.zeros(count, dtype=np.int64)
    weights = np.zeros((count, _MAX_RUN_BLOCKS << (_BLOCK_QUBITS + 1)), dtype=np.float64)
    for t, term in enumerate(dot_terms.tolist()):
        tx, tz = int(x[term]), int(z[term])
        high_xor = tx >> _BLOCK_QUBITS
        blocks = min(_MAX_RUN_BLOCKS, num_blocks)
        if high_xor:
            blocks = min(blocks, high_xor & -high_xor)
        shift = blocks.bit_length() - 1
        imaginary[t] = bin(tx & tz).count("1") & 1
        low_xor[t] = 2 * (tx & ((1 << _BLOCK_QUBITS) - 1)) ^ imaginary[t]
        run[t] = blocks << (_BLOCK_QUBITS + 1)
        run_xor[t] = high_xor >> shift
        run_high[t] = max((high_xor >> shift).bit_length() - 1, 0)
        run_z[t] = tz >> (_BLOCK_QUBITS + shift)
        amplitudes = np.arange(run[t]) >> 1
        local_z = tz & ((blocks << _BLOCK_QUBITS) - 1)
        signs = 1.0 - 2.0 * (np.bitwise_count(amplitudes & local_z) & 1)
        if imaginary[t]:  # Im(conj(a) b) = a_re b_im - a_im b_re: partner real k ^ 1, even reals negated
            signs[0::2] *= -1.0
        weights[t, : run[t]] = signs
    diagonal_index = np.flatnonzero(diagonal) if by_transform else np.zeros(0, dtype=np.int64)
    return (
        dot_terms.astype(np.int64),
        low_xor,
        run,
        run_xor,
        run_high,
        run_z,
        imaginary,
        weights,
        diagonal_index.astype(np.int64),
        z[diagonal_index].astype(np.int64),
    )
