"""Session lifecycle: Runtime sessions on aqrt's :class:`~aqrt.session.Session` / ``Batch``.

A dedicated session is an aqrt ``Session`` (FIFO, interactive timeout), a batch an aqrt
``Batch``; both on the served local backend, so aqrt's session rules (``max_time`` from the
first job's start, expiry, close and cancel) hold on the server too. A session is live (in
memory) from ``POST /sessions`` until it is closed for good; its row in the store records it, so
a restart reopens the sessions still open (:mod:`aqrt.server.recovery`).

aqrt's clocks start with a session's first job; a session no job is ever submitted to ends
all the same: when its ``max_ttl`` has passed since its creation (closed as ``max_ttl
reached``), or, for a dedicated session, its interactive timeout (:data:`CLOSED_UNUSED`). A
cancelled session (``DELETE /sessions/{id}/close``) and its unfinished jobs are committed to
the store as closed and ``Cancelled`` before the cancel is acknowledged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..backends.base import Backend
from ..backends.local import LocalService
from ..session import Batch, Session, SessionState
from ..wire.runtime_api import (
    BATCH,
    CLOSED_BY_CANCEL,
    CLOSED_BY_CLOSE,
    CLOSED_MAX_TTL,
    CLOSED_UNUSED,
    CODE_SESSION_CLOSED,
    CODE_SESSION_EXPIRED,
    DEDICATED,
    SESSION_CANCELLED_REASON,
    SESSION_CLOSED,
    api_session_state,
)
from .config import ServerConfig
from .errors import ApiError
from .records import new_session_row, utc_now
from .responses import live_session_response, stored_session_response
from .store import Store
from .tasks import Tasks
from .validation import check_session_request

__all__ = ["LiveSession", "SessionLifecycle"]


@dataclasses.dataclass
class LiveSession:
    """A Runtime session and the aqrt Session/Batch that runs its jobs.

    Attributes:
        row: its row (as stored, kept up to date); session: the aqrt session.
        closing: the task closing it, once it is being closed.
        used: a job was submitted to it (from then on aqrt's own clocks rule it).
        unused_deadline: the timer that ends it if it is still unused then.
    """

    row: dict[str, Any]
    session: Session
    closing: asyncio.Task[None] | None = None
    used: bool = False
    unused_deadline: asyncio.TimerHandle | None = None


class SessionLifecycle:
    """The live sessions of one server, from creation to their close for good."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        service: LocalService,
        backends: Mapping[str, Backend],
        tasks: Tasks,
    ) -> None:
        self._config = config
        self._store = store
        self._service = service
        self._backends = backends
        self._tasks = tasks
        self._sessions: dict[str, LiveSession] = {}

    def get(self, session_id: str) -> LiveSession | None:
        """The live session ``session_id``, whoever owns it."""
        return self._sessions.get(session_id)

    def live(self) -> list[LiveSession]:
        """Every live session."""
        return list(self._sessions.values())

    def restore(self, row: dict[str, Any]) -> LiveSession:
        """Make a stored, still open session live again (at start-up); ``row["used"]`` says
        whether it ever had a job (see :meth:`arm_unused_deadlines`)."""
        live = LiveSession(row=row, session=self._new_aqrt_session(row), used=bool(row.pop("used", False)))
        self._sessions[row["id"]] = live
        return live

    def arm_unused_deadlines(self) -> None:
        """Start the unused-session clock of every live session that never had a job (at
        start-up, once the jobs found unfinished are back in their sessions)."""
        for live in self._sessions.values():
            if not live.used and live.unused_deadline is None:
                self._arm_unused_deadline(live)

    def note_used(self, live: LiveSession) -> None:
        """A job was submitted to ``live``: its unused-session clock stops."""
        live.used = True
        if live.unused_deadline is not None:
            live.unused_deadline.cancel()
            live.unused_deadline = None

    def _arm_unused_deadline(self, live: LiveSession) -> None:
        row = live.row
        ttl, reason = row["max_ttl"], CLOSED_MAX_TTL
        interactive = row.get("interactive_ttl")
        if row["mode"] == DEDICATED and interactive is not None and interactive < ttl:
            ttl, reason = interactive, CLOSED_UNUSED
        age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(row["created"])).total_seconds()
        live.unused_deadline = asyncio.get_running_loop().call_later(
            max(0.0, ttl - age), self._unused_deadline_passed, live, reason
        )

    def _unused_deadline_passed(self, live: LiveSession, reason: str) -> None:
        live.unused_deadline = None
        if live.used or live.closing is not None or self._sessions.get(live.row["id"]) is not live:
            return
        live.row["accepting_jobs"] = False
        live.closing = self._tasks.spawn(self._finish(live, False, reason=reason))

    async def create(self, user: str, instance: str | None, body: Any) -> dict[str, Any]:
        """``POST /sessions``: a dedicated session or a batch on the served backend; returns its body."""
        request = check_session_request(body, self._config)
        row = new_session_row(
            user=user,
            instance=instance or request.instance,
            mode=request.mode,
            backend=request.backend,
            max_ttl=request.max_ttl,
            interactive_ttl=self._config.interactive_ttl if request.mode == DEDICATED else None,
        )
        live = LiveSession(row=row, session=self._new_aqrt_session(row))
        await self._store.insert_session(row)
        self._sessions[row["id"]] = live
        self._arm_unused_deadline(live)
        return await self.response(live)

    def _new_aqrt_session(self, row: dict[str, Any]) -> Session:
        backend = self._backends[row["backend"]]
        if row["mode"] == BATCH:
            return Batch(
                self._service,
                backend,
                max_time=row["max_ttl"],
                max_concurrency=self._config.batch_concurrency,
            )
        return Session(self._service, backend, max_time=row["max_ttl"], interactive_timeout=row["interactive_ttl"])

    async def for_submission(self, session_id: str, user: str) -> LiveSession:
        """``user``'s live session ``session_id``, to submit a job to; 404 if unknown, 409 if
        it is closed or expired."""
        live = self._sessions.get(session_id)
        if live is not None and live.row["user"] == user:
            return live
        row = await self._store.session(session_id, user)
        if row is None:
            raise ApiError(404, f"session {session_id} not found")
        if row.get("closed_reason") == CLOSED_MAX_TTL:
            raise ApiError(
                409,
                f"session {session_id} expired (its max_ttl of {row['max_ttl']} s ran out) and accepts no new jobs",
                code=CODE_SESSION_EXPIRED,
            )
        raise ApiError(409, f"session {session_id} is closed and accepts no new jobs", code=CODE_SESSION_CLOSED)

    async def read(self, session_id: str, user: str) -> dict[str, Any]:
        """``GET /sessions/{id}``: the body of ``user``'s session; 404 if unknown."""
        live = self._sessions.get(session_id)
        if live is not None and live.row["user"] == user:
            return await self.response(live)
        row = await self._store.session(session_id, user)
        if row is None:
            raise ApiError(404, f"session {session_id} not found")
        return stored_session_response(row)

    async def response(self, live: LiveSession) -> dict[str, Any]:
        """The body of a live session, from aqrt's own view of it (state, clocks, job counts).
        An expired session is recorded as closed for good."""
        session = live.session
        details = await session.details()
        state = session.status()
        expired = state is SessionState.EXPIRED
        if expired:
            self.note_expired(live)
        return live_session_response(
            live.row,
            state=api_session_state(state),
            accepting=session.accepting_jobs,
            details=details,
            expired=expired,
        )

    async def close(self, session_id: str, user: str, *, cancel: bool) -> None:
        """``PATCH /sessions/{id}`` (close: no new jobs, submitted ones finish) or
        ``DELETE /sessions/{id}/close`` (cancel: every unfinished job is cancelled). Either is
        committed to the store before it returns: a cancel as the session closed and its
        unfinished jobs ``Cancelled``, so a restart runs none of them."""
        live = self._sessions.get(session_id)
        if live is None or live.row["user"] != user:
            if await self._store.session(session_id, user) is None:
                raise ApiError(404, f"session {session_id} not found")
            return  # already closed
        live.row["accepting_jobs"] = False
        if cancel:
            await self._store.cancel_session(session_id, utc_now(), SESSION_CANCELLED_REASON)
        else:
            await self._store.update_session(session_id, accepting_jobs=0)
        self.close_later(live, cancel=cancel)

    def note_expired(self, live: LiveSession) -> None:
        """An expired session is closed for good: record it so a restart does not reopen it."""
        if live.closing is None:
            live.closing = self._tasks.spawn(self._finish(live, False))

    def close_later(self, live: LiveSession, *, cancel: bool) -> None:
        """Close (or cancel) ``live`` in a task of its own; a cancel overrides a close under way."""
        if cancel or live.closing is None:
            live.closing = self._tasks.spawn(self._finish(live, cancel))

    async def _finish(self, live: LiveSession, cancel: bool, *, reason: str | None = None) -> None:
        if cancel:
            await live.session.cancel()
        else:
            await live.session.close()
        if self._tasks.stopping:
            return
        if live.session.status() is SessionState.EXPIRED:
            reason = CLOSED_MAX_TTL
        elif reason is None or cancel:
            reason = CLOSED_BY_CANCEL if cancel else CLOSED_BY_CLOSE
        live.row.update(state=SESSION_CLOSED, accepting_jobs=False, closed_at=utc_now(), closed_reason=reason)
        await self._store.update_session(
            live.row["id"],
            state=SESSION_CLOSED,
            accepting_jobs=0,
            closed_at=live.row["closed_at"],
            closed_reason=reason,
        )
        self._sessions.pop(live.row["id"], None)

    def stop_closing(self) -> None:
        """Stop the closes under way and the unused-session clocks (the server is stopping;
        open sessions reopen on restart)."""
        for live in self._sessions.values():
            if live.closing is not None:
                live.closing.cancel()
            if live.unused_deadline is not None:
                live.unused_deadline.cancel()
                live.unused_deadline = None

    async def cancel_all(self) -> None:
        """Cancel every live aqrt session (the server is stopping)."""
        for live in list(self._sessions.values()):
            await live.session.cancel()
