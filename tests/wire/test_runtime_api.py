"""aqrt.wire.runtime_api: the Runtime API's vocabulary that aqrt's client and ``aqrt serve`` share.

States both ways (checked against qiskit-ibm-runtime's own table), the final-outcome mapping,
reason codes, bodies, and params <-> (PUBs, Options) round trips with the refusals the server
answers 400 with.
"""

from __future__ import annotations

import json

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt.errors import (
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    SessionCacheError,
    SessionClosedError,
    SessionExpiredError,
)
from aqrt.job import JobStatus
from aqrt.options import Options
from aqrt.session import SessionState
from aqrt.wire import WireError
from aqrt.wire import runtime_api as api


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


def body(status: str, **state: object) -> dict[str, object]:
    return {"id": "j1", "state": {"status": status, **state}}


# -- job states ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_aqrt_status_has_an_api_name_that_reads_back(status: JobStatus) -> None:
    name = api.api_job_status(status)
    assert name in api.JOB_STATUSES
    state = api.JobState.of(body(name))
    assert state.aqrt_status is status
    assert state.final is status.is_final


def test_the_api_names_are_the_official_clients() -> None:
    from qiskit_ibm_runtime.runtime_job_v2 import API_TO_JOB_STATUS

    assert {name.upper() for name in api.JOB_STATUSES} == set(API_TO_JOB_STATUS)
    for name in api.JOB_STATUSES:  # aqrt's JobStatus names are the official client's statuses
        assert api.JobState.of(body(name)).aqrt_status.name == API_TO_JOB_STATUS[name.upper()]


def test_job_states_are_read_leniently() -> None:
    assert api.JobState.of(body("completed")).status == api.COMPLETED
    assert api.JobState.of({"status": "Running"}).started  # a top-level status (listings)
    unknown = api.JobState.of(body("Initializing"))
    assert unknown.status is None and not unknown.started and not unknown.final
    assert unknown.aqrt_status is JobStatus.QUEUED
    assert api.JobState.of(body("Failed", reasonCode=1500)).reason_code == 1500
    assert api.JobState.of(body("Failed", reason_code="1500")).reason_code == 1500
    assert api.JobState.of(body("Failed", reason_code=True)).reason_code is None


@pytest.mark.parametrize(
    "job",
    [body("Cancelled", reason_code=api.CODE_RAN_TOO_LONG, reason="too long"), body(api.CANCELLED_RAN_TOO_LONG)],
)
def test_a_job_that_ran_too_long_is_an_error_and_a_timeout(job: dict[str, object]) -> None:
    state = api.JobState.of(job)
    assert state.status == api.CANCELLED and state.final and state.ran_too_long
    assert state.aqrt_status is JobStatus.ERROR
    error = api.final_error(job, where="job x", job_id="x")
    assert isinstance(error, JobTimeoutError) and error.job_id == "x"
    assert "exceeded its max_execution_time" in str(error)


def test_the_final_outcome_of_each_state() -> None:
    assert api.final_error(body("Completed"), where="job x") is None
    cancelled = api.final_error(body("Cancelled", reason="by user"), where="job x", job_id="x")
    assert isinstance(cancelled, JobCancelledError)
    assert str(cancelled) == "job x was cancelled on the server: by user"
    failed = api.final_error(body("Failed", reason="boom", reason_code=1500), where="job x")
    assert isinstance(failed, JobFailedError)
    assert str(failed) == "job x failed on the server: Error code 1500; boom"
    assert str(api.final_error(body("Failed"), where="job x")) == "job x failed on the server: no reason given"


def test_reason_codes_of_aqrt_errors() -> None:
    assert api.reason_code(JobTimeoutError("t")) == api.CODE_RAN_TOO_LONG == 1305
    assert api.reason_code(SessionExpiredError("e")) == api.CODE_SESSION_EXPIRED
    assert api.reason_code(SessionCacheError("c")) == api.CODE_SESSION_CACHE
    assert api.reason_code(SessionClosedError("c")) == api.CODE_SESSION_CLOSED
    assert api.reason_code(RuntimeError("x")) == api.reason_code(None) == api.CODE_JOB_FAILED


