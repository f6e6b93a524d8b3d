"""The cost model: a rough count of amplitude updates per PUB, to decide where a job runs.

A job whose :func:`inline_cost` is at most :data:`INLINE_BUDGET` runs on the event loop (a trip
to the engine worker would cost it more than its work, and it holds the loop for a millisecond
at most); larger jobs run on the engine worker; with an executor such as Dask, jobs of more
than two chunks of about :data:`TARGET_CHUNK_SECONDS` each are cut into chunks.
"""

from __future__ import annotations

import math
from typing import Any

from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

__all__ = [
    "BINDING_COST",
    "INLINE_BUDGET",
    "PROGRESS_CHUNK_SECONDS",
    "SHOT_COST",
    "TARGET_CHUNK_SECONDS",
    "UPDATES_PER_SECOND",
    "chunk_size",
    "inline_cost",
    "job_cost",
    "pub_cost",
]

# Where a job runs. A trip to the engine worker and back costs a job 0.4-0.5 ms more than
# running inline on a 2-core VM (a thread wake-up each way, the runner's task, the circuit's
# digest again on the worker), and for one binding the worker runs the same serial kernels. So
# a job runs inline unless it would hold the event loop long: an inline_cost up to
# INLINE_BUDGET, about a millisecond (benchmarks/inline.py times each shape both ways: one
# binding of a 12-qubit, 4-layer ansatz with 20 terms 0.67 ms inline, 1.2 ms on the worker).
INLINE_BUDGET = 1 << 20
# Serially, each binding costs its row of entries and a few kernel calls besides its updates
# (15-25 us; the worker's sweep kernel runs many bindings together).
BINDING_COST = 1 << 15
# A drawn and packed shot costs 20-25 ns inline, about 32 updates' time: ~30k shots of a Bell
# circuit run inline, a million never.
SHOT_COST = 32
TARGET_CHUNK_SECONDS = 0.05  # work per chunk of a sweep: enough to dwarf a task's overhead
# Amplitude updates per second of one core on small states (measured ~1e9 on a 2-core EPYC VM
# for n = 10; benchmarks/sweep.py). Binding a chunk costs tens of microseconds from the circuit's
# sweep plan, a few ms of Python per ~100 gates for a circuit without one (a gate with no
# in-kernel formula): 50 ms chunks keep either small.
UPDATES_PER_SECOND = 1e9
# In-process, chunks exist only to report progress: fewer, longer ones (each binds its own
# parameters) still update a progress bar several times a second.
PROGRESS_CHUNK_SECONDS = 0.25


def pub_cost(pub: Any, *, per_binding: int = 0) -> int:
    """Amplitude updates of one PUB: bindings x amplitudes x (gates + 1), and for a Sampler PUB
    :data:`SHOT_COST` per shot of each binding (a million shots is tens of milliseconds, whatever
    the circuit: never inline); plus ``per_binding`` for each binding."""
    bindings = math.prod(pub.parameter_values.shape)
    circuit = pub.circuit
    cost = bindings * ((1 << circuit.num_qubits) * (len(circuit) + 1) + per_binding)
    # The exact type first: isinstance against SamplerPub (a typing.Protocol subclass) costs
    # about a microsecond when it fails, as it does for every Estimator PUB.
    kind = type(pub)
    if kind is SamplerPub or (kind is not EstimatorPub and isinstance(pub, SamplerPub)):
        cost += bindings * int(pub.shots) * SHOT_COST
    return cost


def job_cost(pubs: Any, *, per_binding: int = 0) -> int:
    """Amplitude updates of a job's PUBs (plus ``per_binding`` for each binding)."""
    total = 0
    for pub in pubs:  # a loop, not sum() over a generator: asked before every tiny job
        total += pub_cost(pub, per_binding=per_binding)
    return total


def inline_cost(pubs: Any) -> int:
    """What a job's PUBs cost run serially on the loop: their amplitude updates and
    :data:`BINDING_COST` a binding (compared with :data:`INLINE_BUDGET`)."""
    return job_cost(pubs, per_binding=BINDING_COST)


def chunk_size(num_qubits: int, num_ops: int, *, seconds: float = TARGET_CHUNK_SECONDS) -> int:
    """Bindings per chunk so that one chunk is about ``seconds`` of kernel work."""
    per_binding = (1 << num_qubits) * (num_ops + 1)
    return max(1, int(seconds * UPDATES_PER_SECOND / per_binding))
