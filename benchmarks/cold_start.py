"""The n = 8 sweep of ``engine.py`` against the naive numba loop, started warm and started cold.

``engine.py`` runs ``gc.collect()`` before every contender's run, so that no contender pays for
another's garbage. In its process (Qiskit, Aer, qsim, PennyLane and qulacs loaded) a collection
walks the whole heap for tens of milliseconds, and a short kernel right after it runs slower: the
same native code, not Python, not page faults (measured: the numba entry point alone, 0 minor
faults). A pause (a sleep) slows it too. Both contenders pay about the same absolute time, so the
faster one loses more of its ratio (``kernel_ramp.py`` looks at the slowdown call by call).
This times both contenders, in interleaved rounds, under three conditions, each applied in the
contender's own process right before its timed call:

- ``back to back``: the same run, untimed, right before;
- ``after gc.collect()``: ``engine.py``'s condition;
- ``after a 20 ms sleep``: an idle pause.

Each contender starts 0.1 s after the other's call returned: OpenMP's threads (libgomp's, which
both use) spin for a while after a parallel loop, and a contender started right after the other
shares the CPUs with those spinning threads (measured: the naive loop 16 -> 28 ms right after an
aqrt job).

aqrt runs as ``engine.py`` runs it (a fresh ``Session`` and ``Estimator`` per job, timed from
``run()`` to the result); the naive loop in a process of its own, as there.

    .venv/bin/python benchmarks/cold_start.py [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine  # this directory's benchmarks

N, LAYERS, BINDINGS, TERMS = 8, 4, 1000, 20
SETTLE_S = 0.1  # between one contender's call and the next one's (see above)
BACK_TO_BACK = "back to back"
CONDITIONS: dict[str, Callable[[Callable[[], Any]], Any]] = {
    BACK_TO_BACK: lambda run: run(),
    "after gc.collect()": lambda run: gc.collect(),
    "after a 20 ms sleep": lambda run: time.sleep(0.02),
}


def naive_after(condition: str, values: np.ndarray, terms: tuple[np.ndarray, ...]) -> float:
    """The naive loop's time after ``condition`` (run in the naive loop's own process)."""

    def run() -> float:
        return engine.naive_sweep(N, LAYERS, values, terms)[0]

    CONDITIONS[condition](run)
    return run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per condition (default 15)")
    args = parser.parse_args()
    circuit = engine.hardware_efficient_ansatz(N, LAYERS)
    observable = engine.random_pauli_observable(N, TERMS, engine.SWEEP_OBSERVABLE_SEED)
    values = engine.sweep_values(circuit, BINDINGS)
    pub = (circuit, observable, values)
    terms = engine.naive_terms(observable)
    engine.aqrt_estimate((circuit, observable, values[:10]))
    times: dict[tuple[str, str], list[float]] = {}
    meter = engine.CpuMeter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        engine.CpuMeter.helper_pids.append(pool.submit(engine.os.getpid).result())
        pool.submit(naive_after, BACK_TO_BACK, values[:10], terms).result()  # compiles
        for _ in range(args.rounds):
            for condition, before in CONDITIONS.items():
                time.sleep(SETTLE_S)
                before(lambda: engine.aqrt_estimate(pub))
                times.setdefault(("aqrt", condition), []).append(engine.aqrt_estimate(pub)[0])
                time.sleep(SETTLE_S)
                naive = pool.submit(naive_after, condition, values, terms).result()
                times.setdefault(("naive", condition), []).append(naive)
    others = meter.stop()["others_share"]
    print(f"n = {N} sweep, {BINDINGS} bindings, {TERMS} terms; {args.rounds} interleaved rounds; ms")
    print(f"other processes used {others:.0%} of the machine meanwhile")
    print(f"{'condition':22s} {'aqrt best':>10s} {'median':>8s} {'naive best':>11s} {'median':>8s} {'naive/aqrt':>11s}")
    for condition in CONDITIONS:
        aqrt, naive = times[("aqrt", condition)], times[("naive", condition)]
        print(
            f"{condition:22s} {min(aqrt) * 1e3:10.2f} {statistics.median(aqrt) * 1e3:8.2f} "
            f"{min(naive) * 1e3:11.2f} {statistics.median(naive) * 1e3:8.2f} {min(naive) / min(aqrt):10.2f}x"
        )
    print("(naive/aqrt: the ratio of best times, as engine.py's targets quote it)")


if __name__ == "__main__":
    main()
