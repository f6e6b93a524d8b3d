"""``/api/v1/backends``: the served backend's list entry, configuration, properties, status.

The configuration is a ``BackendConfiguration`` document (what qiskit-ibm-runtime's
``configuration_from_server_data`` and ``convert_to_target`` read): IBM-like basis gates,
every 1-qubit gate on every qubit and every 2-qubit gate on every ordered pair (full
connectivity), so circuits transpiled against ``IBMBackend.target`` pass the official
primitives' ISA checks. ``simulator`` is false, as for a device: the official client then opens
real sessions and runs its ISA checks, exactly as against hardware.
"""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from .keys import SERVER_KEY
from .validation import check_backend

__all__ = ["BASIS_GATES", "OTHER_INSTRUCTIONS", "backend_routes", "configuration", "properties"]

#: The advertised basis (all native to the statevector engine).
BASIS_GATES = ["cx", "cz", "ecr", "id", "rz", "sx", "x"]
#: Everything else a served circuit may hold, as IBM's dynamic-circuit devices list it: the local
#: backend runs each (mid-circuit measurement, reset and control flow on its dynamic route).
OTHER_INSTRUCTIONS = ["measure", "reset", "delay", "if_else", "while_loop", "for_loop", "switch_case"]
_TWO_QUBIT = {"cx", "cz", "ecr"}
_VERSION = "1.0.0"
_EPOCH = "2026-01-01T00:00:00+00:00"


def configuration(name: str, n_qubits: int, max_shots: int = 100_000, max_experiments: int = 300) -> dict[str, Any]:
    """The backend's configuration document."""
    pairs = [list(pair) for pair in itertools.permutations(range(n_qubits), 2)]
    singles = [[q] for q in range(n_qubits)]
    gates = [
        {
            "name": gate,
            "parameters": ["theta"] if gate == "rz" else [],
            "qasm_def": gate,
            "coupling_map": pairs if gate in _TWO_QUBIT else singles,
        }
        for gate in BASIS_GATES
    ]
    return {
        "backend_name": name,
        "backend_version": _VERSION,
        "n_qubits": n_qubits,
        "basis_gates": list(BASIS_GATES),
        "gates": gates,
        "supported_instructions": [*BASIS_GATES, *OTHER_INSTRUCTIONS],
        "coupling_map": pairs,
        "local": False,
        "simulator": False,
        "conditional": True,
        "open_pulse": False,
        "memory": True,
        "max_shots": max_shots,
        "max_experiments": max_experiments,
        "dt": 1e-9,
        "dtm": 1e-9,
        "meas_map": [list(range(n_qubits))],
        "processor_type": {"family": "aqrt", "revision": "1"},
        "description": "aqrt's exact statevector engine behind the Runtime REST API",
        "online_date": _EPOCH,
        "supported_features": ["qasm3"],
        "credits_required": False,
        "rep_times": [0.001],
        "default_rep_delay": 250.0,
        "rep_delay_range": [0.0, 500.0],
        "dynamic_reprate_enabled": True,
        "quantum_volume": None,
        "qv": None,
    }


def properties(name: str, n_qubits: int) -> dict[str, Any]:
    """The backend's properties document: ideal qubits, no gate errors."""

    def nduv(prop: str, value: float, unit: str) -> dict[str, Any]:
        return {"date": _EPOCH, "name": prop, "unit": unit, "value": value}

    qubits = [
        [
            nduv("T1", 1.0e6, "us"),
            nduv("T2", 1.0e6, "us"),
            nduv("frequency", 5.0, "GHz"),
            nduv("readout_error", 0.0, ""),
            nduv("readout_length", 1000.0, "ns"),
        ]
        for _ in range(n_qubits)
    ]
    return {
        "backend_name": name,
        "backend_version": _VERSION,
        "last_update_date": _EPOCH,
        "qubits": qubits,
        "gates": [],
        "general": [],
    }


def _check_name(request: web.Request) -> str:
    return check_backend(request.app[SERVER_KEY].config, request.match_info["name"])  # 404 if not served


async def list_backends(request: web.Request) -> web.Response:
    """``GET /backends``: the one served backend, online, with its queue length."""
    server = request.app[SERVER_KEY]
    name = server.config.backend_name
    entry = {
        "name": name,
        "status": {"name": "online", "reason": "available"},
        "qubits": server.config.backend_qubits,
        "queue_length": server.queue_length(),
        "processor_type": {"family": "aqrt", "revision": "1"},
        "class": "simulator-exact",
        "performance": {},
    }
    return web.json_response({"devices": [entry]})


async def get_configuration(request: web.Request) -> web.Response:
    """``GET /backends/{name}/configuration``."""
    name = _check_name(request)
    config = request.app[SERVER_KEY].config
    return web.json_response(
        configuration(name, config.backend_qubits, max_shots=config.max_shots, max_experiments=config.max_pubs)
    )


async def get_properties(request: web.Request) -> web.Response:
    """``GET /backends/{name}/properties``."""
    name = _check_name(request)
    return web.json_response(properties(name, request.app[SERVER_KEY].config.backend_qubits))


async def get_status(request: web.Request) -> web.Response:
    """``GET /backends/{name}/status``."""
    name = _check_name(request)
    server = request.app[SERVER_KEY]
    return web.json_response(
        {
            "backend_name": name,
            "backend_version": _VERSION,
            "state": True,
            "status": "active",
            "message": "",
            "length_queue": server.queue_length(),
        }
    )


def backend_routes() -> list[web.RouteDef]:
    """The ``/api/v1/backends`` routes."""
    return [
        web.get("/api/v1/backends", list_backends),
        web.get("/api/v1/backends/{name}/configuration", get_configuration),
        web.get("/api/v1/backends/{name}/properties", get_properties),
        web.get("/api/v1/backends/{name}/status", get_status),
    ]
