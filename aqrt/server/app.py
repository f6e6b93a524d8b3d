"""The aiohttp application: routes, middlewares, limits, and the server's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from ..wire.runtime_api import INSTANCE_HEADER
from .auth import auth_middleware, token_routes
from .backend_routes import backend_routes
from .config import ServerConfig
from .connections import request_handler_args
from .errors import ApiError, error_response
from .job_routes import job_routes
from .keys import SERVER_KEY, USER_KEY
from .responses import usage_body
from .runtime import RuntimeServer
from .session_routes import session_routes

__all__ = ["create_app"]

logger = logging.getLogger("aqrt.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes an IBM-style JSON error; the server keeps serving after any."""
    try:
        return await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.message, exc.code)
        if exc.status == 408:  # the rest of the body is not waited for: this connection ends here
            response.force_close()
        return response
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SERVER_KEY].config.max_body_bytes
        return error_response(413, f"the request body is too large: this server takes at most {limit} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason, headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except Exception:
        logger.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, "internal server error")


async def get_usage(request: web.Request) -> web.Response:
    """``GET /api/v1/instances/usage``: this instance's consumption; no limit here."""
    seconds = await request.app[SERVER_KEY].usage_seconds(request[USER_KEY])
    return web.json_response(usage_body(request.headers.get(INSTANCE_HEADER), seconds))


def create_app(config: ServerConfig) -> web.Application:
    """The ``aqrt serve`` application for ``config``; the store opens when the app starts.

    Its connections get ``config``'s header and body deadlines however it is served
    (:mod:`aqrt.server.connections`); ``max_connections`` needs :class:`~.connections.LimitedSite`.
    """
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[error_middleware, auth_middleware],
        handler_args=request_handler_args(config),
    )
    server = RuntimeServer(config)
    app[SERVER_KEY] = server

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await server.start()
        yield
        await server.stop()

    app.cleanup_ctx.append(lifecycle)
    app.add_routes(
        [
            *token_routes(),
            *backend_routes(),
            *job_routes(),
            *session_routes(),
            web.get("/api/v1/instances/usage", get_usage),
        ]
    )
    return app
