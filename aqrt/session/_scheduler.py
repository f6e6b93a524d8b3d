"""The job queue of one session (or of job mode), its runners, and the clocks that rule it.

:meth:`Scheduler.submit` is the one entry primitives use: it applies the session's rules, has
the backend validate the PUBs, makes the :class:`~aqrt.Job` and dispatches it. Tiny jobs of a
``runs_inline`` backend settle synchronously wherever they run, without a thread hop.

In a session (a supervised :class:`~aqrt.session._policy.Policy`) jobs go through a queue.
Runner tasks take jobs off it until it is empty, so a stream of jobs costs no task per job; one
supervisor task owns the runners and runs the clocks. While no runner exists, the supervisor
settles the queued jobs the backend runs inline itself (for a slice of work at a time), so jobs
awaited one by one start no task at all. Under asyncio a task awaiting a job settles them first
(up to its own, see :meth:`Scheduler._settle_for_awaiter`): such a job costs no trip through the
event loop either. So does a job-mode job awaited right after ``run()``.

- ``max_time`` counts from the moment the first job *starts running*; when it runs out the
  session expires: running jobs finish, queued jobs fail with ``SessionExpiredError``.
- with nothing queued or running for ``interactive_timeout`` seconds the session turns inactive.
- the first job fills the shared cache; if it is cancelled, every later job fails with
  ``SessionCacheError``.

In job mode (the :data:`~aqrt.session._policy.JOB_MODE` policy) nothing needs watching or
closing: each job runs at once on a runtime-owned task of its own, with a fresh cache.

Every deadline is read from the event loop clock, so virtual clocks (looptime, trio's
``MockClock``) run hours of session time in milliseconds.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc
import anyio.lowlevel

from .._concurrency import event_factory, loop_clock, spawn_detached, wait_until
from ..backends.base import Backend, ExecutionContext, inline_runner
from ..errors import (
    InvalidOptionsError,
    JobFailedError,
    SessionCacheError,
    SessionClosedError,
    SessionExpiredError,
)
from ..job import Job, JobRequest, JobStatus, Program, new_job_id
from ._admission import NO_RESERVATION
from ._execution import run_job, settle_inline, validate_pubs
from ._policy import JOB_MODE, Policy

if TYPE_CHECKING:
    from ..options import Options
    from ._admission import Admission, _NoReservation, _Reservation

PubCheck = Literal["at_submit", "before_start", "done"]
"""When a job's PUBs are validated (see :meth:`Scheduler.submit`)."""

_RUNNER_SLICE = 0.001  # seconds of inline work a runner does before yielding to the loop


class SessionState(enum.Enum):
    """The session's state; ``closed`` and ``expired`` are final."""

    PENDING = "pending"  # open, no job has started yet
    ACTIVE = "active"  # a job has started; the max_time clock runs
    INACTIVE = "inactive"  # the interactive timeout passed with nothing queued
    CLOSED = "closed"
    EXPIRED = "expired"


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


class _AwaiterSlices:
    """The slices of inline work done on tasks that await jobs, per event loop (a job-mode
    scheduler serves several loops, in several threads): a slice opens at the first such work
    after a turn of the loop and ends at its next turn."""

    __slots__ = ("_started",)

    def __init__(self) -> None:
        self._started: dict[asyncio.AbstractEventLoop, float] = {}

    def open(self, loop: asyncio.AbstractEventLoop) -> float | None:
        """When ``loop``'s current slice began (``time.perf_counter``), or None if it has run
        out: the awaiting task waits instead, and the loop turns."""
        started = self._started.get(loop)
        if started is None:
            started = self._started[loop] = time.perf_counter()
            loop.call_soon(self._started.pop, loop, None)
        elif time.perf_counter() - started > _RUNNER_SLICE:
            return None
        return started


