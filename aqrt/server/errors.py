"""Server-side errors and the IBM-style JSON error body.

Every error a client sees has the Runtime API's shape::

    {"errors": [{"code": 1234, "message": "...", "more_info": ""}], "trace": "", "status_code": 400}

A handler raises :class:`ApiError`; the middleware in :mod:`aqrt.server.app` turns it (and
aiohttp's own HTTP errors, malformed JSON, oversized bodies) into that body with the status.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["IBM_CODES", "ApiError", "error_response"]

#: The error and ``state.reason_code`` numbers this server uses (the IBM Runtime meanings
#: where one exists; aqrt's own choice otherwise).
IBM_CODES = {
    "bad_request": 1200,
    "unauthorized": 1001,
    "not_found": 1211,
    "conflict": 1213,
    "too_large": 1202,
    "session_closed": 1217,
    "session_expired": 1218,
    "session_cache": 1219,
    "ran_too_long": 1305,
    "job_failed": 1500,
    "interrupted": 1517,
    "internal": 1000,
}


class ApiError(Exception):
    """An HTTP error with an IBM-style body; raised by handlers."""

    def __init__(self, status: int, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else _default_code(status)


def _default_code(status: int) -> int:
    return {
        400: IBM_CODES["bad_request"],
        401: IBM_CODES["unauthorized"],
        404: IBM_CODES["not_found"],
        409: IBM_CODES["conflict"],
        413: IBM_CODES["too_large"],
    }.get(status, IBM_CODES["internal"])


def error_response(
    status: int, message: str, code: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """The IBM-style JSON error response."""
    body: dict[str, Any] = {
        "errors": [{"code": code if code is not None else _default_code(status), "message": message, "more_info": ""}],
        "trace": "",
        "status_code": status,
    }
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)
