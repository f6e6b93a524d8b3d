"""Session clocks in virtual time (looptime): max_time, interactive timeout, max_execution_time.

Every instant asserted here is exact: jobs run on a FakeBackend that sleeps loop time, and the
session reads only the loop clock.
"""

from __future__ import annotations

import anyio
import pytest

from aqrt import (
    Batch,
    Estimator,
    InvalidOptionsError,
    JobStatus,
    JobTimeoutError,
    Options,
    ResultTimeoutError,
    Session,
    SessionExpiredError,
    SessionState,
)
from aqrt.testing import FakeBackend

from .support import h_pub

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]


async def test_max_time_counts_from_first_job_start_not_from_queueing(looptime) -> None:
    backend = FakeBackend(duration=10)
    async with Session(backend=backend, max_time=100) as session:
        await anyio.sleep(50)  # open but idle: the clock has not started
        assert session.status() is SessionState.PENDING
        assert (await session.details())["remaining_time"] == 100
        job = Estimator().run([h_pub()])
        await job
        assert backend.starts() == [50]
        details = await session.details()
        assert details["started_at"] == 50
        assert details["remaining_time"] == 100 - 10
        assert session.status() is SessionState.ACTIVE


async def test_expiry_lets_running_job_finish_fails_queued_and_refuses_new(looptime) -> None:
    backend = FakeBackend(duration=30)
    async with Session(backend=backend, max_time="1m") as session:
        estimator = Estimator()
        jobs = [estimator.run([h_pub()]) for _ in range(3)]
        # job 0: 0-30, job 1: 30-60 (still running at the expiry instant, finishes), job 2 queued
        await jobs[0]
        await jobs[1]
        assert looptime == 60
        with pytest.raises(SessionExpiredError, match="still queued"):
            await jobs[2]
        assert jobs[2].status() is JobStatus.ERROR
        assert session.status() is SessionState.EXPIRED
        with pytest.raises(SessionExpiredError, match="expired"):
            estimator.run([h_pub()])
        assert not session.accepting_jobs
    assert session.status() is SessionState.EXPIRED


async def test_expiry_while_a_long_job_runs_lets_it_finish(looptime) -> None:
    backend = FakeBackend(duration=500)
    async with Session(backend=backend, max_time=100) as session:
        running = Estimator().run([h_pub()])
        queued = Estimator().run([h_pub()])
        await anyio.sleep(100)
        assert session.status() is SessionState.EXPIRED
        assert running.status() is JobStatus.RUNNING
        assert queued.status() is JobStatus.ERROR
        result = await running
        assert looptime == 500
        assert result[0].data.evs == 0


async def test_interactive_timeout_deactivates_and_next_job_reactivates(looptime) -> None:
    backend = FakeBackend(duration=1)
    async with Session(backend=backend, interactive_timeout=60) as session:
        await Estimator().run([h_pub()])  # 0-1
        await anyio.sleep(59)
        assert session.status() is SessionState.ACTIVE
        await anyio.sleep(1)
        assert looptime == 61
        assert session.status() is SessionState.INACTIVE
        await Estimator().run([h_pub()])
        assert session.status() is SessionState.ACTIVE
        assert backend.starts() == [0, 61]


async def test_default_interactive_timeout_is_five_minutes(looptime) -> None:
    async with Session(backend=FakeBackend(duration=0)) as session:
        assert session.interactive_timeout == 300
        await Estimator().run([h_pub()])
        await anyio.sleep(299)
        assert session.status() is SessionState.ACTIVE
        await anyio.sleep(1)
        assert session.status() is SessionState.INACTIVE


async def test_queued_jobs_keep_session_active(looptime) -> None:
    backend = FakeBackend(duration=100)
    async with Session(backend=backend, interactive_timeout=10) as session:
        jobs = [Estimator().run([h_pub()]) for _ in range(3)]
        await anyio.sleep(250)
        assert session.status() is SessionState.ACTIVE
        await jobs[-1]
        assert looptime == 300


