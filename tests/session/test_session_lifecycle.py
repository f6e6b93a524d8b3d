"""Session and Batch lifecycles: close, cancel, exceptions, first-job cache, implicit sessions,
modes, introspection, and no leaks on any path."""

from __future__ import annotations

import asyncio
import gc

import anyio
import anyio.lowlevel
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import (
    BackendMismatchError,
    Batch,
    Estimator,
    InvalidTimeSpecError,
    JobCancelledError,
    JobFailedError,
    JobStatus,
    LocalService,
    Sampler,
    Session,
    SessionCacheError,
    SessionClosedError,
    SessionState,
    SessionStateError,
    current_session,
)
from aqrt.testing import FakeBackend

from .support import aqrt_tasks, h_pub

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]


async def test_leaving_the_block_waits_for_submitted_jobs(looptime) -> None:
    backend = FakeBackend(duration=5)
    async with Session(backend=backend) as session:
        jobs = [Estimator().run([h_pub()]) for _ in range(4)]
    assert looptime == 20
    assert all(job.status() is JobStatus.DONE for job in jobs)
    assert session.status() is SessionState.CLOSED
    assert not aqrt_tasks()


async def test_submitting_after_close_is_refused_with_a_clear_error() -> None:
    async with Session(backend=FakeBackend()) as session:
        estimator = Estimator()
    with pytest.raises(SessionClosedError, match="closed and accepts no new jobs"):
        estimator.run([h_pub()])
    with pytest.raises(SessionClosedError):
        Estimator(session=session).run([h_pub()])


async def test_close_explicitly_waits_and_then_refuses(looptime) -> None:
    session = Session(backend=FakeBackend(duration=3))
    job = Estimator(session=session).run([h_pub()])
    await session.close()
    assert looptime == 3 and job.status() is JobStatus.DONE
    assert session.status() is SessionState.CLOSED
    with pytest.raises(SessionClosedError):
        Estimator(session=session).run([h_pub()])
    assert not aqrt_tasks()


async def test_plain_session_object_without_jobs_closes() -> None:
    session = Session(backend=FakeBackend())
    assert session.status() is SessionState.PENDING
    await session.close()
    assert session.status() is SessionState.CLOSED


async def test_cancel_cancels_running_and_queued_jobs(looptime) -> None:
    backend = FakeBackend(duration=100)
    async with Session(backend=backend) as session:
        jobs = [Estimator().run([h_pub()]) for _ in range(3)]
        await anyio.sleep(10)
        assert jobs[0].status() is JobStatus.RUNNING
        await session.cancel()
        assert looptime == 10
        assert [job.status() for job in jobs] == [JobStatus.CANCELLED] * 3
        for job in jobs:
            with pytest.raises(JobCancelledError):
                await job
        with pytest.raises(SessionClosedError):
            Estimator().run([h_pub()])
    assert [event for event, _, _ in backend.log] == ["start", "stop"]
    assert not aqrt_tasks()


async def test_exception_in_block_cancels_outstanding_jobs(looptime) -> None:
    backend = FakeBackend(duration=100)
    with pytest.raises(RuntimeError, match="boom"):
        async with Session(backend=backend) as session:
            jobs = [Estimator().run([h_pub()]) for _ in range(3)]
            await anyio.sleep(1)
            raise RuntimeError("boom")
    assert looptime == 1
    assert all(job.status() is JobStatus.CANCELLED for job in jobs)
    assert session.status() is SessionState.CLOSED
    assert not aqrt_tasks()


async def test_cancelling_the_host_task_cancels_the_sessions_jobs(looptime) -> None:
    backend = FakeBackend(duration=100)
    jobs = []

    async def host() -> None:
        async with Session(backend=backend):
            jobs.extend(Estimator().run([h_pub()]) for _ in range(2))
            await anyio.sleep(1000)

    async with anyio.create_task_group() as tg:
        tg.start_soon(host)
        await anyio.sleep(5)
        tg.cancel_scope.cancel()
    assert [job.status() for job in jobs] == [JobStatus.CANCELLED] * 2
    assert looptime == 5
    assert not aqrt_tasks()


async def test_interrupting_the_graceful_wait_cancels_the_jobs(looptime) -> None:
    backend = FakeBackend(duration=100)
    jobs = []
    with anyio.move_on_after(10):
        async with Session(backend=backend):
            jobs.extend(Estimator().run([h_pub()]) for _ in range(2))
        # leaving the block waits for 200 s of jobs; the deadline interrupts that wait
    assert looptime == 10
    assert [job.status() for job in jobs] == [JobStatus.CANCELLED] * 2
    assert not aqrt_tasks()


