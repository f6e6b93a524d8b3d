"""Seeds: one generator per PUB, all derived from the job's one ``SeedSequence``.

Qiskit's reference primitives and Aer derive per-PUB streams from one seed; so does aqrt, so
two identical PUBs of one job draw different samples while the job as a whole repeats exactly
for a fixed ``options.seed``. Chunks of a PUB (:mod:`.chunks`) jump ahead in the PUB's stream.

A job without a seed gets its ``SeedSequence`` spawned from one drawn from the OS's entropy once
per process (SeedSequence's spawning gives independent streams; a forked child draws its own):
drawing fresh entropy and mixing it for every job cost a tiny Sampler job ~15 us of its ~100.
Run whole (``shared=True``: nothing copies the generators' state, as chunks do), such a job
draws from one generator per process instead, made once: making a generator at all costs
~15 us, and a job without a seed promises only fresh draws, which one stream gives (numpy's
generators take a lock per call, so the loop and the engine worker may share it).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ...job import JobRequest

__all__ = ["pub_generators"]

_unseeded_lock = threading.Lock()
_unseeded: tuple[int, np.random.SeedSequence] | None = None  # (pid, the process's entropy)


_shared: tuple[int, np.random.Generator] | None = None  # (pid, the process's generator)


def _shared_generator() -> np.random.Generator:
    """This process's generator for unseeded jobs run whole (made again in a forked child)."""
    global _shared
    shared = _shared
    pid = os.getpid()
    if shared is not None and shared[0] == pid:
        return shared[1]
    with _unseeded_lock:
        if _shared is None or _shared[0] != pid:
            _shared = (pid, np.random.default_rng(np.random.SeedSequence()))
        return _shared[1]


def _unseeded_sequence() -> np.random.SeedSequence:
    """A fresh child of this process's entropy (drawn again in a forked child, whose copy of
    the parent's would spawn the parent's children)."""
    global _unseeded
    with _unseeded_lock:
        pid = os.getpid()
        if _unseeded is None or _unseeded[0] != pid:
            _unseeded = (pid, np.random.SeedSequence())
        return _unseeded[1].spawn(1)[0]


def pub_generators(request: JobRequest, *, shared: bool = False) -> list[np.random.Generator | None]:
    """One generator per PUB of ``request``; None for PUBs that draw nothing.

    Exact Estimator PUBs draw nothing, so a job of only those skips the (costly) entropy draw.
    ``shared``: the caller runs the job whole and never copies a generator's state; a job
    without a seed then draws from this process's one generator (see the module's docstring).
    """
    pubs = request.pubs
    if request.program != "sampler":
        for pub in pubs:  # a loop, not any() over a generator: asked for every job
            if pub.precision:
                break
        else:
            return [None] * len(pubs)
    seed = request.options.seed
    if seed is None and shared:
        return [_shared_generator()] * len(pubs)
    root = np.random.SeedSequence(seed) if seed is not None else _unseeded_sequence()
    if len(pubs) == 1 and seed is None:
        return [np.random.default_rng(root)]  # a fresh child already: no second spawn
    return [np.random.default_rng(child) for child in root.spawn(len(pubs))]
