"""The server's SQLite store: users' jobs (params, states, results), sessions, the signing secret.

Every call runs on one dedicated thread that owns the connection, never on the event loop
(SQLite calls block on file I/O). WAL mode, so readers do not wait for the writer; a row is
committed before the request that created it is answered, so a restart loses nothing that
was acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..wire.runtime_api import CODE_JOB_FAILED, FAILED, FINAL_JOB_STATUSES, SESSION_CLOSED

__all__ = ["Store", "default_db_path"]

T = TypeVar("T")

# The final statuses as an SQL list, for "status [NOT] IN (...)".
_FINAL_SQL = "(" + ", ".join(f"'{status}'" for status in sorted(FINAL_JOB_STATUSES)) + ")"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    user TEXT NOT NULL,
    instance TEXT,
    program TEXT NOT NULL,
    backend TEXT NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    reason_code INTEGER,
    tags TEXT NOT NULL,
    cost INTEGER,
    created TEXT NOT NULL,
    running TEXT,
    finished TEXT,
    usage_seconds REAL,
    params TEXT NOT NULL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, seq);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    instance TEXT,
    mode TEXT NOT NULL,
    backend TEXT NOT NULL,
    max_ttl INTEGER NOT NULL,
    interactive_ttl INTEGER,
    state TEXT NOT NULL,
    accepting_jobs INTEGER NOT NULL,
    created TEXT NOT NULL,
    started_at TEXT,
    closed_at TEXT,
    closed_reason TEXT
);
-- One row per (user, idempotency key): the job it made and the digest of the request.
CREATE TABLE IF NOT EXISTS idempotency (
    user TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (user, key)
);
CREATE INDEX IF NOT EXISTS idempotency_job ON idempotency (job_id);
"""

