"""The serial Pauli-term kernel (paired amplitudes, real signed sums) against a numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest

from aqrt.engine.kernels.bits import parity, popcount_parity
from aqrt.engine.kernels.reductions import pauli_values, pauli_values_par

TOLERANCE = {"complex128": 1e-12, "complex64": 1e-5}


def _oracle(state: np.ndarray, x: int, z: int) -> complex:
    psi = state.astype(np.complex128)
    index = np.arange(psi.shape[0])
    signs = 1 - 2 * np.array([bin(int(i & z)).count("1") & 1 for i in index])
    return complex(np.sum(signs * np.conj(psi[index ^ x]) * psi))


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_every_term_matches_the_oracle(n: int, dtype: str) -> None:
    rng = np.random.default_rng(n)
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    state = (state / np.linalg.norm(state)).astype(dtype)
    x = rng.integers(0, 1 << n, 24).astype(np.int64)
    z = rng.integers(0, 1 << n, 24).astype(np.int64)
    x[:4] = 0  # diagonal terms
    x[4:8] = x[8]  # terms sharing an x mask
    x[9] = (1 << n) - 1  # every qubit flipped, the highest included
    z[10] = 0
    expected = np.array([_oracle(state, int(a), int(b)) for a, b in zip(x, z, strict=True)])
    found = pauli_values(state, x, z)
    assert found.dtype == np.complex128
    np.testing.assert_allclose(found, expected, rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(found, pauli_values_par(state, x, z), rtol=0, atol=TOLERANCE[dtype])
    # a Pauli word X^x Z^z is Hermitian up to (-1)^popcount(x & z): its value is real or imaginary
    for value, a, b in zip(found, x, z, strict=True):
        if parity(int(a & b)):
            assert value.real == 0.0
        else:
            assert value.imag == 0.0


def test_popcount_parity_is_parity() -> None:
    rng = np.random.default_rng(0)
    for value in [0, 1, 2, 3, (1 << 62) + 5, *rng.integers(0, 1 << 62, 200).tolist()]:
        assert popcount_parity(value) == parity(value) == bin(value).count("1") % 2
