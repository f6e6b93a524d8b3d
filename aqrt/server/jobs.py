"""``/api/v1/jobs``: submit, read, list, cancel, delete, tags, results, metrics, logs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from aiohttp import web

from .auth import USER_KEY
from .errors import ApiError
from .idempotency import HEADER
from .runtime import SERVER_KEY
from .store import FINAL_JOB_STATES

__all__ = ["job_routes", "read_json"]

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


def job_body(row: dict[str, Any], *, params: Any = None) -> dict[str, Any]:
    """A job as the Runtime API shows it."""
    state: dict[str, Any] = {"status": row["status"]}
    if row.get("reason"):
        state["reason"] = row["reason"]
    if row.get("reason_code"):
        state["reason_code"] = row["reason_code"]
    body: dict[str, Any] = {
        "id": row["id"],
        "backend": row["backend"],
        "state": state,
        "status": row["status"],
        "program": {"id": row["program"]},
        "created": row["created"],
        "ended": row.get("finished"),
        "session_id": row.get("session_id"),
        "tags": row.get("tags") or [],
        "cost": row.get("cost"),
        "runtime": "",
        "private": False,
        "user_id": row["user"],
        "usage": {"seconds": row.get("usage_seconds") or 0.0, "quantum_seconds": row.get("usage_seconds") or 0.0},
    }
    if params is not None:
        body["params"] = params
    return body


async def submit_job(request: web.Request) -> web.Response:
    body = await read_json(request)
    server = request.app[SERVER_KEY]
    response = await server.submit(
        request[USER_KEY], request.headers.get("Service-CRN"), body, idempotency_header=request.headers.get(HEADER)
    )
    return web.json_response(response)


async def get_job(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    with_params = request.query.get("exclude_params", "false").lower() != "true"
    row = await server.job(request.match_info["job_id"], request[USER_KEY], with_params=with_params)
    params = json.loads(row.pop("params")) if with_params else None
    return web.json_response(job_body(row, params=params))


async def get_results(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    job_id, user = request.match_info["job_id"], request[USER_KEY]
    await server.wait_stored_if_settled(job_id, user)
    if server.live_status(job_id, user) is not None:
        raise ApiError(409, f"job {job_id} has not finished; its results are not available yet")
    stored = await server.store.job_result(job_id, user)
    if stored is None:
        raise ApiError(404, f"job {job_id} not found")
    status, result = stored
    if status not in FINAL_JOB_STATES:  # stored unfinished and not live: being re-run at start
        raise ApiError(409, f"job {job_id} has not finished; its results are not available yet")
    if status == "Cancelled":
        raise ApiError(409, f"job {job_id} was cancelled; it has no results")
    if status == "Failed":  # the client shows this text as the failure's explanation
        return web.Response(text=result or "", content_type="text/plain")
    return web.Response(text=result or "", content_type="application/json")


async def cancel_job(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    await server.cancel_job(request.match_info["job_id"], request[USER_KEY])
    return web.Response(status=204)


async def get_metrics(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    row = await server.job(request.match_info["job_id"], request[USER_KEY])
    usage = row.get("usage_seconds")
    final = row["status"] in FINAL_JOB_STATES
    return web.json_response(
        {
            "timestamps": {"created": row["created"], "running": row.get("running"), "finished": row.get("finished")},
            "bss": {"seconds": usage or 0.0},
            "usage": {
                "quantum_seconds": usage or 0.0,
                "seconds": usage or 0.0,
                "qpu_charge_time_seconds": usage or 0.0,
                "status": "final" if final else "pending",
            },
            "executions": 1,
            "num_circuits": None,
            "qiskit_version": None,
            "caller": "aqrt",
            "estimated_start_time": None,
            "estimated_completion_time": None,
            "position_in_queue": None,
            "position_in_provider": None,
        }
    )


async def delete_job(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    await server.delete_job(request.match_info["job_id"], request[USER_KEY])
    return web.Response(status=204)


async def put_tags(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise ApiError(400, 'the body must be {"tags": [...]}')
    server = request.app[SERVER_KEY]
    await server.set_tags(request.match_info["job_id"], request[USER_KEY], body["tags"])
    return web.Response(status=204)


async def get_logs(request: web.Request) -> web.Response:
    """The job's life as text lines (the local engine writes no other logs)."""
    server = request.app[SERVER_KEY]
    row = await server.job(request.match_info["job_id"], request[USER_KEY])
    lines = [f"{row['created']} created ({row['program']} on {row['backend']})"]
    if row.get("running"):
        lines.append(f"{row['running']} running")
    if row.get("finished"):
        lines.append(f"{row['finished']} {row['status']}" + (f": {row['reason']}" if row.get("reason") else ""))
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def list_jobs(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    query = request.query
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
    user = request[USER_KEY]
    count, rows = await server.store.list_jobs(user, filters, limit=limit, offset=offset, descending=sort == "DESC")
    for row in rows:
        live = server.live_status(row["id"], user)
        if live is not None:
            row["status"] = live
    return web.json_response(
        {"jobs": [job_body(row) for row in rows], "count": count, "limit": limit, "offset": offset}
    )


def _int_param(query: Any, name: str, default: int, low: int, high: int | None) -> int:
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


def _time_param(query: Any, name: str) -> str | None:
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


def job_routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/jobs", submit_job),
        web.get("/api/v1/jobs", list_jobs),
        web.get("/api/v1/jobs/{job_id}", get_job),
        web.get("/api/v1/jobs/{job_id}/results", get_results),
        web.post("/api/v1/jobs/{job_id}/cancel", cancel_job),
        web.get("/api/v1/jobs/{job_id}/metrics", get_metrics),
        web.get("/api/v1/jobs/{job_id}/logs", get_logs),
        web.delete("/api/v1/jobs/{job_id}", delete_job),
        web.put("/api/v1/jobs/{job_id}/tags", put_tags),
    ]
