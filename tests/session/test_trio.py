"""The local path runs under trio too (the core is built on anyio)."""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import Batch, Estimator, JobCancelledError, JobStatus, LocalService, Sampler, Session, SessionState
from aqrt.testing import FakeBackend


def _bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


def test_session_on_the_local_backend_under_trio() -> None:
    async def main() -> tuple[float, dict[str, int], SessionState]:
        async with Session(service=LocalService(), max_time="10m") as session:
            estimator = Estimator()
            jobs = [estimator.run([(_bell(), SparsePauliOp("ZZ"))]) for _ in range(20)]
            results = [await job for job in jobs]
            measured = _bell()
            measured.measure_all()
            counts = (await Sampler(options={"seed": 3}).run([measured], shots=200))[0].data.meas.get_counts()
        return float(results[-1][0].data.evs), counts, session.status()

    ev, counts, state = trio.run(main)
    assert ev == pytest.approx(1.0, abs=1e-12)
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 200
    assert state is SessionState.CLOSED


def test_virtual_time_clocks_and_cancellation_under_trio() -> None:
    async def main() -> None:
        backend = FakeBackend(duration=10)
        async with Batch(backend=backend, max_concurrency=2) as batch:
            jobs = [Estimator().run([(_bell(), SparsePauliOp("ZZ"))]) for _ in range(3)]
            await trio.sleep(5)
            jobs[2].cancel()
            await jobs[0]
            assert trio.current_time() == 10
            assert batch.statistics()["cancelled"] == 1
        assert jobs[2].status() is JobStatus.CANCELLED
        with pytest.raises(JobCancelledError):
            await jobs[2]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_session_exit_by_exception_under_trio() -> None:
    async def main() -> list[JobStatus]:
        jobs = []
        with pytest.raises(ValueError):
            async with Session(backend=FakeBackend(duration=100)):
                jobs.extend(Estimator().run([(_bell(), SparsePauliOp("ZZ"))]) for _ in range(2))
                await trio.sleep(1)
                raise ValueError
        return [job.status() for job in jobs]

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == [JobStatus.CANCELLED] * 2


def test_sweep_result_matches_under_trio() -> None:
    async def main() -> np.ndarray:
        circuit = QuantumCircuit(1)
        from qiskit.circuit import Parameter

        circuit.ry(Parameter("a"), 0)
        async with Session():
            result = await Estimator().run([(circuit, SparsePauliOp("Z"), np.linspace(0, np.pi, 11))])
        return result[0].data.evs

    np.testing.assert_allclose(trio.run(main), np.cos(np.linspace(0, np.pi, 11)), atol=1e-12)
