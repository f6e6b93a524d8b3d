"""``aqrt serve``'s hygiene: a private database, opaque ids and messages (no internal ids, no raw
exception text), throttled key guessing, idempotent retries answered after their batch closed,
and sessions that end by their clocks even when no job is ever submitted."""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aqrt.backends.local import LocalJobRunner
from aqrt.server.tokens import FAILURE_WINDOW, MAX_FAILED_EXCHANGES, ExchangeThrottle
from aqrt.wire import pubs_to_wire

from .server_support import GRANT, bell, make_config, running_server, slow_circuit

AQRT_JOB_ID = re.compile(r"job-[0-9a-f]{12}-[0-9a-f]{8}")
PUBLIC_ID = re.compile(r"[a-z2-7]{20}")


def _message(body: Any) -> str:
    return body["errors"][0]["message"]


async def _mode(path: Path) -> int | None:
    """The permission bits of ``path``, None if it does not exist (read off the loop)."""

    def read() -> int | None:
        return stat.S_IMODE(path.stat().st_mode) if path.exists() else None

    return await asyncio.to_thread(read)


# -- the database file ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_database_and_the_folders_made_for_it_are_private(tmp_path) -> None:
    await asyncio.to_thread(tmp_path.chmod, 0o755)
    db_path = tmp_path / "made" / "for" / "it" / "server.sqlite3"
    async with running_server(make_config(tmp_path, db_path=db_path)) as client:
        token = await client.token()
        await client.wait_final(token, await client.submit(token, "estimator", [(bell(), "ZZ")]))
        files = [db_path, *(db_path.parent / (db_path.name + suffix) for suffix in ("-wal", "-shm"))]
        for path in files:  # SQLite's own files take the database's mode
            assert await _mode(path) == 0o600, path
    for folder in (db_path.parent, db_path.parent.parent, db_path.parent.parent.parent):
        assert await _mode(folder) == 0o700, folder
    assert await _mode(tmp_path) == 0o755  # a folder it did not make is left as it is


@pytest.mark.asyncio
async def test_an_existing_database_keeps_its_mode(tmp_path, caplog) -> None:
    db_path = tmp_path / "shared.sqlite3"
    await asyncio.to_thread(db_path.touch)
    await asyncio.to_thread(db_path.chmod, 0o644)
    async with running_server(make_config(tmp_path, db_path=db_path)):
        pass
    assert await _mode(db_path) == 0o644
    assert any("can be read by other users" in record.getMessage() for record in caplog.records)


# -- ids and messages -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_job_ids_are_opaque_and_no_message_names_an_internal_id(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        ids = [await client.submit(token, "estimator", [(bell(), "ZZ")]) for _ in range(5)]
        assert all(PUBLIC_ID.fullmatch(job_id) for job_id in ids) and len(set(ids)) == 5
        assert len({job_id[:8] for job_id in ids}) == 5  # random from their first characters: no counter
        _, session = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        first = await client.submit(token, "estimator", [(slow_circuit(), "Z" * 22)], session_id=session["id"])
        second = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=session["id"])
        await client.wait_status(token, first, "Running")
        assert (await client.call("POST", f"/jobs/{first}/cancel", token))[0] == 204
        failed = (await client.wait_final(token, second))["state"]
        assert failed["status"] == "Failed" and failed["reason_code"] == 1219 and "first job" in failed["reason"]
        status, body = await client.submit_raw(token, session_id=session["id"])
        assert status == 409
        texts = [failed["reason"], _message(body)]
        for job_id in (*ids, first, second):
            result = await client.result(token, job_id) if job_id in ids else None
            if result is not None:
                assert result.metadata["job_id"] == job_id
            texts.append(str((await client.call("GET", f"/jobs/{job_id}/logs", token))[1]))
        assert not [text for text in texts if AQRT_JOB_ID.search(text) or "session-" in text], texts
        assert session["id"] in _message(body)


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (
            MemoryError("Unable to allocate 8.00 EiB for an array with shape (1152921504606846976,)"),
            "needs more memory than this server has",
        ),
        (ValueError("operands could not be broadcast together with shapes (3,) (4,)"), "internal error"),
    ],
)
@pytest.mark.asyncio
async def test_a_failure_the_engine_did_not_explain_is_named_without_its_raw_text(
    tmp_path, monkeypatch, raised, said
) -> None:
    def fail(self, request, context, **kwargs):
        raise raised

    monkeypatch.setattr(LocalJobRunner, "run", fail)
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        for pubs in ([(bell(), "ZZ")], [(slow_circuit(14, 4), "Z" * 14)]):  # inline, and on the engine thread
            job_id = await client.submit(token, "estimator", pubs)
            state = (await client.wait_final(token, job_id))["state"]
            assert state["status"] == "Failed" and state["reason_code"] == 1500
            async with client.http.get(
                f"{client.base}/api/v1/jobs/{job_id}/results", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                text = await response.text()
            for shown in (state["reason"], text):
                assert said in shown and str(raised) not in shown and not AQRT_JOB_ID.search(shown), shown


# -- throttled key exchanges ----------------------------------------------------------------------


async def _exchange(base: str, key: str, source: str) -> tuple[int, dict[str, str], Any]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(f"{base}/identity/token", data={"grant_type": GRANT, "apikey": key}) as response,
    ):
        return response.status, dict(response.headers), await response.json()


