"""Tiny jobs in the forms users write them: per-job time of aqrt against Aer and Qiskit.

``overhead.py`` times the Estimator on ``(circuit, SparsePauliOp)`` PUBs. Users also pass Pauli
labels (``(circuit, "ZZ")``) and sample small circuits; this times, in one run, 2000 jobs of each
form gathered in a warm Session (``aqrt``), and the same forms as jobs of Aer's and Qiskit's V2
primitives, each ``run()`` then every ``result()``:

- ``estimator, SparsePauliOp``: ``(bell, SparsePauliOp("ZZ"))``
- ``estimator, label``: ``(bell, "ZZ")``
- ``sampler, Bell 100 shots``: ``bell`` with ``measure_all()``, ``shots=100``, unseeded

The same forms also run through ``aqrt.sync`` (a script's blocking primitives, in a ``with
Session(...)`` block) and through ``aqrt.primitives.EngineEstimator`` / ``EngineSampler``
(Qiskit's synchronous V2 interface, no session) exactly as the peers run: every ``run()``,
then every ``result()``.

Rows are interleaved (every contender and form once per round), best of the rounds; ratios are
the peer's per-job time over aqrt's (the gathered async row), and for the peers also over
``aqrt.sync``'s.

    .venv/bin/python benchmarks/tiny_jobs.py [--jobs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qiskit import QuantumCircuit
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

import aqrt.engine
import aqrt.sync
from aqrt import Estimator, Sampler, Session
from aqrt.primitives import EngineEstimator, EngineSampler

try:
    from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2
    from qiskit_aer.primitives import SamplerV2 as AerSamplerV2
except ImportError:  # pragma: no cover - Aer is the optional "bench" extra
    AerEstimatorV2 = AerSamplerV2 = None

SHOTS = 100
PEER_JOBS = 300  # the peers take milliseconds a job: fewer of them


def forms() -> dict[str, tuple[str, Any]]:
    """Each form: (program, PUB)."""
    bell = QuantumCircuit(2, name="bell")
    bell.h(0)
    bell.cx(0, 1)
    measured = bell.copy()
    measured.measure_all()
    return {
        "estimator, SparsePauliOp": ("estimator", (bell, SparsePauliOp("ZZ"))),
        "estimator, label": ("estimator", (bell, "ZZ")),
        f"sampler, Bell {SHOTS} shots": ("sampler", measured),
    }


async def _aqrt(program: str, pub: Any, jobs: int) -> float:
    async with Session(backend="aqrt_statevector"):
        primitive: Any = Estimator() if program == "estimator" else Sampler()
        kwargs = {} if program == "estimator" else {"shots": SHOTS}
        for _ in range(50):
            await primitive.run([pub], **kwargs)
        gc.collect()
        start = time.perf_counter()
        await asyncio.gather(*[primitive.run([pub], **kwargs) for _ in range(jobs)])
        return (time.perf_counter() - start) / jobs


def _peer(primitive: Any, program: str, pub: Any, jobs: int) -> float:
    kwargs = {} if program == "estimator" else {"shots": SHOTS}
    for _ in range(10):
        primitive.run([pub], **kwargs).result()
    gc.collect()
    start = time.perf_counter()
    for job in [primitive.run([pub], **kwargs) for _ in range(jobs)]:
        job.result()
    return (time.perf_counter() - start) / jobs


def _aqrt_sync(program: str, pub: Any, jobs: int) -> float:
    with aqrt.sync.Session(backend="aqrt_statevector"):
        primitive: Any = aqrt.sync.Estimator() if program == "estimator" else aqrt.sync.Sampler()
        return _peer(primitive, program, pub, jobs)


SYNC = "aqrt.sync Session"


def contenders(jobs: int) -> dict[str, Callable[[str, Any], float]]:
    out: dict[str, Callable[[str, Any], float]] = {
        "aqrt Session (gathered)": lambda program, pub: asyncio.run(_aqrt(program, pub, jobs)),
        SYNC: lambda program, pub: _aqrt_sync(program, pub, jobs // 2),
        "aqrt Engine primitive": lambda program, pub: _peer(
            EngineEstimator() if program == "estimator" else EngineSampler(), program, pub, jobs // 2
        ),
    }
    if AerEstimatorV2 is not None:
        out["Aer V2"] = lambda program, pub: _peer(
            AerEstimatorV2() if program == "estimator" else AerSamplerV2(), program, pub, PEER_JOBS
        )
    out["Qiskit Statevector"] = lambda program, pub: _peer(
        StatevectorEstimator() if program == "estimator" else StatevectorSampler(), program, pub, PEER_JOBS
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="aqrt jobs per measurement (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    aqrt.engine.warmup("complex128", ("small",))  # a long-running process has loaded them
    runs = contenders(args.jobs)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for form, (program, pub) in forms().items():
            for name, run in runs.items():
                times.setdefault((form, name), []).append(run(program, pub))
    print(f"per-job time, best of {args.rounds} interleaved rounds (aqrt: {args.jobs} jobs; peers: {PEER_JOBS})")
    print(f"{'form':26s} {'contender':26s} {'us/job':>9s} {'x aqrt':>8s} {'x sync':>8s}")
    for form in forms():
        base = min(times[(form, "aqrt Session (gathered)")])
        sync = min(times[(form, SYNC)])
        for name in runs:
            best = min(times[(form, name)])
            over_sync = f"{best / sync:7.2f}x" if not name.startswith("aqrt") else ""
            print(f"{form:26s} {name:26s} {best * 1e6:9.1f} {best / base:7.2f}x {over_sync:>8s}")
    aqrt.sync.shutdown()


if __name__ == "__main__":
    main()
