"""Server-side errors and the IBM-style JSON error body.

Every error a client sees has the Runtime API's shape (:func:`aqrt.wire.runtime_api.error_body`)::

    {"errors": [{"code": 1234, "message": "...", "more_info": ""}], "trace": "", "status_code": 400}

A handler raises :class:`ApiError`; the middleware in :mod:`aqrt.server.app` turns it (and
aiohttp's own HTTP errors, malformed JSON, oversized bodies) into that body with the status.
"""

from __future__ import annotations

import json

from aiohttp import web

from ..wire.runtime_api import (
    CODE_BAD_REQUEST,
    CODE_CONFLICT,
    CODE_INTERNAL,
    CODE_NOT_FOUND,
    CODE_TOO_LARGE,
    CODE_UNAUTHORIZED,
    error_body,
)

__all__ = ["ApiError", "default_code", "error_response"]

_CODE_OF_STATUS = {
    400: CODE_BAD_REQUEST,
    401: CODE_UNAUTHORIZED,
    404: CODE_NOT_FOUND,
    409: CODE_CONFLICT,
    413: CODE_TOO_LARGE,
}


def default_code(status: int) -> int:
    """The error code of an HTTP status when the error names none of its own."""
    return _CODE_OF_STATUS.get(status, CODE_INTERNAL)


class ApiError(Exception):
    """An HTTP error with an IBM-style body; raised by handlers.

    Args:
        status: the HTTP status; message: what went wrong; code: the body's error code
            (:func:`default_code` of the status if None).
    """

    def __init__(self, status: int, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else default_code(status)


def error_response(
    status: int, message: str, code: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """The IBM-style JSON error response."""
    body = error_body(status, message, code if code is not None else default_code(status))
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)
