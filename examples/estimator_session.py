"""The seed example: an Estimator job in a session on the local statevector backend."""

import asyncio

from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt import Estimator, LocalService, Options, Session


async def main() -> None:
    circuit = random_circuit(2, 2, seed=1).decompose(reps=1)
    observable = SparsePauliOp("IY")
    options = Options(optimization_level=2, resilience_level=2)

    service = LocalService()
    async with Session(service=service, backend="ibmq_qasm_simulator", max_time="25m"):
        estimator = Estimator(options=options)  # picks up the open session
        job = estimator.run([(circuit, observable)])
        result = await job

    print(f"observable: {observable}")
    print(f"expectation value: {float(result[0].data.evs)!r}")
    print(f"metadata: {result[0].metadata}")
    exact = Statevector(circuit).expectation_value(observable).real
    print(f"Statevector reference: {exact!r} (difference {abs(float(result[0].data.evs) - exact):.1e})")


if __name__ == "__main__":
    asyncio.run(main())
