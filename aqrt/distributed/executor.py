"""The Dask executor of local jobs (see :mod:`aqrt.distributed`)."""

from __future__ import annotations

import importlib
import math
import sys
from typing import Any

from .._concurrency import run_in_worker
from ..backends.base import ExecutionContext
from ..backends.local.cost import TARGET_CHUNK_SECONDS, UPDATES_PER_SECOND, job_cost
from ..backends.local.executors import ExecutedBackend
from ..job import JobRequest

__all__ = ["DaskExecutor"]


class DaskExecutor:
    """A :class:`~aqrt.backends.local.JobExecutor` that runs large jobs of a local backend on a
    Dask cluster; see :mod:`aqrt.distributed`.

    Args:
        client_or_address: a ``distributed.Client`` made with ``asynchronous=True`` on the
            running loop, or a scheduler address (a client is then opened on first use and
            closed by :meth:`aclose`, which ``LocalService.aclose`` calls).

    Raises:
        TypeError: neither a client nor an address.
    """

    def __init__(self, client_or_address: Any) -> None:
        if not isinstance(client_or_address, str) and not is_dask_client(client_or_address):
            raise TypeError(
                "DaskExecutor takes a distributed.Client or a scheduler address, "
                f"got {type(client_or_address).__name__}"
            )
        self._target = client_or_address
        self._impl: Any = None

    def takes(self, backend: ExecutedBackend, request: JobRequest) -> bool:
        """More than one chunk of work of a noiseless primitive job: smaller jobs gain nothing
        from a cluster, and noisy jobs and ``executor`` programs run whole (their trajectories,
        samplex draws and items share one generator); :class:`~.jobs.ClusterJobs` sends those
        to a cluster whole."""
        runner = backend.runner
        if request.program == "executor" or runner.may_be_noisy(request):
            return False
        if runner.chunk_bindings is not None:
            return any(math.prod(pub.parameter_values.shape) > runner.chunk_bindings for pub in request.pubs)
        return job_cost(request.pubs) > 2 * TARGET_CHUNK_SECONDS * UPDATES_PER_SECOND

    async def _cluster(self) -> Any:
        if self._impl is None:
            # Importing distributed reads many files: do it off the loop.
            _dask = await run_in_worker(lambda: importlib.import_module("aqrt.distributed._dask"))
            self._impl = await _dask.connect(self._target)
        return self._impl

    async def execute(self, backend: ExecutedBackend, request: JobRequest, context: ExecutionContext) -> Any:
        """Run ``request`` on the cluster and return its ``PrimitiveResult``."""
        impl = await self._cluster()
        return await impl.execute(backend.runner, request, context)

    async def aclose(self) -> None:
        """Close the client if it was opened here from an address."""
        if self._impl is not None:
            impl, self._impl = self._impl, None
            await impl.aclose()


def is_dask_client(value: Any) -> bool:
    """Whether ``value`` is a ``distributed.Client`` (without importing distributed)."""
    # distributed is imported only when it is already loaded: a client exists only if it is.
    module = sys.modules.get("distributed")
    return module is not None and isinstance(value, module.Client)
