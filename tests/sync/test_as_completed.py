"""aqrt.sync.as_completed(jobs) and Session.as_completed(): jobs in the order they finish, the
handles run() returned, a timeout that leaves the jobs running, and what is refused."""

from __future__ import annotations

import threading
import time

import pytest
from qiskit import QuantumCircuit

import aqrt
import aqrt.sync
from aqrt.sync import Batch, Estimator, as_completed
from aqrt.testing import FakeBackend


def _circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.x(0)
    return circuit


def test_jobs_come_in_the_order_they_finish_not_the_order_given() -> None:
    # Seconds of loop time per job, by submission order; all three run at once in the batch.
    backend = FakeBackend(durations={0: 1.2, 1: 0.1, 2: 0.6})
    with Batch(backend=backend, max_concurrency=3) as batch:
        estimator = Estimator(mode=batch)
        jobs = [estimator.run([(_circuit(), "Z")]) for _ in range(3)]
        started = time.monotonic()
        order = []
        for job in as_completed(jobs, timeout=30):
            assert job.in_final_state()
            order.append(jobs.index(job))
        assert time.monotonic() - started < 10
    assert order == [1, 2, 0]
    assert all(job.status() == "DONE" for job in jobs)


def test_final_jobs_come_first_and_failed_or_cancelled_ones_come_too() -> None:
    done = Estimator().run([(_circuit(), "Z")])
    done.result()
    failing = Estimator(mode=FakeBackend(duration=0.05, fail_with=ValueError("boom"))).run([(_circuit(), "Z")])
    slow = Estimator(mode=FakeBackend(duration=60)).run([(_circuit(), "Z")])
    iterator = as_completed([slow, failing, done])
    assert next(iterator) is done  # final already
    assert next(iterator) is failing
    assert failing.status() == "ERROR"
    slow.cancel()
    assert next(iterator) is slow
    assert slow.status() == "CANCELLED"
    with pytest.raises(StopIteration):
        next(iterator)


def test_a_timeout_raises_and_leaves_the_job_running() -> None:
    slow = Estimator(mode=FakeBackend(duration=60)).run([(_circuit(), "Z")])
    started = time.monotonic()
    with pytest.raises(aqrt.ResultTimeoutError, match=r"1 \(of 1\) jobs unfinished") as raised:
        list(as_completed([slow], timeout=0.2))
    assert isinstance(raised.value, TimeoutError)
    assert 0.2 <= time.monotonic() - started < 5
    assert slow.status() in {"QUEUED", "RUNNING"}
    assert slow.cancel()


def test_an_abandoned_iterator_stops_watching_and_the_jobs_go_on() -> None:
    backend = FakeBackend(durations={0: 0.05, 1: 0.4})
    with Batch(backend=backend, max_concurrency=2) as batch:
        estimator = Estimator(mode=batch)
        first, second = estimator.run([(_circuit(), "Z")]), estimator.run([(_circuit(), "Z")])
        for job in as_completed([first, second]):
            assert job is first
            break
    assert second.status() == "DONE"
    assert list(as_completed([])) == []


def test_session_as_completed_yields_later_jobs_until_the_session_closes() -> None:
    backend = FakeBackend(durations={0: 0.6, 1: 0.1, 2: 0.3})
    with Batch(backend=backend, max_concurrency=3) as batch:
        estimator = Estimator(mode=batch)
        jobs = [estimator.run([(_circuit(), "Z")])]

        def produce_then_close() -> None:
            jobs.append(estimator.run([(_circuit(), "Z")]))
            jobs.append(estimator.run([(_circuit(), "Z")]))
            batch.close()  # waits for the jobs; then the iterator ends

        producer = threading.Thread(target=produce_then_close)
        producer.start()
        finished = list(batch.as_completed())
        producer.join(timeout=30)
    assert len(finished) == 3
    assert [jobs.index(job) for job in finished] == [1, 2, 0]  # the run() handles, as they finished


def test_breaking_out_of_session_as_completed_leaves_the_session_usable() -> None:
    backend = FakeBackend(durations={0: 0.05, 1: 0.3})
    with Batch(backend=backend, max_concurrency=2) as batch:
        estimator = Estimator(mode=batch)
        first, second = estimator.run([(_circuit(), "Z")]), estimator.run([(_circuit(), "Z")])
        for job in batch.as_completed():
            assert job is first
            break
        third = estimator.run([(_circuit(), "Z")])
        batch.close()
        assert list(batch.as_completed()) == []  # closed, every job finished: nothing left to yield
    assert [job.status() for job in (first, second, third)] == ["DONE"] * 3


def test_what_as_completed_refuses() -> None:
    async_job_type_hint = r"for aqrt\.Job use asyncio\.as_completed"
    with pytest.raises(aqrt.InvalidInputError, match=r"takes aqrt\.sync\.Job / aqrt\.sync\.RemoteJob handles"):
        as_completed(["job-1"])  # type: ignore[list-item]
    job = Estimator().run([(_circuit(), "Z")])
    with pytest.raises(aqrt.InvalidInputError, match=async_job_type_hint):
        as_completed([job._job])  # type: ignore[list-item]
    job.result()
    aqrt.sync.shutdown()
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        as_completed([job])
    fresh = Estimator().run([(_circuit(), "Z")])
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        as_completed([fresh, job])  # jobs of a stopped loop and of the new one
    assert list(as_completed([fresh])) == [fresh]
