"""Quantum channels as the engine runs them (numpy only).

A :class:`Channel` is a CPTP map on ``k`` qubits given by Kraus operators; a unitary mixture
(``sum_i p_i U rho U^dagger``, e.g. depolarizing or Pauli channels) keeps its probabilities and
unitaries, so trajectories can pick a branch without looking at the state. Bit convention as in
:mod:`aqrt.engine.ops`: the channel's qubit j is bit j of its matrices' row/column index.

A circuit carries a channel as an instruction named :data:`CHANNEL_INSTRUCTION` with a
``channel`` attribute (the backends insert them where a noise model puts noise); the lowering
keeps them as channel ops, which only the noisy simulators (density matrix, trajectories) run.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

__all__ = ["CHANNEL_INSTRUCTION", "Channel"]

CHANNEL_INSTRUCTION = "aqrt_channel"
_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True, eq=False)
class Channel:
    """A channel on ``num_qubits`` qubits: Kraus operators, and for unitary mixtures their weights.

    Build one with :meth:`from_kraus` or :meth:`mixture` (they check completeness).
    ``probabilities`` is set only for unitary mixtures: then ``kraus[i] == sqrt(p_i) * unitaries[i]``.
    """

    kraus: tuple[np.ndarray, ...]
    probabilities: np.ndarray | None = None
    unitaries: tuple[np.ndarray, ...] | None = None

    @property
    def num_qubits(self) -> int:
        return int(self.kraus[0].shape[0]).bit_length() - 1

    @property
    def is_unitary_mixture(self) -> bool:
        return self.probabilities is not None

    @classmethod
    def from_kraus(cls, operators: Sequence[np.ndarray]) -> Channel:
        """The channel ``rho -> sum_k K_k rho K_k^dagger``; a set that is a unitary mixture is kept as one.

        Raises:
            ValueError: the operators are not square powers of two of one size, or ``sum K^dagger K != I``.
        """
        kraus = tuple(np.ascontiguousarray(op, dtype=np.complex128) for op in operators)
        _check_shapes(kraus)
        total = np.sum([op.conj().T @ op for op in kraus], axis=0)
        if not np.allclose(total, np.eye(kraus[0].shape[0]), atol=1e-7):
            raise ValueError("Kraus operators are not trace preserving: sum K^dagger K != I")
        weights = np.array([np.real(np.trace(op.conj().T @ op)) / op.shape[0] for op in kraus])
        unitary = all(
            w > 0 and np.allclose(op.conj().T @ op, w * np.eye(op.shape[0]), atol=1e-9)
            for op, w in zip(kraus, weights, strict=True)
        )
        kept = [i for i, w in enumerate(weights) if w > _TOLERANCE or not unitary]
        if unitary:
            return cls.mixture(weights[kept], [kraus[i] / np.sqrt(weights[i]) for i in kept])
        return cls(kraus)

    @classmethod
    def mixture(cls, probabilities: Sequence[float] | np.ndarray, unitaries: Sequence[np.ndarray]) -> Channel:
        """The channel ``rho -> sum_i p_i U_i rho U_i^dagger``.

        Raises:
            ValueError: probabilities negative or not summing to 1, or a matrix that is not unitary.
        """
        weights = np.asarray(probabilities, dtype=np.float64)
        mats = tuple(np.ascontiguousarray(u, dtype=np.complex128) for u in unitaries)
        _check_shapes(mats)
        if weights.shape != (len(mats),) or (weights < -_TOLERANCE).any() or abs(weights.sum() - 1) > 1e-7:
            raise ValueError(f"mixture probabilities must be >= 0 and sum to 1, got {weights.tolist()}")
        for u in mats:
            if not np.allclose(u.conj().T @ u, np.eye(u.shape[0]), atol=1e-7):
                raise ValueError("a unitary mixture needs unitary matrices")
        weights = np.clip(weights, 0.0, None)
        weights = weights / weights.sum()
        kraus = tuple(np.sqrt(p) * u for p, u in zip(weights, mats, strict=True))
        return cls(kraus, weights, mats)

    def superoperator(self) -> np.ndarray:
        """The channel on ``vec(rho)`` as a (4**k, 4**k) matrix.

        ``vec(rho)[i + (j << k)] = rho[i, j]``: the row index is the low ``k`` bits, the column index
        the high ``k`` bits, so the superoperator acts on qubits ``(q..., q + n...)`` of a density
        matrix stored as a ``2n``-qubit vector.
        """
        return np.sum([np.kron(op.conj(), op) for op in self.kraus], axis=0)

    @functools.cached_property
    def identity_split(self) -> tuple[float, Channel | None]:
        """``(p, rest)`` with this channel ``= p * identity + (1 - p) * rest`` and ``p`` as large as
        possible (``rest`` None when ``p`` is 1).

        For trajectories: a device's gate error is a Kraus channel whose operator weights depend
        on the state, but most of its weight is the identity, which does not: with probability
        ``p`` (drawn ahead, like a mixture's branch) a trajectory does nothing; otherwise it applies
        ``rest``. The largest ``p`` is ``1 / <w| J^+ |w>`` for the channel's Choi matrix ``J`` and the
        identity's ``w`` (0 if ``w`` is outside ``J``'s range); ``rest`` is what remains of ``J``.
        """
        d = self.kraus[0].shape[0]
        vectors = np.stack([op.reshape(-1) for op in self.kraus], axis=1)
        choi = vectors @ vectors.conj().T
        identity = np.eye(d, dtype=np.complex128).reshape(-1)
        eigenvalues, eigenvectors = np.linalg.eigh(choi)
        coefficients = eigenvectors.conj().T @ identity
        support = eigenvalues > 1e-12 * max(float(eigenvalues.max()), 1e-300)
        if np.linalg.norm(coefficients[~support]) > 1e-9:
            return 0.0, self
        weight = float(1.0 / np.sum(np.abs(coefficients[support]) ** 2 / eigenvalues[support]))
        weight = min(1.0, weight * (1 - 1e-12))  # a hair below the bound keeps the rest positive
        if weight >= 1.0 - 1e-12:
            return 1.0, None
        rest = choi - weight * np.outer(identity, identity.conj())
        values, vectors = np.linalg.eigh(rest)
        cut = 1e-14 * max(float(values.max()), 1e-300)
        scale = 1.0 / (1.0 - weight)
        operators = [np.sqrt(v * scale) * vectors[:, i].reshape(d, d) for i, v in enumerate(values) if v > cut]
        return weight, Channel.from_kraus(operators)

    def then(self, other: Channel) -> Channel:
        """This channel followed by ``other`` (same qubits): Kraus products, mixtures kept mixtures."""
        if other.num_qubits != self.num_qubits:
            raise ValueError("channels compose only on the same number of qubits")
        if self.probabilities is not None and other.probabilities is not None:
            assert self.unitaries is not None and other.unitaries is not None
            weights = np.outer(other.probabilities, self.probabilities).reshape(-1)
            mats = [b @ a for b in other.unitaries for a in self.unitaries]
            return Channel.mixture(weights, mats)
        return Channel.from_kraus([b @ a for b in other.kraus for a in self.kraus])


def _check_shapes(matrices: tuple[np.ndarray, ...]) -> None:
    if not matrices:
        raise ValueError("a channel needs at least one operator")
    shape = matrices[0].shape
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 2 or shape[0] & (shape[0] - 1):
        raise ValueError(f"channel operators must be square with a power-of-two size, got shape {shape}")
    if any(m.shape != shape for m in matrices):
        raise ValueError("channel operators must all have the same shape")
