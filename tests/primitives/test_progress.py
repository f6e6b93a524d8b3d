"""Job progress (bindings done / total), chunked sweeps that equal unchunked ones bit for bit,
and consuming a batch's jobs as they complete."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import Batch, Estimator, LocalService, Options, Sampler, Session
from aqrt.progress import ProgressUpdate

from ..sweeps import ansatz, grid, observables

pytestmark = pytest.mark.asyncio


async def _estimate(service: LocalService, pubs, *, watch: bool, options=None):
    updates: list[ProgressUpdate] = []
    async with Session(service=service) as session:
        job = Estimator(session=session, options=options).run(pubs)
        if watch:
            job.add_progress_callback(updates.append)
        result = await job
    return result, updates


async def test_watched_sweep_reports_every_chunk_and_equals_the_unwatched_one() -> None:
    circuit = ansatz(5, 3)
    values = grid(1000, circuit.num_parameters)
    obs = [[o] for o in observables(5)]  # (2, 1) against (1000,) bindings -> (2, 1000)
    pubs = [(circuit, obs, values, 0.01), (circuit, SparsePauliOp("ZZIII"), values[:37])]
    options = Options(seed=1234)
    plain, _ = await _estimate(LocalService(), pubs, watch=False, options=options)
    chunked, updates = await _estimate(LocalService(chunk_bindings=64), pubs, watch=True, options=options)
    for a, b in zip(plain, chunked, strict=True):
        assert a.data.evs.shape == b.data.evs.shape
        assert np.array_equal(a.data.evs, b.data.evs)  # bit for bit, seeded noise included
        assert np.array_equal(a.data.stds, b.data.stds)
    done = [u.done for u in updates]
    assert done == sorted(done) and updates[0].done == 0 and updates[-1] == ProgressUpdate(1037, 1037, True)
    # 16 chunks of the first PUB, 1 of the second, plus the first and final updates
    assert len(updates) >= 10 and all(u.total == 1037 for u in updates)


async def test_seeded_sampler_sweep_in_chunks_draws_the_same_bits() -> None:
    circuit = ansatz(4, 2, measure=True)
    values = grid(300, circuit.num_parameters, seed=3)
    results = []
    for service in (LocalService(), LocalService(chunk_bindings=7)):
        async with Session(service=service) as session:
            job = Sampler(session=session, options=Options(seed=99)).run([(circuit, values, 50)])
            progress = job.progress()
            result = await job
            assert progress.snapshot() == ProgressUpdate(300, 300, True)
        results.append(result[0].data.meas)
    assert np.array_equal(results[0].array, results[1].array)
    assert results[0].array.shape == (300, 50, 1)


async def test_async_iteration_ends_with_the_final_update() -> None:
    circuit = ansatz(4, 2)
    values = grid(400, circuit.num_parameters)
    async with Session(service=LocalService(chunk_bindings=50)) as session:
        job = Estimator(session=session).run([(circuit, SparsePauliOp("ZZZZ"), values)])
        seen = [update async for update in job.progress()]
    assert seen[-1] == ProgressUpdate(400, 400, True)
    assert [u.done for u in seen] == sorted(u.done for u in seen)


async def test_progress_asked_after_the_end_is_final_at_once() -> None:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    async with Session() as session:
        job = Estimator(session=session).run([(circuit, SparsePauliOp("Z"))])
        await job
    assert job.progress().snapshot() == ProgressUpdate(1, 1, True)
    assert [u async for u in job.progress()] == [ProgressUpdate(1, 1, True)]


async def test_cancelled_job_ends_its_progress_where_it_stopped() -> None:
    circuit = ansatz(8, 6)
    values = grid(4000, circuit.num_parameters)
    async with Session(service=LocalService(chunk_bindings=20)) as session:
        job = Estimator(session=session).run([(circuit, SparsePauliOp("Z" * 8), values)])
        async for update in job.progress():
            if update.done > 0:
                job.cancel()
                break
        await job.wait()
    final = job.progress().snapshot()
    assert job.cancelled() and final.final and 0 < final.done < 4000


async def test_batch_as_completed_yields_every_job_once_then_ends() -> None:
    circuit = QuantumCircuit(1)
    circuit.ry(0.3, 0)
    async with Batch(max_concurrency=2) as batch:
        estimator = Estimator(session=batch)
        early = [estimator.run([(circuit, SparsePauliOp("Z"))]) for _ in range(5)]
        seen = []
        async for job in batch.as_completed():
            assert job.done()
            seen.append(job)
            if len(seen) == 3:  # jobs submitted while iterating are yielded too
                late = [estimator.run([(circuit, SparsePauliOp("X"))]) for _ in range(4)]
                await batch.close()
    assert sorted(j.job_id for j in seen) == sorted(j.job_id for j in early + late)
    assert len(seen) == len({j.job_id for j in seen}) == 9
    for job in seen:
        assert abs(float((await job)[0].data.evs) - (np.cos(0.3) if job in early else np.sin(0.3))) < 1e-12
