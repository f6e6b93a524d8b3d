"""aqrt Session / Batch on a RuntimeService: the requests sent, and the session rules end to end."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp

from aqrt import (
    BackendMismatchError,
    Batch,
    Estimator,
    InvalidInputError,
    InvalidTimeSpecError,
    JobStatus,
    Sampler,
    Session,
    SessionCacheError,
    SessionStateError,
)
from aqrt.backends.ibm import RuntimeService

from .ibm_fault_server import API_KEY, CRN, FaultServer
from .test_ibm_client import EXACT, JOB, JOBS, bell, first_poll_after, local_evs, measured, service_for

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]


async def test_session_is_created_on_enter_jobs_carry_it_and_exit_closes_it(looptime) -> None:
    pubs = [(bell(), SparsePauliOp(["ZZ", "XI"]))]
    expected = await local_evs(pubs)
    async with FaultServer() as server, service_for(server) as service:
        session = Session(service=service, backend="fake_alpha", max_time="10m")
        assert server.requests == []  # nothing sent by the constructor
        async with session:
            (create,) = server.calls("POST", r"/api/v1/sessions")
            assert create.body == {"mode": "dedicated", "backend": "fake_alpha", "instance": CRN, "max_ttl": 600}
            remote = (await session.details())["remote_id"]
            assert remote in server.sessions
            server_view = await session.backend.session_details(session.session_id)
            assert server_view["id"] == remote and server_view["accepting_jobs"] is True
            result = await Estimator().run(pubs)
            np.testing.assert_allclose(result[0].data.evs, expected, atol=1e-12)
            assert server.calls("PATCH", r"/api/v1/sessions/.*") == []
        (post,) = server.calls("POST", JOBS)
        assert post.body["session_id"] == remote
        (patch,) = server.calls("PATCH", r"/api/v1/sessions/.*")
        assert patch.path == f"/api/v1/sessions/{remote}" and patch.body == {"accepting_jobs": False}
        assert server.sessions[remote].accepting_jobs is False
        assert server.calls("DELETE", r"/api/v1/sessions/.*") == []


async def test_batch_uses_batch_mode(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        async with Batch(service=service, backend="fake_beta", max_time=120) as batch:
            results = await asyncio.gather(*(Sampler().run([measured()]) for _ in range(3)))
            assert all(sum(r[0].data.meas.get_counts().values()) == 1024 for r in results)
        (create,) = server.calls("POST", r"/api/v1/sessions")
        assert create.body["mode"] == "batch" and create.body["max_ttl"] == 120
        remote = (await batch.details())["remote_id"]
        assert {p.body["session_id"] for p in server.calls("POST", JOBS)} == {remote}


async def test_session_submission_does_not_wait_for_the_previous_job(looptime) -> None:
    async with FaultServer(run_time=10) as server, service_for(server) as service:
        async with Session(service=service, backend="fake_alpha") as session:
            estimator = Estimator(mode=session)
            jobs = [estimator.run([(bell(), "ZZ")]) for _ in range(4)]
            await asyncio.sleep(1)
            assert len(server.calls("POST", JOBS)) == 4  # all on the server queue at once
            await asyncio.gather(*jobs)
        # in a session jobs are polled every 0.1 s
        (first, *_) = server.jobs.values()
        polls = [r.time for r in server.calls("GET", JOB) if r.path.endswith(first.id)]
        assert np.diff(polls) == pytest.approx(0.1)


async def test_session_cancel_sends_delete_and_cancels_the_jobs(looptime) -> None:
    async with FaultServer(run_time=100) as server, service_for(server) as service:
        session = Session(service=service, backend="fake_alpha")
        async with session:
            jobs = [Estimator().run([(bell(), "ZZ")]) for _ in range(3)]
            await asyncio.sleep(2)
            await session.cancel()
        assert all(job.status() is JobStatus.CANCELLED for job in jobs), [(j.status(), j._error) for j in jobs]
        remote = (await session.details())["remote_id"]
        (delete,) = server.calls("DELETE", r"/api/v1/sessions/.*")
        assert delete.path == f"/api/v1/sessions/{remote}/close"
        assert all(job.status == "Cancelled" for job in server.jobs.values())
        assert server.calls("PATCH", r"/api/v1/sessions/.*") == []  # cancelled, not closed twice


async def test_leaving_the_block_by_an_error_cancels_remotely(looptime) -> None:
    async with FaultServer(run_time=100) as server, service_for(server) as service:
        with pytest.raises(RuntimeError, match="boom"):
            async with Session(service=service, backend="fake_alpha"):
                job = Estimator().run([(bell(), "ZZ")])
                await asyncio.sleep(1)
                raise RuntimeError("boom")
        assert job.status() is JobStatus.CANCELLED
        assert len(server.calls("DELETE", r"/api/v1/sessions/.*")) == 1
        assert len(server.calls("POST", r"/api/v1/jobs/[^/]+/cancel")) == 1


async def test_first_job_cancelled_fails_later_jobs_fast(looptime) -> None:
    async with FaultServer(run_time=50) as server, service_for(server) as service:
        async with Session(service=service, backend="fake_alpha") as session:
            estimator = Estimator()
            first = estimator.run([(bell(), "ZZ")])
            await asyncio.sleep(1)
            first.cancel()
            await first.wait()
            assert first.status() is JobStatus.CANCELLED
            with pytest.raises(SessionCacheError, match="first job"):
                estimator.run([(bell(), "ZZ")])
            assert session.statistics()["cancelled"] == 1
        assert len(server.calls("POST", JOBS)) == 1  # the refused job never reached the server


async def test_jobs_already_on_the_server_fail_when_the_first_is_cancelled(looptime) -> None:
    async with FaultServer(queue_time=5, run_time=50) as server, service_for(server) as service:
        async with Session(service=service, backend="fake_alpha"):
            estimator = Estimator()
            first = estimator.run([(bell(), "ZZ")])
            second = estimator.run([(bell(), "ZZ")])
            await asyncio.sleep(1)
            first.cancel()
            with pytest.raises(Exception, match="first job of the session was cancelled"):
                await second
        assert first.status() is JobStatus.CANCELLED and second.status() is JobStatus.ERROR


async def test_session_statistics_count_server_queued_jobs_as_queued(looptime) -> None:
    async with FaultServer(queue_time=2.25, run_time=3) as server, service_for(server) as service:
        async with Session(service=service, backend="fake_alpha") as session:
            jobs = [Estimator().run([(bell(), "ZZ")]) for _ in range(3)]
            await asyncio.sleep(1)
            assert len(server.jobs) == 3  # all on the server, all Queued there
            stats = session.statistics()
            assert (stats["queued"], stats["running"], stats["usage_seconds"]) == (3, 0, 0.0)
            await asyncio.sleep(2)  # 3 s: Running on the server since 2.25 s
            stats = session.statistics()
            assert (stats["queued"], stats["running"], stats["finished"]) == (0, 3, 0)
            await asyncio.gather(*jobs)
            stats = session.statistics()
        assert (stats["done"], stats["queued"], stats["running"]) == (3, 0, 0)
        for job, server_job in zip(jobs, server.jobs.values(), strict=True):
            started = server_job.created + server.queue_time
            assert job.metrics().running_loop_time == first_poll_after(server, server_job.id, started)
            assert job.metrics().running_loop_time - server_job.created == pytest.approx(2.3)  # 0.1 s polls
        usage = sum(job.metrics().usage_seconds or 0.0 for job in jobs)
        assert stats["usage_seconds"] == pytest.approx(usage) and usage >= 3 * server.run_time


async def test_first_job_cancelled_while_queued_on_the_server_fails_later_jobs(looptime) -> None:
    async with (
        FaultServer(queue_time=100) as server,
        service_for(server) as service,
        Session(service=service, backend="fake_alpha") as session,
    ):
        estimator = Estimator()
        first = estimator.run([(bell(), "ZZ")])
        await asyncio.sleep(1)
        assert first.status() is JobStatus.QUEUED
        first.cancel()
        await first.wait()
        assert first.status() is JobStatus.CANCELLED
        (server_job,) = server.jobs.values()
        assert server_job.status == "Cancelled"
        assert len(server.calls("POST", r"/api/v1/jobs/[^/]+/cancel")) == 1
        with pytest.raises(SessionCacheError, match="first job"):
            estimator.run([(bell(), "ZZ")])
        assert session.statistics()["cancelled"] == 1


async def test_session_cancel_cancels_jobs_queued_on_the_server(looptime) -> None:
    async with FaultServer(queue_time=100) as server, service_for(server) as service:
        async with Session(service=service, backend="fake_alpha") as session:
            jobs = [Estimator().run([(bell(), "ZZ")]) for _ in range(3)]
            await asyncio.sleep(2)
            assert session.statistics()["queued"] == 3
            await session.cancel()
        assert all(job.status() is JobStatus.CANCELLED for job in jobs)
        assert all(job.metrics().running is None for job in jobs)
        assert [job.status for job in server.jobs.values()] == ["Cancelled"] * 3
        assert len(server.calls("POST", r"/api/v1/jobs/[^/]+/cancel")) == 3


async def test_backend_is_required_on_ibm_quantum_platform(looptime) -> None:
    async with FaultServer() as server:
        service = RuntimeService(
            channel="ibm_quantum_platform", token=API_KEY, instance=CRN, url=server.api_url, iam_url=server.base
        )
        async with service:
            with pytest.raises(InvalidInputError, match="backend is required on the ibm_quantum_platform"):
                async with Session(service=service):
                    pass
            assert server.calls("POST", r"/api/v1/sessions") == []


async def test_ibm_cloud_session_without_backend_takes_the_least_busy(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        async with Session(service=service) as session:
            assert session.backend.name == "fake_beta"
        (create,) = server.calls("POST", r"/api/v1/sessions")
        assert create.body["backend"] == "fake_beta"


async def test_session_backend_is_resolved_on_enter_not_in_the_constructor(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        session = Session(service=service, backend="fake_alpha")
        with pytest.raises(SessionStateError, match="looked up when the session is entered"):
            Estimator(mode=session)
        assert server.requests == []
        async with session:
            assert session.backend.name == "fake_alpha"
            assert Estimator("fake_alpha").session is session  # a name inside the block
            with pytest.raises(BackendMismatchError):
                Estimator("fake_beta")


async def test_max_time_and_interactive_timeout_rules_hold_for_ibm(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        with pytest.raises(InvalidTimeSpecError, match="fixed interactive timeout"):
            async with Session(service=service, backend="fake_alpha", interactive_timeout=60):
                pass
        with pytest.raises(InvalidTimeSpecError, match="system maximum"):
            async with Session(service=service, backend="fake_alpha", max_time="9h"):
                pass
        assert server.calls("POST", r"/api/v1/sessions") == []


async def test_session_used_without_async_with_opens_on_first_job(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        session = Session(service=service, backend=backend)
        job = Estimator(mode=session).run([(bell(), "ZZ")])
        await job
        (create,) = server.calls("POST", r"/api/v1/sessions")
        (post,) = server.calls("POST", JOBS)
        assert create.time <= post.time and post.body["session_id"] in server.sessions
        await session.close()
        assert len(server.calls("PATCH", r"/api/v1/sessions/.*")) == 1


async def test_retries_inside_a_session_keep_one_job_each(looptime) -> None:
    from .ibm_fault_server import Fault

    async with FaultServer() as server, service_for(server, retry=EXACT) as service:
        server.inject("POST", JOBS, Fault.reset_after(), times=2)
        server.inject("POST", r"/api/v1/sessions", Fault.http(503), times=2)
        async with Session(service=service, backend="fake_alpha"):
            jobs = [Estimator().run([(bell(), "ZZ")]) for _ in range(3)]
            await asyncio.gather(*jobs)
        assert len(server.sessions) == 1
        assert len(server.jobs) == 3


async def test_session_max_time_is_the_servers_clock_not_a_local_one(looptime) -> None:
    # IBM starts max_time when the first job starts running; a job queued on the server for longer
    # than max_time must not expire the session here.
    async with FaultServer(queue_time=8, run_time=1) as server, service_for(server) as service:
        async with Session(service=service, backend="fake_alpha", max_time=5) as session:
            await Estimator().run([(bell(), "ZZ")])
            assert asyncio.get_running_loop().time() >= 9
            second = Estimator().run([(bell(), "ZZ")])  # not SessionExpiredError
            await second
            assert session.accepting_jobs
        assert server.calls("POST", r"/api/v1/sessions")[0].body["max_ttl"] == 5
        assert len(server.jobs) == 2
