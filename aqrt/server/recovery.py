"""Recovery at start-up: what a previous run of the server left unfinished is taken up again.

Open sessions are reopened (as new aqrt sessions); jobs found unfinished are re-run from their
stored params, in their original order, in their restored sessions: a restart loses no
acknowledged job. A job that cannot be re-run is stored as ``Failed`` with reason code
:data:`~aqrt.wire.runtime_api.CODE_INTERRUPTED`. Sessions already closed to new jobs are closed
again once their jobs are back; sessions that never had a job get their unused-session clock.

The poison-job rule: a job is stored ``Running`` before the engine takes it, and a clean stop
puts it back to ``Queued``; so a job found ``Running`` at start was running when the process
died (killed for memory, say). It is re-run at most :data:`MAX_CRASH_RERUNS` times; found
``Running`` once more, it is marked ``Failed`` (:data:`~aqrt.wire.runtime_api.CODE_INTERRUPTED`,
with a message that says so) instead of taking the server down at every start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ..errors import AqrtError
from ..options import Options
from ..wire.runtime_api import CODE_INTERRUPTED, FAILED, RUNNING
from .errors import ApiError
from .job_lifecycle import JobLifecycle, LiveJob, public_text
from .records import utc_now
from .session_lifecycle import SessionLifecycle
from .store import Store

__all__ = ["MAX_CRASH_RERUNS", "ParamsDecoder", "crash_loop_reason", "recover"]

logger = logging.getLogger("aqrt.server")

#: How many times a job that was running when the server process died is re-run at a restart
#: before it is marked Failed, by default (``ServerConfig.max_crash_reruns`` / ``--max-crash-reruns``).
MAX_CRASH_RERUNS: Final = 2

#: ``(program, params, cost) -> (pubs, options)``, raising ``ApiError`` for bad params.
ParamsDecoder = Callable[[str, Any, int | None], Awaitable[tuple[list[Any], Options]]]


def crash_loop_reason(runs: int) -> str:
    """The ``state.reason`` of a job the poison-job rule stops, after ``runs`` runs each ended
    by the server process dying."""
    return (
        f"the server process stopped unexpectedly while this job ran, {runs} times (most likely it ran "
        "out of memory); the job is not run again. Submit a smaller job: fewer qubits, parameter "
        "bindings or shots"
    )


async def recover(
    store: Store,
    sessions: SessionLifecycle,
    jobs: JobLifecycle,
    decode: ParamsDecoder,
    *,
    max_crash_reruns: int = MAX_CRASH_RERUNS,
) -> None:
    """Restore open sessions and re-run every job the store holds unfinished, except those the
    poison-job rule stops (found ``Running`` after ``max_crash_reruns`` re-runs)."""
    for row in await store.open_sessions():
        if jobs.serves(row["backend"]):
            sessions.restore(row)
        else:  # the server restarted without this backend: the session and its jobs end
            await store.cancel_session(row["id"], utc_now(), f"backend {row['backend']} is no longer served")
    for row in await store.unfinished_jobs():
        params_json = row.pop("params")
        recoveries = row.pop("recoveries")
        if row["status"] == RUNNING:  # the process died while this job ran
            if recoveries >= max_crash_reruns:
                logger.error("job %s was running at %d crashes of the server: marked failed", row["id"], recoveries + 1)
                await _fail(store, row["id"], crash_loop_reason(recoveries + 1))
                continue
            await store.requeue_after_crash(row["id"])
        try:
            params = json.loads(params_json)
            pubs, options = await decode(row["program"], params, row.get("cost"))
            if not jobs.serves(row["backend"]):
                raise ApiError(404, f"backend {row['backend']} is no longer served")
            live_session = sessions.get(row["session_id"]) if row["session_id"] else None
            job = jobs.run(row["backend"], row["program"], pubs, options, live_session)
        except (AqrtError, ApiError, ValueError) as exc:
            await _fail(store, row["id"], f"could not be re-run after a server restart: {_why(exc)}")
            continue
        jobs.track(LiveJob(id=row["id"], user=row["user"], row=row, job=job))
    for live in sessions.live():
        if not live.row["accepting_jobs"]:
            sessions.close_later(live, cancel=False)
    sessions.arm_unused_deadlines()


async def _fail(store: Store, job_id: str, reason: str) -> None:
    await store.finish_job(
        job_id,
        {
            "status": FAILED,
            "finished": utc_now(),
            "reason": reason,
            "reason_code": CODE_INTERRUPTED,
            "result": f"Job {job_id} has failed: {reason}",
        },
    )


def _why(exc: Exception) -> str:
    """What stopped a re-run, in words for the job's user."""
    if isinstance(exc, ApiError):  # the server's own refusal (a limit, a closed session)
        return exc.message
    if isinstance(exc, AqrtError):
        return public_text(str(exc), {})
    return "its stored inputs could not be read"
