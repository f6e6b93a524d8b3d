"""Sessions and batches: a job queue, its clocks, and one supervisor task that owns both.

A :class:`Session` runs its jobs one at a time, in submission order, on one backend; a
:class:`Batch` may run several at once. Both follow IBM Quantum Runtime's rules:

- ``max_time`` counts from the moment the first job *starts running*. When it runs out the
  session expires: running jobs finish, queued jobs fail with ``SessionExpiredError``, new
  submissions are refused.
- A dedicated session with nothing queued or running for ``interactive_timeout`` seconds turns
  ``inactive``; the next job reactivates it.
- The first job fills the session's cache. If it is cancelled, every later job fails with
  ``SessionCacheError``.
- Closing refuses new jobs and waits for submitted ones; cancelling cancels them all.

Every deadline is read from the event loop clock (``loop.time()`` / ``trio.current_time()``), so tests can run
hours of session time in milliseconds under a virtual clock.

Example:
    >>> async with Session(backend="aqrt_statevector", max_time="25m") as session:  # doctest: +SKIP
    ...     result = await Estimator().run([(circuit, observable)])
"""

from __future__ import annotations

import collections
import contextvars
import enum
import math
import time
import types
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._concurrency import loop_clock, spawn_detached
from ._runner import execute_job, settle_inline
from .backends.base import Backend, ExecutionContext, RemoteSessionBackend, Service, inline_runner, remote_sessions
from .errors import (
    InvalidOptionsError,
    InvalidTimeSpecError,
    JobFailedError,
    SessionCacheError,
    SessionClosedError,
    SessionExpiredError,
    SessionFullError,
    SessionStateError,
)
from .job import Job, JobRequest, JobStatus
from .options import parse_duration

__all__ = ["Batch", "Session", "SessionState", "current_session"]

DEFAULT_INTERACTIVE_TIMEOUT = 300
_PRUNE_MIN = 1024  # finished jobs a session may hold before it counts and drops them
_RUNNER_SLICE = 0.001  # seconds of inline work a runner does before yielding to the loop

_current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("aqrt_session", default=None)


def current_session() -> Session | None:
    """The session of the innermost ``async with Session(...)`` block of this task, if any."""
    return _current_session.get()


class SessionCache(collections.OrderedDict[Any, Any]):
    """The session's cache (transpiled circuits, lowered programs, term tables), bounded so a
    long-lived session fed ever-new circuits does not grow without limit: the oldest entries go
    first and are recomputed if needed again."""

    def __init__(self, max_entries: int = 4096) -> None:
        super().__init__()
        self.max_entries = max_entries

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.max_entries:
            self.popitem(last=False)


class SessionState(enum.Enum):
    """The session's state; ``closed`` and ``expired`` are final."""

    PENDING = "pending"  # open, no job has started yet
    ACTIVE = "active"  # a job has started; the max_time clock runs
    INACTIVE = "inactive"  # the interactive timeout passed with nothing queued
    CLOSED = "closed"
    EXPIRED = "expired"


