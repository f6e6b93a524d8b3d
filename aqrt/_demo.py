"""``aqrt demo``: the seed example (an Estimator job in a Session on the local engine)."""

from __future__ import annotations

import argparse
import asyncio

from ._warmup_cli import show_compile_notice


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="seed of the random 2-qubit circuit (default 1)")


async def run_demo(seed: int = 1) -> float:
    """Run the example, print what it prints, and return the expectation value."""
    from qiskit.circuit.random import random_circuit
    from qiskit.quantum_info import SparsePauliOp, Statevector

    from . import Estimator, LocalService, Options, Session

    circuit = random_circuit(2, 2, seed=seed).decompose(reps=1)
    observable = SparsePauliOp("IY")
    options = Options(optimization_level=2, resilience_level=2)
    async with Session(service=LocalService(), backend="ibmq_qasm_simulator", max_time="25m"):
        result = await Estimator(options=options).run([(circuit, observable)])
    value = float(result[0].data.evs)
    exact = Statevector(circuit).expectation_value(observable).real
    print(f"observable: {observable}")
    print(f"expectation value: {value!r}")
    print(f"metadata: {result[0].metadata}")
    print(f"Statevector reference: {exact!r} (difference {abs(value - exact):.1e})")
    return value


def main(args: argparse.Namespace) -> int:
    show_compile_notice()  # the first run on a machine compiles the kernels it needs: say so
    asyncio.run(run_demo(args.seed))
    return 0
