"""The engine's parallel threads pinned one to a CPU (aqrt.engine.threads): when, and only the
runtime's own threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from aqrt.engine.threads import PIN_ENV, pinning_cpus

CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def test_pinned_only_when_the_process_uses_every_cpu_it_may_and_nobody_chose_otherwise() -> None:
    assert pinning_cpus(2, [0, 1], {}) == (0, 1)
    assert pinning_cpus(4, [6, 2, 3, 5], {}) == (2, 3, 5, 6)
    assert pinning_cpus(2, [0, 1], {PIN_ENV: "1"}) == (0, 1)
    assert pinning_cpus(2, [0, 1], {PIN_ENV: "0"}) is None  # the opt-out
    assert pinning_cpus(1, [0], {}) is None  # one thread: nothing to keep apart
    assert pinning_cpus(2, [0, 1, 2, 3], {}) is None  # CPUs left to others (NUMBA_NUM_THREADS=2 of 4)
    for chosen in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY", "KMP_AFFINITY"):
        assert pinning_cpus(2, [0, 1], {chosen: "true"}) is None


PROBE = textwrap.dedent(
    """
    import asyncio, json, os, threading
    import numpy as np
    from qiskit.circuit.library import real_amplitudes
    from qiskit.quantum_info import SparsePauliOp
    from aqrt import Estimator, LocalService, Session

    circuit = real_amplitudes(8, reps=2)
    values = np.linspace(0, 1, 300 * circuit.num_parameters).reshape(300, circuit.num_parameters)

    async def main():
        async with Session(service=LocalService()) as session:
            result = await Estimator(mode=session).run([(circuit, SparsePauliOp("Z" * 8), values)])
        return result[0].data.evs.shape

    shape = asyncio.run(main())
    import numba
    engine = [t.native_id for t in threading.enumerate() if t.name.startswith("aqrt-engine")]
    masks = {int(tid): sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}
    print(json.dumps({
        "shape": list(shape),
        "main": masks[threading.main_thread().native_id],
        "engine": masks[engine[0]],
        "single": sorted(sorted(mask) for tid, mask in masks.items() if len(mask) == 1),
        "threads": numba.get_num_threads(),
    }))
    """
)


def _probe(**environ: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != PIN_ENV}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE], capture_output=True, text=True, timeout=300, env=env | environ
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(len(CPUS) < 2, reason="pinning keeps two or more threads apart: this machine has one CPU")
def test_a_sweep_pins_the_engine_worker_and_numba_s_threads_never_the_user_s() -> None:
    report = _probe()
    assert report["shape"] == [300] and report["threads"] == len(CPUS)
    assert report["main"] == CPUS  # the user's thread keeps every CPU
    assert len(report["engine"]) == 1  # the engine worker runs as numba's thread 0, on the first CPU
    assert report["engine"] == [CPUS[0]]
    assert report["single"] == [[cpu] for cpu in CPUS]  # each of numba's threads on its own CPU


@pytest.mark.skipif(len(CPUS) < 2, reason="pinning keeps two or more threads apart: this machine has one CPU")
@pytest.mark.parametrize("environ", [{PIN_ENV: "0"}, {"NUMBA_NUM_THREADS": "1"}, {"OMP_PROC_BIND": "false"}])
def test_nothing_is_pinned_when_opted_out_or_when_cpus_are_left_to_others(environ: dict[str, str]) -> None:
    report = _probe(**environ)
    assert report["shape"] == [300]
    assert report["main"] == report["engine"] == CPUS
    assert report["single"] == []
