"""Sweep throughput in-process against a Dask cluster on this machine, and the cost per chunk.

Workload: a hardware-efficient ansatz (per layer: ry and rz on every qubit with parameters
shared across layers, then the cx ladder), n = 10 qubits, 4 layers, N bindings in one Estimator
PUB (uniform angles, seed 7), observable Z...Z. Rows (best and median of R timed runs, each
after one untimed run of the same kind; a fresh Session per run, submit -> result):

- ``in-process``           ``LocalService()``: one kernel call over every binding.
- ``in-process, chunked``  the same with its progress watched, which runs it chunk by chunk on
                           the engine worker (chunks of ~250 ms of work; Dask's are ~50 ms).
- ``dask W workers``       ``LocalService(executor=DaskExecutor(client))`` on a ``LocalCluster`` of W worker
                           processes (1 thread each) on 127.0.0.1, started once (its start-up
                           and the workers' kernel warm-up are reported, not timed in the rows).

Cost per chunk: the same three ways, on a 4-qubit, 1-layer ansatz with ``chunk_bindings=1`` and 400
bindings, so nearly all of the time is per-chunk machinery (task submission, pickling, a
scheduler round trip, gather), next to Dask's own floor: 400 no-op tasks. Every Dask result is
checked against the in-process one: bit for bit is silent, equal within 1e-13 prints
``NOT BIT FOR BIT`` (kernels compiled apart on a cold numba cache differ in the last bits),
anything else prints ``DISAGREE:`` and exits 1.

Usage::

    python benchmarks/sweep.py [--quick] [--bindings N] [--workers W] [--repeat R] [--json PATH]

On a 2-core machine the in-process kernels already use both cores, so a 2-worker cluster cannot
beat it there; the rows show what distribution costs, which is what decides how far a cluster
of real machines pays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp

from aqrt import Estimator, LocalService, Session
from aqrt.backends.local import cost as sweep_module
from aqrt.distributed import DaskExecutor, LocalProcessCluster


def _compare(values: np.ndarray, reference: np.ndarray) -> str:
    """'' when equal bit for bit, 'NOT BIT FOR BIT' within 1e-13, else 'DISAGREE'."""
    if np.array_equal(values, reference):
        return ""
    if values.shape == reference.shape and np.allclose(values, reference, rtol=0, atol=1e-13):
        return "NOT BIT FOR BIT"
    return "DISAGREE"


def ansatz(n: int, layers: int) -> QuantumCircuit:
    theta = ParameterVector("t", 2 * n)
    circuit = QuantumCircuit(n)
    for _ in range(layers):
        for q in range(n):
            circuit.ry(theta[q], q)
            circuit.rz(theta[n + q], q)
        for q in range(n - 1):
            circuit.cx(q, q + 1)
    return circuit


async def timed_job(service: LocalService, pub: Any, *, watch: bool) -> tuple[float, Any, Any]:
    async with Session(service=service) as session:
        started = time.perf_counter()
        job = Estimator(session=session).run([pub])
        if watch:
            job.progress()
        result = await job
        return time.perf_counter() - started, result[0].data.evs, result.metadata.get("executor")


async def measure(service: LocalService, pub: Any, repeat: int, *, watch: bool = False) -> dict[str, Any]:
    await timed_job(service, pub, watch=watch)  # warm-up of the same kind
    times, evs, executor = [], None, None
    for _ in range(repeat):
        seconds, evs, executor = await timed_job(service, pub, watch=watch)
        times.append(seconds)
    return {"times": times, "best": min(times), "median": statistics.median(times), "evs": evs, "executor": executor}


def _noop(x: int) -> int:
    return x


async def dask_floor(client: Any, tasks: int, repeat: int) -> float:
    """Best seconds per task of ``tasks`` no-op tasks (unique keys), gathered as they finish."""
    from distributed import as_completed

    best = float("inf")
    for _ in range(repeat + 1):
        started = time.perf_counter()
        futures = [client.submit(_noop, i, pure=False) for i in range(tasks)]
        async for future in as_completed(futures):
            await future
        best = min(best, (time.perf_counter() - started) / tasks)
    return best


async def run(bindings: int, workers: int, repeat: int, address: str) -> dict[str, Any]:
    from distributed import Client

    circuit = ansatz(10, 4)
    values = np.random.default_rng(7).uniform(-np.pi, np.pi, size=(bindings, circuit.num_parameters))
    pub = (circuit, SparsePauliOp("Z" * 10), values)
    tiny = ansatz(4, 1)  # big enough not to run inline on the loop, microseconds per binding
    tiny_pub = (tiny, SparsePauliOp("ZZZZ"), np.random.default_rng(1).uniform(size=(400, tiny.num_parameters)))

    rows: dict[str, Any] = {}
    rows["in-process"] = await measure(LocalService(), pub, repeat)
    rows["in-process, chunked"] = await measure(LocalService(), pub, repeat, watch=True)
    async with Client(address, asynchronous=True) as client:
        started = time.perf_counter()
        rows[f"dask {workers} workers"] = await measure(LocalService(executor=DaskExecutor(client)), pub, repeat)
        rows[f"dask {workers} workers"]["first_job_seconds"] = time.perf_counter() - started
        per_chunk = {
            "in-process, chunked": await measure(LocalService(chunk_bindings=1), tiny_pub, repeat, watch=True),
            f"dask {workers} workers": await measure(
                LocalService(executor=DaskExecutor(client), chunk_bindings=1), tiny_pub, repeat
            ),
        }
        floor = await dask_floor(client, 400, repeat)
    per_chunk["in-process"] = await measure(LocalService(), tiny_pub, repeat)
    chunks = rows[f"dask {workers} workers"]["executor"]["chunks"]
    from aqrt.backends.local.cost import PROGRESS_CHUNK_SECONDS
    from aqrt.engine import lower_circuit

    ops = len(lower_circuit(circuit).ops)
    local_chunks = -(-bindings // sweep_module.chunk_size(10, ops, seconds=PROGRESS_CHUNK_SECONDS))
    return {
        "rows": rows,
        "per_chunk": per_chunk,
        "dask_noop_seconds": floor,
        "chunks": chunks,
        "local_chunks": local_chunks,
        "chunk_bindings": -(-bindings // chunks),
        "tiny_bindings": 400,
    }


def report(outcome: dict[str, Any], config: dict[str, Any]) -> tuple[str, bool]:
    rows, per_chunk = outcome["rows"], outcome["per_chunk"]
    bindings = config["bindings"]
    reference = rows["in-process"]["evs"]
    ok = True
    lines = [
        "aqrt sweep throughput: in-process vs a local Dask cluster",
        f"date        {time.strftime('%Y-%m-%dT%H:%M:%S%z')}",
        f"machine     {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        (
            f"workload    ansatz n=10, 4 layers, {bindings} bindings, Z^10; "
            f"chunks of ~{outcome['chunk_bindings']} bindings "
            f"(about {sweep_module.TARGET_CHUNK_SECONDS * 1e3:.0f} ms of work each); "
            f"best/median of {config['repeat']}"
        ),
        (
            f"cluster     {config['workers']} worker processes x 1 thread, "
            f"started in {config['cluster_start_seconds']:.1f} s"
        ),
        "",
        f"{'row':<24}{'best s':>9}{'median s':>10}{'bindings/s':>13}{'x in-proc':>11}{'chunks':>8}",
        "-" * 75,
    ]
    base = rows["in-process"]["best"]
    for name, row in rows.items():
        chunks = {"in-process": "-", "in-process, chunked": outcome["local_chunks"]}.get(name, outcome["chunks"])
        lines.append(
            f"{name:<24}{row['best']:>9.3f}{row['median']:>10.3f}{bindings / row['best']:>13.0f}"
            f"{base / row['best']:>10.2f}x{chunks!s:>8}"
        )
        verdict = _compare(row["evs"], reference)
        if verdict:
            lines.append(f"{verdict}: {name} against in-process")
            ok = ok and verdict != "DISAGREE"
    lines += [
        "",
        f"cost per chunk (4-qubit PUB, {outcome['tiny_bindings']} bindings, chunk_bindings=1)",
        f"{'row':<24}{'best s':>9}{'per chunk':>12}",
        "-" * 45,
    ]
    tiny_base = per_chunk["in-process"]["best"]
    for name, row in per_chunk.items():
        per = (row["best"] - tiny_base) / outcome["tiny_bindings"] if name != "in-process" else row["best"]
        label = f"{per * 1e6:>9.0f} µs" if name != "in-process" else f"{per * 1e3:>9.2f} ms*"
        lines.append(f"{name:<24}{row['best']:>9.3f}{label:>12}")
        verdict = _compare(row["evs"], per_chunk["in-process"]["evs"])
        if verdict:
            lines.append(f"{verdict}: {name} (tiny) against in-process")
            ok = ok and verdict != "DISAGREE"
    lines.append(f"{'dask no-op task':<24}{'':>9}{outcome['dask_noop_seconds'] * 1e6:>9.0f} µs   (Dask's own floor)")
    lines.append("* the whole unchunked job; per-chunk figures are (row - that) / chunks")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4000 bindings, 1 repetition")
    parser.add_argument("--bindings", type=int, help="bindings in the sweep (default 20000)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    parser.add_argument("--repeat", type=int, help="timed repetitions per row (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    bindings = args.bindings or (4000 if args.quick else 20000)
    repeat = args.repeat or (1 if args.quick else 3)
    started = time.perf_counter()
    with LocalProcessCluster(n_workers=args.workers) as address:
        cluster_start = time.perf_counter() - started
        outcome = asyncio.run(run(bindings, args.workers, repeat, address))
    config = {"bindings": bindings, "workers": args.workers, "repeat": repeat, "cluster_start_seconds": cluster_start}
    text, ok = report(outcome, config)
    print(text)
    if args.json is not None:

        def plain(row: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in row.items() if k != "evs"}

        args.json.write_text(
            json.dumps(
                {
                    "config": config,
                    "rows": {k: plain(v) for k, v in outcome["rows"].items()},
                    "per_chunk": {k: plain(v) for k, v in outcome["per_chunk"].items()},
                    "chunk_bindings": outcome["chunk_bindings"],
                    "dask_noop_seconds": outcome["dask_noop_seconds"],
                },
                indent=2,
                default=str,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
