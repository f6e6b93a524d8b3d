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

_lock = threading.Lock()
# (pid, the process's entropy, the generator unseeded jobs run whole share), made on first use
# and again in a forked child, whose copy of its parent's would replay the parent's draws.
_process: tuple[int, np.random.SeedSequence, np.random.Generator] | None = None


def _process_random() -> tuple[np.random.SeedSequence, np.random.Generator]:
    global _process
    process = _process
    pid = os.getpid()
    if process is None or process[0] != pid:
        with _lock:
            if _process is None or _process[0] != pid:
                root = np.random.SeedSequence()
                _process = (pid, root, np.random.default_rng(root.spawn(1)[0]))
            process = _process
    return process[1], process[2]


def _shared_generator() -> np.random.Generator:
    """This process's generator for unseeded jobs run whole."""
    return _process_random()[1]


def _unseeded_sequence() -> np.random.SeedSequence:
    """A fresh child of this process's entropy."""
    root = _process_random()[0]
    with _lock:  # spawning counts the children spawned so far
        return root.spawn(1)[0]


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
