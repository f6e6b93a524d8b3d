"""The Dask side of :mod:`aqrt.distributed` (imported only when a job runs on a cluster)."""

from __future__ import annotations

import asyncio
import platform
import uuid
from typing import Any

import anyio
from distributed import Client, KilledWorker, WorkerPlugin, as_completed

from .._concurrency import run_in_worker
from ..backends.base import ExecutionContext
from ..backends.local import chunks
from ..backends.local.runner import LocalJobRunner
from ..job import JobRequest

__all__ = ["DaskCluster", "connect", "open_client"]

# A client's handshake reports the host's processor, which platform finds by running `uname -p`:
# a blocking subprocess on the loop the first time. Find it now (this module is imported off
# the loop); platform caches it.
_ = platform.uname().processor

_EXTRA_ATTEMPTS = 3  # resubmissions of a chunk after Dask itself gave up on it (KilledWorker)


class AqrtWarmup(WorkerPlugin):
    """Compiles (or loads from numba's on-disk cache) aqrt's kernels once per worker process,
    off the worker's event loop, as each worker joins (replacements too)."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    async def setup(self, worker: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, chunks.warm, self.dtype)


async def open_client(target: Any) -> tuple[Client, bool]:
    """A client on ``target`` (an asynchronous ``Client``, or a scheduler address: a client is
    opened) and whether it was opened here (and is to be closed by whoever asked)."""
    if isinstance(target, str):
        return await Client(target, asynchronous=True), True
    if not isinstance(target, Client):
        raise TypeError(f"expected a distributed.Client or a scheduler address, got {type(target).__name__}")
    if not target.asynchronous:
        raise TypeError("the Dask client must be made with asynchronous=True on the running event loop")
    return target, False


async def connect(target: Any) -> DaskCluster:
    """A :class:`DaskCluster` on ``target``: an asynchronous ``Client`` or a scheduler address."""
    client, owned = await open_client(target)
    return DaskCluster(client, owned=owned)


class DaskCluster:
    """Submits a job's chunks to one client and puts their results back together."""

    def __init__(self, client: Client, *, owned: bool) -> None:
        self.client = client
        self._owned = owned
        self._warmed: set[str] = set()

    async def aclose(self) -> None:
        if self._owned:
            await self.client.close()

    async def _warm_workers(self, dtype: str) -> None:
        if dtype not in self._warmed:
            await self.client.register_plugin(AqrtWarmup(dtype), name=f"aqrt-warmup-{dtype}")
            self._warmed.add(dtype)

    async def execute(self, runner: LocalJobRunner, request: JobRequest, context: ExecutionContext) -> Any:
        plans = await run_in_worker(lambda: runner.plan(request, context), context.cancel_requested)
        await self._warm_workers(runner.dtype)
        client = self.client
        token = uuid.uuid4().hex[:8]
        parts: list[list[Any]] = [[None] * len(plan.bounds()) for plan in plans]
        pending: dict[Any, tuple[int, int, chunks.ChunkTask, int]] = {}

        def submit(p: int, c: int, task: chunks.ChunkTask, attempt: int) -> Any:
            key = f"aqrt-chunk-{request.job_id}-{token}-{p}-{c}-{attempt}"
            future = client.submit(chunks.run_chunk, task, key=key, pure=False)
            pending[future] = (p, c, task, attempt)
            return future

        try:
            for p, plan in enumerate(plans):
                for c, (start, stop) in enumerate(plan.bounds()):
                    submit(p, c, plan.task(start, stop), 0)
            finished = as_completed(list(pending))
            async for future in finished:
                p, c, task, attempt = pending.pop(future)
                try:
                    part = await future
                except KilledWorker:
                    if attempt >= _EXTRA_ATTEMPTS:
                        raise
                    finished.add(submit(p, c, task, attempt + 1))
                    continue
                finally:
                    future.release()
                parts[p][c] = part
                if context.progress is not None:
                    context.progress.advance(task.num_bindings)
        finally:
            if pending:  # cancelled or failed: no chunk of this job may keep running
                with anyio.CancelScope(shield=True):
                    await client.cancel(list(pending), force=True)
                pending.clear()
        results = [plan.finish(parts[p]) for p, plan in enumerate(plans)]
        result = runner.assemble(request, results)
        scheduler = client.scheduler
        address = scheduler.address if scheduler is not None else None
        result.metadata["executor"] = {"dask": address, "chunks": chunks.total_chunks(plans)}
        return result
