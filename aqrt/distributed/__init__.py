"""Sweeps on a Dask cluster (``pip install 'aqrt[dask]'``).

Give a local backend a Dask client or scheduler address::

    async with Client("tcp://127.0.0.1:8786", asynchronous=True) as client:
        async with Session(service=LocalService(dask=client)) as session:
            result = await Estimator().run([(circuit, observable, grid)])

A job whose PUBs hold more than one chunk of work (about 50 ms per chunk; ``chunk_bindings=``
overrides) is cut into chunks of bindings, one Dask task each (unique keys, ``pure=False``),
gathered as they finish and put back in order; smaller jobs stay in-process. Results equal the
in-process ones: seeded samples and precision noise bit for bit, exact values to the last bits
(bit for bit when both sides run the same compiled kernels; ~1e-15 apart when compiled apart). Cancelling the job
cancels its tasks on the cluster; a worker that dies mid-sweep makes Dask run its chunks again
elsewhere. Workers compile (or load from numba's cache) the kernels once, when they join.

Nothing here imports Dask until a job runs on it.
"""

from __future__ import annotations

import importlib
from typing import Any

from .cluster import LocalProcessCluster

__all__ = ["DaskRunner", "LocalProcessCluster"]


class DaskRunner:
    """Runs large jobs of a local backend on a Dask cluster; see the module docstring."""

    def __init__(self, client_or_address: Any) -> None:
        if not isinstance(client_or_address, str) and not hasattr(client_or_address, "submit"):
            raise TypeError(
                f"dask= takes a distributed.Client or a scheduler address, got {type(client_or_address).__name__}"
            )
        self._target = client_or_address
        self._impl: Any = None

    async def _runner(self) -> Any:
        if self._impl is None:
            from .._concurrency import run_in_worker

            # Importing distributed reads many files: do it off the loop.
            _dask = await run_in_worker(lambda: importlib.import_module("aqrt.distributed._dask"))
            self._impl = await _dask.connect(self._target)
        return self._impl

    async def execute(self, backend: Any, request: Any, context: Any) -> Any:
        """Run ``request`` on the cluster and return its ``PrimitiveResult``."""
        impl = await self._runner()
        return await impl.execute(backend, request, context)

    async def aclose(self) -> None:
        """Close the client if it was opened here from an address."""
        if self._impl is not None:
            impl, self._impl = self._impl, None
            await impl.aclose()
