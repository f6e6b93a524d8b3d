"""``aqrt serve`` on its own event loop in a background thread: for synchronous callers
(the official qiskit-ibm-runtime client, scripts, benchmarks) that need a live server.

Example::

    with serve_in_thread(ServerConfig(db_path=":memory:", api_keys={"KEY": "me"})) as url:
        ...  # http://127.0.0.1:PORT; the Runtime API is at url + "/api/v1"
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .config import ServerConfig

__all__ = ["serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(
    config: ServerConfig, *, host: str = "127.0.0.1", port: int = 0, debug: bool = False, start_timeout: float = 120
) -> Iterator[str]:
    """Start the app on ``host:port`` (0 = a free port) in a new thread, with ``config``'s
    timeouts and connection limit (:mod:`aqrt.server.connections`); yield its base URL;
    on exit stop it (jobs still running are left for the next start, as on any stop) and join
    the thread. Errors of the server thread are raised in the caller."""
    from aiohttp import web

    from .app import create_app
    from .connections import LimitedSite, listen

    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        runner = web.AppRunner(create_app(config))
        await runner.setup()
        try:
            await LimitedSite(runner, listen(host, port), max_connections=config.max_connections).start()
            stop = asyncio.Event()
            state.update(port=runner.addresses[0][1], loop=asyncio.get_running_loop(), stop=stop)
            started.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(serve(), debug=debug)
        except BaseException as exc:  # handed to the caller's thread
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="aqrt-serve", daemon=True)
    thread.start()
    started.wait(start_timeout)
    try:
        if "port" not in state:
            raise RuntimeError("aqrt serve did not start") from state.get("error")
        yield f"http://{host}:{state['port']}"
    finally:
        loop = state.get("loop")
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(state["stop"].set)
        thread.join()
    if "error" in state:
        raise RuntimeError("aqrt serve failed") from state["error"]
