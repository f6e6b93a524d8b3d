"""aqrt.sync.RuntimeService against a real ``aqrt serve`` on 127.0.0.1: a script's whole round
trip (backends, a session, a second service finding the job by id, as_completed over server jobs),
cancelling through a retrieved job, a notebook's running loop, a clean exit, and the misuse errors.

The server keeps its real clock, so these run in real time; the jobs are small.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from blockbuster import BlockBuster
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp, Statevector

import aqrt
import aqrt.sync
from aqrt.server import ServerConfig, serve_in_thread
from aqrt.sync import Estimator, RemoteJob, RuntimeService, Sampler, Session, as_completed

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/aqrt:test::"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``aqrt serve`` (one backend, aqrt_statevector, 22 qubits wide) in a thread; its base URL."""
    config = ServerConfig(db_path=tmp_path / "server.sqlite3", api_keys={"alice-key": "alice"}, backend_qubits=22)
    with serve_in_thread(config, debug=True) as url:
        yield url


def open_service(url: str) -> RuntimeService:
    return RuntimeService(channel="ibm_cloud", token="alice-key", instance=CRN, url=f"{url}/api/v1", iam_url=url)


def rotation() -> tuple[QuantumCircuit, SparsePauliOp]:
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    return circuit, SparsePauliOp(["ZZ", "XX", "IZ"])


def exact(circuit: QuantumCircuit, observable: SparsePauliOp, value: float) -> float:
    return float(np.real(Statevector(circuit.assign_parameters([value])).expectation_value(observable)))


def slow_circuit(num_qubits: int = 22, layers: int = 120) -> QuantumCircuit:
    """Seconds of engine time: long enough to cancel while it runs."""
    circuit = QuantumCircuit(num_qubits)
    for layer in range(layers):
        for qubit in range(num_qubits):
            circuit.rx(0.1 * (qubit + layer + 1), qubit)
        for qubit in range(num_qubits - 1):
            circuit.cx(qubit, qubit + 1)
    return circuit


def test_a_script_lists_backends_runs_a_session_and_a_second_service_finds_the_job(server: str) -> None:
    circuit, observable = rotation()
    values = [0.3, 1.1, 2.5]
    with open_service(server) as service:
        assert service.channel == "ibm_cloud" and service.instance == CRN
        assert [backend.name for backend in service.backends()] == ["aqrt_statevector"]
        backend = service.least_busy(min_num_qubits=2)
        assert backend is service.backend("aqrt_statevector") is service.known_backend("aqrt_statevector")
        assert backend.num_qubits == 22
        with Session(backend=backend) as session:
            job = Estimator(mode=session).run([(circuit, observable, np.reshape(values, (-1, 1)))])
            evs = job.result()[0].data.evs
            remote_session = session.details()["remote_id"]
        assert job.status() == "DONE" and job.backend_name == "aqrt_statevector"
        server_id = backend.remote_job_ids[job.job_id()]
    expected = [exact(circuit, observable, value) for value in values]
    np.testing.assert_allclose(evs, expected, atol=1e-10)

    with open_service(server) as other:
        found = other.job(server_id)
        assert isinstance(found, RemoteJob)
        assert found.job_id() == server_id
        assert found.status() == "DONE" and found.done() and found.in_final_state()
        assert not (found.running() or found.cancelled() or found.errored())
        assert found.primitive_id == "estimator" and found.backend_name == "aqrt_statevector"
        assert found.session_id == remote_session
        assert f"aqrt-job-{job.job_id()}" in found.tags
        np.testing.assert_allclose(found.result()[0].data.evs, expected, atol=1e-10)
        assert found.exception() is None and found.error_message() is None
        listed = other.jobs(session_id=remote_session)
        assert [listed_job.job_id() for listed_job in listed] == [server_id]


def test_a_session_takes_the_sync_service_and_a_backend_name(server: str) -> None:
    circuit = QuantumCircuit(2)
    circuit.x(0)
    circuit.measure_all()
    with open_service(server) as service, Session(service=service, backend="aqrt_statevector") as session:
        assert session.service is service
        counts = Sampler().run([circuit], shots=50).result()[0].data.meas.get_counts()
        assert session.backend is service.known_backend("aqrt_statevector")
    assert counts == {"01": 50}


def test_as_completed_over_server_jobs_yields_each_once_when_final(server: str) -> None:
    circuit, observable = rotation()
    values = [0.2, 0.9, 1.7, 2.8]
    with open_service(server) as service:
        estimator = Estimator(mode=service.backend("aqrt_statevector"))
        jobs = [estimator.run([(circuit, observable, [value])]) for value in values]
        finished = list(as_completed([*jobs, jobs[0]], timeout=60))  # a job given twice comes once
        assert sorted(map(id, finished)) == sorted(map(id, jobs))  # the run() handles themselves
        for job, value in zip(jobs, values, strict=True):
            assert job.in_final_state()
            np.testing.assert_allclose(job.result()[0].data.evs, exact(circuit, observable, value), atol=1e-10)

        with open_service(server) as other:
            remote = other.jobs(limit=len(values))
            seen = [job.job_id() for job in as_completed(remote, timeout=60)]
            assert sorted(seen) == sorted(job.job_id() for job in remote)
            assert all(job.status() == "DONE" for job in remote)


