"""The Runtime REST API: one method per endpoint, every path in one URL map.

Returns parsed JSON (dicts) or text; knows nothing of aqrt's ``Job`` or sessions. Job submission
is idempotent: each logical submission carries a fresh tag ``aqrt-idem-<uuid>``; when a POST may
have reached the server but gave no answer, the job is looked up by that tag before posting again.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from ...errors import NotFoundError
from ...wire.runtime_api import IDEMPOTENCY_HEADER, IDEMPOTENCY_TAG_PREFIX
from .auth import IAMAuth
from .transport import Transport

# IDEMPOTENCY_TAG_PREFIX lives in aqrt.wire.runtime_api (the server reads it too); named here as well.
__all__ = ["IDEMPOTENCY_TAG_PREFIX", "RuntimeAPI"]

URL_MAP = {
    "backends": "/backends",
    "backend_configuration": "/backends/{name}/configuration",
    "backend_properties": "/backends/{name}/properties",
    "backend_status": "/backends/{name}/status",
    "jobs": "/jobs",
    "job": "/jobs/{job_id}",
    "job_results": "/jobs/{job_id}/results",
    "job_cancel": "/jobs/{job_id}/cancel",
    "job_metrics": "/jobs/{job_id}/metrics",
    "sessions": "/sessions",
    "session": "/sessions/{session_id}",
    "session_close": "/sessions/{session_id}/close",
}


class RuntimeAPI:
    """The endpoints of ``{base_url}`` (e.g. ``https://quantum.cloud.ibm.com/api/v1``)."""

    def __init__(self, transport: Transport, auth: IAMAuth, base_url: str) -> None:
        self._transport = transport
        self._auth = auth
        self._base = base_url.rstrip("/")

    def url(self, endpoint: str, /, **parts: str) -> str:
        """The absolute URL of ``endpoint`` (a key of ``URL_MAP``)."""
        return self._base + URL_MAP[endpoint].format(**{k: _quote(v) for k, v in parts.items()})

    async def _call(self, method: str, endpoint: str, /, **kwargs: Any) -> Any:
        parts = kwargs.pop("parts", {})
        return await self._transport.request(method, self.url(endpoint, **parts), auth=self._auth, **kwargs)

    # -- backends ------------------------------------------------------------------------------

    async def backends(self) -> list[dict[str, Any]]:
        """``GET /backends``: ``[{name, status: {name}, queue_length, qubits, ...}]``."""
        reply = await self._call("GET", "backends")
        devices = reply.get("devices", []) if isinstance(reply, dict) else reply
        return list(devices or [])

    async def backend_configuration(self, name: str) -> dict[str, Any]:
        return await self._call("GET", "backend_configuration", parts={"name": name})

    async def backend_properties(self, name: str) -> dict[str, Any]:
        return await self._call("GET", "backend_properties", parts={"name": name})

    async def backend_status(self, name: str) -> dict[str, Any]:
        return await self._call("GET", "backend_status", parts={"name": name})

    # -- jobs ----------------------------------------------------------------------------------

    async def create_job(
        self,
        *,
        program_id: str,
        backend: str | None,
        params: dict[str, Any],
        session_id: str | None = None,
        tags: list[str] | None = None,
        max_execution_time: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """``POST /jobs``, at most one job per call however often the POST is repeated.

        Returns the server's reply (``{"id": ...}``), or the job found by its idempotency tag.
        """
        key = idempotency_key or uuid.uuid4().hex
        tag = IDEMPOTENCY_TAG_PREFIX + key
        payload: dict[str, Any] = {"program_id": program_id, "params": params, "tags": [*(tags or []), tag]}
        if backend:
            payload["backend"] = backend
        if session_id:
            payload["session_id"] = session_id
        if max_execution_time:
            payload["cost"] = max_execution_time

        async def recover() -> dict[str, Any] | None:
            return await self.find_job_by_tag(tag)

        headers = {IDEMPOTENCY_HEADER: key}  # aqrt serve dedupes POSTs by it (as by the tag)
        return await self._call("POST", "jobs", json_body=payload, headers=headers, idempotent=False, recover=recover)

    async def find_job_by_tag(self, tag: str) -> dict[str, Any] | None:
        """The job carrying ``tag``, if any (``GET /jobs?tags=...``)."""
        jobs = await self.list_jobs(tags=[tag], limit=2)
        return jobs[0] if jobs else None

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``: ``{"id", "state": {"status", "reason", "reason_code"}, ...}``."""
        return await self._call("GET", "job", parts={"job_id": job_id}, params={"exclude_params": "true"})

    async def job_results(self, job_id: str) -> str:
        """``GET /jobs/{id}/results``: the result JSON text (decode with :func:`aqrt.wire.decode`)."""
        return await self._call("GET", "job_results", parts={"job_id": job_id}, expect="text")

    async def cancel_job(self, job_id: str) -> None:
        """``POST /jobs/{id}/cancel`` (repeating it is harmless)."""
        await self._call("POST", "job_cancel", parts={"job_id": job_id}, expect="none", idempotent=True)

    async def job_metrics(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", "job_metrics", parts={"job_id": job_id})

    async def list_jobs(
        self,
        *,
        limit: int | None = None,
        skip: int | None = None,
        backend: str | None = None,
        pending: bool | None = None,
        program: str | None = None,
        tags: list[str] | None = None,
        session_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /jobs`` with filters; the ``jobs`` list of the reply."""
        params: list[tuple[str, str]] = [("exclude_params", "true")]
        if limit is not None:
            params.append(("limit", str(limit)))
        if skip is not None:
            params.append(("offset", str(skip)))
        if backend:
            params.append(("backend", backend))
        if pending is not None:
            params.append(("pending", "true" if pending else "false"))
        if program:
            params.append(("program", program))
        for tag in tags or []:
            params.append(("tags", tag))
        if session_id:
            params.append(("session_id", session_id))
        reply = await self._call("GET", "jobs", params=params)
        return list(reply.get("jobs", [])) if isinstance(reply, dict) else list(reply)

    # -- sessions ------------------------------------------------------------------------------

    async def create_session(
        self, *, mode: str, backend: str | None, instance: str | None, max_ttl: int | None
    ) -> dict[str, Any]:
        """``POST /sessions``; the reply has the session ``id``."""
        payload: dict[str, Any] = {"mode": mode}
        if backend:
            payload["backend"] = backend
        if instance:
            payload["instance"] = instance
        if max_ttl:
            payload["max_ttl"] = max_ttl
        return await self._call("POST", "sessions", json_body=payload, idempotent=False)

    async def get_session(self, session_id: str) -> dict[str, Any]:
        return await self._call("GET", "session", parts={"session_id": session_id})

    async def close_session(self, session_id: str) -> None:
        """``PATCH /sessions/{id}`` ``{"accepting_jobs": false}``: no new jobs; a gone session is fine."""
        try:
            await self._call(
                "PATCH", "session", parts={"session_id": session_id}, json_body={"accepting_jobs": False}, expect="none"
            )
        except NotFoundError:
            pass

    async def cancel_session(self, session_id: str) -> None:
        """``DELETE /sessions/{id}/close``: cancel the session's queued and running jobs."""
        await self._call("DELETE", "session_close", parts={"session_id": session_id}, expect="none")


def _quote(value: str) -> str:
    return quote(str(value), safe="")
