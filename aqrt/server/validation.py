"""Request and body validation: what a request must look like before the server acts on it.

Each check raises :class:`~aqrt.server.errors.ApiError` with the status and message the API
gives (400; 404 for an unknown program or backend) and returns the value it checked, typed.
Checks that need the server's state (a session's owner, a live job) are made by the lifecycle
modules, using these.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from ..wire import Program
from ..wire.runtime_api import BATCH, DEDICATED, SESSION_MODES
from .config import ServerConfig
from .errors import ApiError

__all__ = [
    "JobListQuery",
    "SessionRequest",
    "check_backend",
    "check_close_body",
    "check_cost",
    "check_job_body",
    "check_program",
    "check_session_request",
    "check_tags",
    "check_tags_body",
    "job_list_query",
    "read_json",
    "served_backend",
]

_MAX_PAGE = 200
_PARSE_INLINE_BYTES = 64 << 10  # larger bodies are parsed on a worker thread, off the loop


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 400 for malformed JSON (413 comes from aiohttp's size limit)."""
    raw = await request.read()
    try:
        if len(raw) <= _PARSE_INLINE_BYTES:
            return json.loads(raw)
        return await asyncio.to_thread(json.loads, raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


# -- backends and programs --------------------------------------------------------------------


def served_backend(config: ServerConfig, name: Any) -> str | None:
    """The served backend's name if ``name`` names it, else None."""
    return config.backend_name if name == config.backend_name else None


def check_backend(config: ServerConfig, name: Any) -> str:
    """The served backend's name; 400 when no backend is named, 404 when another one is."""
    served = served_backend(config, name)
    if served is None:
        raise ApiError(
            400 if name is None else 404, f"backend {name!r} not found; available: [{config.backend_name!r}]"
        )
    return served


def check_program(program: Any) -> Program:
    """``"estimator"`` or ``"sampler"``; 404 for any other ``program_id``."""
    if program == "estimator":
        return "estimator"
    if program == "sampler":
        return "sampler"
    raise ApiError(404, f"program {program!r} not found; this service runs 'estimator' and 'sampler'")


# -- jobs -----------------------------------------------------------------------------------------


def check_job_body(body: Any) -> dict[str, Any]:
    """The body of ``POST /jobs`` as an object."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def check_tags(tags: Any) -> list[str]:
    """A list of non-empty strings."""
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        raise ApiError(400, f"tags must be a list of non-empty strings, got {tags!r}")
    return tags


def check_cost(cost: Any) -> int | None:
    """A job's ``cost`` (its max execution time): None or a positive int of seconds."""
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0):
        raise ApiError(400, f"cost (the max execution time, in seconds) must be a positive int, got {cost!r}")
    return cost


def check_tags_body(body: Any) -> Any:
    """The tags of a ``PUT /jobs/{id}/tags`` body ``{"tags": [...]}`` (not yet checked)."""
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise ApiError(400, 'the body must be {"tags": [...]}')
    return body["tags"]


@dataclasses.dataclass(frozen=True)
class JobListQuery:
    """The query of ``GET /jobs``: a page, an order and the filters the store applies."""

    limit: int
    offset: int
    descending: bool
    filters: dict[str, Any]


def job_list_query(query: MultiMapping[str]) -> JobListQuery:
    """``limit`` (0..200, default 20), ``offset``, ``pending``, ``sort`` (ASC/DESC), ``backend``,
    ``program``, ``session_id``, ``tags`` (every one required), ``created_after/before``."""
    limit = _int_param(query, "limit", 20, 0, _MAX_PAGE)
    offset = _int_param(query, "offset", 0, 0, None)
    pending = query.get("pending")
    if pending not in (None, "true", "false"):
        raise ApiError(400, f"pending must be 'true' or 'false', got {pending!r}")
    sort = query.get("sort", "DESC").upper()
    if sort not in ("ASC", "DESC"):
        raise ApiError(400, f"sort must be 'ASC' or 'DESC', got {query.get('sort')!r}")
    filters = {
        "backend": query.get("backend"),
        "program": query.get("program"),
        "session_id": query.get("session_id"),
        "pending": None if pending is None else pending == "true",
        "tags": query.getall("tags", []),
        "created_after": _time_param(query, "created_after"),
        "created_before": _time_param(query, "created_before"),
    }
    return JobListQuery(limit=limit, offset=offset, descending=sort == "DESC", filters=filters)


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"{name} must be in {low}..{high if high is not None else ''}, got {value}")
    return value


def _time_param(query: Mapping[str, str], name: str) -> str | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


# -- sessions -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SessionRequest:
    """A checked ``POST /sessions`` body.

    Attributes:
        mode: ``"dedicated"`` or ``"batch"``; backend: the served backend; max_ttl: seconds.
        instance: the body's ``instance``, used when the request has no ``Service-CRN``.
    """

    mode: str
    backend: str
    max_ttl: int
    instance: Any


def check_session_request(body: Any, config: ServerConfig) -> SessionRequest:
    """The body of ``POST /sessions``: ``mode`` (default dedicated), ``backend``, ``max_ttl``
    (1..``config.max_ttl``, default the maximum)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    mode = body.get("mode", DEDICATED)
    if mode not in SESSION_MODES:
        raise ApiError(400, f"mode must be {DEDICATED!r} or {BATCH!r}, got {mode!r}")
    backend = check_backend(config, body.get("backend"))
    max_ttl = body.get("max_ttl")
    if max_ttl is None:
        max_ttl = config.max_ttl
    if isinstance(max_ttl, bool) or not isinstance(max_ttl, int) or not 0 < max_ttl <= config.max_ttl:
        raise ApiError(400, f"max_ttl must be an int of seconds in 1..{config.max_ttl}, got {max_ttl!r}")
    return SessionRequest(mode=mode, backend=backend, max_ttl=max_ttl, instance=body.get("instance"))


def check_close_body(body: Any) -> None:
    """The body of ``PATCH /sessions/{id}``: exactly ``{"accepting_jobs": false}``."""
    if not isinstance(body, dict) or body.get("accepting_jobs") is not False or len(body) != 1:
        raise ApiError(400, 'the only change a session takes is {"accepting_jobs": false} (close it)')
