"""Shots from a probability vector, and their bits packed as Qiskit's ``BitArray`` holds them.

- ``probability_total``  the sum of the probabilities, added in index order (so it equals the
  last entry of ``np.cumsum``, bit for bit)
- ``sorted_outcomes``    each draw's outcome, in one pass over the probabilities with the draws
  taken in increasing order: what ``np.searchsorted(np.cumsum(probs), draws, side="right")``
  gives (clamped to the last outcome), without the cumulative array or a binary search per
  draw (whose random reads into a 2**n array dominate at 20 qubits and more)
- ``pack_outcomes``      outcome bits into BitArray bytes (big-endian bytes; clbit 0 is the
  lowest bit of the last byte)
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["pack_outcomes", "probability_total", "sorted_outcomes"]


@njit(cache=True, nogil=True)
def probability_total(probs: np.ndarray) -> float:
    """``np.cumsum(probs)[-1]``, bit for bit (the same additions in the same order)."""
    total = probs[0] - probs[0]  # zero of the probabilities' own precision, as np.cumsum adds
    for i in range(probs.shape[0]):
        total += probs[i]
    return total


@njit(cache=True, nogil=True)
def sorted_outcomes(probs: np.ndarray, draws: np.ndarray, order: np.ndarray, out: np.ndarray) -> None:
    """``out[k]`` = the first index whose running sum of ``probs`` exceeds ``draws[k]`` (the
    last index if none does); ``order`` sorts ``draws`` increasingly."""
    count = order.shape[0]
    last = probs.shape[0] - 1
    j = 0
    running = probs[0] - probs[0]
    for i in range(probs.shape[0]):
        running += probs[i]
        while j < count and draws[order[j]] < running:
            out[order[j]] = i
            j += 1
        if j == count:
            return
    while j < count:
        out[order[j]] = last
        j += 1


@njit(cache=True, nogil=True)
def pack_outcomes(outcomes: np.ndarray, columns: np.ndarray, out: np.ndarray) -> None:
    """``out[s]`` = the BitArray bytes of shot ``s``: clbit ``c`` <- bit ``columns[c]`` of
    ``outcomes[s]`` (a clbit whose column is negative, never measured, stays 0); ``out`` starts
    zeroed."""
    num_bytes = out.shape[1]
    num_clbits = columns.shape[0]
    if num_clbits > 63:  # the register's bits do not fit one integer: bit by bit
        for s in range(outcomes.shape[0]):
            outcome = outcomes[s]
            for clbit in range(num_clbits):
                column = columns[clbit]
                if column >= 0 and (outcome >> column) & 1:
                    out[s, num_bytes - 1 - (clbit >> 3)] |= np.uint8(1 << (clbit & 7))
        return
    for s in range(outcomes.shape[0]):
        outcome = outcomes[s]
        value = 0
        for clbit in range(num_clbits):
            column = columns[clbit]
            if column >= 0:
                value |= ((outcome >> column) & 1) << clbit
        for k in range(num_bytes):
            out[s, num_bytes - 1 - k] = np.uint8((value >> (8 * k)) & 0xFF)
