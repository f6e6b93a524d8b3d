"""The aiohttp application: routes, middlewares, limits, and the server's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .auth import SERVER_KEY, USER_KEY, auth_middleware, token_routes
from .backends import backend_routes
from .config import ServerConfig
from .errors import ApiError, error_response
from .jobs import job_routes
from .runtime import RuntimeServer
from .sessions import session_routes

__all__ = ["create_app"]

logger = logging.getLogger("aqrt.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes an IBM-style JSON error; the server keeps serving after any."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.code)
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
    server = request.app[SERVER_KEY]
    seconds = await server.usage_seconds(request[USER_KEY])
    return web.json_response(
        {
            "instance_id": request.headers.get("Service-CRN"),
            "plan_id": "aqrt-local",
            "usage_consumed_seconds": seconds,
            "usage_limit_reached": False,
        }
    )


def create_app(config: ServerConfig) -> web.Application:
    """The ``aqrt serve`` application for ``config``; the store opens when the app starts."""
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[error_middleware, auth_middleware])
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
