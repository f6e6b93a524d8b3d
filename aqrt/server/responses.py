"""Response shaping: the bodies the API answers with, made from the store's rows.

Jobs and sessions take the shapes of :mod:`aqrt.wire.runtime_api` (the ones aqrt's client
reads); metrics, logs and usage are shaped here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from ..wire.runtime_api import CLOSED_MAX_TTL, FINAL_JOB_STATUSES, job_body, session_body

__all__ = [
    "job_response",
    "live_session_response",
    "logs_text",
    "metrics_body",
    "stored_session_response",
    "usage_body",
    "wall_time",
]


def job_response(row: dict[str, Any], *, params: Any = None) -> dict[str, Any]:
    """A job row as ``GET /jobs/{id}`` (with ``params`` when given) and ``GET /jobs`` show it."""
    return job_body(
        job_id=row["id"],
        backend=row["backend"],
        program=row["program"],
        status=row["status"],
        created=row["created"],
        user_id=row["user"],
        ended=row.get("finished"),
        reason=row.get("reason"),
        reason_code=row.get("reason_code"),
        session_id=row.get("session_id"),
        tags=row.get("tags") or [],
        cost=row.get("cost"),
        usage_seconds=row.get("usage_seconds"),
        params=params,
    )


def stored_session_response(row: dict[str, Any]) -> dict[str, Any]:
    """A session no longer live (closed), as its row holds it."""
    return _session_response(
        row, state=row["state"], accepting=row["accepting_jobs"], elapsed=0.0, closed_reason=row.get("closed_reason")
    )


def live_session_response(
    row: dict[str, Any], *, state: str, accepting: bool, details: dict[str, Any], expired: bool
) -> dict[str, Any]:
    """A live session: its row, with ``state`` and ``accepting`` as the aqrt session has them
    now and ``details`` (:meth:`aqrt.session.Session.details`: clocks, usage)."""
    return _session_response(
        row,
        state=state,
        accepting=accepting,
        elapsed=details["usage_seconds"],
        remaining=details["remaining_time"],
        started_at=wall_time(details["started_at"]),
        closed_reason=CLOSED_MAX_TTL if expired else None,
    )


def _session_response(
    row: dict[str, Any],
    *,
    state: str,
    accepting: bool,
    elapsed: float,
    remaining: float | None = None,
    started_at: str | None = None,
    closed_reason: str | None = None,
) -> dict[str, Any]:
    return session_body(
        session_id=row["id"],
        backend=row["backend"],
        mode=row["mode"],
        state=state,
        accepting_jobs=accepting,
        max_ttl=row["max_ttl"],
        interactive_ttl=row["interactive_ttl"],
        active_ttl=round(remaining) if remaining is not None else 0,
        elapsed_time=elapsed,
        started_at=started_at,
        created_at=row["created"],
        closed_at=row.get("closed_at"),
        user_id=row["user"],
        instance=row.get("instance"),
        closed_reason=closed_reason,
    )


def wall_time(loop_time: float | None) -> str | None:
    """A moment of the event loop's clock (aqrt's session clocks) as UTC wall time, or None."""
    if loop_time is None:
        return None
    ago = asyncio.get_running_loop().time() - loop_time
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago)).isoformat(timespec="microseconds")


def metrics_body(row: dict[str, Any]) -> dict[str, Any]:
    """``GET /jobs/{id}/metrics``: timestamps and usage."""
    usage = row.get("usage_seconds")
    final = row["status"] in FINAL_JOB_STATUSES
    return {
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


def logs_text(row: dict[str, Any]) -> str:
    """``GET /jobs/{id}/logs``: the job's life as text lines (the local engine writes no other logs)."""
    lines = [f"{row['created']} created ({row['program']} on {row['backend']})"]
    if row.get("running"):
        lines.append(f"{row['running']} running")
    if row.get("finished"):
        lines.append(f"{row['finished']} {row['status']}" + (f": {row['reason']}" if row.get("reason") else ""))
    return "\n".join(lines) + "\n"


def usage_body(instance: str | None, seconds: float) -> dict[str, Any]:
    """``GET /api/v1/instances/usage``: this instance's consumption; no limit here."""
    return {
        "instance_id": instance,
        "plan_id": "aqrt-local",
        "usage_consumed_seconds": seconds,
        "usage_limit_reached": False,
    }