# -- sessions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(SessionState))
def test_every_session_state_has_an_api_state(state: SessionState) -> None:
    expected = {"PENDING": "open", "EXPIRED": "closed"}.get(state.name, state.value)
    assert api.api_session_state(state) == expected


# -- bodies --------------------------------------------------------------------------------------


def test_a_job_body_reads_back_as_its_state() -> None:
    job = api.job_body(
        job_id="j1",
        backend="b",
        program="estimator",
        status=api.FAILED,
        created="2026-01-01T00:00:00+00:00",
        user_id="alice",
        reason="boom",
        reason_code=api.CODE_JOB_FAILED,
        tags=["t"],
    )
    assert json.loads(json.dumps(job)) == job
    assert job["status"] == job["state"]["status"] == api.FAILED and "params" not in job
    assert api.JobState.of(job) == api.JobState(api.FAILED, "boom", api.CODE_JOB_FAILED)
    assert api.error_body(404, "no", api.CODE_NOT_FOUND) == {
        "errors": [{"code": 1211, "message": "no", "more_info": ""}],
        "trace": "",
        "status_code": 404,
    }


# -- params <-> (PUBs, Options) ------------------------------------------------------------------


def test_estimator_params_round_trip() -> None:
    options = Options(default_precision=0.01, seed=7, resilience_level=1)
    params = json.loads(json.dumps(api.job_params("estimator", [(bell(), SparsePauliOp("ZZ"))], options)))
    assert params["version"] == api.PARAMS_VERSION and params["resilience_level"] == 1
    assert params["options"] == {"default_precision": 0.01, "seed_estimator": 7}
    pubs, rest = api.pubs_from_params("estimator", params, max_decompressed_bytes=1 << 20)
    assert len(pubs) == 1 and pubs[0].circuit == bell()
    read = api.options_from_params(rest, max_execution_time=30)
    assert (read.default_precision, read.seed, read.resilience_level) == (0.01, 7, 1)
    assert read.max_execution_time == 30


def test_sampler_params_round_trip() -> None:
    circuit = bell()
    circuit.measure_all()
    options = Options(default_shots=123, seed=5)
    params = json.loads(json.dumps(api.job_params("sampler", [(circuit,)], options)))
    assert params["options"] == {"default_shots": 123, "simulator": {"seed_simulator": 5}}
    pubs, rest = api.pubs_from_params("sampler", params, max_decompressed_bytes=1 << 20)
    assert pubs[0].circuit == circuit
    read = api.options_from_params(rest)
    assert (read.default_shots, read.seed, read.max_execution_time) == (123, 5, None)


def test_an_option_the_api_has_no_field_for_is_named() -> None:
    assert api.options_not_sent(Options()) == {}
    assert "optimization_level" in api.options_not_sent(Options(optimization_level=2))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([], "params must be a JSON object with 'pubs'"),
        ({"pubs": [1], "version": 1}, "only version 2 primitives are served, got version 1"),
        ({"pubs": []}, "params['pubs'] must be a non-empty list of PUBs"),
        ({"pubs": [1, 2, 3]}, "a job may hold at most 2 PUBs, got 3"),
        ({"pubs": [{"__type__": "nope", "__value__": 1}]}, "invalid params: "),
    ],
)
def test_params_refused(params: object, message: str) -> None:
    with pytest.raises(WireError) as info:
        api.pubs_from_params("estimator", params, max_pubs=2, max_decompressed_bytes=1 << 20)
    assert str(info.value).startswith(message)


def test_options_refused() -> None:
    with pytest.raises(WireError, match=r"^params\['options'\] must be an object$"):
        api.options_from_params({"options": [1]})
    with pytest.raises(WireError, match=r"^invalid options: "):
        api.options_from_params({"options": {"default_shots": -1}})
