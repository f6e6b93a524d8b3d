"""``/api/v1/jobs``: submit, read, list, cancel, delete, tags, results, metrics, logs.

HTTP only: each handler reads the request, calls the app's :class:`~aqrt.server.runtime.RuntimeServer`
(submission) or its :class:`~aqrt.server.job_lifecycle.JobLifecycle`, and shapes the answer
with :mod:`aqrt.server.responses`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from ..wire.runtime_api import FAILED, IDEMPOTENCY_HEADER
from .connections import read_body
from .keys import SERVER_KEY, USER_KEY
from .responses import job_response, logs_text, metrics_body
from .validation import (
    check_job_limits,
    check_tags,
    check_tags_body,
    header_text,
    instance_header,
    job_list_query,
    read_json,
)

__all__ = ["job_routes"]

_ENCODE_INLINE_CHARS = 64 << 10  # larger bodies are encoded on a worker thread, off the loop
_DUMP_INLINE_ROWS = 20  # a page of more jobs (up to 200, tags and all) is written off the loop
_SPLICE_INLINE_CHARS = 1 << 20  # a job's answer with more params text (~1 ms to copy) is made off the loop


async def submit_job(request: web.Request) -> web.Response:
    """``POST /jobs``: the body is held to this server's limits (tags, cost, ids) first."""
    await read_body(request)  # within body_timeout (408); read_json parses the bytes kept
    body = await read_json(request)
    server = request.app[SERVER_KEY]
    check_job_limits(body, server.config)
    instance, key = instance_header(request), header_text(request, IDEMPOTENCY_HEADER)
    response = await server.submit(request[USER_KEY], instance, body, idempotency_header=key)
    return web.json_response(response)


async def get_job(request: web.Request) -> web.Response:
    """``GET /jobs/{id}`` (with its params unless ``exclude_params=true``). The params are the
    user's payload (up to ``max_body_bytes``), stored as the JSON text the server wrote at
    submission: they go into the answer as that text, not parsed and written again (a client
    polling a job with its params made the server parse and write them on every poll: with 100
    jobs of 75 KB polled together, a third of the time the server's threads held the GIL, and
    its loop waited for it). A big answer is put together on a worker thread."""
    jobs = request.app[SERVER_KEY].jobs
    with_params = request.query.get("exclude_params", "false").lower() != "true"
    row = await jobs.row(request.match_info["job_id"], request[USER_KEY], with_params=with_params)
    if not with_params:
        return web.json_response(job_response(row))
    if len(row["params"]) <= _SPLICE_INLINE_CHARS:
        body = _job_bytes_with_params(row)
    else:
        body = await asyncio.to_thread(_job_bytes_with_params, row)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _job_bytes_with_params(row: dict[str, Any]) -> bytes:
    """The job's answer with its stored params text as its last field, ``"params"``: what
    ``json.dumps(job_response(row, params=json.loads(text)))`` writes, since the text is
    ``json.dumps``'s own and ``job_response`` puts ``params`` last."""
    params_text = row.pop("params")
    head = json.dumps(job_response(row))
    return f'{head[:-1]}, "params": {params_text}}}'.encode()


async def get_results(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/results``: the encoded result; a failed job's reason as plain text."""
    jobs = request.app[SERVER_KEY].jobs
    status, text = await jobs.result(request.match_info["job_id"], request[USER_KEY])
    # The client shows a failed job's text as the failure's explanation.
    return await _text_response(text, "text/plain" if status == FAILED else "application/json")


async def _text_response(text: str, content_type: str) -> web.Response:
    """A response of ``text``; a large one (a result, a listing) is encoded on a worker thread."""
    if len(text) <= _ENCODE_INLINE_CHARS:
        return web.Response(text=text, content_type=content_type)
    body = await asyncio.to_thread(text.encode)
    return web.Response(body=body, content_type=content_type, charset="utf-8")


async def cancel_job(request: web.Request) -> web.Response:
    """``POST /jobs/{id}/cancel``."""
    await request.app[SERVER_KEY].jobs.cancel(request.match_info["job_id"], request[USER_KEY])
    return web.Response(status=204)


async def get_metrics(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/metrics``."""
    row = await request.app[SERVER_KEY].jobs.row(request.match_info["job_id"], request[USER_KEY])
    return web.json_response(metrics_body(row))


async def delete_job(request: web.Request) -> web.Response:
    """``DELETE /jobs/{id}``."""
    await request.app[SERVER_KEY].jobs.delete(request.match_info["job_id"], request[USER_KEY])
    return web.Response(status=204)


async def put_tags(request: web.Request) -> web.Response:
    """``PUT /jobs/{id}/tags``: at most ``max_tags`` tags of at most ``max_tag_length`` characters."""
    server = request.app[SERVER_KEY]
    await read_body(request)  # within body_timeout (408)
    tags = check_tags_body(await read_json(request))
    check_tags(tags, max_tags=server.config.max_tags, max_tag_length=server.config.max_tag_length)
    await server.jobs.set_tags(request.match_info["job_id"], request[USER_KEY], tags)
    return web.Response(status=204)


async def get_logs(request: web.Request) -> web.Response:
    """``GET /jobs/{id}/logs``: the job's life as text lines."""
    row = await request.app[SERVER_KEY].jobs.row(request.match_info["job_id"], request[USER_KEY])
    return web.Response(text=logs_text(row), content_type="text/plain")


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /jobs``: the user's jobs, newest first by default, filtered and paged."""
    query = job_list_query(request.query, request.app[SERVER_KEY].config)
    count, rows = await request.app[SERVER_KEY].jobs.rows(request[USER_KEY], query)
    body = {"jobs": [job_response(row) for row in rows], "count": count, "limit": query.limit, "offset": query.offset}
    text = await asyncio.to_thread(json.dumps, body) if len(rows) > _DUMP_INLINE_ROWS else json.dumps(body)
    return web.Response(text=text, content_type="application/json")


def job_routes() -> list[web.RouteDef]:
    """The ``/api/v1/jobs`` routes."""
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
