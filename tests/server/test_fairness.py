"""Fair queues in ``aqrt serve``: one user's backlog does not starve another user's job, and a
dedicated session's job goes ahead of job-mode jobs (issue #12, fair queues).

The server tests run a real server on 127.0.0.1; the bounds are generous multiples of one
backlog job's measured run time, and each also checks what a first-come-first-served queue
cannot meet: most of the backlog is still pending when the small job has completed.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from aqrt.server.scheduling import FairSlot, JobOwner

from .server_support import Client, make_config, running_server, slow_circuit

pytestmark = pytest.mark.asyncio

BACKLOG = 30
BACKLOG_QUBITS = 18  # a backlog job: about 0.2 s of engine time on one core
BACKLOG_LAYERS = 40
SMALL_QUBITS = 14  # a small job: milliseconds of work, but too big to run inline on the loop
SMALL_LAYERS = 4
HOLDER = JobOwner("holder")


# -- the slot alone ---------------------------------------------------------------------------------


async def _order_of_turns(
    slot: FairSlot, waiters: list[tuple[str, JobOwner]]
) -> tuple[list[str], dict[str, asyncio.Task[None]]]:
    """Hold ``slot``, queue ``waiters`` (name, owner) in that order, and return the order in
    which they get it once it is let go, and their tasks (started, not awaited)."""
    order: list[str] = []

    async def wait_turn(name: str, owner: JobOwner) -> None:
        async with slot.turn(owner):
            order.append(name)
            await asyncio.sleep(0)

    await slot.acquire(HOLDER)
    tasks = {}
    for name, owner in waiters:
        tasks[name] = asyncio.create_task(wait_turn(name, owner))
        await asyncio.sleep(0)  # queued now, in this order
    assert slot.waiting() == len(waiters)
    return order, tasks


async def _settle(slot: FairSlot, tasks: dict[str, asyncio.Task[None]]) -> None:
    async with asyncio.timeout(5):
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert not slot.held and slot.waiting() == 0


async def test_users_take_turns_and_each_user_s_jobs_keep_their_order() -> None:
    slot = FairSlot()
    alice, bob, carol = JobOwner("alice"), JobOwner("bob"), JobOwner("carol")
    order, tasks = await _order_of_turns(
        slot, [("a1", alice), ("a2", alice), ("a3", alice), ("b1", bob), ("b2", bob), ("c1", carol)]
    )
    slot.release(HOLDER)
    await _settle(slot, tasks)
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3"]


async def test_a_dedicated_session_s_jobs_go_first() -> None:
    slot = FairSlot()
    alice, bob, carol_dedicated = JobOwner("alice"), JobOwner("bob"), JobOwner("carol", dedicated=True)
    alice_dedicated = JobOwner("alice", dedicated=True)
    order, tasks = await _order_of_turns(
        slot,
        [
            ("a1", alice),
            ("b1", bob),
            ("c1", carol_dedicated),
            ("a2", alice),
            ("ad", alice_dedicated),
            ("c2", carol_dedicated),
        ],
    )
    slot.release(HOLDER)
    await _settle(slot, tasks)
    assert order == ["c1", "ad", "c2", "a1", "b1", "a2"]


async def test_a_free_slot_is_taken_at_once() -> None:
    slot = FairSlot()
    async with asyncio.timeout(1):
        async with slot.turn(JobOwner("alice")):
            assert slot.held and slot.waiting() == 0
    assert not slot.held


async def test_a_job_cancelled_while_waiting_leaves_the_queue_and_skips_no_one_s_turn() -> None:
    slot = FairSlot()
    alice, bob = JobOwner("alice"), JobOwner("bob")
    order, tasks = await _order_of_turns(slot, [("a1", alice), ("a2", alice), ("b1", bob), ("b2", bob)])
    tasks["a1"].cancel()
    tasks["b2"].cancel()
    await asyncio.sleep(0)
    assert slot.waiting() == 2  # gone from the queue before the slot is let go
    slot.release(HOLDER)
    await _settle(slot, tasks)
    assert order == ["a2", "b1"]
    assert tasks["a1"].cancelled() and tasks["b2"].cancelled()


async def test_a_job_cancelled_as_the_slot_is_handed_to_it_hands_it_on() -> None:
    slot = FairSlot()
    alice, bob = JobOwner("alice"), JobOwner("bob")
    order, tasks = await _order_of_turns(slot, [("a1", alice), ("b1", bob)])
    slot.release(HOLDER)  # a1's turn: the slot is held for it ...
    tasks["a1"].cancel()  # ... but it is cancelled before it runs
    await _settle(slot, tasks)
    assert order == ["b1"] and tasks["a1"].cancelled()
    async with asyncio.timeout(1), slot.turn(alice):  # nothing leaked: free again
        pass


async def test_a_user_s_sessions_take_turns_within_the_user_s_turns() -> None:
    slot = FairSlot()
    alice_s1, alice_s2, alice_job_mode = (
        JobOwner("alice", session="s1"),
        JobOwner("alice", session="s2"),
        JobOwner("alice"),
    )
    bob = JobOwner("bob")
    order, tasks = await _order_of_turns(
        slot,
        [
            ("s1a", alice_s1),
            ("s1b", alice_s1),
            ("s1c", alice_s1),
            ("s2a", alice_s2),
            ("j1", alice_job_mode),
            ("b1", bob),
            ("b2", bob),
        ],
    )
    slot.release(HOLDER)
    await _settle(slot, tasks)
    assert order == ["s1a", "b1", "s2a", "b2", "j1", "s1b", "s1c"]


async def test_weights_give_a_user_that_many_turns_in_a_row() -> None:
    slot = FairSlot(weights={"alice": 3})
    alice, bob = JobOwner("alice"), JobOwner("bob")
    order, tasks = await _order_of_turns(
        slot, [*((f"a{i}", alice) for i in range(1, 8)), *((f"b{i}", bob) for i in range(1, 4))]
    )
    slot.release(HOLDER)
    await _settle(slot, tasks)
    assert order == ["a1", "a2", "a3", "b1", "a4", "a5", "a6", "b2", "a7", "b3"]


async def test_several_slots_and_a_per_user_bound() -> None:
    slot = FairSlot(3, max_per_user=2)
    alice, bob = JobOwner("alice"), JobOwner("bob")
    entered: list[str] = []
    gates = {name: asyncio.Event() for name in ("a1", "a2", "a3", "b1", "b2")}

    async def job(name: str, owner: JobOwner) -> None:
        async with slot.turn(owner):
            entered.append(name)
            await gates[name].wait()

    tasks = {}
    for name, owner in (("a1", alice), ("a2", alice), ("a3", alice), ("b1", bob), ("b2", bob)):
        tasks[name] = asyncio.create_task(job(name, owner))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    # alice holds her bound of 2 slots; a3 waits although a slot is free, which bob takes
    assert entered == ["a1", "a2", "b1"] and slot.held == 3 and slot.waiting() == 2
    gates["b1"].set()
    await asyncio.sleep(0.01)
    assert entered == ["a1", "a2", "b1", "b2"]  # alice is still at her bound
    gates["a1"].set()
    await asyncio.sleep(0.01)
    assert entered == ["a1", "a2", "b1", "b2", "a3"]
    for gate in gates.values():
        gate.set()
    await _settle(slot, tasks)


async def test_slot_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="slots"):
        FairSlot(0)
    with pytest.raises(ValueError, match="max_per_user"):
        FairSlot(2, max_per_user=0)


# -- the server -------------------------------------------------------------------------------------


def _backlog_pubs() -> list[tuple[object, str]]:
    return [(slow_circuit(BACKLOG_QUBITS, BACKLOG_LAYERS), "Z" * BACKLOG_QUBITS)]


def _small_pubs() -> list[tuple[object, str]]:
    return [(slow_circuit(SMALL_QUBITS, SMALL_LAYERS), "Z" * SMALL_QUBITS)]


async def _one_backlog_job_seconds(client: Client, token: str) -> float:
    """Run one backlog job (this also compiles the engine) and return how long a second took."""
    await client.wait_final(token, await client.submit(token, "estimator", _backlog_pubs()))
    began = time.perf_counter()
    job = await client.wait_final(token, await client.submit(token, "estimator", _backlog_pubs()))
    assert job["state"]["status"] == "Completed", job
    return time.perf_counter() - began


async def _queue_backlog(client: Client, token: str) -> list[str]:
    return list(await asyncio.gather(*(client.submit(token, "estimator", _backlog_pubs()) for _ in range(BACKLOG))))


async def _completed(client: Client, token: str, job_ids: list[str]) -> int:
    answers = await asyncio.gather(*(client.call("GET", f"/jobs/{job_id}", token) for job_id in job_ids))
    return sum(1 for _, job in answers if job["state"]["status"] == "Completed")


async def _small_job_wait(client: Client, token: str, **extra: object) -> float:
    """Seconds from a small job's submission until it is seen completed."""
    began = time.perf_counter()
    job_id = await client.submit(token, "estimator", _small_pubs(), **extra)
    job = await client.wait_final(token, job_id, timeout=60)
    assert job["state"]["status"] == "Completed", job
    return time.perf_counter() - began


