"""``/api/v1/sessions``: create, read, close (``PATCH accepting_jobs=false``), cancel."""

from __future__ import annotations

from aiohttp import web

from .auth import USER_KEY
from .errors import ApiError
from .jobs import read_json
from .runtime import SERVER_KEY

__all__ = ["session_routes"]


async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    server = request.app[SERVER_KEY]
    details = await server.create_session(request[USER_KEY], request.headers.get("Service-CRN"), body)
    return web.json_response(details)


async def get_session(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    return web.json_response(await server.session(request.match_info["session_id"], request[USER_KEY]))


async def patch_session(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("accepting_jobs") is not False or len(body) != 1:
        raise ApiError(400, 'the only change a session takes is {"accepting_jobs": false} (close it)')
    server = request.app[SERVER_KEY]
    await server.close_session(request.match_info["session_id"], request[USER_KEY], cancel=False)
    return web.Response(status=204)


async def cancel_session(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    await server.close_session(request.match_info["session_id"], request[USER_KEY], cancel=True)
    return web.Response(status=204)


def session_routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/sessions", create_session),
        web.get("/api/v1/sessions/{session_id}", get_session),
        web.patch("/api/v1/sessions/{session_id}", patch_session),
        web.delete("/api/v1/sessions/{session_id}/close", cancel_session),
    ]
