"""The Dask side of :class:`aqrt.distributed.ClusterJobs` (imported only when a job runs on a
cluster): whole jobs submitted one task each, and the task that runs one on a worker."""

from __future__ import annotations

import collections
import pickle
import threading
import uuid
from typing import Any

import anyio
from distributed import Client, KilledWorker, get_worker
from qiskit.primitives.containers import PrimitiveResult

from .._concurrency import CancelFlag
from ..backends.base import ExecutionContext
from ..backends.local import chunks
from ..backends.local.recipes import BackendRecipe
from ..backends.local.service import backend_from_recipe
from ..backends.local.warmup import warm_engine
from ..errors import BackendError
from ..job import JobRequest
from ._dask import open_client

__all__ = ["WholeJobs", "connect", "run_whole_job"]

_EXTRA_ATTEMPTS = 3  # resubmissions of a job after Dask itself gave up on it (KilledWorker)
_KEPT_SESSION_CACHES = 8  # sessions whose caches (transpiled, lowered circuits) a worker keeps


async def connect(target: Any) -> WholeJobs:
    """:class:`WholeJobs` on ``target``: an asynchronous ``Client`` or a scheduler address."""
    client, owned = await open_client(target)
    return WholeJobs(client, owned=owned)


class WholeJobs:
    """Submits whole jobs to one client, one task each, and waits for their results."""

    def __init__(self, client: Client, *, owned: bool) -> None:
        self.client = client
        self._owned = owned

    async def aclose(self) -> None:
        if self._owned:
            await self.client.close()

    async def workers(self) -> int:
        scheduler = self.client.scheduler
        if scheduler is None:
            raise RuntimeError("the Dask client is not connected")
        info = await scheduler.identity()
        return len(info["workers"])

    async def execute(self, recipe: BackendRecipe, request: JobRequest, context: ExecutionContext) -> Any:
        client = self.client
        token = uuid.uuid4().hex[:8]
        future: Any = None
        finished = False
        # Pickled here, off the loop (a job's circuits can take a large fraction of a second),
        # so Dask only moves bytes.
        payload = await anyio.to_thread.run_sync(pickle.dumps, (recipe, request))
        try:
            for attempt in range(_EXTRA_ATTEMPTS + 1):
                key = f"aqrt-job-{request.job_id}-{token}-{attempt}"
                future = client.submit(run_whole_job, payload, key=key, pure=False)
                try:
                    result = await anyio.to_thread.run_sync(pickle.loads, await future)
                except KilledWorker:
                    if attempt == _EXTRA_ATTEMPTS:
                        raise
                    future.release()
                    continue
                finished = True
                if isinstance(result, PrimitiveResult):
                    scheduler = client.scheduler
                    result.metadata.setdefault("executor", {})["dask"] = scheduler.address if scheduler else None
                return result
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if future is not None:
                if not finished:  # cancelled or failed: the worker sees it at its next poll and stops
                    with anyio.CancelScope(shield=True):
                        await client.cancel([future], force=True)
                future.release()


_session_caches: collections.OrderedDict[str, dict[Any, Any]] = collections.OrderedDict()
_session_caches_lock = threading.Lock()


def _session_cache(session_id: str | None) -> dict[Any, Any]:
    """The cache of ``session_id`` on this worker (the last few sessions' are kept, as a
    session's later jobs often come back to the same worker); a fresh one in job mode."""
    if session_id is None:
        return {}
    with _session_caches_lock:
        cache = _session_caches.pop(session_id, None)
        if cache is None:
            cache = {}
        _session_caches[session_id] = cache
        while len(_session_caches) > _KEPT_SESSION_CACHES:
            _session_caches.popitem(last=False)
        return cache


class _TaskCancelled(CancelFlag):
    """Set once the running Dask task is cancelled by its client: read from the worker's own
    record of the task (a dictionary look-up whenever the engine polls, no message)."""

    __slots__ = ("_key", "_worker")

    def __init__(self) -> None:
        super().__init__()
        self._worker = get_worker()
        self._key = self._worker.get_current_task()

    def is_set(self) -> bool:
        if not self._set:
            task = self._worker.state.tasks.get(self._key)
            self._set = task is None or task.state == "cancelled"
        return self._set


def run_whole_job(payload: bytes) -> bytes:
    """Run a job on this worker (the Dask task): ``payload`` is its pickled ``(recipe,
    request)``; the backend is made from the recipe (once per process); one job at a time per
    process (numba's parallel kernels are not re-entrant across threads); stopped when its
    client cancels the task. Returns the pickled result."""
    recipe, request = pickle.loads(payload)
    backend = backend_from_recipe(recipe)
    flag = _TaskCancelled()
    with chunks.kernel_lock:
        warm_engine(backend.dtype)
        context = ExecutionContext(cache=_session_cache(request.session_id), cancel_requested=flag)
        try:
            result = backend.run_job(request, context)
        except Exception as error:
            raise _portable(error) from None
    if isinstance(result, PrimitiveResult):  # which worker ran it (an executor program's result has no such field)
        result.metadata["executor"] = {"worker": get_worker().address}
    return pickle.dumps(result)


def _portable(error: Exception) -> Exception:
    """``error`` if it survives pickling back to the caller, else a ``BackendError`` saying what
    it was (an error type whose arguments do not make it again)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return BackendError(f"{type(error).__name__}: {error}")
    return error
