"""Sessions and batches: IBM Quantum Runtime's execution modes, on any backend.

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

Every deadline is read from the event loop clock (``loop.time()`` / ``trio.current_time()``), so
tests can run hours of session time in milliseconds under a virtual clock.

The classes here are a facade: the queue, runners and clocks live in a private scheduler
(``_scheduler``), the ``max_pending`` bound and ``as_completed`` in ``_admission``, the rules in
a frozen policy (``_policy``) and the backend lookup in ``_binding``.

Example:
    >>> async with Session(backend="aqrt_statevector", max_time="25m") as session:  # doctest: +SKIP
    ...     result = await Estimator().run([(circuit, observable)])
"""

from __future__ import annotations

import contextvars
import types
import uuid
from collections.abc import AsyncIterator
from typing import Any, NoReturn, Self

import anyio
import anyio.lowlevel
from qiskit.providers import BackendV2

from ..backends.base import Backend, Service
from ..errors import SessionStateError
from ..job import Job
from ..options import parse_duration
from ._admission import Admission
from ._binding import BackendBinding
from ._policy import BATCH, DEDICATED, Mode, Policy, check_concurrency, session_policy
from ._policy import DEFAULT_INTERACTIVE_TIMEOUT as DEFAULT_INTERACTIVE_TIMEOUT  # importable from here, as before
from ._scheduler import Scheduler, SessionState
from ._scheduler import SessionCache as SessionCache  # importable from here, as before

__all__ = ["DEFAULT_INTERACTIVE_TIMEOUT", "Batch", "Session", "SessionCache", "SessionState", "current_session"]

_current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("aqrt_session", default=None)


def current_session() -> Session | None:
    """The session of the innermost ``async with Session(...)`` block of this task, if any.

    Returns:
        That session, or None outside any such block (primitives then run in job mode).
    """
    return _current_session.get()


