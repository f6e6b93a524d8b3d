"""The engine behind ``aqrt serve``: engine slots that waiting jobs take in fair turns.

A :class:`ServedBackend` is the served local backend behind a :class:`FairSlot`: a job is
``Queued`` until the engine takes it and ``Running`` only while it runs; its ``cost``
(``max_execution_time``) counts from that start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio

from .._concurrency import run_in_worker
from ..backends.base import NOT_INLINE, BackendCapabilities, ExecutionContext, Service
from ..backends.local import LocalBackend
from ..backends.local.warmup import engine_is_warm, warm_engine
from ..errors import JobCancelledError, JobTimeoutError
from ..job import JobRequest, Program

__all__ = ["UNKNOWN_OWNER", "FairSlot", "JobOwner", "ServedBackend"]


@dataclasses.dataclass(frozen=True)
class JobOwner:
    """Whose turn a job waiting for the engine takes: its user's, its session's (``None``: job
    mode) and whether that session is dedicated (whose jobs go ahead of job-mode and batch jobs,
    as on IBM)."""

    user: str
    dedicated: bool = False
    session: str | None = None


#: The owner of a job the server does not know (it will not be let run): a queue of its own.
UNKNOWN_OWNER = JobOwner(user="")


@dataclasses.dataclass
class _UserQueue:
    """One user's waiters, by session (job mode is the session ``None``), each session's
    oldest first; the sessions take turns as the users do. ``turns_left`` is what remains of
    the user's turns in the current round (their weight)."""

    turns_left: int
    sessions: dict[str | None, deque[asyncio.Future[None]]] = dataclasses.field(default_factory=dict)

    def next_waiter(self) -> asyncio.Future[None] | None:
        """The next live waiter in session turns (the session served goes to the back); drops
        the cancelled ones it meets; ``None`` when none is left."""
        while self.sessions:
            session = next(iter(self.sessions))
            waiters = self.sessions.pop(session)
            waiter = waiters.popleft()
            if waiters:
                self.sessions[session] = waiters
            if not waiter.done():  # a cancelled one is still here until its task runs
                return waiter
        return None

    def remove(self, session: str | None, waiter: asyncio.Future[None]) -> None:
        waiters = self.sessions.get(session)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):  # already taken off by next_waiter()
            waiters.remove(waiter)
        if not waiters:
            del self.sessions[session]


class FairSlot:
    """Engine slots that waiting jobs take in fair turns, not in the order they came.

    Waiters are grouped by :class:`JobOwner`: a dedicated session's jobs are served before any
    other; within each of these two classes the users take turns (weighted round-robin: a user
    takes up to ``weights[user]`` (default 1) turns in a row, then goes to the back of the
    rotation), within a user's turns their sessions (and job mode) take turns, and each
    session's jobs go in the order they came. So a user's one job waits for at most a weight's
    worth of jobs of each other user, however long their backlogs (and for the dedicated
    sessions' jobs), instead of for every job queued before it (as behind a FIFO lock); and one
    of a user's sessions does not starve their other sessions.

    ``max_per_user`` bounds how many slots one user's jobs hold at once (with more than one
    slot): a user at the bound is passed over until one of their jobs lets go.

    A waiter cancelled before its turn leaves the queue (no one's turn is skipped); one
    cancelled just as a slot was handed to it hands it on at once.
    """

    def __init__(self, slots: int = 1, *, max_per_user: int | None = None, weights: Mapping[str, int] = {}) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        if max_per_user is not None and max_per_user < 1:
            raise ValueError(f"max_per_user must be >= 1, got {max_per_user}")
        self._free = slots
        self._max_per_user = slots if max_per_user is None else max_per_user
        self._weights = dict(weights)
        self._holding: dict[str, int] = {}
        # One rotation per class, dedicated first: user -> their queue. A dict keeps insertion
        # order: its first user is the next to be served.
        self._rotations: tuple[dict[str, _UserQueue], ...] = ({}, {})

    @property
    def held(self) -> int:
        """How many slots jobs hold."""
        return sum(self._holding.values())

    def waiting(self) -> int:
        """How many jobs wait for a slot."""
        return sum(
            len(waiters)
            for rotation in self._rotations
            for queue in rotation.values()
            for waiters in queue.sessions.values()
        )

    @contextlib.asynccontextmanager
    async def turn(self, owner: JobOwner) -> AsyncIterator[None]:
        """Hold a slot for the block, once it is ``owner``'s turn."""
        await self.acquire(owner)
        try:
            yield
        finally:
            self.release(owner)

    async def acquire(self, owner: JobOwner) -> None:
        """Wait for ``owner``'s turn, then hold a slot (at once if one is free and the user is
        below ``max_per_user``: then no one else could take it, as :meth:`release` hands slots
        on while anyone eligible waits)."""
        if self._free and self._holding.get(owner.user, 0) < self._max_per_user:
            self._take(owner.user)
            return
        rotation = self._rotations[0 if owner.dedicated else 1]
        queue = rotation.get(owner.user)
        if queue is None:
            queue = rotation[owner.user] = _UserQueue(turns_left=self._weight(owner.user))
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.sessions.setdefault(owner.session, deque()).append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(owner)  # handed a slot just as it was cancelled: the next one's turn
            else:
                queue.remove(owner.session, waiter)
                if not queue.sessions and rotation.get(owner.user) is queue:
                    del rotation[owner.user]
            raise

    def release(self, owner: JobOwner) -> None:
        """Let ``owner``'s slot go: to the next eligible waiter in turn, if any."""
        held = self._holding[owner.user] - 1
        if held:
            self._holding[owner.user] = held
        else:
            del self._holding[owner.user]
        self._free += 1
        self._hand_on()

    def _hand_on(self) -> None:
        while self._free:
            granted = self._grant_next()
            if not granted:
                return

    def _grant_next(self) -> bool:
        for rotation in self._rotations:
            for user in list(rotation):
                if self._holding.get(user, 0) >= self._max_per_user:
                    continue  # at their bound: the next user's turn
                queue = rotation[user]
                waiter = queue.next_waiter()
                if waiter is None:  # only cancelled ones were left
                    del rotation[user]
                    continue
                queue.turns_left -= 1
                if not queue.sessions:
                    del rotation[user]
                elif queue.turns_left <= 0:  # their round is over: to the back
                    del rotation[user]
                    queue.turns_left = self._weight(user)
                    rotation[user] = queue
                self._take(user)
                waiter.set_result(None)
                return True
        return False

    def _take(self, user: str) -> None:
        self._free -= 1
        self._holding[user] = self._holding.get(user, 0) + 1

    def _weight(self, user: str) -> int:
        return self._weights.get(user, 1)


