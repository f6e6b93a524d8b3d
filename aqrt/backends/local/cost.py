"""The cost model: a rough count of amplitude updates per PUB, to decide where a job runs.

A job of at most :data:`INLINE_BUDGET` updates runs on the event loop (a thread hop would cost
more than the work); larger jobs run on the engine worker; with an executor such as Dask, jobs
of more than two chunks of about :data:`TARGET_CHUNK_SECONDS` each are cut into chunks.
"""

from __future__ import annotations

import math
from typing import Any

from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

__all__ = [
    "INLINE_BUDGET",
    "PROGRESS_CHUNK_SECONDS",
    "SHOT_COST",
    "TARGET_CHUNK_SECONDS",
    "UPDATES_PER_SECOND",
    "chunk_size",
    "job_cost",
    "pub_cost",
]

INLINE_BUDGET = 1 << 13  # amplitude updates below which a job runs on the loop (~ tens of µs)
SHOT_COST = 8  # a drawn and packed shot costs about 8 amplitude updates (~50 ns measured on 2-qubit circuits)
TARGET_CHUNK_SECONDS = 0.05  # work per chunk of a sweep: enough to dwarf a task's overhead
# Amplitude updates per second of one core on small states (measured ~1e9 on a 2-core EPYC VM
# for n = 10; benchmarks/sweep.py). Binding a chunk costs tens of microseconds from the circuit's
# sweep plan, a few ms of Python per ~100 gates for a circuit without one (a gate with no
# in-kernel formula): 50 ms chunks keep either small.
UPDATES_PER_SECOND = 1e9
# In-process, chunks exist only to report progress: fewer, longer ones (each binds its own
# parameters) still update a progress bar several times a second.
PROGRESS_CHUNK_SECONDS = 0.25


def pub_cost(pub: Any) -> int:
    """Amplitude updates of one PUB: bindings x amplitudes x (gates + 1), and for a Sampler PUB
    :data:`SHOT_COST` per shot of each binding (a million shots is tens of milliseconds, whatever
    the circuit: never inline)."""
    bindings = math.prod(pub.parameter_values.shape)
    circuit = pub.circuit
    cost = bindings * (1 << circuit.num_qubits) * (len(circuit) + 1)
    # The exact type first: isinstance against SamplerPub (a typing.Protocol subclass) costs
    # about a microsecond when it fails, as it does for every Estimator PUB.
    kind = type(pub)
    if kind is SamplerPub or (kind is not EstimatorPub and isinstance(pub, SamplerPub)):
        cost += bindings * int(pub.shots) * SHOT_COST
    return cost


def job_cost(pubs: Any) -> int:
    """Amplitude updates of a job's PUBs."""
    total = 0
    for pub in pubs:  # a loop, not sum() over a generator: asked before every tiny job
        total += pub_cost(pub)
    return total


def chunk_size(num_qubits: int, num_ops: int, *, seconds: float = TARGET_CHUNK_SECONDS) -> int:
    """Bindings per chunk so that one chunk is about ``seconds`` of kernel work."""
    per_binding = (1 << num_qubits) * (num_ops + 1)
    return max(1, int(seconds * UPDATES_PER_SECOND / per_binding))