@pytest.mark.asyncio
async def test_failed_key_exchanges_are_throttled_per_address_and_per_key(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        # per address: ten wrong keys, then even the right key waits
        for guess in range(MAX_FAILED_EXCHANGES):
            status, _, body = await _exchange(client.base, f"guess-{guess}", "127.0.0.2")
            assert status == 400, body
        for key in ("guess-next", "alice-key"):
            status, headers, body = await _exchange(client.base, key, "127.0.0.2")
            assert status == 429, body
            assert 0 < int(headers["Retry-After"]) <= FAILURE_WINDOW and "try again" in _message(body)
        assert (await _exchange(client.base, "alice-key", "127.0.0.3"))[0] == 200  # other addresses are not held

        # per key: one key tried from several addresses
        for attempt in range(MAX_FAILED_EXCHANGES):
            status, _, _ = await _exchange(client.base, "same-guess", f"127.0.1.{attempt + 1}")
            assert status == 400
        status, headers, _ = await _exchange(client.base, "same-guess", "127.0.2.1")
        assert status == 429 and int(headers["Retry-After"]) > 0
        assert (await _exchange(client.base, "bob-key", "127.0.2.1"))[0] == 200


def test_the_throttle_lets_an_address_try_again_once_its_failures_leave_the_window() -> None:
    now = [0.0]
    throttle = ExchangeThrottle(max_failures=3, window=60, clock=lambda: now[0])
    for second in (0, 10, 20):
        now[0] = second
        assert throttle.retry_after("a", f"k{second}") is None
        throttle.note_failure("a", f"k{second}")
    assert throttle.retry_after("a", "k") == 40  # until the first failure is 60 s old
    now[0] = 59.5
    assert throttle.retry_after("a", "k") == 1
    now[0] = 60
    assert throttle.retry_after("a", "k") is None
    throttle.note_failure("a", "k")
    assert throttle.retry_after("a", "k") == 10  # the failures at 10, 20 and 60 s


# -- idempotent retries -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_idempotent_retry_gets_the_first_answer_after_its_batch_closed(tmp_path) -> None:
    async with running_server(make_config(tmp_path)) as client:
        token = await client.token()
        _, batch = await client.call("POST", "/sessions", token, body={"mode": "batch", "backend": "aqrt_statevector"})
        body = {
            "program_id": "estimator",
            "session_id": batch["id"],
            "tags": ["aqrt-idem-retry-1"],
            "params": {"pubs": pubs_to_wire("estimator", [(bell(), "ZZ")]), "version": 2},
        }
        status, first = await client.call("POST", "/jobs", token, body=body)  # names no backend: the batch's
        assert status == 200, first
        assert (await client.wait_final(token, first["id"]))["state"]["status"] == "Completed"
        assert (await client.call("PATCH", f"/sessions/{batch['id']}", token, body={"accepting_jobs": False}))[0] == 204
        async with asyncio.timeout(30):
            while (await client.call("GET", f"/sessions/{batch['id']}", token))[1]["state"] != "closed":
                await asyncio.sleep(0.02)

        for retry in (body, {**body, "backend": "aqrt_statevector"}):
            status, again = await client.call("POST", "/jobs", token, body=retry)
            assert status == 200 and again == first, again
        # no key: a new job, refused by the closed batch
        status, again = await client.call("POST", "/jobs", token, body={**body, "tags": []})
        assert status == 409 and "closed" in _message(again)
        changed = {**body, "params": {"pubs": pubs_to_wire("estimator", [(bell(), "XX")]), "version": 2}}
        status, again = await client.call("POST", "/jobs", token, body=changed)
        assert status == 409 and "different request" in _message(again)
        _, listing = await client.call("GET", "/jobs", token)
        assert listing["count"] == 1


# -- unused sessions ------------------------------------------------------------------------------


async def _wait_closed(client, token: str, session_id: str, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            _, details = await client.call("GET", f"/sessions/{session_id}", token)
            if details["state"] == "closed" and details.get("closed_reason"):
                return details
            await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_an_unused_session_ends_at_its_max_ttl_or_interactive_timeout(tmp_path) -> None:
    async with running_server(make_config(tmp_path, interactive_ttl=1)) as client:
        token = await client.token()
        _, batch = await client.call(
            "POST", "/sessions", token, body={"mode": "batch", "backend": "aqrt_statevector", "max_ttl": 2}
        )
        _, dedicated = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector", "max_ttl": 60}
        )
        _, used = await client.call(
            "POST", "/sessions", token, body={"mode": "dedicated", "backend": "aqrt_statevector", "max_ttl": 60}
        )
        for session in (batch, dedicated):
            _, details = await client.call("GET", f"/sessions/{session['id']}", token)
            assert details["state"] == "open" and details["accepting_jobs"] is True
        used_job = await client.submit(token, "estimator", [(bell(), "ZZ")], session_id=used["id"])

        details = await _wait_closed(client, token, dedicated["id"], timeout=10)
        assert "interactive_ttl" in details["closed_reason"] and details["accepting_jobs"] is False
        details = await _wait_closed(client, token, batch["id"], timeout=10)
        assert details["closed_reason"] == "max_ttl reached"
        status, body = await client.submit_raw(token, session_id=batch["id"])
        assert status == 409 and "expired" in _message(body)
        status, body = await client.submit_raw(token, session_id=dedicated["id"])
        assert status == 409 and "closed" in _message(body)
        # used: aqrt's clocks rule it, so its interactive timeout makes it inactive, not closed
        assert (await client.wait_final(token, used_job))["state"]["status"] == "Completed"
        async with asyncio.timeout(10):
            while (details := (await client.call("GET", f"/sessions/{used['id']}", token))[1])["state"] != "inactive":
                assert details["state"] != "closed", details
                await asyncio.sleep(0.05)
        assert details["accepting_jobs"] is True


@pytest.mark.asyncio
async def test_an_unused_session_past_its_max_ttl_is_closed_at_the_next_start(tmp_path) -> None:
    config = make_config(tmp_path)
    async with running_server(config) as client:
        token = await client.token()
        _, batch = await client.call(
            "POST", "/sessions", token, body={"mode": "batch", "backend": "aqrt_statevector", "max_ttl": 1}
        )
    await asyncio.sleep(1.1)
    async with running_server(config) as client:
        details = await _wait_closed(client, token, batch["id"], timeout=10)
        assert details["closed_reason"] == "max_ttl reached"
    async with running_server(config) as client:  # recorded: not reopened
        _, details = await client.call("GET", f"/sessions/{batch['id']}", token)
        assert details["state"] == "closed"


def test_the_throttle_and_the_poison_job_rule_are_settings() -> None:
    """ServerConfig fields and `aqrt serve` options, with the modules' constants as defaults."""
    import argparse

    from aqrt.server.cli import config_from_args, configure
    from aqrt.server.config import ServerConfig
    from aqrt.server.recovery import MAX_CRASH_RERUNS

    defaults = ServerConfig(db_path=":memory:", api_keys={"k": "u"})
    assert (defaults.max_failed_exchanges, defaults.failure_window) == (MAX_FAILED_EXCHANGES, FAILURE_WINDOW)
    assert defaults.max_crash_reruns == MAX_CRASH_RERUNS
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(
        ["--api-key", "k=u", "--max-crash-reruns", "0", "--max-failed-exchanges", "3", "--failure-window", "2.5"]
    )
    config = config_from_args(args, environ={})
    assert (config.max_crash_reruns, config.max_failed_exchanges, config.failure_window) == (0, 3, 2.5)
    for bad in ({"max_crash_reruns": -1}, {"max_failed_exchanges": 0}, {"failure_window": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ServerConfig(db_path=":memory:", api_keys={"k": "u"}, **bad)


@pytest.mark.asyncio
async def test_a_configured_throttle_is_the_one_the_server_uses(tmp_path) -> None:
    async with running_server(make_config(tmp_path, max_failed_exchanges=2, failure_window=30)) as client:
        for guess in range(2):
            assert (await _exchange(client.base, f"guess-{guess}", "127.0.0.2"))[0] == 400
        status, headers, _ = await _exchange(client.base, "alice-key", "127.0.0.2")
        assert status == 429 and 0 < int(headers["Retry-After"]) <= 30
