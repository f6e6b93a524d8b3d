"""Recovery at start-up: what a previous run of the server left unfinished is taken up again.

Open sessions are reopened (as new aqrt sessions); jobs found unfinished (``Queued``; ``Running``
is never stored, a job runs in memory) are re-run from their stored params, in their original
order, in their restored sessions: a restart loses no acknowledged job. A job that cannot be
re-run is stored as ``Failed`` with reason code :data:`~aqrt.wire.runtime_api.CODE_INTERRUPTED`.
Sessions already closed to new jobs are closed again once their jobs are back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import AqrtError
from ..options import Options
from ..wire.runtime_api import CODE_INTERRUPTED, FAILED
from .errors import ApiError
from .job_lifecycle import JobLifecycle, LiveJob
from .records import utc_now
from .session_lifecycle import SessionLifecycle
from .store import Store

__all__ = ["ParamsDecoder", "recover"]

#: ``(program, params, cost) -> (pubs, options)``, raising ``ApiError`` for bad params.
ParamsDecoder = Callable[[str, Any, int | None], Awaitable[tuple[list[Any], Options]]]


async def recover(store: Store, sessions: SessionLifecycle, jobs: JobLifecycle, decode: ParamsDecoder) -> None:
    """Restore open sessions and re-run every job the store holds unfinished."""
    for row in await store.open_sessions():
        sessions.restore(row)
    for row in await store.unfinished_jobs():
        params_json = row.pop("params")
        try:
            params = json.loads(params_json)
            pubs, options = await decode(row["program"], params, row.get("cost"))
            live_session = sessions.get(row["session_id"]) if row["session_id"] else None
            job = jobs.run(row["program"], pubs, options, live_session)
        except (AqrtError, ApiError, ValueError) as exc:
            await store.update_job(
                row["id"],
                status=FAILED,
                finished=utc_now(),
                reason=f"could not be re-run after a server restart: {exc}",
                reason_code=CODE_INTERRUPTED,
            )
            continue
        jobs.track(LiveJob(id=row["id"], user=row["user"], row=row, job=job))
    for live in sessions.live():
        if not live.row["accepting_jobs"]:
            sessions.close_later(live, cancel=False)
