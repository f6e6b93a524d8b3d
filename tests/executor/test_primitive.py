"""aqrt's own ``Executor`` primitive: a ``QuantumProgram`` as one job of aqrt's runtime, in a
Session, a Batch or job mode, with the session's rules and the backend's checks."""

from __future__ import annotations

import threading

import anyio
import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit_ibm_runtime.quantum_program import QuantumProgram

import aqrt
from aqrt import Batch, Executor, JobStatus, Session
from aqrt.backends.local.device import DeviceBackend
from aqrt.errors import (
    InvalidInputError,
    InvalidOptionsError,
    JobCancelledError,
    SessionClosedError,
    UnsupportedCircuitError,
)

from .conftest import small_program, sweep_circuit

SHOTS = 2000


def sweep_program(shots: int = SHOTS) -> QuantumProgram:
    program = QuantumProgram(shots=shots)
    program.append_circuit_item(sweep_circuit(), circuit_arguments=np.array([[0.0], [np.pi / 2], [np.pi]]))
    return program


def test_executor_is_exported() -> None:
    assert aqrt.Executor is Executor
    assert aqrt.primitives.Executor is Executor


@pytest.mark.asyncio
async def test_a_program_runs_in_a_session_with_the_device_s_noise(noisy_manila, exact_manila) -> None:
    async with Session(backend=noisy_manila) as session:
        job = Executor(options={"seed": 11}).run(sweep_program())
        assert job.session_id == session.session_id and job.program == "executor"
        result = await job
        again = await Executor(mode=session, options={"seed": 11}).run(sweep_program())
    bits = result[0]["c"]
    assert bits.shape == (3, SHOTS, 3) and bits.dtype == bool
    ones = bits[..., 2].mean(axis=1)  # qubit 0 -> clbit 2: P(1) = cos^2(theta/2) -> 0, 1/2, 1 (flipped by sx sx)
    expected = np.array([1.0, 0.5, 0.0])
    sigma = np.sqrt(0.25 / SHOTS)
    assert np.all(np.abs(ones - expected) < 0.06 + 5 * sigma), ones  # readout error a few percent
    assert ones[2] > 0 or ones[0] < 1  # the device's noise shows somewhere
    assert bits[..., 0].mean() > 0.9  # x on qubit 2 -> clbit 0
    np.testing.assert_array_equal(again[0]["c"], bits)  # one seed, the same draws
    exact = await Executor(mode=exact_manila, options={"seed": 11}).run(sweep_program())
    exact_ones = exact[0]["c"][..., 2].mean(axis=1)
    assert exact_ones[0] == 1.0 and exact_ones[2] == 0.0
    assert abs(exact_ones[1] - 0.5) < 5 * sigma


@pytest.mark.asyncio
async def test_samplex_items_and_passthrough_data_come_back(exact_manila) -> None:
    program = small_program(shots=500, randomizations=6)
    async with Batch(backend=exact_manila):
        result = await Executor(options={"seed": 5}).run(program)
    assert result.passthrough_data is program.passthrough_data
    bell = result[1]
    assert bell["meas"].shape == (6, 500, 2)
    flips = bell["measurement_flips.meas"]
    assert flips.shape[0] == 6
    undone = bell["meas"] ^ flips.reshape(6, 1, 2)  # the client undoes the measurement twirl
    assert np.all(undone[..., 0] == undone[..., 1])  # a Bell pair: the two bits always agree
    assert 0.4 < undone[..., 0].mean() < 0.6


@pytest.mark.asyncio
async def test_a_non_program_is_refused_at_run_and_a_program_the_backend_refuses_fails_its_job(
    exact_manila,
) -> None:
    """run() refuses what is not a QuantumProgram; the backend's own checks (meas_level, ISA) run
    before the job starts and fail the job with their typed error, as IBM's server fails it."""
    executor = Executor(mode=exact_manila)
    with pytest.raises(InvalidInputError, match="QuantumProgram"):
        executor.run([sweep_circuit()])
    kerneled = QuantumProgram(shots=10, meas_level="kerneled")
    kerneled.append_circuit_item(sweep_circuit(), circuit_arguments=np.array([[0.0]]))
    job = executor.run(kerneled)
    with pytest.raises(InvalidOptionsError, match="meas_level='kerneled'"):
        await job
    assert job.status() is JobStatus.ERROR and job.metrics().running is None  # refused before it started
    not_isa = QuantumCircuit(2, 2)
    not_isa.h(0)  # not in manila's basis
    not_isa.measure([0, 1], [0, 1])
    program = QuantumProgram(shots=10)
    program.append_circuit_item(sweep_circuit(), circuit_arguments=np.array([[0.0]]))
    program.append_circuit_item(not_isa)
    job = executor.run(program)
    with pytest.raises(UnsupportedCircuitError, match="h") as refused:
        await job
    assert refused.value.pub_index == 1 and job.status() is JobStatus.ERROR