class ServedBackend:
    """The served local backend behind one engine slot: the Backend contract, with IBM's clocks.

    The engine runs one job at a time (one worker thread). Jobs wait for the slot
    (a :class:`FairSlot`: in turns by owner, ``owner_of`` of aqrt's job id) and stay ``QUEUED``
    meanwhile; the one holding it is marked running
    (``reports_job_start``) once its start is committed (``on_start``, with aqrt's id of the
    job; a job whose start is refused, one already cancelled in the store, does not run). Its
    ``max_execution_time`` counts from that start (``enforces_max_execution_time``): past it
    the job is stopped with :class:`~aqrt.errors.JobTimeoutError`, as IBM stops a job whose
    ``cost`` ran out. Jobs tiny enough for the event loop run there at once, as on the
    local backend (``run_inline``), without the slot: they never wait, and never show
    ``Running``. Compiling the engine (a process's first job) happens in the slot, before the
    job's start.

    Args:
        backend: the local backend served.
        on_start: awaited with aqrt's job id before the engine takes the job; False: do not run it.
        owner_of: whose turn a job takes, by aqrt's job id (by default everyone's is one
            user's: first come, first served); the job's session is the request's.
        weights: user -> turns per round (:class:`FairSlot`).
        slot: the engine slot to take turns for (the served backends share one engine: give
            them one slot); by default a slot of its own, with ``weights``.
    """

    def __init__(
        self,
        backend: LocalBackend,
        on_start: Callable[[str], Awaitable[bool]],
        owner_of: Callable[[str], JobOwner] = lambda job_id: UNKNOWN_OWNER,
        *,
        weights: Mapping[str, int] = {},
        slot: FairSlot | None = None,
    ) -> None:
        self._backend = backend
        self._on_start = on_start
        self._owner_of = owner_of
        self._slot = slot if slot is not None else FairSlot(weights=weights)
        self._capabilities = dataclasses.replace(
            backend.capabilities, runs_inline=False, reports_job_start=True, enforces_max_execution_time=True
        )

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def num_qubits(self) -> int:
        return self._backend.num_qubits

    @property
    def capabilities(self) -> BackendCapabilities:
        return self._capabilities

    @property
    def service(self) -> Service | None:
        return self._backend.service

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """The backend's check, except an ``executor`` job's items: checking them builds and
        walks every item's circuits (a tenth of a second and more on a 127-qubit device), too
        long for the event loop, so :meth:`JobLifecycle.start
        <aqrt.server.job_lifecycle.JobLifecycle.start>` checks them on a worker thread before
        the job exists, and the run checks them again (a recovered job fails then)."""
        if program == "executor":
            return
        self._backend.validate_pub(program, pub, index)

    async def execute(self, request: JobRequest, context: ExecutionContext) -> Any:
        """Run the job: at once on the loop if it is tiny, else in its owner's turn for the engine."""
        backend = self._backend
        if not context.cancel_requested.is_set():
            result = backend.run_inline(request, context)
            if result is not NOT_INLINE:
                # Marked after the fact: the work took microseconds, and a job that turned out
                # not to be tiny must not show Running while it waits for the engine.
                _mark_running(context)
                return result
        owner = dataclasses.replace(self._owner_of(request.job_id), session=request.session_id)
        async with self._slot.turn(owner):
            if context.cancel_requested.is_set():
                raise JobCancelledError("the job was cancelled before it started", job_id=request.job_id)
            if backend.engine == "numba" and not engine_is_warm(backend.dtype):
                dtype = backend.dtype
                await run_in_worker(lambda: warm_engine(dtype))
            if not await self._on_start(request.job_id):
                raise JobCancelledError("the job was cancelled before it started", job_id=request.job_id)
            _mark_running(context)
            limit = request.options.max_execution_time
            if limit is None:
                return await backend.execute(request, context)
            with anyio.move_on_after(limit):
                return await backend.execute(request, context)
            # Reached only when the deadline stopped it (the engine saw the cancel flag).
            raise JobTimeoutError(
                f"the job ran longer than its max_execution_time (cost) of {limit} s and was stopped",
                job_id=request.job_id,
            )


def _mark_running(context: ExecutionContext) -> None:
    if context.mark_running is not None:
        context.mark_running()
