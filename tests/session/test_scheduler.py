"""The scheduler under both policies: a Batch uses a free concurrency slot at once, a runner
never starves the loop, and job mode (no session) runs on the same machinery with its own
rules: every job at once, a fresh cache each, no first-job rule, nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult

from aqrt import Batch, Estimator, JobStatus, JobTimeoutError, Options, Session, SessionState
from aqrt.backends.base import NOT_INLINE, BackendCapabilities, ExecutionContext
from aqrt.job import JobRequest
from aqrt.session._policy import JOB_MODE
from aqrt.testing import FakeBackend

from .support import aqrt_tasks, h_pub

pytestmark = [pytest.mark.asyncio]


class _InlineBackend(FakeBackend):
    """Runs a job inline (synchronously, as the local backend runs a tiny job) unless its first
    circuit is named "slow": that one goes through ``execute`` and takes ``duration``."""

    def __init__(self, duration: float = 1.0) -> None:
        super().__init__(duration=duration, capabilities=BackendCapabilities(max_session_time=3600, runs_inline=True))
        self.inline: list[str] = []

    def run_inline(self, request: JobRequest, context: ExecutionContext) -> Any:
        if request.pubs[0].circuit.name == "slow":
            return NOT_INLINE
        self.inline.append(request.job_id)
        results = [PubResult(DataBin(evs=0.0, shape=())) for _ in request.pubs]
        return PrimitiveResult(results, metadata={"version": 2})


def _slow_pub() -> Any:
    """A PUB that :class:`_InlineBackend` runs through ``execute`` (its circuit is named "slow")."""
    pub = h_pub()
    pub[0].name = "slow"
    return pub


def _runners() -> list[asyncio.Task[object]]:
    return [task for task in aqrt_tasks() if task.get_name().startswith("aqrt runner")]


@contextlib.contextmanager
def _tasks_started() -> Iterator[list[str]]:
    """The names of the tasks started on the running loop meanwhile."""
    loop = asyncio.get_running_loop()
    names: list[str] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
        names.append(task.get_name())
        return task

    loop.set_task_factory(factory)
    try:
        yield names
    finally:
        loop.set_task_factory(previous)


class _NonSuspendingBackend(FakeBackend):
    """A backend whose execute returns without ever suspending (a cache hit, say)."""

    async def execute(self, request: JobRequest, context: ExecutionContext) -> PrimitiveResult:
        results = [PubResult(DataBin(evs=0.0, shape=())) for _ in request.pubs]
        return PrimitiveResult(results, metadata={"version": 2})


@pytest.mark.looptime
async def test_a_batch_starts_a_later_job_at_once_when_a_slot_is_free(looptime) -> None:
    backend = FakeBackend(duration=10)
    async with Batch(backend=backend, max_concurrency=3):
        Estimator().run([h_pub()])
        await anyio.sleep(1)
        Estimator().run([h_pub()])  # one job running, two slots free: this one starts now
        await anyio.sleep(1)
        Estimator().run([h_pub()])
    assert backend.starts() == [0, 1, 2]
    assert backend.max_running == 3 and looptime == 12


@pytest.mark.looptime
async def test_a_session_still_runs_one_job_at_a_time_when_jobs_arrive_spaced(looptime) -> None:
    backend = FakeBackend(duration=10)
    async with Session(backend=backend):
        Estimator().run([h_pub()])
        await anyio.sleep(1)
        Estimator().run([h_pub()])
    assert backend.starts() == [0, 10] and backend.max_running == 1


async def test_a_batch_honours_a_backend_declared_concurrency_of_one() -> None:
    backend = FakeBackend(capabilities=BackendCapabilities(max_session_time=3600, job_concurrency=1))
    batch = Batch(backend=backend)
    assert batch._scheduler.policy is not None and batch._scheduler.policy.concurrency == 1
    await batch.close()


@pytest.mark.looptime
async def test_job_mode_runs_every_job_at_once_each_with_a_fresh_cache(looptime) -> None:
    backend = FakeBackend(durations={0: 30, 1: 10, 2: 20})
    estimator = Estimator(mode=backend)
    jobs = [estimator.run([h_pub()]) for _ in range(3)]
    assert [job.status() for job in jobs] == [JobStatus.QUEUED] * 3
    await asyncio.gather(*jobs)
    assert backend.starts() == [0, 0, 0] and backend.max_running == 3
    assert looptime == 30
    assert len({id(cache) for cache in backend.caches}) == 3  # no session: nothing shared
    assert all(job.session_id is None for job in jobs)
    assert not aqrt_tasks()


@pytest.mark.looptime
async def test_job_mode_has_no_first_job_rule_and_keeps_job_deadlines(looptime) -> None:
    backend = FakeBackend(durations={0: 50, 1: 5, 2: 500})
    estimator = Estimator(mode=backend)
    first, second = estimator.run([h_pub()]), estimator.run([h_pub()])
    await anyio.sleep(1)
    first.cancel()
    assert (await second)[0].data.evs == 0  # a cancelled first job poisons nothing
    assert first.status() is JobStatus.CANCELLED
    slow = Estimator(mode=backend, options=Options(max_execution_time=100)).run([h_pub()])
    with pytest.raises(JobTimeoutError, match="max_execution_time of 100 s"):
        await slow
    assert looptime == 105
    assert not aqrt_tasks()


@pytest.mark.looptime
async def test_a_job_mode_job_cancelled_before_it_starts_never_reaches_the_backend() -> None:
    backend = FakeBackend(duration=10)
    job = Estimator(mode=backend).run([h_pub()])
    assert job.cancel() and job.status() is JobStatus.CANCELLED
    await anyio.sleep(1)
    assert backend.log == []
    assert not aqrt_tasks()


@pytest.mark.parametrize(
    ("backend_type", "one_by_one"),
    [(_NonSuspendingBackend, False), (_InlineBackend, False), (_InlineBackend, True)],
    ids=["execute-never-suspends", "inline-settled-by-the-supervisor", "inline-settled-by-each-awaiting-task"],
)
async def test_a_stream_of_jobs_that_never_suspend_yields_to_the_loop(
    backend_type: type[FakeBackend], one_by_one: bool
) -> None:
    loop = asyncio.get_running_loop()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    async with Session(backend=backend_type()):
        estimator = Estimator()
        ticks = 0
        started = loop.time()
        if one_by_one:
            jobs = []
            for _ in range(3000):
                jobs.append(estimator.run([h_pub()]))
                await jobs[-1]
        else:
            jobs = [estimator.run([h_pub()]) for _ in range(3000)]
            await asyncio.wait(jobs)
        elapsed = loop.time() - started
    ticking.cancel()
    assert all(job.status() is JobStatus.DONE for job in jobs)
    # The runner, the supervisor or the awaiting task (settling inline jobs) yields after each
    # millisecond of work, so the ticker ran all along (without that, all 3000 jobs settle in one
    # go: a tick or two; awaited one by one, none at all).
    assert ticks > 10, f"the loop ticked {ticks} times in {elapsed:.3f} s"


async def test_jobs_awaited_one_by_one_are_settled_inline_without_a_runner_task() -> None:
    backend = _InlineBackend()
    async with Session(backend=backend) as session:
        estimator = Estimator()
        await estimator.run([h_pub()])  # the supervisor starts
        with _tasks_started() as started:
            for _ in range(5):
                job = estimator.run([h_pub()])
                assert job.status() is JobStatus.QUEUED  # run() never settles a job itself
                await job
                assert job.status() is JobStatus.DONE
        assert session.status() is SessionState.ACTIVE
    assert started == []  # settled by the awaiting task: no runner, no task of any kind
    assert len(backend.inline) == 6 and backend.log == []  # none went through execute


async def _outcome(job: Any) -> Any:
    return await job


async def test_a_job_awaited_right_after_run_is_settled_without_suspending() -> None:
    backend = _InlineBackend()
    async with Session(backend=backend):
        estimator = Estimator()
        await estimator.run([h_pub()])  # the supervisor starts
        await asyncio.sleep(0)  # a turn of the loop: a fresh slice for the awaiting task
        job = estimator.run([h_pub()])
        waiting = _outcome(job)
        with pytest.raises(StopIteration) as stopped:  # finished on its first step: no trip through the loop
            waiting.send(None)
        assert stopped.value.value is job._result and job.status() is JobStatus.DONE
    assert len(backend.inline) == 2


@pytest.mark.looptime
async def test_an_awaited_job_settles_the_jobs_before_it_and_hands_one_not_run_inline_to_a_runner(looptime) -> None:
    backend = _InlineBackend(duration=10)
    slow = _slow_pub()
    settled_on: dict[str, str] = {}
    finished: list[object] = []

    def note(job: Any) -> None:
        finished.append(job)
        settled_on[job.job_id] = asyncio.current_task().get_name()  # type: ignore[union-attr]

    async with Session(backend=backend):
        estimator = Estimator()
        await estimator.run([h_pub()])  # the supervisor starts
        await asyncio.sleep(0)
        jobs = [estimator.run([pub]) for pub in (h_pub(), slow, h_pub())]
        for job in jobs:
            job.add_done_callback(note)
        await jobs[2]
        assert looptime == 10 and not _runners()
    here = asyncio.current_task().get_name()  # type: ignore[union-attr]
    assert finished == jobs  # in submission order, one at a time
    # The awaiting task settled the first and handed the slow one over; its runner went on with the last.
    assert settled_on[jobs[0].job_id] == here
    assert [settled_on[job.job_id].startswith("aqrt runner") for job in jobs[1:]] == [True, True]
    assert [event for event, _, _ in backend.log] == ["start", "end"]
    assert len(backend.inline) == 3


async def test_a_job_mode_job_awaited_right_after_run_is_settled_without_suspending() -> None:
    backend = _InlineBackend()
    estimator = Estimator(mode=backend)
    job = estimator.run([h_pub()])
    waiting = _outcome(job)
    with pytest.raises(StopIteration) as stopped:  # settled by the awaiting task, not by the job's own
        waiting.send(None)
    assert stopped.value.value is job._result and job.status() is JobStatus.DONE
    await asyncio.sleep(0)  # the job's own task runs, finds it settled and leaves
    assert not aqrt_tasks()
    assert len(backend.inline) == 1


@pytest.mark.looptime
async def test_a_job_mode_job_not_run_inline_is_run_by_its_own_task_after_its_awaiter_offered_it(looptime) -> None:
    backend = _InlineBackend(duration=10)
    job = Estimator(mode=backend).run([_slow_pub()])
    assert (await job)[0].data.evs == 0
    assert looptime == 10 and job.status() is JobStatus.DONE
    assert backend.inline == [] and [event for event, _, _ in backend.log] == ["start", "end"]
    assert not aqrt_tasks()


async def test_a_job_mode_job_never_awaited_is_cancelled_when_its_event_loop_ends() -> None:
    jobs = []

    async def submit_and_return() -> None:
        jobs.append(Estimator(mode=_InlineBackend(duration=10)).run([_slow_pub()]))

    await asyncio.to_thread(asyncio.run, submit_and_return())  # a loop of its own, ended at once
    assert jobs[0].status() is JobStatus.CANCELLED  # not left RUNNING, nor QUEUED


@pytest.mark.looptime
async def test_a_job_not_run_inline_gets_a_runner_and_the_queue_keeps_its_order(looptime) -> None:
    backend = _InlineBackend(duration=10)
    slow = _slow_pub()
    finished: list[object] = []
    async with Session(backend=backend):
        estimator = Estimator()
        jobs = [estimator.run([pub]) for pub in (h_pub(), slow, h_pub(), h_pub())]
        for job in jobs:
            job.add_done_callback(finished.append)
        await asyncio.gather(*jobs)
        assert looptime == 10
        assert not _runners()  # the runner left with the queue empty
        await estimator.run([h_pub()])  # and the next inline job needs none
    assert finished == jobs  # one job at a time, in submission order: the last two waited
    assert [event for event, _, _ in backend.log] == ["start", "end"]
    assert len(backend.inline) == 4


async def test_a_job_mode_primitive_made_once_serves_event_loops_in_several_threads() -> None:
    backend = FakeBackend(duration=0.02)
    estimator = Estimator(mode=backend)

    def in_a_loop_of_its_own() -> list[float]:
        async def main() -> list[float]:
            jobs = [estimator.run([h_pub(), h_pub()]) for _ in range(5)]
            return [float(result[1].data.evs) for result in await asyncio.gather(*jobs)]

        return asyncio.run(main())

    outcomes = await asyncio.gather(*(anyio.to_thread.run_sync(in_a_loop_of_its_own) for _ in range(3)))
    assert outcomes == [[1.0] * 5] * 3


async def test_the_job_mode_policy_has_no_session_rules() -> None:
    assert JOB_MODE.max_time is None and not JOB_MODE.expires_locally
    assert JOB_MODE.interactive_timeout is None and JOB_MODE.concurrency is None
    assert not (JOB_MODE.first_job_rule or JOB_MODE.shared_cache or JOB_MODE.supervised)
