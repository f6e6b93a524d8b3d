"""The job handle returned by ``Estimator.run`` / ``Sampler.run``.

A :class:`Job` belongs to its session (or, in job mode, to itself), never to the task that
awaits it: cancelling an awaiting task leaves the job running; ``job.cancel()`` stops it.

Example:
    >>> job = estimator.run([(circuit, observable)])     # doctest: +SKIP
    >>> job.status()                                       # doctest: +SKIP
    <JobStatus.QUEUED: 'QUEUED'>
    >>> result = await job                                 # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import itertools
import math
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, Literal

import anyio

from ._concurrency import CancelFlag, loop_clock
from .errors import JobCancelledError, OptionsNotAppliedWarning, ResultTimeoutError
from .options import Options
from .progress import Progress, count_bindings

__all__ = ["Job", "JobId", "JobMetrics", "JobRequest", "JobStatus", "Program", "new_job_id"]

Program = Literal["estimator", "sampler", "executor"]
"""A job's Runtime program: the two V2 primitives, or IBM's ``executor`` (one ``QuantumProgram``)."""


class JobStatus(enum.Enum):
    """Where a job is in its life; ``DONE``, ``ERROR`` and ``CANCELLED`` are final."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """True for the three states a job never leaves."""
        return self in _FINAL


_FINAL = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED})


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """What a backend needs to run a job: validated PUBs plus the options in force."""

    job_id: str
    program: Program
    pubs: Sequence[Any]
    options: Options
    session_id: str | None

    @classmethod
    def _new(
        cls, job_id: str, program: Program, pubs: Sequence[Any], options: Options, session_id: str | None
    ) -> JobRequest:
        """``JobRequest(...)`` with its fields set directly, as the dataclass's ``__init__`` sets
        them: a frozen dataclass sets each through ``object.__setattr__``, about a microsecond
        of every job's submission (#14). The constructor is used if the fields ever differ."""
        if not _DIRECT_FIELDS or cls is not JobRequest:
            return cls(job_id, program, pubs, options, session_id)
        request = _new_object(cls)
        request.__dict__.update(job_id=job_id, program=program, pubs=pubs, options=options, session_id=session_id)
        return request


_new_object = object.__new__
# Whether JobRequest._new makes what the constructor makes: these five fields, in this order, in
# the instance's __dict__, and nothing run after them.
_DIRECT_FIELDS = [field.name for field in dataclasses.fields(JobRequest)] == [
    "job_id",
    "program",
    "pubs",
    "options",
    "session_id",
] and not {"__post_init__", "__slots__"} & set(vars(JobRequest))


@dataclasses.dataclass(frozen=True)
class JobMetrics:
    """Timestamps of a job's life, wall clock for display and loop clock for arithmetic.

    ``usage_seconds`` is the time the job spent running, on the event loop clock.
    """

    created: dt.datetime
    running: dt.datetime | None
    finished: dt.datetime | None
    created_loop_time: float
    running_loop_time: float | None
    finished_loop_time: float | None

    @property
    def usage_seconds(self) -> float | None:
        if self.running_loop_time is None or self.finished_loop_time is None:
            return None
        return self.finished_loop_time - self.running_loop_time

    @property
    def queued_seconds(self) -> float | None:
        if self.running_loop_time is None:
            return None
        return self.running_loop_time - self.created_loop_time


_ID_PREFIX = "job-" + uuid.uuid4().hex[:12] + "-"  # random per process
_ID_COUNTER = itertools.count()


