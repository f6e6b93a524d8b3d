"""Where a job runs: each job shape timed inline on the event loop and on the engine worker.

A job whose ``inline_cost`` (``aqrt/backends/local/cost.py``) is within ``INLINE_BUDGET`` runs
inline, on the serial kernels; any other goes to the engine worker thread and back. This times,
in one warm session, each shape below awaited job after job, once with every job forced inline
and once with every job forced to the worker (the backend module's budget set to "everything"
and to "nothing" for the measurement), and says where the cost model sends it.

What the budget trades: a job inline holds the event loop while it runs; on the worker it
costs a trip there and back besides (and for one binding runs the same serial kernels). So a
job should run inline unless it would hold the loop for long: the check column flags a job
sent inline that holds it for more than HOLD_LIMIT_S, and a job sent to the worker that would
have held it for less than a third of that.

    .venv/bin/python benchmarks/inline.py [--jobs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from qiskit.primitives.containers.sampler_pub import SamplerPub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import hardware_efficient_ansatz, random_pauli_observable  # this directory's benchmarks
from ghz import ghz

import aqrt.backends.local.backend as local_backend
from aqrt import Estimator, LocalService, Sampler, Session
from aqrt.backends.local.cost import INLINE_BUDGET, inline_cost
from aqrt.engine import warmup
from aqrt.primitives._pubs import coerce_estimator_pubs

EVERYTHING = 1 << 62
NOTHING = 0
HOLD_LIMIT_S = 1.5e-3  # longest a job may hold the loop inline (a 1 ms slice and some)


def shapes() -> list[tuple[str, str, Any, int | None]]:
    """(label, program, PUB, shots) of each job shape."""
    rng = np.random.default_rng(3)
    out: list[tuple[str, str, Any, int | None]] = []
    for n, layers, bindings in [(4, 2, 1), (8, 4, 1), (12, 4, 1), (12, 8, 1), (14, 4, 1), (6, 4, 10), (6, 4, 50)]:
        circuit = hardware_efficient_ansatz(n, layers)
        values = rng.uniform(-np.pi, np.pi, (bindings, circuit.num_parameters))
        pub = (circuit, random_pauli_observable(n, 20, seed=11), values[0] if bindings == 1 else values)
        out.append((f"estimator n={n} layers={layers} bindings={bindings}", "estimator", pub, None))
    for shots in (1024, 4096, 16384, 65536):
        out.append((f"sampler Bell shots={shots}", "sampler", ghz(2), shots))
    return out


async def _time_jobs(program: str, pub: Any, shots: int | None, jobs: int) -> float:
    """Seconds per job, jobs awaited one after another in a warm session."""
    async with Session(service=LocalService()) as session:
        primitive: Any = Estimator(mode=session) if program == "estimator" else Sampler(mode=session)

        def run() -> Any:
            return primitive.run([pub]) if shots is None else primitive.run([pub], shots=shots)

        for _ in range(5):
            await run()
        start = time.perf_counter()
        for _ in range(jobs):
            await run()
        return (time.perf_counter() - start) / jobs


def time_shape(program: str, pub: Any, shots: int | None, budget: int, jobs: int) -> float:
    local_backend.INLINE_BUDGET = budget  # where every job of this measurement runs
    try:
        gc.collect()
        return asyncio.run(_time_jobs(program, pub, shots, jobs))
    finally:
        local_backend.INLINE_BUDGET = INLINE_BUDGET


def cost_of(program: str, pub: Any, shots: int | None) -> int:
    if program == "estimator":
        return inline_cost(coerce_estimator_pubs([pub], 0.0))
    return inline_cost([SamplerPub.coerce(pub, shots)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=40, help="jobs per measurement (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, inline and worker alternately (default 5)")
    args = parser.parse_args(argv)
    warmup("complex128", ("small", "sweep"))
    print(f"where a job runs: inline budget {INLINE_BUDGET} (inline_cost units); best of {args.rounds} rounds")
    print(f"each round: {args.jobs} jobs awaited one by one in a warm session, all inline, then all on the worker")
    columns = f"{'inline_cost':>11s} {'runs':>7s} {'inline us':>10s} {'worker us':>10s} {'worker/inline':>14s}"
    header = f"{'job':42s} {columns}  check"
    print(header)
    print("-" * len(header))
    wrong = 0
    for label, program, pub, shots in shapes():
        inline, worker = math.inf, math.inf
        for _ in range(args.rounds):
            inline = min(inline, time_shape(program, pub, shots, EVERYTHING, args.jobs))
            worker = min(worker, time_shape(program, pub, shots, NOTHING, args.jobs))
        cost = cost_of(program, pub, shots)
        runs = "inline" if cost <= INLINE_BUDGET else "worker"
        if runs == "inline":
            verdict = "CHECK: holds the loop long" if inline > HOLD_LIMIT_S else "ok"
        else:
            verdict = "CHECK: a needless trip" if inline < HOLD_LIMIT_S / 3 else "ok"
        wrong += verdict != "ok"
        print(
            f"{label:42s} {cost:11d} {runs:>7s} {inline * 1e6:10.1f} {worker * 1e6:10.1f} "
            f"{worker / inline:13.2f}x  {verdict}"
        )
    summary = "every shape where it should be" if not wrong else f"{wrong} to check"
    print(f"hold limit {HOLD_LIMIT_S * 1e3:g} ms: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
