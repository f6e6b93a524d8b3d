"""``POST /identity/token`` (IBM IAM's API-key exchange) and the bearer check on ``/api/v1``.

The tokens themselves (issue, verify) are :class:`aqrt.server.tokens.Authenticator`'s, reached
through the app's :class:`~aqrt.server.runtime.RuntimeServer`. Failed exchanges are throttled per
client address and per key (:class:`aqrt.server.tokens.ExchangeThrottle`): past the limit the
answer is 429 with ``Retry-After``, whatever the key, before the key is even looked at.

The form is small (a grant type and a key), so it is held to :data:`MAX_TOKEN_FORM_BYTES` as it
arrives and parsed on the loop; it is read within the app's ``body_timeout`` (408 past it).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from ..wire.runtime_api import CODE_API_KEY_NOT_FOUND, CODE_TOO_MANY_FAILURES, IAM_GRANT_TYPE
from .connections import read_body
from .errors import ApiError, error_response
from .keys import SERVER_KEY, USER_KEY

__all__ = ["MAX_TOKEN_FORM_BYTES", "auth_middleware", "token_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The largest key-exchange form taken (413 beyond): a grant type and an API key need ~200 bytes.
MAX_TOKEN_FORM_BYTES: Final = 8192
_FORM_TYPES = ("", "application/x-www-form-urlencoded")


async def issue_token(request: web.Request) -> web.Response:
    """``POST /identity/token``: form ``grant_type`` + ``apikey`` -> an access token."""
    form = await _token_form(request)
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


async def _token_form(request: web.Request) -> dict[str, str]:
    """The exchange's URL-encoded form (as IAM takes it), at most :data:`MAX_TOKEN_FORM_BYTES`;
    a field sent twice counts as its first value, as aiohttp's ``post()`` gave it."""
    if request.content_type not in _FORM_TYPES:
        raise ApiError(400, "the token request must be a form (Content-Type: application/x-www-form-urlencoded)")
    raw = await read_body(request, max_bytes=MAX_TOKEN_FORM_BYTES)
    try:
        pairs = urllib.parse.parse_qsl(raw.decode(request.charset or "utf-8").rstrip(), keep_blank_values=True)
    except (UnicodeDecodeError, LookupError, ValueError):
        raise ApiError(400, "the token request is not a valid URL-encoded form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


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
