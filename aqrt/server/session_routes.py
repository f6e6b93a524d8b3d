"""``/api/v1/sessions``: create, read, close (``PATCH accepting_jobs=false``), cancel.

HTTP only: the work is :class:`~aqrt.server.session_lifecycle.SessionLifecycle`'s.
"""

from __future__ import annotations

from aiohttp import web

from .connections import read_body
from .keys import SERVER_KEY, USER_KEY
from .validation import check_close_body, instance_header, read_json

__all__ = ["session_routes"]


async def create_session(request: web.Request) -> web.Response:
    """``POST /sessions``."""
    await read_body(request)  # within body_timeout (408); read_json parses the bytes kept
    body = await read_json(request)
    sessions = request.app[SERVER_KEY].sessions
    details = await sessions.create(request[USER_KEY], instance_header(request), body)
    return web.json_response(details)


async def get_session(request: web.Request) -> web.Response:
    """``GET /sessions/{id}``."""
    sessions = request.app[SERVER_KEY].sessions
    return web.json_response(await sessions.read(request.match_info["session_id"], request[USER_KEY]))


async def patch_session(request: web.Request) -> web.Response:
    """``PATCH /sessions/{id}`` ``{"accepting_jobs": false}``: close the session."""
    await read_body(request)
    check_close_body(await read_json(request))
    sessions = request.app[SERVER_KEY].sessions
    await sessions.close(request.match_info["session_id"], request[USER_KEY], cancel=False)
    return web.Response(status=204)


async def cancel_session(request: web.Request) -> web.Response:
    """``DELETE /sessions/{id}/close``: cancel the session and its unfinished jobs."""
    sessions = request.app[SERVER_KEY].sessions
    await sessions.close(request.match_info["session_id"], request[USER_KEY], cancel=True)
    return web.Response(status=204)


def session_routes() -> list[web.RouteDef]:
    """The ``/api/v1/sessions`` routes."""
    return [
        web.post("/api/v1/sessions", create_session),
        web.get("/api/v1/sessions/{session_id}", get_session),
        web.patch("/api/v1/sessions/{session_id}", patch_session),
        web.delete("/api/v1/sessions/{session_id}/close", cancel_session),
    ]
