"""Retention: finished jobs are deleted once older than ``ServerConfig.job_retention``.

A sweep deletes every job that finished (``Completed``, ``Failed``, ``Cancelled``) longer ago
than the retention, with its params, result and idempotency key, and every session closed
longer ago that no job refers to any more; then the store gives the freed space back to the
file system (:meth:`aqrt.server.store.Store.delete_finished_before`). A job not finished is
never deleted, however old. Sweeps run once when the server starts and then every
:func:`sweep_interval`; "now" is the config's wall clock (``ServerConfig.clock``), so tests
can move it. ``job_retention=0`` keeps jobs until their users delete them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from .job_lifecycle import JobLifecycle
from .store import Store

__all__ = ["MAX_SWEEP_INTERVAL", "RetentionSweeper", "sweep_interval"]

logger = logging.getLogger("aqrt.server")

#: The longest wait between two sweeps, seconds.
MAX_SWEEP_INTERVAL = 3600.0
# The shortest (a tiny retention, as in tests, must not make the sweep spin).
_MIN_SWEEP_INTERVAL = 1.0


def sweep_interval(retention: float) -> float:
    """Seconds between sweeps: a tenth of the retention (a job outlives it by at most 10 %),
    at most :data:`MAX_SWEEP_INTERVAL`."""
    return max(_MIN_SWEEP_INTERVAL, min(retention / 10, MAX_SWEEP_INTERVAL))


class RetentionSweeper:
    """Deletes finished jobs older than ``retention`` seconds (0: none), by ``clock`` (wall
    time, seconds since the epoch).

    :meth:`start` runs a sweep at once and then every :func:`sweep_interval`; :meth:`sweep`
    runs one now.
    """

    def __init__(self, store: Store, jobs: JobLifecycle, *, retention: float, clock: Callable[[], float]) -> None:
        self._store = store
        self._jobs = jobs
        self.retention = retention
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> None:
        """Start the periodic sweep (nothing when the retention is 0)."""
        if self.retention > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="aqrt-serve-retention")

    async def stop(self) -> None:
        """Stop the periodic sweep (a sweep under way stops between its transactions)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def cutoff(self) -> str:
        """The API time before which finished jobs are deleted now."""
        moment = dt.datetime.fromtimestamp(self._clock() - self.retention, dt.UTC)
        return moment.isoformat(timespec="microseconds")

    async def sweep(self) -> list[str]:
        """Delete the jobs (and sessions) past the retention now; returns the deleted jobs' ids
        (none when the retention is 0)."""
        if self.retention <= 0:
            return []
        async with self._lock:  # one sweep at a time
            deleted = await self._store.delete_finished_before(self.cutoff())
        self._jobs.note_deleted(deleted)
        if deleted:
            logger.info("deleted %d jobs finished more than %g s ago", len(deleted), self.retention)
        return deleted

    async def _run(self) -> None:
        interval = sweep_interval(self.retention)
        while True:
            try:
                await self.sweep()
            except Exception:  # a failed sweep is tried again at the next one
                logger.exception("the retention sweep failed")
            await asyncio.sleep(interval)
