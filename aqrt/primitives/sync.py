"""Synchronous Qiskit ``BaseEstimatorV2`` / ``BaseSamplerV2`` over the local engine.

For code that expects Qiskit's primitive interface (``job = estimator.run(pubs);
job.result()``) and no event loop. The work runs on the same single engine worker as the async
primitives, so both can be used in one process. ``run()`` returns an :class:`EngineJob`, a
Qiskit ``BasePrimitiveJob`` on that worker's queue (Qiskit's ``PrimitiveJob`` starts a thread
of its own per job, which would then only wait for the worker).

Example:
    >>> from aqrt.primitives import EngineEstimator
    >>> result = EngineEstimator().run([(circuit, observable)]).result()   # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import numpy as np
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob
from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.providers import JobStatus
from qiskit.providers.jobstatus import JOB_FINAL_STATES

from .._concurrency import CancelFlag, engine_executor
from ..backends.base import NOT_INLINE, ExecutionContext
from ..backends.local import LocalBackend, LocalService
from ..backends.local.warmup import engine_is_warm, warm_engine
from ..job import JobRequest, Program, new_job_id
from ..options import Options, effective_precision, effective_shots
from ._base import primitive_options
from ._pubs import coerce_estimator_pubs, coerce_sampler_pubs

__all__ = ["EngineEstimator", "EngineJob", "EngineSampler"]


class EngineJob(BasePrimitiveJob[PrimitiveResult[Any], JobStatus]):
    """A job of :class:`EngineEstimator` / :class:`EngineSampler`: Qiskit's ``BasePrimitiveJob``
    (``result()``, ``status()``, ``cancel()``, ...) over the job's place on the engine worker.

    As Qiskit's ``PrimitiveJob`` but for ``status()`` of a job still waiting for the worker
    behind others: ``QUEUED`` (``PrimitiveJob`` runs each job on a thread of its own at once
    and so never waits; a pending future would read as ``ERROR`` there). ``cancel()`` stops a
    queued job; a running one finishes. A tiny job is done by the time ``run()`` returns: it
    ran on the calling thread, as the async primitives run one on the event loop.
    """

    def __init__(self, future: concurrent.futures.Future[PrimitiveResult[Any]]) -> None:
        super().__init__(str(uuid.uuid4()))
        self._future = future

    def result(self) -> PrimitiveResult[Any]:
        """Wait for and return the job's ``PrimitiveResult`` (raises what the job raised)."""
        return self._future.result()

    def status(self) -> JobStatus:
        future = self._future
        if future.running():
            return JobStatus.RUNNING
        if future.cancelled():
            return JobStatus.CANCELLED
        if not future.done():
            return JobStatus.QUEUED
        return JobStatus.DONE if future.exception() is None else JobStatus.ERROR

    def done(self) -> bool:
        return self.status() is JobStatus.DONE

    def running(self) -> bool:
        return self.status() is JobStatus.RUNNING

    def cancelled(self) -> bool:
        return self.status() is JobStatus.CANCELLED

    def in_final_state(self) -> bool:
        return self.status() in JOB_FINAL_STATES

    def cancel(self) -> bool:
        """Cancel the job if it has not started; returns whether it was cancelled."""
        return self._future.cancel()

    def __getstate__(self) -> dict[str, Any]:
        # As PrimitiveJob pickles: once finished, its outcome in place of the future.
        try:
            outcome: tuple[str, Any] = ("result", self.result())
        except concurrent.futures.CancelledError:
            outcome = ("cancelled", None)
        except Exception as error:
            outcome = ("error", error)
        state = self.__dict__.copy()
        state["_future"] = outcome
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        kind, value = state.pop("_future")
        self.__dict__.update(state)
        self._future = concurrent.futures.Future()
        if kind == "result":
            self._future.set_result(value)
        elif kind == "error":
            self._future.set_exception(value)
        else:
            self._future.cancel()


def _settled(outcome: Callable[[], PrimitiveResult[Any]]) -> concurrent.futures.Future[PrimitiveResult[Any]]:
    """A future already holding ``outcome()``'s result, or the exception it raised."""
    future: concurrent.futures.Future[PrimitiveResult[Any]] = concurrent.futures.Future()
    try:
        future.set_result(outcome())
    except Exception as error:
        future.set_exception(error)
    return future


