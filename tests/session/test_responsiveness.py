"""The event loop stays responsive while the engine computes (work runs off the loop)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import numpy as np
import pytest
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import Estimator, JobStatus, LocalService, Session

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("settled_gc")]


@pytest.fixture
def settled_gc() -> Iterator[None]:
    """Collect, then freeze what the earlier tests left behind: late in the suite a full
    garbage collection over that heap takes ~0.3 s and would be charged to aqrt's loop lag."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("engine", "width", "depth", "copies"), [("numba", 22, 12, 6), ("reference", 20, 12, 3)])
async def test_loop_lag_stays_small_during_a_multi_second_job(engine: str, width: int, depth: int, copies: int) -> None:
    circuit = random_circuit(width, depth, seed=7, max_operands=2)
    observable = SparsePauliOp.from_sparse_list([("ZZ", [i, i + 1], 1.0) for i in range(width - 1)], num_qubits=width)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    async with Session(service=LocalService(engine=engine)):
        job = Estimator().run([(circuit, observable, None)] * copies)
        started = loop.time()
        while not job.done():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)
        duration = loop.time() - started
        result = await job
    assert duration > 0.5, f"the job was too quick ({duration:.2f} s) to show anything"
    assert max(lags) < 0.25, f"the loop was blocked for {max(lags):.3f} s"
    assert np.isfinite(result[0].data.evs)


async def test_a_stream_of_tiny_inline_jobs_does_not_starve_the_loop() -> None:
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(1)
    circuit.h(0)
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0)

    async with Session(service=LocalService()):
        estimator = Estimator()
        await estimator.run([(circuit, SparsePauliOp("Z"))])  # warm: later jobs run inline
        ticking = asyncio.ensure_future(ticker())
        jobs = [estimator.run([(circuit, SparsePauliOp("Z"))]) for _ in range(3000)]
        ticks.clear()
        await asyncio.wait(jobs)  # jobs are waitable directly: no task per job (debug mode makes those slow)
        ticking.cancel()
        assert all(job.status() is JobStatus.DONE for job in jobs)
    gaps = np.diff(ticks)
    assert len(ticks) > 50, "the ticker barely ran while the jobs were processed"
    # Runners yield after ~1 ms of inline work: typical gaps are that small; a rare longer one
    # (a garbage-collector pause) stays far below the 0.25 s bound.
    assert np.median(gaps) < 0.005, f"typical gap {np.median(gaps) * 1000:.1f} ms"
    assert gaps.max() < 0.25, f"the loop was starved for {gaps.max() * 1000:.1f} ms"
