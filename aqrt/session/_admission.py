"""What a session knows about the jobs it has admitted: the ``max_pending`` bound and its
reservations, the ``as_completed`` readers, and the bookkeeping behind ``statistics()``."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import anyio

from ..errors import InvalidOptionsError, SessionFullError
from ..job import Job, JobStatus

# Finished jobs a session may hold before it counts and drops them. Few: a finished job (and the
# result it holds) kept past a few thousand allocations reaches the garbage collector's oldest
# generation, and a session of small jobs that kept 1024 of them set off a full collection (0.1 s
# with Qiskit and numba loaded) every ~10k jobs: 12 us a job, against 0 for 64.
_PRUNE_MIN = 64


class Admission:
    """The jobs admitted to one session, and how many may be unfinished at once.

    Args:
        session_id: for error messages.
        max_pending: at most this many unfinished jobs; None means no bound.
        on_full: ``"wait"`` or ``"error"``: what :meth:`reserve` does when the session is full.

    Raises:
        InvalidOptionsError: ``max_pending`` or ``on_full`` is not one of the accepted values.
    """

    def __init__(self, session_id: str, max_pending: int | None, on_full: str) -> None:
        if max_pending is not None and (
            isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1
        ):
            raise InvalidOptionsError(f"max_pending must be an int >= 1 or None, got {max_pending!r}")
        if on_full not in ("wait", "error"):
            raise InvalidOptionsError(f"on_full must be 'wait' or 'error', got {on_full!r}")
        self._session_id = session_id
        self.max_pending = max_pending
        self._on_full = on_full
        # With max_pending or an as_completed() reader every job reports its end (a callback
        # per job); otherwise none does, so plain jobs pay nothing for this.
        self._track_each_job = max_pending is not None
        self._slots: anyio.Semaphore | None = None  # made on first use, on the loop
        self._reserved = 0  # slots taken by reserve() for the submission that follows it
        self._listeners: list[_Completions] = []
        self._jobs: list[Job] = []
        # Finished jobs are dropped from _jobs now and then (amortised O(1) per job) and only
        # counted, so a long-lived session does not keep every result it ever produced.
        self._prune_at = _PRUNE_MIN
        self._pruned_counts: collections.Counter[JobStatus] = collections.Counter()
        self._pruned_usage = 0.0
        self._pruned_total = 0

    @property
    def jobs(self) -> list[Job]:
        """The admitted jobs not yet pruned (every unfinished one among them)."""
        return self._jobs

    # -- admitting jobs (synchronously, inside run()) ---------------------------------------------

    def admit(self, job: Job) -> None:
        """Count ``job`` in, taking a slot if the session is bounded.

        Raises:
            SessionFullError: the session is bounded, full, and no slot was reserved.
        """
        if self.max_pending is not None:
            self._take_slot(self.max_pending)
        if self._track_each_job:  # bounded or watched: every job reports its end
            job.add_done_callback(self._on_job_final)
        self._jobs.append(job)
        if len(self._jobs) > self._prune_at:
            self._prune()

    def _on_job_final(self, job: Job) -> None:
        if self._slots is not None:
            self._slots.release()
        for listener in self._listeners:
            listener.push(job)

    def _prune(self) -> None:
        """Count the finished jobs of _jobs and drop them."""
        live = []
        for job in self._jobs:
            if job.done():
                self._pruned_counts[job.status()] += 1
                self._pruned_usage += job._usage_seconds()
            else:
                live.append(job)
        self._pruned_total += len(self._jobs) - len(live)
        self._jobs = live
        self._prune_at = max(_PRUNE_MIN, 2 * len(live))

    # -- backpressure -------------------------------------------------------------------------------

    def _semaphore(self, max_pending: int) -> anyio.Semaphore:
        if self._slots is None:
            self._slots = anyio.Semaphore(max_pending)
        return self._slots

    def _take_slot(self, max_pending: int) -> None:
        slots = self._semaphore(max_pending)
        if self._reserved:  # taken by reserve() just before this submission
            self._reserved -= 1
            return
        try:
            slots.acquire_nowait()
        except anyio.WouldBlock:
            raise SessionFullError(
                f"session {self._session_id} already has max_pending={max_pending} unfinished jobs; "
                "use `await primitive.submit(...)` to wait for room"
            ) from None

    async def reserve(self) -> None:
        """Wait for room for one more job and hold it for the next submission.

        Raises:
            SessionFullError: the session is full and ``on_full="error"``.
        """
        if self.max_pending is None:
            return
        slots = self._semaphore(self.max_pending)
        if self._on_full == "error":
            try:
                slots.acquire_nowait()
            except anyio.WouldBlock:
                raise SessionFullError(
                    f"session {self._session_id} already has max_pending={self.max_pending} unfinished jobs"
                ) from None
        else:
            await slots.acquire()
        self._reserved += 1

    def unreserve(self) -> None:
        """Give back a reservation whose submission failed."""
        if self._reserved and self._slots is not None:
            self._reserved -= 1
            self._slots.release()

    def reservation(self) -> _Reservation | _NoReservation:
        """``async with`` it around a submission: it waits for room first, and gives the room
        back if the submission raises. Free for an unbounded session."""
        if self.max_pending is None:
            return NO_RESERVATION
        return _Reservation(self)

    # -- consuming results as they complete -----------------------------------------------------

    async def as_completed(self, settled: Callable[[], bool]) -> AsyncIterator[Job]:
        """Yield admitted jobs as they finish, until ``settled()`` says none is unfinished and
        none can come; the scheduler calls :meth:`wake_listeners` when that may have changed."""
        listener = _Completions()
        self._listeners.append(listener)
        if not self._track_each_job:
            self._track_each_job = True
            for job in self._jobs:
                if not job.done():
                    job.add_done_callback(self._on_job_final)
        try:
            while True:
                while listener.jobs:
                    yield listener.jobs.popleft()
                if settled():
                    return
                await listener.wait()
        finally:
            self._listeners.remove(listener)

    def wake_listeners(self) -> None:
        """Let every ``as_completed`` reader look at the session again (it stopped)."""
        for listener in self._listeners:
            listener.wake()

    # -- introspection ----------------------------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """Job counts by status and the time jobs spent running (seconds, loop clock)."""
        counts = self._pruned_counts + collections.Counter(job.status() for job in self._jobs)
        usage = self._pruned_usage + sum(job._usage_seconds() for job in self._jobs)
        return {
            "total": self._pruned_total + len(self._jobs),
            "queued": counts[JobStatus.QUEUED],
            "running": counts[JobStatus.RUNNING],
            "done": counts[JobStatus.DONE],
            "error": counts[JobStatus.ERROR],
            "cancelled": counts[JobStatus.CANCELLED],
            "finished": counts[JobStatus.DONE] + counts[JobStatus.ERROR] + counts[JobStatus.CANCELLED],
            "usage_seconds": usage,
        }


class _Reservation:
    """Room for one job, held from ``__aenter__`` to the submission inside the block."""

    __slots__ = ("_admission",)

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    async def __aenter__(self) -> None:
        await self._admission.reserve()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._admission.unreserve()


class _NoReservation:
    """The reservation of an unbounded session (or of job mode): nothing to wait for."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        return None


NO_RESERVATION = _NoReservation()


class _Completions:
    """Jobs finished since an ``as_completed`` iterator started, and a way to wake it."""

    def __init__(self) -> None:
        self.jobs: collections.deque[Job] = collections.deque()
        self._event = anyio.Event()

    def push(self, job: Job) -> None:
        self.jobs.append(job)
        self._event.set()

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()
