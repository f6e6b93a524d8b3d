"""One poller per service: a single task watches every pending job.

Each watched job is polled (``GET /jobs/{id}``) no more often than its interval: IBM's pacing is
0.1 s for jobs in a session and 0.5 s otherwise, and these are also the floors. The loop sleeps
until the earliest poll is due (event loop clock), starts the due polls, and ends when nothing is
watched; the next watch starts it again. Waiters get the job's final JSON, and may ask to be
told (``on_start``) at the first poll that sees the job Running or final. What counts as Running
or final is :class:`aqrt.wire.runtime_api.JobState`'s reading of the reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from ...wire.runtime_api import JobState
from .rest import RuntimeAPI

__all__ = ["JOB_POLL_INTERVAL", "SESSION_POLL_INTERVAL", "JobPoller", "poll_interval"]

SESSION_POLL_INTERVAL = 0.1
JOB_POLL_INTERVAL = 0.5
_SLACK = 1e-6  # a poll due within this many seconds is due now (clocks are floats; no busy spin)
_FAILED_POLLS_TOLERATED = 3  # consecutive failed polls (each already retried) before giving up


def poll_interval(in_session: bool) -> float:
    """IBM's pacing of ``GET /jobs/{id}``: faster for a job in a session."""
    return SESSION_POLL_INTERVAL if in_session else JOB_POLL_INTERVAL


@dataclasses.dataclass(eq=False)
class _Watch:
    job_id: str
    interval: float
    next_due: float
    waiters: list[asyncio.Future[dict[str, Any]]]
    in_flight: bool = False
    failures: int = 0
    started: bool = False  # a poll has seen the job Running or final
    on_start: dict[asyncio.Future[dict[str, Any]], Callable[[], None]] = dataclasses.field(default_factory=dict)


class JobPoller:
    """Watches jobs until they are final; see the module docstring."""

    def __init__(self, api: RuntimeAPI) -> None:
        self._api = api
        self._watches: dict[str, _Watch] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._poll_tasks: set[asyncio.Task[None]] = set()
        self.loops_started = 0  # how many times the poller task was started (observability)
        self.polls = 0

    @property
    def watching(self) -> int:
        """How many jobs are being watched."""
        return len(self._watches)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait_final(
        self, job_id: str, *, interval: float, on_start: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """The job's reply once its state is Completed, Failed or Cancelled.

        ``interval`` is raised to the 0.1 s floor. ``on_start()`` is called once, at the first
        poll that sees the job Running (or already final). Cancelling the caller stops watching
        (for it).

        Raises:
            RuntimeRequestError: polling kept failing (three polls in a row, each retried).
        """
        loop = asyncio.get_running_loop()
        interval = max(SESSION_POLL_INTERVAL, interval)
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        watch = self._watches.get(job_id)
        if watch is None:
            watch = _Watch(job_id, interval, loop.time() + interval, [])
            self._watches[job_id] = watch
        else:
            watch.interval = min(watch.interval, interval)
        watch.waiters.append(future)
        if on_start is not None:
            if watch.started:
                on_start()
            else:
                watch.on_start[future] = on_start
        self._ensure_running()
        try:
            return await future
        finally:
            if not future.done() or future.cancelled():
                self._drop_waiter(watch, future)

    def _drop_waiter(self, watch: _Watch, future: asyncio.Future[dict[str, Any]]) -> None:
        if future in watch.waiters:
            watch.waiters.remove(future)
        watch.on_start.pop(future, None)
        if not watch.waiters and self._watches.get(watch.job_id) is watch:
            del self._watches[watch.job_id]

    def _ensure_running(self) -> None:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._wakeup.set()
        if not self.running:
            self.loops_started += 1
            self._task = asyncio.get_running_loop().create_task(self._run(), name="aqrt ibm job poller")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while self._watches:
            self._wakeup.clear()
            now = loop.time()
            next_due = math.inf
            for watch in list(self._watches.values()):
                if watch.in_flight:
                    continue
                if watch.next_due <= now + _SLACK:
                    watch.in_flight = True
                    watch.next_due = now + watch.interval  # pacing counts from the poll's start
                    task = loop.create_task(self._poll(watch), name=f"aqrt poll {watch.job_id}")
                    self._poll_tasks.add(task)
                    task.add_done_callback(self._poll_tasks.discard)
                else:
                    next_due = min(next_due, watch.next_due)
            timeout = None if next_due == math.inf else max(0.0, next_due - loop.time())
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def _poll(self, watch: _Watch) -> None:
        try:
            self.polls += 1
            reply = await self._api.get_job(watch.job_id)
        except Exception as exc:  # HTTP (already retried by the transport) or a malformed reply
            watch.failures += 1
            if watch.failures >= _FAILED_POLLS_TOLERATED:
                self._settle(watch, error=exc)
        else:
            watch.failures = 0
            state = JobState.of(reply)
            if not watch.started and state.started:
                watch.started = True
                callbacks, watch.on_start = list(watch.on_start.values()), {}
                for callback in callbacks:
                    callback()
            if state.final:
                self._settle(watch, reply=reply)
        finally:
            watch.in_flight = False
            if self._wakeup is not None:
                self._wakeup.set()

    def _settle(
        self, watch: _Watch, *, reply: dict[str, Any] | None = None, error: BaseException | None = None
    ) -> None:
        if self._watches.get(watch.job_id) is watch:
            del self._watches[watch.job_id]
        for future in watch.waiters:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                assert reply is not None
                future.set_result(reply)
        watch.waiters.clear()

    async def close(self) -> None:
        """Stop polling; waiters get a ``RuntimeError``."""
        tasks = [t for t in (self._task, *self._poll_tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for watch in list(self._watches.values()):
            self._settle(watch, error=RuntimeError("the RuntimeService was closed while a job was watched"))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
