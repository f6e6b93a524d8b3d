"""Sweeps on a Dask cluster (``pip install 'aqrt[dask]'``).

Give a local service a :class:`DaskExecutor` on a Dask client or scheduler address::

    async with Client("tcp://127.0.0.1:8786", asynchronous=True) as client:
        async with Session(service=LocalService(executor=DaskExecutor(client))) as session:
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

from .cluster import LocalProcessCluster
from .executor import DaskExecutor
from .jobs import ClusterJobs

__all__ = ["ClusterJobs", "DaskExecutor", "LocalProcessCluster"]
