"""Blocking Session, Batch, Estimator and Sampler for scripts and notebooks.

The same names as the async API, used without ``async``/``await``::

    from aqrt.sync import Estimator, Session

    with Session(backend="aqrt_statevector") as session:
        job = Estimator(mode=session).run([(circuit, observable)])
        print(job.job_id(), job.status())          # "job-...", "QUEUED" / "RUNNING" / "DONE"
        evs = job.result()[0].data.evs               # blocks until the job is final

This is not a second runtime: every call runs the async objects of :mod:`aqrt` on one
background event loop per process (an anyio blocking portal, in a thread of its own) and
waits for the answer. So the sessions' rules, the options, the engine and the errors are the
async API's. Because the loop is another thread, the blocking calls also work where the calling
thread already runs an event loop (a Jupyter cell) and from any number of threads at once.

The loop starts on first use and stops at interpreter exit or on :func:`shutdown`, which first
cancels the jobs that are still unfinished. Objects made before a ``shutdown()`` refuse further
use; new ones start a fresh loop.

Where the facade follows qiskit-ibm-runtime rather than the async :class:`aqrt.Job`:
``job.status()`` returns IBM's status strings, ``job.done()`` means "finished successfully"
(``in_final_state()`` means finished in any way) and ``job.job_id()`` is a method.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  # registers its exit hook before ours, so ours runs first
import contextvars
import functools
import threading
import types
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Self, TypeAlias, TypeVar, cast, overload

import anyio
import anyio.from_thread
from qiskit.providers import BackendV2

from .backends import Backend, LocalService, Service
from .errors import BackendMismatchError, InvalidInputError, ResultTimeoutError
from .job import Job as AsyncJob
from .job import JobMetrics, JobStatus
from .options import Options
from .primitives import Estimator as AsyncEstimator
from .primitives import Executor as AsyncExecutor
from .primitives import Sampler as AsyncSampler
from .session import Batch as AsyncBatch
from .session import Session as AsyncSession
from .session import SessionState

__all__ = [
    "Batch",
    "Estimator",
    "EstimatorV2",
    "Executor",
    "Job",
    "LocalService",
    "Sampler",
    "SamplerV2",
    "Session",
    "shutdown",
]

_T = TypeVar("_T")

# How long shutdown() waits for cancelled jobs to stop before it stops the loop anyway.
_SHUTDOWN_GRACE_SECONDS = 10.0


class _Runtime:
    """One event loop in a thread of its own, and the facade's unfinished jobs and sessions on it."""

    def __init__(self) -> None:
        self._manager = anyio.from_thread.start_blocking_portal("asyncio", name="aqrt-sync-loop")
        self.portal = self._manager.__enter__()
        self._open = True
        # Touched only on the loop thread: what shutdown() cancels.
        self._jobs: weakref.WeakSet[AsyncJob] = weakref.WeakSet()
        self._sessions: weakref.WeakSet[AsyncSession] = weakref.WeakSet()
        self._loop_thread = self.portal.call(threading.get_ident)

    @overload
    def call(self, func: Callable[..., Coroutine[Any, Any, _T]], *args: Any) -> _T: ...
    @overload
    def call(self, func: Callable[..., _T], *args: Any) -> _T: ...

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` on the loop (awaited if it is async) and return its result."""
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "aqrt.sync blocks until the loop answers, so it cannot be called on that loop itself "
                "(from a job's callback, say); use the async API there"
            )
        if not self._open:
            raise _stopped_error()
        try:
            return self.portal.call(func, *args)
        except RuntimeError as exc:
            if not self._open and "not running" in str(exc):
                raise _stopped_error() from None
            raise

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
        job = self.call(self._submit, primitive, pubs, keywords)
        return Job(job, self)

    async def _submit(
        self, primitive: AsyncEstimator | AsyncSampler | AsyncExecutor, pubs: Iterable[Any], keywords: dict[str, Any]
    ) -> AsyncJob:
        job = await primitive.submit(pubs, **keywords)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job

    def close(self, grace: float) -> None:
        """Cancel unfinished jobs and sessions, wait up to ``grace`` seconds for them, stop the loop."""
        if not self._open:
            return
        self._open = False  # from now on every other call is refused
        try:
            self.portal.call(self._wind_down, grace)
            self.portal.call(self.portal.stop, True)  # True: `with Session` blocks still open are cancelled
        except RuntimeError:
            pass  # the loop already stopped
        finally:
            self._manager.__exit__(None, None, None)  # joins the loop thread

    async def _wind_down(self, grace: float) -> None:
        with anyio.move_on_after(grace):
            for job in list(self._jobs):
                job.cancel()
            for session in list(self._sessions):
                await session.cancel()
            for job in list(self._jobs):
                await job.wait()


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
            :class:`aqrt.Session`. With ``max_pending``, ``run()`` waits for room (``on_full="wait"``)
            or raises ``SessionFullError``.

    Example:
        >>> with Session(backend="aqrt_statevector") as session:              # doctest: +SKIP
        ...     evs = Estimator(mode=session).run([(circuit, "ZZ")]).result()[0].data.evs
    """

    _async_session: AsyncSession

    def __init__(
        self,
        service: Service | None = None,
        backend: Backend | BackendV2 | str | None = None,
        *,
        max_time: int | str | None = None,
        interactive_timeout: int | str | None = None,
        max_pending: int | None = None,
        on_full: str = "wait",
    ) -> None:
        session = AsyncSession(
            service,
            backend,
            max_time=max_time,
            interactive_timeout=interactive_timeout,
            max_pending=max_pending,
            on_full=on_full,
        )
        self._adopt(session)

    def _adopt(self, session: AsyncSession) -> None:
        # The async object is made here (it needs no loop); from now on it is used on the loop only.
        self._async_session = session
        self._runtime = _current_runtime()
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
    def service(self) -> Service | None:
        return self._async_session.service

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
        service: Service | None = None,
        backend: Backend | BackendV2 | str | None = None,
        *,
        max_time: int | str | None = None,
        interactive_timeout: int | str | None = None,
        max_concurrency: int | None = None,
        max_pending: int | None = None,
        on_full: str = "wait",
    ) -> None:
        batch = AsyncBatch(
            service,
            backend,
            max_time=max_time,
            interactive_timeout=interactive_timeout,
            max_concurrency=max_concurrency,
            max_pending=max_pending,
            on_full=on_full,
        )
        self._adopt(batch)


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
        """Validate ``program`` (a ``QuantumProgram``) and submit it as one job; returns its
        :class:`Job` at once.

        Raises:
            AqrtError: what :meth:`aqrt.Executor.run` raises (``InvalidInputError``,
                ``InvalidOptionsError`` for ``meas_level``, ``InvalidPubError``, session refusals).
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
        return self._runtime.call(self._job.result, timeout)

    def wait_for_final_state(self, timeout: float | None = None) -> None:
        """Wait until the job is final, without raising for its outcome.

        Raises:
            ResultTimeoutError: ``timeout`` elapsed first.
        """
        self._runtime.call(functools.partial(_wait, self._job, timeout))

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


async def _wait(job: AsyncJob, timeout: float | None) -> None:
    if timeout is None:
        await job.wait()
        return
    with anyio.move_on_after(timeout):
        await job.wait()
    if not job.done():
        raise ResultTimeoutError(
            f"job {job.job_id} still {job.status().value} after waiting {timeout} s", job_id=job.job_id
        )
