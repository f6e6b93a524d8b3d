"""Seeds: one generator per PUB, all derived from the job's one ``SeedSequence``.

Qiskit's reference primitives and Aer derive per-PUB streams from one seed; so does aqrt, so
two identical PUBs of one job draw different samples while the job as a whole repeats exactly
for a fixed ``options.seed``. Chunks of a PUB (:mod:`.chunks`) jump ahead in the PUB's stream.

A job without a seed gets its ``SeedSequence`` spawned from one drawn from the OS's entropy once
per process (SeedSequence's spawning gives independent streams; a forked child draws its own):
drawing fresh entropy and mixing it for every job cost a tiny Sampler job ~15 us of its ~100.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ...job import JobRequest

__all__ = ["pub_generators"]

_unseeded_lock = threading.Lock()
_unseeded: tuple[int, np.random.SeedSequence] | None = None  # (pid, the process's entropy)


def _unseeded_sequence() -> np.random.SeedSequence:
    """A fresh child of this process's entropy (drawn again in a forked child, whose copy of
    the parent's would spawn the parent's children)."""
    global _unseeded
    with _unseeded_lock:
        pid = os.getpid()
        if _unseeded is None or _unseeded[0] != pid:
            _unseeded = (pid, np.random.SeedSequence())
        return _unseeded[1].spawn(1)[0]


def pub_generators(request: JobRequest) -> list[np.random.Generator | None]:
    """One generator per PUB of ``request``; None for PUBs that draw nothing.

    Exact Estimator PUBs draw nothing, so a job of only those skips the (costly) entropy draw.
    """
    pubs = request.pubs
    if request.program != "sampler":
        for pub in pubs:  # a loop, not any() over a generator: asked for every job
            if pub.precision:
                break
        else:
            return [None] * len(pubs)
    seed = request.options.seed
    root = np.random.SeedSequence(seed) if seed is not None else _unseeded_sequence()
    if len(pubs) == 1 and seed is None:
        return [np.random.default_rng(root)]  # a fresh child already: no second spawn
    return [np.random.default_rng(child) for child in root.spawn(len(pubs))]
