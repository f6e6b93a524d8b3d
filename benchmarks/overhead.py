"""Per-job runtime overhead: aqrt against Qiskit's and Aer's V2 Estimators.

Every contender runs N one-PUB Estimator jobs on a trivial circuit, so the time measured is
almost all runtime overhead (job objects, queueing, thread hops, result containers), not
simulation. Two circuits are measured:

- ``h``:    1 qubit, one H gate, observable ``Z``  (exact value 0)
- ``bell``: 2 qubits, H + CX,    observable ``ZZ`` (exact value 1)

Contenders (each warmed up with a few untimed jobs, then timed ``--repeat`` times; the best
and the median repetition are reported):

- ``aqrt Session``     ``async with Session(backend="aqrt_statevector")``: submit all N jobs
                       (``Estimator().run([pub])``), then ``await asyncio.gather(*jobs)``.
- ``aqrt Batch``       the same inside ``aqrt.Batch`` (default ``max_concurrency``).
- ``aqrt sequential``  in a Session, ``await`` each job before submitting the next (latency).
- ``aqrt job mode, sequential``  the same without a session (``Estimator(mode=backend)``).
- ``Qiskit StatevectorEstimator``  N x ``est.run([pub])``, then ``.result()`` on each.
- ``Aer EstimatorV2``  (``qiskit_aer.primitives.EstimatorV2``) the same.

The timed span is first submit -> last result; session open/close is outside it. Per-job
time = span / N. Every result of the last repetition is checked against the exact
``Statevector`` value (tolerance 1e-12). Each row also reports the process CPU time (every
thread) of its best run per job, which other processes on shared CPUs inflate less than wall
time, and the time the garbage collector paused the process in that run, per job. aqrt's
small-state kernels are loaded before anything is timed: the rows are the steady
state (a process's first jobs are ``benchmarks/first_run.py``'s subject).

The report ends with two floors. The compute floor: the same PUB computed synchronously, with no
job machinery. The asyncio floor: ``asyncio.gather`` of N awaitables that each wait on a future
set later (as a job handle, which is not a future, waits), with nothing else: what the gathered
rows cost in asyncio alone, whatever runs the jobs.

Usage::

    python benchmarks/overhead.py [--jobs N] [--repeat R] [--json PATH] [--profile PATH]
    python benchmarks/overhead.py --lines N   # Python lines a job executes, by layer (no timing)

The script is standalone: it puts the repository root on ``sys.path`` so the working tree's
``aqrt`` is measured even when it is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np
import qiskit
from qiskit import QuantumCircuit
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, Statevector

import aqrt
from aqrt import Batch, Estimator, Session

try:
    import qiskit_aer
    from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2
except ImportError:  # pragma: no cover - Aer is the optional "bench" extra
    qiskit_aer = None
    AerEstimatorV2 = None

TOLERANCE = 1e-12
BACKEND = "aqrt_statevector"
AQRT_BASELINE = "aqrt Session"  # the row every ratio is taken against


# -- workloads ------------------------------------------------------------------------------------


def make_pubs() -> dict[str, tuple[QuantumCircuit, SparsePauliOp]]:
    h = QuantumCircuit(1, name="h")
    h.h(0)
    bell = QuantumCircuit(2, name="bell")
    bell.h(0)
    bell.cx(0, 1)
    return {"h": (h, SparsePauliOp("Z")), "bell": (bell, SparsePauliOp("ZZ"))}


def exact_value(pub: tuple[QuantumCircuit, SparsePauliOp]) -> float:
    circuit, observable = pub
    return float(np.real(Statevector(circuit).expectation_value(observable)))


def evs_of(results: list[Any]) -> np.ndarray:
    """The scalar expectation value of every one-PUB result, as a flat array."""
    return np.array([float(result[0].data.evs) for result in results])


# -- contenders: each returns (seconds from first submit to last result, results) ------------------


async def _aqrt_concurrent(session_cls: type[Session], pub: Any, n: int) -> tuple[float, list[Any]]:
    async with session_cls(backend=BACKEND):
        estimator = Estimator()
        start = time.perf_counter()
        jobs = [estimator.run([pub]) for _ in range(n)]
        submitted = time.perf_counter()
        results = await asyncio.gather(*jobs)
        elapsed = time.perf_counter() - start
    _submit_phase.append(submitted - start)
    return elapsed, list(results)


async def _aqrt_sequential(pub: Any, n: int) -> tuple[float, list[Any]]:
    async with Session(backend=BACKEND):
        return await _each_awaited(Estimator(), pub, n)


async def _aqrt_job_mode(pub: Any, n: int) -> tuple[float, list[Any]]:
    return await _each_awaited(Estimator(mode=aqrt.LocalService().backend(BACKEND)), pub, n)


async def _each_awaited(estimator: Estimator, pub: Any, n: int) -> tuple[float, list[Any]]:
    results = []
    start = time.perf_counter()
    for _ in range(n):
        results.append(await estimator.run([pub]))
    return time.perf_counter() - start, results


def aqrt_session(pub: Any, n: int) -> tuple[float, list[Any]]:
    return asyncio.run(_aqrt_concurrent(Session, pub, n))


def aqrt_batch(pub: Any, n: int) -> tuple[float, list[Any]]:
    return asyncio.run(_aqrt_concurrent(Batch, pub, n))


def aqrt_sequential(pub: Any, n: int) -> tuple[float, list[Any]]:
    return asyncio.run(_aqrt_sequential(pub, n))


def aqrt_job_mode(pub: Any, n: int) -> tuple[float, list[Any]]:
    return asyncio.run(_aqrt_job_mode(pub, n))


def _blocking_primitive(estimator: Any, pub: Any, n: int) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    jobs = [estimator.run([pub]) for _ in range(n)]
    results = [job.result() for job in jobs]
    elapsed = time.perf_counter() - start
    return elapsed, results


def qiskit_statevector(pub: Any, n: int) -> tuple[float, list[Any]]:
    return _blocking_primitive(StatevectorEstimator(), pub, n)


def aer_estimator(pub: Any, n: int) -> tuple[float, list[Any]]:
    assert AerEstimatorV2 is not None
    return _blocking_primitive(AerEstimatorV2(), pub, n)


# Seconds each aqrt concurrent run spent in its N x run() calls, before its first await (the
# supervisor cannot dispatch until then); read by measure().
_submit_phase: list[float] = []

Contender = Callable[[Any, int], tuple[float, list[Any]]]


def contenders() -> list[tuple[str, str, Contender]]:
    """(label, how it is driven, function), aqrt baseline first."""
    rows: list[tuple[str, str, Contender]] = [
        (AQRT_BASELINE, "concurrent: N x run(), gather", aqrt_session),
        ("aqrt Batch", "concurrent: N x run(), gather", aqrt_batch),
        ("aqrt sequential", "await each job (latency)", aqrt_sequential),
        ("aqrt job mode, sequential", "no session: await each job", aqrt_job_mode),
        ("Qiskit StatevectorEstimator", "N x run(), .result() each", qiskit_statevector),
    ]
    if AerEstimatorV2 is not None:
        rows.append(("Aer EstimatorV2", "N x run(), .result() each", aer_estimator))
    return rows


# -- compute floor: the same PUB computed synchronously, without any job machinery -------------------
# These reach into private entry points (LocalJobRunner.run, the peers' _run) on purpose: the
# difference between end-to-end time and this floor is the runtime's own per-job overhead. A
# floor that cannot be built (an internal API changed) is reported as skipped, never fatal.


def _aqrt_floor(pub: Any) -> Callable[[], Any]:
    import threading

    from aqrt.backends.base import ExecutionContext
    from aqrt.job import JobRequest
    from aqrt.options import Options
    from aqrt.primitives._pubs import coerce_estimator_pubs

    backend = aqrt.LocalService().backend(BACKEND)
    request = JobRequest(
        job_id="job-floor",
        program="estimator",
        pubs=tuple(coerce_estimator_pubs([pub], 0.0)),
        options=Options(),
        session_id=None,
    )
    context = ExecutionContext(cache={}, cancel_requested=threading.Event())
    # serial=True: the kernels a trivial job runs (inline, no numba thread pool per call)
    return lambda: backend.runner.run(request, context, serial=True)


def _peer_floor(estimator: Any, pub: Any) -> Callable[[], Any]:
    from qiskit.primitives.containers.estimator_pub import EstimatorPub

    pubs = [EstimatorPub.coerce(pub, 0.0)]
    return lambda: estimator._run(pubs)


def floors() -> list[tuple[str, str, Callable[[Any], Callable[[], Any]]]]:
    """(label, the end-to-end row it is the floor of, factory of a no-argument compute call)."""
    rows = [
        ("aqrt LocalJobRunner.run", AQRT_BASELINE, _aqrt_floor),
        (
            "Qiskit StatevectorEstimator._run",
            "Qiskit StatevectorEstimator",
            lambda p: _peer_floor(StatevectorEstimator(), p),
        ),
    ]
    if AerEstimatorV2 is not None:
        rows.append(("Aer EstimatorV2._run", "Aer EstimatorV2", lambda p: _peer_floor(AerEstimatorV2(), p)))
    return rows


def measure_floor(call: Callable[[], Any], n: int, repeat: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        for _ in range(n):
            call()
        times.append(time.perf_counter() - start)
    return times


# -- measurement ----------------------------------------------------------------------------------


# -- asyncio floor: what gathering N awaitable job handles costs before any job machinery -------------


class _WaitingHandle:
    """An awaitable that is not a future (as ``aqrt.Job`` is not): awaiting it makes a future,
    which a later callback sets."""

    __slots__ = ("_made",)

    def __init__(self, made: list[asyncio.Future[None]]) -> None:
        self._made = made

    def __await__(self) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._made.append(future)
        return (yield from future)


async def _gather_handles(n: int) -> float:
    loop = asyncio.get_running_loop()
    made: list[asyncio.Future[None]] = []

    def settle() -> None:
        for future in made:
            future.set_result(None)

    start = time.perf_counter()
    gathering = asyncio.gather(*(_WaitingHandle(made) for _ in range(n)))
    loop.call_soon(settle)  # after every handle's task has made its future
    await gathering
    return time.perf_counter() - start


def asyncio_floor(n: int, repeat: int) -> list[float]:
    """Seconds to ``asyncio.gather`` N handles that each wait on a future set later: a task per
    handle, a wake-up per future, gather's callback per task. A job handle awaited this way
    costs at least this much, whatever runs the job."""
    return [asyncio.run(_gather_handles(n)) for _ in range(repeat)]


def measure(func: Contender, pub: Any, n: int, repeat: int, warmup: int) -> tuple[list[float], list[Any]]:
    """Warm up, then time ``repeat`` runs; returns the run times and the last run's results."""
    func(pub, warmup)  # untimed: imports, thread pools, pass managers, caches
    times = []
    results: list[Any] = []
    _submit_phase.clear()
    _cpu_times.clear()
    _gc_pauses.clear()
    pauses = _GcPauses()
    gc.callbacks.append(pauses)
    try:
        for _ in range(repeat):
            gc.collect()
            cpu, paused = time.process_time(), pauses.total
            elapsed, results = func(pub, n)
            _cpu_times.append(time.process_time() - cpu)
            _gc_pauses.append(pauses.total - paused)
            if len(results) != n:
                raise RuntimeError(f"expected {n} results, got {len(results)}")
            times.append(elapsed)
    finally:
        gc.callbacks.remove(pauses)
    return times, results


