"""First run: how long a newcomer's first job waits for the engine's kernels (issue #15).

Every figure comes from a fresh Python process (``sys.executable``); "cold" processes get an
empty numba cache of their own (``NUMBA_CACHE_DIR``, a temporary folder, set for the child
only), "cached" ones reuse the folder a cold one filled:

- ``bell cold``: ``import aqrt`` and a first Bell Estimator job (H, CX; ``ZZ``) in an
  ``async with Session`` on an empty cache: what a fresh install's first job costs (it runs
  inline on the numpy interpreter: numba is not imported)
- ``bell cached``: the same in a second process, once the cache holds the kernels
- ``sampler cold``: a first Bell Sampler job (1024 shots) on an empty cache
- ``12q cold`` / ``12q cached``: a first 12-qubit job (an RY layer and a CX chain): wider than
  the numpy interpreter takes, so it waits for numba and the ``small`` tier
- ``20q cold`` / ``20q cached``: the same for a first 20-qubit job (not Clifford, so the numba
  engine's wide-state path runs it, not stim)
- ``warmup cold``: ``aqrt.engine.warmup()``, every tier (what ``aqrt warmup`` prepays)

Each row reports the process's wall time (interpreter start and exit included), ``import
aqrt``, the first job from ``run()`` to its result, the time from ``import aqrt`` done to the
result (the ``Session`` and the job), the process's CPU time up to the result (compiling is
single-threaded CPU work: on a shared, busy machine this is the steadier figure), whether numba
was imported, and the compile notices the engine logged.
``--tiers`` adds each kernel tier alone on an empty cache (``warmup(dtype, [tier])``, the tiers
it requires included), for both precisions.

Command (from the repository root; about 2 minutes cold on a 2-core machine, most of it in
``warmup cold``)::

    .venv/bin/python benchmarks/first_run.py [--tiers] [--skip-warmup] [--bell-only] [--json PATH]

``--bell-only``: the Bell rows only (a few seconds: issue #15's two targets).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"bell cold": 10.0, "bell cached": 0.5}  # issue #15: first job <= 10 s fresh, <= 0.5 s cached

_JOB = """
import time
start = time.perf_counter()
import asyncio, json, logging, sys
import aqrt
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
imported = time.perf_counter()

notices = []
class Keep(logging.Handler):
    def emit(self, record):
        notices.append(record.getMessage())
logging.getLogger("aqrt.engine").addHandler(Keep(logging.INFO))
logging.getLogger("aqrt.engine").setLevel(logging.INFO)

def circuit_of(n):
    circuit = QuantumCircuit(n)
    if n == 2:
        circuit.h(0)
        circuit.cx(0, 1)
    else:
        for q in range(n):
            circuit.ry(0.1 + 0.05 * q, q)
        for q in range(n - 1):
            circuit.cx(q, q + 1)
    return circuit

async def main(n, program):
    async with aqrt.Session(service=aqrt.LocalService(), max_time=3600):
        circuit = circuit_of(n)
        submitted = time.perf_counter()
        if program == "sampler":
            circuit.measure_all()
            result = await aqrt.Sampler().run([circuit], shots=1024)
            value = result[0].data.meas.get_counts()
        else:
            result = await aqrt.Estimator().run([(circuit, SparsePauliOp("Z" * n))])
            value = float(result[0].data.evs)
        done = time.perf_counter()
    return value, submitted, done

value, submitted, done = asyncio.run(main(NUM_QUBITS, PROGRAM))
print(json.dumps({
    "import_s": imported - start, "job_s": done - submitted, "to_result_s": done - start,
    "after_import_s": done - imported, "cpu_s": time.process_time(), "value": value,
    "numba": "numba" in sys.modules, "notices": notices,
}))
"""

_WARMUP = """
import time
start = time.perf_counter()
import json, logging, sys
notices = []
class Keep(logging.Handler):
    def emit(self, record):
        notices.append(record.getMessage())