class Session:
    """A dedicated session: one backend, jobs run one at a time in submission order.

    Args:
        service: where the backend lives; ``None`` means ``LocalService()``.
        backend: a backend name or object, fixed for the session's life; ``None`` takes the
            service's default backend. A name on a remote service is looked up when the session
            is entered. A Qiskit ``BackendV2`` such as ``FakeSherbrooke()`` runs as a device
            backend of the local service (see docs/devices.md).
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
        InvalidOptionsError: ``max_pending`` / ``on_full`` malformed.
        BackendNotFoundError: no such backend on the service.
        TypeError: ``service`` or ``backend`` is not a Service / Backend (or a Qiskit ``BackendV2``,
            which runs on a ``LocalService`` as its device backend).
    """

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
        self._setup(DEDICATED, service, backend, max_time, interactive_timeout, None, max_pending, on_full)

    def _setup(
        self,
        mode: Mode,
        service: Service | None,
        backend: Backend | BackendV2 | str | None,
        max_time: int | str | None,
        interactive_timeout: int | str | None,
        max_concurrency: int | None,
        max_pending: int | None,
        on_full: str,
    ) -> None:
        # A remote service that has not fetched the backend yet leaves it to __aenter__.
        self._binding = BackendBinding(service, backend)
        self._mode = mode
        self._max_time_request = max_time
        self._interactive_request = interactive_timeout
        # Parsed now so a malformed value fails here even when the backend is looked up later.
        self._requested_max_time = 0 if max_time is None else parse_duration(max_time, what="max_time")
        self._max_concurrency = check_concurrency(max_concurrency)
        self._session_id = "session-" + uuid.uuid4().hex[:20]
        self._admission = Admission(self._session_id, max_pending, on_full)
        # What primitives submit to (Scheduler.submit); also used by tests to look inside.
        self._scheduler = Scheduler(self._session_id, self._admission, on_start=self._open_remote)
        self._policy: Policy | None = None
        self._entered = False
        self._context_token: contextvars.Token[Session | None] | None = None
        if self._binding.backend is not None:
            self._bind(self._binding.backend)

    def _bind(self, backend: Backend) -> None:
        """Fix the backend and, from its capabilities, the session's policy."""
        policy = session_policy(
            self._mode,
            backend,
            max_time=self._max_time_request,
            interactive_timeout=self._interactive_request,
            max_concurrency=self._max_concurrency,
        )
        self._binding.bind(backend)
        self._scheduler.bind(backend, policy)
        self._policy = policy

    # -- properties ------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """IBM's name for this execution mode: ``"dedicated"`` or ``"batch"``."""
        return self._mode.name

    @property
    def session_id(self) -> str:
        """This session's id, stamped on its jobs (``job.session_id``)."""
        return self._session_id

    @property
    def backend(self) -> Backend:
        """The session's backend.

        Raises:
            SessionStateError: a backend name on a remote service that has not been looked up
                yet (the session was not entered).
        """
        backend = self._binding.backend
        if backend is None:
            raise SessionStateError(
                f"session {self._session_id}: backend {self._binding.request!r} of a remote service is "
                "looked up when the session is entered; use `async with` (or pass a backend object)"
            )
        return backend

    @property
    def service(self) -> Service | None:
        """The service the backend came from, if any."""
        return self._binding.service

    @property
    def max_time(self) -> int:
        """The session's ``max_time`` in seconds (0 until a remote backend is looked up, if none
        was asked for)."""
        policy = self._policy
        if policy is None or policy.max_time is None:
            return self._requested_max_time
        return policy.max_time

    @property
    def interactive_timeout(self) -> float | None:
        """Seconds of idleness before the session turns inactive; None for a batch (and until a
        remote backend is looked up)."""
        return self._policy.interactive_timeout if self._policy is not None else None

    @property
    def accepting_jobs(self) -> bool:
        """Whether the session takes new jobs (it is neither closed nor expired)."""
        return self._scheduler.accepting_jobs()

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Look up a remote backend if need be, open a remote session, start the supervisor and
        make this the current session of the task.

        Raises:
            SessionStateError: the session was entered before, or is closed or expired.
            BackendNotFoundError: a remote service has no such backend.
        """
        if self._entered:
            raise SessionStateError(f"session {self.session_id} was already entered; a session is entered once")
        if self._scheduler.is_final():
            raise SessionStateError(f"session {self.session_id} is {self._scheduler.state.value}; open a new one")
        if self._binding.backend is None:
            self._bind(await self._binding.fetch())
        await self._open_remote()
        self._entered = True
        await self._scheduler.start_supervisor().wait()
        self._context_token = _current_session.set(self)
        return self

    def __enter__(self) -> NoReturn:
        """Refuse a plain ``with``: a session is entered with ``async with`` (or use aqrt.sync).

        Raises:
            TypeError: always, naming both fixes.
        """
        kind = type(self).__name__
        raise TypeError(
            f'{kind} is asynchronous and does not support a plain `with`: use "async with", '
            f"or aqrt.sync.{kind} in synchronous code (`with aqrt.sync.{kind}(...) as session:`)"
        )

    def __exit__(self, *exc_info: object) -> None:
        """Never reached (``__enter__`` raises); defined so ``with`` reaches ``__enter__``."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        """Close the session (waiting for its jobs), or cancel it if the block raised or the
        wait is interrupted."""
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
        await self._scheduler.drain()
        await self._binding.close_remote(self._session_id, cancel=False)

    async def cancel(self) -> None:
        """Cancel every job that has not finished, then close the session."""
        self._scheduler.cancel_jobs()
        await self._binding.close_remote(self._session_id, cancel=True)
        await self.close()

    async def _open_remote(self) -> None:
        # Backends with remote sessions open theirs on entry, or on the first job of a session
        # used without `async with` (the scheduler's supervisor calls this before starting).
        await self._binding.open_remote(self._session_id, mode=self.mode, max_time=self.max_time)

    # -- backpressure and results as they complete ------------------------------------------------

    async def reserve(self) -> None:
        """Wait until the session has room for one more job and hold that room for the next
        submission (which must follow without an ``await``; ``primitive.submit`` does this).

        Raises:
            SessionFullError: the session is full and ``on_full="error"``.
        """
        await self._admission.reserve()

    def as_completed(self) -> AsyncIterator[Job]:
        """Yield this session's jobs as they finish: those unfinished now and those submitted
        later, until the session is closed and every job has finished.

        Returns:
            An async iterator of finished :class:`~aqrt.Job` objects.

        Example:
            >>> async for job in batch.as_completed():          # doctest: +SKIP
            ...     print(job.job_id, (await job)[0].data.evs)
        """
        return self._admission.as_completed(self._scheduler.settled)

    # -- introspection ---------------------------------------------------------------------------

    def status(self) -> SessionState:
        """The session's state.

        Returns:
            Its :class:`SessionState`, with the clocks applied as of now.
        """
        self._scheduler.refresh()
        return self._scheduler.state

    def statistics(self) -> dict[str, Any]:
        """Job counts and usage.

        Returns:
            ``total``, ``queued``, ``running``, ``done``, ``error``, ``cancelled``, ``finished``
            job counts and ``usage_seconds``, the time jobs spent running (loop clock).
        """
        self._scheduler.refresh()
        return self._admission.statistics()

    async def details(self) -> dict[str, Any]:
        """Id, backend, mode, state, clocks and job counts.

        Returns:
            A plain dict: ``id``, ``remote_id``, ``backend_name``, ``mode``, ``state``,
            ``accepting_jobs``, ``max_time``, ``interactive_timeout``, ``started_at``,
            ``remaining_time`` and the keys of :meth:`statistics`.

        Raises:
            SessionStateError: the backend was not looked up yet (see :attr:`backend`).
        """
        await anyio.lowlevel.checkpoint()
        scheduler = self._scheduler
        max_time = self.max_time
        remaining: float | None = max_time
        if scheduler.started_at is not None:
            remaining = max(0.0, scheduler.started_at + max_time - scheduler.now())
        if scheduler.is_final():
            remaining = 0.0
        return {
            "id": self._session_id,
            "remote_id": self._binding.remote_id,
            "backend_name": self.backend.name,
            "mode": self.mode,
            "state": scheduler.state.value,
            "accepting_jobs": self.accepting_jobs,
            "max_time": max_time,
            "interactive_timeout": self.interactive_timeout,
            "started_at": scheduler.started_at,
            "remaining_time": remaining,
            **self.statistics(),
        }

    def __repr__(self) -> str:
        backend = self._binding.backend.name if self._binding.backend is not None else self._binding.request
        return f"<{type(self).__name__} {self._session_id} on {backend}: {self._scheduler.state.value}>"


class Batch(Session):
    """A batch: like :class:`Session`, but jobs may run concurrently and there is no
    interactive timeout.

    Args:
        service, backend, max_time: as for :class:`Session`.
        interactive_timeout: must be None: a batch has none.
        max_concurrency: how many of its jobs may run at once (default 4, or as many as a
            remote backend declares it queues).
        max_pending, on_full: as for :class:`Session`.

    Raises:
        InvalidTimeSpecError: as for :class:`Session`, and for any ``interactive_timeout``.
        InvalidOptionsError: ``max_concurrency`` is not an int >= 1, or as for :class:`Session`.
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
        self._setup(BATCH, service, backend, max_time, interactive_timeout, max_concurrency, max_pending, on_full)