def _recording_checks(monkeypatch: pytest.MonkeyPatch, backend: DeviceBackend) -> list[tuple[str, threading.Thread]]:
    """Every ``backend.validate_pub`` call from now on, as (program, thread it ran on)."""
    calls: list[tuple[str, threading.Thread]] = []
    validate_pub = backend.validate_pub

    def recording(program: str, pub: object, index: int) -> None:
        calls.append((program, threading.current_thread()))
        validate_pub(program, pub, index)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "validate_pub", recording)
    return calls


@pytest.mark.asyncio
async def test_a_program_is_checked_once_off_the_event_loop(manila, monkeypatch) -> None:
    """The ISA walk of a device's program never runs on the event loop (a 127-qubit device's
    is 0.2-0.4 s), and the run does not check the program again."""
    backend = DeviceBackend(manila, noise=False)
    calls = _recording_checks(monkeypatch, backend)
    loop_thread = threading.current_thread()
    for mode in (backend, Session, Batch):
        calls.clear()
        if mode is backend:
            result = await Executor(mode=backend, options={"seed": 3}).run(sweep_program(50))
        else:
            async with mode(backend=backend):  # type: ignore[operator]
                job = Executor(options={"seed": 3}).run(sweep_program(50))
                assert calls == []  # run() returned without checking
                result = await job
        assert result[0]["c"].shape == (3, 50, 3)
        programs = [program for program, _ in calls]
        # the program once, then its item as a Sampler PUB; no second check in the run
        assert programs == ["executor", "sampler"], (mode, programs)
        assert all(thread is not loop_thread for _, thread in calls), [thread.name for _, thread in calls]
    calls.clear()
    # aqrt serve checks a program at submission (off its loop), then submits it as checked
    result = await Executor(mode=backend, options={"seed": 3})._run_checked(sweep_program(50))
    assert result[0]["c"].shape == (3, 50, 3) and calls == []


@pytest.mark.asyncio
async def test_a_job_cancelled_while_its_program_is_checked_ends_cancelled(manila, monkeypatch) -> None:
    backend = DeviceBackend(manila, noise=False)
    started = threading.Event()
    release = threading.Event()
    validate_pub = backend.validate_pub

    def slow_check(program: str, pub: object, index: int) -> None:
        started.set()
        release.wait(10)
        validate_pub(program, pub, index)  # type: ignore[arg-type]

    monkeypatch.setattr(backend, "validate_pub", slow_check)
    async with Session(backend=backend) as session:
        job = Executor().run(sweep_program(10))
        while not started.is_set():
            await anyio.sleep(0.001)
        assert job.status() is JobStatus.QUEUED  # a program being checked has not started
        assert job.cancel()
        release.set()
        with pytest.raises(JobCancelledError):
            await job
        assert job.status() is JobStatus.CANCELLED and job.metrics().running is None
    assert session.statistics()["cancelled"] == 1


@pytest.mark.asyncio
async def test_a_closed_session_refuses_executor_jobs(exact_manila) -> None:
    async with Session(backend=exact_manila) as session:
        pass
    with pytest.raises(SessionClosedError):
        Executor(mode=session).run(sweep_program(10))


def test_run_outside_async_code_says_what_to_do(exact_manila) -> None:
    with pytest.raises(RuntimeError, match=r"aqrt\.sync\.Executor"):
        Executor(mode=exact_manila).run(sweep_program(10))


def test_the_blocking_executor_runs_in_a_sync_session(exact_manila) -> None:
    import aqrt.sync

    try:
        with aqrt.sync.Session(backend=exact_manila) as session:
            job = aqrt.sync.Executor(options={"seed": 2}).run(sweep_program(400))
            assert job.session_id == session.session_id and job.primitive_id == "executor"
            bits = job.result()[0]["c"]
        assert bits.shape == (3, 400, 3)
        ones = bits[..., 2].mean(axis=1)
        assert ones[0] == 1.0 and ones[2] == 0.0 and abs(ones[1] - 0.5) < 5 * np.sqrt(0.25 / 400)
        with pytest.raises(InvalidInputError, match="QuantumProgram"):
            aqrt.sync.Executor(mode=exact_manila).run("not a program")
    finally:
        aqrt.sync.shutdown()
