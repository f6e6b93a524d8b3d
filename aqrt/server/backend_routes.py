"""``/api/v1/backends``: the served backends' list entries, configurations, properties, status.

What each document holds is :mod:`aqrt.server.catalog`'s: a fake device's own configuration and
properties (the official client builds the device's ``Target`` from them), aqrt_statevector's
IBM-like basis with full connectivity. Every backend says ``simulator: false``, as a device does:
the official client then opens real sessions and runs its ISA checks, exactly as against hardware.
"""

from __future__ import annotations

from aiohttp import web

from .catalog import ServedBackendInfo
from .keys import SERVER_KEY
from .validation import check_backend

__all__ = ["backend_routes"]

_VERSION = "1.0.0"


def _info(request: web.Request) -> ServedBackendInfo:
    server = request.app[SERVER_KEY]
    name = check_backend(server.config, request.match_info["name"])  # 404 if not served
    return server.catalog[name]


async def list_backends(request: web.Request) -> web.Response:
    """``GET /backends``: every served backend, online, with the server's queue length."""
    server = request.app[SERVER_KEY]
    queue = server.queue_length()
    devices = [
        {
            "name": info.name,
            "status": {"name": "online", "reason": "available"},
            "qubits": info.num_qubits,
            "queue_length": queue,
            "processor_type": info.processor_type,
            "class": "device-noisy" if info.is_device else "simulator-exact",
            "performance": {},
        }
        for info in server.catalog.values()
    ]
    return web.json_response({"devices": devices})


async def get_configuration(request: web.Request) -> web.Response:
    """``GET /backends/{name}/configuration``."""
    return web.Response(text=_info(request).configuration_json, content_type="application/json")


async def get_properties(request: web.Request) -> web.Response:
    """``GET /backends/{name}/properties``."""
    return web.Response(text=_info(request).properties_json, content_type="application/json")


async def get_status(request: web.Request) -> web.Response:
    """``GET /backends/{name}/status``."""
    info = _info(request)
    return web.json_response(
        {
            "backend_name": info.name,
            "backend_version": str(info.configuration.get("backend_version", _VERSION)),
            "state": True,
            "status": "active",
            "message": "",
            "length_queue": request.app[SERVER_KEY].queue_length(),
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
