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
from collections.abc import AsyncIterator, Awaitable, Callable
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
    """Whose turn a job waiting for the engine takes: its user's, and whether it runs in a
    dedicated session (whose jobs go ahead of job-mode and batch jobs, as on IBM)."""

    user: str
    dedicated: bool = False


#: The owner of a job the server does not know (it will not be let run): a queue of its own.
UNKNOWN_OWNER = JobOwner(user="")


class FairSlot:
    """One engine slot that waiting jobs take in fair turns, not in the order they came.

    Waiters are grouped by :class:`JobOwner`: a dedicated session's jobs are served before any
    other; within each of these two classes the users take turns (round-robin: a user whose
    job was just let in goes to the back of the rotation), and each user's jobs go in the order
    they came. So a user's one job waits for at most one job of each other user, however long
    their backlogs (and for the dedicated sessions' jobs), instead of for every job queued
    before it (as behind a FIFO lock).

    A waiter cancelled before its turn leaves the queue (no one's turn is skipped); one
    cancelled just as the slot was handed to it hands it on at once.
    """

    def __init__(self) -> None:
        self._held = False
        # One rotation per class, dedicated first: user -> that user's waiters, oldest first.
        # A dict keeps insertion order: its first user is the next to be served.
        self._rotations: tuple[dict[str, deque[asyncio.Future[None]]], ...] = ({}, {})

    @property
    def held(self) -> bool:
        """A job holds the slot."""
        return self._held

    def waiting(self) -> int:
        """How many jobs wait for the slot."""
        return sum(len(waiters) for rotation in self._rotations for waiters in rotation.values())

    @contextlib.asynccontextmanager
    async def turn(self, owner: JobOwner) -> AsyncIterator[None]:
        """Hold the slot for the block, once it is ``owner``'s turn."""
        await self.acquire(owner)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, owner: JobOwner) -> None:
        """Wait for ``owner``'s turn, then hold the slot (at once if it is free: then no one
        waits, as :meth:`release` hands it on while anyone does)."""
        if not self._held:
            self._held = True
            return
        rotation = self._rotations[0 if owner.dedicated else 1]
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rotation.setdefault(owner.user, deque()).append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the slot just as it was cancelled: the next one's turn
            else:
                self._remove(rotation, owner.user, waiter)
            raise

    def release(self) -> None:
        """Let the slot go: to the next waiter in turn, if any."""
        for rotation in self._rotations:
            while rotation:
                user = next(iter(rotation))
                waiters = rotation.pop(user)
                waiter = waiters.popleft()
                if waiters:
                    rotation[user] = waiters  # to the back of the rotation
                if not waiter.done():  # a cancelled one is still here until its task runs
                    waiter.set_result(None)
                    return  # held on its behalf
        self._held = False

    @staticmethod
    def _remove(rotation: dict[str, deque[asyncio.Future[None]]], user: str, waiter: asyncio.Future[None]) -> None:
        waiters = rotation.get(user)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):  # already taken off by release()
            waiters.remove(waiter)
        if not waiters:
            del rotation[user]


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
            user's: first come, first served).
    """

    def __init__(
        self,
        backend: LocalBackend,
        on_start: Callable[[str], Awaitable[bool]],
        owner_of: Callable[[str], JobOwner] = lambda job_id: UNKNOWN_OWNER,
    ) -> None:
        self._backend = backend
        self._on_start = on_start
        self._owner_of = owner_of
        self._slot = FairSlot()
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
        async with self._slot.turn(self._owner_of(request.job_id)):
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