logging.getLogger("aqrt.engine").addHandler(Keep(logging.INFO))
logging.getLogger("aqrt.engine").setLevel(logging.INFO)
from aqrt.engine import warmup
imported = time.perf_counter()
warmup(DTYPE) if TIERS is None else warmup(DTYPE, TIERS)
done = time.perf_counter()
print(json.dumps({
    "import_s": imported - start, "job_s": done - imported, "to_result_s": done - start,
    "after_import_s": done - imported, "cpu_s": time.process_time(), "numba": "numba" in sys.modules,
    "notices": notices,
}))
"""


def _child(code: str, cache: Path) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with ``cache`` as its numba cache; its JSON line plus
    the process's wall time."""
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        check=False,
        timeout=1800,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the child process failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = wall
    print(f"  {figures}", file=sys.stderr, flush=True)  # as rows finish: a long run shows progress
    return figures


def _job(num_qubits: int, program: str = "estimator") -> str:
    return _JOB.replace("NUM_QUBITS", str(num_qubits)).replace("PROGRAM", repr(program))


def _warmup(dtype: str, tiers: list[str] | None) -> str:
    return _WARMUP.replace("DTYPE", repr(dtype)).replace("TIERS", repr(tiers))


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(tiers: bool, skip_warmup: bool, bell_only: bool = False) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="aqrt-first-run-") as scratch:
        bell = Path(scratch) / "bell"
        rows["bell cold"] = _child(_job(2), bell)
        rows["bell cached"] = _child(_job(2), bell)
        rows["sampler cold"] = _child(_job(2, "sampler"), Path(scratch) / "sampler")
        if bell_only:
            return _outcome(rows)
        twelve = Path(scratch) / "twelve"
        rows["12q cold"] = _child(_job(12), twelve)
        rows["12q cached"] = _child(_job(12), twelve)
        wide = Path(scratch) / "wide"
        rows["20q cold"] = _child(_job(20), wide)
        rows["20q cached"] = _child(_job(20), wide)
        if not skip_warmup:
            rows["warmup cold"] = _child(_warmup("complex128", None), Path(scratch) / "all")
        if tiers:
            for dtype in ("complex128", "complex64"):
                for tier in ("small", "ops", "sweep", "wide", "noisy"):
                    rows[f"tier {tier} {dtype}"] = _child(_warmup(dtype, [tier]), Path(scratch) / f"{tier}-{dtype}")
    return _outcome(rows)


def _outcome(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "rows": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_after": _load(),
        },
    }


def report(outcome: dict[str, Any]) -> str:
    header = f"{'row':<24} {'wall s':>7} {'import s':>8} {'job s':>7} {'after import s':>14} {'cpu s':>7} {'numba':>5}"
    lines = [f"{header}  compile notices", "-" * 120]
    for name, row in outcome["rows"].items():
        notices = "; ".join(row["notices"]) or "-"
        times = (
            f"{row['wall_s']:>7.2f} {row['import_s']:>8.2f} {row['job_s']:>7.3f} {row['after_import_s']:>14.3f}"
            f" {row['cpu_s']:>7.2f} {'yes' if row['numba'] else 'no':>5}"
        )
        lines.append(f"{name:<24} {times}  {notices}")
    machine = outcome["machine"]
    lines.append(
        f"\n{machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, load {machine['load_after']}"
    )
    lines.append(
        "wall = the process from start to exit; job = run() -> result (warmup rows: the warmup call); "
        "after import = import aqrt done -> result (the Session and the job); "
        "cpu = the process's CPU time to the result (what a busy machine does not inflate); "
        "numba = whether the process imported numba"
    )
    for name, goal in TARGETS.items():
        if name in outcome["rows"]:
            row = outcome["rows"][name]
            met = "met" if row["to_result_s"] <= goal else "NOT met"
            lines.append(
                f"{name}: import + first job {row['to_result_s']:.2f} s, after import {row['after_import_s']:.3f} s "
                f"(issue #15's goal <= {goal} s: {met})"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", action="store_true", help="also compile each kernel tier alone on an empty cache")
    parser.add_argument("--skip-warmup", action="store_true", help="skip the cold warmup() of every tier")
    parser.add_argument("--bell-only", action="store_true", help="only the Bell rows (cold, cached, sampler cold)")
    parser.add_argument("--json", type=Path, help="write every figure to this file as JSON")
    args = parser.parse_args()
    outcome = run(args.tiers, args.skip_warmup, args.bell_only)
    print(report(outcome))
    if args.json is not None:
        args.json.write_text(json.dumps(outcome, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
