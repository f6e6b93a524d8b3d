"""``aqrt serve``: IBM Quantum's Runtime REST API over aqrt's local engine.

The official ``qiskit-ibm-runtime`` client (and aqrt's own HTTP client) can point at it. HTTP
lives in one module per resource (:mod:`.auth`, :mod:`.backend_routes`, :mod:`.job_routes`,
:mod:`.session_routes`, put together by :mod:`.app`); they reach the work through the app's
:class:`~.runtime.RuntimeServer` (key in :mod:`.keys`), which coordinates one module per job:
:mod:`.validation`, :mod:`.params`, :mod:`.job_lifecycle`, :mod:`.session_lifecycle`,
:mod:`.recovery`, :mod:`.responses`, :mod:`.idempotency`, :mod:`.usage`, over :mod:`.store`
(SQLite, off the event loop) and :mod:`.tokens`. The API's vocabulary is
:mod:`aqrt.wire.runtime_api`, shared with aqrt's client. Start it with ``python -m aqrt serve``
or::

    from aiohttp import web
    from aqrt.server import ServerConfig, create_app

    web.run_app(create_app(ServerConfig(db_path="jobs.sqlite3", api_keys={"KEY": "alice"})))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .background import serve_in_thread
    from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve_in_thread"]

# Loaded on first use, so that finding ``aqrt.server.cli`` (which ``aqrt --help`` does) imports
# neither aiohttp nor the runtime.
_HOMES = {"ServerConfig": ".config", "create_app": ".app", "serve_in_thread": ".background"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value
