"""``aqrt serve``'s per-user quotas (pending jobs, stored bytes) and results encoded off the
store's thread, against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aqrt.server import ServerConfig, create_app
from aqrt.server.job_lifecycle import UNENCODABLE_REASON
from aqrt.server.keys import SERVER_KEY
from aqrt.server.quotas import PendingJobs
from aqrt.server.runtime import RuntimeServer
from aqrt.server.store import StorageQuotaExceeded, Store
from aqrt.wire import encode, pubs_to_wire
from aqrt.wire.runtime_api import CODE_JOB_FAILED, CODE_PENDING_JOBS_LIMIT, CODE_STORAGE_QUOTA

from .server_support import Client, bell, make_config, slow_circuit, stored_job_row


@contextlib.asynccontextmanager
async def serving(config: ServerConfig) -> AsyncIterator[tuple[Client, RuntimeServer]]:
    """A real server on 127.0.0.1 and, for the test's own checks, the state behind it."""
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        async with aiohttp.ClientSession() as http:
            yield Client(http, f"http://127.0.0.1:{runner.addresses[0][1]}"), app[SERVER_KEY]
    finally:
        await runner.cleanup()


def _error(body: Any) -> tuple[int, str]:
    error = body["errors"][0]
    return error["code"], error["message"]


async def _count(client: Client, token: str) -> int:
    status, body = await client.call("GET", "/jobs", token)
    assert status == 200, body
    return int(body["count"])


# -- pending jobs ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_user_with_the_limit_of_pending_jobs_gets_429_until_one_finishes(tmp_path) -> None:
    async with serving(make_config(tmp_path, max_pending_jobs=2)) as (client, server):
        alice, bob = await client.token("alice-key"), await client.token("bob-key")
        running = await client.submit(alice, "estimator", [(slow_circuit(), "Z" * 22)])
        waiting = await client.submit(alice, "estimator", [(slow_circuit(), "Z" * 22)])
        status, body = await client.submit_raw(alice)
        assert status == 429, body
        code, message = _error(body)
        assert code == CODE_PENDING_JOBS_LIMIT and "limit of 2 pending jobs" in message
        assert body["status_code"] == 429
        # Refused before its params are decoded: garbage params get the same 429, not a 400.
        status, body = await client.call(
            "POST", "/jobs", alice, body={"program_id": "sampler", "backend": "aqrt_statevector", "params": {"x": 1}}
        )
        assert status == 429 and _error(body)[0] == CODE_PENDING_JOBS_LIMIT
        assert await _count(client, alice) == 2  # nothing refused was stored
        assert server.jobs.pending_jobs("alice") == 2
        # Another user is not affected.
        other = await client.submit(bob, "estimator", [(bell(), "ZZ")])
        # A cancelled job frees its place.
        assert (await client.call("POST", f"/jobs/{running}/cancel", alice))[0] == 204
        assert server.jobs.pending_jobs("alice") == 1
        third = await client.submit(alice, "estimator", [(slow_circuit(), "Z" * 22)])
        assert (await client.submit_raw(alice))[0] == 429
        for job_id in (waiting, third):
            assert (await client.call("POST", f"/jobs/{job_id}/cancel", alice))[0] == 204
        assert server.jobs.pending_jobs("alice") == 0
        # Finished jobs free their places.
        quick = [await client.submit(alice, "estimator", [(bell(), "ZZ")]) for _ in range(2)]
        for job_id in quick:
            assert (await client.wait_final(alice, job_id))["state"]["status"] == "Completed"
        assert server.jobs.pending_jobs("alice") == 0
        slow = [await client.submit(alice, "estimator", [(slow_circuit(), "Z" * 22)]) for _ in range(2)]
        assert (await client.submit_raw(alice))[0] == 429
        for job_id in slow:
            assert (await client.call("POST", f"/jobs/{job_id}/cancel", alice))[0] == 204
        assert (await client.wait_final(bob, other))["state"]["status"] == "Completed"


