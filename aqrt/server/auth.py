"""``POST /identity/token`` (IBM IAM's API-key exchange) and the bearer check on ``/api/v1``.

The tokens themselves (issue, verify) are :class:`aqrt.server.tokens.Authenticator`'s, reached
through the app's :class:`~aqrt.server.runtime.RuntimeServer`. Failed exchanges are throttled per
client address and per key (:class:`aqrt.server.tokens.ExchangeThrottle`): past the limit the
answer is 429 with ``Retry-After``, whatever the key, before the key is even looked at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..wire.runtime_api import CODE_API_KEY_NOT_FOUND, IAM_GRANT_TYPE
from .errors import ApiError, error_response
from .keys import SERVER_KEY, USER_KEY

__all__ = ["CODE_TOO_MANY_FAILURES", "auth_middleware", "token_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The error code of a 429 for too many failed key exchanges (aqrt's choice; its place is
#: :mod:`aqrt.wire.runtime_api`, with the other codes).
CODE_TOO_MANY_FAILURES = 1429


async def issue_token(request: web.Request) -> web.Response:
    """``POST /identity/token``: form ``grant_type`` + ``apikey`` -> an access token."""
    form = await request.post()
    grant_type, api_key = form.get("grant_type"), form.get("apikey")
    if grant_type != IAM_GRANT_TYPE:
        raise ApiError(400, f"grant_type must be {IAM_GRANT_TYPE!r}, got {grant_type!r}")
    if not isinstance(api_key, str) or not api_key:
        raise ApiError(400, "the form field 'apikey' is required")
    authenticator = request.app[SERVER_KEY].authenticator
    address = request.remote or ""
    wait = authenticator.throttle.retry_after(address, api_key)
    if wait is not None:
        return error_response(
            429,
            f"too many failed API key exchanges; try again in {wait} s",
            CODE_TOO_MANY_FAILURES,
            headers={"Retry-After": str(wait)},
        )
    user = authenticator.user_for_key(api_key)
    if user is None:
        authenticator.throttle.note_failure(address, api_key)
        raise ApiError(400, "Provided API key could not be found.", code=CODE_API_KEY_NOT_FOUND)  # what IAM answers
    return web.json_response(authenticator.issue(user))


def token_routes() -> list[web.RouteDef]:
    """The token route (outside ``/api``: no bearer needed)."""
    return [web.post("/identity/token", issue_token)]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require ``Authorization: Bearer <token>`` on every ``/api/v1`` route; sets the user."""
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing 'Authorization: Bearer <access token>' header")
        request[USER_KEY] = request.app[SERVER_KEY].authenticator.verify(token.strip())
    return await handler(request)
