"""Job handles: awaiting, asyncio combinators, cancellation semantics, many jobs at once."""

from __future__ import annotations

import asyncio

import anyio
import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp

from aqrt import Batch, Estimator, JobCancelledError, JobStatus, LocalService, Session
from aqrt.engine import warmup
from aqrt.testing import FakeBackend

pytestmark = [pytest.mark.asyncio]


def _pub(angle: float = 0.0) -> tuple[QuantumCircuit, SparsePauliOp]:
    circuit = QuantumCircuit(1)
    circuit.ry(angle, 0)
    return circuit, SparsePauliOp("Z")


async def test_thousand_jobs_gathered_in_one_session_on_the_local_backend() -> None:
    angles = np.linspace(0, np.pi, 1000)
    async with Session(service=LocalService()) as session:
        estimator = Estimator()
        jobs = [estimator.run([_pub(a)]) for a in angles]
        results = await asyncio.gather(*jobs)
    evs = np.array([float(r[0].data.evs) for r in results])
    np.testing.assert_allclose(evs, np.cos(angles), atol=1e-12)
    assert session.statistics()["done"] == 1000
    assert len({job.job_id for job in jobs}) == 1000


async def test_statistics_count_every_job_after_the_session_drops_finished_ones() -> None:
    async with Session(service=LocalService()) as session:
        estimator = Estimator()
        for index in range(300):
            job = estimator.run([_pub()])
            if index % 100 == 50:  # not the first job: its cancellation would fail the others
                assert job.cancel()
            else:
                await job
        statistics = session.statistics()
        assert len(session._admission.jobs) < 100  # finished jobs are counted, then let go
    assert statistics["total"] == 300 and statistics["finished"] == 300
    assert (statistics["done"], statistics["cancelled"], statistics["queued"]) == (297, 3, 0)
    assert statistics["usage_seconds"] >= 0


@pytest.mark.looptime
async def test_as_completed_and_wait_work_with_jobs(looptime) -> None:
    backend = FakeBackend(durations={0: 30, 1: 10, 2: 20})
    async with Batch(backend=backend, max_concurrency=3):
        jobs = [Estimator().run([_pub()]) for _ in range(3)]
        order = []
        for next_done in asyncio.as_completed(jobs):
            await next_done
            order.append(float(looptime))
        assert order == [10, 20, 30]
    async with Session(backend=FakeBackend(duration=5)):
        jobs = [Estimator().run([_pub()]) for _ in range(2)]
        done, pending = await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
        assert done == {jobs[0]} and pending == {jobs[1]}
        await asyncio.wait(pending)
        assert all(job.done() for job in jobs)


@pytest.mark.looptime
async def test_cancelling_the_awaiting_task_does_not_cancel_the_job(looptime) -> None:
    async with Session(backend=FakeBackend(duration=10)):
        job = Estimator().run([_pub()])
        waiter = asyncio.ensure_future(job.result())
        await asyncio.sleep(1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert job.status() is JobStatus.RUNNING
        result = await job
        assert result[0].data.evs == 0
        assert looptime == 10


@pytest.mark.looptime
async def test_many_waiters_of_one_job_are_independent(looptime) -> None:
    async with Session(backend=FakeBackend(duration=10)):
        job = Estimator().run([_pub()])

        async def by_await() -> object:
            return await job

        waiters = [asyncio.ensure_future(c) for c in (by_await(), job.result(), job.wait(), by_await())]
        await asyncio.sleep(2)
        waiters[0].cancel()  # one awaiting task goes away; the job and the other waiters do not
        outcome = await asyncio.gather(*waiters, return_exceptions=True)
    assert isinstance(outcome[0], asyncio.CancelledError)
    assert outcome[1] is outcome[3] is job._result and outcome[2] is None
    assert job.status() is JobStatus.DONE and looptime == 10
    assert await job is outcome[1]  # a final job is awaited at once, as often as asked


@pytest.mark.looptime
async def test_awaiting_a_cancelled_job_raises_job_cancelled_error_not_cancelled_error() -> None:
    async with Session(backend=FakeBackend(duration=10)):
        job = Estimator().run([_pub()])
        waiter = asyncio.ensure_future(job.result())
        await asyncio.sleep(1)
        assert job.cancel()
        with pytest.raises(JobCancelledError) as info:
            await waiter
        assert not job.cancel()  # already final
        assert not isinstance(info.value, asyncio.CancelledError)
        assert info.value.job_id == job.job_id
        assert job.status() is JobStatus.CANCELLED and job.done()
        assert isinstance(job.exception(), JobCancelledError)


@pytest.mark.looptime
async def test_status_moves_queued_running_done(looptime) -> None:
    async with Session(backend=FakeBackend(duration=10)):
        first = Estimator().run([_pub()])
        second = Estimator().run([_pub()])
        assert first.status() is JobStatus.QUEUED and not first.done()
        await asyncio.sleep(1)
        assert first.status() is JobStatus.RUNNING
        assert second.status() is JobStatus.QUEUED
        await first
        assert first.status() is JobStatus.DONE and first.done()
        await second


async def test_cancelling_a_running_local_job_stops_the_worker_promptly() -> None:
    # A 20-qubit circuit of a few hundred fused ops: seconds of work; the engine polls the
    # cancel flag between ops of wide circuits.
    circuit = QuantumCircuit(20)
    theta = Parameter("t")
    for layer in range(40):
        for q in range(20):
            circuit.ry(theta * (layer + 1), q)
        for q in range(19):
            circuit.cx(q, q + 1)
    observable = SparsePauliOp("Z" * 20)
    # The wide kernels loaded first: a job waits for its tiers to load (a second in a fresh
    # process), and that wait, not the engine's polling, is what this test would time otherwise.
    await anyio.to_thread.run_sync(lambda: warmup("complex128", ("wide",)))
    async with Session(service=LocalService()):
        await Estimator().run([_pub(0.1)])  # the first job fills the cache; it must not be cancelled
        slow = Estimator().run([(circuit, observable, np.linspace(0, 1, 4))])
        quick = Estimator().run([_pub(0.5)])
        await asyncio.sleep(0.3)
        assert slow.status() is JobStatus.RUNNING
        started = asyncio.get_running_loop().time()
        slow.cancel()
        with pytest.raises(JobCancelledError):
            await slow
        assert asyncio.get_running_loop().time() - started < 1.0
        assert float((await quick)[0].data.evs) == pytest.approx(np.cos(0.5))


async def test_result_is_a_coroutine_whose_misuse_says_to_await_it() -> None:
    async with Session(backend=FakeBackend(duration=0.01)):
        job = Estimator().run([(QuantumCircuit(1), SparsePauliOp("Z"))])
        with pytest.raises(TypeError, match=r"await it, as in \(await job.result\(\)\)\[0\].*aqrt.sync"):
            job.result()[0]
        with pytest.raises(AttributeError, match="await it"):
            job.result().data  # noqa: B018
        with pytest.raises(TypeError, match="await it"):
            list(job.result())
        # still a coroutine for asyncio: create_task, TaskGroup, wait_for, ensure_future
        assert (await asyncio.create_task(job.result()))[0].data.evs == 0
        async with asyncio.TaskGroup() as group:
            task = group.create_task(job.result(timeout=5))
        assert task.result()[0].data.evs == 0
        assert (await asyncio.wait_for(job.result(), 5))[0].data.evs == 0
        coroutine = job.result()
        assert asyncio.iscoroutine(coroutine)
        assert (await coroutine)[0].data.evs == 0
