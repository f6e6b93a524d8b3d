"""New rows for the store's ``jobs`` and ``sessions`` tables: Runtime-style ids and timestamps.

A row is the server's record of a job or session (see :mod:`aqrt.server.store`); the bodies the
API shows are shaped from rows by :mod:`aqrt.server.responses`.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from ..wire.runtime_api import QUEUED, SESSION_OPEN

__all__ = ["iso", "new_id", "new_job_row", "new_session_row", "utc_now"]


def new_id() -> str:
    """A Runtime-style id: 20 lowercase letters and digits (100 random bits)."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()[:20]


def utc_now() -> str:
    """The time now, as the API writes times (ISO 8601, UTC, microseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def iso(value: dt.datetime | None) -> str | None:
    """``value`` as the API writes times, or None."""
    return value.isoformat(timespec="microseconds") if value is not None else None


def new_job_row(
    *,
    user: str,
    instance: str | None,
    program: str,
    backend: str,
    session_id: str | None,
    tags: list[str],
    cost: int | None,
) -> dict[str, Any]:
    """The row of a job just submitted: a new id, ``Queued``, created now."""
    return {
        "id": new_id(),
        "user": user,
        "instance": instance,
        "program": program,
        "backend": backend,
        "session_id": session_id,
        "status": QUEUED,
        "tags": tags,
        "cost": cost,
        "created": utc_now(),
    }


def new_session_row(
    *, user: str, instance: Any, mode: str, backend: str, max_ttl: int, interactive_ttl: int | None
) -> dict[str, Any]:
    """The row of a session just created: a new id, ``open`` and accepting jobs, created now."""
    return {
        "id": new_id(),
        "user": user,
        "instance": instance,
        "mode": mode,
        "backend": backend,
        "max_ttl": max_ttl,
        "interactive_ttl": interactive_ttl,
        "state": SESSION_OPEN,
        "accepting_jobs": True,
        "created": utc_now(),
        "started_at": None,
        "closed_at": None,
    }
