r"""An aiohttp service that computes expectation values on one long-lived aqrt Batch.

The Batch is opened when the application starts and closed when it shuts down (aiohttp's
``cleanup_ctx``), so every request shares its cache (lowered circuits, term tables) and its
bounds: ``max_concurrency`` jobs run at once, at most ``max_pending`` are unfinished, and a
request past that waits for room instead of growing memory. A client that disconnects cancels
its job (the server runs with ``handler_cancellation=True``).

    POST /expectation   {"circuit": "<OpenQASM 3 or 2 text>" | "<base64 QPY>",
                         "format": "qasm3" | "qasm2" | "qpy"          (default: qasm3),
                         "observables": "ZZ" | [["ZZ", 1.0], ["XI", 0.5]] | a list of those,
                         "parameter_values": [[...], ...] | {"name": [...], ...}   (optional),
                         "precision": 0.0                                        (optional)}
        -> 200 {"job_id", "parameters", "shape", "evs", "stds", "metadata"}  or 400 {"error": "..."}

Positional ``parameter_values`` columns follow ``circuit.parameters`` of the circuit as the
server reads it (Qiskit's order: by name, vector elements by index; the response lists it as
``"parameters"``). OpenQASM 3 renames vector elements, so send values by name when unsure.
    GET /health -> {"status": "ok", "jobs": {...batch statistics...}}

Run it with ``python examples/web_service.py --port 8080`` and try (OpenQASM 3 needs the
``cli`` extra's qiskit-qasm3-import: ``pip install -e '.[cli]'``; OpenQASM 2 and QPY need nothing)::

    curl -s localhost:8080/expectation -H 'Content-Type: application/json' \
        -d '{"circuit": "OPENQASM 2.0; include \"qelib1.inc\"; qreg q[2]; h q[0]; cx q[0],q[1];",
             "format": "qasm2", "observables": "ZZ"}'
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from aiohttp import web
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from aqrt import Batch, Estimator, InvalidInputError, JobCancelledError, LocalService

BATCH = web.AppKey("batch", Batch)
ESTIMATOR = web.AppKey("estimator", Estimator)
_MAX_BODY = 8 << 20
_DECODE_IN_TURN = 16 << 10  # bigger bodies are decoded one at a time (BodyDecoder)


class BadRequest(ValueError):
    """The request body is malformed; the message says how."""


class CircuitCache:
    """Parsed circuits by (format, text). Parsing runs on a worker thread, once per distinct
    circuit even when many requests bring it at the same moment (they await the same task):
    OpenQASM 3 parsing is pure Python, and 200 parses competing for the GIL would stall the loop."""

    def __init__(self, max_entries: int = 256) -> None:
        self._tasks: collections.OrderedDict[tuple[str, str], asyncio.Task[QuantumCircuit]] = collections.OrderedDict()
        self._max_entries = max_entries

    async def get(self, text: str, fmt: str) -> QuantumCircuit:
        key = (fmt, text)
        task = self._tasks.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(asyncio.to_thread(parse_circuit, text, fmt))
            self._tasks[key] = task
            if len(self._tasks) > self._max_entries:
                self._tasks.popitem(last=False)
        self._tasks.move_to_end(key)
        return await asyncio.shield(task)


CIRCUITS = web.AppKey("circuits", CircuitCache)


def parse_circuit(text: str, fmt: str) -> QuantumCircuit:
    """A circuit from OpenQASM 3 / 2 text or base64 QPY (cached: clients resend the same one)."""
    try:
        if fmt == "qasm3":
            from qiskit import qasm3

            return qasm3.loads(text)
        if fmt == "qasm2":
            from qiskit import qasm2

            return qasm2.loads(text)
        if fmt == "qpy":
            from qiskit import qpy

            circuits = qpy.load(io.BytesIO(base64.b64decode(text, validate=True)))
            if len(circuits) != 1:
                raise BadRequest(f"the QPY payload holds {len(circuits)} circuits; send exactly one")
            return circuits[0]
    except BadRequest:
        raise
    except Exception as exc:
        raise BadRequest(f"cannot read the circuit as {fmt}: {exc}") from exc
    raise BadRequest(f"format must be 'qasm3', 'qasm2' or 'qpy', got {fmt!r}")


def parse_observables(spec: Any, num_qubits: int) -> SparsePauliOp | list[SparsePauliOp]:
    """``"ZZ"``, ``[["ZZ", 1.0], ...]``, or a list of either."""

    def one(item: Any) -> SparsePauliOp:
        if isinstance(item, str):
            return SparsePauliOp(item)
        if isinstance(item, list) and item and all(isinstance(t, list) and len(t) == 2 for t in item):
            return SparsePauliOp.from_list([(str(label), complex(coeff)) for label, coeff in item])
        raise BadRequest(f"an observable is a Pauli label or a list of [label, coefficient], got {item!r}")

    try:
        if (
            isinstance(spec, list)
            and spec
            and all(isinstance(i, str) or (isinstance(i, list) and i and isinstance(i[0], list)) for i in spec)
        ):
            observables = [one(item) for item in spec]
        else:
            observables = [one(spec)]
    except BadRequest:
        raise
    except Exception as exc:
        raise BadRequest(f"bad observable: {exc}") from exc
    for observable in observables:
        if observable.num_qubits != num_qubits:
            raise BadRequest(
                f"observable {observable.paulis[0]} acts on {observable.num_qubits} qubits; "
                f"the circuit has {num_qubits}"
            )
    return observables[0] if len(observables) == 1 else observables


def decode_body(raw: bytes) -> tuple[dict[str, Any], Any]:
    """The JSON body and its parameter values as arrays (CPU work that holds the GIL: see BodyDecoder)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or "circuit" not in body or "observables" not in body:
        raise BadRequest('the body must be a JSON object with "circuit" and "observables"')
    values = body.get("parameter_values")
    try:
        if isinstance(values, dict):
            values = {name: np.asarray(v, dtype=float) for name, v in values.items()}
        elif values is not None:
            values = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"parameter_values must be numbers: {exc}") from exc
    return body, values


