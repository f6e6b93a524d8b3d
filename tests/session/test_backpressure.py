"""A bounded session: run() fails fast past max_pending, submit() waits (or fails, when asked),
and 100k tiny jobs from 1000 concurrent producers go through in bounded memory."""

from __future__ import annotations

import os

import anyio
import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import Batch, Estimator, InvalidOptionsError, JobStatus, Session, SessionFullError
from aqrt.engine import warmup
from aqrt.testing import FakeBackend

pytestmark = pytest.mark.asyncio


def _pub(angle: float = 0.4):
    circuit = QuantumCircuit(1)
    circuit.ry(angle, 0)
    return (circuit, SparsePauliOp("Z"))


@pytest.mark.looptime
async def test_run_past_the_bound_fails_fast_and_submit_waits_for_room(looptime) -> None:
    async with Batch(backend=FakeBackend(duration=1.0), max_concurrency=2, max_pending=3) as batch:
        estimator = Estimator(session=batch)
        first = [estimator.run([_pub()]) for _ in range(3)]
        with pytest.raises(SessionFullError, match="max_pending=3"):
            estimator.run([_pub()])
        fourth = await estimator.submit([_pub()])  # waits until one of the first two finishes
        assert looptime == 1 and sum(j.done() for j in first) == 2
        assert fourth.status() in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert looptime == 2 and all(j.status() is JobStatus.DONE for j in [*first, fourth])


@pytest.mark.looptime
async def test_on_full_error_makes_submit_fail_fast_and_bad_pubs_give_their_slot_back(looptime) -> None:
    async with Session(backend=FakeBackend(duration=1.0), max_pending=1, on_full="error") as session:
        estimator = Estimator(session=session)
        job = await estimator.submit([_pub()])
        with pytest.raises(SessionFullError):
            await estimator.submit([_pub()])
        await job
        with pytest.raises(ValueError):
            await estimator.submit([("not a circuit", SparsePauliOp("Z"))])
        await (await estimator.submit([_pub()]))  # the failed submission did not keep its slot
        assert looptime == 2


async def test_bad_bounds_are_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="max_pending"):
        Session(max_pending=0)
    with pytest.raises(InvalidOptionsError, match="on_full"):
        Batch(on_full="drop")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:  # read on a worker thread, never on the loop
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.timeout(300)  # asyncio's debug mode (the tests') makes a tiny job ~0.7 ms here: 100k take 75-115 s
async def test_100k_tiny_jobs_from_concurrent_producers_stay_in_bounded_memory() -> None:
    """100 producers submit 1000 jobs each without waiting for results; one consumer takes
    them as they complete. The bound keeps at most 500 unfinished jobs alive, so memory stays
    flat (unbounded, the 100k queued jobs alone take a few hundred MiB)."""
    producers, per_producer, bound = 100, 1000, 500
    angles = np.linspace(0, np.pi, producers)
    evs_by_angle: dict[float, float] = {}
    count = 0
    peak_live = 0
    peak_rss = 0
    async with Batch(max_concurrency=4, max_pending=bound) as batch:
        estimator = Estimator(session=batch)
        # Load the engine's small tier before measuring: a process whose first jobs run on the
        # numpy interpreter loads numba in the background later, which is not the queue's memory.
        await anyio.to_thread.run_sync(lambda: warmup("complex128", ("small",)))
        await estimator.run([_pub()])
        baseline_rss = await anyio.to_thread.run_sync(_rss_bytes)

        async def produce(i: int) -> None:
            pub = _pub(float(angles[i]))
            for _ in range(per_producer):
                await estimator.submit([pub])

        async def consume() -> None:
            nonlocal count, peak_live
            async for job in batch.as_completed():
                count += 1
                peak_live = max(peak_live, len(batch._scheduler.queue) + len(batch._scheduler.running))
                circuit = job.request.pubs[0].circuit
                evs_by_angle.setdefault(float(circuit.data[0].params[0]), float((await job)[0].data.evs))

        async def sample_memory() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, await anyio.to_thread.run_sync(_rss_bytes))
                await anyio.sleep(0.25)

        with anyio.fail_after(280):
            async with anyio.create_task_group() as group:
                group.start_soon(consume)
                group.start_soon(sample_memory)
                async with anyio.create_task_group() as producing:
                    for i in range(producers):
                        producing.start_soon(produce, i)
                await batch.close()
                while count < producers * per_producer:  # the consumer drains the last ones
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()
        stats = batch.statistics()
    assert count == producers * per_producer
    assert stats["total"] == count + 1 and stats["done"] == stats["total"]
    assert len(batch._admission.jobs) <= 4096  # finished jobs are counted and dropped, not kept
    assert 0 < peak_live <= bound
    assert sorted(evs_by_angle) == sorted(float(a) for a in angles)
    np.testing.assert_allclose([evs_by_angle[float(a)] for a in angles], np.cos(angles), atol=1e-12)
    growth = peak_rss - baseline_rss
    assert growth < 64 << 20, f"resident memory grew by {growth / 2**20:.1f} MiB"
