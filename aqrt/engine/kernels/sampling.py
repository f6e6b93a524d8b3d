"""Shots from a probability vector, and their bits packed as Qiskit's ``BitArray`` holds them.

- ``probability_total``  the sum of the probabilities, added in index order (so it equals the
  last entry of ``np.cumsum``, bit for bit)
- ``sorted_outcomes``    each draw's outcome, in one pass over the probabilities with the draws
  taken in increasing order: what ``np.searchsorted(np.cumsum(probs), draws, side="right")``
  gives (clamped to the last outcome), without the cumulative array or a binary search per
  draw (whose random reads into a 2**n array dominate at 20 qubits and more)
- ``sort_draws``         the order that sorts uniform draws, by a bucket sort in linear time
  (``np.argsort`` of 100k doubles took 6.8 ms, most of a 20-qubit Sampler job's drawing)
- ``pack_outcomes``      outcome bits into BitArray bytes (big-endian bytes; clbit 0 is the
  lowest bit of the last byte)
- ``state_outcomes``     shots drawn from a small state's amplitudes by a binary search per draw
  (the ``small`` tier's: a tiny Sampler job on the event loop)
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["pack_outcomes", "probability_total", "sort_draws", "sorted_outcomes", "state_outcomes"]


@njit(cache=True, nogil=True)
def probability_total(probs: np.ndarray) -> float:
    """``np.cumsum(probs)[-1]``, bit for bit (the same additions in the same order)."""
    total = probs[0] - probs[0]  # zero of the probabilities' own precision, as np.cumsum adds
    for i in range(probs.shape[0]):
        total += probs[i]
    return total


@njit(cache=True, nogil=True)
def sort_draws(draws: np.ndarray, total: float, order: np.ndarray) -> None:
    """``order`` <- the indices of ``draws`` (values in [0, ``total``]) in increasing order of
    their values. The draws are uniform, so a bucket per draw holds about one: the indices are
    spread by bucket (a monotone function of the value), then each bucket is sorted by
    insertion."""
    count = draws.shape[0]
    buckets = max(count, 1)
    scale = buckets / total
    starts = np.zeros(buckets + 1, dtype=np.int64)
    bucket_of = np.empty(count, dtype=np.int64)
    for k in range(count):
        bucket = min(max(np.int64(draws[k] * scale), 0), buckets - 1)
        bucket_of[k] = bucket
        starts[bucket + 1] += 1
    for b in range(buckets):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    for k in range(count):
        bucket = bucket_of[k]
        order[fill[bucket]] = k
        fill[bucket] += 1
    for b in range(buckets):
        for i in range(starts[b] + 1, starts[b + 1]):
            index = order[i]
            value = draws[index]
            j = i - 1
            while j >= starts[b] and draws[order[j]] > value:
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = index


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


@njit(cache=True, nogil=True)
def state_outcomes(state: np.ndarray, uniforms: np.ndarray, out: np.ndarray) -> None:
    """``out[k]`` <- the outcome of draw ``uniforms[k]`` (in [0, 1)) scaled by the sum of the
    state's probabilities: bit for bit, ``np.minimum(np.searchsorted(cdf, uniforms * cdf[-1],
    side="right"), size - 1)`` with ``cdf = np.cumsum(state.real**2 + state.imag**2)`` (the
    squares and their sum in the state's precision, the running sum in float64: numpy's order
    of operations), by a binary search per draw: a tiny job's state has a few amplitudes and
    its shots are few, so nothing is sorted (the ``small`` tier's: a tiny Sampler job on the
    event loop)."""
    size = state.shape[0]
    cdf = np.empty(size)
    total = 0.0
    for i in range(size):
        amplitude = state[i]
        total += amplitude.real * amplitude.real + amplitude.imag * amplitude.imag
        cdf[i] = total
    last = size - 1
    for k in range(uniforms.shape[0]):
        draw = uniforms[k] * total
        low, high = 0, size
        while low < high:  # the first index whose running sum exceeds the draw
            middle = (low + high) >> 1
            if cdf[middle] > draw:
                high = middle
            else:
                low = middle + 1
        out[k] = min(low, last)
