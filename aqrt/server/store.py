"""The server's SQLite store: users' jobs (params, states, results), sessions, the signing secret.

Every call runs on one dedicated thread that owns the connection, never on the event loop
(SQLite calls block on file I/O). WAL mode, so readers do not wait for the writer; a row is
committed before the request that created it is answered, so a restart loses nothing that
was acknowledged. Every change of state is committed the same way: a cancel before its 204,
a job's start (``Running``, before the engine touches it) so a restart knows which job was
running when the process died (:mod:`aqrt.server.recovery`'s poison-job rule).

The database holds the token-signing secret and every user's data: a file the store creates is
made ``0600`` and a folder it creates ``0700`` (SQLite's ``-wal`` and ``-shm`` files take the
database file's mode).

Space: each job row keeps the bytes of its params and result (``params_bytes``,
``result_bytes``; rows older than these columns are measured when needed) and each user's total
is kept in ``user_storage`` (counted from the rows once, when an older database is opened),
changed in the same transaction that inserts, finishes or deletes a job
(:meth:`Store.insert_job` refuses a job that would take its user over a quota). The file gives
back the space of deleted jobs: the database uses ``auto_vacuum=INCREMENTAL`` (an older file is
converted at open by a ``VACUUM`` when it is small enough to do that quickly,
:data:`VACUUM_AT_OPEN_MAX_BYTES`), and :meth:`Store.reclaim_space` (after a retention sweep, or
once deletions have freed :data:`RECLAIM_AFTER_BYTES`) returns free pages to the file system
and truncates the ``-wal`` file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ..wire.runtime_api import (
    CANCELLED,
    CLOSED_BY_CANCEL,
    FINAL_JOB_STATUSES,
    QUEUED,
    RUNNING,
    SESSION_CLOSED,
)

__all__ = [
    "DB_FILE_MODE",
    "DB_FOLDER_MODE",
    "RECLAIM_AFTER_BYTES",
    "VACUUM_AT_OPEN_MAX_BYTES",
    "StorageQuotaExceeded",
    "Store",
    "default_db_path",
    "text_bytes",
]

logger = logging.getLogger("aqrt.server")

#: The mode of a database file the store creates (it holds the signing secret and users' data).
DB_FILE_MODE = 0o600
#: The mode of each folder the store creates on the way to its database file.
DB_FOLDER_MODE = 0o700

#: An existing database without incremental auto-vacuum is converted at open (a full ``VACUUM``,
#: which rewrites the file: measured 0.9 s for 64 MB, 3.9 s for 256 MB on a busy 2-core machine)
#: only up to this size; a larger one is opened as it is (its free pages are reused, but the
#: file never shrinks) and a warning says how to convert it.
VACUUM_AT_OPEN_MAX_BYTES = 64 << 20
#: Free pages left by deleted jobs are given back to the file system once they add up to this.
RECLAIM_AFTER_BYTES = 32 << 20
# After a checkpoint the -wal file is cut back to at most this size.
_WAL_SIZE_LIMIT = 64 << 20

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
    result TEXT,
    recoveries INTEGER NOT NULL DEFAULT 0,
    params_bytes INTEGER,
    result_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, seq);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_session ON jobs (session_id);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished);
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

# Each user's stored bytes (the sum of their jobs' params and results). Created, and filled from
# the jobs already there, by the migration that adds the byte columns.
_STORAGE_TABLE = "CREATE TABLE IF NOT EXISTS user_storage (user TEXT PRIMARY KEY, bytes INTEGER NOT NULL)"

# Columns added since the first schema: (name, definition), added to older databases on open.
# The byte columns are NULL in rows older than them (filling them would rewrite every row, all
# params and results, at open): _PARAMS_BYTES and _RESULT_BYTES measure those rows when needed.
_ADDED_JOB_COLUMNS = (
    ("recoveries", "INTEGER NOT NULL DEFAULT 0"),
    ("params_bytes", "INTEGER"),
    ("result_bytes", "INTEGER"),
)
_PARAMS_BYTES = "COALESCE(params_bytes, length(CAST(params AS BLOB)))"
_RESULT_BYTES = "COALESCE(result_bytes, length(CAST(result AS BLOB)), 0)"
# Rows deleted per transaction by a retention sweep (other calls run between the batches).
_SWEEP_BATCH = 500

# Columns a job listing returns (never the params or the result, which may be large).
_JOB_SUMMARY = (
    "id, seq, user, instance, program, backend, session_id, status, reason, reason_code, tags, cost, "
    "created, running, finished, usage_seconds"
)


def text_bytes(text: str) -> int:
    """The UTF-8 size of ``text``: its length when it is ASCII (as JSON text is), found at once."""
    return len(text) if text.isascii() else len(text.encode())


class StorageQuotaExceeded(Exception):
    """A job was not stored: its params would take ``user`` over ``limit`` stored bytes.

    Attributes:
        user: whose job; stored: the bytes ``user``'s jobs keep now; size: the new job's
            params; limit: the quota.
    """

    def __init__(self, user: str, stored: int, size: int, limit: int) -> None:
        super().__init__(f"user {user!r} keeps {stored} bytes; a job of {size} more would exceed {limit}")
        self.user = user
        self.stored = stored
        self.size = size
        self.limit = limit


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/aqrt/server.sqlite3`` (``~/.local/share/aqrt/server.sqlite3`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "aqrt" / "server.sqlite3"


class Store:
    """Async front of one SQLite database; each method runs on the store's own thread.

    Use as ``store = await Store.open(path)`` ... ``await store.close()``.

    Attributes:
        max_stored_bytes: the bytes one user's jobs may keep (:meth:`insert_job` refuses a job
            beyond them); None for no limit.
    """

    def __init__(self, path: Path | str, *, max_stored_bytes: int | None = None) -> None:
        self._path = str(path)
        self.max_stored_bytes = max_stored_bytes
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="aqrt-server-db")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path | str, *, max_stored_bytes: int | None = None) -> Store:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` for a throwaway one.
        ``max_stored_bytes``: the quota of each user's stored bytes (None: none)."""
        store = cls(path, max_stored_bytes=max_stored_bytes)
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
            _create_private(Path(self._path))
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            self._conn = conn
            self._use_incremental_vacuum()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            conn.executescript(_SCHEMA)
            self._migrate()
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _use_incremental_vacuum(self) -> None:
        """``auto_vacuum=INCREMENTAL``: set on a new database; an existing one without it is
        converted by a ``VACUUM`` when it is at most ``VACUUM_AT_OPEN_MAX_BYTES``."""
        db = self._db()
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:  # 2: INCREMENTAL
            return
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect at once on an empty database
        if db.execute("PRAGMA page_count").fetchone()[0] == 0:
            return
        size = self._file_bytes()
        if size > VACUUM_AT_OPEN_MAX_BYTES:
            logger.warning(
                "the database %s (%d MB) gives no space back to the file system after jobs are deleted; "
                "stop the server and run: sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'",
                self._path,
                size >> 20,
                self._path,
            )
            return
        started = time.perf_counter()
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # VACUUM wrote the whole file to the WAL
        logger.info(
            "converted %s (%d MB) to incremental auto-vacuum in %.2f s",
            self._path,
            size >> 20,
            time.perf_counter() - started,
        )

    def _file_bytes(self) -> int:
        """The database file's size with its ``-wal`` file (0 for ``:memory:``)."""
        if self._path == ":memory:":
            return 0
        return sum(os.path.getsize(path) for path in (self._path, self._path + "-wal") if os.path.exists(path))

    def _migrate(self) -> None:
        """Add the columns and tables newer than the database, in one transaction;
        ``user_storage`` is filled from the rows already there (one read of every row)."""
        db = self._db()
        known = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
        has_storage = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'user_storage'"
        ).fetchone()
        if all(name in known for name, _ in _ADDED_JOB_COLUMNS) and has_storage:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            for name, definition in _ADDED_JOB_COLUMNS:
                if name not in known:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")
            db.execute(_STORAGE_TABLE)
            db.execute("DELETE FROM user_storage")
            db.execute(  # reads every row once; writes one row per user
                "INSERT INTO user_storage (user, bytes)"
                f" SELECT user, SUM({_PARAMS_BYTES} + {_RESULT_BYTES}) FROM jobs GROUP BY user"
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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
        """Store a new job (its params as the JSON text received) and count its params' bytes
        in its user's total.

        With ``idempotency=(key, digest)`` the job and its key are stored in one transaction,
        unless ``job["user"]`` already used that key: then nothing is written and the earlier
        job's claim is returned (see :meth:`idempotent_job`).

        Raises:
            StorageQuotaExceeded: the params would take the user's stored bytes over
                :attr:`max_stored_bytes`; nothing was written.
        """
        return await self._call(self._insert_job, job, params_json, idempotency)

    def _insert_job(
        self, job: dict[str, Any], params_json: str, idempotency: tuple[str, str] | None
    ) -> dict[str, Any] | None:
        db = self._db()
        max_stored_bytes = self.max_stored_bytes
        size = text_bytes(params_json)
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
            if max_stored_bytes is not None:
                stored = self._stored_bytes(job["user"])
                if stored + size > max_stored_bytes:
                    raise StorageQuotaExceeded(job["user"], stored, size, max_stored_bytes)
            self._insert_job_row(job, params_json, size)
            self._add_stored_bytes(job["user"], size)
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

    def _insert_job_row(self, job: dict[str, Any], params_json: str, params_bytes: int) -> None:
        db = self._db()
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
        db.execute(
            "INSERT INTO jobs (id, seq, user, instance, program, backend, session_id, status, tags, cost, created,"
            " params, params_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                params_bytes,
            ),
        )

    def _stored_bytes(self, user: str) -> int:
        row = self._db().execute("SELECT bytes FROM user_storage WHERE user = ?", (user,)).fetchone()
        return int(row[0]) if row is not None else 0

    def _add_stored_bytes(self, user: str, delta: int) -> None:
        if delta:
            self._db().execute(
                "INSERT INTO user_storage (user, bytes) VALUES (?, ?)"
                " ON CONFLICT (user) DO UPDATE SET bytes = bytes + excluded.bytes",
                (user, delta),
            )

    async def stored_bytes(self, user: str) -> int:
        """The bytes ``user``'s jobs keep in the store: their params as stored, their results as
        encoded."""
        return await self._call(self._stored_bytes, user)

    async def update_job(self, job_id: str, **fields: Any) -> None:
        """Set some columns of a job (``status``, ``reason``, ``running``, ...)."""
        await self._call(self._update_job, job_id, fields)

    def _update_job(self, job_id: str, fields: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._db().execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*fields.values(), job_id))

    async def finish_job(self, job_id: str, fields: dict[str, Any]) -> None:
        """Write a job's final state (with ``fields["result"]``, the encoded result or a failed
        job's text, when it has one) and count the result's bytes in its user's total.

        The result is encoded before this is called, off this thread: the store thread only
        writes rows, so one big result never holds up other users' calls.
        """
        await self._call(self._finish_job, job_id, fields)

    def _finish_job(self, job_id: str, fields: dict[str, Any]) -> None:
        db = self._db()
        result = fields.get("result")
        if result is not None:
            fields = {**fields, "result_bytes": text_bytes(result)}
        db.execute("BEGIN IMMEDIATE")
        try:
            before = db.execute(f"SELECT user, {_RESULT_BYTES} AS bytes FROM jobs WHERE id = ?", (job_id,)).fetchone()
            # A final state already committed (a cancel acknowledged to the user) is never replaced
            # by another one: only its own final fields (usage, finished) are written.
            columns = ", ".join(f"{name} = ?" for name in fields)
            written = db.execute(
                f"UPDATE jobs SET {columns} WHERE id = ? AND (status NOT IN {_FINAL_SQL} OR status = ?)",
                (*fields.values(), job_id, fields["status"]),
            ).rowcount
            if written and before is not None and result is not None:
                self._add_stored_bytes(before["user"], fields["result_bytes"] - before["bytes"])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def mark_running(self, job_id: str, running: str) -> bool:
        """Commit that the job starts now (``Running``, at ``running``) unless it is already
        final (a cancel came first); True when it was written. Awaited before the engine
        runs the job, so a process that dies while it runs leaves the job ``Running``."""
        return await self._call(self._mark_running, job_id, running)

    def _mark_running(self, job_id: str, running: str) -> bool:
        cursor = self._db().execute(
            f"UPDATE jobs SET status = ?, running = ? WHERE id = ? AND status NOT IN {_FINAL_SQL}",
            (RUNNING, running, job_id),
        )
        return cursor.rowcount > 0

    async def cancel_job(self, job_id: str, finished: str, reason: str) -> bool:
        """Commit the job as ``Cancelled`` unless it is already final; True when it was."""
        return await self._call(self._cancel_job, job_id, finished, reason)

    def _cancel_job(self, job_id: str, finished: str, reason: str) -> bool:
        cursor = self._db().execute(
            f"UPDATE jobs SET status = ?, finished = ?, reason = ? WHERE id = ? AND status NOT IN {_FINAL_SQL}",
            (CANCELLED, finished, reason, job_id),
        )
        return cursor.rowcount > 0

    async def cancel_session(self, session_id: str, closed_at: str, reason: str) -> None:
        """Commit, in one transaction, a cancelled session as closed and every unfinished job
        of it as ``Cancelled`` (with ``reason``)."""
        await self._call(self._cancel_session, session_id, closed_at, reason)

    def _cancel_session(self, session_id: str, closed_at: str, reason: str) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "UPDATE sessions SET state = ?, accepting_jobs = 0, closed_at = ?, closed_reason = ? WHERE id = ?",
                (SESSION_CLOSED, closed_at, CLOSED_BY_CANCEL, session_id),
            )
            db.execute(
                f"UPDATE jobs SET status = ?, finished = ?, reason = ?"
                f" WHERE session_id = ? AND status NOT IN {_FINAL_SQL}",
                (CANCELLED, closed_at, reason, session_id),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def requeue_jobs(self, job_ids: list[str]) -> None:
        """Put jobs stopped by a clean shutdown back to ``Queued`` (they are re-run at the next
        start; a clean stop is not a crash, so it does not count against the job)."""
        await self._call(self._requeue_jobs, job_ids)

    def _requeue_jobs(self, job_ids: list[str]) -> None:
        self._db().executemany(
            "UPDATE jobs SET status = ?, running = NULL WHERE id = ? AND status = ?",
            [(QUEUED, job_id, RUNNING) for job_id in job_ids],
        )

    async def requeue_after_crash(self, job_id: str) -> None:
        """Count one more process death while the job ran, and put it back to ``Queued``."""
        await self._call(self._requeue_after_crash, job_id)

    def _requeue_after_crash(self, job_id: str) -> None:
        self._db().execute(
            "UPDATE jobs SET status = ?, running = NULL, recoveries = recoveries + 1 WHERE id = ? AND status = ?",
            (QUEUED, job_id, RUNNING),
        )

    async def delete_job(self, job_id: str, user: str) -> bool:
        """Delete ``user``'s job (its row, params, result and idempotency key); False when there
        was none. Once deletions have freed ``RECLAIM_AFTER_BYTES``, the space goes back to the
        file system (:meth:`reclaim_space`)."""
        return await self._call(self._delete_job, job_id, user)

    def _delete_job(self, job_id: str, user: str) -> bool:
        deleted = self._delete_jobs([job_id], user=user)
        if deleted and self._free_bytes() >= RECLAIM_AFTER_BYTES:
            self._reclaim_space()
        return bool(deleted)

    def _delete_jobs(self, job_ids: Iterable[str], *, user: str | None = None) -> list[str]:
        """Delete the jobs (only ``user``'s when given) and their idempotency keys, and take
        their bytes off their users' totals, in one transaction; returns the ids deleted."""
        db = self._db()
        deleted: list[str] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for job_id in job_ids:
                row = db.execute(
                    f"SELECT user, {_PARAMS_BYTES} + {_RESULT_BYTES} AS bytes FROM jobs"
                    " WHERE id = ? AND (? IS NULL OR user = ?)",
                    (job_id, user, user),
                ).fetchone()
                if row is None:
                    continue
                db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
                db.execute("DELETE FROM idempotency WHERE job_id = ? AND user = ?", (job_id, row["user"]))
                self._add_stored_bytes(row["user"], -row["bytes"])
                deleted.append(job_id)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return deleted

    async def delete_finished_before(self, cutoff: str) -> list[str]:
        """Delete every job that finished (``Completed``, ``Failed``, ``Cancelled``) before
        ``cutoff`` (an API time), with its params, result and idempotency key, and every session
        closed before it that no job refers to; returns the deleted jobs' ids.

        Deletes in batches, one transaction each, so other calls run in between; then gives the
        freed space back (:meth:`reclaim_space`) when anything was deleted.
        """
        deleted: list[str] = []
        while True:
            batch = await self._call(self._delete_finished_batch, cutoff)
            deleted.extend(batch)
            if len(batch) < _SWEEP_BATCH:
                break
        sessions = await self._call(self._delete_closed_sessions, cutoff)
        if deleted or sessions:
            await self.reclaim_space()
        return deleted

    def _delete_finished_batch(self, cutoff: str) -> list[str]:
        rows = (
            self._db()
            .execute(
                f"SELECT id FROM jobs WHERE status IN {_FINAL_SQL}"
                " AND (finished < ? OR (finished IS NULL AND created < ?)) LIMIT ?",
                (cutoff, cutoff, _SWEEP_BATCH),
            )
            .fetchall()
        )
        return self._delete_jobs([row["id"] for row in rows])

    def _delete_closed_sessions(self, cutoff: str) -> int:
        return (
            self._db()
            .execute(
                "DELETE FROM sessions WHERE state = ? AND closed_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.session_id = sessions.id)",
                (SESSION_CLOSED, cutoff),
            )
            .rowcount
        )

    async def reclaim_space(self) -> int:
        """Give the database's free pages back to the file system and truncate the ``-wal``
        file; returns the bytes by which the files shrank."""
        return await self._call(self._reclaim_space)

    def _reclaim_space(self) -> int:
        db = self._db()
        before = self._file_bytes()
        # Run to its end: sqlite3's execute() would step this statement once, freeing one page.
        db.executescript("PRAGMA incremental_vacuum;")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return max(0, before - self._file_bytes())

    def _free_bytes(self) -> int:
        db = self._db()
        free_pages = db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(free_pages) * int(db.execute("PRAGMA page_size").fetchone()[0])

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
        """Every job not in a final state, oldest first, with its params and ``recoveries``
        (how often a restart found it ``Running``), for a restart."""
        return await self._call(self._unfinished_jobs)

    def _unfinished_jobs(self) -> list[dict[str, Any]]:
        rows = (
            self._db()
            .execute(
                f"SELECT {_JOB_SUMMARY}, recoveries, params FROM jobs WHERE status NOT IN {_FINAL_SQL} ORDER BY seq"
            )
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
        """Sessions not closed, for a restart; each with ``used``: whether any job was ever
        submitted to it."""
        return await self._call(self._open_sessions)

    def _open_sessions(self) -> list[dict[str, Any]]:
        rows = (
            self._db()
            .execute(
                "SELECT *, EXISTS (SELECT 1 FROM jobs WHERE jobs.session_id = sessions.id) AS used"
                " FROM sessions WHERE state != ?",
                (SESSION_CLOSED,),
            )
            .fetchall()
        )
        return [_session_row(row) for row in rows]


def _job_row(row: sqlite3.Row) -> dict[str, Any]:
    job = dict(row)
    job["tags"] = json.loads(job["tags"])
    return job


def _session_row(row: sqlite3.Row) -> dict[str, Any]:
    session = dict(row)
    session["accepting_jobs"] = bool(session["accepting_jobs"])
    if "used" in session:
        session["used"] = bool(session["used"])
    return session


def _create_private(path: Path) -> None:
    """Create the folders up to ``path`` (``DB_FOLDER_MODE``) and the file itself
    (``DB_FILE_MODE``) where they do not exist; warn when an existing file is open to others."""
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DB_FOLDER_MODE)
        except FileExistsError:  # made meanwhile by someone else: theirs, left as it is
            continue
        os.chmod(folder, DB_FOLDER_MODE)  # exact, whatever the umask
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_FILE_MODE)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            logger.warning(
                "the database %s (the token-signing secret and every user's jobs) can be read by other "
                "users; consider chmod 600",
                path,
            )
        return
    os.close(descriptor)
    os.chmod(path, DB_FILE_MODE)
