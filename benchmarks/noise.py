"""Noisy simulation and error mitigation: aqrt against qiskit-ibm-runtime's local mode and Aer.

Rows (each contender timed on the same circuit in one run; median of ``--repeat`` timed calls
after one untimed warm-up call; one call = submit one job and wait for its result):

- ``noisy job manila``:      Bell (ISA for FakeManilaV2), Estimator <ZZ> and Sampler 4000 shots, in
  a Batch: aqrt (noise model built once per device, first job) against qiskit-ibm-runtime's local
  mode (``EstimatorV2``/``SamplerV2`` in a ``Batch``: Aer with ``NoiseModel.from_backend`` built per
  job). Target: aqrt >= 20x.
- ``noisy job sherbrooke``:  GHZ-5 ISA for FakeSherbrooke (127 qubits, 5 active), the same.
- ``noisy shots``:           Sampler shots/s on the same noise model (FakeSherbrooke's) for GHZ-n
  ISA circuits, 20 000 shots: aqrt vs Aer's ``AerSimulator(method="statevector",
  noise_model=...)`` (one trajectory per shot, Aer's noisy statevector; one timed run after a
  10-shot warm-up) and Aer's automatic method (``AerSimulator.from_backend``: it picks the
  density matrix for small noisy circuits). Target: aqrt >= 3x Aer's noisy statevector.
- ``resilience 2``:          GHZ-4 <ZZZZ> on FakeManilaV2 at resilience level 2 (TREX + ZNE + gate
  twirling): aqrt's Estimator against the official client-side Estimator
  (``qiskit_ibm_runtime.executor_estimator.Estimator``, local mode). Values at levels 0/1/2 too.

Usage::

    python benchmarks/noise.py [--repeat R] [--json PATH] [--only ROWS]
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

from aqrt import Batch, Estimator, Sampler


def _ghz(width: int, measure: bool) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for qubit in range(width - 1):
        circuit.cx(qubit, qubit + 1)
    if measure:
        circuit.measure_all()
    return circuit


def _isa(device: Any, circuit: QuantumCircuit) -> QuantumCircuit:
    return generate_preset_pass_manager(backend=device, optimization_level=1, seed_transpiler=7).run(circuit)


def _median(call: Callable[[], Any], repeat: int) -> float:
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _aqrt_batch_jobs(device: Any, estimator_pub: Any, sampler_pub: Any, shots: int, repeat: int) -> dict[str, float]:
    """Median seconds per job in one Batch (the first, untimed, job builds the noise model)."""

    async def run() -> dict[str, float]:
        out = {}
        async with Batch(backend=device):
            estimator = Estimator(options={"resilience_level": 0})
            sampler = Sampler()
            for label, submit in (
                ("estimator", lambda: estimator.run([estimator_pub])),
                ("sampler", lambda: sampler.run([sampler_pub], shots=shots)),
            ):
                await submit()
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    await submit()
                    times.append(time.perf_counter() - start)
                out[label] = statistics.median(times)
        return out

    return asyncio.run(run())


def _local_mode_batch_jobs(
    device: Any, estimator_pub: Any, sampler_pub: Any, shots: int, repeat: int
) -> dict[str, float]:
    from qiskit_ibm_runtime import Batch as RuntimeBatch
    from qiskit_ibm_runtime import EstimatorV2, SamplerV2

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with RuntimeBatch(backend=device) as batch:
            estimator = EstimatorV2(mode=batch)
            sampler = SamplerV2(mode=batch)
            out["estimator"] = _median(lambda: estimator.run([estimator_pub]).result(), repeat)
            out["sampler"] = _median(lambda: sampler.run([sampler_pub], shots=shots).result(), repeat)
    return out


def noisy_jobs(repeat: int) -> dict[str, Any]:
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2, FakeSherbrooke

    rows: dict[str, Any] = {}
    for label, device, width in (("manila", FakeManilaV2(), 2), ("sherbrooke", FakeSherbrooke(), 5)):
        isa = _isa(device, _ghz(width, measure=False))
        observable = SparsePauliOp("Z" * width).apply_layout(isa.layout)
        measured = _isa(device, _ghz(width, measure=True))
        shots = 4000
        ours = _aqrt_batch_jobs(device, (isa, observable), measured, shots, repeat)
        theirs = _local_mode_batch_jobs(device, (isa, observable), measured, shots, max(2, repeat // 3))
        rows[label] = {
            "aqrt_s": ours,
            "local_mode_s": theirs,
            "ratio": {kind: theirs[kind] / ours[kind] for kind in ours},
        }
        print(
            f"noisy job {label:10s} estimator aqrt {ours['estimator'] * 1e3:8.2f} ms  local mode "
            f"{theirs['estimator'] * 1e3:8.1f} ms  ({theirs['estimator'] / ours['estimator']:.0f}x) | sampler aqrt "
            f"{ours['sampler'] * 1e3:8.2f} ms  local mode {theirs['sampler'] * 1e3:8.1f} ms  "
            f"({theirs['sampler'] / ours['sampler']:.0f}x)",
            flush=True,
        )
    return rows


def noisy_shots(repeat: int) -> dict[str, Any]:
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel
    from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

    device = FakeSherbrooke()
    model = NoiseModel.from_backend(device)
    aer = AerSimulator(method="statevector", noise_model=model)
    automatic = AerSimulator.from_backend(device)
    rows: dict[str, Any] = {}
    shots = 20_000

    async def aqrt_run(circuit: QuantumCircuit) -> float:
        async with Batch(backend=device):
            sampler = Sampler()
            await sampler.run([circuit], shots=shots)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                await sampler.run([circuit], shots=shots)
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    for width in (4, 8, 12):
        circuit = _isa(device, _ghz(width, measure=True))
        ours = asyncio.run(aqrt_run(circuit))
        aer.run(circuit, shots=10).result()  # warm-up (Aer's per-shot trajectories take minutes at 12 qubits)
        start = time.perf_counter()
        aer.run(circuit, shots=shots).result()
        theirs = time.perf_counter() - start
        automatic.run(circuit, shots=10).result()
        best_aer = _median(lambda c=circuit: automatic.run(c, shots=shots).result(), max(2, repeat // 2))
        rows[f"ghz{width}"] = {
            "aqrt_shots_per_s": shots / ours,
            "aer_statevector_shots_per_s": shots / theirs,
            "aer_automatic_shots_per_s": shots / best_aer,
            "ratio_statevector": theirs / ours,
            "ratio_automatic": best_aer / ours,
        }
        print(
            f"noisy shots ghz{width:<3d} aqrt {shots / ours:12,.0f} shots/s  Aer statevector {shots / theirs:12,.0f} "
            f"shots/s ({theirs / ours:.1f}x)  Aer automatic {shots / best_aer:12,.0f} shots/s ({best_aer / ours:.1f}x)",
            flush=True,
        )
    return rows


def resilience(repeat: int) -> dict[str, Any]:
    from qiskit_ibm_runtime.executor_estimator import Estimator as ClientEstimator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    device = FakeManilaV2()
    isa = _isa(device, _ghz(4, measure=False))
    observable = SparsePauliOp("ZZZZ").apply_layout(isa.layout)
    values: dict[str, dict[int, float]] = {"aqrt": {}, "client": {}}
    times: dict[str, float] = {}

    async def ours(level: int) -> float:
        async with Batch(backend=device):
            result = await Estimator(options={"resilience_level": level, "seed": 11}).run([(isa, observable)])
        return float(result[0].data.evs)

    for level in (0, 1, 2):
        values["aqrt"][level] = asyncio.run(ours(level))
    times["aqrt"] = _median(lambda: asyncio.run(ours(2)), repeat)

    def theirs(level: int) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator = ClientEstimator(mode=device)
            estimator.options.resilience_level = level
            return float(estimator.run([(isa, observable)]).result()[0].data.evs)

    for level in (0, 1, 2):
        values["client"][level] = theirs(level)
    times["client"] = _median(lambda: theirs(2), max(1, repeat // 3))
    print(
        "resilience GHZ-4 <ZZZZ> (ideal 1) levels 0/1/2: aqrt "
        + " / ".join(f"{values['aqrt'][level]:.3f}" for level in (0, 1, 2))
        + "; official client-side Estimator "
        + " / ".join(f"{values['client'][level]:.3f}" for level in (0, 1, 2)),
        flush=True,
    )
    print(
        f"resilience 2 wall time: aqrt {times['aqrt']:.3f} s, official {times['client']:.3f} s "
        f"({times['client'] / times['aqrt']:.1f}x)",
        flush=True,
    )
    return {"values": values, "seconds": times, "ratio": times["client"] / times["aqrt"]}


ROWS = {"jobs": noisy_jobs, "shots": noisy_shots, "resilience": resilience}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", default=",".join(ROWS), help=f"comma-separated rows among {sorted(ROWS)}")
    args = parser.parse_args()
    report = {name: ROWS[name](args.repeat) for name in args.only.split(",")}
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