class Scheduler:
    """Runs the jobs of one session, or of job mode, on one backend.

    A session's scheduler is made unbound (its backend may need a lookup first) and bound once
    with :meth:`bind`; :meth:`for_job_mode` makes a bound, unsupervised one.

    Args:
        session_id: stamped on every job's request; None in job mode.
        admission: the session's bookkeeping of admitted jobs; None in job mode.
        on_start: awaited by the supervisor before it runs anything (opens a remote session
            for a session used without ``async with``).
    """

    def __init__(
        self,
        session_id: str | None,
        admission: Admission | None = None,
        on_start: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.session_id = session_id
        self._admission = admission
        self._on_start = on_start
        self.backend: Backend | None = None
        self.policy: Policy | None = None
        self.state = SessionState.PENDING
        self.accepting = True
        self.queue: collections.deque[Job] = collections.deque()
        self.running: set[Job] = set()
        self.cache: dict[Any, Any] = {}
        self.first_job: Job | None = None
        self.first_job_cancelled = False
        self.started_at: float | None = None  # loop time the first job started
        self.idle_since: float | None = None  # loop time the queue last became empty
        # Copied from the policy by bind(), read on every job.
        self.max_time = 0
        self._expire_after: float | None = None
        self._interactive_timeout: float | None = None
        self._concurrency = 1
        self._supervised = True
        self._first_job_rule = True
        self._shares_cache = True
        self._run_inline: Callable[[JobRequest, ExecutionContext], Any] | None = None
        self._supervisor_started = False
        self._supervisor_ready: anyio.Event | None = None
        self._supervisor_done: anyio.Event | None = None
        self._wakeup: asyncio.Event | anyio.Event | None = None
        self._new_event: Callable[[], asyncio.Event | anyio.Event] = anyio.Event
        self._runners = 0
        self._clock: Callable[[], float] | None = None
        # Settling on awaiting tasks (asyncio): the offer a session's jobs carry, the slices of
        # inline work done on awaiting tasks, and a job they took that the backend does not run
        # inline (the supervisor starts a runner with it).
        self._settle_awaited: Callable[[Job], None] | None = None
        self._supervising = False  # the supervisor's loop runs (the session is open, remotely too)
        self._awaiter_slices = _AwaiterSlices()
        self._handed_over: Job | None = None

    @classmethod
    def for_job_mode(cls, backend: Backend) -> Scheduler:
        """A scheduler for primitives used without a session.

        Raises:
            TypeError: the backend declares ``runs_inline`` without implementing it.
        """
        scheduler = cls(None)
        scheduler.bind(backend, JOB_MODE)
        return scheduler

    def bind(self, backend: Backend, policy: Policy) -> None:
        """Fix the backend and the rules, once, before any job is submitted.

        Raises:
            TypeError: the backend declares ``runs_inline`` without implementing it.
        """
        self._run_inline = inline_runner(backend)
        self.backend = backend
        self.policy = policy
        self.max_time = policy.max_time if policy.max_time is not None else 0
        self._expire_after = policy.max_time if policy.expires_locally else None
        self._interactive_timeout = policy.interactive_timeout
        self._concurrency = policy.concurrency if policy.concurrency is not None else sys.maxsize
        self._supervised = policy.supervised
        self._first_job_rule = policy.first_job_rule
        self._shares_cache = policy.shared_cache
        if policy.shared_cache:
            self.cache = SessionCache()

    # -- submission (synchronously, inside run()) --------------------------------------------------

    def submit(self, program: Program, pubs: Sequence[Any], options: Options, *, check: PubCheck = "at_submit") -> Job:
        """Check the session's rules, validate the PUBs, make the job and dispatch it: to the
        queue in a session, to a task of its own in job mode.

        The session's refusals come before the PUBs' errors: a closed session says so even for
        bad input.

        Args:
            check: when the backend validates the PUBs. ``"at_submit"``: here, so ``run()``
                raises for a bad PUB. ``"before_start"``: on the engine worker thread when the job
                comes to run, before it starts (it stays QUEUED meanwhile), for checks that cost
                far more than a loop callback may (an ``executor`` program's ISA walk on a
                127-qubit device is 0.2-0.4 s); a refused job fails with the backend's error, as
                IBM's server fails it. ``"done"``: the caller validated them already (aqrt serve,
                off its loop, at submission), so they are checked once.

        Raises:
            SessionExpiredError / SessionClosedError / SessionCacheError: the session refuses jobs.
            InvalidOptionsError: ``max_execution_time`` is not below the session's ``max_time``.
            InvalidPubError / CircuitTooLargeError: the backend refuses a PUB (``"at_submit"`` only).
            SessionFullError: the session is at ``max_pending`` and no room was reserved.
        """
        admission = self._admission
        if admission is not None:  # only sessions have an admission, and rules to check
            self._check_accepting()
            max_execution_time = options.max_execution_time
            if max_execution_time is not None and max_execution_time >= self.max_time:
                raise InvalidOptionsError(
                    f"max_execution_time={max_execution_time} s must be less than the session's "
                    f"max_time of {self.max_time} s"
                )
        backend = self.backend
        assert backend is not None  # primitives reach a scheduler only through a bound session
        if check == "at_submit":
            for index, pub in enumerate(pubs):
                backend.validate_pub(program, pub, index)
        request = JobRequest._new(new_job_id(), program, tuple(pubs), options, self.session_id)
        # A session's jobs read its loop's clock, one callable for all (job mode's scheduler may
        # serve several loops: each job there takes its own loop's).
        job = Job(request, backend_name=backend.name, clock=self._clock if self._supervised else None)
        if check == "before_start":
            job._pending_check = functools.partial(validate_pubs, backend, program, request.pubs)
        if admission is not None:
            admission.admit(job)
        if self._first_job_rule and self.first_job is None:
            self.first_job = job
            job.add_done_callback(self._on_first_job_final)  # only the first job's fate matters here
        if self._supervised:
            job._settle_now = self._settle_awaited
            self.queue.append(job)
            self._start_supervisor()
            self._wake()
        else:
            # Job mode: each job runs at once on a runtime-owned task of its own. No queue is
            # shared between them, so a primitive made once (at import, say) may serve several
            # event loops, one after another or in several threads at once.
            if self._run_inline is not None:
                job._settle_now = self._settle_alone_for_awaiter
            spawn_detached(functools.partial(self._run_alone, job), name=f"aqrt job {job.job_id}")
        return job

    def reservation(self) -> _Reservation | _NoReservation:
        """``async with`` it around a submission to wait for room in a bounded session first."""
        if self._admission is None:
            return NO_RESERVATION
        return self._admission.reservation()

    def _check_accepting(self) -> None:
        """Raise the reason this session refuses new jobs, if it does.

        Raises:
            SessionExpiredError / SessionClosedError / SessionCacheError: as the reason is.
        """
        self.refresh()
        if self.state is SessionState.EXPIRED:
            raise SessionExpiredError(
                f"session {self.session_id} expired (max_time {self.max_time} s) and accepts no new jobs"
            )
        if not self.accepting:
            raise SessionClosedError(f"session {self.session_id} is closed and accepts no new jobs")
        if self.first_job_cancelled:
            raise self._cache_error()

    def _on_first_job_final(self, job: Job) -> None:
        if job.status() is JobStatus.CANCELLED:
            self.first_job_cancelled = True
            self._wake()

    def _cache_error(self) -> SessionCacheError:
        first = self.first_job.job_id if self.first_job else "?"
        return SessionCacheError(
            f"the first job of session {self.session_id} ({first}) was cancelled before it filled the "
            "session's cache, so later jobs of this session fail (the IBM Quantum rule, kept on every "
            "backend). Open a new session."
        )

    # -- state, as the facade reads it ---------------------------------------------------------------

    def refresh(self) -> None:
        """Apply the clocks now."""
        # Clocks are applied on every read too, so a state read at a deadline instant is exact
        # whichever of the reader and the supervisor the loop wakes first.
        if self._supervisor_started and not self.is_final():
            self._apply_clocks()

    def accepting_jobs(self) -> bool:
        """Whether a submission now would be accepted (as far as open/closed/expired go)."""
        self.refresh()
        return self.accepting and self.state is not SessionState.EXPIRED

    def is_final(self) -> bool:
        return self.state is SessionState.CLOSED or self.state is SessionState.EXPIRED

    def settled(self) -> bool:
        """No job is unfinished and none can come: ``as_completed`` readers stop."""
        unfinished = self.running or not all(job.done() for job in self.queue)
        return not unfinished and (self.is_final() or not self.accepting)

    def now(self) -> float:
        """The event loop's clock."""
        if self._clock is None:
            self._clock = loop_clock()
        return self._clock()

    # -- ending -----------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Accept no new jobs, wait for the submitted ones to finish, then turn closed."""
        self.accepting = False
        if self._supervisor_started:
            self._wake()
            assert self._supervisor_done is not None
            await self._supervisor_done.wait()
        else:
            self._finish_state()

    def cancel_jobs(self) -> None:
        """Accept no new jobs and cancel every unfinished one."""
        self.accepting = False
        for job in list(self.queue):
            job.cancel()
        self.queue.clear()
        for job in list(self.running):
            job.cancel()

    # -- the supervisor (sessions) -------------------------------------------------------------

    def start_supervisor(self) -> anyio.Event:
        """Start the supervisor if it is not running yet; returns the event set once it runs."""
        self._start_supervisor()
        assert self._supervisor_ready is not None
        return self._supervisor_ready

    def _start_supervisor(self) -> None:
        if self._supervisor_started:
            return
        self._supervisor_started = True
        self._clock = loop_clock()
        self._supervisor_ready = anyio.Event()
        self._supervisor_done = anyio.Event()
        self._new_event = event_factory()
        self._wakeup = self._new_event()
        if self._new_event is asyncio.Event and self._run_inline is not None:
            self._settle_awaited = self._settle_for_awaiter
        spawn_detached(self._supervise, name=f"aqrt supervisor {self.session_id}")

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _supervise(self) -> None:
        assert self._supervisor_ready is not None and self._supervisor_done is not None
        try:
            if self._on_start is not None:
                await self._on_start()
            async with anyio.create_task_group() as task_group:
                self._supervisor_ready.set()
                self._supervising = True
                while True:
                    wakeup = self._wakeup = self._new_event()
                    self._apply_clocks()
                    handed_over, self._handed_over = self._handed_over, None
                    if handed_over is not None:
                        self._start_runner(task_group, handed_over)
                    self._settle_queued_inline(task_group)
                    self._spawn_runners(task_group)
                    if self._drained():
                        break
                    await wait_until(wakeup, self._next_deadline())
        except BaseException as exc:  # never escape a detached task: settle every job instead
            self._fail_all(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._supervising = False
            self.accepting = False
            self._finish_state()
            self._supervisor_ready.set()
            self._supervisor_done.set()
            if self._admission is not None:
                self._admission.wake_listeners()

    def _settle_queued_inline(self, task_group: anyio.abc.TaskGroup) -> None:
        """Settle the queued jobs the backend runs inline, here, while no runner exists: a session
        whose jobs are awaited one by one then starts no task per job. Stops after a slice of
        work (runners take the rest), or at a job the backend does not run inline, which a new
        runner starts with."""
        if self._run_inline is None or self._runners or not self.queue:
            return
        refused = self._settle_from_head(time.perf_counter())
        if refused is not None:
            self._start_runner(task_group, refused)

    def _settle_from_head(self, slice_started: float, until: Job | None = None) -> Job | None:
        """Settle queued jobs the backend runs inline, from the head of the queue, until the queue
        is empty, ``until`` is final or the slice that began at ``slice_started`` has run out.
        Returns the job taken that the backend does not run inline (RUNNING now, for a runner to
        start with), else None."""
        run_inline = self._run_inline
        assert run_inline is not None
        running = self.running
        while self.queue and (until is None or not until._final) and (job := self._take_next()) is not None:
            try:
                inline = job._pending_check is None and settle_inline(job, run_inline, self._job_cache())
            except BaseException as exc:  # not the job's failure (settle_inline settles those): the caller's
                running.discard(job)
                error = JobFailedError(f"job {job.job_id} was interrupted: {exc!r}", job_id=job.job_id)
                error.__cause__ = exc
                job._settle_error(error)
                raise
            if not inline:
                return job
            running.discard(job)
            if time.perf_counter() - slice_started > _RUNNER_SLICE:
                break
        return None

    def _start_runner(self, task_group: anyio.abc.TaskGroup, first: Job | None = None) -> None:
        self._runners += 1
        task_group.start_soon(self._run_queue, first, name=f"aqrt runner {self.session_id}")

    def _settle_for_awaiter(self, job: Job) -> None:
        """Settle queued jobs the backend runs inline, from the head of the queue up to ``job``,
        on the task that is about to await ``job`` (asyncio only): a job awaited right after
        ``run()`` then finishes without a trip through the event loop. Only while nothing runs
        and no runner exists, as the supervisor settles them, and for a slice of work at a time
        between two turns of the loop, so a loop of awaited jobs cannot starve it. A job the
        backend does not run inline goes to the supervisor, which starts a runner with it."""
        if not self._supervising or self._runners or self.running or not self.queue or self._handed_over is not None:
            return
        slice_started = self._awaiter_slice(job)
        if slice_started is None:
            return
        refused = self._settle_from_head(slice_started, until=job)
        if refused is not None:
            self._handed_over = refused
            self._wake()
            return
        if not self.queue:
            self._apply_clocks()  # idle from now: the interactive timeout counts from here

    def _settle_alone_for_awaiter(self, job: Job) -> None:
        """Job mode: settle ``job`` on the task that is about to await it, if the backend runs it
        inline (asyncio only, a slice of work at a time, as in a session); the task ``run()``
        started for it then finds it settled. One the backend does not run inline is left RUNNING
        to that task, which runs it through ``execute``."""
        if job._status is not JobStatus.QUEUED or job._pending_check is not None or self._awaiter_slice(job) is None:
            return
        run_inline = self._run_inline
        assert run_inline is not None
        settle_inline(job, run_inline, self._job_cache())

    def _awaiter_slice(self, job: Job) -> float | None:
        """When the slice of inline work on tasks awaiting jobs of ``job``'s loop began, or None
        when it has run out or this is not the job's loop (asyncio only)."""
        loop = job._loop
        if loop is None or asyncio._get_running_loop() is not loop:
            return None
        return self._awaiter_slices.open(loop)

    def _spawn_runners(self, task_group: anyio.abc.TaskGroup) -> None:
        if self.state is SessionState.EXPIRED:
            return
        # A runner holds at most one job (in `running`); the others are about to take one. Spawn
        # for the queued jobs those cannot take, within the concurrency: a job submitted while
        # others run starts at once if the bound allows.
        idle = self._runners - len(self.running)
        for _ in range(min(self._concurrency - self._runners, len(self.queue) - idle)):
            self._start_runner(task_group)

    def _drained(self) -> bool:
        if self.running:
            return False
        return not self.queue and not self.accepting_jobs()

    def _finish_state(self) -> None:
        if self.state is not SessionState.EXPIRED:
            self.state = SessionState.CLOSED

    def _fail_all(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
        for job in [*self.queue, *self.running]:
            if cancelled:  # the event loop is shutting down under an unclosed session
                job._settle_cancelled()
                continue
            error = JobFailedError(f"session {self.session_id} stopped unexpectedly: {exc!r}", job_id=job.job_id)
            error.__cause__ = exc
            job._settle_error(error)
        self.queue.clear()

    # -- runners ------------------------------------------------------------------------------------

    async def _run_alone(self, job: Job) -> None:
        """Job mode: run ``job`` with a fresh cache, unless it was cancelled before it started (or
        settled by its awaiting task)."""
        status = job.status()
        if status is JobStatus.RUNNING:  # its awaiting task offered it to the inline runner, which refused it
            assert self.backend is not None
            await run_job(job, self.backend, self._job_cache())
            return
        if status is not JobStatus.QUEUED:
            return
        cache = self._job_cache()
        run_inline = self._run_inline
        if run_inline is None or job._pending_check is not None or not settle_inline(job, run_inline, cache):
            assert self.backend is not None
            await run_job(job, self.backend, cache)

    async def _run_queue(self, first: Job | None = None) -> None:
        """Run queued jobs until the queue is empty; ``first``, taken already and refused by
        the backend's inline runner, is run first."""
        try:
            backend = self.backend
            assert backend is not None
            run_inline = self._run_inline
            running = self.running
            if first is not None:
                try:
                    await run_job(first, backend, self._job_cache(), on_start=self._note_started)
                finally:
                    running.discard(first)
            slice_started = time.perf_counter()
            # The queue is looked at first so a runner whose queue is empty leaves without a call.
            while self.queue and (job := self._take_next()) is not None:
                cache = self._job_cache()
                try:
                    if (
                        run_inline is None
                        or job._pending_check is not None
                        or not settle_inline(job, run_inline, cache)
                    ):
                        await run_job(job, backend, cache, on_start=self._note_started)
                finally:
                    running.discard(job)
                # Tiny jobs run inline without suspending (and a backend's execute may return
                # without suspending too); after a millisecond of them, yield so a stream of jobs
                # cannot starve the loop. (Real CPU time, not a session clock.) Only if more is
                # queued: a runner about to finish just returns, leaving no task behind its job.
                if self.queue and time.perf_counter() - slice_started > _RUNNER_SLICE:
                    await anyio.lowlevel.checkpoint()
                    slice_started = time.perf_counter()
        finally:
            self._runners -= 1
            if self._wakeup is not None:  # the supervisor, if any, may spawn or finish now
                self._wakeup.set()

    def _job_cache(self) -> dict[Any, Any]:
        """The cache a job runs with: the session's, or a fresh one where the policy shares none."""
        return self.cache if self._shares_cache else {}

    def _take_next(self) -> Job | None:
        """The next job to run, None when nothing may start now. It is marked running by
        settle_inline / run_job, with no await in between (or by the backend itself, for a
        backend with ``reports_job_start``)."""
        queue = self.queue
        if not queue:
            self._apply_clocks()
        elif self.state is not SessionState.EXPIRED:
            # _apply_clocks with jobs queued (runners call this only then), in short: the expiry
            # reads the clock, and a session with jobs queued is not idle.
            expire_after, started_at = self._expire_after, self.started_at
            if expire_after is not None and started_at is not None and self.now() >= started_at + expire_after:
                self._expire()
            else:
                self.idle_since = None
        while queue and self.state is not SessionState.EXPIRED:
            job = queue.popleft()
            # Only a runner moves a job out of QUEUED, so any other status means it finished
            # while queued (cancelled). Cheaper than job.done(), which hashes the status.
            if job.status() is not JobStatus.QUEUED:
                continue
            if self.first_job_cancelled:
                job._settle_error(self._cache_error())
                continue
            if self.started_at is None and not self._clock_waits_for_start:
                self.started_at = self.now()
            self.state = SessionState.ACTIVE
            self.idle_since = None
            self.running.add(job)
            return job
        return None

    # -- clocks -----------------------------------------------------------------------------------

    @property
    def _clock_waits_for_start(self) -> bool:
        """Whether ``max_time`` waits for the backend to say the first job started running (a
        backend that ``reports_job_start``, e.g. one whose jobs queue for an engine), rather
        than starting when the first job is handed to the backend."""
        return self.backend is not None and self.backend.capabilities.reports_job_start

    def _note_started(self) -> None:
        """A job started running: the first one starts the ``max_time`` clock."""
        if self.started_at is None:
            self.started_at = self.now()
            self._wake()  # the supervisor's next deadline is the expiry now

    def _apply_clocks(self) -> None:
        now = self.now()
        if self.state is SessionState.EXPIRED:
            return
        if (
            self._expire_after is not None
            and self.started_at is not None
            and now >= self.started_at + self._expire_after
        ):
            self._expire()
            return
        idle = not self.queue and not self.running
        if not idle:
            self.idle_since = None
        elif self.state is SessionState.ACTIVE:
            if self.idle_since is None:
                self.idle_since = now
            if self._interactive_timeout is not None and now >= self.idle_since + self._interactive_timeout:
                self.state = SessionState.INACTIVE

    def _next_deadline(self) -> float:
        deadlines = [math.inf]
        if self._expire_after is not None and self.started_at is not None and self.state is not SessionState.EXPIRED:
            deadlines.append(self.started_at + self._expire_after)
        if self.state is SessionState.ACTIVE and self.idle_since is not None and self._interactive_timeout:
            deadlines.append(self.idle_since + self._interactive_timeout)
        return min(deadlines)

    def _expire(self) -> None:
        self.state = SessionState.EXPIRED
        self.accepting = False
        queued = list(self.queue)
        self.queue.clear()  # cleared, not replaced: runners hold on to it
        for job in queued:
            job._settle_error(
                SessionExpiredError(
                    f"job {job.job_id} was still queued when session {self.session_id} reached its "
                    f"max_time of {self.max_time} s"
                )
            )
