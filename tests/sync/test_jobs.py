"""The blocking job: qiskit-ibm-runtime's status strings and methods over aqrt's job."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import aqrt
from aqrt.sync import Estimator, Session
from aqrt.testing import FakeBackend


def _pub() -> tuple[QuantumCircuit, SparsePauliOp]:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    return circuit, SparsePauliOp("Z")


def test_statuses_job_id_and_cancel_of_a_queued_job() -> None:
    with Session(backend=FakeBackend(duration=0.3)) as session:
        estimator = Estimator(mode=session)
        first, second = estimator.run([_pub()]), estimator.run([_pub()])
        # a dedicated session runs one job at a time: the second waits behind the first
        assert second.status() == "QUEUED"
        assert not second.running() and not second.in_final_state() and not second.done()
        assert second.cancel() is True
        assert second.status() == "CANCELLED"
        assert second.cancelled() and second.in_final_state() and not second.done() and not second.errored()
        assert "cancelled" in (second.error_message() or "")
        with pytest.raises(aqrt.JobCancelledError):
            second.result()
        assert first.status() in {"QUEUED", "RUNNING"}
        first.result(timeout=30)
        assert first.status() == "DONE" and first.done() and first.in_final_state()
        assert first.cancel() is False
        assert first.error_message() is None and first.exception() is None
    job_id = first.job_id()
    assert type(job_id) is str and job_id.startswith("job-")
    assert first.job_id() != second.job_id()
    assert first.primitive_id == "estimator"
    assert first.backend_name == "fake_backend"
    metrics = first.metrics()
    assert metrics.usage_seconds is not None and metrics.usage_seconds == pytest.approx(0.3, abs=0.25)


def test_a_running_job_reports_running_then_done() -> None:
    with Session(backend=FakeBackend(duration=0.5)) as session:
        job = Estimator(mode=session).run([_pub()])
        with pytest.raises(aqrt.ResultTimeoutError, match=r"after waiting 0\.05 s") as raised:
            job.wait_for_final_state(timeout=0.05)
        assert isinstance(raised.value, TimeoutError)
        assert job.status() == "RUNNING" and job.running()
        job.wait_for_final_state(timeout=30)
        assert job.status() == "DONE"


def test_result_timeout_leaves_the_job_running_and_cancel_stops_it() -> None:
    job = Estimator(mode=FakeBackend(duration=30)).run([_pub()])
    with pytest.raises(aqrt.ResultTimeoutError) as raised:
        job.result(timeout=0.1)
    assert raised.value.job_id == job.job_id()
    assert not job.in_final_state()
    assert job.cancel() is True
    job.wait_for_final_state(timeout=10)
    assert job.status() == "CANCELLED"


def test_a_failed_job_reports_error() -> None:
    job = Estimator(mode=FakeBackend(duration=0.01, fail_with=ValueError("the fake backend broke"))).run([_pub()])
    job.wait_for_final_state(timeout=10)
    assert job.status() == "ERROR" and job.errored() and not job.done()
    assert "the fake backend broke" in (job.error_message() or "")
    with pytest.raises(aqrt.JobError, match="the fake backend broke"):
        job.result()


def test_an_exception_in_the_block_cancels_the_sessions_jobs() -> None:
    with pytest.raises(KeyError), Session(backend=FakeBackend(duration=30)) as session:
        job = Estimator(mode=session).run([_pub()])
        raise KeyError("stop")
    assert job.status() == "CANCELLED"
    assert session.status() is aqrt.SessionState.CLOSED


def test_a_session_without_a_with_block_opens_on_its_first_job_and_closes_on_close() -> None:
    session = Session(backend=FakeBackend(duration=0.01))
    job = Estimator(mode=session).run([_pub()])
    assert job.result(timeout=10)[0].data.evs is not None
    session.close()
    assert not session.accepting_jobs
    with pytest.raises(aqrt.SessionClosedError):
        Estimator(mode=session).run([_pub()])
    assert session.details()["done"] == 1


def test_run_waits_for_room_in_a_bounded_session_or_raises() -> None:
    with Session(backend=FakeBackend(duration=0.2), max_pending=1) as session:
        estimator = Estimator(session=session)
        first = estimator.run([_pub()])
        second = estimator.run([_pub()])  # blocks until the first job made room
        assert first.in_final_state() and first.status() == "DONE"
        second.result(timeout=10)
    with Session(backend=FakeBackend(duration=5), max_pending=1, on_full="error") as session:
        estimator = Estimator(mode=session)
        estimator.run([_pub()])
        with pytest.raises(aqrt.SessionFullError):
            estimator.run([_pub()])
        session.cancel()
    with pytest.raises(aqrt.InvalidInputError, match="either mode= or session="):
        Estimator(mode="aqrt_statevector", session=session)
