"""The engine's threads pinned one to a CPU (aqrt.engine.threads) against the system's placement.

The n = 8 sweep job of ``engine.py`` (hardware-efficient ansatz x 4 layers, 1000 bindings, 20
Pauli terms) is run ``--jobs`` times after each of: nothing, a 65 ms sleep, 65 ms of busy
single-threaded Python, ``gc.collect()``. Each setting runs in a fresh process, pinned (the
default) and with ``AQRT_PIN_THREADS=0``, alternately for ``--rounds`` rounds; the table gives
the best and the median job of every (placement, before) pair over all rounds.

Usage::

    python benchmarks/placement.py [--jobs 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
BEFORE = ("nothing", "sleep", "busy", "gc")

CHILD = """
import gc, json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.engine import SWEEP_OBSERVABLE_SEED, aqrt_estimate, hardware_efficient_ansatz
from benchmarks.engine import random_pauli_observable, sweep_values

circuit = hardware_efficient_ansatz(8, 4)
pub = (circuit, random_pauli_observable(8, 20, SWEEP_OBSERVABLE_SEED), sweep_values(circuit, 1000))
for _ in range(3):
    aqrt_estimate(pub)
times = {{}}
for before in {before!r}:
    times[before] = []
    for _ in range({jobs}):
        if before == "sleep":
            time.sleep(0.065)
        elif before == "busy":
            end = time.perf_counter() + 0.065
            while time.perf_counter() < end:
                pass
        elif before == "gc":
            gc.collect()
        times[before].append(aqrt_estimate(pub)[0])
print(json.dumps(times))
"""


def run_child(pinned: bool, jobs: int) -> dict[str, list[float]]:
    env = dict(os.environ)
    env.pop("AQRT_PIN_THREADS", None)
    if not pinned:
        env["AQRT_PIN_THREADS"] = "0"
    code = CHILD.format(root=str(REPO_ROOT), before=BEFORE, jobs=jobs)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for pinned in (True, False):
            label = "pinned" if pinned else "AQRT_PIN_THREADS=0"
            for before, runs in run_child(pinned, args.jobs).items():
                times.setdefault((label, before), []).extend(runs)
    print(f"n = 8 sweep job, 1000 bindings: ms a job, {args.rounds} rounds of {args.jobs} jobs; {os.cpu_count()} CPUs")
    print(f"{'placement':<20}{'before each job':<18}{'best':>8}{'median':>9}{'worst':>9}")
    for (label, before), runs in times.items():
        ms = np.array(runs) * 1e3
        print(f"{label:<20}{before:<18}{ms.min():>8.2f}{np.median(ms):>9.2f}{ms.max():>9.2f}")


if __name__ == "__main__":
    main()