async def test_cancelling_the_first_job_fails_later_jobs_with_a_cache_error(looptime) -> None:
    backend = FakeBackend(duration=10)
    async with Session(backend=backend) as session:
        first = Estimator().run([h_pub()])
        second = Estimator().run([h_pub()])
        await anyio.sleep(1)
        assert first.cancel()
        with pytest.raises(JobCancelledError):
            await first
        with pytest.raises(SessionCacheError, match=r"first job .* was cancelled"):
            await second
        with pytest.raises(SessionCacheError, match="Open a new session"):
            Estimator().run([h_pub()])
        assert session.statistics()["cancelled"] == 1


async def test_cancelling_a_queued_first_job_also_poisons_the_session(looptime) -> None:
    async with Session(backend=FakeBackend(duration=10)) as session:
        first = Estimator().run([h_pub()])
        first.cancel()  # before the supervisor ever dispatched it
        assert first.status() is JobStatus.CANCELLED
        with pytest.raises(SessionCacheError):
            Estimator(session=session).run([h_pub()])


async def test_later_jobs_reuse_the_first_jobs_cache(looptime) -> None:
    backend = FakeBackend(duration=1)
    async with Session(backend=backend):
        first = Estimator().run([h_pub()])
        await first
        await Estimator().run([h_pub()])
    assert backend.caches[0] is backend.caches[1]
    assert backend.caches[0]["filled_by"] == first.job_id


async def test_cancelling_a_later_job_does_not_poison_the_session(looptime) -> None:
    async with Session(backend=FakeBackend(duration=10)):
        first = Estimator().run([h_pub()])
        second = Estimator().run([h_pub()])
        second.cancel()
        third = Estimator().run([h_pub()])
        await first
        await third
        assert second.status() is JobStatus.CANCELLED


async def test_a_failed_job_leaves_the_session_working(looptime) -> None:
    backend = FakeBackend(duration=1, fail_with=ZeroDivisionError("kernel exploded"))
    async with Session(backend=backend):
        bad = Estimator().run([h_pub()])
        with pytest.raises(JobFailedError, match="ZeroDivisionError: kernel exploded") as info:
            await bad
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        backend.fail_with = None
        assert (await Estimator().run([h_pub()]))[0].data.evs == 0


async def test_session_runs_jobs_one_at_a_time_in_order(looptime) -> None:
    backend = FakeBackend(duration=2)
    async with Session(backend=backend):
        jobs = [Estimator().run([h_pub()]) for _ in range(5)]
    assert backend.max_running == 1
    started = [job_id for event, job_id, _ in backend.log if event == "start"]
    assert started == [job.job_id for job in jobs]
    assert backend.starts() == [0, 2, 4, 6, 8]


async def test_batch_runs_jobs_concurrently_up_to_its_limit(looptime) -> None:
    backend = FakeBackend(duration=10)
    async with Batch(backend=backend, max_concurrency=3) as batch:
        jobs = [Estimator().run([h_pub()]) for _ in range(7)]
    assert backend.max_running == 3
    assert backend.starts() == [0, 0, 0, 10, 10, 10, 20]
    assert looptime == 30
    assert batch.mode == "batch"
    assert all(job.done() for job in jobs)


async def test_batch_rejects_an_interactive_timeout() -> None:
    with pytest.raises(InvalidTimeSpecError, match="no interactive timeout"):
        Batch(backend=FakeBackend(), interactive_timeout=10)


async def test_implicit_session_is_per_task_and_nests(looptime) -> None:
    outer_backend, inner_backend = FakeBackend("outer"), FakeBackend("inner")
    assert current_session() is None
    async with Session(backend=outer_backend) as outer:
        assert current_session() is outer
        async with Session(backend=inner_backend) as inner:
            assert Estimator().session is inner
        assert current_session() is outer
        assert Estimator().session is outer
    assert current_session() is None


async def test_concurrent_tasks_see_their_own_sessions(looptime) -> None:
    seen: dict[str, tuple[str, str]] = {}

    async def worker(label: str, delay: float) -> None:
        async with Session(backend=FakeBackend(label, duration=delay)) as session:
            await anyio.sleep(delay)  # interleave with the other task
            job = Estimator().run([h_pub()])
            await job
            seen[label] = (job.session_id, session.session_id)
            assert job.backend_name == label

    async with anyio.create_task_group() as tg:
        for index in range(5):
            tg.start_soon(worker, f"backend{index}", index + 1)
    assert len(seen) == 5
    assert all(job_session == session for job_session, session in seen.values())
    assert len({session for _, session in seen.values()}) == 5


async def test_explicit_session_and_mode_arguments(looptime) -> None:
    backend = FakeBackend()
    session = Session(backend=backend)
    assert Estimator(session=session).session is session
    assert Estimator(mode=session).session is session
    assert Sampler(mode=session).session is session
    async with Session(backend=FakeBackend("other")) as other:
        # an explicit session wins over the implicit one
        assert Estimator(session=session).session is session
        assert Estimator().session is other
    await session.close()


