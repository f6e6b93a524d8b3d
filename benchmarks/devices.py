"""What people send to IBM devices, aqrt against Aer and qiskit-ibm-runtime's local mode.

Rows (each contender timed on the same circuit in one run; best and median of ``--repeat``
timed calls after untimed warm-up calls; one call = submit one job and wait for its result):

- ``isa127 estimator``: a 5-qubit GHZ transpiled for FakeSherbrooke (127 qubits, 5 active), 3
  observables after ``apply_layout``.
- ``isa127 sampler``:   the same circuit measured, 1000 shots.
- ``dynamic sampler``:  10 qubits, a mid-circuit measurement feeding ``if_else``, a reset and a
  ``for_loop``, 10 000 shots (the branches share states: 2 outcome histories).
- ``ghz100 sampler``:   GHZ on 100 qubits, 10 000 shots (aqrt: stim; Aer picks its stabilizer method).
- ``ghz100 estimator``: GHZ on 100 qubits, <Z0 Z99> and <X...X>.

Contenders: aqrt's ``Estimator``/``Sampler`` in job mode (every call prepares the circuit
afresh, as a first job would) and in a session (prepared once, then reused); Aer's
``EstimatorV2``/``SamplerV2`` (noiseless, its automatic method); qiskit-ibm-runtime's local
mode (``EstimatorV2(mode=FakeSherbrooke())``: Aer with the device's noise model, so it does more
work; quoted because it is what "local testing mode" means), and local mode on a noiseless
``AerSimulator()``.

Usage::

    python benchmarks/devices.py [--repeat R] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from aqrt import Estimator, LocalService, Sampler, Session


def _ghz(width: int, measure: bool) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(width - 1):
        circuit.cx(qubit, qubit + 1)
    if measure:
        circuit.measure_all()
    return circuit


def _dynamic() -> QuantumCircuit:
    circuit = QuantumCircuit(10, 10)
    circuit.h(range(10))
    for qubit in range(9):
        circuit.cz(qubit, qubit + 1)
    circuit.h(0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)) as otherwise:
        circuit.x(1)
        circuit.rz(0.3, 2)
    with otherwise:
        circuit.h(1)
    circuit.reset(0)
    with circuit.for_loop(range(2)):
        circuit.rx(0.7, 3)
        circuit.cx(3, 4)
    circuit.measure(range(10), range(10))
    return circuit


def _time(call: Callable[[], Any], repeat: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def _aqrt_call(primitive: Any, pubs: list[Any], loop: asyncio.AbstractEventLoop, **kwargs: Any) -> Callable[[], Any]:
    async def once() -> Any:
        return await primitive.run(pubs, **kwargs)

    return lambda: loop.run_until_complete(once())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        from qiskit_aer import AerSimulator
        from qiskit_aer.primitives import EstimatorV2 as AerEstimator
        from qiskit_aer.primitives import SamplerV2 as AerSampler
        from qiskit_ibm_runtime import EstimatorV2 as RuntimeEstimator
        from qiskit_ibm_runtime import SamplerV2 as RuntimeSampler
        from qiskit_ibm_runtime.fake_provider import FakeSherbrooke
    except ImportError as exc:
        raise SystemExit(f"needs the bench and devices extras: pip install -e '.[bench,devices]' ({exc})") from None
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    device = FakeSherbrooke()
    manager = generate_preset_pass_manager(backend=device, optimization_level=1, seed_transpiler=7)
    isa = manager.run(_ghz(5, measure=False))
    isa_measured = manager.run(_ghz(5, measure=True))
    observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in ("ZZIII", "XXXXX", "IIIZZ")]
    ghz = _ghz(100, measure=False)
    ghz_measured = _ghz(100, measure=True)
    ghz_observables = [SparsePauliOp.from_sparse_list([("ZZ", [0, 99], 1.0)], 100), SparsePauliOp("X" * 100)]
    dynamic = _dynamic()

    loop = asyncio.new_event_loop()
    backend = LocalService().backend()
    estimator, sampler = Estimator(mode=backend), Sampler(mode=backend)
    session = Session(backend=backend)
    session_estimator, session_sampler = Estimator(mode=session), Sampler(mode=session)
    aer_estimator, aer_sampler = AerEstimator(), AerSampler()
    local_estimator, local_sampler = RuntimeEstimator(mode=device), RuntimeSampler(mode=device)
    ideal = AerSimulator()
    ideal_estimator, ideal_sampler = RuntimeEstimator(mode=ideal), RuntimeSampler(mode=ideal)

    def sync(primitive: Any, pubs: list[Any], **kwargs: Any) -> Callable[[], Any]:
        return lambda: primitive.run(pubs, **kwargs).result()

    rows: dict[str, dict[str, Callable[[], Any]]] = {
        "isa127 estimator": {
            "aqrt": _aqrt_call(estimator, [(isa, observables)], loop),
            "aqrt (in a session: prepared once)": _aqrt_call(session_estimator, [(isa, observables)], loop),
            "Aer EstimatorV2": sync(aer_estimator, [(isa, observables)]),
            "local mode (noiseless AerSimulator)": sync(ideal_estimator, [(isa, observables)]),
            "local mode (FakeSherbrooke, noisy)": sync(local_estimator, [(isa, observables)]),
        },
        "isa127 sampler 1000 shots": {
            "aqrt": _aqrt_call(sampler, [isa_measured], loop, shots=1000),
            "aqrt (in a session: prepared once)": _aqrt_call(session_sampler, [isa_measured], loop, shots=1000),
            "Aer SamplerV2": sync(aer_sampler, [isa_measured], shots=1000),
            "local mode (noiseless AerSimulator)": sync(ideal_sampler, [isa_measured], shots=1000),
            "local mode (FakeSherbrooke, noisy)": sync(local_sampler, [isa_measured], shots=1000),
        },
        "dynamic sampler 10q 10000 shots": {
            "aqrt": _aqrt_call(sampler, [dynamic], loop, shots=10_000),
            "Aer SamplerV2": sync(aer_sampler, [dynamic], shots=10_000),
        },
        "ghz100 sampler 10000 shots": {
            "aqrt": _aqrt_call(sampler, [ghz_measured], loop, shots=10_000),
            "Aer SamplerV2": sync(aer_sampler, [ghz_measured], shots=10_000),
        },
        "ghz100 estimator": {
            "aqrt": _aqrt_call(estimator, [(ghz, ghz_observables)], loop),
            "Aer EstimatorV2": sync(aer_estimator, [(ghz, ghz_observables)]),
        },
    }
    report: dict[str, Any] = {}
    for row, contenders in rows.items():
        print(f"\n{row}")
        figures = {name: _time(call, args.repeat) for name, call in contenders.items()}
        ours = figures["aqrt"][0]
        for name, (best, median) in figures.items():
            ratio = "" if name == "aqrt" else f"  {best / ours:8.1f}x aqrt's time"
            print(f"  {name:38s} best {best * 1e3:9.2f} ms  median {median * 1e3:9.2f} ms{ratio}")
        report[row] = {name: {"best_s": best, "median_s": median} for name, (best, median) in figures.items()}
    loop.run_until_complete(session.close())
    loop.close()
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
