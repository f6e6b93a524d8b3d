"""Sweeps on a real Dask cluster on 127.0.0.1 (scheduler and 2 nanny-supervised worker
processes in a child process tree): same results as in-process bit for bit, cancellation that
leaves nothing running, a worker killed mid-sweep, and no process left afterwards."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np
import pytest
from distributed import Client
from qiskit.quantum_info import SparsePauliOp

from aqrt import Estimator, LocalService, Options, Sampler, Session
from aqrt.distributed import DaskExecutor

from ..sweeps import ansatz, grid, observables

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.usefixtures("distributed_handshake_may_block")]


async def _in_process(pubs, program: str = "estimator", seed: int | None = None):
    primitive = Estimator if program == "estimator" else Sampler
    async with Session(service=LocalService()) as session:
        return await primitive(session=session, options=Options(seed=seed)).run(pubs)


def _assert_same_estimates(expected: np.ndarray, actual: np.ndarray) -> None:
    """Equal to the last bits when both processes run the same compiled kernels (numba's cache
    warm); on a cold cache, kernels compiled separately (fastmath reductions inlined differently)
    may differ by ~1e-15, so that is the bound. Seeded noise and samples are equal bit for bit."""
    assert expected.shape == actual.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-13)


async def _processing(client: Client) -> int:
    return sum(len(tasks) for tasks in (await client.processing()).values())


async def test_10k_binding_sweep_equals_the_in_process_result(cluster) -> None:
    circuit = ansatz(6, 3)
    values = grid(10_000, circuit.num_parameters)
    obs = [[o] for o in observables(6)]
    pubs = [(circuit, obs, values, 0.002), (circuit, SparsePauliOp("Z" * 6), values[:3000])]
    expected = await _in_process(pubs, seed=5)
    async with Client(cluster.address, asynchronous=True) as client:
        service = LocalService(executor=DaskExecutor(client), chunk_bindings=1000)
        updates = []
        async with Session(service=service) as session:
            job = Estimator(session=session, options=Options(seed=5)).run(pubs)
            job.add_progress_callback(updates.append)
            result = await job
        assert result.metadata["executor"]["chunks"] == 13
        assert await _processing(client) == 0
        assert set((await client.run(_engine_warm)).values()) == {True}  # the warm-up plugin ran
    for a, b in zip(expected, result, strict=True):
        _assert_same_estimates(a.data.evs, b.data.evs)
    assert updates[-1].done == updates[-1].total == 13_000 and len(updates) >= 13


async def test_seeded_sampler_sweep_matches_bit_for_bit(cluster) -> None:
    circuit = ansatz(5, 2, measure=True)
    values = grid(2000, circuit.num_parameters, seed=11)
    pubs = [(circuit, values, 64), (circuit, values[:10], 1000)]
    expected = await _in_process(pubs, "sampler", seed=2024)
    async with Client(cluster.address, asynchronous=True) as client:
        async with Session(service=LocalService(executor=DaskExecutor(client), chunk_bindings=300)) as session:
            result = await Sampler(session=session, options=Options(seed=2024)).run(pubs)
    for a, b in zip(expected, result, strict=True):
        assert np.array_equal(a.data.meas.array, b.data.meas.array)


async def test_scheduler_address_opens_and_closes_its_own_client(cluster) -> None:
    circuit = ansatz(4, 2)
    values = grid(500, circuit.num_parameters)
    expected = await _in_process([(circuit, SparsePauliOp("ZZZZ"), values)])
    executor = DaskExecutor(cluster.address)
    async with LocalService(executor=executor, chunk_bindings=100) as service:
        async with Session(service=service) as session:
            result = await Estimator(session=session).run([(circuit, SparsePauliOp("ZZZZ"), values)])
        opened = executor._impl
        assert result.metadata["executor"]["chunks"] == 5
    assert executor._impl is None and opened.client.status == "closed"
    assert np.array_equal(expected[0].data.evs, result[0].data.evs)


async def test_small_jobs_stay_in_process(cluster) -> None:
    circuit = ansatz(3, 1)
    async with Client(cluster.address, asynchronous=True) as client:
        async with Session(service=LocalService(executor=DaskExecutor(client))) as session:
            result = await Estimator(session=session).run([(circuit, SparsePauliOp("ZZZ"), grid(10, 6))])
    assert "executor" not in result.metadata


async def test_cancelling_the_job_cancels_the_cluster_work(cluster) -> None:
    circuit = ansatz(10, 6)
    values = grid(20_000, circuit.num_parameters)
    async with Client(cluster.address, asynchronous=True) as client:
        async with Session(service=LocalService(executor=DaskExecutor(client), chunk_bindings=100)) as session:
            job = Estimator(session=session).run([(circuit, SparsePauliOp("Z" * 10), values)])
            async for update in job.progress():
                if update.done >= 200:
                    break
            assert await _processing(client) > 0
            job.cancel()
            await job.wait()
        assert job.cancelled()
        for _ in range(100):  # the scheduler forgets the tasks within moments
            if not await client.run_on_scheduler(_aqrt_tasks):
                break
            await asyncio.sleep(0.05)
        assert await client.run_on_scheduler(_aqrt_tasks) == 0
        assert await _processing(client) == 0


def _engine_warm() -> bool:
    from aqrt.engine._warmup import is_warm

    return is_warm("complex128")


def _aqrt_tasks(dask_scheduler) -> int:
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("aqrt-chunk-"))


async def test_a_worker_killed_mid_sweep_loses_no_binding(cluster) -> None:
    # 12 qubits and 500 bindings a chunk: each chunk lasts tens of milliseconds, so that workers
    # are still busy once the first 1000 bindings are reported (9 qubits' chunks of 250 were over
    # in a millisecond or two, and the sweep was done before a worker could be killed)
    circuit = ansatz(12, 4)
    values = grid(20_000, circuit.num_parameters, seed=21)
    pubs = [(circuit, SparsePauliOp("Z" * 12), values)]
    expected = await _in_process(pubs)
    async with Client(cluster.address, asynchronous=True) as client:
        pids = await client.run(os.getpid)
        async with Session(service=LocalService(executor=DaskExecutor(client), chunk_bindings=500)) as session:
            job = Estimator(session=session).run(pubs)
            killed = False
            async for update in job.progress():
                if update.done >= 1000 and not killed:
                    busy = [addr for addr, tasks in (await client.processing()).items() if tasks]
                    if busy:
                        os.kill(pids[busy[0]], signal.SIGKILL)  # its nanny starts a new worker
                        killed = True
            result = await job
        assert killed
        _assert_same_estimates(expected[0].data.evs, result[0].data.evs)
        await client.wait_for_workers(2, timeout=60)
        assert set((await client.run(os.getpid)).values()) != set(pids.values())
        for _ in range(600):  # the replacement warms up as it joins (the plugin), not on first use
            if set((await client.run(_engine_warm)).values()) == {True}:
                break
            await asyncio.sleep(0.1)
        assert set((await client.run(_engine_warm)).values()) == {True}


async def test_routed_pubs_run_on_the_cluster_as_whole_chunks(cluster) -> None:
    """A dynamic PUB and a wide Clifford PUB beside a sweep: each runs as one chunk on a worker,
    with the same draws as in this process."""
    from qiskit import QuantumCircuit

    dynamic = QuantumCircuit(2, 2)
    dynamic.h(0)
    dynamic.measure(0, 0)
    with dynamic.if_test((dynamic.clbits[0], 1)):
        dynamic.x(1)
    dynamic.measure(1, 1)
    ghz = QuantumCircuit(40)
    ghz.h(0)
    for qubit in range(39):
        ghz.cx(qubit, qubit + 1)
    ghz.measure_all()
    sweep = ansatz(5, 2, measure=True)
    pubs = [(sweep, grid(900, sweep.num_parameters, seed=3), 32), (dynamic, None, 400), (ghz, None, 300)]
    expected = await _in_process(pubs, "sampler", seed=77)
    async with Client(cluster.address, asynchronous=True) as client:
        async with Session(service=LocalService(executor=DaskExecutor(client), chunk_bindings=300)) as session:
            result = await Sampler(session=session, options=Options(seed=77)).run(pubs)
    assert result.metadata["executor"]["chunks"] == 3 + 1 + 1
    assert [r.metadata["simulator_metadata"]["method"] for r in result] == ["statevector", "dynamic", "stabilizer"]
    for a, b in zip(expected, result, strict=True):
        assert np.array_equal(a.join_data().array, b.join_data().array)
