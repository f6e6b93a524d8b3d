"""The aiohttp keys the server's modules share: the app's :class:`RuntimeServer` and the user a
request is authenticated as.

Route modules and middlewares read the keys from here, not from the modules that set them, so
no route depends on the runtime's module (``RuntimeServer`` is named for the type checker only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .runtime import RuntimeServer

__all__ = ["SERVER_KEY", "USER_KEY"]

#: The app's :class:`~aqrt.server.runtime.RuntimeServer` (set by :func:`aqrt.server.create_app`).
SERVER_KEY: web.AppKey[RuntimeServer] = web.AppKey("aqrt_runtime_server")
#: The user of the request's bearer token (set by :func:`aqrt.server.auth.auth_middleware`).
USER_KEY = web.RequestKey("aqrt_user", str)