async def test_job_mode_runs_without_a_session(looptime) -> None:
    backend = FakeBackend(duration=4)
    estimator = Estimator(mode=backend)
    assert estimator.session is None
    job = estimator.run([h_pub()])
    assert job.session_id is None
    assert (await job)[0].data.evs == 0
    assert looptime == 4
    assert not aqrt_tasks()


async def test_a_primitive_bound_to_another_backend_inside_a_session_is_an_error() -> None:
    async with Session(backend=FakeBackend("mine")):
        with pytest.raises(BackendMismatchError, match=r"'theirs'.*'mine'"):
            Estimator(mode=FakeBackend("theirs"))
        assert Estimator(mode=FakeBackend("mine")).session is current_session()
    service = LocalService()
    async with Session(service=service, backend="ibmq_qasm_simulator") as session:
        assert session.backend.name == "aqrt_statevector"
        assert Estimator(mode="aqrt_statevector").session is session


async def test_session_cannot_be_entered_twice_or_reopened() -> None:
    session = Session(backend=FakeBackend())
    async with session:
        with pytest.raises(SessionStateError, match="already entered"):
            async with session:
                pass
    with pytest.raises(SessionStateError):
        async with session:
            pass


async def test_details_status_statistics(looptime) -> None:
    backend = FakeBackend(duration=10)
    async with Session(backend=backend, max_time="1h", interactive_timeout="2m") as session:
        jobs = [Estimator().run([h_pub()]) for _ in range(3)]
        await anyio.sleep(15)
        details = await session.details()
        assert details["id"] == session.session_id
        assert details["backend_name"] == "fake_backend"
        assert details["mode"] == "dedicated"
        assert details["state"] == "active"
        assert details["accepting_jobs"] is True
        assert details["max_time"] == 3600 and details["interactive_timeout"] == 120
        assert details["remaining_time"] == 3600 - 15
        stats = session.statistics()
        assert (stats["queued"], stats["running"], stats["done"], stats["total"]) == (1, 1, 1, 3)
        jobs[2].cancel()
    stats = session.statistics()
    assert (stats["done"], stats["cancelled"], stats["finished"]) == (2, 1, 3)
    assert stats["usage_seconds"] == 20
    assert session.status() is SessionState.CLOSED
    assert (await session.details())["remaining_time"] == 0


async def test_many_sessions_leave_no_tasks_or_threads(thread_baseline) -> None:
    service = LocalService()
    circuit, observable = h_pub()
    for _ in range(20):
        async with Session(service=service) as session:
            jobs = [Estimator().run([(circuit, observable)]) for _ in range(3)]
            jobs[1].cancel()
        assert session.status() is SessionState.CLOSED
    with pytest.raises(RuntimeError):
        async with Session(service=service):
            Estimator().run([(circuit, observable)])
            raise RuntimeError
    await anyio.lowlevel.checkpoint()
    gc.collect()
    assert not aqrt_tasks()


async def test_local_backend_transpiles_once_per_session_and_reuses_it() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.rz(0.3, 1)
    circuit.rz(0.4, 1)  # level 2 merges these
    observable = SparsePauliOp("ZZ")
    async with Session(service=LocalService()) as session:
        estimator = Estimator(options={"optimization_level": 2})
        first = await estimator.run([(circuit, observable)])
        cached = {k: v for k, v in session._scheduler.cache.items() if k[0] == "transpiled"}
        assert len(cached) == 1
        (transpiled,) = cached.values()
        assert transpiled.count_ops().get("rz", 0) <= 1
        second = await estimator.run([(circuit.copy(), observable)])
        assert {k: v for k, v in session._scheduler.cache.items() if k[0] == "transpiled"} == cached
    assert float(first[0].data.evs) == pytest.approx(float(second[0].data.evs), abs=1e-12)


async def test_unclosed_plain_session_settles_its_jobs_when_the_loop_shuts_down() -> None:
    jobs: list = []

    def scenario() -> None:
        async def main() -> None:
            session = Session(backend=FakeBackend(duration=100))
            jobs.extend(Estimator(session=session).run([h_pub()]) for _ in range(2))
            await anyio.sleep(0.01)  # return without closing: asyncio.run cancels the supervisor

        asyncio.run(main())

    await anyio.to_thread.run_sync(scenario)
    assert [job.status() for job in jobs] == [JobStatus.CANCELLED, JobStatus.CANCELLED]


async def test_session_cache_is_bounded() -> None:
    from aqrt.session import SessionCache

    cache = SessionCache(max_entries=3)
    for key in range(5):
        cache[key] = key
    assert list(cache) == [2, 3, 4]