def new_job_id() -> str:
    """A fresh, URL-safe job id: a random per-process prefix and a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


class JobId(str):
    """A job's id: a plain ``str`` that may also be called, so both spellings work.

    aqrt has always read the id as a property (``job.job_id``), qiskit-ibm-runtime calls a method
    (``job.job_id()``). Being a ``str`` subclass, ``job.job_id`` compares, hashes, formats and
    serialises exactly like the id string; calling it returns that string as a plain ``str``.

    Example:
        >>> JobId("job-1") == "job-1", JobId("job-1")()
        (True, 'job-1')
    """

    __slots__ = ()

    def __call__(self) -> str:
        return str.__str__(self)


_NOT_AWAITED = (
    "job.result() is a coroutine in aqrt's async API: await it, as in (await job.result())[0] "
    "(or await job); in synchronous code use aqrt.sync, whose job.result() blocks"
)


class _ResultCoroutine(Coroutine[Any, Any, Any]):
    """:meth:`Job.result`'s coroutine: a coroutine in every way (``await``, ``create_task``,
    never-awaited warnings), whose misuse as a result (indexing it, iterating it, reading a
    result's attribute) raises an error that says to await it."""

    __slots__ = ("_coroutine",)

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._coroutine = coroutine

    def send(self, value: Any) -> Any:
        return self._coroutine.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coroutine.throw(*args)

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coroutine.__await__()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("cr_") or name in ("__name__", "__qualname__"):
            return getattr(self._coroutine, name)  # what asyncio and inspect read of a coroutine
        self._coroutine.close()  # misused, not awaited: no second "never awaited" warning
        raise AttributeError(f"{_NOT_AWAITED} (no attribute {name!r} before it is awaited)")

    def __getitem__(self, key: Any) -> Any:
        self._coroutine.close()
        raise TypeError(_NOT_AWAITED)

    def __iter__(self) -> Any:
        self._coroutine.close()
        raise TypeError(_NOT_AWAITED)

    def __repr__(self) -> str:
        return "<coroutine Job.result: await it>"


class Job:
    """An awaitable handle on one primitive job.

    Not constructed by users: ``Estimator.run`` / ``Sampler.run`` return one.
    """

    # Slots, not a __dict__: thousands of jobs are alive at once, and a job made without a dict
    # is quicker to make and one object fewer for the garbage collector (#14).
    __slots__ = (
        "__weakref__",  # aqrt.sync keeps its jobs in a WeakSet
        "_backend_name",
        "_cancel_requested",
        "_cancel_scope",
        "_clock",
        "_created",
        "_created_epoch",
        "_done_callbacks",
        "_error",
        "_final",
        "_finished",
        "_job_id",
        "_loop",
        "_pending_check",
        "_progress",
        "_request",
        "_result",
        "_running",
        "_settle_now",
        "_status",
        "_waiters",
        "_warned",
    )

    def __init__(self, request: JobRequest, *, backend_name: str, clock: Callable[[], float] | None = None) -> None:
        self._request = request
        self._job_id: JobId | None = None  # made when first read: most jobs are never asked
        self._backend_name = backend_name
        self._status = JobStatus.QUEUED
        # Settled (DONE, ERROR or CANCELLED): read on every wait, cheaper than the status's is_final.
        self._final = False
        self._result: Any = None
        self._error: BaseException | None = None
        # Under asyncio each awaiting task waits on a future of its own (so cancelling one
        # waiter cancels nothing else); under trio they share one event. Made on first wait.
        loop = self._loop = asyncio._get_running_loop()
        self._waiters: list[asyncio.Future[None]] | anyio.Event | None = None
        self._cancel_requested = CancelFlag()  # read by worker threads between work items
        self._cancel_scope: anyio.CancelScope | None = None
        self._progress: Any = None  # a Progress once someone asks for it
        # The validation of the job's PUBs, when its session defers it to the engine worker (see
        # Scheduler.submit's check); run, then cleared, before the job starts.
        self._pending_check: Callable[[], None] | None = None
        # The scheduler's offer (a session's or job mode's) to settle the job on the task that
        # awaits it, before it waits: a tiny job awaited right after run() then costs no trip
        # through the event loop.
        self._settle_now: Callable[[Job], None] | None = None
        self._warned = False  # whether reading the result checked it for options not applied
        # What to call once final: a list made by the first add_done_callback (most jobs get none).
        self._done_callbacks: list[Callable[[Job], None]] | None = None
        if clock is None:
            clock = loop.time if loop is not None else loop_clock()
        self._clock = clock
        # Display only (later instants follow the loop clock); made a datetime when read, as
        # datetime.now(UTC) makes it from time.time().
        self._created_epoch = time.time()
        self._created = clock()
        self._running: float | None = None
        self._finished: float | None = None

    # -- public surface -------------------------------------------------------------------------

    @property
    def job_id(self) -> str:
        """The job's id, a ``str``; ``job.job_id()`` (qiskit-ibm-runtime's spelling) works too.

        The value is a :class:`JobId` (a callable ``str``); it is typed ``str`` so that dicts and
        sets of ids stay ``dict[str, ...]`` for type checkers. Typed code reads ``job.job_id``.
        """
        job_id = self._job_id
        if job_id is None:
            job_id = self._job_id = JobId(self._request.job_id)
        return job_id

    @property
    def program(self) -> Program:
        return self._request.program

    @property
    def session_id(self) -> str | None:
        return self._request.session_id

    @property
    def backend_name(self) -> str:
        return self._backend_name

    @property
    def options(self) -> Options:
        return self._request.options

    @property
    def request(self) -> JobRequest:
        return self._request

    def status(self) -> JobStatus:
        """The job's current :class:`JobStatus`."""
        return self._status

    def done(self) -> bool:
        """True once the job is DONE, ERROR or CANCELLED."""
        return self._final

    def cancel(self) -> bool:
        """Ask the job to stop; returns False if it had already finished.

        A queued job is cancelled at once; a running one stops at its next checkpoint and
        then reports ``CANCELLED``. So does a job handed to a backend that still reports it
        queued (a server's queue): the cancellation is passed on to the backend first.
        """
        if self.done():
            return False
        self._cancel_requested.set()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        elif self._status is JobStatus.QUEUED:
            self._settle_cancelled()
        return True

    def cancelled(self) -> bool:
        return self._status is JobStatus.CANCELLED

    def metrics(self) -> JobMetrics:
        """Created/running/finished timestamps (see :class:`JobMetrics`)."""
        return JobMetrics(
            created=self._created_wall(),
            running=self._wall_at(self._running),
            finished=self._wall_at(self._finished),
            created_loop_time=self._created,
            running_loop_time=self._running,
            finished_loop_time=self._finished,
        )

    def _usage_seconds(self) -> float:
        """``metrics().usage_seconds`` (0 while not run to its end) without making the metrics:
        a session sums it over every finished job."""
        running, finished = self._running, self._finished
        return 0.0 if running is None or finished is None else finished - running

    def _created_wall(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._created_epoch, dt.UTC)

    def _wall_at(self, loop_time: float | None) -> dt.datetime | None:
        if loop_time is None:
            return None
        return self._created_wall() + dt.timedelta(seconds=loop_time - self._created)

    def progress(self) -> Any:
        """This job's :class:`~aqrt.progress.Progress` (bindings done / total), made on first call.

        ``async for update in job.progress():`` yields ``ProgressUpdate(done, total, final)``
        until the job finishes. Ask before the job starts to see updates while it runs (a job
        asked later reports only its end); sweeps report once per chunk of bindings.
        """
        if self._progress is None:
            self._progress = Progress(count_bindings(self._request.pubs))
            if self.done():
                self._progress._finish(self._status is JobStatus.DONE)
        return self._progress

    def add_progress_callback(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(ProgressUpdate)`` on the event loop as the job progresses."""
        self.progress().add_callback(callback)

    def exception(self) -> BaseException | None:
        """The error of a job in ERROR or CANCELLED state, else None."""
        if self._status is JobStatus.CANCELLED:
            return self._cancelled_error()
        return self._error

    async def wait(self) -> None:
        """Wait until the job is final, without raising for its outcome."""
        await self._until_final()

    def result(self, timeout: float | None = None) -> Coroutine[Any, Any, Any]:
        """Wait for and return the job's ``PrimitiveResult``: ``await job.result()``.

        A coroutine, as in any async API; used without ``await`` (``job.result()[0]``, as in
        qiskit-ibm-runtime's blocking API) it says so and names the fix, instead of Python's
        "'coroutine' object is not subscriptable".

        Args:
            timeout: seconds to wait (event loop clock); ``None`` waits for ever.

        Raises:
            ResultTimeoutError: ``timeout`` elapsed first (the job keeps going).
            JobCancelledError: the job was cancelled.
            JobError / SessionError: the job failed; see the exception's message and cause.
        """
        return _ResultCoroutine(self._wait_for_result(timeout))

    async def _wait_for_result(self, timeout: float | None) -> Any:
        if timeout is not None and not math.isfinite(timeout):
            timeout = None
        if timeout is not None:
            with anyio.move_on_after(timeout):
                await self._until_final()
            if not self.done():
                raise ResultTimeoutError(
                    f"job {self.job_id} still {self._status.value} after waiting {timeout} s",
                    job_id=self.job_id,
                )
        else:
            await self._until_final()
        return self._outcome()

    def __await__(self) -> Generator[Any, None, Any]:
        # A plain generator rather than ``result().__await__()``: awaiting a job costs one
        # future, no coroutines (thousands of jobs are gathered at once). Under asyncio it waits
        # on its future here rather than through _until_final's _Waiting: one generator frame
        # less to make and to resume per awaited job.
        if not self._final and self._settle_now is not None:
            self._settle_now(self)
        if not self._final:
            if self._loop is None:
                yield from self._until_final().__await__()
            else:
                future = self._new_waiter()
                try:
                    yield from future
                except BaseException:
                    _forget_waiter(self, future)
                    raise
        return self._outcome()

    def _until_final(self) -> Awaitable[None]:
        """An awaitable that completes when the job is final (each call waits separately)."""
        if not self._final and self._settle_now is not None:
            self._settle_now(self)
        if self._final:
            return _Ready()
        if self._loop is not None:
            return _Waiting(self._new_waiter(), self)
        if self._waiters is None:
            self._waiters = anyio.Event()
        return self._waiters.wait()  # type: ignore[union-attr]

    def _new_waiter(self) -> asyncio.Future[None]:
        """A future on the job's loop, set when the job is final (asyncio only)."""
        assert self._loop is not None
        future = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [future]
        else:
            self._waiters.append(future)  # type: ignore[union-attr]
        return future

    def _outcome(self) -> Any:
        if self._status is JobStatus.DONE:
            if not self._warned:
                self._warned = True
                _warn_not_applied(self.backend_name, self._result)
            return self._result
        if self._status is JobStatus.CANCELLED:
            raise self._cancelled_error()
        assert self._error is not None
        raise self._error

    def __repr__(self) -> str:
        return f"<Job {self.job_id} {self.program} on {self.backend_name}: {self._status.value}>"

    # -- used by the runtime ---------------------------------------------------------------------

    @property
    def cancel_requested(self) -> CancelFlag:
        """Set once cancellation was asked for; worker threads poll it between work items."""
        return self._cancel_requested

    def add_done_callback(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` once when the job becomes final (at once if it already is)."""
        if self.done():
            callback(self)
        else:
            if self._done_callbacks is None:
                self._done_callbacks = []
            self._done_callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[Job], None]) -> int:
        """Remove every registration of ``callback``; returns how many were removed.

        With ``add_done_callback``, ``done()``, ``cancelled()`` and ``exception()`` this lets
        ``asyncio.wait`` take jobs directly and return them in its done/pending sets.
        """
        callbacks = self._done_callbacks or []
        kept = [cb for cb in callbacks if cb != callback]
        removed = len(callbacks) - len(kept)
        self._done_callbacks = kept
        return removed

    def _mark_running(self) -> None:
        if self._status is not JobStatus.QUEUED:
            return
        self._status = JobStatus.RUNNING
        self._running = self._clock()

    def _settle_result(self, result: Any) -> None:
        self._result = result
        self._settle(JobStatus.DONE)

    def _settle_error(self, error: BaseException) -> None:
        self._error = error
        self._settle(JobStatus.ERROR)

    def _settle_cancelled(self) -> None:
        self._settle(JobStatus.CANCELLED)

    def _settle(self, status: JobStatus) -> None:
        if self._final:  # settled exactly once; later outcomes are ignored
            return
        self._final = True
        self._status = status
        self._finished = self._clock()
        self._cancel_scope = None
        waiters, self._waiters = self._waiters, None
        if isinstance(waiters, list):
            for future in waiters:
                if not future.done():  # a waiter whose task was cancelled is done already
                    future.set_result(None)
        elif waiters is not None:
            waiters.set()
        if self._progress is not None:
            self._progress._finish(status is JobStatus.DONE)
        callbacks, self._done_callbacks = self._done_callbacks, None
        if callbacks:
            for callback in callbacks:
                callback(self)

    def _cancelled_error(self) -> JobCancelledError:
        return JobCancelledError(f"job {self.job_id} was cancelled", job_id=self.job_id)


class _Ready:
    """An awaitable that is already complete."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


class _Waiting:
    """Awaits one waiter future of a job; a cancelled waiter leaves the job's list."""

    __slots__ = ("_future", "_job")

    def __init__(self, future: asyncio.Future[None], job: Job) -> None:
        self._future = future
        self._job = job

    def __await__(self) -> Generator[Any, None, None]:
        try:
            yield from self._future
        except BaseException:
            _forget_waiter(self._job, self._future)
            raise


def _forget_waiter(job: Job, future: asyncio.Future[None]) -> None:
    """Drop the future of a waiter whose task was cancelled from the job's list."""
    waiters = job._waiters
    if isinstance(waiters, list) and future in waiters:
        waiters.remove(future)


_warned_options: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_not_applied(backend_name: str, result: Any) -> None:
    """Warn once per (backend, option path) about options a result says were not applied."""
    metadata = getattr(result, "metadata", None)
    not_applied = metadata.get("options_not_applied") if isinstance(metadata, dict) else None
    if not not_applied:
        return
    with _warned_lock:
        fresh = {path: why for path, why in not_applied.items() if (backend_name, path) not in _warned_options}
        _warned_options.update((backend_name, path) for path in fresh)
    if fresh:
        listed = "; ".join(f"{path}: {why}" for path, why in fresh.items())
        warnings.warn(
            f"backend {backend_name!r} did not apply some options ({listed}); results list them under "
            "metadata['options_not_applied'] (this warning is given once per backend and option)",
            OptionsNotAppliedWarning,
            stacklevel=4,  # the await (or result()) in the caller
        )
