"""A job transpiled at ``optimization_level`` gives the same values in every process (#15):
Qiskit's preset pass managers choose among several two-qubit basis gates in an order set by
string hashing, which differs per process; aqrt optimises to one two-qubit gate."""

from __future__ import annotations

import os
import subprocess
import sys

from aqrt.backends.local.transpile import OPTIMIZATION_BASIS

SCRIPT = """
import asyncio
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp
from aqrt import Estimator, LocalService, Options, Session

async def main():
    values = []
    for seed in range(1, 4):
        circuit = random_circuit(4, 6, seed=seed).decompose(reps=1)
        async with Session(service=LocalService(), backend="aqrt_statevector"):
            estimator = Estimator(options=Options(optimization_level=2, seed=1))
            result = await estimator.run([(circuit, SparsePauliOp("IYZX"))])
        values.append(float(result[0].data.evs))
    print(repr(values))

asyncio.run(main())
"""


def _values(hash_seed: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_optimised_jobs_give_identical_values_whatever_the_process_hashing() -> None:
    assert _values("1") == _values("2") == _values("3")


def test_the_optimisation_basis_has_one_two_qubit_gate() -> None:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    gates = get_standard_gate_name_mapping()
    assert [name for name in OPTIMIZATION_BASIS if gates[name].num_qubits == 2] == ["cx"]
    assert {"u", "rz", "sx", "h", "ccx"} <= set(OPTIMIZATION_BASIS)