class _EngineRunner:
    """Shared by both adapters: options, backend, a cache across calls, and the worker hop."""

    _program: Program

    def __init__(
        self,
        options: Options | Mapping[str, Any] | None,
        seed: int | np.random.Generator | None,
        engine: str,
        **defaults: Any,
    ) -> None:
        own = primitive_options(self._program, options)
        if seed is not None and not isinstance(seed, np.random.Generator):
            own.seed = seed
        own.update(**defaults)
        self._seed = seed
        self._options = own
        self._backend: LocalBackend = LocalService(engine=engine).backend()
        self._cache: dict[Any, Any] = {}
        self._cache_lock = threading.Lock()

    @property
    def options(self) -> Options:
        """The options (changes apply to later ``run()`` calls; each run takes a snapshot)."""
        return self._options

    @property
    def seed(self) -> int | np.random.Generator | None:
        """The seed or Generator given at construction (a Generator is kept as given)."""
        return self._seed

    def _submit(
        self,
        pubs: list[Any],
        finish: Callable[[PrimitiveResult[Any]], PrimitiveResult[Any]] | None = None,
        *,
        draws: bool = True,
    ) -> EngineJob:
        """Validate, then run each PUB as its own request; ``draws=False``: the engine draws
        nothing (exact values), so no seed is taken from a Generator."""
        for index, pub in enumerate(pubs):
            self._backend.validate_pub(self._program, pub, index)
        options = self._options.snapshot()
        seeds = self._pub_seeds(len(pubs), options) if draws else [None] * len(pubs)
        requests = [
            JobRequest(
                new_job_id(),
                self._program,
                (pub,),
                options if seed == options.seed else options.replace(seed=seed),
                None,
            )
            for pub, seed in zip(pubs, seeds, strict=True)
        ]
        try:
            inline = self._run_inline(requests)
        except Exception as error:  # the job failed inline, as it would on the worker: its future holds the error
            failed: concurrent.futures.Future[PrimitiveResult[Any]] = concurrent.futures.Future()
            failed.set_exception(error)
            return EngineJob(failed)
        if inline is not None and all(result is not None for result in inline):
            return EngineJob(_settled(functools.partial(self._finish, inline, finish)))
        return EngineJob(engine_executor().submit(self._execute, requests, finish, inline))

    def _run_inline(self, requests: list[JobRequest]) -> list[PubResult | None] | None:
        """Each request's PUB result where the backend runs it inline (a job of microseconds, on
        the calling thread: a trip to the worker and back would cost it more), None where it
        does not; None for them all while this primitive's cache is in use on the worker.

        Raises:
            Exception: what a request run inline raised (the job's failure).
        """
        if not self._cache_lock.acquire(blocking=False):
            return None
        try:
            context = ExecutionContext(self._cache, CancelFlag())
            results: list[PubResult | None] = []
            for request in requests:
                result = self._backend.run_inline(request, context)
                results.append(None if result is NOT_INLINE else result[0])
            return results
        finally:
            self._cache_lock.release()

    def _pub_seeds(self, count: int, options: Options) -> list[int | None]:
        """Qiskit's seeding rule: an int seed gives every PUB the same stream (identical PUBs
        draw identically), a Generator is drawn from once per PUB (so it advances, run after
        run), no seed gives each PUB fresh draws (Qiskit's: fresh entropy per PUB; aqrt's: the
        process's generator, seeded once from the OS's entropy, which draws as independently)."""
        seed = self._seed
        if isinstance(seed, np.random.Generator):
            return [int(value) for value in seed.integers(0, 2**63 - 1, size=count)]
        return [options.seed] * count

    def _execute(
        self,
        requests: list[JobRequest],
        finish: Callable[[PrimitiveResult[Any]], PrimitiveResult[Any]] | None,
        done: list[PubResult | None] | None,
    ) -> PrimitiveResult[Any]:
        """The job's work, on the engine worker: the requests not ``done`` inline already."""
        if self._backend.engine == "numba" and not engine_is_warm(self._backend.dtype):
            warm_engine(self._backend.dtype)
        results = list(done) if done is not None else [None] * len(requests)
        with self._cache_lock:
            context = ExecutionContext(self._cache, CancelFlag())
            for index, request in enumerate(requests):
                if results[index] is None:
                    results[index] = self._backend.runner.run(request, context)[0]
        return self._finish(results, finish)

    @staticmethod
    def _finish(
        results: list[PubResult | None], finish: Callable[[PrimitiveResult[Any]], PrimitiveResult[Any]] | None
    ) -> PrimitiveResult[Any]:
        """The job's ``PrimitiveResult`` from its PUBs' results (every one made), as Qiskit's
        primitives shape it."""
        pub_results = cast(list[PubResult], results)
        for result in pub_results:
            result.metadata.pop("simulator_metadata", None)  # Qiskit's PUB metadata has no such key
        merged = PrimitiveResult(pub_results, metadata={"version": 2})
        return finish(merged) if finish is not None else merged