class Session:
    """A dedicated session: one backend, jobs run one at a time in submission order.

    Args:
        service: where the backend lives; ``None`` means ``LocalService()``.
        backend: a backend name or object, fixed for the session's life; ``None`` takes the
            service's default backend.
        max_time: int seconds or ``"2h 30m 40s"``; at most, and by default, the backend's
            system maximum.
        interactive_timeout: seconds (or a duration string) with nothing queued before the
            session turns inactive; 300 s by default. Only backends that allow it (local
            ones) accept a value.
        max_pending: at most this many unfinished (queued or running) jobs; ``None`` (default)
            means no bound. Past it, ``run()`` raises :class:`SessionFullError` and
            ``await primitive.submit(...)`` waits for room (or raises, with ``on_full="error"``),
            so a producer of many jobs cannot grow memory without bound.
        on_full: ``"wait"`` (default) or ``"error"``: what ``submit`` does when the session is full.

    Raises:
        InvalidTimeSpecError: ``max_time`` / ``interactive_timeout`` malformed or too large.
        BackendNotFoundError: no such backend on the service.
    """

    mode = "dedicated"
    _interactive = True

    def __init__(
        self,
        service: Service | None = None,
        backend: Backend | str | None = None,
        *,
        max_time: int | str | None = None,
        interactive_timeout: int | str | None = None,
        max_pending: int | None = None,
        on_full: str = "wait",
    ) -> None:
        # A remote service (its backend() is a coroutine) resolves the backend in __aenter__.
        self._backend: Backend | None
        self._backend, self._service = _resolve_backend(service, backend)
        self._backend_request = backend
        self._max_time_request = max_time
        self._interactive_request = interactive_timeout
        self._max_time = 0 if max_time is None else parse_duration(max_time, what="max_time")
        self._interactive_timeout: float | None = None
        self._concurrency = 1
        self._explicit_concurrency: int | None = None
        self._server_max_time = False  # a remote server runs the max_time clock (from the first job's start)
        self._remote: RemoteSessionBackend | None = None
        self._run_inline: Callable[[JobRequest, ExecutionContext], Any] | None = None
        if self._backend is not None:
            self._bind_backend(self._backend)
        self._session_id = "session-" + uuid.uuid4().hex[:20]
        self._remote_id: str | None = None  # the server's session id, for remote backends
        self._remote_closed = False
        self._state = SessionState.PENDING
        self._accepting = True
        self._queue: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._jobs: list[Job] = []
        # Finished jobs are dropped from _jobs now and then (amortised O(1) per job) and only
        # counted, so a long-lived session does not keep every result it ever produced.
        self._prune_at = _PRUNE_MIN
        self._pruned_counts: collections.Counter[JobStatus] = collections.Counter()
        self._pruned_usage = 0.0
        self._pruned_total = 0
        # With max_pending or an as_completed() reader every job reports its end (a callback
        # per job); otherwise only the first job does, so plain jobs pay nothing for this.
        self._track_each_job = max_pending is not None
        self._max_pending, self._on_full = _check_bound(max_pending, on_full)
        self._slots: anyio.Semaphore | None = None  # made on first use, on the loop
        self._reserved = 0
        self._listeners: list[_Completions] = []
        self._cache: dict[Any, Any] = SessionCache()
        self._first_job: Job | None = None
        self._first_job_cancelled = False
        self._started_at: float | None = None  # loop time the first job started
        self._idle_since: float | None = None  # loop time the queue last became empty
        self._supervisor_started = False
        self._supervisor_ready: anyio.Event | None = None
        self._supervisor_done: anyio.Event | None = None
        self._wakeup: anyio.Event | None = None
        self._runners = 0
        self._clock: Callable[[], float] | None = None
        self._entered = False
        self._context_token: contextvars.Token[Session | None] | None = None

    def _bind_backend(self, backend: Backend) -> None:
        self._backend = backend
        capabilities = backend.capabilities
        system_max = capabilities.max_session_time
        if self._max_time_request is None:
            self._max_time = system_max
        elif self._max_time > system_max:
            raise InvalidTimeSpecError(
                f"max_time={self._max_time_request!r} ({self._max_time} s) exceeds the system maximum of "
                f"backend {backend.name!r}, {system_max} s"
            )
        self._interactive_timeout = self._resolve_interactive_timeout(self._interactive_request)
        # A remote backend queues jobs on its server: it declares how many may be in flight.
        declared = capabilities.job_concurrency
        if declared and self._explicit_concurrency is None:
            self._concurrency = declared
        # Only the server knows when a queued remote job starts, so it alone expires the session.
        self._server_max_time = capabilities.enforces_max_time
        self._remote = remote_sessions(backend)
        self._run_inline = inline_runner(backend)

    def _resolve_interactive_timeout(self, value: int | str | None) -> float | None:
        if not self._interactive:
            if value is not None:
                raise InvalidTimeSpecError("a Batch has no interactive timeout; do not pass interactive_timeout")
            return None
        if value is None:
            return DEFAULT_INTERACTIVE_TIMEOUT
        assert self._backend is not None
        if not self._backend.capabilities.interactive_timeout_configurable:
            raise InvalidTimeSpecError(
                f"backend {self._backend.name!r} has a fixed interactive timeout; do not pass interactive_timeout"
            )
        return parse_duration(value, what="interactive_timeout")

    # -- properties ------------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise SessionStateError(
                f"session {self._session_id}: backend {self._backend_request!r} of a remote service is "
                "looked up when the session is entered; use `async with` (or pass a backend object)"
            )
        return self._backend

    @property
    def service(self) -> Service | None:
        return self._service

    @property
    def max_time(self) -> int:
        return self._max_time

    @property
    def interactive_timeout(self) -> float | None:
        return self._interactive_timeout

    @property
    def accepting_jobs(self) -> bool:
        self._refresh()
        return self._accepting and self._state is not SessionState.EXPIRED

    def _refresh(self) -> None:
        # Clocks are applied on every read too, so a state read at a deadline instant is exact
        # whichever of the reader and the supervisor the loop wakes first.
        if self._supervisor_started and not self._is_final():
            self._apply_clocks()

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Session:
        if self._entered:
            raise SessionStateError(f"session {self.session_id} was already entered; a session is entered once")
        if self._is_final():
            raise SessionStateError(f"session {self.session_id} is {self._state.value}; open a new one")
        if self._backend is None:
            assert self._service is not None and not isinstance(self._backend_request, Backend)
            self._bind_backend(await self._service.fetch_backend(self._backend_request))
        await self._open_remote()
        self._entered = True
        self._start_supervisor()
        assert self._supervisor_ready is not None
        await self._supervisor_ready.wait()
        self._context_token = _current_session.set(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        if self._context_token is not None:
            _current_session.reset(self._context_token)
            self._context_token = None
        if exc_type is not None:
            with anyio.CancelScope(shield=True):
                await self.cancel()
            return
        try:
            await self.close()
        except BaseException:
            # Waiting for the jobs was interrupted: nothing may outlive the block.
            with anyio.CancelScope(shield=True):
                await self.cancel()
            raise

    async def close(self) -> None:
        """Accept no new jobs, wait for the submitted ones to finish, then mark it closed."""
        self._accepting = False
        if self._supervisor_started:
            self._wake()
            assert self._supervisor_done is not None
            await self._supervisor_done.wait()
        else:
            self._finish_state()
        await self._close_remote(cancel=False)

    async def cancel(self) -> None:
        """Cancel every job that has not finished, then close the session."""
        self._accepting = False
        for job in list(self._queue):
            job.cancel()
        self._queue.clear()
        for job in list(self._running):
            job.cancel()
        await self._close_remote(cancel=True)
        await self.close()

    # -- remote sessions: backends with capabilities.remote_sessions --------------------------

    async def _open_remote(self) -> None:
        if self._remote is not None and self._remote_id is None:
            self._remote_id = await self._remote.open_session(self._session_id, mode=self.mode, max_time=self._max_time)

    async def _close_remote(self, *, cancel: bool) -> None:
        if self._remote is None or self._remote_id is None or self._remote_closed:
            return
        self._remote_closed = True
        if cancel:
            await self._remote.cancel_session(self._session_id)
        else:
            await self._remote.close_session(self._session_id)

    # -- submission (called by primitives, synchronously inside run()) ---------------------------

    def _check_accepting(self) -> None:
        self._refresh()
        if self._state is SessionState.EXPIRED:
            raise SessionExpiredError(
                f"session {self.session_id} expired (max_time {self._max_time} s) and accepts no new jobs"
            )
        if not self._accepting:
            raise SessionClosedError(f"session {self.session_id} is closed and accepts no new jobs")
        if self._first_job_cancelled:
            raise self._cache_error()

    def _check_job_limits(self, max_execution_time: int | None) -> None:
        if max_execution_time is not None and max_execution_time >= self._max_time:
            raise InvalidOptionsError(
                f"max_execution_time={max_execution_time} s must be less than the session's "
                f"max_time of {self._max_time} s"
            )

    def _submit(self, job: Job, *, checked: bool = False) -> None:
        if not checked:  # primitives check before validating PUBs, so the session error comes first
            self._check_accepting()
            self._check_job_limits(job.options.max_execution_time)
        if self._max_pending is not None:
            self._take_slot()
        if self._first_job is None:
            self._first_job = job
            if not self._track_each_job:
                job.add_done_callback(self._on_job_final)  # only the first job's fate matters here
        if self._track_each_job:  # bounded or watched: every job reports its end
            job.add_done_callback(self._on_job_final)
        self._jobs.append(job)
        if len(self._jobs) > self._prune_at:
            self._prune_jobs()
        self._queue.append(job)
        self._start_supervisor()
        self._wake()

    def _on_job_final(self, job: Job) -> None:
        if self._track_each_job:
            if self._slots is not None:
                self._slots.release()
            for listener in self._listeners:
                listener.push(job)
        if job is self._first_job and job.status() is JobStatus.CANCELLED:
            self._first_job_cancelled = True
            self._wake()

    def _prune_jobs(self) -> None:
        """Count the finished jobs of _jobs and drop them."""
        live = []
        for job in self._jobs:
            if job.done():
                self._pruned_counts[job.status()] += 1
                self._pruned_usage += job.metrics().usage_seconds or 0.0
            else:
                live.append(job)
        self._pruned_total += len(self._jobs) - len(live)
        self._jobs = live
        self._prune_at = max(_PRUNE_MIN, 2 * len(live))

    # -- backpressure ----------------------------------------------------------------------------

    def _take_slot(self) -> None:
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max_pending)
        if self._reserved:  # taken by reserve() just before this submission
            self._reserved -= 1
            return
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            raise SessionFullError(
                f"session {self.session_id} already has max_pending={self._max_pending} unfinished jobs; "
                "use `await primitive.submit(...)` to wait for room"
            ) from None

    async def reserve(self) -> None:
        """Wait until the session has room for one more job and hold that room for the next
        submission (which must follow without an ``await``; ``primitive.submit`` does this).

        Raises:
            SessionFullError: the session is full and ``on_full="error"``.
        """
        if self._max_pending is None:
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max_pending)
        if self._on_full == "error":
            try:
                self._slots.acquire_nowait()
            except anyio.WouldBlock:
                raise SessionFullError(
                    f"session {self.session_id} already has max_pending={self._max_pending} unfinished jobs"
                ) from None
        else:
            await self._slots.acquire()
        self._reserved += 1

    def _unreserve(self) -> None:
        """Give back a reservation whose submission failed."""
        if self._reserved and self._slots is not None:
            self._reserved -= 1
            self._slots.release()

    # -- consuming results as they complete --------------------------------------------------------

    async def as_completed(self) -> AsyncIterator[Job]:
        """Yield this session's jobs as they finish: those unfinished now and those submitted
        later, until the session is closed and every job has finished.

        Example:
            >>> async for job in batch.as_completed():          # doctest: +SKIP
            ...     print(job.job_id, (await job)[0].data.evs)
        """
        listener = _Completions()
        self._listeners.append(listener)
        if not self._track_each_job:
            self._track_each_job = True
            for job in self._jobs:
                if not job.done() and job is not self._first_job:  # the first one reports already
                    job.add_done_callback(self._on_job_final)
        try:
            while True:
                while listener.jobs:
                    yield listener.jobs.popleft()
                unfinished = self._running or not all(job.done() for job in self._queue)
                if not unfinished and (self._is_final() or not self._accepting):
                    return
                await listener.wait()
        finally:
            self._listeners.remove(listener)

    def _cache_error(self) -> SessionCacheError:
        first = self._first_job.job_id if self._first_job else "?"
        return SessionCacheError(
            f"the first job of session {self.session_id} ({first}) was cancelled before it filled the "
            "session's cache, so later jobs of this session fail (the IBM Quantum rule, kept on every "
            "backend). Open a new session."
        )

    # -- the supervisor --------------------------------------------------------------------------

    def _start_supervisor(self) -> None:
        if self._supervisor_started:
            return
        self._supervisor_started = True
        self._clock = loop_clock()
        self._supervisor_ready = anyio.Event()
        self._supervisor_done = anyio.Event()
        self._wakeup = anyio.Event()
        spawn_detached(self._supervise, name=f"aqrt supervisor {self.session_id}")

    def _now(self) -> float:
        if self._clock is None:
            self._clock = loop_clock()
        return self._clock()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _supervise(self) -> None:
        assert self._supervisor_ready is not None and self._supervisor_done is not None
        try:
            await self._open_remote()  # sessions used without `async with` open on first job
            async with anyio.create_task_group() as task_group:
                self._supervisor_ready.set()
                while True:
                    self._wakeup = anyio.Event()
                    self._apply_clocks()
                    self._spawn_runners(task_group)
                    if self._drained():
                        break
                    deadline = self._next_deadline()
                    with anyio.move_on_after(deadline - self._now() if deadline < math.inf else math.inf):
                        await self._wakeup.wait()
        except BaseException as exc:  # never escape a detached task: settle every job instead
            self._fail_all(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._accepting = False
            self._finish_state()
            self._supervisor_ready.set()
            self._supervisor_done.set()
            for listener in self._listeners:
                listener.wake()

    def _spawn_runners(self, task_group: anyio.abc.TaskGroup) -> None:
        # Runners pull jobs until the queue is empty, so a stream of jobs costs no task per job.
        if self._state is SessionState.EXPIRED:
            return
        for _ in range(min(self._concurrency, len(self._queue)) - self._runners):
            self._runners += 1
            task_group.start_soon(self._run_queue, name=f"aqrt runner {self.session_id}")

    async def _run_queue(self) -> None:
        try:
            slice_started = time.perf_counter()
            run_inline = self._run_inline
            mark_running = not self.backend.capabilities.reports_job_start
            while (job := self._take_next(mark_running)) is not None:
                try:
                    if run_inline is None or not settle_inline(job, run_inline, self._cache):
                        await execute_job(job, self.backend, self._cache)
                finally:
                    self._running.discard(job)
                # Tiny jobs run inline without suspending; after a millisecond of them, yield so
                # a stream of jobs cannot starve the loop. (Real CPU time, not a session clock.)
                if time.perf_counter() - slice_started > _RUNNER_SLICE:
                    await anyio.lowlevel.checkpoint()
                    slice_started = time.perf_counter()
        finally:
            self._runners -= 1
            self._wake()

    def _take_next(self, mark_running: bool = True) -> Job | None:
        """The next job to run, marked running unless the backend reports the start itself
        (``reports_job_start``); None when nothing may start now."""
        self._apply_clocks()
        while self._queue and self._state is not SessionState.EXPIRED:
            job = self._queue.popleft()
            if job.done():  # cancelled while queued
                continue
            if self._first_job_cancelled:
                job._settle_error(self._cache_error())
                continue
            if self._started_at is None:
                self._started_at = self._now()
            self._state = SessionState.ACTIVE
            self._idle_since = None
            self._running.add(job)
            if mark_running:
                job._mark_running()
            return job
        return None

    def _apply_clocks(self) -> None:
        now = self._now()
        if self._state is SessionState.EXPIRED:
            return
        if self._started_at is not None and now >= self._started_at + self._max_time and not self._server_max_time:
            self._expire()
            return
        idle = not self._queue and not self._running
        if not idle:
            self._idle_since = None
        elif self._state is SessionState.ACTIVE:
            if self._idle_since is None:
                self._idle_since = now
            if self._interactive_timeout is not None and now >= self._idle_since + self._interactive_timeout:
                self._state = SessionState.INACTIVE

    def _next_deadline(self) -> float:
        deadlines = [math.inf]
        if self._started_at is not None and self._state is not SessionState.EXPIRED and not self._server_max_time:
            deadlines.append(self._started_at + self._max_time)
        if self._state is SessionState.ACTIVE and self._idle_since is not None and self._interactive_timeout:
            deadlines.append(self._idle_since + self._interactive_timeout)
        return min(deadlines)

    def _expire(self) -> None:
        self._state = SessionState.EXPIRED
        self._accepting = False
        queued, self._queue = list(self._queue), collections.deque()
        for job in queued:
            job._settle_error(
                SessionExpiredError(
                    f"job {job.job_id} was still queued when session {self.session_id} reached its "
                    f"max_time of {self._max_time} s"
                )
            )

    def _drained(self) -> bool:
        if self._running:
            return False
        return not self._queue and not self.accepting_jobs

    def _finish_state(self) -> None:
        if self._state is not SessionState.EXPIRED:
            self._state = SessionState.CLOSED

    def _fail_all(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
        for job in [*self._queue, *self._running]:
            if cancelled:  # the event loop is shutting down under an unclosed session
                job._settle_cancelled()
                continue
            error = JobFailedError(f"session {self.session_id} stopped unexpectedly: {exc!r}", job_id=job.job_id)
            error.__cause__ = exc
            job._settle_error(error)
        self._queue.clear()

    def _is_final(self) -> bool:
        return self._state is SessionState.CLOSED or self._state is SessionState.EXPIRED

    # -- introspection ---------------------------------------------------------------------------

    def status(self) -> SessionState:
        """The session's :class:`SessionState`."""
        self._refresh()
        return self._state

    def statistics(self) -> dict[str, Any]:
        """Job counts by status and the time jobs spent running (seconds, loop clock)."""
        self._refresh()
        counts = self._pruned_counts + collections.Counter(job.status() for job in self._jobs)
        usage = self._pruned_usage + sum((job.metrics().usage_seconds or 0.0) for job in self._jobs)
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

    async def details(self) -> dict[str, Any]:
        """Id, backend, mode, state, clocks and job counts, as a plain dict."""
        await anyio.lowlevel.checkpoint()
        remaining: float | None = self._max_time
        if self._started_at is not None:
            remaining = max(0.0, self._started_at + self._max_time - self._now())
        if self._is_final():
            remaining = 0.0
        return {
            "id": self._session_id,
            "remote_id": self._remote_id,
            "backend_name": self.backend.name,
            "mode": self.mode,
            "state": self._state.value,
            "accepting_jobs": self.accepting_jobs,
            "max_time": self._max_time,
            "interactive_timeout": self._interactive_timeout,
            "started_at": self._started_at,
            "remaining_time": remaining,
            **self.statistics(),
        }

    def __repr__(self) -> str:
        backend = self._backend.name if self._backend is not None else self._backend_request
        return f"<{type(self).__name__} {self._session_id} on {backend}: {self._state.value}>"


class Batch(Session):
    """A batch: like :class:`Session`, but jobs may run concurrently and there is no
    interactive timeout.

    Args:
        max_concurrency: how many of its jobs may run at once (default 4, or as many as a
            remote backend declares it queues).
        max_pending, on_full: as for :class:`Session`.
    """

    mode = "batch"
    _interactive = False

    def __init__(
        self,
        service: Service | None = None,
        backend: Backend | str | None = None,
        *,
        max_time: int | str | None = None,
        interactive_timeout: int | str | None = None,
        max_concurrency: int | None = None,
        max_pending: int | None = None,
        on_full: str = "wait",
    ) -> None:
        super().__init__(
            service,
            backend,
            max_time=max_time,
            interactive_timeout=interactive_timeout,
            max_pending=max_pending,
            on_full=on_full,
        )
        if max_concurrency is None:
            if self._concurrency == 1:  # no backend-declared concurrency (yet)
                self._concurrency = 4
            return
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise InvalidOptionsError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        self._concurrency = self._explicit_concurrency = max_concurrency


def _resolve_backend(service: Service | None, backend: Backend | str | None) -> tuple[Backend | None, Service | None]:
    """The backend now if it can be had without I/O, else None (looked up in ``__aenter__``)."""
    if backend is not None and not isinstance(backend, str):
        if not isinstance(backend, Backend):
            raise TypeError(f"backend must be a name or a Backend, got {type(backend).__name__}")
        return backend, service if service is not None else backend.service
    if service is None:
        from .backends.local import LocalService

        service = LocalService()
    if not isinstance(service, Service):
        raise TypeError(f"service must implement aqrt.backends.Service, got {type(service).__name__}")
    return service.known_backend(backend), service


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


def _check_bound(max_pending: int | None, on_full: str) -> tuple[int | None, str]:
    if max_pending is not None and (
        isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1
    ):
        raise InvalidOptionsError(f"max_pending must be an int >= 1 or None, got {max_pending!r}")
    if on_full not in ("wait", "error"):
        raise InvalidOptionsError(f"on_full must be 'wait' or 'error', got {on_full!r}")
    return max_pending, on_full