class BodyDecoder:
    """Decodes big request bodies on the loop, one per loop iteration, in arrival order.

    JSON decoding holds the GIL for a whole body (~3 ms for 150 KB) whichever thread runs it.
    On a worker thread it gains nothing, and costs the loop a wait for the GIL at every socket
    call while bodies are being decoded: a burst of 100 big bodies held the loop 0.35-0.7 s.
    Decoded in turns, one burst holds the loop at most one body at a time."""

    def __init__(self) -> None:
        self._turn = asyncio.Lock()  # FIFO; a waiter is woken in a later loop iteration

    async def decode(self, raw: bytes) -> tuple[dict[str, Any], Any]:
        if len(raw) <= _DECODE_IN_TURN:
            return decode_body(raw)
        async with self._turn:
            decoded = decode_body(raw)
            await asyncio.sleep(0)  # hold the turn into the next iteration: the others queue behind it
            return decoded


DECODER = web.AppKey("decoder", BodyDecoder)


async def parse_request(raw: bytes, circuits: CircuitCache, decoder: BodyDecoder) -> tuple[Any, ...]:
    """The Estimator PUB of a request body."""
    body, values = await decoder.decode(raw)
    circuit = await circuits.get(str(body["circuit"]), str(body.get("format", "qasm3")))
    observables = parse_observables(body["observables"], circuit.num_qubits)
    if values is None and circuit.num_parameters:
        raise BadRequest(f"the circuit has parameters {[p.name for p in circuit.parameters]}; send parameter_values")
    precision = body.get("precision")
    return (circuit, observables, values, None if precision is None else float(precision))


async def expectation(request: web.Request) -> web.Response:
    """POST /expectation: run one Estimator job on the shared Batch; cancel it if the client leaves."""
    try:
        pub = await parse_request(await request.read(), request.app[CIRCUITS], request.app[DECODER])
        job = await request.app[ESTIMATOR].submit([pub])
    except (BadRequest, InvalidInputError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    try:
        result = await job
    except asyncio.CancelledError:  # the client disconnected: nobody wants this job any more
        job.cancel()
        raise
    except JobCancelledError:
        return web.json_response({"error": f"job {job.job_id} was cancelled"}, status=503)
    data = result[0].data
    return web.json_response(
        {
            "job_id": job.job_id,
            "parameters": [p.name for p in pub[0].parameters],
            "shape": list(data.evs.shape),
            "evs": np.asarray(data.evs).tolist(),
            "stds": np.asarray(data.stds).tolist(),
            "metadata": {"target_precision": result[0].metadata.get("target_precision")},
        }
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "jobs": request.app[BATCH].statistics()})


def create_app(
    *, service: LocalService | None = None, max_concurrency: int = 2, max_pending: int = 1000
) -> web.Application:
    """The application; its Batch lives from startup to shutdown."""
    app = web.Application(client_max_size=_MAX_BODY)

    async def batch_context(app: web.Application) -> AsyncIterator[None]:
        async with Batch(service=service, max_concurrency=max_concurrency, max_pending=max_pending) as batch:
            app[BATCH] = batch
            app[ESTIMATOR] = Estimator(session=batch)
            app[CIRCUITS] = CircuitCache()
            app[DECODER] = BodyDecoder()
            yield
            # shutdown: the block closes the batch, waiting for the jobs still running

    app.cleanup_ctx.append(batch_context)
    app.router.add_post("/expectation", expectation)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="aqrt expectation-value web service (aiohttp)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-concurrency", type=int, default=2)
    parser.add_argument("--max-pending", type=int, default=1000)
    args = parser.parse_args(argv)
    app = create_app(max_concurrency=args.max_concurrency, max_pending=args.max_pending)
    web.run_app(app, host=args.host, port=args.port, handler_cancellation=True)


if __name__ == "__main__":
    main()
