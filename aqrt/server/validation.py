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
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from ..job import Program
from ..wire.runtime_api import BATCH, DEDICATED, INSTANCE_HEADER, SESSION_MODES
from .config import ServerConfig
from .errors import ApiError

__all__ = [
    "JobListQuery",
    "SessionRequest",
    "check_backend",
    "check_close_body",
    "check_cost",
    "check_job_body",
    "check_job_limits",
    "check_program",
    "check_session_request",
    "check_tags",
    "check_tags_body",
    "header_text",
    "instance_header",
    "job_list_query",
    "read_json",
    "served_backend",
    "shown",
]

_MAX_PAGE = 200
_PARSE_INLINE_BYTES = 64 << 10  # larger bodies are parsed on a worker thread, off the loop
_MAX_ID_LENGTH = 128  # ids are 20 characters; anything much longer names nothing
_MAX_INSTANCE_LENGTH = 1024  # a CRN is about 100 characters
_SQLITE_MAX_INT = 2**63 - 1  # the largest INTEGER the store holds (limit, offset, cost)
_INTEGER = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: int() also takes "1_000" and "١٢"
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = 5


def _is_text(value: Any) -> bool:
    """A string that UTF-8 can hold: JSON's ``"\\ud800"`` parses to a lone surrogate, which the
    store (SQLite) cannot take."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def shown(value: Any) -> str:
    """``repr(value)`` cut short (long strings, lists, dicts, ints), for messages that echo what
    was sent: a 10 MB tag or 100,000 of them are not sent back."""
    return _REPR.repr(value)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 400 for malformed JSON (413 comes from aiohttp's size limit)."""
    raw = await request.read()
    try:
        if len(raw) <= _PARSE_INLINE_BYTES:
            return json.loads(raw)
        return await asyncio.to_thread(json.loads, raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


def header_text(request: web.Request, name: str, max_length: int | None = None) -> str | None:
    """The value of header ``name`` (None when absent); 400 for one that is not UTF-8 (aiohttp
    keeps undecodable bytes as lone surrogates, which the store cannot take) or is longer than
    ``max_length``."""
    value = request.headers.get(name)
    if value is not None and (not _is_text(value) or (max_length is not None and len(value) > max_length)):
        limit = f" of at most {max_length} characters" if max_length is not None else ""
        raise ApiError(400, f"the {name} header must be UTF-8 text{limit}")
    return value


def instance_header(request: web.Request) -> str | None:
    """The ``Service-CRN`` header, the instance a job or session is recorded under."""
    return header_text(request, INSTANCE_HEADER, _MAX_INSTANCE_LENGTH)


# -- backends and programs --------------------------------------------------------------------


def served_backend(config: ServerConfig, name: Any) -> str | None:
    """``name`` if it names a served backend, else None."""
    return name if isinstance(name, str) and name in config.backends else None


def check_backend(config: ServerConfig, name: Any) -> str:
    """A served backend's name; 400 when no backend is named, 404 when another one is."""
    served = served_backend(config, name)
    if served is None:
        raise ApiError(
            400 if name is None else 404, f"backend {shown(name)} not found; available: {list(config.backends)!r}"
        )
    return served


def check_program(program: Any) -> Program:
    """``"estimator"``, ``"sampler"`` or ``"executor"`` (IBM's program behind qiskit-ibm-runtime's
    executor-based primitives); 404 for any other ``program_id``."""
    if program == "estimator":
        return "estimator"
    if program == "sampler":
        return "sampler"
    if program == "executor":
        return "executor"
    raise ApiError(404, f"program {shown(program)} not found; this service runs 'estimator', 'sampler' and 'executor'")


# -- jobs -----------------------------------------------------------------------------------------


def check_job_body(body: Any) -> dict[str, Any]:
    """The body of ``POST /jobs`` as an object."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def check_tags(tags: Any, *, max_tags: int | None = None, max_tag_length: int | None = None) -> list[str]:
    """A list of non-empty strings; at most ``max_tags`` of at most ``max_tag_length`` characters."""
    if not isinstance(tags, list) or not all(_is_text(tag) and tag for tag in tags):
        raise ApiError(400, f"tags must be a list of non-empty UTF-8 strings, got {shown(tags)}")
    if max_tags is not None and len(tags) > max_tags:
        raise ApiError(400, f"a job takes at most {max_tags} tags, got {len(tags)} (max_tags)")
    longest = max(map(len, tags), default=0)
    if max_tag_length is not None and longest > max_tag_length:
        raise ApiError(400, f"a tag takes at most {max_tag_length} characters, got one of {longest} (max_tag_length)")
    return tags


def check_cost(cost: Any, max_cost: int = _SQLITE_MAX_INT) -> int | None:
    """A job's ``cost`` (its max execution time): None or an int of seconds in 1..``max_cost``."""
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0):
        raise ApiError(400, f"cost (the max execution time, in seconds) must be a positive int, got {shown(cost)}")
    if cost is not None and cost > max_cost:
        raise ApiError(400, f"cost is {shown(cost)} seconds; this server takes at most {max_cost} (max_cost)")
    return cost


