"""The Pauli-term kernels against a numpy oracle: the serial one (paired amplitudes, real signed
sums) and the parallel one (one pass per x mask, a Walsh-Hadamard transform pruned to the terms'
masks per chunk of 2**12 amplitudes), on states smaller and larger than a chunk."""

from __future__ import annotations

import numpy as np
import pytest

from aqrt.engine.kernels.bits import CHUNK, parity, popcount_parity, walsh_hadamard
from aqrt.engine.kernels.reductions import _pruned_transform, _transform_plan, pauli_values, pauli_values_par

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


def _random_state(n: int, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)
    return (state / np.linalg.norm(state)).astype(dtype)


def _fast_oracle(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """:func:`_oracle` for every term, vectorised (one product vector per distinct x mask)."""
    psi = state.astype(np.complex128)
    index = np.arange(psi.shape[0], dtype=np.int64)
    values = np.empty(x_masks.shape[0], dtype=np.complex128)
    for x in np.unique(x_masks):
        products = np.conj(psi[index ^ x]) * psi
        for t in np.flatnonzero(x_masks == x):
            signs = 1.0 - 2.0 * (np.bitwise_count(index & z_masks[t]) & 1)
            values[t] = np.dot(signs, products)
    return values


def _wide_terms(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal terms (the Ising ones, the identity, the highest qubit, every qubit, random) and
    x groups of every shape the kernel tells apart: several terms (real and imaginary values)
    sharing an x mask, x masks below qubit 5 (each amplitude paired within its chunk), within a
    chunk, above it with and without low bits (partner blocks permuted or not), every qubit,
    random ones."""
    top = 1 << (n - 1)
    every = (1 << n) - 1
    ising = [1 << i for i in range(n)] + [(1 << i) | (1 << (i + 1)) for i in range(n - 1)]
    diagonal_z = [*ising, 0, top, every, top | 1, *rng.integers(0, 1 << n, 8).tolist()]
    pairs = [(0, z) for z in diagonal_z]
    shared = int(rng.integers(0, top)) | top
    pairs += [(shared, int(z)) for z in rng.integers(0, 1 << n, 10)]
    pairs += [(shared, shared), (shared, 0), (shared, every)]
    for x in (1, 0b10, 0b101, 0b110, (1 << 5) | (1 << 2), (1 << 11) | 1, top, top | (1 << 12), every):
        pairs += [(x, int(z)) for z in rng.integers(0, 1 << n, 3)] + [(x, x), (x, every)]
    pairs += [(int(x), int(z)) for x, z in rng.integers(1, 1 << n, (12, 2))]
    x_masks, z_masks = (np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True))
    return x_masks, z_masks


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("n", [14, 17, 20])
def test_wide_states_match_the_oracle(n: int, dtype: str) -> None:
    """Every term of a wide state within 1e-12 whatever the state's precision: the sums are
    float64 over the stored amplitudes, as the oracle's; a Hermitian word's value has an exact
    zero imaginary part (an anti-Hermitian one's real part)."""
    rng = np.random.default_rng(1000 + n)
    state = _random_state(n, dtype, n)
    x_masks, z_masks = _wide_terms(n, rng)
    found = pauli_values_par(state, x_masks, z_masks)
    expected = _fast_oracle(state, x_masks, z_masks)
    assert found.dtype == np.complex128
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-12)
    identity = np.flatnonzero((x_masks == 0) & (z_masks == 0))
    assert identity.shape[0] == 1 and abs(found[identity[0]] - 1.0) < 1e-6  # the norm
    hermitian = np.bitwise_count(x_masks & z_masks) % 2 == 0
    assert np.all(found[hermitian].imag == 0.0) and np.all(found[~hermitian].real == 0.0)


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("n", [3, 12, 13, 15])
def test_diagonal_terms_that_all_or_none_use_a_chunk_s_top_qubit(n: int, dtype: str) -> None:
    """The transform's first stage (or first two) is made with the probabilities: the sums only
    (no mask uses the chunk's top qubit), the differences only (every mask does), or both."""
    state = _random_state(n, dtype, 7 * n)
    top_of_chunk = 1 << (min(n, CHUNK.bit_length() - 1) - 1)
    rng = np.random.default_rng(n)
    z = rng.integers(0, 1 << n, 12).astype(np.int64)
    x = np.zeros(12, dtype=np.int64)
    for masks in (z & ~top_of_chunk, z | top_of_chunk, z ^ (np.arange(12) % 2) * top_of_chunk):
        found = pauli_values_par(state, x, masks)
        np.testing.assert_allclose(found, _fast_oracle(state, x, masks), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bits", [0, 1, 2, 5, 8])
def test_the_pruned_transform_gives_the_full_transform_s_values_at_the_masks(bits: int) -> None:
    """Against the full Walsh-Hadamard transform: mask sets of one, few, repeated and every mask
    (the full transform itself), and none."""
    rng = np.random.default_rng(bits)
    data = rng.normal(size=1 << bits)
    full = data.astype(np.complex128)
    walsh_hadamard(full)
    every = np.arange(1 << bits, dtype=np.int64)
    sets = [every, every[::-1].copy(), np.zeros(0, dtype=np.int64), every[-1:]]
    sets += [rng.integers(0, 1 << bits, size).astype(np.int64) for size in (1, 3, 7, 3 << bits)]
    for masks in sets:
        parents, halves, counts = _transform_plan(masks, bits)
        assert np.all(counts <= np.unique(masks).shape[0])  # pruned: never more blocks than masks
        buffer = data.copy()
        _pruned_transform(buffer, parents, halves, counts, bits, 0)
        np.testing.assert_allclose(buffer[masks], full.real[masks], rtol=0, atol=1e-12)
