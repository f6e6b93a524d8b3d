"""Shots drawn from a state's probabilities, and their bits packed for Qiskit's ``BitArray``
(the kernels are in :mod:`.kernels.sampling`)."""

from __future__ import annotations

import numpy as np

from .kernels.sampling import pack_outcomes, probability_total, sorted_outcomes

__all__ = ["draw_outcomes", "pack_outcomes"]


def draw_outcomes(probs: np.ndarray, rng: np.random.Generator, shots: int) -> np.ndarray:
    """``shots`` outcomes drawn from ``probs`` (not necessarily normalised).

    Draw ``k`` is the ``k``-th double of ``rng`` scaled by the probabilities' sum; its outcome is
    the first whose running sum exceeds it: what ``np.searchsorted(np.cumsum(probs), draws,
    side="right")`` gives (clamped to the last outcome), bit for bit, but found in one pass over
    ``probs`` with the draws sorted instead of a binary search per draw.
    """
    draws = rng.random(shots) * probability_total(probs)
    outcomes = np.empty(shots, dtype=np.int64)
    sorted_outcomes(probs, draws, np.argsort(draws), outcomes)
    return outcomes
