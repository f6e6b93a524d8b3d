"""``aqrt serve``'s state transitions are durable: a cancel is committed before its 204 and
survives ``kill -9``; a job that was running when the process died is re-run a bounded number of
times, then failed (the poison-job rule); a job is ``Queued`` until the engine takes it, and its
``cost`` and usage count from that start.

The kill tests run the real command (``python -m aqrt serve``) as a subprocess and SIGKILL it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aqrt.server.recovery import MAX_CRASH_RERUNS

from .server_support import GRANT, KEYS, Client, bell, make_config, running_server, slow_circuit

pytestmark = pytest.mark.asyncio

LONG = (slow_circuit(22, 120), "Z" * 22)  # seconds of engine time: killed or cancelled long before it ends
SHORT = (slow_circuit(14, 4), "Z" * 14)  # milliseconds, but too big to run inline: it waits for the engine


class ServerProcess:
    """``python -m aqrt serve`` on a free port of 127.0.0.1 over one database, started and
    SIGKILLed as often as a test likes."""

    def __init__(self, db_path: Path, log_path: Path) -> None:
        self.db_path = db_path
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> Client:
        """Start the command and wait (bounded) until it exchanges a key for a token."""
        keys = [arg for key, user in KEYS.items() for arg in ("--api-key", f"{key}={user}")]
        with self.log_path.open("a") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "aqrt", "serve", "--port", "0", "--db", str(self.db_path), "--backend-qubits", "24", *keys),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        assert self.process.stdout is not None
        first = (await asyncio.wait_for(self.process.stdout.readline(), 60)).decode()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", first)
        assert found is not None, first + self.log_path.read_text()
        client = Client(http, f"http://127.0.0.1:{found.group(1)}")
        async with asyncio.timeout(60):
            while True:
                assert self.process.returncode is None, self.log_path.read_text()
                try:
                    async with http.post(f"{client.base}/identity/token", data={"grant_type": GRANT, "apikey": "x"}):
                        return client
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs in the server."""
        assert self.process is not None and self.process.returncode is None, "the server died on its own"
        self.process.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(self.process.wait(), 30) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 30)


@contextlib.asynccontextmanager
async def server_process(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, aiohttp.ClientSession]]:
    server = ServerProcess(tmp_path / "server.sqlite3", tmp_path / "server.log")
    try:
        async with aiohttp.ClientSession() as http:
            yield server, http
    finally:
        await server.stop()


async def _state(client: Client, token: str, job_id: str) -> dict[str, Any]:
    status, job = await client.call("GET", f"/jobs/{job_id}", token)
    assert status == 200, job
    return job["state"]


async def _metrics(client: Client, token: str, job_id: str) -> dict[str, Any]:
    status, metrics = await client.call("GET", f"/jobs/{job_id}/metrics", token)
    assert status == 200, metrics
    return metrics


