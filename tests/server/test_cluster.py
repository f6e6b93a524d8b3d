"""``aqrt serve`` with a Dask cluster behind it (issue #13 item 4): jobs run whole on the
workers (noisy devices, the executor program), in fair turns for as many slots as there are
workers, a job whose worker is killed mid-run is run again and stored once, a cancelled job stops
on its worker, and ``--workers N`` starts and stops a cluster of its own."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from distributed import Client as DaskClient
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2
from qiskit_ibm_runtime.executor_estimator import Estimator as ExecutorEstimator

from aqrt import Estimator, LocalService, Session
from aqrt.server import ServerConfig

from ..executor.support import ghz_isa
from .server_support import bell, make_config, running_server, slow_circuit

pytestmark = [
    pytest.mark.slow,
    # A worker's first job loads the engine's kernels, or compiles them (a minute and more on a
    # loaded 2-core machine) when numba's cache does not hold them yet.
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("distributed_handshake_may_block"),
    pytest.mark.filterwarnings("ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning"),
]

# About 6-10 s on one worker of this 2-core machine: long enough to be caught running.
SLOW_QUBITS = 20
SLOW_LAYERS = 150


async def _busy_workers(dask: DaskClient) -> list[str]:
    return [address for address, tasks in (await dask.processing()).items() if tasks]


async def _running_threads(dask: DaskClient) -> int:
    counts = await dask.run(lambda dask_worker: len(dask_worker.active_threads))
    return sum(counts.values())


def _live_children() -> list[psutil.Process]:
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                children.append(child)
        except psutil.NoSuchProcess:
            continue
    return children


def _aqrt_job_tasks(dask_scheduler: Any) -> int:
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("aqrt-job-"))


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        make_config(tmp_path, dask_scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(ValueError, match="needs a cluster"):
        make_config(tmp_path, engine_slots=2)
    with pytest.raises(ValueError, match="max_running_per_user must be a positive int"):
        make_config(tmp_path, max_running_per_user=0)
    with pytest.raises(ValueError, match="reference engine"):
        make_config(tmp_path, workers=1, engine="reference")
    assert make_config(tmp_path, engine_slots=1).engine_slots == 1
    assert not ServerConfig.__dataclass_fields__["workers"].default


def test_the_official_client_s_jobs_run_on_the_workers(connect, manila, cluster) -> None:
    """Legacy EstimatorV2 and the executor-based Estimator on a noisy fake device, served with
    ``--dask``: the values are the device's noisy ones (and the mitigated ones at level 1), and
    the legacy job's metadata names the worker that ran it."""
    service = connect(backends=("aqrt_statevector", "fake_manila"), dask_scheduler=cluster.address)
    backend = service.backend("fake_manila")
    circuit = ghz_isa(backend.target)
    observable = SparsePauliOp("ZZZZ").apply_layout(circuit.layout)
    legacy = (
        EstimatorV2(mode=backend, options={"resilience_level": 0, "seed_estimator": 4})
        .run([(circuit, observable)])
        .result()
    )
    assert 0.55 < float(legacy[0].data.evs) < 0.8  # the device's noise (noiseless: 1); Aer: 0.68
    workers = legacy.metadata["executor"]
    assert workers["dask"] == cluster.address and workers["worker"].startswith("tcp://127.0.0.1:")
    options = {"resilience_level": 1, "experimental": {"aqrt_seed": 5}}
    mitigated = ExecutorEstimator(mode=backend, options=options).run([(circuit, observable)]).result()[0].data
    assert abs(float(mitigated.evs) - 1) < 0.15  # TREX on the worker, as in the process (0.96)


@pytest.mark.asyncio
async def test_a_job_whose_worker_is_killed_is_run_again_and_stored_once(tmp_path: Path, cluster) -> None:
    circuit = slow_circuit(SLOW_QUBITS, SLOW_LAYERS)
    observable = "Z" * SLOW_QUBITS
    async with DaskClient(cluster.address, asynchronous=True) as dask:
        pids = await dask.run(os.getpid)
        async with running_server(make_config(tmp_path, dask_scheduler=cluster.address)) as api:
            token = await api.token()
            job_id = await api.submit(token, "estimator", [(circuit, observable)])
            await api.wait_status(token, job_id, "Running")
            async with asyncio.timeout(60):
                while not (busy := await _busy_workers(dask)):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # into the simulation
            os.kill(pids[busy[0]], signal.SIGKILL)  # its nanny starts a new worker
            job = await api.wait_final(token, job_id, timeout=240)
            assert job["state"]["status"] == "Completed", job
            result = await api.result(token, job_id)
            status, listing = await api.call("GET", "/jobs", token)
            assert status == 200 and [item["id"] for item in listing["jobs"]] == [job_id]  # one job, stored once
        assert result.metadata["executor"]["worker"] != busy[0]  # the run that finished was elsewhere
        assert await dask.run_on_scheduler(_aqrt_job_tasks) == 0  # no copy of it left on the cluster
        await dask.wait_for_workers(2, timeout=120)
    async with Session(service=LocalService()) as session:  # the same job in this process
        expected = await Estimator(mode=session).run([(circuit, observable)])
    assert abs(float(result[0].data.evs) - float(expected[0].data.evs)) < 1e-12