def test_cancelling_a_retrieved_job_reaches_the_submitter(server: str) -> None:
    with open_service(server) as service:
        backend = service.backend("aqrt_statevector")
        job = Estimator(mode=backend).run([(slow_circuit(), "Z" * 22)])
        deadline = time.monotonic() + 60
        while backend.remote_job_ids.get(job.job_id()) is None:
            assert time.monotonic() < deadline and not job.in_final_state()
            time.sleep(0.01)
        with open_service(server) as other:
            found = other.job(backend.remote_job_ids[job.job_id()])
            assert found.status() in {"QUEUED", "RUNNING"}
            with pytest.raises(aqrt.ResultTimeoutError):
                found.result(timeout=0.05)
            found.cancel()
            with pytest.raises(aqrt.JobCancelledError):
                found.result(timeout=60)
            assert found.status() == "CANCELLED" and found.cancelled() and found.in_final_state()
            assert found.error_message() is not None
        with pytest.raises(aqrt.JobCancelledError):
            job.result(timeout=60)
        assert job.status() == "CANCELLED"


def test_the_service_works_in_a_thread_that_runs_an_event_loop(server: str, blockbuster: BlockBuster) -> None:
    blockbuster.deactivate()  # the "cell" below blocks its loop, as any synchronous call does

    def cell() -> float:
        circuit = QuantumCircuit(1)
        circuit.ry(1.0, 0)
        with open_service(server) as service:
            backend = service.backend("aqrt_statevector")
            return float(Estimator(mode=backend).run([(circuit, "Z")]).result()[0].data.evs)

    async def notebook() -> float:
        assert asyncio.get_running_loop().is_running()
        return cell()

    loop = asyncio.new_event_loop()  # not asyncio.run: that would drop the loop the test plugins set
    try:
        assert loop.run_until_complete(notebook()) == pytest.approx(np.cos(1.0), abs=1e-12)
    finally:
        loop.close()


SCRIPT = """
from qiskit import QuantumCircuit

from aqrt.server import ServerConfig, serve_in_thread
from aqrt.sync import Estimator, RuntimeService

config = ServerConfig(db_path=":memory:", api_keys={{"k": "alice"}}, backend_qubits=4)
with serve_in_thread(config) as url:
    service = RuntimeService(channel="ibm_cloud", token="k", instance="{crn}", url=url + "/api/v1", iam_url=url)
    circuit = QuantumCircuit(1)
    circuit.x(0)
    print(Estimator(mode=service.backend("aqrt_statevector")).run([(circuit, "Z")]).result()[0].data.evs)
    # the service is left open: interpreter exit closes it
"""


def test_a_script_that_leaves_its_service_open_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT).format(crn=CRN))
    done = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no unclosed aiohttp session, no unawaited coroutine
    assert float(done.stdout) == pytest.approx(-1.0)


def test_shutdown_closes_an_open_service_and_refuses_it_after(server: str) -> None:
    service = open_service(server)
    backend = service.backend("aqrt_statevector")
    aqrt.sync.shutdown()
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        service.backends()
    with pytest.raises(RuntimeError, match=r"aqrt\.sync was shut down"):
        Estimator(mode=backend)  # its connection belonged to the stopped loop
    service.close()  # already closed by shutdown(): nothing to do
    # Its HTTP session was closed on the loop: nothing unclosed is left for the collector.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del service, backend
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


def test_an_async_service_or_its_backend_is_refused_naming_the_sync_service(server: str) -> None:
    async_service = aqrt.RuntimeService(
        channel="ibm_cloud", token="alice-key", instance=CRN, url=f"{server}/api/v1", iam_url=server
    )

    async def fetch() -> object:
        async with async_service:
            return await async_service.backend("aqrt_statevector")

    loop = asyncio.new_event_loop()
    try:
        backend = loop.run_until_complete(fetch())
    finally:
        loop.close()
    fix = r"in synchronous code use aqrt\.sync\.RuntimeService\(\.\.\.\) and its backends"
    with pytest.raises(aqrt.InvalidInputError, match=r"this service comes from an async aqrt\.RuntimeService.*" + fix):
        Session(service=async_service, backend="aqrt_statevector")
    with pytest.raises(aqrt.InvalidInputError, match=r"backend 'aqrt_statevector' comes from an async .*" + fix):
        Estimator(mode=backend)  # type: ignore[arg-type]
    with pytest.raises(aqrt.InvalidInputError, match=fix):
        Session(backend=backend)  # type: ignore[arg-type]


def test_sync_misuse_of_the_service_names_the_fix(server: str) -> None:
    with pytest.raises(aqrt.InvalidInputError, match="channel must be one of"):
        RuntimeService(channel="ibm_quantum")  # at once, before any I/O

    service = open_service(server)

    async def ported_async_code() -> None:
        async with service:
            pass

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError, match=r"use `with aqrt\.sync\.RuntimeService\(\.\.\.\)`, or `async with aqrt\."):
            loop.run_until_complete(ported_async_code())
    finally:
        loop.close()

    backend = service.backend("aqrt_statevector")
    service.close()
    service.close()  # idempotent
    with pytest.raises(RuntimeError, match=r"this aqrt\.sync\.RuntimeService is closed; make a new one"):
        service.backend("aqrt_statevector")
    with pytest.raises(RuntimeError, match=r"this aqrt\.sync\.RuntimeService is closed; make a new one"):
        Session(service=service, backend="aqrt_statevector")
    with pytest.raises(RuntimeError, match=r"'aqrt_statevector' belongs to a closed aqrt\.sync\.RuntimeService; make"):
        Estimator(mode=backend)
    with pytest.raises(aqrt.BackendNotFoundError, match="no backend 'nowhere'"), open_service(server) as other:
        other.backend("nowhere")