def _db_rows(db_path: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return db.execute(query, args).fetchall()


# -- cancels --------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_cancelled_queued_jobs_show_cancelled_at_once_and_stay_cancelled_after_kill_9(tmp_path) -> None:
    async with server_process(tmp_path) as (server, http):
        client = await server.start(http)
        token = await client.token()
        long_job = await client.submit(token, "estimator", [LONG])
        await client.wait_status(token, long_job, "Running")
        queued = [await client.submit(token, "estimator", [SHORT]) for _ in range(20)]
        for job_id in queued:
            assert (await _state(client, token, job_id))["status"] == "Queued"
            status, body = await client.call("POST", f"/jobs/{job_id}/cancel", token)
            assert status == 204, body
            assert (await _state(client, token, job_id))["status"] == "Cancelled"  # at once, not "Running"
        await server.kill()

        client = await server.start(http)
        status, listing = await client.call("GET", "/jobs", token, params={"limit": "50"})
        assert status == 200 and listing["count"] == 21
        await client.wait_status(token, long_job, "Running")  # re-run: it was running when the server died
        for job_id in queued:
            assert (await _state(client, token, job_id))["status"] == "Cancelled"
            metrics = await _metrics(client, token, job_id)
            assert metrics["timestamps"]["running"] is None and metrics["usage"]["seconds"] == 0  # never ran
        assert (await client.call("POST", f"/jobs/{long_job}/cancel", token))[0] == 204
        await server.kill()

        client = await server.start(http)  # the cancel of a running job survives too
        state = await _state(client, token, long_job)
        assert state["status"] == "Cancelled", state
        assert (await client.call("GET", "/jobs", token, params={"pending": "true"}))[1]["count"] == 0


async def test_a_cancel_is_committed_before_its_204(tmp_path) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as client:
        token = await client.token()
        long_job = await client.submit(token, "estimator", [LONG])
        await client.wait_status(token, long_job, "Running")
        queued = await client.submit(token, "estimator", [SHORT])
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "batch", "backend": "aqrt_statevector"}
        )
        in_session = [await client.submit(token, "estimator", [SHORT], session_id=session["id"]) for _ in range(3)]

        assert (await client.call("POST", f"/jobs/{queued}/cancel", token))[0] == 204
        rows = await asyncio.to_thread(_db_rows, config.db_path, "SELECT status FROM jobs WHERE id = ?", queued)
        assert rows == [("Cancelled",)]

        assert (await client.call("DELETE", f"/sessions/{session['id']}/close", token))[0] == 204
        placeholders = ", ".join("?" * len(in_session))
        rows = await asyncio.to_thread(
            _db_rows, config.db_path, f"SELECT status FROM jobs WHERE id IN ({placeholders})", *in_session
        )
        assert rows == [("Cancelled",)] * 3
        rows = await asyncio.to_thread(
            _db_rows, config.db_path, "SELECT state, closed_reason FROM sessions WHERE id = ?", session["id"]
        )
        assert rows == [("closed", "cancelled")]
        for job_id in in_session:
            assert (await client.wait_final(token, job_id))["state"]["status"] == "Cancelled"
        assert (await client.call("POST", f"/jobs/{long_job}/cancel", token))[0] == 204
        assert (await _state(client, token, long_job))["status"] == "Cancelled"
        status, body = await client.call("GET", f"/jobs/{long_job}/results", token)
        assert status == 409 and "cancelled" in body["errors"][0]["message"]
        # cancelled while the engine still stops it: it can be deleted at once
        assert (await client.call("DELETE", f"/jobs/{long_job}", token))[0] == 204
        assert (await client.call("GET", f"/jobs/{long_job}", token))[0] == 404