def check_job_limits(body: Any, config: ServerConfig) -> None:
    """What a ``POST /jobs`` body may hold on this server, checked before the submission is:
    an object, a string ``session_id``, tags and cost within the server's limits."""
    body = check_job_body(body)
    session_id = body.get("session_id")
    if session_id is not None and (not _is_text(session_id) or not 0 < len(session_id) <= _MAX_ID_LENGTH):
        raise ApiError(400, f"session_id must be a session's id (a string), got {shown(session_id)}")
    check_tags(body.get("tags") or [], max_tags=config.max_tags, max_tag_length=config.max_tag_length)
    check_cost(body.get("cost"), config.max_cost)


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


def job_list_query(query: MultiMapping[str], config: ServerConfig | None = None) -> JobListQuery:
    """``limit`` (0..200, default 20), ``offset`` (0..2^63-1), ``pending``, ``sort`` (ASC/DESC),
    ``backend``, ``program``, ``session_id``, ``tags`` (every one required; with ``config``, at
    most ``max_tags`` of at most ``max_tag_length`` characters), ``created_after/before``."""
    limit = _int_param(query, "limit", 20, 0, _MAX_PAGE)
    offset = _int_param(query, "offset", 0, 0, _SQLITE_MAX_INT)
    pending = query.get("pending")
    if pending not in (None, "true", "false"):
        raise ApiError(400, f"pending must be 'true' or 'false', got {shown(pending)}")
    sort = query.get("sort", "DESC").upper()
    if sort not in ("ASC", "DESC"):
        raise ApiError(400, f"sort must be 'ASC' or 'DESC', got {shown(query.get('sort'))}")
    tags = query.getall("tags", [])
    if config is not None and len(tags) > config.max_tags:  # no job has more: SQLite would nest them all
        raise ApiError(400, f"a listing takes at most {config.max_tags} tag filters, got {len(tags)} (max_tags)")
    if config is not None and max(map(len, tags), default=0) > config.max_tag_length:
        raise ApiError(400, f"a tag filter takes at most {config.max_tag_length} characters (max_tag_length)")
    filters = {
        "backend": query.get("backend"),
        "program": query.get("program"),
        "session_id": query.get("session_id"),
        "pending": None if pending is None else pending == "true",
        "tags": tags,
        "created_after": _time_param(query, "created_after"),
        "created_before": _time_param(query, "created_before"),
    }
    return JobListQuery(limit=limit, offset=offset, descending=sort == "DESC", filters=filters)


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text.strip()):
        raise ApiError(400, f"{name} must be an integer in {low}..{high}, got {shown(text)}")
    value = int(text)
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be in {low}..{high}, got {shown(value)}")
    return value


def _time_param(query: Mapping[str, str], name: str) -> str | None:
    text = query.get(name)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")
    except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset, ...
        raise ApiError(400, f"{name} must be an ISO 8601 time within years 1..9999 UTC, got {shown(text)}") from None


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
    if not isinstance(mode, str) or mode not in SESSION_MODES:
        raise ApiError(400, f"mode must be {DEDICATED!r} or {BATCH!r}, got {shown(mode)}")
    backend = check_backend(config, body.get("backend"))
    max_ttl = body.get("max_ttl")
    if max_ttl is None:
        max_ttl = config.max_ttl
    if isinstance(max_ttl, bool) or not isinstance(max_ttl, int) or not 0 < max_ttl <= config.max_ttl:
        raise ApiError(400, f"max_ttl must be an int of seconds in 1..{config.max_ttl}, got {shown(max_ttl)}")
    instance = body.get("instance")
    if instance is not None and (not _is_text(instance) or len(instance) > _MAX_INSTANCE_LENGTH):
        raise ApiError(400, f"instance must be a CRN string of at most {_MAX_INSTANCE_LENGTH} characters")
    return SessionRequest(mode=mode, backend=backend, max_ttl=max_ttl, instance=instance)


def check_close_body(body: Any) -> None:
    """The body of ``PATCH /sessions/{id}``: exactly ``{"accepting_jobs": false}``."""
    if not isinstance(body, dict) or body.get("accepting_jobs") is not False or len(body) != 1:
        raise ApiError(400, 'the only change a session takes is {"accepting_jobs": false} (close it)')
