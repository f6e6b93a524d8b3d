"""A load generator for the web-service test, run in its own process so that its work does
not compete with the server's loop for the GIL: ``python -m tests.apps.load_client URL N``.

Prints one JSON line: per-request latency, status, values and parameter order."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import time

import aiohttp
from qiskit import qasm3, qpy
from qiskit.quantum_info import SparsePauliOp

from ..sweeps import ansatz, grid


def requests() -> list[tuple[dict, tuple]]:
    """10 distinct requests (small and mid-size sweeps, QASM 3 and QPY) and their PUBs."""
    out = []
    for k in range(10):
        n, layers, bindings = (3, 1, 5) if k % 2 else (9, 3, 400)
        circuit = ansatz(n, layers, named=True)
        values = grid(bindings, circuit.num_parameters, seed=k)
        observable = [["Z" * n, 1.0], ["X" + "I" * (n - 1), 0.25]]
        if k % 3 == 0:
            buffer = io.BytesIO()
            qpy.dump(circuit, buffer)
            body = {"circuit": base64.b64encode(buffer.getvalue()).decode(), "format": "qpy"}
        else:
            body = {"circuit": qasm3.dumps(circuit), "format": "qasm3"}
        body.update(observables=observable, parameter_values=values.tolist())
        out.append((body, (circuit, SparsePauliOp.from_list([(label, c) for label, c in observable]), values)))
    return out


async def run(url: str, count: int) -> dict:
    bodies = [body for body, _ in requests()]
    outcomes: list[dict] = [{} for _ in range(count)]

    async def one(client: aiohttp.ClientSession, i: int) -> None:
        started = time.perf_counter()
        async with client.post(f"{url}/expectation", json=bodies[i % len(bodies)]) as response:
            payload = await response.json()
        outcomes[i] = {"status": response.status, "latency": time.perf_counter() - started, **payload}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
        for body in bodies:  # steady state: kernels compiled, circuits parsed and cached
            async with client.post(f"{url}/expectation", json=body) as response:
                assert response.status == 200, await response.text()
        started = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(count)))
        wall = time.perf_counter() - started
    return {"wall": wall, "outcomes": outcomes}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], int(sys.argv[2])))))