@pytest.mark.asyncio
async def test_a_cancelled_job_stops_on_its_worker(tmp_path: Path, cluster) -> None:
    circuit = slow_circuit(SLOW_QUBITS, 4 * SLOW_LAYERS)  # tens of seconds if let run
    async with DaskClient(cluster.address, asynchronous=True) as dask:
        await dask.wait_for_workers(2, timeout=120)
        async with running_server(make_config(tmp_path, dask_scheduler=cluster.address)) as api:
            token = await api.token()
            job_id = await api.submit(token, "estimator", [(circuit, "Z" * SLOW_QUBITS)])
            await api.wait_status(token, job_id, "Running")
            async with asyncio.timeout(60):
                while not await _running_threads(dask):
                    await asyncio.sleep(0.05)
            status, _ = await api.call("POST", f"/jobs/{job_id}/cancel", token)
            assert status == 204
            job = await api.wait_final(token, job_id)
            assert job["state"]["status"] == "Cancelled"
            async with asyncio.timeout(10):  # the worker polls the cancel flag: it stops, not finishes
                while await _running_threads(dask):
                    await asyncio.sleep(0.1)
        assert await dask.run_on_scheduler(_aqrt_job_tasks) == 0


@pytest.mark.asyncio
async def test_jobs_share_the_workers_in_fair_turns(tmp_path: Path, cluster) -> None:
    """Two workers: two slots. With one slot per user, alice's second job waits while her first
    and bob's run side by side."""
    circuit = slow_circuit(SLOW_QUBITS, 4 * SLOW_LAYERS)
    async with DaskClient(cluster.address, asynchronous=True) as dask:
        await dask.wait_for_workers(2, timeout=120)
    config = make_config(tmp_path, dask_scheduler=cluster.address, max_running_per_user=1)
    async with running_server(config) as api:
        alice, bob = await api.token("alice-key"), await api.token("bob-key")
        first = await api.submit(alice, "estimator", [(circuit, "Z" * SLOW_QUBITS)])
        second = await api.submit(alice, "estimator", [(circuit, "Z" * SLOW_QUBITS)])
        other = await api.submit(bob, "estimator", [(circuit, "Z" * SLOW_QUBITS)])
        await api.wait_status(alice, first, "Running")
        await api.wait_status(bob, other, "Running")  # a second slot, at the same time
        await asyncio.sleep(0.5)
        _, waiting = await api.call("GET", f"/jobs/{second}", alice)
        assert waiting["state"]["status"] == "Queued"  # alice holds her one slot
        for token, job_id in ((alice, second), (alice, first), (bob, other)):
            await api.call("POST", f"/jobs/{job_id}/cancel", token)
        for token, job_id in ((alice, second), (alice, first), (bob, other)):
            assert (await api.wait_final(token, job_id))["state"]["status"] == "Cancelled"


@pytest.mark.asyncio
async def test_workers_setting_starts_and_stops_a_cluster_of_its_own(tmp_path: Path) -> None:
    before = {child.pid for child in await asyncio.to_thread(_live_children)}
    async with running_server(make_config(tmp_path, workers=1)) as api:
        token = await api.token()
        job_id = await api.submit(token, "estimator", [(slow_circuit(12, 20), "Z" * 12)])
        job = await api.wait_final(token, job_id, timeout=240)
        assert job["state"]["status"] == "Completed", job
        result = await api.result(token, job_id)
        assert result.metadata["executor"]["worker"].startswith("tcp://127.0.0.1:")
        tiny = await api.submit(token, "estimator", [(bell(), "ZZ")])
        await api.wait_final(token, tiny)
        assert "executor" not in (await api.result(token, tiny)).metadata  # tiny jobs stay on the server
        assert float((await api.result(token, tiny))[0].data.evs) == pytest.approx(1.0)
    left = [child for child in await asyncio.to_thread(_live_children) if child.pid not in before]
    assert not left, left
    assert np.isfinite(float(result[0].data.evs))
