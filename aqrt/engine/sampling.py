"""Shots drawn from a state's probabilities, and their bits packed for Qiskit's ``BitArray``
(the kernels are in :mod:`.kernels.sampling`)."""

from __future__ import annotations

import numpy as np

from .kernels.sampling import pack_outcomes, probability_total, sort_draws, sorted_outcomes

__all__ = ["draw_outcomes", "pack_outcomes"]


def draw_outcomes(probs: np.ndarray, rng: np.random.Generator, shots: int) -> np.ndarray:
    """``shots`` outcomes drawn from ``probs`` (not necessarily normalised).

    Draw ``k`` is the ``k``-th double of ``rng`` scaled by the probabilities' sum; its outcome is
    the first whose running sum exceeds it: what ``np.searchsorted(np.cumsum(probs), draws,
    side="right")`` gives (clamped to the last outcome), bit for bit, but found in one pass over
    ``probs`` with the draws sorted instead of a binary search per draw.
    """
    total = probability_total(probs)
    draws = rng.random(shots) * total
    outcomes = np.empty(shots, dtype=np.int64)
    order = np.empty(shots, dtype=np.int64)
    if total > 0.0 and np.isfinite(total):
        sort_draws(draws, total, order)
    else:  # no probability mass to spread draws over (a caller's bug): any correct order serves
        order[:] = np.argsort(draws)
    sorted_outcomes(probs, draws, order, outcomes)
    return outcomes