async def test_batch_has_no_interactive_timeout(looptime) -> None:
    async with Batch(backend=FakeBackend(duration=1)) as batch:
        assert batch.interactive_timeout is None
        await Estimator().run([h_pub()])
        await anyio.sleep(3600)
        assert batch.status() is SessionState.ACTIVE


async def test_max_execution_time_stops_the_job_with_job_timeout_error(looptime) -> None:
    backend = FakeBackend(durations={0: 1000, 1: 5})
    async with Session(backend=backend, max_time=2000) as session:
        estimator = Estimator(options=Options(max_execution_time=100))
        slow = estimator.run([h_pub()])
        fast = estimator.run([h_pub()])
        with pytest.raises(JobTimeoutError, match="max_execution_time of 100 s") as info:
            await slow
        assert isinstance(info.value, TimeoutError)
        assert looptime == 100
        assert slow.status() is JobStatus.ERROR
        assert (await fast)[0].data.evs == 0  # the session goes on
        assert looptime == 105
        assert session.statistics()["error"] == 1


async def test_max_execution_time_must_be_below_max_time() -> None:
    async with Session(backend=FakeBackend(), max_time=60):
        estimator = Estimator(options={"max_execution_time": 60})
        with pytest.raises(InvalidOptionsError, match="less than the session's max_time"):
            estimator.run([h_pub()])


async def test_result_timeout_leaves_job_running(looptime) -> None:
    async with Session(backend=FakeBackend(duration=50)):
        job = Estimator().run([h_pub()])
        with pytest.raises(ResultTimeoutError) as info:
            await job.result(timeout=10)
        assert isinstance(info.value, TimeoutError)
        assert job.status() is JobStatus.RUNNING
        await job
        assert looptime == 50


async def test_metrics_use_loop_clock(looptime) -> None:
    async with Session(backend=FakeBackend(duration=7)):
        await anyio.sleep(3)
        first = Estimator().run([h_pub()])
        second = Estimator().run([h_pub()])
        await second
    m1, m2 = first.metrics(), second.metrics()
    assert (m1.created_loop_time, m1.running_loop_time, m1.finished_loop_time) == (3, 3, 10)
    assert (m2.created_loop_time, m2.running_loop_time, m2.finished_loop_time) == (3, 10, 17)
    assert m2.usage_seconds == 7 and m2.queued_seconds == 7
    assert m1.created is not None and m1.finished >= m1.created


class _QueuedFirstBackend(FakeBackend):
    """Reports each job's start itself (``reports_job_start``), after the job waited ``queued``
    seconds for an engine: a job handed to it is not running yet (as in ``aqrt serve``)."""

    def __init__(self, queued: float) -> None:
        from aqrt import BackendCapabilities

        super().__init__(duration=1, capabilities=BackendCapabilities(max_session_time=3600, reports_job_start=True))
        self.queued = queued

    async def execute(self, request, context):  # type: ignore[no-untyped-def]
        await anyio.sleep(self.queued)
        assert context.mark_running is not None
        context.mark_running()
        return await super().execute(request, context)


async def test_max_time_waits_for_a_backend_that_reports_the_first_job_s_real_start(looptime) -> None:
    backend = _QueuedFirstBackend(queued=30)
    async with Session(backend=backend, max_time=20) as session:
        first = Estimator().run([h_pub()])
        await anyio.sleep(25)  # handed to the backend at 0, still queued: the clock has not started
        assert first.status() is JobStatus.QUEUED and session.status() is not SessionState.EXPIRED
        await first  # started at 30, done at 31
        second = Estimator().run([h_pub()])  # at 31: within max_time (20 s from 30)
        await second
        # the second waited for the engine until 61; the session's 20 s from 30 ran out at 50
        assert backend.starts() == [30, 61] and looptime == 62
        with pytest.raises(SessionExpiredError):
            Estimator().run([h_pub()])
