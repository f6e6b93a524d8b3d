"""Soak: several users share one ``aqrt serve`` for a bounded time (issue #12).

The server runs as its own process (``python -m aqrt serve --port 0``), so its memory is
measured alone (RSS sampled every 0.5 s with psutil). Users talk bare HTTP (aiohttp), each a
loop that submits a job, waits for it (polling every 10 ms) and starts the next:

- ``light-N`` users submit small mixed jobs: a 2-qubit Estimator PUB (exact), a 2-qubit Sampler
  PUB of 1000 shots, and a 12-qubit circuit too big to run inline (it needs the engine);
- one ``heavy`` user keeps ``--backlog`` slow jobs (an 18-qubit, 40-layer circuit, ~0.2 s of
  engine time each) queued at all times.

Reported per user: jobs completed, p50 and p99 latency (submit -> Completed seen); overall
jobs/s; the server's RSS at start, maximum and end. With a FIFO engine queue the light users'
big-enough jobs wait behind the heavy backlog; with fair turns they wait for about one heavy job.

Usage::

    python benchmarks/soak.py [--seconds 30] [--light-users 3] [--backlog 20] [--workers N]

``--workers N`` serves with a local Dask cluster of N worker processes (``aqrt serve --workers``):
the engine work leaves the server's process (the server RSS then excludes the workers').

Standalone: the repository root goes on ``sys.path`` (and ``PYTHONPATH`` of the server), so the
working tree's ``aqrt`` is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import aiohttp
import psutil
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from aqrt.wire import pubs_to_wire
from aqrt.wire.runtime_api import IAM_GRANT_TYPE, INSTANCE_HEADER

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/aqrt:soak::"
FINAL = {"Completed", "Failed", "Cancelled"}


def _layers(width: int, depth: int) -> QuantumCircuit:
    """Rotations and a CX ladder in the served basis (rz, sx, cx): no transpiling needed."""
    theta = Parameter("theta")
    circuit = QuantumCircuit(width)
    for layer in range(depth):
        for qubit in range(width):
            circuit.rz(theta * (layer + 1) + qubit, qubit)
            circuit.sx(qubit)
        for qubit in range(layer % 2, width - 1, 2):
            circuit.cx(qubit, qubit + 1)
    return circuit


def _estimator_body(circuit: QuantumCircuit, observable: str, values: list[float]) -> dict[str, Any]:
    pubs = pubs_to_wire("estimator", [(circuit, observable, values)])
    return {"program_id": "estimator", "backend": "aqrt_statevector", "params": {"pubs": pubs, "version": 2}}


def _bodies() -> dict[str, list[dict[str, Any]]]:
    bell = QuantumCircuit(2)
    bell.rz(0.3, 0)
    bell.sx(0)
    bell.cx(0, 1)
    measured = bell.measure_all(inplace=False)
    sampler = {
        "program_id": "sampler",
        "backend": "aqrt_statevector",
        "params": {"pubs": pubs_to_wire("sampler", [(measured, None, 1000)]), "version": 2},
    }
    light = [
        _estimator_body(bell, "ZZ", []),
        sampler,
        _estimator_body(_layers(12, 4), "Z" * 12, [0.5]),
    ]
    heavy = [_estimator_body(_layers(18, 40), "Z" * 18, [0.7])]
    return {"light": light, "heavy": heavy}


async def _start_server(
    db: Path, keys: dict[str, str], log: Path, workers: int
) -> tuple[asyncio.subprocess.Process, str]:
    arguments = [arg for key, user in keys.items() for arg in ("--api-key", f"{key}={user}")]
    if workers:
        arguments += ["--workers", str(workers)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "aqrt", "serve", "--port", "0", "--db", str(db), "--backend-qubits", "18", *arguments),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=environment,
        )
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/api/v1", first)
    if found is None:
        raise SystemExit(f"the server did not start: {first!r}\n{await asyncio.to_thread(log.read_text)}")
    return process, f"http://127.0.0.1:{found.group(1)}"


async def _token(http: aiohttp.ClientSession, url: str, key: str) -> dict[str, str]:
    form = {"grant_type": IAM_GRANT_TYPE, "apikey": key}
    async with http.post(f"{url}/identity/token", data=form) as response:
        token = (await response.json())["access_token"]
    return {"Authorization": f"Bearer {token}", INSTANCE_HEADER: CRN}


async def _submit(http: aiohttp.ClientSession, api: str, headers: dict[str, str], body: dict[str, Any]) -> str:
    async with http.post(f"{api}/jobs", json=body, headers=headers) as response:
        answer = await response.json()
        if response.status != 200:
            raise RuntimeError(f"POST /jobs answered {response.status}: {answer}")
        return str(answer["id"])


async def _wait(http: aiohttp.ClientSession, api: str, headers: dict[str, str], job_id: str) -> str:
    while True:
        async with http.get(f"{api}/jobs/{job_id}", headers=headers) as response:
            status = (await response.json())["state"]["status"]
        if status in FINAL:
            return str(status)
        await asyncio.sleep(0.01)


async def _light_user(http, api, headers, bodies, deadline: float, latencies: list[float], failures: list[str]) -> None:
    turn = 0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        job_id = await _submit(http, api, headers, bodies[turn % len(bodies)])
        status = await _wait(http, api, headers, job_id)
        if status != "Completed":
            failures.append(status)
        latencies.append(time.perf_counter() - started)
        turn += 1


async def _heavy_user(http, api, headers, body, deadline: float, backlog: int, latencies: list[float]) -> None:
    pending: dict[str, float] = {}
    while time.monotonic() < deadline:
        while len(pending) < backlog:
            pending[await _submit(http, api, headers, body)] = time.perf_counter()
        for job_id in list(pending):
            async with http.get(f"{api}/jobs/{job_id}", headers=headers) as response:
                status = (await response.json())["state"]["status"]
            if status in FINAL:
                latencies.append(time.perf_counter() - pending.pop(job_id))
        await asyncio.sleep(0.05)
    for job_id in pending:  # leave nothing running behind the measurement
        async with http.post(f"{api}/jobs/{job_id}/cancel", headers=headers):
            pass


async def _sample_rss(process: psutil.Process, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    start = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - start, process.memory_info().rss))
        await asyncio.sleep(0.5)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def main(seconds: float, light_users: int, backlog: int, workers: int) -> None:
    keys = {f"key-light-{n}": f"light-{n}" for n in range(light_users)} | {"key-heavy": "heavy"}
    bodies = _bodies()
    with tempfile.TemporaryDirectory() as tmp:
        server, url = await _start_server(Path(tmp) / "soak.sqlite3", keys, Path(tmp) / "server.log", workers)
        api = f"{url}/api/v1"
        try:
            async with aiohttp.ClientSession() as http:
                headers = {user: await _token(http, url, key) for key, user in keys.items()}
                for body in bodies["light"] + bodies["heavy"]:  # warm: the engine compiles once
                    await _wait(http, api, headers["heavy"], await _submit(http, api, headers["heavy"], body))
                samples: list[tuple[float, int]] = []
                stop = asyncio.Event()
                sampler = asyncio.create_task(_sample_rss(psutil.Process(server.pid), samples, stop))
                latencies: dict[str, list[float]] = {user: [] for user in keys.values()}
                failures: list[str] = []
                deadline = time.monotonic() + seconds
                started = time.perf_counter()
                await asyncio.gather(
                    _heavy_user(http, api, headers["heavy"], bodies["heavy"][0], deadline, backlog, latencies["heavy"]),
                    *(
                        _light_user(http, api, headers[user], bodies["light"], deadline, latencies[user], failures)
                        for user in keys.values()
                        if user != "heavy"
                    ),
                )
                elapsed = time.perf_counter() - started
                stop.set()
                await sampler
        finally:
            server.terminate()
            await server.wait()
    total = sum(len(values) for values in latencies.values())
    cluster = f"; jobs on a local Dask cluster of {workers} workers" if workers else ""
    print(
        f"{seconds:.0f} s, {light_users} light users + 1 heavy user (backlog {backlog}); server RSS sampled every 0.5 s"
        + cluster
    )
    print(f"{'user':<10} {'jobs':>6} {'p50 ms':>9} {'p99 ms':>9}")
    for user, values in latencies.items():
        p50, p99 = _percentile(values, 0.5) * 1e3, _percentile(values, 0.99) * 1e3
        print(f"{user:<10} {len(values):>6} {p50:>9.1f} {p99:>9.1f}")
    rss = [value for _, value in samples]
    print(f"jobs/s {total / elapsed:.1f}; failed light jobs {len(failures)}")
    print(
        f"server RSS MiB: start {rss[0] / 2**20:.0f}, max {max(rss) / 2**20:.0f}, end {rss[-1] / 2**20:.0f}"
        f" (median {statistics.median(rss) / 2**20:.0f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--light-users", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0, help="serve with --workers N (a local Dask cluster)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.light_users, arguments.backlog, arguments.workers))
