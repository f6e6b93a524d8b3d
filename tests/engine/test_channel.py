"""The engine's Channel: Kraus sets and unitary mixtures, superoperators, and the identity split
trajectories use (channel = p * identity + (1 - p) * rest, p maximal)."""

from __future__ import annotations

import numpy as np
import pytest

from aqrt.engine.noise import Channel
from aqrt.noise import amplitude_damping_error, depolarizing_error, thermal_relaxation_error


def _superoperator(kraus: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.sum([np.kron(op.conj(), op) for op in kraus], axis=0)


def _random_channel(rng: np.random.Generator, num_qubits: int, rank: int) -> Channel:
    d = 1 << num_qubits
    stacked = rng.normal(size=(rank * d, d)) + 1j * rng.normal(size=(rank * d, d))
    isometry, _ = np.linalg.qr(stacked)
    return Channel.from_kraus([isometry[k * d : (k + 1) * d] for k in range(rank)])


def _device_like() -> Channel:
    relaxation = thermal_relaxation_error(100e-6, 80e-6, 500e-9)
    return depolarizing_error(0.01, 1).then(relaxation)


@pytest.mark.parametrize(
    "channel",
    [
        _device_like(),
        amplitude_damping_error(0.1),
        depolarizing_error(0.05, 2),
        _random_channel(np.random.default_rng(1), 1, 3),
        _random_channel(np.random.default_rng(2), 2, 5),
    ],
    ids=["device-like", "damping", "depolarizing-2q", "random-1q", "random-2q"],
)
def test_the_identity_split_is_the_channel(channel: Channel) -> None:
    weight, rest = channel.identity_split
    d = channel.kraus[0].shape[0]
    rebuilt = weight * np.eye(d * d)
    if rest is not None:
        rebuilt = rebuilt + (1 - weight) * _superoperator(rest.kraus)
    assert np.allclose(rebuilt, _superoperator(channel.kraus), atol=1e-9)
    assert 0.0 <= weight <= 1.0


def test_the_identity_weight_is_maximal() -> None:
    """A little more identity would leave a rest that is not completely positive."""
    channel = _device_like()
    weight, _ = channel.identity_split
    assert weight > 0.98  # a near-identity channel: most trajectories skip it
    d = channel.kraus[0].shape[0]
    vectors = np.stack([op.reshape(-1) for op in channel.kraus], axis=1)
    choi = vectors @ vectors.conj().T
    identity = np.eye(d).reshape(-1)
    assert np.linalg.eigvalsh(choi - weight * np.outer(identity, identity)).min() > -1e-9
    assert np.linalg.eigvalsh(choi - (weight + 1e-6) * np.outer(identity, identity)).min() < 0


def test_depolarizing_keeps_its_identity_share() -> None:
    """depolarizing(p) on one qubit is (1 - 3p/4) identity + p/4 each of X, Y, Z."""
    weight, rest = depolarizing_error(0.2, 1).identity_split
    assert weight == pytest.approx(1 - 0.15, abs=1e-9)
    assert rest is not None


def test_a_unitary_that_is_not_the_identity_has_no_identity_share() -> None:
    x = np.array([[0, 1], [1, 0]], dtype=complex)
    flip = Channel.from_kraus([x])
    assert flip.identity_split == (0.0, flip)
    assert Channel.from_kraus([np.eye(2)]).identity_split == (1.0, None)
