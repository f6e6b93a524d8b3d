"""``aqrt serve``: IBM Quantum's Runtime REST API over aqrt's local engine.

The official ``qiskit-ibm-runtime`` client (and aqrt's own HTTP client) can point at it. One
module per resource (:mod:`.auth`, :mod:`.backends`, :mod:`.jobs`, :mod:`.sessions`) over
:mod:`.runtime` (jobs and sessions on aqrt's Session/Batch/Estimator/Sampler) and
:mod:`.store` (SQLite, off the event loop). Start it with ``python -m aqrt serve`` or::

    from aiohttp import web
    from aqrt.server import ServerConfig, create_app

    web.run_app(create_app(ServerConfig(db_path="jobs.sqlite3", api_keys={"KEY": "alice"})))
"""

from .app import create_app
from .background import serve_in_thread
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve_in_thread"]