# -- the poison-job rule --------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_job_running_at_every_crash_is_failed_after_the_allowed_reruns(tmp_path) -> None:
    """The server is SIGKILLed while the job runs, each time; the job is re-run MAX_CRASH_RERUNS
    times, and the next start marks it Failed instead of running it again."""
    async with server_process(tmp_path) as (server, http):
        client = await server.start(http)
        token = await client.token()
        poison = await client.submit(token, "estimator", [LONG])
        after = await client.submit(token, "estimator", [SHORT])  # queued behind it, at every start
        for _ in range(MAX_CRASH_RERUNS + 1):
            await client.wait_status(token, poison, "Running")
            await server.kill()
            client = await server.start(http)
        state = await _state(client, token, poison)
        assert state["status"] == "Failed", state
        assert state["reason_code"] == 1010
        assert f"stopped unexpectedly while this job ran, {MAX_CRASH_RERUNS + 1} times" in state["reason"]
        async with client.http.get(
            f"{client.base}/api/v1/jobs/{poison}/results", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200 and "stopped unexpectedly" in await response.text()
        # the server keeps serving: the job queued behind the poison one completes
        assert (await client.wait_final(token, after))["state"]["status"] == "Completed"
        assert (await client.token()) is not None


async def test_the_rule_counts_crashes_only(tmp_path) -> None:
    """A job left Running by a crash is re-run with one more crash counted; at the limit it is
    failed; a clean stop puts a running job back to Queued without counting it."""
    config = make_config(tmp_path)
    async with running_server(config) as client:
        token = await client.token()
        clean = await client.submit(token, "estimator", [LONG])
        await client.wait_status(token, clean, "Running")
        assert await asyncio.to_thread(_db_rows, config.db_path, "SELECT status FROM jobs WHERE id = ?", clean) == [
            ("Running",)
        ]  # committed before the engine took it
        rerun = await client.submit(token, "estimator", [(bell(), "ZZ")])
        poison = await client.submit(token, "estimator", [(bell(), "XX")])
        for job_id in (rerun, poison):
            await client.wait_final(token, job_id)
    rows = await asyncio.to_thread(_db_rows, config.db_path, "SELECT status, recoveries FROM jobs WHERE id = ?", clean)
    assert rows == [("Queued", 0)]  # a clean stop: not a crash

    def crash(job_id: str, recoveries: int) -> None:  # as a kill -9 leaves a job the engine ran
        with contextlib.closing(sqlite3.connect(config.db_path)) as db, db:
            db.execute(
                "UPDATE jobs SET status = 'Running', result = NULL, finished = NULL, recoveries = ? WHERE id = ?",
                (recoveries, job_id),
            )

    await asyncio.to_thread(crash, rerun, MAX_CRASH_RERUNS - 1)
    await asyncio.to_thread(crash, poison, MAX_CRASH_RERUNS)
    async with running_server(config) as client:
        assert (await client.wait_final(token, rerun))["state"]["status"] == "Completed"
        state = (await client.wait_final(token, poison))["state"]
        assert state["status"] == "Failed" and state["reason_code"] == 1010
        assert "not run again" in state["reason"]
        await client.wait_status(token, clean, "Running")
        assert (await client.call("POST", f"/jobs/{clean}/cancel", token))[0] == 204
    rows = await asyncio.to_thread(
        _db_rows, config.db_path, "SELECT id, recoveries FROM jobs WHERE id IN (?, ?, ?)", clean, rerun, poison
    )
    assert dict(rows) == {clean: 0, rerun: MAX_CRASH_RERUNS, poison: MAX_CRASH_RERUNS}


# -- Queued vs Running, cost and usage from the start ---------------------------------------------


async def test_a_job_is_queued_until_the_engine_takes_it_and_its_cost_counts_from_then(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        long_job = await client.submit(token, "estimator", [LONG])
        await client.wait_status(token, long_job, "Running")
        waiting = [await client.submit(token, "estimator", [SHORT], cost=1) for _ in range(3)]
        _, listing = await client.call("GET", "/jobs", token, params={"pending": "true"})
        assert sorted(job["state"]["status"] for job in listing["jobs"]) == ["Queued", "Queued", "Queued", "Running"]
        queued_since = time.monotonic()
        await asyncio.sleep(1.5)  # longer than their cost: they must not time out while queued
        for job_id in waiting:
            assert (await _state(client, token, job_id))["status"] == "Queued"
        assert (await _state(client, token, long_job))["status"] == "Running"  # else this test proves nothing
        assert (await client.call("POST", f"/jobs/{long_job}/cancel", token))[0] == 204
        for job_id in waiting:
            job = await client.wait_final(token, job_id)
            assert job["state"]["status"] == "Completed", job
            metrics = await _metrics(client, token, job_id)
            assert metrics["timestamps"]["running"] > metrics["timestamps"]["created"]
            assert 0 < metrics["usage"]["seconds"] < 1.0  # billed for running, not for waiting
        assert time.monotonic() - queued_since > 1.5
        async with asyncio.timeout(30):  # shown Cancelled at once; stored once the engine let go of it
            while (long_usage := (await _metrics(client, token, long_job))["usage"]["seconds"]) == 0:
                await asyncio.sleep(0.02)
        assert long_usage > 1.5
        _, usage = await client.call("GET", "/instances/usage", token)
        waited = sum([(await _metrics(client, token, job_id))["usage"]["seconds"] for job_id in waiting])
        assert usage["usage_consumed_seconds"] == pytest.approx(long_usage + waited)
        assert waited < 1.0


async def test_a_job_past_its_cost_while_running_fails_with_1305_and_no_internal_id(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        job_id = await client.submit(token, "estimator", [LONG], cost=1)
        job = await client.wait_final(token, job_id)
        assert job["state"]["status"] == "Failed" and job["state"]["reason_code"] == 1305
        assert "max_execution_time" in job["state"]["reason"] and "job-" not in job["state"]["reason"]
        usage = (await _metrics(client, token, job_id))["usage"]["seconds"]
        assert 1.0 <= usage < 5.0  # stopped about its cost after its start
