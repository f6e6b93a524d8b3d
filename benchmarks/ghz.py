"""The stabilizer route (stim) against Aer's stabilizer simulator, in one run.

Sections:

- ``sampling``   GHZ-n (h, then the cx ladder, then ``measure_all``) for n = 50, 100, 200, with
                 1000 and 10 000 shots. ``aqrt``: ``stabilizer.sample(circuit, shots, rng)``, i.e.
                 the conversion to stim (``to_stim``, also shown alone) plus stim's sampling and the
                 packing into Qiskit's ``BitArray`` bytes. ``Aer``: ``qiskit_aer.primitives.SamplerV2``
                 (default options; its automatic method picks the stabilizer simulator for
                 Clifford circuits, printed from an ``AerSimulator`` run of the same circuit):
                 ``.run([(circuit,)], shots=shots).result()``. Every shot of both must be all
                 zeros or all ones.
- ``estimator``  a random 100-qubit Clifford circuit (``random_clifford(100, seed=1).to_circuit()``)
                 and 10 observables (6 random Paulis, 4 products of the state's stabilizers, so
                 not all values are 0). ``aqrt``: ``stabilizer.expectation_values``; ``Aer``:
                 ``qiskit_aer.primitives.EstimatorV2`` (exact) on the same PUB. Values must agree
                 within 1e-12.

Each contender is warmed up once per row, then timed ``--repeat`` times (default 3); the table
shows the best and median seconds and ``Aer / aqrt`` (best against best: how many times longer
Aer takes). The machine's load average is printed, as other processes skew times on a shared
machine.

For now this times the module's functions directly; once the route is wired into the local
backend, the public Sampler / Estimator are the ones to time.

Usage::

    python benchmarks/ghz.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
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
import qiskit_aer
import stim
from qiskit import QuantumCircuit
from qiskit.primitives import BitArray
from qiskit.quantum_info import Pauli, SparseObservable, SparsePauliOp, random_clifford
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2 as AerEstimator
from qiskit_aer.primitives import SamplerV2 as AerSampler

from aqrt.backends.local.stabilizer import expectation_values, sample, to_stim

WIDTHS = (50, 100, 200)
SHOTS = (1000, 10_000)
ESTIMATOR_WIDTH = 100
ESTIMATOR_SEED = 1
SEED = 1234


def ghz(num_qubits: int) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


def timed(run: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Seconds of ``repeat`` calls after one warm-up call, and the last call's result."""
    result = run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return times, result


def check_ghz(counts: dict[str, int], num_qubits: int, who: str) -> None:
    if not set(counts) <= {"0" * num_qubits, "1" * num_qubits}:
        raise SystemExit(f"WRONG: {who} GHZ-{num_qubits} gave outcomes other than all-0 / all-1")


def aer_method(circuit: QuantumCircuit) -> str:
    result = AerSimulator(seed_simulator=SEED).run(circuit, shots=1).result()
    return str(result.results[0].metadata.get("method"))


def row(label: str, aqrt_times: list[float], aer_times: list[float], extra: str = "") -> str:
    best_aqrt, best_aer = min(aqrt_times), min(aer_times)
    return (
        f"{label:<22} {best_aqrt * 1e3:>10.2f} {statistics.median(aqrt_times) * 1e3:>10.2f} "
        f"{best_aer * 1e3:>10.2f} {statistics.median(aer_times) * 1e3:>10.2f} {best_aer / best_aqrt:>9.1f}x  {extra}"
    )


HEADER = (
    f"{'':<22} {'aqrt best':>10} {'aqrt med':>10} {'Aer best':>10} {'Aer med':>10} {'Aer/aqrt':>10}\n"
    f"{'':<22} {'(ms)':>10} {'(ms)':>10} {'(ms)':>10} {'(ms)':>10}"
)


def sampling(repeat: int) -> None:
    print("GHZ sampling: aqrt = stabilizer.sample (to_stim + stim + packing), Aer = SamplerV2")
    print(HEADER)
    aer = AerSampler(seed=SEED)
    for width in WIDTHS:
        circuit = ghz(width)
        convert_times, _ = timed(lambda: to_stim(circuit), repeat)
        for shots in SHOTS:
            rng = np.random.default_rng(SEED)
            aqrt_times, arrays = timed(lambda: sample(circuit, shots, rng), repeat)
            check_ghz(BitArray(arrays["meas"], width).get_counts(), width, "aqrt")
            aer_times, result = timed(lambda: aer.run([(circuit,)], shots=shots).result(), repeat)
            check_ghz(result[0].data.meas.get_counts(), width, "Aer")
            extra = f"to_stim {min(convert_times) * 1e3:.2f} ms" if shots == SHOTS[0] else ""
            print(row(f"GHZ-{width}, {shots} shots", aqrt_times, aer_times, extra))
        print(f"{'':<22} (Aer's method for GHZ-{width}: {aer_method(circuit)})")


def estimator(repeat: int) -> None:
    rng = np.random.default_rng(ESTIMATOR_SEED)
    clifford = random_clifford(ESTIMATOR_WIDTH, seed=ESTIMATOR_SEED)
    circuit = clifford.to_circuit()
    generators = [Pauli(label) for label in clifford.to_labels(mode="S")]
    paulis = [Pauli("".join(rng.choice(list("IXYZ"), size=ESTIMATOR_WIDTH))) for _ in range(6)]
    for _ in range(4):
        product = Pauli("I" * ESTIMATOR_WIDTH)
        for generator in generators:
            if rng.random() < 0.5:
                product = product.compose(generator)
        paulis.append(product)
    observables = [SparseObservable.from_pauli(p) for p in paulis]
    aer_observables = [SparsePauliOp(p) for p in paulis]
    print(
        f"\nRandom {ESTIMATOR_WIDTH}-qubit Clifford estimator ({len(circuit.data)} gates, {len(paulis)} observables): "
        "aqrt = stabilizer.expectation_values, Aer = EstimatorV2 (exact)"
    )
    print(HEADER)
    aqrt_times, values = timed(lambda: expectation_values(circuit, observables), repeat)
    aer = AerEstimator()
    aer_times, result = timed(lambda: aer.run([(circuit, aer_observables)]).result(), repeat)
    aer_values = np.asarray(result[0].data.evs)
    if not np.allclose(values, aer_values, rtol=0, atol=1e-12):
        raise SystemExit(f"DISAGREE: aqrt {values.tolist()} vs Aer {aer_values.tolist()}")
    nonzero = int(np.count_nonzero(values))
    print(row(f"Clifford-{ESTIMATOR_WIDTH}, 10 obs", aqrt_times, aer_times, f"{nonzero} nonzero values, agree"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender and row (after a warm-up)")
    args = parser.parse_args()
    print(
        f"qiskit {qiskit.__version__}, qiskit-aer {qiskit_aer.__version__}, stim {stim.__version__}, "
        f"numpy {np.__version__}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    sampling(args.repeat)
    estimator(args.repeat)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
