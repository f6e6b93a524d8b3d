"""Kernels are serialised through one worker, so numba's non-reentrant ``workqueue`` threading
layer survives async jobs and synchronous adapter jobs running at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, threading
    import numba
    from qiskit.circuit.random import random_circuit
    from qiskit.quantum_info import SparsePauliOp
    from aqrt import Batch, Estimator
    from aqrt.primitives import EngineEstimator

    circuit = random_circuit(18, 4, seed=3, max_operands=2)   # wide: amplitude-parallel kernels
    observable = SparsePauliOp("Z" * 18)
    sync_results = []

    def sync_side():
        estimator = EngineEstimator()
        for _ in range(3):
            sync_results.append(float(estimator.run([(circuit, observable)]).result()[0].data.evs))

    async def main():
        thread = threading.Thread(target=sync_side)
        thread.start()
        async with Batch(max_concurrency=3):
            jobs = [Estimator().run([(circuit, observable)]) for _ in range(6)]
            results = [float((await job)[0].data.evs) for job in jobs]
        thread.join()
        values = results + sync_results
        assert max(values) - min(values) < 1e-12, values
        print("layer", numba.threading_layer(), "jobs", len(values))

    asyncio.run(main())
    """
)


def test_concurrent_async_and_sync_jobs_under_the_workqueue_layer() -> None:
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "layer workqueue jobs 9" in completed.stdout
