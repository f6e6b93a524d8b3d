"""A job's PUBs split into chunks of bindings, run anywhere, and put back together.

The same chunks run in this process (when a job's progress is watched, one chunk at a time on
the engine worker) or on a Dask cluster (:mod:`aqrt.distributed`). A :class:`ChunkTask` is
self-contained and picklable: the lowered circuit, its slice of parameter values, the term
table or the sampling set-up. Results are exactly the unchunked ones:

- Estimator: a chunk returns its rows of the (bindings, observables) value table; the PUB's
  precision noise is drawn afterwards on the whole result, from the PUB's generator, as the
  unchunked path does.
- Sampler: binding b draws the ``shots`` doubles that follow the first ``b * shots`` of the
  PUB's generator, so a chunk starting at binding s uses a copy of that generator advanced by
  ``s * shots`` (PCG64 jumps ahead in O(log n)).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from ...engine import LoweredCircuit, TermTable
from ...engine.kernels import SMALL, TIERS
from . import engine_pubs
from .cost import TARGET_CHUNK_SECONDS, chunk_size
from .errors import engine_errors
from .fingerprint import circuit_fingerprint
from .reference import _flat_bindings
from .routes import STATEVECTOR

if TYPE_CHECKING:
    from ...job import JobRequest
    from ..base import ExecutionContext

__all__ = ["ChunkTask", "PubPlan", "RoutedPub", "kernel_lock", "plan_job", "run_chunk", "total_chunks", "warm"]

kernel_lock = threading.Lock()  # numba's parallel kernels may not be entered from two threads


@dataclasses.dataclass
class ChunkTask:
    """Everything one chunk needs; picklable, runs in any process with aqrt installed."""

    program: str
    lowered: LoweredCircuit | None  # None: a whole PUB on another route (``routed``)
    values: np.ndarray  # (chunk bindings, parameters)
    dtype: str
    table: TermTable | None = None
    shots: int = 0
    registers: list[tuple[str, list[int]]] = dataclasses.field(default_factory=list)
    rng_state: Any = None  # the PUB generator's PCG64 state (a dict)
    rng_skip: int = 0  # doubles of the PUB's stream drawn by the bindings before this chunk
    routed: RoutedPub | None = None

    @property
    def num_bindings(self) -> int:
        return int(self.values.shape[0])


@dataclasses.dataclass
class RoutedPub:
    """A PUB on the stabilizer or dynamic route: it runs whole, as one chunk."""

    method: str
    circuit: Any  # the prepared circuit
    names: list[str]
    observables: list[Any] | None = None  # the Estimator's, on the prepared circuit


def _run_routed(task: ChunkTask, routed: RoutedPub, cancel_requested: Any) -> Any:
    from . import routes

    dtype = np.dtype(task.dtype)
    if task.program == "estimator":
        assert routed.observables is not None
        return routes.estimate_values(
            routed.method, routed.circuit, task.values, routed.names, routed.observables, dtype, cancel_requested
        )
    return routes.sample_arrays(
        routed.method, routed.circuit, task.values, routed.names, task.shots, _generator(task), dtype, cancel_requested
    )


def _generator(task: ChunkTask) -> np.random.Generator:
    """The PUB's generator, advanced to the chunk's first binding."""
    bit_generator = np.random.PCG64()
    assert task.rng_state is not None  # a sampler chunk always carries its PUB's stream
    bit_generator.state = task.rng_state
    bit_generator.advance(task.rng_skip)
    return np.random.Generator(bit_generator)


def run_chunk(task: ChunkTask, cancel_requested: Any = None) -> Any:
    """Run one chunk: (bindings, observables) values, or packed samples per register."""
    from ...engine._warmup import is_warm

    if not is_warm(task.dtype, (SMALL,)):
        warm(task.dtype, (SMALL,))  # once per process; the engine's entry points load the other tiers they use
    dtype = np.dtype(task.dtype)
    with kernel_lock:
        if task.routed is not None:
            return _run_routed(task, task.routed, cancel_requested)
        assert task.lowered is not None
        if task.program == "estimator":
            assert task.table is not None
            return engine_pubs.estimate_chunk(task.lowered, task.values, task.table, dtype, cancel_requested)
        return engine_pubs.sample_chunk(
            task.lowered, task.values, _generator(task), task.shots, task.registers, dtype, cancel_requested
        )


@dataclasses.dataclass
class PubPlan:
    """One PUB, ready to be cut into chunks and finished from their results."""

    pub: Any
    program: str
    lowered: LoweredCircuit | None
    values: np.ndarray  # (bindings, parameters), every binding of the PUB
    dtype: str
    chunk_bindings: int
    table: TermTable | None = None
    registers: list[tuple[str, list[int]]] = dataclasses.field(default_factory=list)
    rng: np.random.Generator | None = None
    simulator_metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    routed: RoutedPub | None = None

    @property
    def num_bindings(self) -> int:
        return int(self.values.shape[0])

    def bounds(self) -> list[tuple[int, int]]:
        """(start, stop) of every chunk, in binding order (a routed PUB is one chunk)."""
        if self.routed is not None:
            return [(0, self.num_bindings)]
        size = self.chunk_bindings
        return [(start, min(start + size, self.num_bindings)) for start in range(0, self.num_bindings, size)]

    def task(self, start: int, stop: int) -> ChunkTask:
        shots = int(self.pub.shots) if self.program == "sampler" else 0
        return ChunkTask(
            program=self.program,
            lowered=self.lowered,
            values=np.ascontiguousarray(self.values[start:stop]),
            dtype=self.dtype,
            table=self.table,
            shots=shots,
            registers=self.registers,
            rng_state=dict(self.rng.bit_generator.state) if self.rng is not None and shots else None,
            rng_skip=start * shots,
            routed=self.routed,
        )

    def finish(self, parts: list[Any]) -> Any:
        """The PUB's result from its chunks' results, in :meth:`bounds` order."""
        if self.program == "estimator":
            width = self.table.weights.shape[0] if self.table is not None else int(np.prod(self.pub.observables.shape))
            per_pair = np.concatenate(parts, axis=0) if parts else np.empty((0, width))
            result = engine_pubs.finish_estimate(self.pub, per_pair, self.rng)
        else:
            arrays = {name: np.concatenate([part[name] for part in parts], axis=0) for name, _ in self.registers}
            result = engine_pubs.finish_sample(self.pub, arrays, self.registers)
        result.metadata["simulator_metadata"] = dict(self.simulator_metadata)
        return result


def plan_job(
    request: JobRequest,
    context: ExecutionContext,
    generators: list[Any],
    *,
    prepare: Callable[[Any, str, JobRequest, dict[Any, Any]], Any],
    dtype: str,
    chunk_bindings: int | None,
    chunk_seconds: float = TARGET_CHUNK_SECONDS,
) -> list[PubPlan]:
    """Plan every PUB of ``request`` (``prepare``d, lowered, term tables) using the session cache;
    chunks hold ``chunk_bindings`` bindings, or about ``chunk_seconds`` of work.

    Runs where the engine runs (a worker thread): transpiling and lowering are CPU work.
    """
    plans = []
    for index, (pub, rng) in enumerate(zip(request.pubs, generators, strict=True)):
        key = circuit_fingerprint(pub.circuit)
        prepared = prepare(pub.circuit, key, request, context.cache)
        circuit = prepared.circuit
        lowered_key = f"{request.options.optimization_level}:{key}"
        values, names = _flat_bindings(pub)
        table = None
        registers: list[tuple[str, list[int]]] = []
        if prepared.method != STATEVECTOR:
            plans.append(_routed_plan(request.program, pub, prepared, values, names, dtype, rng))
            continue
        with engine_errors(request.job_id, index):
            if request.program == "estimator":
                lowered = engine_pubs.cached_lowering(circuit, names, context.cache, lowered_key)
                table = engine_pubs.cached_term_table(pub, prepared, context.cache, lowered_key)
            else:
                _, unitary, registers = engine_pubs.sampler_setup(circuit, context.cache, lowered_key)
                lowered = engine_pubs.cached_lowering(unitary, names, context.cache, ("unitary", lowered_key))
        size = chunk_bindings or chunk_size(lowered.num_qubits, len(lowered.ops), seconds=chunk_seconds)
        plans.append(
            PubPlan(
                pub=pub,
                program=request.program,
                lowered=lowered,
                values=values,
                dtype=dtype,
                chunk_bindings=max(1, size),
                table=table,
                registers=registers,
                rng=rng,
                simulator_metadata=prepared.metadata(),
            )
        )
    return plans


def _routed_plan(
    program: str, pub: Any, prepared: Any, values: np.ndarray, names: list[str], dtype: str, rng: Any
) -> PubPlan:
    """A PUB on the stabilizer or dynamic route: one chunk with everything it needs."""
    observables = None
    if program == "estimator":
        observables = prepared.pub_observables(pub)
    return PubPlan(
        pub=pub,
        program=program,
        lowered=None,
        values=values,
        dtype=dtype,
        chunk_bindings=max(1, int(values.shape[0])),
        registers=prepared.registers() if program == "sampler" else [],
        rng=rng,
        simulator_metadata=prepared.metadata(),
        routed=RoutedPub(prepared.method, prepared.circuit, names, observables),
    )


def total_chunks(plans: list[PubPlan]) -> int:
    """How many chunks the plans make."""
    return sum(math.ceil(plan.num_bindings / plan.chunk_bindings) for plan in plans)


def warm(dtype: str, tiers: Iterable[str] = TIERS) -> None:
    """Compile or load the kernels of ``tiers`` (default: every tier, as a Dask worker's warm-up
    plugin wants before its first chunk) for ``dtype`` in this process, under the kernel lock."""
    from ...engine import warmup

    with kernel_lock:
        warmup(dtype, tiers)
