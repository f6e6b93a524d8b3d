"""examples/asgi_service.py driven through the ASGI protocol itself (lifespan, requests in
several body chunks, disconnects), no server: 100 concurrent requests, and a disconnect that
cancels the request's job."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qiskit import qasm3
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from ..sweeps import ansatz, grid

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("aqrt_example_asgi_service", ROOT / "examples" / "asgi_service.py")
assert _spec is not None and _spec.loader is not None
asgi_service = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(asgi_service)


class Lifespan:
    """Runs an app's lifespan protocol in a task: startup on enter, shutdown on exit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict] = asyncio.Queue()

    async def __aenter__(self) -> Any:
        self.task = asyncio.create_task(self.app({"type": "lifespan"}, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        assert (await self.outbox.get())["type"] == "lifespan.startup.complete"
        return self.app

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        assert (await self.outbox.get())["type"] == "lifespan.shutdown.complete"
        await self.task


async def request(app: Any, body: bytes, *, disconnect: asyncio.Event | None = None) -> tuple[int | None, Any]:
    """POST /expectation with the body in two chunks; on ``disconnect`` the client goes away."""
    inbox: asyncio.Queue[dict] = asyncio.Queue()
    half = len(body) // 2
    inbox.put_nowait({"type": "http.request", "body": body[:half], "more_body": True})
    inbox.put_nowait({"type": "http.request", "body": body[half:], "more_body": False})
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def disconnect_later() -> None:
        assert disconnect is not None
        await disconnect.wait()
        inbox.put_nowait({"type": "http.disconnect"})

    watcher = asyncio.create_task(disconnect_later()) if disconnect is not None else None
    scope = {"type": "http", "method": "POST", "path": "/expectation", "headers": []}
    await app(scope, inbox.get, send)
    if watcher is not None:
        watcher.cancel()
    if not sent:
        return None, None
    return sent[0]["status"], json.loads(sent[1]["body"])


async def test_100_concurrent_requests_get_the_right_values() -> None:
    circuits = [ansatz(n, 2, named=True) for n in (3, 6)]
    cases = []
    for k in range(6):
        circuit = circuits[k % 2]
        values = grid(5 + 40 * (k % 3), circuit.num_parameters, seed=k)
        label = "Z" * circuit.num_qubits
        body = json.dumps({"circuit": qasm3.dumps(circuit), "observables": label, "parameter_values": values.tolist()})
        cases.append((body.encode(), (circuit, SparsePauliOp(label), values)))
    expected = await asyncio.to_thread(lambda: StatevectorEstimator().run([pub for _, pub in cases]).result())
    async with Lifespan(asgi_service.ExpectationApp(max_concurrency=2, max_pending=16)) as app:
        async with asyncio.timeout(100):
            answers = await asyncio.gather(*(request(app, cases[i % 6][0]) for i in range(100)))
        stats = app.batch.statistics()
    assert stats["done"] == 100 and app.batch.status().value == "closed"
    for i, (status, payload) in enumerate(answers):
        assert status == 200, payload
        np.testing.assert_allclose(payload["evs"], expected[i % 6].data.evs, atol=1e-10, rtol=0)


async def test_a_disconnect_cancels_the_job_and_bad_bodies_get_400() -> None:
    circuit = ansatz(16, 4)
    body = json.dumps(
        {
            "circuit": qasm3.dumps(circuit),
            "observables": "Z" * 16,
            "parameter_values": grid(3000, circuit.num_parameters).tolist(),
        }
    ).encode()
    async with Lifespan(asgi_service.ExpectationApp()) as app:
        gone = asyncio.Event()
        pending = asyncio.create_task(request(app, body, disconnect=gone))
        async with asyncio.timeout(60):
            while app.batch.statistics()["running"] == 0:
                await asyncio.sleep(0.02)
        gone.set()
        async with asyncio.timeout(30):
            assert await pending == (None, None)  # nothing is sent to a client that left
        assert app.batch.statistics()["cancelled"] == 1
        status, payload = await request(app, b'{"circuit": "OPENQASM 3.0; qubit[1] q; nope q[0];", "observables": "Z"}')
        assert status == 400 and "bad request body" in payload["error"]


def _request_and_exact_value() -> tuple[dict[str, str], float]:
    circuit = ansatz(3, 2)
    bound = circuit.assign_parameters(grid(1, circuit.num_parameters)[0])
    expected = float(StatevectorEstimator().run([(bound, "ZZZ")]).result()[0].data.evs)
    return {"circuit": qasm3.dumps(bound), "observables": "ZZZ"}, expected


async def test_the_service_under_a_real_asgi_server_on_127_0_0_1(tmp_path: Path) -> None:
    """uvicorn (the examples extra) serves the app on a socket bound here: lifespan opens the
    Batch, a request gets the exact values, and SIGINT shuts it down cleanly (exit 0)."""
    import signal
    import socket
    import sys

    import aiohttp

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--fd",
        str(listener.fileno()),
        "--app-dir",
        str(ROOT / "examples"),
        "--log-level",
        "warning",
        "asgi_service:app",
        pass_fds=(listener.fileno(),),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    listener.close()
    try:
        body, expected = await asyncio.to_thread(_request_and_exact_value)
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(120):
                while True:  # the app starts (lifespan) once uvicorn has imported it
                    try:
                        async with http.post(f"http://127.0.0.1:{port}/expectation", json=body) as response:
                            assert response.status == 200, await response.text()
                            answer = await response.json()
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.2)
        assert abs(float(np.asarray(answer["evs"]).reshape(-1)[0]) - expected) < 1e-9
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
