"""Seeds: one generator per PUB, all derived from the job's one ``SeedSequence``.

Qiskit's reference primitives and Aer derive per-PUB streams from one seed; so does aqrt, so
two identical PUBs of one job draw different samples while the job as a whole repeats exactly
for a fixed ``options.seed``. Chunks of a PUB (:mod:`.chunks`) jump ahead in the PUB's stream.
"""

from __future__ import annotations

import numpy as np

from ...job import JobRequest

__all__ = ["pub_generators"]


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
    children = np.random.SeedSequence(request.options.seed).spawn(len(pubs))
    return [np.random.default_rng(child) for child in children]