class EngineEstimator(_EngineRunner, BaseEstimatorV2):
    """Qiskit ``BaseEstimatorV2`` on aqrt's local engine, synchronous.

    Args:
        default_precision: precision for PUBs without their own (0 = exact).
        seed: seed (or Generator to draw one from) for precision noise.
        options: further options (:class:`~aqrt.Options`, the program's IBM class or a dict).
        engine: ``"numba"`` (default) or ``"reference"``.
    """

    _program = "estimator"

    def __init__(
        self,
        *,
        default_precision: float = 0.0,
        seed: int | np.random.Generator | None = None,
        options: Options | Mapping[str, Any] | None = None,
        engine: str = "numba",
    ) -> None:
        super().__init__(options, seed, engine, default_precision=default_precision)

    @property
    def default_precision(self) -> float:
        """Precision for PUBs without their own."""
        return effective_precision(self._options)

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> EngineJob:
        if precision is None:
            precision = effective_precision(self._options)
        coerced = coerce_estimator_pubs(pubs, precision)
        exact = [
            EstimatorPub(pub.circuit, pub.observables, pub.parameter_values, 0.0, validate=False) for pub in coerced
        ]
        precisions = [float(pub.precision or 0.0) for pub in coerced]
        return self._submit(exact, lambda result: self._add_noise(result, precisions), draws=False)

    def _add_noise(self, result: PrimitiveResult[Any], precisions: list[float]) -> PrimitiveResult[Any]:
        """Precision noise exactly as ``StatevectorEstimator`` draws it: per PUB a generator
        ``default_rng(seed)`` (an int seed repeats, a Generator advances), one normal draw per value;
        ``stds`` are zeros, as Qiskit reports them (the async primitives report the precision)."""
        noisy = []
        for pub_result, precision in zip(result, precisions, strict=True):
            if precision <= 0 and not pub_result.data.stds.any():
                noisy.append(pub_result)  # exact: the engine's zeros and target_precision 0.0 already
                continue
            evs = pub_result.data.evs
            if precision > 0:
                rng = np.random.default_rng(self._seed)
                evs = np.asarray(rng.normal(evs, precision), dtype=np.float64)
            shape = pub_result.data.shape
            data = DataBin(evs=evs, stds=np.zeros(shape, dtype=np.float64), shape=shape)
            noisy.append(PubResult(data, metadata={**pub_result.metadata, "target_precision": precision}))
        return PrimitiveResult(noisy, metadata=result.metadata)


class EngineSampler(_EngineRunner, BaseSamplerV2):
    """Qiskit ``BaseSamplerV2`` on aqrt's local engine, synchronous.

    Args:
        default_shots: shots for PUBs without their own.
        seed: seed (or Generator to draw one from) for the shots.
        options: further options (:class:`~aqrt.Options`, the program's IBM class or a dict).
        engine: ``"numba"`` (default) or ``"reference"``.
    """

    _program = "sampler"

    def __init__(
        self,
        *,
        default_shots: int = 1024,
        seed: int | np.random.Generator | None = None,
        options: Options | Mapping[str, Any] | None = None,
        engine: str = "numba",
    ) -> None:
        super().__init__(options, seed, engine, default_shots=default_shots)

    @property
    def default_shots(self) -> int:
        """Shots for PUBs without their own."""
        return effective_shots(self._options)

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> EngineJob:
        if shots is None:
            shots = effective_shots(self._options)
        return self._submit(coerce_sampler_pubs(pubs, shots))
