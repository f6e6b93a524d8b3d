"""``aqrt serve``'s retention (finished jobs deleted once older than ``job_retention``, by the
config's clock) and the store giving deleted jobs' space back to the file system."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from aqrt.server import store as store_module
from aqrt.server.retention import MAX_SWEEP_INTERVAL, sweep_interval
from aqrt.server.store import Store

from .server_support import bell, make_config, slow_circuit, stored_job_row
from .test_quotas import serving

RETENTION = 3600.0


class MovableClock:
    """Wall time moved by ``offset`` seconds (the server's clock for retention and tokens)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def set(self, moment: float) -> None:
        self.offset = moment - time.time()


def _epoch(api_time: str) -> float:
    return dt.datetime.fromisoformat(api_time).timestamp()


async def _ids(client: Any, token: str) -> set[str]:
    status, body = await client.call("GET", "/jobs", token)
    assert status == 200, body
    return {job["id"] for job in body["jobs"]}


@pytest.mark.asyncio
async def test_finished_jobs_past_the_retention_are_deleted_and_unfinished_ones_never(tmp_path) -> None:
    clock = MovableClock()
    async with serving(make_config(tmp_path, job_retention=RETENTION, clock=clock)) as (client, server):
        alice = await client.token("alice-key")
        old = await client.submit(alice, "estimator", [(bell(), "ZZ")], tags=["aqrt-idem-old"])
        old_job = await client.wait_final(alice, old)
        await asyncio.sleep(1.1)
        recent = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        recent_job = await client.wait_final(alice, recent)
        assert _epoch(recent_job["ended"]) - _epoch(old_job["ended"]) > 1.0
        assert await server.retention.sweep() == []  # nothing is that old yet
        stored_before = await server.store.stored_bytes("alice")

        clock.set(_epoch(old_job["ended"]) + RETENTION + 0.5)  # past the old job's retention only
        assert await server.retention.sweep() == [old]
        alice = await client.token("alice-key")  # the clock moved past the first token's life
        assert await _ids(client, alice) == {recent}
        assert (await client.call("GET", f"/jobs/{old}", alice))[0] == 404
        assert (await client.call("GET", f"/jobs/{old}/results", alice))[0] == 404
        assert 0 < await server.store.stored_bytes("alice") < stored_before
        # Its idempotency key went with it: the same key makes a new job.
        again = await client.submit(alice, "estimator", [(bell(), "ZZ")], tags=["aqrt-idem-old"])
        assert again != old
        await client.wait_final(alice, again)
        running = await client.submit(alice, "estimator", [(slow_circuit(), "Z" * 22)])
        await client.wait_status(alice, running, "Running")

        clock.set(time.time() + 10 * 365 * 86400)  # every finished job is past its retention now
        alice = await client.token("alice-key")
        assert set(await server.retention.sweep()) == {recent, again}
        assert await _ids(client, alice) == {running}  # still running: never deleted
        assert (await client.call("GET", f"/jobs/{running}", alice))[1]["state"]["status"] == "Running"
        assert (await client.call("POST", f"/jobs/{running}/cancel", alice))[0] == 204
        await client.wait_final(alice, running)
        assert await server.retention.sweep() == [running]  # finished (cancelled) now, and "old"
        assert await _ids(client, alice) == set()
        assert await server.store.stored_bytes("alice") == 0


@pytest.mark.asyncio
async def test_a_sweep_runs_at_start_and_takes_closed_sessions_no_job_refers_to(tmp_path) -> None:
    async with serving(make_config(tmp_path, job_retention=RETENTION)) as (client, _):
        alice = await client.token("alice-key")
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        await client.wait_final(alice, job_id)
        status, session = await client.call(
            "POST", "/sessions", alice, body={"mode": "batch", "backend": "aqrt_statevector"}
        )
        assert status == 200, session
        assert (await client.call("DELETE", f"/sessions/{session['id']}/close", alice))[0] == 204
        assert (await client.call("GET", f"/sessions/{session['id']}", alice))[0] == 200
    clock = MovableClock()
    clock.set(time.time() + 2 * RETENTION)
    async with serving(make_config(tmp_path, job_retention=RETENTION, clock=clock)) as (client, _):
        alice = await client.token("alice-key")
        async with asyncio.timeout(30):
            while await _ids(client, alice):
                await asyncio.sleep(0.02)
        assert (await client.call("GET", f"/jobs/{job_id}", alice))[0] == 404
        assert (await client.call("GET", f"/sessions/{session['id']}", alice))[0] == 404


@pytest.mark.asyncio
async def test_sweeps_repeat_while_the_server_runs(tmp_path) -> None:
    # A retention of 1 s: sweeps every second (the shortest interval), so a finished job goes
    # within about two seconds of finishing, with no sweep asked for.
    async with serving(make_config(tmp_path, job_retention=1.0)) as (client, _):
        alice = await client.token("alice-key")
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        finished = _epoch((await client.wait_final(alice, job_id))["ended"])
        async with asyncio.timeout(10):
            while await _ids(client, alice):
                await asyncio.sleep(0.05)
        assert 1.0 < time.time() - finished < 3.5


@pytest.mark.asyncio
async def test_a_retention_of_zero_keeps_jobs(tmp_path) -> None:
    clock = MovableClock()
    async with serving(make_config(tmp_path, job_retention=0, clock=clock)) as (client, server):
        alice = await client.token("alice-key")
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        await client.wait_final(alice, job_id)
        clock.set(time.time() + 10 * 365 * 86400)
        assert await server.retention.sweep() == []
        alice = await client.token("alice-key")
        assert await _ids(client, alice) == {job_id}


def test_sweeps_run_every_tenth_of_the_retention_at_most_hourly() -> None:
    assert sweep_interval(30 * 86400) == MAX_SWEEP_INTERVAL == 3600
    assert sweep_interval(600) == 60
    assert sweep_interval(0.5) == 1.0


# -- space ----------------------------------------------------------------------------------------


def _sizes(path: Path) -> tuple[int, int]:
    """The sizes of the database file and its ``-wal`` file (0 when there is none)."""
    wal = Path(f"{path}-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


async def _files_bytes(path: Path) -> int:
    return sum(await asyncio.to_thread(_sizes, path))


async def _fill(store: Store, count: int, size: int) -> None:
    for number in range(count):
        job_id = f"job{number}"
        await store.insert_job(stored_job_row(job_id), '"' + f"{number:x}" * (size // 2 // len(f"{number:x}")) + '"')
        await store.finish_job(
            job_id, {"status": "Completed", "finished": "2026-01-01T00:00:00.000000+00:00", "result": "r" * (size // 2)}
        )


@pytest.mark.asyncio
async def test_the_files_shrink_after_a_sweep_deletes_big_jobs(tmp_path) -> None:
    path = tmp_path / "db.sqlite3"
    store = await Store.open(path)
    try:
        await _fill(store, 24, 1 << 20)  # 24 MB of params and results
        await store.insert_job(stored_job_row("kept"), '"small"')
        before = await _files_bytes(path)
        assert before > 24 << 20
        deleted = await store.delete_finished_before("2027-01-01T00:00:00.000000+00:00")
        assert len(deleted) == 24 and "kept" not in deleted
        after = await _files_bytes(path)
        assert after < before // 10, (before, after)
        assert (await asyncio.to_thread(_sizes, path))[1] == 0  # the -wal file is truncated
        assert await store.stored_bytes("alice") == len('"small"')
        assert await store.job("kept", "alice") is not None
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_deleting_jobs_one_by_one_gives_the_space_back_once_enough_is_free(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "RECLAIM_AFTER_BYTES", 4 << 20)
    path = tmp_path / "db.sqlite3"
    store = await Store.open(path)
    try:
        await _fill(store, 12, 1 << 20)
        await store.reclaim_space()
        full = await _files_bytes(path)
        for number in range(2):  # 2 MB free: kept for reuse
            assert await store.delete_job(f"job{number}", "alice")
        assert await _files_bytes(path) >= full - (1 << 20)
        for number in range(2, 12):
            assert await store.delete_job(f"job{number}", "alice")
        assert await _files_bytes(path) < full // 2, (full, await _files_bytes(path))
    finally:
        await store.close()


# The jobs table as the first schema wrote it (no byte columns, no user_storage), in a database
# made without auto-vacuum, as every database before this change was.
_OLD_JOBS = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, user TEXT NOT NULL, instance TEXT, program TEXT NOT NULL,
    backend TEXT NOT NULL, session_id TEXT, status TEXT NOT NULL, reason TEXT, reason_code INTEGER,
    tags TEXT NOT NULL, cost INTEGER, created TEXT NOT NULL, running TEXT, finished TEXT,
    usage_seconds REAL, params TEXT NOT NULL, result TEXT
);
"""


def _old_database(path: Path, jobs: int, size: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_OLD_JOBS)
    for number in range(jobs):
        user = "alice" if number % 2 else "bob"
        db.execute(
            "INSERT INTO jobs (id, seq, user, program, backend, status, tags, created, finished, params, result)"
            " VALUES (?, ?, ?, 'sampler', 'b', 'Completed', '[]', 't', '2026-01-01T00:00:00+00:00', ?, ?)",
            (f"job{number}", number + 1, user, "p" * size, "é" * size),  # é: 2 bytes in UTF-8
        )
    db.commit()
    db.close()


def _auto_vacuum(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        db.close()


@pytest.mark.asyncio
async def test_an_older_database_is_converted_and_its_stored_bytes_counted_at_open(tmp_path) -> None:
    path = tmp_path / "old.sqlite3"
    await asyncio.to_thread(_old_database, path, 6, 200_000)
    assert await asyncio.to_thread(_auto_vacuum, path) == 0
    store = await Store.open(path)
    try:
        assert await store.stored_bytes("alice") == await store.stored_bytes("bob") == 3 * 600_000
        before = await _files_bytes(path)
        assert await store.delete_finished_before("2027-01-01T00:00:00+00:00") != []
        assert await store.stored_bytes("alice") == 0
        assert await _files_bytes(path) < before // 10
    finally:
        await store.close()
    assert await asyncio.to_thread(_auto_vacuum, path) == 2  # INCREMENTAL


@pytest.mark.asyncio
async def test_a_large_older_database_opens_at_once_unconverted_with_a_warning(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(store_module, "VACUUM_AT_OPEN_MAX_BYTES", 100_000)
    path = tmp_path / "old.sqlite3"
    await asyncio.to_thread(_old_database, path, 2, 100_000)
    with caplog.at_level(logging.WARNING, logger="aqrt.server"):
        store = await Store.open(path)
    try:
        assert "gives no space back" in caplog.text and "VACUUM" in caplog.text
        assert await store.stored_bytes("alice") == 300_000  # counted all the same
        assert sorted(await store.delete_finished_before("2027-01-01T00:00:00+00:00")) == ["job0", "job1"]
    finally:
        await store.close()
    assert await asyncio.to_thread(_auto_vacuum, path) == 0
