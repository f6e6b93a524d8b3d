"""Compile every kernel once on tiny inputs (numba caches the machine code on disk)."""

from __future__ import annotations

import numpy as np

from . import kernels

_warm: set[str] = set()


def is_warm(dtype: str = "complex128") -> bool:
    """True once :func:`warmup` has run for ``dtype`` in this process."""
    return dtype in _warm


def warmup(dtype: str = "complex128") -> None:
    """Compile or load every kernel for states of ``dtype`` (complex128 or complex64)."""
    if dtype in _warm:
        return
    _compile(np.dtype(dtype))
    _warm.add(dtype)


def _compile(complex_dtype: np.dtype) -> None:
    n = 3
    state = np.zeros(1 << n, dtype=complex_dtype)
    state[0] = 1
    m1 = np.eye(2, dtype=complex_dtype)
    m2 = np.eye(4, dtype=complex_dtype)
    q1 = np.array([1], dtype=np.int64)
    q2 = np.array([0, 2], dtype=np.int64)
    diag = np.ones(4, dtype=complex_dtype)
    masks = np.array([0, 1], dtype=np.int64)
    for apply_1q, apply_dense, apply_diag, apply_perm, apply_ctrl in (
        (kernels.apply_1q, kernels.apply_dense, kernels.apply_diag, kernels.apply_perm, kernels.apply_controlled),
        (
            kernels.apply_1q_par,
            kernels.apply_dense_par,
            kernels.apply_diag_par,
            kernels.apply_perm_par,
            kernels.apply_controlled_par,
        ),
    ):
        apply_1q(state, 0, m1)
        apply_dense(state, q2, m2)
        apply_diag(state, q2, diag)
        apply_perm(state, q2, m2)
        apply_ctrl(state, 1, 1, 1, m1)
    kernels.pauli_values(state, masks, masks)
    kernels.pauli_values_par(state, masks, masks)
    kernels.probabilities_par(state)
    program = (
        np.array([kernels.DENSE], dtype=np.int64),
        q1.reshape(1, 1),
        np.array([1], dtype=np.int64),
        np.zeros((1, 2), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
    )
    static = m1.reshape(-1).copy()
    bindings = np.zeros((2, 0), dtype=complex_dtype)
    kernels.run_program(state, *program, static, bindings[0])
    kernels.apply_cx(state, 0, 2)
    kernels.apply_cx(state, 2, 0)
    big = np.zeros(1 << 6, dtype=complex_dtype)
    kernels.apply_1q(big, 5, m1)
    kernels.apply_cx(big, 4, 5)
    kernels.apply_cx(big, 5, 4)
    kernels.apply_2q(big, 5, 4, m2)
    kernels.apply_2q(big, 0, 5, m2)
    kernels.apply_group_par(state, 1, np.array([2], dtype=np.int64), *program, static, bindings[0])
    kernels.sweep_pauli_values(n, *program, static, bindings, masks, masks)
    kernels.program_pauli_values(n, *program, static, bindings[0], masks, masks)
    kernels.sweep_probabilities(n, *program, static, bindings)