# CPU seconds of the whole process (every thread) per timed run of measure(), session open and
# close included: less sensitive than wall time to other processes sharing the CPUs.
_cpu_times: list[float] = []
# Seconds the garbage collector paused the process per timed run of measure() (thousands of
# live jobs and results make its collections longer: part of the per-job cost).
_gc_pauses: list[float] = []


class _GcPauses:
    """A ``gc.callbacks`` entry that sums the seconds of every collection (any generation)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started


def machine_facts() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "aqrt")
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "aqrt": aqrt.__version__,
        "aqrt_git": None if commit is None else commit + (" (aqrt/ modified)" if dirty else ""),
        "qiskit": qiskit.__version__,
        "qiskit_aer": qiskit_aer.__version__ if qiskit_aer is not None else None,
        "numpy": np.__version__,
        "load_average": _load_average(),
    }


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other processes share the CPUs: quote them)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:  # pragma: no cover - not available on this platform
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load_kernels() -> float:
    """Load aqrt's small-state kernels before anything is timed; returns the seconds it took.

    A process's first small jobs run on a numpy interpreter while the kernels load on the engine
    worker (issue #15); this benchmark measures the steady state, kernels loaded, so no row is
    timed on the interpreter or against a compile on the other core. The first run's cost is
    ``benchmarks/first_run.py``'s subject.
    """
    from aqrt.engine import warmup as engine_warmup

    start = time.perf_counter()
    engine_warmup("complex128", ("small",))
    return time.perf_counter() - start


def run_benchmark(n: int, repeat: int, warmup: int) -> dict[str, Any]:
    pubs = make_pubs()
    rows: list[dict[str, Any]] = []
    disagreements: list[str] = []
    for circuit_name, pub in pubs.items():
        exact = exact_value(pub)
        for label, how, func in contenders():
            print(f"  measuring {circuit_name:4s} {label} ...", file=sys.stderr, flush=True)
            times, results = measure(func, pub, n, repeat, warmup)
            evs = evs_of(results)
            deviation = float(np.max(np.abs(evs - exact)))
            if deviation > TOLERANCE:
                disagreements.append(
                    f"DISAGREE: {label} on {circuit_name}: max |ev - exact| = {deviation:.3e} "
                    f"(exact {exact!r}, got values {sorted(set(evs.tolist()))[:5]})"
                )
            submit_phase = list(_submit_phase)
            cpu_times = list(_cpu_times)
            gc_pauses = list(_gc_pauses)
            rows.append(
                {
                    "circuit": circuit_name,
                    "contender": label,
                    "how": how,
                    "jobs": n,
                    "times_s": times,
                    "best_us": min(times) / n * 1e6,
                    "median_us": statistics.median(times) / n * 1e6,
                    "cpu_s": cpu_times,
                    "cpu_best_us": min(cpu_times) / n * 1e6,
                    "gc_s": gc_pauses,
                    "gc_of_best_us": gc_pauses[times.index(min(times))] / n * 1e6,  # in the best run
                    "ev": float(evs[0]),
                    "exact": exact,
                    "max_deviation": deviation,
                    # aqrt concurrent rows only: the N x run() part of each timed run
                    "submit_phase_s": submit_phase or None,
                    "submit_phase_best_us": min(submit_phase) / n * 1e6 if submit_phase else None,
                }
            )
    floor_rows: list[dict[str, Any]] = []
    for circuit_name, pub in pubs.items():
        for label, of_row, factory in floors():
            print(f"  measuring {circuit_name:4s} floor {label} ...", file=sys.stderr, flush=True)
            entry: dict[str, Any] = {"circuit": circuit_name, "engine": label, "floor_of": of_row}
            try:
                times = measure_floor(factory(pub), n, repeat, warmup)
            except Exception as exc:  # an internal entry point moved: report, do not fail
                entry["skipped"] = f"{type(exc).__name__}: {exc}"
                floor_rows.append(entry)
                continue
            end_to_end = next(r for r in rows if r["circuit"] == circuit_name and r["contender"] == of_row)
            entry["times_s"] = times
            entry["best_us"] = min(times) / n * 1e6
            entry["median_us"] = statistics.median(times) / n * 1e6
            entry["end_to_end_best_us"] = end_to_end["best_us"]
            entry["overhead_best_us"] = end_to_end["best_us"] - entry["best_us"]
            floor_rows.append(entry)
    print("  measuring the asyncio floor ...", file=sys.stderr, flush=True)
    floor_times = asyncio_floor(n, repeat)
    asyncio_row = {"times_s": floor_times, "best_us": min(floor_times) / n * 1e6}
    for row in rows:
        base = next(r for r in rows if r["circuit"] == row["circuit"] and r["contender"] == AQRT_BASELINE)
        row["ratio_vs_aqrt_best"] = row["best_us"] / base["best_us"]
        row["ratio_vs_aqrt_median"] = row["median_us"] / base["median_us"]
    return {"rows": rows, "compute_floor": floor_rows, "asyncio_floor": asyncio_row, "disagreements": disagreements}


# -- output ---------------------------------------------------------------------------------------


def format_report(facts: dict[str, Any], config: dict[str, Any], outcome: dict[str, Any]) -> str:
    lines = [
        "aqrt runtime overhead per job (submit -> result, trivial one-PUB Estimator jobs)",
        f"date        {facts['date']}",
        f"machine     {facts['cpu_count']} CPUs ({facts['cpus_usable']} usable), {facts['cpu_model']}",
        f"platform    {facts['platform']}",
        f"load        {facts['load_average']} at the start, {config.get('load_average_end')} at the end (1/5/15 min)",
        f"python      {facts['python']}",
        (
            f"versions    aqrt {facts['aqrt']} [{facts['aqrt_git']}], qiskit {facts['qiskit']}, "
            f"qiskit-aer {facts['qiskit_aer']}, numpy {facts['numpy']}"
        ),
        (
            f"config      {config['jobs']} jobs per measurement, best/median of {config['repeat']} "
            f"repetitions, {config['warmup']} warm-up jobs; ratio = contender / {AQRT_BASELINE}"
        ),
        f"kernels     aqrt's small tier loaded before timing ({config['kernel_load_s']} s): steady state",
        "",
    ]
    header = (
        f"{'circuit':<8}{'contender':<30}{'best µs/job':>12}{'median µs/job':>15}"
        f"{'jobs/s (best)':>15}{'x aqrt best':>13}{'x aqrt med':>12}{'cpu µs/job':>12}{'gc µs/job':>11}{'ev':>8}"
    )
    lines += [header, "-" * len(header)]
    previous = None
    for row in outcome["rows"]:
        if previous is not None and row["circuit"] != previous:
            lines.append("")
        previous = row["circuit"]
        lines.append(
            f"{row['circuit']:<8}{row['contender']:<30}{row['best_us']:>12.1f}{row['median_us']:>15.1f}"
            f"{1e6 / row['best_us']:>15.0f}{row['ratio_vs_aqrt_best']:>12.2f}x{row['ratio_vs_aqrt_median']:>11.2f}x"
            f"{row['cpu_best_us']:>12.1f}{row['gc_of_best_us']:>11.1f}{row['ev']:>8.3f}"
        )
    lines.append("cpu µs/job: process CPU time (every thread) of the best run / N, session open and close included")
    lines.append("gc µs/job: time the garbage collector paused the process during the best run / N")
    lines.append("")
    for circuit in dict.fromkeys(r["circuit"] for r in outcome["rows"]):
        for row in outcome["rows"]:
            if row["circuit"] != circuit or row["contender"].startswith("aqrt"):
                continue
            short = row["contender"].split()[0]
            lines.append(
                f"{circuit:<5} {short} / aqrt = {row['ratio_vs_aqrt_best']:.2f}x (best), "
                f"{row['ratio_vs_aqrt_median']:.2f}x (median)   [{row['contender']}]"
            )
    lines.append("")
    for row in outcome["rows"]:
        if row["submit_phase_best_us"] is not None:
            lines.append(
                f"{row['circuit']:<5} {row['contender']}: the N x run() calls alone take "
                f"{row['submit_phase_best_us']:.1f} µs/job (best) of the {row['best_us']:.1f} µs/job"
            )
    lines.append("")
    lines.append("compute floor: the same PUB computed synchronously N times, no job/runtime machinery;")
    lines.append("runtime overhead = end-to-end best - floor best")
    header = f"{'circuit':<8}{'engine':<36}{'floor µs/call':>14}{'end-to-end µs/job':>19}{'overhead µs/job':>17}"
    lines += [header, "-" * len(header)]
    for entry in outcome["compute_floor"]:
        if "skipped" in entry:
            lines.append(f"{entry['circuit']:<8}{entry['engine']:<36}  skipped ({entry['skipped']})")
            continue
        lines.append(
            f"{entry['circuit']:<8}{entry['engine']:<36}{entry['best_us']:>14.1f}"
            f"{entry['end_to_end_best_us']:>19.1f}{entry['overhead_best_us']:>17.1f}"
        )
    lines.append("")
    lines.append(
        f"asyncio floor: gathering {config['jobs']} awaitables that each wait on a future set later "
        f"(a task, a wake-up and gather's callback each, no job machinery): "
        f"{outcome['asyncio_floor']['best_us']:.1f} µs/job (best of {config['repeat']})"
    )
    lines.append("")
    if outcome["disagreements"]:
        lines += outcome["disagreements"]
    else:
        lines.append(f"values: every contender matches the exact Statevector value within {TOLERANCE:g} on every job")
    return "\n".join(lines)


def profile_aqrt(pub: Any, n: int, path: Path) -> None:
    """cProfile one aqrt Session run of N jobs (after a warm-up) and write the stats as text.

    Two profiles: the event loop thread, and the engine worker thread where backends compute
    (cProfile is per thread; the worker is reached through ``aqrt._concurrency.engine_executor``,
    a private hook, so that part is skipped if it is not there).
    """
    import cProfile
    import io
    import pstats

    aqrt_session(pub, 20)
    worker_profiler = cProfile.Profile()
    executor = _engine_executor()
    if executor is not None:
        executor.submit(worker_profiler.enable).result()
    loop_profiler = cProfile.Profile()
    loop_profiler.enable()
    elapsed, _ = aqrt_session(pub, n)
    loop_profiler.disable()
    if executor is not None:
        executor.submit(worker_profiler.disable).result()
    buffer = io.StringIO()
    buffer.write(
        f"cProfile of the aqrt Session row: {n} jobs, 1-qubit H / Z, {elapsed:.3f} s under the profiler "
        f"({elapsed / n * 1e6:.1f} µs/job); machine: {os.cpu_count()} CPUs, Python {platform.python_version()}.\n"
        "Event loop thread first (time in epoll = waiting for the engine worker), then the engine worker thread.\n\n"
    )
    sections = [("EVENT LOOP THREAD", loop_profiler)]
    if executor is not None:
        sections.append(("ENGINE WORKER THREAD", worker_profiler))
    for title, profiler in sections:
        for key in ("cumulative", "tottime"):
            buffer.write(f"==== {title}, sorted by {key} ====\n")
            pstats.Stats(profiler, stream=buffer).sort_stats(key).print_stats(40)
    path.write_text(buffer.getvalue())
    print(f"profile written to {path}", file=sys.stderr)


# Where a line of Python belongs, by the path of its file (first match wins).
_LAYERS = (
    ("aqrt/session/", "aqrt.session (queue, supervisor, runners)"),
    ("aqrt/job.py", "aqrt.job (Job, settling, awaiting)"),
    ("aqrt/primitives/", "aqrt.primitives (run(), PUB coercion)"),
    ("aqrt/backends/", "aqrt.backends (checks, caches, results)"),
    ("aqrt/engine/", "aqrt.engine (kernel calls)"),
    ("aqrt/", "aqrt (other)"),
    ("qiskit/", "qiskit (containers, circuit reads)"),
    ("anyio/", "anyio + sniffio"),
    ("sniffio/", "anyio + sniffio"),
    ("asyncio/", "asyncio (loop, gather's tasks)"),
    ("selectors.py", "asyncio (loop, gather's tasks)"),
    ("_weakrefset.py", "asyncio (loop, gather's tasks)"),
)


def _layer(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker, layer in _LAYERS:
        if marker in path:
            return layer
    return "other (numpy, stdlib)"


def count_lines(pub: Any, n: int) -> dict[str, dict[str, float]]:
    """Lines of Python executed per job, by layer, for the Session row (N jobs gathered) and the
    sequential row (each awaited before the next), after a warm-up: ``sys.settrace`` counts
    every line event of every Python frame on the loop thread (numba kernels and C code run no
    Python lines). Deterministic, unlike times: it says how much Python a job runs, and where."""
    import collections

    async def concurrent(estimator: Any) -> None:
        await asyncio.gather(*[estimator.run([pub]) for _ in range(n)])

    async def sequential(estimator: Any) -> None:
        for _ in range(n):
            await estimator.run([pub])

    report: dict[str, dict[str, float]] = {}
    for label, body in (("aqrt Session", concurrent), ("aqrt sequential", sequential)):
        counts: collections.Counter[str] = collections.Counter()
        layers: dict[str, str] = {}

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                filename = frame.f_code.co_filename
                layer = layers.get(filename)
                if layer is None:
                    layer = layers[filename] = _layer(filename)
                counts[layer] += 1
            return tracer

        async def traced(body: Any = body, tracer: Any = tracer) -> None:
            async with Session(backend=BACKEND):
                estimator = Estimator()
                await body(estimator)  # warm-up: caches, the supervisor, the first job's rules
                sys.settrace(tracer)
                try:
                    await body(estimator)
                finally:
                    sys.settrace(None)

        asyncio.run(traced())
        report[label] = {layer: count / n for layer, count in sorted(counts.items(), key=lambda item: -item[1])}
    return report


def format_lines(report: dict[str, dict[str, float]], n: int) -> str:
    rows = [f"Python lines executed per job ({n} jobs, h circuit; sys.settrace line events on the loop thread)"]
    for label, layers in report.items():
        rows.append(f"  {label}: {sum(layers.values()):.0f} lines a job")
        rows += [f"    {count:8.1f}  {layer}" for layer, count in layers.items()]
    return "\n".join(rows)


def _engine_executor() -> Any:
    try:
        from aqrt._concurrency import engine_executor
    except ImportError:
        return None
    return engine_executor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per measurement (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions per row (default 3)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed warm-up jobs per row (default 20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--profile", type=Path, metavar="PATH", help="also cProfile one aqrt Session run and write it here"
    )
    parser.add_argument(
        "--lines",
        type=int,
        metavar="N",
        help="only count the Python lines a job executes, by layer, over N jobs (no timing)",
    )
    args = parser.parse_args(argv)
    if args.lines is not None:
        load_kernels()
        print(format_lines(count_lines(make_pubs()["h"], args.lines), args.lines))
        return 0
    if args.jobs < 1 or args.repeat < 1 or args.warmup < 1:
        parser.error("--jobs, --repeat and --warmup must be >= 1")

    facts = machine_facts()
    config = {"jobs": args.jobs, "repeat": args.repeat, "warmup": args.warmup, "tolerance": TOLERANCE}
    config["kernel_load_s"] = round(load_kernels(), 2)
    wall = time.perf_counter()
    outcome = run_benchmark(args.jobs, args.repeat, args.warmup)
    config["wall_s"] = round(time.perf_counter() - wall, 1)
    config["load_average_end"] = _load_average()
    print(format_report(facts, config, outcome))
    print(f"(benchmark wall time {config['wall_s']} s)")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": facts, "config": config, **outcome}, indent=2) + "\n")
        print(f"JSON written to {args.json}", file=sys.stderr)
    if args.profile is not None:
        profile_aqrt(make_pubs()["h"], args.jobs, args.profile)
    return 1 if outcome["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
