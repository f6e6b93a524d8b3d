"""aqrt's RuntimeService against the fault server on 127.0.0.1: jobs, results, headers, faults.

Every time asserted is loop time (looptime), so backoff, Retry-After and timeouts are exact.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import (
    AuthenticationError,
    BackendNotFoundError,
    CircuitTooLargeError,
    Estimator,
    JobStatus,
    JobTimeoutError,
    LocalService,
    NotFoundError,
    Options,
    RateLimitedError,
    RuntimeConnectionError,
    Sampler,
    ServerError,
)
from aqrt.backends.ibm import API_VERSION, RetryPolicy, RuntimeService
from aqrt.backends.ibm.rest import IDEMPOTENCY_TAG_PREFIX

from .ibm_fault_server import API_KEY, CRN, Fault, FaultServer

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]

JOBS = r"/api/v1/jobs"
JOB = r"/api/v1/jobs/[^/]+"
EXACT = RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=8.0, jitter=0.0)


def service_for(server: FaultServer, **kwargs: object) -> RuntimeService:
    kwargs.setdefault("retry", EXACT)
    return RuntimeService(
        channel="ibm_cloud", token=API_KEY, instance=CRN, url=server.api_url, iam_url=server.base, **kwargs
    )


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.ry(0.3, 0)
    return circuit


def measured() -> QuantumCircuit:
    circuit = bell()
    circuit.measure_all()
    return circuit


async def local_evs(pubs: list[object]) -> np.ndarray:
    job = Estimator(mode=LocalService(engine="reference").backend()).run(pubs)
    return (await job)[0].data.evs


async def test_estimator_job_mode_matches_local_engine_and_sends_runtime_headers(looptime) -> None:
    pubs = [(bell(), SparsePauliOp(["ZZ", "XX", "ZI"]))]
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        result = await Estimator(mode=backend, options=Options(default_precision=0.0)).run(pubs)
        np.testing.assert_allclose(result[0].data.evs, await local_evs(pubs), atol=1e-12)
        (post,) = server.calls("POST", JOBS)
        assert post.body["program_id"] == "estimator" and post.body["backend"] == "fake_alpha"
        params = post.body["params"]
        assert params["version"] == 2 and params["support_qiskit"] is True
        assert params["options"] == {"default_precision": 0.0}
        assert any(t.startswith(IDEMPOTENCY_TAG_PREFIX) for t in post.body["tags"])
        assert "session_id" not in post.body
        api_calls = [r for r in server.requests if r.path.startswith("/api/v1")]
        for call in api_calls:
            assert call.headers["Authorization"] == "Bearer jwt-1"
            assert call.headers["Service-CRN"] == CRN
            assert call.headers["IBM-API-Version"] == API_VERSION == "2026-04-15"
        (token,) = server.calls("POST", "/identity/token")
        assert token.body == {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": API_KEY}


async def test_sampler_job_mode_counts_match_local_engine_with_a_seed(looptime) -> None:
    options = Options(seed=11, default_shots=300)
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        remote = await Sampler(mode=backend, options=options).run([measured()])
        local = await Sampler(mode=LocalService(engine="reference").backend(), options=options).run([measured()])
        assert remote[0].data.meas.get_counts() == local[0].data.meas.get_counts()
        assert sum(remote[0].data.meas.get_counts().values()) == 300
        (post,) = server.calls("POST", JOBS)
        assert post.body["params"]["options"] == {"default_shots": 300, "simulator": {"seed_simulator": 11}}


async def test_5xx_burst_on_submit_is_retried_with_exact_backoff_and_one_job(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, Fault.http(503), times=3)
        start = asyncio.get_running_loop().time()
        result = await Estimator(mode=backend).run([(bell(), "ZZ")])
        assert result[0].data.evs.shape == ()
        posts = server.calls("POST", JOBS)
        assert [round(p.time - start, 9) for p in posts] == [0, 0.5, 1.5, 3.5]
        assert list(service.transport.waits) == [0.5, 1.0, 2.0]
        assert len(server.jobs) == 1


async def test_persistent_5xx_surfaces_the_real_status(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, Fault.http(502), times=100)
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        with pytest.raises(ServerError) as caught:
            await job
        assert caught.value.status == 502
        assert job.status() is JobStatus.ERROR
        assert len(server.calls("POST", JOBS)) == EXACT.max_attempts
        assert server.jobs == {}


async def test_429_honours_retry_after_exactly(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        await service.backends()
        server.inject("GET", r"/api/v1/backends", Fault.http(429, retry_after="7"), times=2)
        start = asyncio.get_running_loop().time()
        names = [b.name for b in await service.backends()]
        assert names == ["fake_alpha", "fake_beta"]
        times = [round(r.time - start, 9) for r in server.calls("GET", r"/api/v1/backends")[1:]]
        assert times == [0, 7, 14]


async def test_429_forever_raises_rate_limited_with_status(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        await service.backends()
        server.inject("GET", r"/api/v1/backends", Fault.http(429, retry_after="1"), times=100)
        with pytest.raises(RateLimitedError) as caught:
            await service.backends()
        assert caught.value.status == 429 and caught.value.retry_after == 1


@pytest.mark.parametrize(
    ("fault", "reposted"),
    [
        (Fault.reset_before(), True),  # nothing committed: the job is posted again
        (Fault.reset_after(), False),  # committed: found by its tag, not posted again
        (Fault.truncated(), False),
        (Fault.http_after(500), False),  # the app committed, then failed: found by the lookup
    ],
    ids=["reset-before-commit", "reset-after-commit", "truncated-body", "500-after-commit"],
)
async def test_ambiguous_submit_failures_never_duplicate_or_lose_a_job(looptime, fault: Fault, reposted: bool) -> None:
    pubs = [(bell(), SparsePauliOp("ZZ"))]
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, fault)
        result = await Estimator(mode=backend).run(pubs)
        np.testing.assert_allclose(result[0].data.evs, await local_evs(pubs), atol=1e-12)
        assert len(server.jobs) == 1
        lookups = server.calls("GET", JOBS)
        assert len(lookups) == 1 and lookups[0].query["tags"][0].startswith(IDEMPOTENCY_TAG_PREFIX)
        assert len(server.calls("POST", JOBS)) == (2 if reposted else 1)


async def test_5xx_without_commit_is_looked_up_then_reposted_once(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, Fault.http(500))
        await Estimator(mode=backend).run([(bell(), "ZZ")])
        assert len(server.jobs) == 1
        assert len(server.calls("GET", JOBS)) == 1  # looked up first: a 500 may have committed
        assert len(server.calls("POST", JOBS)) == 2


async def test_slow_submit_times_out_then_the_committed_job_is_found(looptime) -> None:
    async with FaultServer() as server, service_for(server, request_timeout=10) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, Fault.slow(60))
        start = asyncio.get_running_loop().time()
        await Estimator(mode=backend).run([(bell(), "ZZ")])
        (lookup,) = server.calls("GET", JOBS)
        assert lookup.time - start == pytest.approx(10)  # the request timeout, in loop time
        assert len(server.jobs) == 1 and len(server.calls("POST", JOBS)) == 1


async def test_a_slow_idempotent_call_times_out_and_is_retried(looptime) -> None:
    async with FaultServer() as server, service_for(server, request_timeout=5) as service:
        await service.backends()
        server.inject("GET", r"/api/v1/backends", Fault.slow(30))
        start = asyncio.get_running_loop().time()
        assert len(await service.backends()) == 2
        times = [r.time - start for r in server.calls("GET", r"/api/v1/backends")[1:]]
        assert times == pytest.approx([0, 5 + 0.5])  # the timeout, then the first backoff


async def test_an_overall_deadline_bounds_a_call_however_many_retries_remain(looptime) -> None:
    async with FaultServer() as server, service_for(server, request_timeout=5, deadline=12) as service:
        await service.backends()
        server.inject("GET", r"/api/v1/backends", Fault.slow(30), times=100)
        start = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError) as caught:
            await service.backends()
        assert type(caught.value).__name__ == "RequestTimeoutError"
        assert asyncio.get_running_loop().time() - start <= 12


async def test_truncated_results_are_fetched_again(looptime) -> None:
    pubs = [(bell(), SparsePauliOp("XX"))]
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("GET", r"/api/v1/jobs/[^/]+/results", Fault.truncated())
        result = await Estimator(mode=backend).run(pubs)
        np.testing.assert_allclose(result[0].data.evs, await local_evs(pubs), atol=1e-12)
        assert len(server.calls("GET", r"/api/v1/jobs/[^/]+/results")) == 2


async def test_connection_lost_on_every_attempt_raises_connection_error(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        await service.backends()
        server.inject("GET", r"/api/v1/backends", Fault.reset_before(), times=100)
        with pytest.raises(RuntimeConnectionError) as caught:
            await service.backends()
        assert caught.value.status is None
        assert isinstance(caught.value, ConnectionError)


async def test_expired_token_is_refreshed_once_and_the_call_retried(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        await service.backends()
        server.revoke_tokens()
        await service.backends()
        assert server.tokens_issued == 2
        statuses = [r.headers["Authorization"] for r in server.calls("GET", r"/api/v1/backends")]
        assert statuses == ["Bearer jwt-1", "Bearer jwt-1", "Bearer jwt-2"]


async def test_a_token_refused_twice_is_an_authentication_error(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        await service.backends()
        server.inject("GET", r"/api/v1/backends", Fault.unauthorized(), times=2)
        with pytest.raises(AuthenticationError) as caught:
            await service.backends()
        assert caught.value.status == 401
        assert server.tokens_issued == 2  # one refresh, not a loop of them


async def test_a_bad_api_key_is_an_authentication_error(looptime) -> None:
    async with FaultServer() as server:
        service = RuntimeService(
            channel="ibm_cloud", token="wrong", instance=CRN, url=server.api_url, iam_url=server.base
        )
        async with service:
            with pytest.raises(AuthenticationError) as caught:
                await service.backends()
            assert caught.value.status == 400


async def test_concurrent_calls_share_one_token_refresh(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        await asyncio.gather(*(service.backends() for _ in range(20)))
        assert server.tokens_issued == 1
        server.revoke_tokens()
        await asyncio.gather(*(service.backends() for _ in range(20)))
        assert server.tokens_issued == 2  # twenty 401s, one refresh


async def test_a_failing_token_exchange_is_shared_not_repeated_per_caller(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        server.inject("POST", "/identity/token", Fault.http(503), times=100)
        outcomes = await asyncio.gather(*(service.backends() for _ in range(10)), return_exceptions=True)
        assert all(isinstance(o, ServerError) and o.status == 503 for o in outcomes)
        assert len(server.calls("POST", "/identity/token")) == EXACT.max_attempts  # one exchange, retried
        assert server.calls("GET", r"/api/v1/backends") == []


async def test_tokens_are_refreshed_before_they_expire(looptime) -> None:
    async with FaultServer(token_ttl=10) as server, service_for(server) as service:
        for _ in range(5):
            await service.backends()
            await asyncio.sleep(4)
        refused = [
            r
            for r in server.requests
            if r.path.startswith("/api")
            and r.headers["Authorization"] not in {f"Bearer jwt-{i}" for i in range(1, server.tokens_issued + 1)}
        ]
        assert refused == []
        assert server.tokens_issued == 3  # at 0, 8 and 16 s (80% of 10 s), never a 401
        assert len(server.calls("GET", r"/api/v1/backends")) == 5


async def test_many_jobs_share_one_poller_task(looptime) -> None:
    async with FaultServer(run_time=10) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        estimator = Estimator(mode=backend)
        jobs = [estimator.run([(bell(), "ZZ")]) for _ in range(30)]
        assert service.poller is not None
        async with asyncio.timeout(5):  # all submitted and watched long before any finishes
            while service.poller.watching < 30:
                await asyncio.sleep(0.05)
        pollers = [t for t in asyncio.all_tasks() if t.get_name() == "aqrt ibm job poller"]
        assert len(pollers) == 1
        assert service.poller.watching == 30
        await asyncio.gather(*jobs)
        assert service.poller.loops_started == 1
        assert len(server.jobs) == 30


async def test_job_mode_polls_every_half_second(looptime) -> None:
    async with FaultServer(run_time=3) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        await Estimator(mode=backend).run([(bell(), "ZZ")])
        (post,) = server.calls("POST", JOBS)
        polls = [r.time for r in server.calls("GET", JOB)]
        # every 0.5 s from the submission; the poll at 3 s may still see it Running
        assert np.diff([post.time, *polls]) == pytest.approx([0.5] * len(polls))
        assert len(polls) in (6, 7)


async def test_cancelling_a_running_job_reaches_the_server(looptime) -> None:
    async with FaultServer(run_time=100) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await asyncio.sleep(2)
        assert job.status() is JobStatus.RUNNING
        assert job.cancel()
        await job.wait()
        assert job.status() is JobStatus.CANCELLED
        (cancel,) = server.calls("POST", r"/api/v1/jobs/[^/]+/cancel")
        (server_job,) = server.jobs.values()
        assert cancel.path == f"/api/v1/jobs/{server_job.id}/cancel"
        assert server_job.status == "Cancelled"


def polls_of(server: FaultServer, server_id: str) -> list[float]:
    """Loop times of the status polls (``GET /jobs/{id}``) of one server job."""
    return [r.time for r in server.calls("GET", JOB) if r.path.endswith("/" + server_id)]


def first_poll_after(server: FaultServer, server_id: str, instant: float) -> float:
    """The first poll of a server job made after ``instant`` (the one that saw the change)."""
    return next(t for t in polls_of(server, server_id) if t > instant)


async def test_a_job_is_queued_while_the_server_queues_it_then_running_then_done(looptime) -> None:
    async with FaultServer(queue_time=2.25, run_time=3) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await asyncio.sleep(1)
        (server_job,) = server.jobs.values()
        assert server_job.status == "Queued" and job.status() is JobStatus.QUEUED
        assert job.metrics().running is None and job.metrics().usage_seconds is None
        await asyncio.sleep(1)  # 2 s: the server still queues it
        assert job.status() is JobStatus.QUEUED
        await asyncio.sleep(1)  # 3 s: Running on the server since 2.25 s, seen at the 2.5 s poll
        assert server_job.status == "Running" and job.status() is JobStatus.RUNNING
        await job
        assert job.status() is JobStatus.DONE
        metrics = job.metrics()
        started = server_job.created + server.queue_time
        assert metrics.running_loop_time == first_poll_after(server, server_job.id, started)
        assert metrics.running_loop_time - server_job.created == pytest.approx(2.5)
        assert metrics.queued_seconds is not None and metrics.queued_seconds >= 2.5
        (results,) = server.calls("GET", r"/api/v1/jobs/[^/]+/results")
        assert metrics.finished_loop_time == pytest.approx(results.time)  # settled with the result
        assert metrics.usage_seconds == pytest.approx(results.time - metrics.running_loop_time)
        assert metrics.usage_seconds is not None and metrics.usage_seconds >= server.run_time


async def test_a_job_final_at_its_first_poll_runs_from_that_poll(looptime) -> None:
    async with FaultServer(run_time=0.2) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await job  # Completed at ~0.2 s, first seen at the 0.5 s poll
        (first_poll, *_) = polls_of(server, next(iter(server.jobs)))
        assert job.metrics().running_loop_time == first_poll
        assert job.metrics().finished_loop_time is not None
        assert job.metrics().finished_loop_time >= first_poll


async def test_cancelling_a_job_still_queued_on_the_server_reaches_the_server(looptime) -> None:
    async with FaultServer(queue_time=100, run_time=1) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await asyncio.sleep(2)
        (server_job,) = server.jobs.values()
        assert job.status() is JobStatus.QUEUED and server_job.status == "Queued"
        assert job.cancel()
        await job.wait()
        assert job.status() is JobStatus.CANCELLED
        (cancel,) = server.calls("POST", r"/api/v1/jobs/[^/]+/cancel")
        assert cancel.path == f"/api/v1/jobs/{server_job.id}/cancel"
        assert server_job.status == "Cancelled"
        assert job.metrics().running is None and job.metrics().finished_loop_time == pytest.approx(cancel.time)
        assert not job.cancel()  # final: nothing more to cancel
        assert len(server.calls("POST", r"/api/v1/jobs/[^/]+/cancel")) == 1


async def test_cancelling_during_submission_cancels_the_job_found_by_tag(looptime) -> None:
    async with FaultServer(run_time=100) as server, service_for(server, request_timeout=50) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, Fault.slow(30))  # committed, the reply is slow
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await asyncio.sleep(5)
        job.cancel()
        await job.wait()
        (server_job,) = server.jobs.values()
        assert server_job.status == "Cancelled"
        assert len(server.calls("GET", JOBS)) == 1  # looked up by its tag


async def test_a_job_cancelled_on_the_server_is_cancelled_here(looptime) -> None:
    async with FaultServer(run_time=100) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        await asyncio.sleep(2)
        (server_job,) = server.jobs.values()
        server._cancel(server_job)
        await job.wait()
        assert job.status() is JobStatus.CANCELLED


async def test_pubs_are_validated_at_run_against_the_backend_configuration(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        assert backend.num_qubits == 5
        wide = QuantumCircuit(6)
        wide.h(range(6))
        with pytest.raises(CircuitTooLargeError, match="PUB 0: the circuit has 6 qubits"):
            Estimator(mode=backend).run([(wide, "Z" * 6)])
        assert server.calls("POST", JOBS) == []


async def test_unknown_backend_and_unknown_job_are_lookup_errors(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        with pytest.raises(BackendNotFoundError):
            await service.backend("nope")
        with pytest.raises(NotFoundError) as caught:
            await service.job("no-such-job")
        assert caught.value.status == 404 and isinstance(caught.value, LookupError)
        with pytest.raises(NotFoundError):  # neither a server id nor an aqrt job's tag
            await service.job("job-000000000000-00000001")
    with pytest.raises(TypeError, match=r'use "async with", or aqrt\.sync\.RuntimeService'):
        with RuntimeService(channel="ibm_quantum_platform", token="t", instance="crn:x"):
            pass


async def test_least_busy_and_job_retrieval_and_listing(looptime) -> None:
    pubs = [(bell(), SparsePauliOp("ZZ"))]
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.least_busy()
        assert backend.name == "fake_beta"  # queue 1 < 3
        assert (await service.least_busy(min_num_qubits=6)).name == "fake_beta"
        job = Estimator(mode=backend).run(pubs)
        await job
        remote_id = backend.remote_job_ids[job.job_id]
        retrieved = await service.job(remote_id)
        assert await retrieved.status() is JobStatus.DONE
        np.testing.assert_allclose((await retrieved.result())[0].data.evs, await local_evs(pubs), atol=1e-12)
        listed = await service.jobs(backend="fake_beta")
        assert [j.job_id for j in listed] == [remote_id]
        assert f"aqrt-job-{job.job_id}" in listed[0].tags
        other = Estimator(mode=backend).run(pubs)  # a newer job: the look-up must not take any job
        await other
        by_own_id = await service.job(job.job_id())  # as qiskit-ibm-runtime's service.job(job.job_id())
        assert by_own_id.job_id == remote_id != backend.remote_job_ids[other.job_id]
        assert (await service.job(other.job_id)).job_id == backend.remote_job_ids[other.job_id]


@pytest.mark.parametrize(
    "fault",
    [Fault.http(503), Fault.reset_before(), Fault.reset_after(), Fault.truncated(), Fault.http(429, retry_after="2")],
    ids=["503", "reset-before", "reset-after", "truncated", "429"],
)
async def test_faults_while_polling_lose_no_result(looptime, fault: Fault) -> None:
    pubs = [(bell(), SparsePauliOp("ZI"))]
    async with FaultServer(run_time=2) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("GET", JOB, fault, times=3)
        result = await Estimator(mode=backend).run(pubs)
        np.testing.assert_allclose(result[0].data.evs, await local_evs(pubs), atol=1e-12)
        assert len(server.jobs) == 1


async def test_polls_failing_for_good_fail_the_job_with_the_real_status(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        server.inject("GET", JOB, Fault.http(500), times=1000)
        job = Estimator(mode=backend).run([(bell(), "ZZ")])
        with pytest.raises(ServerError) as caught:
            await job
        assert caught.value.status == 500 and job.status() is JobStatus.ERROR
        assert len(server.calls("GET", JOB)) == 3 * EXACT.max_attempts  # three polls, each retried


async def test_fifty_jobs_under_mixed_faults_make_fifty_server_jobs_and_right_results(looptime) -> None:
    pubs = [(bell(), SparsePauliOp(["ZZ", "XX"]))]
    expected = await local_evs(pubs)
    async with FaultServer(run_time=1) as server, service_for(server, request_timeout=20) as service:
        backend = await service.backend("fake_alpha")
        server.inject("POST", JOBS, Fault.http(503), times=8)
        server.inject("POST", JOBS, Fault.reset_after(), times=6)
        server.inject("POST", JOBS, Fault.reset_before(), times=6)
        server.inject("POST", JOBS, Fault.truncated(), times=4)
        server.inject("POST", JOBS, Fault.slow(60), times=3)
        server.inject("GET", JOB, Fault.http(502), times=10)
        estimator = Estimator(mode=backend)
        results = await asyncio.gather(*(estimator.run(pubs) for _ in range(50)))
        for result in results:
            np.testing.assert_allclose(result[0].data.evs, expected, atol=1e-12)
        assert len(server.jobs) == 50
        idempotency_tags = {t for job in server.jobs.values() for t in job.tags if t.startswith(IDEMPOTENCY_TAG_PREFIX)}
        assert len(idempotency_tags) == 50
        # 8 x 503 and 6 x reset-before are posted again; the committed ones are found by tag
        assert len(server.calls("POST", JOBS)) == 50 + 8 + 6


async def test_big_results_decode_off_the_loop_and_equal_small_path(looptime) -> None:
    from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult

    from aqrt.backends.ibm.backend import decode_result
    from aqrt.wire import encode

    evs = np.random.default_rng(1).normal(size=200_000)
    text = encode(PrimitiveResult([PubResult(DataBin(evs=evs, shape=evs.shape))], metadata={"version": 2}))
    assert len(text) > 256 << 10
    decoded = await decode_result(text)
    np.testing.assert_array_equal(decoded[0].data.evs, evs)


async def test_max_execution_time_counts_on_the_server_from_the_start_not_while_queued(looptime) -> None:
    async with FaultServer(queue_time=100, run_time=5) as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        job = Estimator(mode=backend, options=Options(max_execution_time=10)).run([(bell(), "ZZ")])
        await job  # 100 s queued, 5 s running: within its 10 s
        assert server.calls("POST", JOBS)[0].body["cost"] == 10
        server.run_time = 50
        late = Estimator(mode=backend, options=Options(max_execution_time=10)).run([(bell(), "ZZ")])
        with pytest.raises(JobTimeoutError, match="max_execution_time"):
            await late
        assert late.status() is JobStatus.ERROR


async def test_an_option_the_api_cannot_carry_is_reported_in_the_metadata(looptime) -> None:
    async with FaultServer() as server, service_for(server) as service:
        backend = await service.backend("fake_alpha")
        result = await Estimator(mode=backend, options=Options(optimization_level=2)).run([(bell(), "ZZ")])
        assert "optimization_level" in result.metadata["options_not_applied"]
        assert "optimization_level" in result[0].metadata["options_not_applied"]
        assert "optimization_level" not in json.dumps(server.calls("POST", JOBS)[0].body["params"]["options"])
