"""``aqrt serve`` stopped mid-run and started again on the same database loses no job: finished
ones keep their results, unfinished ones (queued or running) are re-run, sessions come back."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import numpy as np
import pytest

from aqrt import Estimator, LocalService

from .server_support import bell, make_config, running_server, slow_circuit

pytestmark = pytest.mark.asyncio


async def test_a_restart_reruns_unfinished_jobs_and_keeps_finished_ones(tmp_path) -> None:
    config = make_config(tmp_path)
    slow_pub = (slow_circuit(20, 30), "Z" * 20)
    local = LocalService().backend()
    expected_slow = (await Estimator(mode=local).run([slow_pub]))[0].data.evs
    expected_bell = (await Estimator(mode=local).run([(bell(), "ZZ")]))[0].data.evs

    async with running_server(config) as client:
        token = await client.token()
        done = await client.submit(token, "estimator", [(bell(), "ZZ")])
        assert (await client.wait_final(token, done))["state"]["status"] == "Completed"
        running = await client.submit(token, "estimator", [slow_pub])
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        in_session = await client.submit(token, "estimator", [slow_pub], session_id=session["id"])
        queued = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"])
        await client.wait_status(token, running, "Running")
        await client.wait_status(token, in_session, "Running")
        _, job = await client.call("GET", f"/jobs/{queued}", token)
        assert job["state"]["status"] == "Queued"
    # The server is stopped, its jobs mid-run.

    async with running_server(config) as client:
        # the old token is still good: the signing secret lives in the database
        status, listing = await client.call("GET", "/jobs", token)
        assert status == 200 and listing["count"] == 4
        np.testing.assert_array_equal((await client.result(token, done))[0].data.evs, expected_bell)
        for job_id, expected in ((running, expected_slow), (in_session, expected_slow), (queued, expected_bell)):
            job = await client.wait_final(token, job_id)
            assert job["state"]["status"] == "Completed", job
            np.testing.assert_array_equal((await client.result(token, job_id))[0].data.evs, expected)
        status, details = await client.call("GET", f"/sessions/{session['id']}", token)
        assert status == 200 and details["accepting_jobs"] is True
        status, _ = await client.call("PATCH", f"/sessions/{session['id']}", token, body={"accepting_jobs": False})
        assert status == 204

    def journal_mode() -> str:
        with contextlib.closing(sqlite3.connect(config.db_path)) as db:
            return db.execute("PRAGMA journal_mode").fetchone()[0]

    assert await asyncio.to_thread(journal_mode) == "wal"


async def test_a_closed_session_s_jobs_are_rerun_and_it_stays_closed(tmp_path) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as client:
        token = await client.token()
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "batch", "backend": "aqrt_statevector"}
        )
        slow = await client.submit(token, "estimator", [(slow_circuit(20, 30), "Z" * 20)], session_id=session["id"])
        await client.wait_status(token, slow, "Running")
        assert (await client.call("PATCH", f"/sessions/{session['id']}", token, body={"accepting_jobs": False}))[
            0
        ] == 204

    async with running_server(config) as client:
        job = await client.wait_final(token, slow)
        assert job["state"]["status"] == "Completed"
        _, details = await client.call("GET", f"/sessions/{session['id']}", token)
        assert details["accepting_jobs"] is False
        status, body = await client.submit_raw(token, session_id=session["id"])
        assert status == 409, body


async def test_a_stored_job_that_cannot_be_rerun_is_failed_with_a_reason(tmp_path) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as client:
        token = await client.token()
        job_id = await client.submit(token, "estimator", [(slow_circuit(20, 30), "Z" * 20)])
        await client.wait_status(token, job_id, "Running")

    def corrupt() -> None:  # as if the stored inputs were from an incompatible version
        with contextlib.closing(sqlite3.connect(config.db_path)) as db, db:
            db.execute("UPDATE jobs SET params = ? WHERE id = ?", ('{"pubs": [], "version": 2}', job_id))

    await asyncio.to_thread(corrupt)
    async with running_server(config) as client:
        job = await client.wait_final(token, job_id)
        assert job["state"]["status"] == "Failed" and job["state"]["reason_code"] == 1010
        assert "could not be re-run after a server restart" in job["state"]["reason"]
