"""The per-job shortcuts of the submission path (#14) make what the plain constructors make:
a job without a ``__dict__`` keeps every behaviour of its handle, a request made field by field
equals the dataclass's, and a session's runner applies the clocks as ``_apply_clocks`` does."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import pickle
import weakref

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import Estimator, JobStatus, Session
from aqrt.job import Job, JobId, JobRequest, new_job_id
from aqrt.options import Options
from aqrt.session._scheduler import SessionState
from aqrt.testing import FakeBackend


def _pub() -> tuple[QuantumCircuit, SparsePauliOp]:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    return circuit, SparsePauliOp("Z")


def test_a_request_made_field_by_field_is_the_dataclass_s() -> None:
    options = Options(seed=3).snapshot()
    fields = (new_job_id(), "estimator", (_pub(),), options, "session-1")
    direct, made = JobRequest._new(*fields), JobRequest(*fields)
    assert type(direct) is JobRequest
    assert direct == made and repr(direct) == repr(made)
    assert list(vars(direct).items()) == list(vars(made).items())
    assert dataclasses.astuple(direct) == dataclasses.astuple(made)
    assert pickle.loads(pickle.dumps(direct)) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        direct.program = "sampler"  # type: ignore[misc]


def test_a_request_subclass_gets_its_own_constructor() -> None:
    @dataclasses.dataclass(frozen=True)
    class Tagged(JobRequest):
        tag: str = "t"

    made = Tagged._new("job-1", "estimator", (), Options(), None)
    assert type(made) is Tagged and made.tag == "t"


@pytest.mark.asyncio
async def test_a_job_has_no_dict_but_is_weakly_referenced_and_keeps_one_id() -> None:
    request = JobRequest._new(new_job_id(), "estimator", (), Options(), None)
    job = Job(request, backend_name="half")
    assert not hasattr(job, "__dict__")
    reference = weakref.ref(job)
    assert reference() is job
    first = job.job_id
    assert type(first) is JobId and first == request.job_id and first() == request.job_id
    assert job.job_id is first  # made once, on the first read
    assert job.status() is JobStatus.QUEUED and not job.done() and job.exception() is None
    assert repr(job) == f"<Job {request.job_id} estimator on half: QUEUED>"
    del job
    gc.collect()
    assert reference() is None


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_session_s_jobs_share_its_clock_and_time_their_life_on_it(looptime) -> None:
    async with Session(backend=FakeBackend(duration=10)):
        first, second = Estimator().run([_pub()]), Estimator().run([_pub()])
        await asyncio.gather(first, second)
    assert first._clock is second._clock or first._clock == second._clock
    one, two = first.metrics(), second.metrics()
    assert (one.created_loop_time, one.running_loop_time, one.finished_loop_time) == (0, 0, 10)
    assert (two.created_loop_time, two.running_loop_time, two.finished_loop_time) == (0, 10, 20)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_runner_expires_the_session_before_it_starts_a_queued_job(looptime) -> None:
    # The runner's own clock check (not _apply_clocks) must stop a queued job at max_time: the
    # second job is taken when the first ends at t=60, the session's max_time.
    async with Session(backend=FakeBackend(duration=60), max_time=60) as session:
        first, second = Estimator().run([_pub()]), Estimator().run([_pub()])
        await asyncio.wait([first, second])
        assert first.status() is JobStatus.DONE
        assert second.status() is JobStatus.ERROR
        assert session._scheduler.state is SessionState.EXPIRED
        assert looptime == 60


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_runner_that_finds_only_cancelled_jobs_leaves_the_idle_clock_as_apply_clocks_does(looptime) -> None:
    async with Session(backend=FakeBackend(duration=1), interactive_timeout=100) as session:
        await Estimator().run([_pub()])
        scheduler = session._scheduler
        await asyncio.sleep(50)  # idle since t=1
        job = Estimator().run([_pub()])
        job.cancel()
        scheduler.queue.append(job)  # what a runner may find: a job cancelled while queued
        assert scheduler._take_next() is None
        assert scheduler.idle_since is None  # jobs were queued: not idle (as _apply_clocks says)
        scheduler._apply_clocks()  # nothing queued or running now: idle from this instant
        assert scheduler.idle_since == 51
        assert scheduler.state is SessionState.ACTIVE
