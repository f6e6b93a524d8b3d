"""The expectation-value service as a bare ASGI 3 application: no web framework, any ASGI server
(``uvicorn examples.asgi_service:app``, hypercorn, ...).

The ``lifespan`` protocol opens one aqrt Batch at startup and closes it at shutdown;
``POST /expectation`` takes ``{"circuit": "<OpenQASM 3>", "observables": "ZZ" | ["ZZ", "XI"],
"parameter_values": [[...], ...]}`` and answers ``{"job_id", "evs"}``; a client that disconnects
(``http.disconnect``) cancels its job. See ``web_service.py`` for the fuller aiohttp version.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import numpy as np

from aqrt import Batch, Estimator, InvalidInputError, JobCancelledError

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BadRequest(ValueError):
    """The body is malformed; the message says how."""


def parse_body(raw: bytes) -> tuple[Any, ...]:
    """The Estimator PUB of a request body (on a worker thread: JSON and QASM parsing are CPU work)."""
    from qiskit import qasm3
    from qiskit.quantum_info import SparsePauliOp

    try:
        body = json.loads(raw)
        circuit = qasm3.loads(body["circuit"])
        labels = body["observables"]
        observables = [SparsePauliOp(label) for label in ([labels] if isinstance(labels, str) else labels)]
        values = body.get("parameter_values")
        return (
            circuit,
            observables if len(observables) > 1 else observables[0],
            None if values is None else np.asarray(values, dtype=float),
        )
    except Exception as exc:
        raise BadRequest(f"bad request body: {type(exc).__name__}: {exc}") from exc


class ExpectationApp:
    """An ASGI 3 application over one long-lived aqrt Batch."""

    def __init__(self, *, service: Any = None, max_concurrency: int = 2, max_pending: int = 1000) -> None:
        self._batch_args = {"service": service, "max_concurrency": max_concurrency, "max_pending": max_pending}
        self.batch: Batch | None = None
        self._estimator: Estimator | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/expectation"):
            await self._expectation(receive, send)
        elif scope["type"] == "http":
            await _respond(send, 404, {"error": f"no route {scope['method']} {scope['path']}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.batch = Batch(**self._batch_args)
                await self.batch.__aenter__()
                self._estimator = Estimator(session=self.batch)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.batch is not None:
                    await self.batch.__aexit__(None, None, None)  # waits for the jobs still running
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _expectation(self, receive: Receive, send: Send) -> None:
        assert self._estimator is not None, "the lifespan protocol did not start the app"
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            pub = await anyio.to_thread.run_sync(parse_body, b"".join(chunks))
            job = await self._estimator.submit([pub])
        except (BadRequest, InvalidInputError) as exc:
            await _respond(send, 400, {"error": str(exc)})
            return

        async def cancel_on_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            job.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(cancel_on_disconnect)
            try:
                result = await job
            except JobCancelledError:
                return  # the client is gone; there is nobody to answer
            finally:
                group.cancel_scope.cancel()
        await _respond(send, 200, {"job_id": job.job_id, "evs": np.asarray(result[0].data.evs).tolist()})


async def _respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = ExpectationApp()
