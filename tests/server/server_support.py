"""Shared by the ``aqrt serve`` tests: a real server on 127.0.0.1 (ephemeral port) in the test's
loop, a small HTTP helper, and circuits (quick ones, and one slow enough to cancel)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from aqrt.server import ServerConfig, create_app

KEYS = {"alice-key": "alice", "bob-key": "bob"}
GRANT = "urn:ibm:params:oauth:grant-type:apikey"
CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/aqrt:test::"
FINAL = ("Completed", "Failed", "Cancelled")


class FakeClock:
    """A wall clock the test moves by hand (token expiry)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_config(tmp_path: Path, **changes: Any) -> ServerConfig:
    # As wide as the engine allows: a circuit wider than the advertised width fails with 1517.
    width = changes.get("max_qubits", ServerConfig.__dataclass_fields__["max_qubits"].default)
    values: dict[str, Any] = {"db_path": tmp_path / "server.sqlite3", "api_keys": KEYS, "backend_qubits": width}
    values.update(changes)
    return ServerConfig(**values)


class Client:
    """Requests against one running server."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def token(self, key: str = "alice-key") -> str:
        async with self.http.post(f"{self.base}/identity/token", data={"grant_type": GRANT, "apikey": key}) as response:
            assert response.status == 200, await response.text()
            return (await response.json())["access_token"]

    async def call(
        self, method: str, path: str, token: str | None, *, body: Any = None, data: Any = None, params: Any = None
    ) -> tuple[int, Any]:
        headers = {"Service-CRN": CRN, "IBM-API-Version": "2025-05-01"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        async with self.http.request(
            method, f"{self.base}/api/v1{path}", headers=headers, data=data, params=params
        ) as response:
            text = await response.text()
            if response.status == 204 or not text:
                return response.status, None
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def submit_raw(
        self, token: str, program: str = "estimator", pubs: list[Any] | None = None, **extra: Any
    ) -> tuple[int, Any]:
        """``POST /jobs`` with PUBs encoded as the official client does; ``(status, body)``."""
        from aqrt.wire import pubs_to_wire

        if pubs is None:
            pubs = [(bell(), "ZZ")]
        body = {
            "program_id": program,
            "backend": "aqrt_statevector",
            "params": {
                "pubs": pubs_to_wire(program, pubs),
                "options": extra.pop("options", {}),
                "version": 2,
                "support_qiskit": True,
            },
        }
        body.update(extra)
        return await self.call("POST", "/jobs", token, body=body)

    async def submit(self, token: str, program: str, pubs: list[Any], **extra: Any) -> str:
        status, answer = await self.submit_raw(token, program, pubs, **extra)
        assert status == 200, answer
        return answer["id"]

    async def wait_final(self, token: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                status, job = await self.call("GET", f"/jobs/{job_id}", token)
                assert status == 200, job
                if job["state"]["status"] in FINAL:
                    return job
                await asyncio.sleep(0.02)

    async def wait_status(self, token: str, job_id: str, wanted: str, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while True:
                _, job = await self.call("GET", f"/jobs/{job_id}", token)
                if job["state"]["status"] == wanted:
                    return
                assert job["state"]["status"] not in FINAL, job
                await asyncio.sleep(0.01)

    async def result(self, token: str, job_id: str) -> Any:
        from aqrt.wire import decode

        status, _ = await self.call("GET", f"/jobs/{job_id}", token)
        assert status == 200
        async with self.http.get(
            f"{self.base}/api/v1/jobs/{job_id}/results", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            text = await response.text()
            assert response.status == 200, text
            return decode(text)


@contextlib.asynccontextmanager
async def running_server(config: ServerConfig) -> AsyncIterator[Client]:
    """Start ``aqrt serve``'s app on 127.0.0.1 (a free port), yield a client, stop it."""
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            yield Client(http, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


def measured_bell() -> QuantumCircuit:
    circuit = bell()
    circuit.measure_all()
    return circuit


def rotation() -> QuantumCircuit:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    return circuit


def slow_circuit(num_qubits: int = 22, layers: int = 120) -> QuantumCircuit:
    """A circuit the engine needs seconds for (to be cancelled or to outlast a deadline)."""
    circuit = QuantumCircuit(num_qubits)
    for layer in range(layers):
        for qubit in range(num_qubits):
            circuit.rx(0.1 * (qubit + layer + 1), qubit)
        for qubit in range(num_qubits - 1):
            circuit.cx(qubit, qubit + 1)
    return circuit


def stored_job_row(job_id: str, user: str = "alice") -> dict[str, Any]:
    """A minimal job row for tests that write to the store directly."""
    return {
        "id": job_id,
        "user": user,
        "program": "sampler",
        "backend": "b",
        "status": "Queued",
        "tags": [],
        "created": "2026-01-01T00:00:00.000000+00:00",
    }
