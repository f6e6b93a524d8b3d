"""Helpers shared by the engine tests."""

from __future__ import annotations

import numpy as np

from aqrt.engine.ops import CTRL, PERM, entry_count


def random_op(
    kind: int, width: int, n: int, rng: np.random.Generator, dtype: type = np.complex128
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, qubits, entries, aux) of a random op on ``n`` qubits; the entries are not unitary,
    so that every entry has to land on the right amplitude."""
    qubits = rng.choice(n, size=width, replace=False).astype(np.int64)
    aux = np.zeros(2, dtype=np.int64)
    size = entry_count(kind, width)
    entries = rng.normal(size=size) + 1j * rng.normal(size=size)
    if kind == PERM:
        d = 1 << width
        matrix = np.zeros((d, d), dtype=np.complex128)
        matrix[rng.permutation(d), np.arange(d)] = rng.normal(size=d) + 1j * rng.normal(size=d)
        entries = matrix.reshape(-1)
    if kind == CTRL:
        for q in qubits[1:]:
            aux[0] |= 1 << int(q)
            aux[1] |= int(rng.integers(2)) << int(q)
    return kind, qubits, np.ascontiguousarray(entries, dtype=dtype), aux