# Columns a job listing returns (never the params or the result, which may be large).
_JOB_SUMMARY = (
    "id, seq, user, instance, program, backend, session_id, status, reason, reason_code, tags, cost, "
    "created, running, finished, usage_seconds"
)


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/aqrt/server.sqlite3`` (``~/.local/share/aqrt/server.sqlite3`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "aqrt" / "server.sqlite3"


class Store:
    """Async front of one SQLite database; each method runs on the store's own thread.

    Use as ``store = await Store.open(path)`` ... ``await store.close()``.
    """

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="aqrt-server-db")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` for a throwaway one."""
        store = cls(path)
        await store._call(store._open)
        return store

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        try:
            await self._call(self._close)
        finally:
            # Joined from a helper thread, so the loop never blocks and no thread outlives the store.
            await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    # -- on the store thread ---------------------------------------------------------------------

    def _open(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the store is closed")
        return self._conn

    # -- the signing secret ----------------------------------------------------------------------

    async def signing_secret(self) -> bytes:
        """The token signing secret, created once and kept, so tokens survive a restart."""
        return await self._call(self._signing_secret)

    def _signing_secret(self) -> bytes:
        db = self._db()
        row = db.execute("SELECT value FROM meta WHERE key = 'jwt_secret'").fetchone()
        if row is None:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('jwt_secret', ?)", (secrets.token_hex(32),))
            row = db.execute("SELECT value FROM meta WHERE key = 'jwt_secret'").fetchone()
        return bytes.fromhex(row["value"])

    # -- jobs ------------------------------------------------------------------------------------

    async def insert_job(
        self, job: dict[str, Any], params_json: str, idempotency: tuple[str, str] | None = None
    ) -> dict[str, Any] | None:
        """Store a new job (its params as the JSON text received).

        With ``idempotency=(key, digest)`` the job and its key are stored in one transaction,
        unless ``job["user"]`` already used that key: then nothing is written and the earlier
        job's claim is returned (see :meth:`idempotent_job`).
        """
        return await self._call(self._insert_job, job, params_json, idempotency)

    def _insert_job(
        self, job: dict[str, Any], params_json: str, idempotency: tuple[str, str] | None
    ) -> dict[str, Any] | None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            if idempotency is not None:
                key, digest = idempotency
                claimed = db.execute(
                    "INSERT INTO idempotency (user, key, digest, job_id) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (user, key) DO NOTHING",
                    (job["user"], key, digest, job["id"]),
                ).rowcount
                if not claimed:
                    db.execute("ROLLBACK")
                    return self._idempotent_job(job["user"], key)
            self._insert_job_row(job, params_json)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return None

    async def idempotent_job(self, user: str, key: str) -> dict[str, Any] | None:
        """``{"job_id", "digest", "backend", "session_id"}`` of the job ``user`` made with ``key``."""
        return await self._call(self._idempotent_job, user, key)

    def _idempotent_job(self, user: str, key: str) -> dict[str, Any] | None:
        row = (
            self._db()
            .execute(
                "SELECT i.job_id, i.digest, j.backend, j.session_id FROM idempotency i"
                " JOIN jobs j ON j.id = i.job_id WHERE i.user = ? AND i.key = ?",
                (user, key),
            )
            .fetchone()
        )
        return dict(row) if row is not None else None

    def _insert_job_row(self, job: dict[str, Any], params_json: str) -> None:
        db = self._db()
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
        db.execute(
            "INSERT INTO jobs (id, seq, user, instance, program, backend, session_id, status, tags, cost, created,"
            " params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job["id"],
                seq,
                job["user"],
                job.get("instance"),
                job["program"],
                job["backend"],
                job.get("session_id"),
                job["status"],
                json.dumps(job.get("tags") or []),
                job.get("cost"),
                job["created"],
                params_json,
            ),
        )

    async def update_job(self, job_id: str, **fields: Any) -> None:
        """Set some columns of a job (``status``, ``reason``, ``running``, ...)."""
        await self._call(self._update_job, job_id, fields)

    def _update_job(self, job_id: str, fields: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._db().execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*fields.values(), job_id))

    async def finish_job(self, job_id: str, fields: dict[str, Any], make_result: Callable[[], str] | None) -> None:
        """Write a job's final state; ``make_result()`` (the encoded result, computed on the store
        thread, off the loop) goes into the ``result`` column."""
        await self._call(self._finish_job, job_id, fields, make_result)

    def _finish_job(self, job_id: str, fields: dict[str, Any], make_result: Callable[[], str] | None) -> None:
        if make_result is not None:
            try:
                fields = {**fields, "result": make_result()}
            except Exception as exc:  # an unencodable result is a failed job, not a lost one
                fields = {
                    **fields,
                    "status": FAILED,
                    "reason": f"the result could not be encoded: {exc}",
                    "reason_code": CODE_JOB_FAILED,
                }
        self._update_job(job_id, fields)

    async def delete_job(self, job_id: str, user: str) -> bool:
        """Delete ``user``'s job; False when there was none."""
        return await self._call(self._delete_job, job_id, user)

    def _delete_job(self, job_id: str, user: str) -> bool:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = db.execute("DELETE FROM jobs WHERE id = ? AND user = ?", (job_id, user)).rowcount > 0
            if deleted:  # its key may make a new job
                db.execute("DELETE FROM idempotency WHERE job_id = ? AND user = ?", (job_id, user))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return deleted

    async def set_tags(self, job_id: str, user: str, tags: list[str]) -> bool:
        """Replace the tags of ``user``'s job; False when there is none."""
        return await self._call(self._set_tags, job_id, user, tags)

    def _set_tags(self, job_id: str, user: str, tags: list[str]) -> bool:
        cursor = self._db().execute(
            "UPDATE jobs SET tags = ? WHERE id = ? AND user = ?", (json.dumps(tags), job_id, user)
        )
        return cursor.rowcount > 0

    async def job(self, job_id: str, user: str, *, with_params: bool = False) -> dict[str, Any] | None:
        """The job ``job_id`` if it belongs to ``user``, else None."""
        return await self._call(self._job, job_id, user, with_params)

    def _job(self, job_id: str, user: str, with_params: bool) -> dict[str, Any] | None:
        columns = _JOB_SUMMARY + (", params" if with_params else "")
        row = self._db().execute(f"SELECT {columns} FROM jobs WHERE id = ? AND user = ?", (job_id, user)).fetchone()
        return _job_row(row) if row is not None else None

    async def job_result(self, job_id: str, user: str) -> tuple[str, str | None] | None:
        """``(status, result text)`` of the job, or None when ``user`` has no such job."""
        return await self._call(self._job_result, job_id, user)

    def _job_result(self, job_id: str, user: str) -> tuple[str, str | None] | None:
        row = self._db().execute("SELECT status, result FROM jobs WHERE id = ? AND user = ?", (job_id, user)).fetchone()
        return (row["status"], row["result"]) if row is not None else None

    async def list_jobs(
        self, user: str, filters: dict[str, Any], *, limit: int, offset: int, descending: bool
    ) -> tuple[int, list[dict[str, Any]]]:
        """``(count, jobs)`` of ``user``'s jobs matching ``filters`` (see :meth:`_list_jobs`)."""
        return await self._call(self._list_jobs, user, filters, limit, offset, descending)

    def _list_jobs(
        self, user: str, filters: dict[str, Any], limit: int, offset: int, descending: bool
    ) -> tuple[int, list[dict[str, Any]]]:
        where, args = ["user = ?"], [user]
        for column in ("backend", "program", "session_id"):
            if filters.get(column) is not None:
                where.append(f"{column} = ?")
                args.append(filters[column])
        if filters.get("pending") is not None:
            op = "NOT IN" if filters["pending"] else "IN"
            where.append(f"status {op} {_FINAL_SQL}")
        if filters.get("created_after") is not None:
            where.append("created >= ?")
            args.append(filters["created_after"])
        if filters.get("created_before") is not None:
            where.append("created <= ?")
            args.append(filters["created_before"])
        for tag in filters.get("tags") or ():  # every tag must be present
            where.append("EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value = ?)")
            args.append(tag)
        clause = " AND ".join(where)
        db = self._db()
        count = db.execute(f"SELECT COUNT(*) FROM jobs WHERE {clause}", args).fetchone()[0]
        order = "DESC" if descending else "ASC"
        rows = db.execute(
            f"SELECT {_JOB_SUMMARY} FROM jobs WHERE {clause} ORDER BY seq {order} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        return count, [_job_row(row) for row in rows]

    async def unfinished_jobs(self) -> list[dict[str, Any]]:
        """Every job not in a final state, oldest first, with its params (for a restart)."""
        return await self._call(self._unfinished_jobs)

    def _unfinished_jobs(self) -> list[dict[str, Any]]:
        rows = (
            self._db()
            .execute(f"SELECT {_JOB_SUMMARY}, params FROM jobs WHERE status NOT IN {_FINAL_SQL} ORDER BY seq")
            .fetchall()
        )
        return [_job_row(row) for row in rows]

    async def usage_seconds(self, user: str) -> float:
        """The running time of all of ``user``'s jobs."""
        return await self._call(self._usage_seconds, user)

    def _usage_seconds(self, user: str) -> float:
        row = self._db().execute("SELECT COALESCE(SUM(usage_seconds), 0) FROM jobs WHERE user = ?", (user,)).fetchone()
        return float(row[0])

    # -- sessions --------------------------------------------------------------------------------

    async def insert_session(self, session: dict[str, Any]) -> None:
        await self._call(self._insert_session, session)

    def _insert_session(self, s: dict[str, Any]) -> None:
        self._db().execute(
            "INSERT INTO sessions (id, user, instance, mode, backend, max_ttl, interactive_ttl, state,"
            " accepting_jobs, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s["id"],
                s["user"],
                s.get("instance"),
                s["mode"],
                s["backend"],
                s["max_ttl"],
                s.get("interactive_ttl"),
                s["state"],
                int(s["accepting_jobs"]),
                s["created"],
            ),
        )

    async def update_session(self, session_id: str, **fields: Any) -> None:
        await self._call(self._update_session, session_id, fields)

    def _update_session(self, session_id: str, fields: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._db().execute(f"UPDATE sessions SET {columns} WHERE id = ?", (*fields.values(), session_id))

    async def session(self, session_id: str, user: str) -> dict[str, Any] | None:
        return await self._call(self._session, session_id, user)

    def _session(self, session_id: str, user: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT * FROM sessions WHERE id = ? AND user = ?", (session_id, user)).fetchone()
        return _session_row(row) if row is not None else None

    async def open_sessions(self) -> list[dict[str, Any]]:
        """Sessions not closed, for a restart."""
        return await self._call(self._open_sessions)

    def _open_sessions(self) -> list[dict[str, Any]]:
        rows = self._db().execute("SELECT * FROM sessions WHERE state != ?", (SESSION_CLOSED,)).fetchall()
        return [_session_row(row) for row in rows]


def _job_row(row: sqlite3.Row) -> dict[str, Any]:
    job = dict(row)
    job["tags"] = json.loads(job["tags"])
    return job


def _session_row(row: sqlite3.Row) -> dict[str, Any]:
    session = dict(row)
    session["accepting_jobs"] = bool(session["accepting_jobs"])
    return session
