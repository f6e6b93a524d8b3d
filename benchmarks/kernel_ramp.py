"""How fast a sweep kernel runs right after the process did something else, call by call.

``cold_start.py`` found that the n = 8 sweep runs slower right after a ``gc.collect()`` or a
pause: a fixed 0.7-1.6 ms that costs the faster contender more of its ratio. This looks at the
slowdown up close. One thread (``numba.set_num_threads(1)``), so that no thread wake-up is in
it. Each round first runs the kernel untimed, then applies a gap, then times ``--calls``
back-to-back calls of the same kernel on the same bindings. The report is the median over
rounds of each call's time. Gaps:

- ``none``: nothing (the steady state);
- ``gc.collect()``: what ``engine.py`` runs before every contender;
- ``sleep 30 ms``: the thread idle;
- ``Python loop 2 / 30 ms``: the interpreter busy (a counting loop, no allocation to speak of);
- ``numba scalar loop 30 ms``: one dependent multiply-add chain, no memory;
- ``numba vector loop 30 ms``: a complex multiply-add over 8 KiB, in L1;
- ``other kernel ~0.5 ms`` (``--kernel aqrt`` only): the naive loop's kernel right before;
- ``40 tiny calls`` (``--kernel aqrt`` only): the same kernel on 8 bindings, 40 times, right before.

Kernels (``--kernel``): ``aqrt``, the engine's sweep kernel (``term_values`` on a bound
program: 125 bindings of the 4-layer n = 8 ansatz of ``engine.py``, its 20-term observable);
``naive``, ``engine.py``'s naive ``@njit(parallel=True)`` loop on 16 bindings (about as long a
call); ``plain``, no aqrt code at all: a multiply-add over three 8 KiB float64 arrays that
numba vectorises, repeated to about as long a call. If ``plain`` slows after a gap as ``aqrt``
does, the slowdown is the machine's, not the engine's.

    .venv/bin/python benchmarks/kernel_ramp.py [--kernel aqrt|naive|plain] [--rounds R] [--calls C]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine  # this directory's benchmarks

import aqrt.engine
from aqrt.engine import lower_circuit, simulate

N, LAYERS, TERMS = 8, 4, 20
AQRT_BINDINGS, NAIVE_BINDINGS, TINY_BINDINGS = 125, 16, 8
GAP_S = 0.03
PLAIN_CALL_S = 450e-6  # about the aqrt kernel's steady call


@numba.njit(cache=False)
def _scalar_loop(iterations: int) -> float:  # pragma: no cover - compiled
    x = 0.0
    for _ in range(iterations):
        x = x * 0.999999 + 1.0
    return x


@numba.njit(cache=False)
def _vector_loop(a: np.ndarray, b: np.ndarray, iterations: int) -> complex:  # pragma: no cover - compiled
    for _ in range(iterations):
        for i in range(a.shape[0]):
            a[i] = a[i] * b[i] + 1e-9
    return a[0]


@numba.njit(cache=False, fastmath=True)
def _plain_loop(a: np.ndarray, b: np.ndarray, c: np.ndarray, iterations: int) -> float:  # pragma: no cover - compiled
    for _ in range(iterations):
        for i in range(a.shape[0]):
            a[i] = a[i] * b[i] + c[i]
    return a[0]


def _plain_call(seconds: float) -> Callable[[], object]:
    """``_plain_loop`` repeated to about ``seconds`` a call (steady state)."""
    a, b, c = np.ones(1024), np.full(1024, 0.999), np.full(1024, 1e-3)
    per = _per_unit(lambda k: _plain_loop(a, b, c, k), 20_000)
    iterations = max(1, int(seconds / per))
    return lambda: _plain_loop(a, b, c, iterations)


def _python_loop(seconds: float) -> Callable[[], None]:
    def gap() -> None:
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < seconds:
            count += 1

    return gap


def _per_unit(call: Callable[[int], object], units: int) -> float:
    """Seconds per unit of ``call(units)`` (compiled first)."""
    call(1)
    start = time.perf_counter()
    call(units)
    return (time.perf_counter() - start) / units


def _kernels() -> dict[str, Callable[[int], Callable[[], object]]]:
    """Per kernel name: bindings -> a call of that kernel on that many bindings."""
    circuit = engine.hardware_efficient_ansatz(N, LAYERS)
    observable = engine.random_pauli_observable(N, TERMS, engine.SWEEP_OBSERVABLE_SEED)
    values = engine.sweep_values(circuit, AQRT_BINDINGS)
    lowered = lower_circuit(circuit)
    table = aqrt.engine.build_term_table([dict(observable.to_list())], N)

    def aqrt_call(bindings: int) -> Callable[[], object]:
        program = lowered.bind(values[:bindings])
        return lambda: simulate.term_values(program, table.x_masks, table.z_masks)

    terms = engine.naive_terms(observable)
    kernel = engine._naive_sweep_kernel()

    def naive_call(bindings: int) -> Callable[[], object]:
        rows = np.ascontiguousarray(values[:bindings])
        return lambda: kernel(N, LAYERS, rows, *terms)

    return {"aqrt": aqrt_call, "naive": naive_call}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", choices=("aqrt", "naive", "plain"), default="aqrt")
    parser.add_argument("--rounds", type=int, default=12, help="rounds per gap (default 12)")
    parser.add_argument("--calls", type=int, default=8, help="timed calls after each gap (default 8)")
    args = parser.parse_args()

    aqrt.engine.warmup("complex128", ("sweep",))
    numba.set_num_threads(1)
    make = _kernels()
    if args.kernel == "plain":
        kernel = _plain_call(PLAIN_CALL_S)
    else:
        kernel = make[args.kernel](AQRT_BINDINGS if args.kernel == "aqrt" else NAIVE_BINDINGS)
    kernel()

    scalar = _per_unit(_scalar_loop, 10_000_000)
    a, b = np.ones(512, dtype=np.complex128), np.full(512, 0.5 + 0.5j)
    vector = _per_unit(lambda k: _vector_loop(a, b, k), 20_000)
    gaps: dict[str, Callable[[], object]] = {
        "none": lambda: None,
        "gc.collect()": gc.collect,
        "sleep 30 ms": lambda: time.sleep(GAP_S),
        "Python loop 2 ms": _python_loop(0.002),
        "Python loop 30 ms": _python_loop(GAP_S),
        "numba scalar loop 30 ms": lambda: _scalar_loop(int(GAP_S / scalar)),
        "numba vector loop 30 ms": lambda: _vector_loop(a, b, int(GAP_S / vector)),
    }
    if args.kernel == "aqrt":
        other = make["naive"](NAIVE_BINDINGS)
        other()
        tiny = make["aqrt"](TINY_BINDINGS)
        tiny()

        def tiny_calls() -> None:
            for _ in range(40):
                tiny()

        gaps["other kernel ~0.5 ms"] = lambda: (_python_loop(GAP_S)(), other())
        gaps["40 tiny calls"] = lambda: (_python_loop(GAP_S)(), tiny_calls())

    times: dict[str, list[list[float]]] = {gap: [] for gap in gaps}
    for _ in range(args.rounds):
        for gap, before in gaps.items():  # interleaved: a slow spell of the machine hits every gap
            kernel()
            before()
            calls = []
            for _ in range(args.calls):
                start = time.perf_counter()
                kernel()
                calls.append(time.perf_counter() - start)
            times[gap].append(calls)

    print(f"kernel: {args.kernel}, 1 thread; median over {args.rounds} rounds of each call after the gap, µs")
    width = max(len(gap) for gap in gaps)
    print(f"{'gap':{width}s}  " + " ".join(f"{'call ' + str(k + 1):>7s}" for k in range(args.calls)) + "    extra")
    steady = statistics.median(t for rounds in times["none"] for t in rounds)
    for gap, rounds in times.items():
        medians = [statistics.median(r[k] for r in rounds) for k in range(args.calls)]
        extra = sum(m - steady for m in medians)
        print(f"{gap:{width}s}  " + " ".join(f"{m * 1e6:7.0f}" for m in medians) + f"  {extra * 1e3:+6.2f} ms")
    print("extra: the calls' medians minus the steady call's (all calls of the 'none' rows), summed")


if __name__ == "__main__":
    main()
