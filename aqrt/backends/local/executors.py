"""Where a local job runs: the :class:`JobExecutor` contract, and the engine worker thread.

A local backend runs tiny jobs inline on the event loop (``run_inline``) and every other job on
an executor. :class:`WorkerThread`, the default, runs it on the single engine worker thread
(numba's threading layers are not re-entrant across threads, so kernels are serialised there;
parallelism lives inside the kernels). An executor passed to ``LocalService(executor=...)``
takes the jobs it wants first: :class:`aqrt.distributed.DaskExecutor` takes noiseless jobs of
more than two chunks of work and runs their chunks on a Dask cluster;
:class:`aqrt.distributed.ClusterJobs` sends whole jobs to a cluster's workers, which make the
backend from its :attr:`~.backend.LocalBackend.recipe`. Executors depend on this package (they
drive a backend's :meth:`~.backend.LocalBackend.run_job` or its :class:`~.runner.LocalJobRunner`);
this package never imports them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..._concurrency import run_in_worker
from ...job import JobRequest
from ..base import ExecutionContext
from .recipes import BackendRecipe
from .runner import LocalJobRunner

__all__ = ["ExecutedBackend", "JobExecutor", "WorkerThread"]


class ExecutedBackend(Protocol):
    """What an executor reads of the backend whose job it runs (a
    :class:`~.backend.LocalBackend`, named here structurally: the backend module imports this one)."""

    runner: LocalJobRunner

    @property
    def name(self) -> str: ...

    @property
    def recipe(self) -> BackendRecipe | None: ...

    def run_job(self, request: JobRequest, context: ExecutionContext) -> Any: ...


@runtime_checkable
class JobExecutor(Protocol):
    """Runs jobs of a local backend somewhere: a thread, a cluster."""

    def takes(self, backend: ExecutedBackend, request: JobRequest) -> bool:
        """Whether this executor should run ``request`` of ``backend`` (else the engine worker
        thread does)."""
        ...

    async def execute(self, backend: ExecutedBackend, request: JobRequest, context: ExecutionContext) -> Any:
        """Run ``request`` (with ``backend.runner``, or elsewhere from ``backend.recipe``) and
        return its result (a ``PrimitiveResult``; an ``executor`` job's ``QuantumProgramResult``);
        never block the loop."""
        ...

    async def aclose(self) -> None:
        """Release what the executor opened (a cluster client)."""
        ...


class WorkerThread:
    """The default executor: the job runs on the engine worker thread, off the event loop;
    cancelling the awaiting task sets the job's cancel flag, which the runner polls."""

    def takes(self, backend: ExecutedBackend, request: JobRequest) -> bool:
        return True

    async def execute(self, backend: ExecutedBackend, request: JobRequest, context: ExecutionContext) -> Any:
        return await run_in_worker(lambda: backend.run_job(request, context), context.cancel_requested)

    async def aclose(self) -> None:
        return None
