"""Blocking Session, Batch, Estimator and Sampler for scripts and notebooks.

The same names as the async API, used without ``async``/``await``::

    from aqrt.sync import Estimator, Session

    with Session(backend="aqrt_statevector") as session:
        job = Estimator(mode=session).run([(circuit, observable)])
        print(job.job_id(), job.status())          # "job-...", "QUEUED" / "RUNNING" / "DONE"
        evs = job.result()[0].data.evs               # blocks until the job is final

This is not a second runtime: every call runs the async objects of :mod:`aqrt` on one
background event loop per process (started by an anyio blocking portal, in a thread of its
own) and waits for the answer; ``job.result()`` waits for the job itself (an event it sets as
it settles). So the sessions' rules, the options, the engine and the errors are the async
API's. Because the loop is another thread, the blocking calls also work where the calling
thread already runs an event loop (a Jupyter cell) and from any number of threads at once.

The loop starts on first use and stops at interpreter exit or on :func:`shutdown`, which first
cancels the jobs that are still unfinished. Objects made before a ``shutdown()`` refuse further
use; new ones start a fresh loop.

IBM Quantum (or an ``aqrt serve``) over HTTP is :class:`RuntimeService`, blocking; its backends
go wherever a backend is taken. :func:`as_completed` and :meth:`Session.as_completed` yield jobs
as they finish.

Where the facade follows qiskit-ibm-runtime rather than the async :class:`aqrt.Job`:
``job.status()`` returns IBM's status strings, ``job.done()`` means "finished successfully"
(``in_final_state()`` means finished in any way) and ``job.job_id()`` is a method.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures.thread  # also registers its exit hook before ours, so ours runs first
import contextvars
import dataclasses
import functools
import inspect
import math
import os
import queue
import sys
import threading
import time
import types
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeAlias, TypeVar, cast, overload

import anyio
import anyio.from_thread
from qiskit.providers import BackendV2

from .backends import Backend, LocalService, Service
from .errors import BackendMismatchError, InvalidInputError, JobCancelledError, JobError, ResultTimeoutError
from .job import Job as AsyncJob
from .job import JobMetrics, JobStatus
from .options import Options
from .primitives import Estimator as AsyncEstimator
from .primitives import Executor as AsyncExecutor
from .primitives import Sampler as AsyncSampler
from .session import Batch as AsyncBatch
from .session import Session as AsyncSession
from .session import SessionState

if TYPE_CHECKING:  # the IBM client loads aiohttp: imported when a RuntimeService is made
    from .backends.ibm import Account, IBMBackend, RetryPolicy
    from .backends.ibm import RemoteJob as AsyncRemoteJob
    from .backends.ibm import RuntimeService as AsyncRuntimeService

__all__ = [
    "Batch",
    "Estimator",
    "EstimatorV2",
    "Executor",
    "Job",
    "LocalService",
    "RemoteJob",
    "RuntimeService",
    "Sampler",
    "SamplerV2",
    "Session",
    "as_completed",
    "shutdown",
]

_T = TypeVar("_T")

# How long shutdown() waits for cancelled jobs to stop before it stops the loop anyway.
_SHUTDOWN_GRACE_SECONDS = 10.0
# How long shutdown() waits for the open RuntimeServices to close their HTTP sessions.
_SERVICE_CLOSE_SECONDS = 5.0


class _Runtime:
    """One event loop in a thread of its own, and the facade's unfinished jobs and sessions on it."""

    def __init__(self) -> None:
        self._manager = anyio.from_thread.start_blocking_portal("asyncio", name="aqrt-sync-loop")
        self.portal = self._manager.__enter__()
        self._open = True
        # Touched only on the loop thread: what shutdown() cancels.
        self._jobs: weakref.WeakSet[AsyncJob] = weakref.WeakSet()
        self._sessions: weakref.WeakSet[AsyncSession] = weakref.WeakSet()
        # Open IBM services, held until closed: their HTTP sessions are closed on this loop.
        self._services: set[AsyncRuntimeService] = set()
        # The blocking handle of each job still referenced, so iterators hand back the user's own.
        self._handles: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        # call()'s tasks on the loop (touched there only), and the answers threads wait for (under
        # the lock): shutdown cancels the first and fails whatever of the second is left.
        self._calls: set[asyncio.Task[Any]] = set()
        self._waiting: set[concurrent.futures.Future[Any]] = set()
        self._waiting_lock = threading.Lock()
        self._loop_thread, self._loop = self.portal.call(_loop_identity)

    @overload
    def call(self, func: Callable[..., Coroutine[Any, Any, _T]], *args: Any) -> _T: ...
    @overload
    def call(self, func: Callable[..., _T], *args: Any) -> _T: ...

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the loop (awaited if it returns an awaitable, as anyio's
        ``BlockingPortal.call`` does) and return its result.

        A task of the loop's own started by ``call_soon_threadsafe``, rather than the portal's
        ``call``: each portal call starts a task in the portal's task group under a cancel scope
        of its own, ~0.25-0.3 ms a round trip on a 2-core VM against ~0.1 ms, and a script's
        every ``run()`` makes one. The task runs in an empty context (a portal task runs in a
        copy of the caller's): nothing of the calling thread's context, such as an async
        session of its own event loop, reaches the loop's code.
        """
        self.check_caller()
        answer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._waiting_lock:
            if not self._open:
                raise _stopped_error()
            self._waiting.add(answer)
        try:
            try:
                self._loop.call_soon_threadsafe(self._start_call, answer, func, args, context=contextvars.Context())
            except RuntimeError:  # "Event loop is closed": shutdown() stopped it meanwhile
                raise _stopped_error() from None
            return answer.result()
        finally:
            with self._waiting_lock:
                self._waiting.discard(answer)

    def check_caller(self) -> None:
        """Refuse a blocking call on the loop's own thread, or once the loop stopped.

        Raises:
            RuntimeError: the calling thread is the loop's, or shutdown() stopped the loop.
        """
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "aqrt.sync blocks until the loop answers, so it cannot be called on that loop itself "
                "(from a job's callback, say); use the async API there"
            )
        if not self._open:
            raise _stopped_error()

    def _start_call(
        self, answer: concurrent.futures.Future[Any], func: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._run_call(answer, func, args))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _run_call(
        self, answer: concurrent.futures.Future[Any], func: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        # The answer is set here, not from a done callback: the calling thread wakes a turn sooner.
        try:
            value = func(*args)
            if inspect.isawaitable(value):
                value = await value
        except asyncio.CancelledError:
            answer.cancel()  # shutdown cancelled the call: the caller gets CancelledError, as from the portal
            raise
        except BaseException as error:
            answer.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            answer.set_result(value)

    @property
    def is_open(self) -> bool:
        """False once shutdown() stopped this loop."""
        return self._open

    def enter(self, session: AsyncSession) -> AbstractContextManager[Any]:
        """Enter ``async with session`` on the loop; the returned manager's exit leaves it there."""
        if not self._open:
            raise _stopped_error()
        block = self.portal.wrap_async_context_manager(session)
        block.__enter__()
        return block

    def track_session(self, session: AsyncSession) -> None:
        self.call(self._sessions.add, session)

    def submit(
        self, primitive: AsyncEstimator | AsyncSampler | AsyncExecutor, pubs: Iterable[Any], keywords: dict[str, Any]
    ) -> Job:
        """Submit on the loop (waiting for room in a bounded session) and track the job."""
        return self.call(self._submit, primitive, pubs, keywords)

    async def _submit(
        self, primitive: AsyncEstimator | AsyncSampler | AsyncExecutor, pubs: Iterable[Any], keywords: dict[str, Any]
    ) -> Job:
        job = await primitive.submit(pubs, **keywords)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return self.handle(job)

    def handle(self, job: AsyncJob) -> Job:
        """The blocking handle of ``job``: the one already made while it is referenced (on the loop)."""
        handle = self._handles.get(job.job_id)
        if handle is None or handle._job is not job:
            handle = Job(job, self)
            self._handles[job.job_id] = handle
        return handle

    def iterate_jobs(self, jobs: AsyncGenerator[AsyncJob, None]) -> Iterator[Job]:
        """``jobs`` (an async generator run on the loop, one step per ``next()``) as blocking handles."""
        try:
            while True:
                job = self.call(self._next_job, jobs)
                if job is None:
                    return
                yield job
        finally:
            # Abandoned early: close it on the loop (not possible from the loop itself, nor once stopped).
            if self._open and threading.get_ident() != self._loop_thread:
                self.call(jobs.aclose)

    async def _next_job(self, jobs: AsyncGenerator[AsyncJob, None]) -> Job | None:
        try:
            return self.handle(await anext(jobs))
        except StopAsyncIteration:
            return None

    def track_service(self, service: AsyncRuntimeService) -> None:
        self.call(self._add_service, service)

    def _add_service(self, service: AsyncRuntimeService) -> None:
        self._services.add(service)
        _service_loops[service] = self

    def forget_service(self, service: AsyncRuntimeService) -> None:
        self.call(self._services.discard, service)

    def serves(self, service: AsyncRuntimeService) -> bool:
        """Whether ``service`` is open on this loop (made by the facade, not closed)."""
        return service in self._services

    def close(self, grace: float) -> None:
        """Cancel unfinished jobs and sessions, wait up to ``grace`` seconds for them, stop the loop."""
        if not self._open:
            return
        with self._waiting_lock:
            self._open = False  # from now on every other call is refused
        try:
            self.portal.call(self._wind_down, grace)
            self.portal.call(self._cancel_calls)
            self.portal.call(self.portal.stop, True)  # True: `with Session` blocks still open are cancelled
        except RuntimeError:
            pass  # the loop already stopped
        finally:
            self._manager.__exit__(None, None, None)  # joins the loop thread
            # Nothing answers any more: wake every thread still waiting on this loop.
            with self._waiting_lock:
                left, self._waiting = self._waiting, set()
            for answer in left:
                if not answer.done():
                    answer.set_exception(_stopped_error())
            for handle in list(self._handles.values()):
                handle._final.set()  # its job is not final: result() says the loop stopped

    def _cancel_calls(self) -> None:
        for task in list(self._calls):
            task.cancel()

    async def _wind_down(self, grace: float) -> None:
        with anyio.move_on_after(grace):
            for job in list(self._jobs):
                job.cancel()
            for session in list(self._sessions):
                await session.cancel()
            for job in list(self._jobs):
                await job.wait()
        # After the jobs: a remote job's cancellation goes out through its service's connection.
        with anyio.move_on_after(_SERVICE_CLOSE_SECONDS):
            for service in list(self._services):
                await service.close()
        self._services.clear()


def _loop_identity() -> tuple[int, asyncio.AbstractEventLoop]:
    return threading.get_ident(), asyncio.get_running_loop()


def _stopped_error() -> RuntimeError:
    return RuntimeError(
        "aqrt.sync was shut down (aqrt.sync.shutdown() or interpreter exit); this object belonged to the "
        "stopped event loop: make a new Session / Estimator / Sampler"
    )


_runtime_lock = threading.Lock()
_runtime: _Runtime | None = None
_exiting = False
_exit_hook_registered = False


def _current_runtime() -> _Runtime:
    """The process's facade loop, started on first use."""
    global _runtime, _exit_hook_registered
    with _runtime_lock:
        if _exiting:
            raise RuntimeError("aqrt.sync cannot start: the interpreter is exiting")
        if _runtime is None:
            if not _exit_hook_registered:
                _register_exit_hook()
                _exit_hook_registered = True
            _runtime = _Runtime()
        return _runtime


def _register_exit_hook() -> None:
    """Stop the loop at interpreter exit, before the engine's worker thread is joined.

    ``threading``'s exit hooks run before the non-daemon threads are joined and before
    ``atexit``'s; the engine worker (a ``concurrent.futures`` thread) is joined by one of them,
    registered earlier, and hooks run last-registered first. Stopping here cancels a running job
    at its next checkpoint instead of waiting for it to finish. ``atexit`` is the fallback.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_at_exit)
        except RuntimeError:  # already shutting down
            pass
    atexit.register(_at_exit)


def _at_exit() -> None:
    global _exiting
    with _runtime_lock:
        _exiting = True
    shutdown()


def shutdown(grace: float = _SHUTDOWN_GRACE_SECONDS) -> None:
    """Stop the facade's event loop: cancel unfinished jobs and open sessions, wait up to
    ``grace`` seconds for them to stop, then end the loop's thread.

    Called at interpreter exit; call it yourself to release the thread earlier (tests, long-lived
    notebooks). Objects made before refuse further use; new ones start a fresh loop. Calling it
    when nothing runs does nothing.
    """
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close(grace)


# The innermost `with Session(...)` block of the calling thread (and context), for primitives made
# with no mode inside it (as in qiskit-ibm-runtime).
_current_sync_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "aqrt_sync_session", default=None
)


class Session:
    """A dedicated session, blocking: ``with Session(backend=...) as session:``.

    Takes the arguments of :class:`aqrt.Session` and follows its rules (one job at a time in
    submission order, ``max_time``, the first-job cache rule). Leaving the block waits for the
    session's jobs; an exception in the block cancels them. Without a ``with`` block the session
    opens on its first job; ``close()`` or ``cancel()`` ends it.

    Args:
        service, backend, max_time, interactive_timeout, max_pending, on_full: as for
            :class:`aqrt.Session` (``service``: a :class:`LocalService` or an
            :class:`aqrt.sync.RuntimeService`). With ``max_pending``, ``run()`` waits for room
            (``on_full="wait"``) or raises ``SessionFullError``.

    Example:
        >>> with Session(backend="aqrt_statevector") as session:              # doctest: +SKIP
        ...     evs = Estimator(mode=session).run([(circuit, "ZZ")]).result()[0].data.evs
    """

    _async_session: AsyncSession

    def __init__(
        self,
        service: Service | RuntimeService | None = None,
        backend: Backend | BackendV2 | str | None = None,
        *,
        max_time: int | str | None = None,
        interactive_timeout: int | str | None = None,
        max_pending: int | None = None,
        on_full: str = "wait",
    ) -> None:
        runtime = _current_runtime()
        session = AsyncSession(
            _async_service(service, backend, runtime),
            backend,
            max_time=max_time,
            interactive_timeout=interactive_timeout,
            max_pending=max_pending,
            on_full=on_full,
        )
        self._adopt(session, service, runtime)

    def _adopt(self, session: AsyncSession, service: Service | RuntimeService | None, runtime: _Runtime) -> None:
        # The async object is made here (it needs no loop); from now on it is used on the loop only.
        self._async_session = session
        self._service = service
        self._runtime = runtime
        self._runtime.track_session(session)
        self._block: AbstractContextManager[Any] | None = None
        self._token: contextvars.Token[Session | None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Enter the session (``async with`` on the loop) and make it this thread's current one."""
        self._block = self._runtime.enter(self._async_session)
        self._token = _current_sync_session.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        """Wait for the session's jobs (or cancel them if the block raised), then close it."""
        if self._token is not None:
            _current_sync_session.reset(self._token)
            self._token = None
        block, self._block = self._block, None
        if block is not None and self._runtime.is_open:  # shutdown() already cancelled the session
            block.__exit__(exc_type, exc, traceback)

    def close(self) -> None:
        """Accept no new jobs and wait for the submitted ones to finish."""
        self._runtime.call(self._async_session.close)

    def cancel(self) -> None:
        """Cancel every unfinished job, then close the session."""
        self._runtime.call(self._async_session.cancel)

    def as_completed(self) -> Iterator[Job]:
        """Yield this session's jobs as they finish, blocking in between: those unfinished now
        and those submitted later, until the session is closed and every job has finished (the
        blocking :meth:`aqrt.Session.as_completed`).

        Returns:
            An iterator of finished :class:`Job` handles (the ones ``run()`` returned).

        Example:
            >>> for job in batch.as_completed():              # doctest: +SKIP
            ...     print(job.job_id(), job.result()[0].data.evs)
        """
        jobs = cast("AsyncGenerator[AsyncJob, None]", self._async_session.as_completed())
        return self._runtime.iterate_jobs(jobs)

    # -- introspection ---------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._async_session.session_id

    @property
    def mode(self) -> str:
        """``"dedicated"`` or ``"batch"``."""
        return self._async_session.mode

    @property
    def backend(self) -> Backend:
        """The session's backend object (qiskit-ibm-runtime's ``session.backend()`` returns its name)."""
        return self._async_session.backend

    @property
    def service(self) -> Service | RuntimeService | None:
        """The service given (an :class:`aqrt.sync.RuntimeService` stays one), else the backend's."""
        return self._service if self._service is not None else self._async_session.service

    @property
    def max_time(self) -> int:
        return self._async_session.max_time

    @property
    def accepting_jobs(self) -> bool:
        return self._runtime.call(lambda: self._async_session.accepting_jobs)

    def status(self) -> SessionState:
        """The session's :class:`~aqrt.SessionState`, clocks applied as of now."""
        return self._runtime.call(self._async_session.status)

    def statistics(self) -> dict[str, Any]:
        """Job counts and usage (see :meth:`aqrt.Session.statistics`)."""
        return self._runtime.call(self._async_session.statistics)

    def details(self) -> dict[str, Any]:
        """Id, backend, mode, state, clocks and job counts (see :meth:`aqrt.Session.details`)."""
        return self._runtime.call(self._async_session.details)

    def __repr__(self) -> str:
        return repr(self._async_session).replace("<", "<sync ", 1)


class Batch(Session):
    """A batch, blocking: like :class:`Session` but its jobs may run concurrently.

    Args:
        service, backend, max_time, interactive_timeout, max_concurrency, max_pending, on_full:
            as for :class:`aqrt.Batch`.
    """

    def __init__(
        self,
        service: Service | RuntimeService | None = None,
        backend: Backend | BackendV2 | str | None = None,
        *,
        max_time: int | str | None = None,
        interactive_timeout: int | str | None = None,
        max_concurrency: int | None = None,
        max_pending: int | None = None,
        on_full: str = "wait",
    ) -> None:
        runtime = _current_runtime()
        batch = AsyncBatch(
            _async_service(service, backend, runtime),
            backend,
            max_time=max_time,
            interactive_timeout=interactive_timeout,
            max_concurrency=max_concurrency,
            max_pending=max_pending,
            on_full=on_full,
        )
        self._adopt(batch, service, runtime)


_Mode: TypeAlias = Session | Backend | BackendV2 | str | None


class _Primitive:
    """What the blocking Estimator and Sampler share: choosing the session, options, submitting."""

    _async_class: ClassVar[type[AsyncEstimator | AsyncSampler | AsyncExecutor]]

    def __init__(
        self,
        mode: _Mode = None,
        *,
        session: Session | None = None,
        options: Options | Mapping[str, Any] | None = None,
    ) -> None:
        if session is not None and mode is not None:
            raise InvalidInputError("pass either mode= or session=, not both")
        chosen = session if session is not None else mode
        if isinstance(chosen, AsyncSession):
            raise InvalidInputError(
                f"mode is an async {type(chosen).__name__} (aqrt.{type(chosen).__name__}); aqrt.sync's primitives "
                f"take aqrt.sync.{type(chosen).__name__}"
            )
        implicit = _current_sync_session.get()
        if implicit is not None and chosen is not None and not isinstance(chosen, Session):
            asked = chosen if isinstance(chosen, str) else chosen.name
            if asked != implicit.backend.name:
                raise BackendMismatchError(
                    f"this primitive asks for backend {asked!r} inside session {implicit.session_id} on "
                    f"{implicit.backend.name!r}; a session has one backend"
                )
            chosen = implicit
        if chosen is None:
            chosen = implicit
        self._session = chosen if isinstance(chosen, Session) else None
        if self._session is not None:
            self._runtime = self._session._runtime
            target: AsyncSession | Backend | BackendV2 | str | None = self._session._async_session
        else:
            self._runtime = _current_runtime()
            target = cast(Backend | BackendV2 | str | None, chosen)  # not a Session here
            _check_remote(target, self._runtime)
        # Made here, not on the loop: construction needs no loop (and may read device files). An
        # empty context: an async session the caller may be inside is not this primitive's.
        self._primitive = cast(
            AsyncEstimator | AsyncSampler | AsyncExecutor,
            contextvars.Context().run(self._async_class, target, options=options),
        )

    @property
    def options(self) -> Options:
        """The options, to change in place (``estimator.options.default_shots = 1000``); each job
        takes a snapshot at ``run()``."""
        return self._primitive.options

    @options.setter
    def options(self, value: Options | Mapping[str, Any]) -> None:
        self._primitive.options = value

    @property
    def session(self) -> Session | None:
        """The session jobs go to, or None in job mode."""
        return self._session

    @property
    def backend(self) -> Backend:
        return self._primitive.backend

    def _v1_check(self, pubs: Any, v1_args: tuple[Any, ...], v1_kwargs: dict[str, Any]) -> None:
        if v1_args or v1_kwargs:
            # The async run() refuses these first thing, with the message that shows the V2 form.
            self._primitive.run(pubs, *v1_args, **v1_kwargs)
            raise AssertionError("unreachable: run() refuses the V1 call shape")


class Estimator(_Primitive):
    """Expectation values, blocking: :class:`aqrt.Estimator` whose ``run()`` returns a :class:`Job`.

    Args:
        mode: a :class:`Session` / :class:`Batch`, a backend or a backend name; by default the
            session of the enclosing ``with Session(...)`` block, else job mode on the local backend.
        session: the same as ``mode=session``.
        options: as for :class:`aqrt.Estimator` (``EstimatorOptions``, ``Options`` or a dict).
    """

    _async_class = AsyncEstimator

    def run(self, pubs: Iterable[Any], *v1_args: Any, precision: float | None = None, **v1_kwargs: Any) -> Job:
        """Validate the PUBs and submit them as one job; returns its :class:`Job` at once.

        Waits only for room in a session with ``max_pending`` (``on_full="wait"``).

        Raises:
            InvalidPubError, session refusals and the V1-call-shape ``TypeError``: as
            :meth:`aqrt.Estimator.run`.
        """
        self._v1_check(pubs, v1_args, v1_kwargs)
        return self._runtime.submit(self._primitive, pubs, {"precision": precision})


class Sampler(_Primitive):
    """Shots, blocking: :class:`aqrt.Sampler` whose ``run()`` returns a :class:`Job`.

    Args:
        mode, session, options: as for :class:`Estimator` (options: ``SamplerOptions``, ...).
    """

    _async_class = AsyncSampler

    def run(self, pubs: Iterable[Any], *v1_args: Any, shots: int | None = None, **v1_kwargs: Any) -> Job:
        """Validate the PUBs and submit them as one job; returns its :class:`Job` at once.

        Raises:
            InvalidPubError, session refusals and the V1-call-shape ``TypeError``: as
            :meth:`aqrt.Sampler.run`.
        """
        self._v1_check(pubs, v1_args, v1_kwargs)
        return self._runtime.submit(self._primitive, pubs, {"shots": shots})


class Executor(_Primitive):
    """IBM's ``executor`` program, blocking: :class:`aqrt.Executor` whose ``run()`` returns a
    :class:`Job` (``job.result()``: the ``QuantumProgramResult``).

    Args:
        mode, session, options: as for :class:`Estimator` (options: ``SamplerOptions``; an
            executor job reads ``seed`` and ``max_execution_time``).
    """

    _async_class = AsyncExecutor

    def run(self, program: Any) -> Job:
        """Submit ``program`` (a ``QuantumProgram``) as one job; returns its :class:`Job` at once.

        Raises:
            AqrtError: what :meth:`aqrt.Executor.run` raises (``InvalidInputError``, session
                refusals). A program the backend refuses (``meas_level``, an item not ISA or too
                wide) fails the job, as IBM's ``executor`` program does: ``job.result()`` raises it.
        """
        return self._runtime.submit(self._primitive, program, {})


# qiskit-ibm-runtime's names.
EstimatorV2 = Estimator
SamplerV2 = Sampler


class Job:
    """A blocking handle on one job, with qiskit-ibm-runtime's ``RuntimeJobV2`` methods.

    ``status()`` returns ``"QUEUED"``, ``"RUNNING"``, ``"DONE"``, ``"CANCELLED"`` or ``"ERROR"``
    (IBM's ``"INITIALIZING"`` never occurs: a local job is queued as it is made). As in
    qiskit-ibm-runtime, ``done()`` means finished *successfully*; ``in_final_state()`` means
    finished in any way (the async :meth:`aqrt.Job.done` means the latter).
    """

    def __init__(self, job: AsyncJob, runtime: _Runtime) -> None:
        # Made on the loop (a job's done callbacks are added there). Set when the job is final, so
        # that result() waits without a trip to the loop; the callback holds the event, not the
        # handle, which the runtime keeps only while it is referenced.
        self._final = threading.Event()
        job.add_done_callback(functools.partial(_set_event, self._final))
        self._job = job
        self._runtime = runtime

    def job_id(self) -> str:
        """The job's id (a method, as in qiskit-ibm-runtime)."""
        return str(self._job.job_id)

    @property
    def session_id(self) -> str | None:
        return self._job.session_id

    @property
    def primitive_id(self) -> str:
        """``"estimator"``, ``"sampler"`` or ``"executor"``."""
        return self._job.program

    @property
    def backend_name(self) -> str:
        return self._job.backend_name

    @property
    def options(self) -> Options:
        """The frozen snapshot of the options the job runs with."""
        return self._job.options

    def status(self) -> str:
        """``"QUEUED"``, ``"RUNNING"``, ``"DONE"``, ``"CANCELLED"`` or ``"ERROR"``."""
        return self._job.status().value

    def done(self) -> bool:
        """True once the job finished successfully (qiskit-ibm-runtime's meaning)."""
        return self._job.status() is JobStatus.DONE

    def running(self) -> bool:
        return self._job.status() is JobStatus.RUNNING

    def cancelled(self) -> bool:
        return self._job.status() is JobStatus.CANCELLED

    def errored(self) -> bool:
        return self._job.status() is JobStatus.ERROR

    def in_final_state(self) -> bool:
        """True once the job is DONE, ERROR or CANCELLED."""
        return self._job.status().is_final

    def cancel(self) -> bool:
        """Ask the job to stop (a queued job is cancelled at once, a running one at its next
        checkpoint); returns False if it had already finished."""
        return self._runtime.call(self._job.cancel)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for and return the job's ``PrimitiveResult``.

        Args:
            timeout: seconds to wait; ``None`` waits for ever.

        Raises:
            ResultTimeoutError: ``timeout`` elapsed first (the job keeps going).
            JobCancelledError / JobFailedError / SessionError: as :meth:`aqrt.Job.result`.
        """
        self.wait_for_final_state(timeout)
        return self._job._outcome()  # the job is final: its outcome no longer changes

    def wait_for_final_state(self, timeout: float | None = None) -> None:
        """Wait until the job is final, without raising for its outcome.

        The calling thread waits on an event the job sets as it settles, not on a call to the
        loop: a tiny job's ``result()`` costs a thread wake-up, not a round trip.

        Raises:
            ResultTimeoutError: ``timeout`` elapsed first.
        """
        self._runtime.check_caller()
        if timeout is not None and not math.isfinite(timeout):
            timeout = None
        if not self._final.wait(timeout):
            job = self._job
            raise ResultTimeoutError(
                f"job {job.job_id} still {job.status().value} after waiting {timeout} s", job_id=job.job_id
            )
        if not self._job.done():  # woken by shutdown(), not by the job
            raise _stopped_error()

    def exception(self) -> BaseException | None:
        """The error of a job in ERROR or CANCELLED state, else None."""
        return self._job.exception()

    def error_message(self) -> str | None:
        """The error's message for a job in ERROR or CANCELLED state, else None."""
        error = self._job.exception()
        return None if error is None else str(error)

    def metrics(self) -> JobMetrics:
        """Created/running/finished timestamps (aqrt's :class:`~aqrt.JobMetrics`)."""
        return self._job.metrics()

    def __repr__(self) -> str:
        return repr(self._job).replace("<Job", "<sync Job", 1)


def _set_event(event: threading.Event, _job: AsyncJob) -> None:
    event.set()


# -- IBM Quantum Runtime over HTTP ---------------------------------------------------------------

# Each async RuntimeService made by the facade, and the loop it lives on: its HTTP session and
# poller belong to that loop, so its backends are refused anywhere else.
_service_loops: weakref.WeakKeyDictionary[AsyncRuntimeService, _Runtime] = weakref.WeakKeyDictionary()


def _async_service(service: Service | RuntimeService | None, backend: object, runtime: _Runtime) -> Service | None:
    """The async service a blocking session hands to :class:`aqrt.Session`, checked."""
    if isinstance(service, RuntimeService):
        if service._runtime is not runtime:
            raise _stopped_error()
        service._check_open()
        chosen: Service | None = service._service
    else:
        chosen = service
    _check_remote(chosen, runtime)
    _check_remote(backend, runtime)
    return chosen


def _check_remote(given: object, runtime: _Runtime) -> None:
    """Refuse an IBM service or backend that does not live on this facade loop.

    An async ``aqrt.RuntimeService`` keeps its HTTP session on the loop that first used it, so
    one made for async code cannot serve the facade's loop. Nothing IBM exists before
    ``aqrt.backends.ibm`` is imported, so aiohttp is not loaded here just to say no.
    """
    if "aqrt.backends.ibm" not in sys.modules:
        return
    from .backends.ibm import IBMBackend
    from .backends.ibm import RuntimeService as AsyncService

    service = given.service if isinstance(given, IBMBackend) else given
    if not isinstance(service, AsyncService):
        return
    owner = _service_loops.get(service)
    what = f"backend {given.name!r}" if isinstance(given, IBMBackend) else "this service"
    if owner is None:
        raise InvalidInputError(
            f"{what} comes from an async aqrt.RuntimeService, whose connection belongs to the event loop that "
            "uses it; in synchronous code use aqrt.sync.RuntimeService(...) and its backends"
        )
    if owner is not runtime:
        raise _stopped_error()
    if not owner.serves(service):
        raise RuntimeError(f"{what} belongs to a closed aqrt.sync.RuntimeService; make a new one")


class RuntimeService:
    """IBM Quantum Runtime over HTTP, blocking: :class:`aqrt.RuntimeService` whose methods return
    their answers instead of coroutines.

    Its backends go wherever a backend is taken (``Session(backend=...)``, ``Batch``,
    ``Estimator(mode=backend)``), and the service itself as ``Session(service=..., backend=name)``.
    The same arguments, credentials, retries and errors as the async client; no I/O happens in
    the constructor (credentials are resolved on first use). Close it with :meth:`close` or a
    ``with`` block; :func:`shutdown` (and interpreter exit) closes the ones still open.

    The async client's ``poller``, ``auth`` and ``transport`` live on the facade's loop and are
    not offered here; ``fetch_backend`` is the async ``Service`` protocol's name for
    :meth:`backend`.

    Args:
        channel, token, instance, url, iam_url: as for :class:`aqrt.RuntimeService` (an
            ``aqrt serve``: ``url=<base>/api/v1``, ``iam_url=<base>``).
        name, filename, request_timeout, deadline, retry, seed: as for :class:`aqrt.RuntimeService`.

    Raises:
        InvalidInputError: an unknown channel (at once); bad credentials surface on first use.

    Example:
        >>> with RuntimeService(channel="ibm_cloud") as service:              # doctest: +SKIP
        ...     with Session(backend=service.least_busy()) as session:
        ...         evs = Estimator(mode=session).run([(isa_circuit, observable)]).result()[0].data.evs
    """

    def __init__(
        self,
        channel: str | None = None,
        token: str | None = None,
        instance: str | None = None,
        url: str | None = None,
        iam_url: str | None = None,
        *,
        name: str | None = None,
        filename: str | os.PathLike[str] | None = None,
        request_timeout: float = 60.0,
        deadline: float = 600.0,
        retry: RetryPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        from .backends.ibm import RuntimeService as AsyncService

        self._service: AsyncRuntimeService = AsyncService(
            channel,
            token,
            instance,
            url,
            iam_url,
            name=name,
            filename=filename,
            request_timeout=request_timeout,
            deadline=deadline,
            retry=retry,
            seed=seed,
        )
        self._closed = False
        self._runtime = _current_runtime()
        self._runtime.track_service(self._service)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Open the service (resolve the credentials, start the HTTP session)."""
        self._call(self._service.__aenter__)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the service."""
        self.close()

    async def __aenter__(self) -> Self:
        """Refused, naming the fix: this is the blocking service."""
        raise TypeError(
            "aqrt.sync.RuntimeService is the blocking service: use `with aqrt.sync.RuntimeService(...)`, or "
            "`async with aqrt.RuntimeService(...)` in async code"
        )

    async def __aexit__(self, *exc_info: object) -> None:
        """Never reached: ``__aenter__`` refuses."""

    def close(self) -> None:
        """Stop the job poller and close the HTTP session (idempotent; a no-op after
        :func:`shutdown`, which closed it)."""
        if self._closed:
            return
        self._closed = True
        if self._runtime.is_open:
            self._runtime.call(self._service.close)
            self._runtime.forget_service(self._service)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this aqrt.sync.RuntimeService is closed; make a new one")

    def _call(self, func: Callable[..., Coroutine[Any, Any, _T]], *args: Any) -> _T:
        self._check_open()
        return self._runtime.call(func, *args)

    # -- facts -----------------------------------------------------------------------------------

    @property
    def account(self) -> Account | None:
        """The resolved account (None before first use)."""
        return self._service.account

    @property
    def channel(self) -> str | None:
        """The account's channel (None before first use)."""
        return self._service.channel

    @property
    def instance(self) -> str | None:
        """The instance CRN (None before first use)."""
        return self._service.instance

    # -- backends --------------------------------------------------------------------------------

    def backends(self) -> list[IBMBackend]:
        """Every backend of the instance, configurations fetched."""
        return self._call(self._service.backends)

    def backend(self, name: str | None = None) -> IBMBackend:
        """The backend ``name``, its configuration fetched (cached per name); ``None``: the least
        busy one on ``ibm_cloud``.

        Raises:
            BackendNotFoundError: no such backend.
            InvalidInputError: no name on ``ibm_quantum_platform``.
        """
        return self._call(self._service.backend, name)

    def least_busy(self, min_num_qubits: int | None = None) -> IBMBackend:
        """The online backend with the shortest queue (and at least ``min_num_qubits``).

        Raises:
            BackendNotFoundError: none matches.
        """
        return self._call(self._service.least_busy, min_num_qubits)

    def known_backend(self, name: str | None = None) -> IBMBackend | None:
        """The backend ``name`` if it was fetched already (no request is made), else None."""
        return self._service.known_backend(name)

    # -- jobs ------------------------------------------------------------------------------------

    def job(self, job_id: str) -> RemoteJob:
        """A job of this instance by its server id, or by the id of the aqrt job that submitted
        it (``service.job(job.job_id())``, as with qiskit-ibm-runtime).

        Raises:
            NotFoundError: no such job.
        """
        return RemoteJob(self._call(self._service.job, job_id), self._runtime)

    def jobs(
        self,
        *,
        limit: int = 10,
        skip: int = 0,
        backend: str | None = None,
        pending: bool | None = None,
        program: str | None = None,
        session_id: str | None = None,
        tags: list[str] | None = None,
    ) -> list[RemoteJob]:
        """Jobs of this instance, newest first, filtered as ``GET /jobs`` allows (as
        :meth:`aqrt.RuntimeService.jobs`)."""
        listing = functools.partial(
            self._service.jobs,
            limit=limit,
            skip=skip,
            backend=backend,
            pending=pending,
            program=program,
            session_id=session_id,
            tags=tags,
        )
        return [RemoteJob(job, self._runtime) for job in self._call(listing)]

    def __repr__(self) -> str:
        return repr(self._service).replace("<", "<sync ", 1)


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """How a server job ended: its result, or the error that says why there is none."""

    value: Any = None
    error: JobError | None = None


class RemoteJob:
    """A job on the server, as :meth:`RuntimeService.job` / :meth:`RuntimeService.jobs` find it,
    blocking, with qiskit-ibm-runtime's ``RuntimeJobV2`` methods (jobs submitted by the
    primitives are :class:`Job` handles).

    ``status()`` asks the server (one ``GET``) until the job is final; the outcome is fetched
    once and kept. ``cancel()`` returns None, as :meth:`aqrt.backends.ibm.RemoteJob.cancel` does.
    """

    def __init__(self, job: AsyncRemoteJob, runtime: _Runtime) -> None:
        self._job = job
        self._runtime = runtime
        self._final: JobStatus | None = None
        self._outcome: _Outcome | None = None

    def job_id(self) -> str:
        """The server's job id (a method, as in qiskit-ibm-runtime)."""
        return self._job.job_id

    @property
    def backend_name(self) -> str | None:
        return self._job.backend_name

    @property
    def session_id(self) -> str | None:
        """The server's id of the job's session, if it runs in one."""
        return self._job.session_id

    @property
    def tags(self) -> list[str]:
        return self._job.tags

    @property
    def primitive_id(self) -> str | None:
        """``"estimator"``, ``"sampler"`` or ``"executor"`` (the body's ``program.id``)."""
        program = self._job.raw.get("program")
        return str(program["id"]) if isinstance(program, dict) and "id" in program else None

    def status(self) -> str:
        """``"QUEUED"``, ``"RUNNING"``, ``"DONE"``, ``"CANCELLED"`` or ``"ERROR"`` (a job the
        server stopped for running too long is ``"ERROR"``)."""
        if self._final is None:
            status = self._runtime.call(self._job.status)
            if status.is_final:
                self._final = status
            return status.value
        return self._final.value

    def done(self) -> bool:
        """True once the job finished successfully (qiskit-ibm-runtime's meaning)."""
        return self.status() == JobStatus.DONE.value

    def running(self) -> bool:
        return self.status() == JobStatus.RUNNING.value

    def cancelled(self) -> bool:
        return self.status() == JobStatus.CANCELLED.value

    def errored(self) -> bool:
        return self.status() == JobStatus.ERROR.value

    def in_final_state(self) -> bool:
        """True once the job is DONE, ERROR or CANCELLED."""
        self.status()
        return self._final is not None

    def cancel(self) -> None:
        """``POST /jobs/{id}/cancel`` (repeating it is harmless)."""
        self._runtime.call(self._job.cancel)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for and return the job's decoded ``PrimitiveResult``.

        Args:
            timeout: seconds to wait; ``None`` waits for ever.

        Raises:
            ResultTimeoutError: ``timeout`` elapsed first (the job keeps going).
            JobFailedError / JobCancelledError / JobTimeoutError: the job did not complete.
            RuntimeRequestError: HTTP failed.
        """
        outcome = self._runtime.call(functools.partial(self._settle_within, timeout))
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    def wait_for_final_state(self, timeout: float | None = None) -> None:
        """Wait until the job is final, without raising for its outcome.

        Raises:
            ResultTimeoutError: ``timeout`` elapsed first.
        """
        self._runtime.call(functools.partial(self._settle_within, timeout))

    def exception(self) -> BaseException | None:
        """The error of a job that ended in ERROR or CANCELLED state, else None (waits for the
        outcome of a job that is final on the server but not fetched yet)."""
        if self._outcome is None:
            if not self.in_final_state():
                return None
            self.wait_for_final_state()
        assert self._outcome is not None
        return self._outcome.error

    def error_message(self) -> str | None:
        """The error's message for a job in ERROR or CANCELLED state, else None."""
        error = self.exception()
        return None if error is None else str(error)

    async def _settle_within(self, timeout: float | None) -> _Outcome:
        with anyio.move_on_after(timeout):
            return await self._settle()
        raise ResultTimeoutError(
            f"server job {self._job.job_id} not final after waiting {timeout} s", job_id=self._job.job_id
        )

    async def _settle(self) -> _Outcome:
        """Wait (on the service's poller) for the outcome; fetched once, then kept."""
        if self._outcome is None:
            try:
                outcome = _Outcome(value=await self._job.result())
            except JobError as error:  # the job did not complete; HTTP failures are not outcomes
                outcome = _Outcome(error=error)
            self._outcome = outcome
            self._final = _final_status(outcome)
        return self._outcome

    def __repr__(self) -> str:
        return repr(self._job).replace("<RemoteJob", "<sync RemoteJob", 1)


def _final_status(outcome: _Outcome) -> JobStatus:
    if outcome.error is None:
        return JobStatus.DONE
    return JobStatus.CANCELLED if isinstance(outcome.error, JobCancelledError) else JobStatus.ERROR


# -- jobs as they finish -------------------------------------------------------------------------

_AnyJob = TypeVar("_AnyJob", bound=Job | RemoteJob)


def as_completed(jobs: Iterable[_AnyJob], timeout: float | None = None) -> Iterator[_AnyJob]:
    """Yield ``jobs`` as they finish (done, failed or cancelled), as
    ``concurrent.futures.as_completed`` does for futures.

    Jobs known to be final already come first, in the order given; a job given twice comes once. For the
    jobs of one session, including those submitted later, see :meth:`Session.as_completed`.

    Args:
        jobs: :class:`Job` handles (from ``run()``) and :class:`RemoteJob` handles (from
            :meth:`RuntimeService.job` / ``jobs``).
        timeout: seconds, counted from this call, after which the iterator raises; ``None``
            waits for ever. The jobs keep going either way.

    Returns:
        An iterator of the same handles.

    Raises:
        InvalidInputError: something other than an ``aqrt.sync`` job (an async ``aqrt.Job``:
            use ``asyncio.as_completed``).
        ResultTimeoutError: (while iterating) ``timeout`` elapsed with jobs unfinished.
        RuntimeRequestError: (while iterating) waiting for a :class:`RemoteJob` failed over HTTP.

    Example:
        >>> jobs = [estimator.run([(circuit, "Z", [angle])]) for angle in angles]    # doctest: +SKIP
        >>> for job in as_completed(jobs):
        ...     print(job.job_id(), job.result()[0].data.evs)
    """
    pending: list[_AnyJob] = list(dict.fromkeys(jobs))
    for job in pending:
        if not isinstance(job, Job | RemoteJob):
            hint = "; for aqrt.Job use asyncio.as_completed" if isinstance(job, AsyncJob) else ""
            raise InvalidInputError(
                f"as_completed takes aqrt.sync.Job / aqrt.sync.RemoteJob handles, got {type(job).__name__}{hint}"
            )
    deadline = None if timeout is None else time.monotonic() + timeout
    if not pending:
        return iter(())
    runtime = pending[0]._runtime
    if any(job._runtime is not runtime for job in pending) or not runtime.is_open:
        raise _stopped_error()
    return cast(Iterator[_AnyJob], _in_finishing_order(runtime, list[_Handle](pending), deadline))


_Handle: TypeAlias = Job | RemoteJob
_Report: TypeAlias = Callable[[tuple[_Handle, BaseException | None]], None]


def _in_finishing_order(runtime: _Runtime, jobs: list[_Handle], deadline: float | None) -> Iterator[_Handle]:
    """The body of :func:`as_completed`: watching starts at the first ``next()`` and stops when
    the iterator ends or is dropped."""
    finished: queue.SimpleQueue[tuple[_Handle, BaseException | None]] = queue.SimpleQueue()
    watch = runtime.call(_Watch.start, jobs, finished.put)
    try:
        for yielded in range(len(jobs)):
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                job, error = finished.get(timeout=wait)
            except queue.Empty:
                raise ResultTimeoutError(f"{len(jobs) - yielded} (of {len(jobs)}) jobs unfinished") from None
            if error is not None:
                raise error
            yield job
    finally:
        if runtime.is_open and threading.get_ident() != runtime._loop_thread:
            runtime.call(watch.stop)


class _Watch:
    """On the loop: report each job of an ``as_completed`` call once it is final."""

    def __init__(self) -> None:
        self._callbacks: list[tuple[AsyncJob, Callable[[AsyncJob], None]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def start(cls, jobs: list[_Handle], report: _Report) -> _Watch:
        watch = cls()
        loop = asyncio.get_running_loop()
        for job in jobs:
            if isinstance(job, Job):
                callback = functools.partial(_report_final, report, job)
                watch._callbacks.append((job._job, callback))
                job._job.add_done_callback(callback)  # called at once if final already
            else:
                watch._tasks.append(loop.create_task(_report_settled(report, job)))
        return watch

    def stop(self) -> None:
        """Stop watching (the iterator ended or was abandoned); the jobs are not touched."""
        for job, callback in self._callbacks:
            job.remove_done_callback(callback)
        for task in self._tasks:
            task.cancel()


def _report_final(report: _Report, handle: Job, _job: AsyncJob) -> None:
    report((handle, None))


async def _report_settled(report: _Report, job: RemoteJob) -> None:
    try:
        await job._settle()
    except Exception as error:  # HTTP failed: the iterator raises it
        report((job, error))
    else:
        report((job, None))
