"""Whole jobs on a Dask cluster: :class:`ClusterJobs` (``pip install 'aqrt[dask]'``).

Where :class:`~.executor.DaskExecutor` cuts one large sweep into chunks of bindings,
:class:`ClusterJobs` sends each job, whole, to one worker: noisy jobs (trajectories), dynamic
circuits and ``executor`` programs included, so that many jobs (a team's, behind
``aqrt serve --dask``) spread over the cluster's workers while the process that holds the
runtime (the server's event loop) stays free. Each job travels with its backend's
:class:`~aqrt.backends.local.recipes.BackendRecipe`; a worker builds the backend once (a
device's target and noise model too) and keeps the session caches of the sessions it served
last.

Results equal the in-process ones: seeded samples and noise bit for bit, exact values to the
last bits. A job whose worker dies is run again from the start on another worker (Dask
reschedules it; after Dask gives up, up to three more submissions), and the job's one result is
what the caller gets, once. Cancelling the awaiting task (``job.cancel()``, a
``max_execution_time``) cancels the Dask task, which the engine on the worker sees at its next
check, as on the engine thread.

Jobs tiny enough to run inline, and jobs of backends without a recipe, stay in this process.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._concurrency import run_in_worker
from ..backends.base import ExecutionContext
from ..backends.local.cost import INLINE_BUDGET, inline_cost
from ..backends.local.executors import ExecutedBackend
from ..job import JobRequest
from .executor import is_dask_client

__all__ = ["ClusterJobs"]


class ClusterJobs:
    """A :class:`~aqrt.backends.local.JobExecutor` that runs whole jobs of a local backend on a
    Dask cluster, one job per worker at a time; see :mod:`aqrt.distributed.jobs`.

    Args:
        client_or_address: a ``distributed.Client`` made with ``asynchronous=True`` on the
            running loop, or a scheduler address (a client is then opened on first use and
            closed by :meth:`aclose`).

    Raises:
        TypeError: neither a client nor an address.
    """

    def __init__(self, client_or_address: Any) -> None:
        if not isinstance(client_or_address, str) and not is_dask_client(client_or_address):
            raise TypeError(
                f"ClusterJobs takes a distributed.Client or a scheduler address, got {type(client_or_address).__name__}"
            )
        self._target = client_or_address
        self._impl: Any = None

    def takes(self, backend: ExecutedBackend, request: JobRequest) -> bool:
        """Every job another process can run (its backend has a recipe) except the tiny
        noiseless ones, which cost less here than a trip to a worker."""
        if backend.recipe is None:
            return False
        if request.program == "executor" or backend.runner.may_be_noisy(request):
            return True
        return inline_cost(request.pubs) > INLINE_BUDGET

    async def _cluster(self) -> Any:
        if self._impl is None:
            # Importing distributed reads many files: do it off the loop.
            module = await run_in_worker(lambda: importlib.import_module("aqrt.distributed._dask_jobs"))
            self._impl = await module.connect(self._target)
        return self._impl

    async def execute(self, backend: ExecutedBackend, request: JobRequest, context: ExecutionContext) -> Any:
        """Run ``request`` on a worker and return its result."""
        recipe = backend.recipe
        if recipe is None:  # takes() said no: the caller ran it elsewhere
            raise ValueError(f"backend {backend.name!r} has no recipe: another process cannot make it")
        impl = await self._cluster()
        return await impl.execute(recipe, request, context)

    async def workers(self) -> int:
        """How many workers the cluster has now (opens the client if needed)."""
        impl = await self._cluster()
        return int(await impl.workers())

    async def aclose(self) -> None:
        """Close the client if it was opened here from an address."""
        if self._impl is not None:
            impl, self._impl = self._impl, None
            await impl.aclose()