@pytest.mark.asyncio
async def test_concurrent_submissions_cannot_pass_the_pending_limit_together(tmp_path) -> None:
    async with serving(make_config(tmp_path, max_pending_jobs=3)) as (client, server):
        alice = await client.token("alice-key")
        slow = [(slow_circuit(), "Z" * 22)]
        first = await client.submit(alice, "estimator", slow)
        answers = await asyncio.gather(*(client.submit_raw(alice, "estimator", slow) for _ in range(6)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200, 200, 429, 429, 429, 429], answers
        assert await _count(client, alice) == 3
        accepted = [body["id"] for status, body in answers if status == 200]
        for job_id in (first, *accepted):
            assert (await client.call("POST", f"/jobs/{job_id}/cancel", alice))[0] == 204
        assert server.jobs.pending_jobs("alice") == 0


def test_a_reservation_holds_a_place_until_its_job_is_counted() -> None:
    pending = PendingJobs(limit=2)
    with pending.admit("alice") as first:
        assert pending.count("alice") == 1
        pending.add("alice", "job-1", first)  # takes over the reservation's place
        assert pending.count("alice") == 1
        with pending.admit("alice"):
            assert pending.count("alice") == 2
            with pytest.raises(Exception, match="limit of 2 pending jobs") as refused, pending.admit("alice"):
                pass
            assert refused.value.status == 429  # type: ignore[attr-defined]
            with pending.admit("bob"):
                assert pending.count("bob") == 1
        assert pending.count("alice") == 1  # the second submission failed before its job was counted
    assert pending.count("alice") == 1
    pending.discard("alice", "job-1")
    pending.discard("alice", "job-1")  # twice is harmless
    assert pending.count("alice") == 0 and pending.count("bob") == 0


@pytest.mark.asyncio
async def test_jobs_recovered_at_start_count_as_pending(tmp_path) -> None:
    async with serving(make_config(tmp_path)) as (client, _):
        alice = await client.token("alice-key")
        slow = await client.submit(alice, "estimator", [(slow_circuit(), "Z" * 22)])
        await client.wait_status(alice, slow, "Running")
    # Stopped while it ran: it is re-run at the next start, and counts there.
    async with serving(make_config(tmp_path, max_pending_jobs=1)) as (client, server):
        alice = await client.token("alice-key")
        assert server.jobs.pending_jobs("alice") == 1
        status, body = await client.submit_raw(alice)
        assert status == 429 and _error(body)[0] == CODE_PENDING_JOBS_LIMIT
        assert (await client.call("POST", f"/jobs/{slow}/cancel", alice))[0] == 204
        await client.submit(alice, "estimator", [(bell(), "ZZ")])


# -- stored bytes ------------------------------------------------------------------------------


def _params_bytes(program: str, pubs: list[Any]) -> int:
    """The stored size of the params ``Client.submit_raw`` sends (the server keeps them as
    ``json.dumps`` writes them)."""
    params = {"pubs": pubs_to_wire(program, pubs), "options": {}, "version": 2, "support_qiskit": True}
    return len(json.dumps(params).encode())


async def _result_text(client: Client, token: str, job_id: str) -> str:
    async with client.http.get(
        f"{client.base}/api/v1/jobs/{job_id}/results", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200
        return await response.text()


@pytest.mark.asyncio
async def test_stored_bytes_are_held_to_the_quota_and_deleting_jobs_frees_it(tmp_path) -> None:
    size = _params_bytes("estimator", [(bell(), "ZZ")])
    # Room for one job's params, not for its result as well: the result is still stored.
    config = make_config(tmp_path, max_stored_bytes=size + 10, job_retention=86400)
    async with serving(config) as (client, server):
        alice, bob = await client.token("alice-key"), await client.token("bob-key")
        first = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        assert (await client.wait_final(alice, first))["state"]["status"] == "Completed"
        result = await client.result(alice, first)  # acknowledged, so kept even past the quota
        assert result[0].data.evs == pytest.approx(1.0)
        text = await _result_text(client, alice, first)
        stored = await server.store.stored_bytes("alice")
        assert stored == size + len(text.encode()) > size + 10
        status, body = await client.submit_raw(alice)
        assert status == 429, body
        code, message = _error(body)
        assert code == CODE_STORAGE_QUOTA
        assert f"limit of {size + 10} bytes" in message and f"keep {stored} bytes" in message
        assert "1 days after they finish" in message
        assert await _count(client, alice) == 1
        assert server.jobs.pending_jobs("alice") == 0  # the refused submission holds no place
        await client.submit(bob, "estimator", [(bell(), "ZZ")])  # another user is not affected
        assert (await client.call("DELETE", f"/jobs/{first}", alice))[0] == 204
        assert await server.store.stored_bytes("alice") == 0
        second = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        assert (await client.wait_final(alice, second))["state"]["status"] == "Completed"


@pytest.mark.asyncio
async def test_the_store_counts_params_and_results_and_refuses_atomically(tmp_path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3", max_stored_bytes=300)
    try:
        await store.insert_job(stored_job_row("a", "alice"), '{"p": "' + "x" * 100 + '"}')
        await store.insert_job(stored_job_row("b", "alice"), '{"p": "é"}')  # 11 bytes in UTF-8
        assert await store.stored_bytes("alice") == 109 + 11
        with pytest.raises(StorageQuotaExceeded) as refused:
            await store.insert_job(stored_job_row("c", "alice"), "x" * 200)
        assert (refused.value.stored, refused.value.size, refused.value.limit) == (120, 200, 300)
        assert await store.job("c", "alice") is None and await store.stored_bytes("alice") == 120
        await store.finish_job("a", {"status": "Completed", "finished": "t", "result": "r" * 1000})
        assert await store.stored_bytes("alice") == 1120  # a result past the quota is stored
        await store.finish_job("b", {"status": "Cancelled", "finished": "t"})  # no result
        assert await store.stored_bytes("alice") == 1120
        assert await store.delete_job("a", "bob") is False and await store.stored_bytes("alice") == 1120
        assert await store.delete_job("a", "alice") is True
        assert await store.stored_bytes("alice") == 11 and await store.stored_bytes("bob") == 0
    finally:
        await store.close()


# -- results encoded off the store's thread ----------------------------------------------------


@pytest.mark.asyncio
async def test_another_users_listing_answers_while_a_big_result_is_encoded(tmp_path, monkeypatch) -> None:
    encoding = threading.Event()
    seconds = 3.0

    def slow_encode(result: Any) -> str:  # stands for a result that takes seconds to encode
        encoding.set()
        time.sleep(seconds)
        return encode(result)

    monkeypatch.setattr("aqrt.server.job_lifecycle.encode", slow_encode)
    async with serving(make_config(tmp_path)) as (client, _):
        alice, bob = await client.token("alice-key"), await client.token("bob-key")
        await client.submit(bob, "estimator", [(bell(), "ZZ")])
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        assert await asyncio.to_thread(encoding.wait, 60)
        loop = asyncio.get_running_loop()
        began = loop.time()
        latencies = []
        for _ in range(5):
            asked = loop.time()
            status, body = await client.call("GET", "/jobs", bob)
            latencies.append(loop.time() - asked)
            assert status == 200 and body["count"] == 1
            status, _ = await client.call("GET", f"/jobs/{job_id}", alice)
            assert status == 200
        assert loop.time() - began < seconds / 2, "the listings ran while the result was being encoded"
        assert max(latencies) < 1.0, latencies
        assert (await client.wait_final(alice, job_id))["state"]["status"] == "Completed"
        assert (await client.result(alice, job_id))[0].data.evs == pytest.approx(1.0)


@pytest.mark.asyncio
async def test_a_result_that_cannot_be_encoded_fails_its_job_with_a_reason(tmp_path, monkeypatch) -> None:
    def broken_encode(result: Any) -> str:
        raise TypeError("no encoder for this result")

    monkeypatch.setattr("aqrt.server.job_lifecycle.encode", broken_encode)
    async with serving(make_config(tmp_path)) as (client, _):
        alice = await client.token("alice-key")
        job_id = await client.submit(alice, "estimator", [(bell(), "ZZ")])
        state = (await client.wait_final(alice, job_id))["state"]
        assert state["status"] == "Failed" and state["reason"] == UNENCODABLE_REASON
        assert state["reason_code"] == CODE_JOB_FAILED
        assert UNENCODABLE_REASON in await _result_text(client, alice, job_id)