async def test_another_user_s_job_does_not_wait_for_one_user_s_backlog(tmp_path) -> None:
    async with running_server(make_config(tmp_path, backend_qubits=BACKLOG_QUBITS)) as client:
        alice, bob = await client.token("alice-key"), await client.token("bob-key")
        one_job = await _one_backlog_job_seconds(client, alice)
        backlog = await _queue_backlog(client, alice)
        wait = await _small_job_wait(client, bob)
        completed = await _completed(client, alice, backlog)
        # First come, first served, bob's job would wait for all 30 (about 30 x one_job).
        assert completed <= BACKLOG // 2, (completed, wait, one_job)
        assert wait < 3 * one_job + 1.0, (wait, one_job, completed)


async def test_a_dedicated_session_s_job_goes_ahead_of_its_own_user_s_backlog(tmp_path) -> None:
    async with running_server(make_config(tmp_path, backend_qubits=BACKLOG_QUBITS)) as client:
        alice = await client.token("alice-key")
        status, session = await client.call(
            "POST", "/sessions", alice, body={"mode": "dedicated", "backend": "aqrt_statevector"}
        )
        assert status == 200, session
        one_job = await _one_backlog_job_seconds(client, alice)
        backlog = await _queue_backlog(client, alice)
        wait = await _small_job_wait(client, alice, session_id=session["id"])
        completed = await _completed(client, alice, backlog)
        # Round-robin by user alone would put it behind all of alice's own backlog.
        assert completed <= BACKLOG // 2, (completed, wait, one_job)
        assert wait < 3 * one_job + 1.0, (wait, one_job, completed)
