"""Job lifecycle: Runtime jobs as aqrt :class:`~aqrt.primitives.Estimator` /
:class:`~aqrt.primitives.Sampler` jobs, from submission to their stored final state.

A job runs in job mode on the served local backend, or in its session's aqrt Session/Batch.
The store is the record: a job's row is written before its submission is answered, its final
state and encoded result when it settles; until then the job is live (in memory) and its status
is read from the aqrt job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from ..backends.local import LocalBackend
from ..errors import AqrtError, SessionError, SessionExpiredError
from ..job import Job, JobStatus
from ..options import Options
from ..primitives import Estimator, Sampler
from ..wire import Program, encode
from ..wire.runtime_api import (
    CANCELLED,
    FINAL_JOB_STATUSES,
    RUNNING,
    api_job_status,
    job_created_body,
    reason_code,
)
from .config import ServerConfig
from .errors import ApiError
from .idempotency import repeated
from .records import iso, new_job_row
from .session_lifecycle import LiveSession, SessionLifecycle
from .store import Store
from .tasks import Tasks
from .usage import UsageMeter
from .validation import JobListQuery, check_backend, check_cost, check_job_body, check_program, check_tags

__all__ = ["JobLifecycle", "LiveJob", "Submission"]

logger = logging.getLogger("aqrt.server")


@dataclasses.dataclass
class LiveJob:
    """A job the server runs now: its row's identity and its aqrt job.

    Attributes:
        stored: set once its final state is stored (or storing it failed).
    """

    id: str
    user: str
    row: dict[str, Any]
    job: Job
    stored: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@dataclasses.dataclass(frozen=True)
class Submission:
    """A checked ``POST /jobs`` body (its ``params`` are decoded separately)."""

    program: Program
    backend: str
    session_id: str | None
    live_session: LiveSession | None
    tags: list[str]
    cost: int | None
    params: Any


class JobLifecycle:
    """The live jobs of one server, and its jobs' rows in the store."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        backend: LocalBackend,
        sessions: SessionLifecycle,
        usage: UsageMeter,
        tasks: Tasks,
    ) -> None:
        self._config = config
        self._store = store
        self._backend = backend
        self._sessions = sessions
        self._usage = usage
        self._tasks = tasks
        self._jobs: dict[str, LiveJob] = {}

    # -- submission ------------------------------------------------------------------------------

    async def check(self, user: str, body: Any) -> Submission:
        """The ``POST /jobs`` body checked: the program, ``user``'s open session if one is named,
        the backend (the session's by default), tags and cost."""
        body = check_job_body(body)
        program = check_program(body.get("program_id"))
        session_id = body.get("session_id")
        live_session = None
        if session_id is not None:
            live_session = await self._sessions.for_submission(session_id, user)
        named = body.get("backend")
        if named is None and live_session is not None:
            named = live_session.row["backend"]
        backend = check_backend(self._config, named)
        if live_session is not None and live_session.row["backend"] != backend:
            raise ApiError(
                400, f"session {session_id} runs on backend {live_session.row['backend']!r}, not {backend!r}"
            )
        tags = check_tags(body.get("tags") or [])
        cost = check_cost(body.get("cost"))
        return Submission(program, backend, session_id, live_session, tags, cost, body.get("params"))

    async def start(
        self,
        user: str,
        instance: str | None,
        submission: Submission,
        pubs: list[Any],
        options: Options,
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start the job, store its row (its params as sent, for a re-run); returns the
        ``POST /jobs`` answer. With ``idempotency=(key, digest)`` the key is stored with it; if
        another process took the key first, this job is cancelled and the earlier one answered."""
        params_json = await asyncio.to_thread(json.dumps, submission.params)
        job = self.run(submission.program, pubs, options, submission.live_session)
        row = new_job_row(
            user=user,
            instance=instance,
            program=submission.program,
            backend=submission.backend,
            session_id=submission.session_id,
            tags=submission.tags,
            cost=submission.cost,
        )
        live = LiveJob(id=row["id"], user=user, row=row, job=job)
        # The store's single thread runs this insert before any later update of the same job.
        self.track(live)
        earlier = await self._store.insert_job(row, params_json, idempotency)
        if earlier is not None:
            # Another process on this database took the key first (in this one, KeyLocks
            # serialises the key): nothing was stored, so this job must not run.
            self._jobs.pop(live.id, None)
            job.cancel()
            assert idempotency is not None
            return repeated(earlier, *idempotency)
        return job_created_body(live.id, submission.backend, submission.session_id)

    def run(self, program: str, pubs: list[Any], options: Options, live_session: LiveSession | None) -> Job:
        """Start the aqrt job: in ``live_session``, else in job mode on the served backend.

        Raises:
            ApiError: 409 when the session accepts no jobs (an expired one is recorded as
                closed), 400 for a PUB the backend cannot run.
        """
        mode: Any = live_session.session if live_session is not None else self._backend
        primitive_class = Estimator if program == "estimator" else Sampler
        try:
            return primitive_class(mode=mode, options=options).run(pubs)
        except SessionError as exc:
            if isinstance(exc, SessionExpiredError) and live_session is not None:
                self._sessions.note_expired(live_session)
            raise ApiError(409, str(exc), code=reason_code(exc)) from None
        except AqrtError as exc:  # a PUB this backend cannot run; the message names it
            raise ApiError(400, str(exc)) from None

    def track(self, live: LiveJob) -> None:
        """Keep ``live`` until its final state is stored."""
        self._jobs[live.id] = live
        live.job.add_done_callback(lambda job: self._on_final(live))

    def _on_final(self, live: LiveJob) -> None:
        if self._tasks.stopping:  # shutting down: leave it unfinished in the store, to be re-run
            return
        self._tasks.spawn(self._store_final(live))

    async def _store_final(self, live: LiveJob) -> None:
        try:
            fields, make_result = await self._final_fields(live)
            await self._store.finish_job(live.id, fields, make_result)
        except Exception:  # the job stays unfinished in the store and is re-run on the next start
            logger.exception("could not store the final state of job %s", live.id)
        finally:
            self._jobs.pop(live.id, None)
            live.stored.set()

    async def _final_fields(self, live: LiveJob) -> tuple[dict[str, Any], Callable[[], str] | None]:
        job = live.job
        status = job.status()
        metrics = job.metrics()
        fields: dict[str, Any] = {
            "status": api_job_status(status),
            "running": iso(metrics.running),
            "finished": iso(metrics.finished),
            "usage_seconds": metrics.usage_seconds,
        }
        make_result = None
        if status is JobStatus.DONE:
            result = await job.result()  # settled: returns at once
            result.metadata.update(job_id=live.id, session_id=live.row.get("session_id"))  # the Runtime ids
            make_result = functools.partial(encode, result)  # run on the store thread, off the loop
        elif status is JobStatus.ERROR:
            error = job.exception()
            fields["reason"] = str(error)
            fields["reason_code"] = reason_code(error)
            fields["result"] = f"Job {live.id} has failed: {error}"
        elif status is JobStatus.CANCELLED:
            fields["reason"] = "cancelled"
        self._usage.add(live.user, metrics.usage_seconds)
        return fields, make_result

    # -- reading and changing jobs ---------------------------------------------------------------

    def queue_length(self) -> int:
        """How many jobs have not settled."""
        return sum(1 for live in self._jobs.values() if not live.job.done())

    def live_status(self, job_id: str, user: str) -> str | None:
        """The status of a live job of ``user``; ``Running`` for one settled but not yet stored."""
        live = self._jobs.get(job_id)
        if live is None or live.user != user:
            return None
        status = live.job.status()
        return RUNNING if status.is_final else api_job_status(status)

    async def row(self, job_id: str, user: str, *, with_params: bool = False) -> dict[str, Any]:
        """The job's row with its live status; 404 for another user's or an unknown id."""
        live = self._jobs.get(job_id)
        if live is not None and live.user == user and not with_params:  # no store round trip
            return {**live.row, "status": self.live_status(job_id, user)}
        row = await self._store.job(job_id, user, with_params=with_params)
        if row is None:
            raise ApiError(404, f"job {job_id} not found")
        status = self.live_status(job_id, user)
        if status is not None:
            row["status"] = status
        return row

    async def rows(self, user: str, query: JobListQuery) -> tuple[int, list[dict[str, Any]]]:
        """``(count, rows)`` of ``user``'s jobs matching ``query``, with live statuses."""
        count, rows = await self._store.list_jobs(
            user, query.filters, limit=query.limit, offset=query.offset, descending=query.descending
        )
        for row in rows:
            status = self.live_status(row["id"], user)
            if status is not None:
                row["status"] = status
        return count, rows

    async def result(self, job_id: str, user: str) -> tuple[str, str]:
        """``(status, text)`` of a finished job: the encoded result, or a failed job's reason.

        Raises:
            ApiError: 404 for an unknown job; 409 for one not finished, or cancelled.
        """
        await self.wait_stored_if_settled(job_id, user)
        if self.live_status(job_id, user) is not None:
            raise ApiError(409, f"job {job_id} has not finished; its results are not available yet")
        stored = await self._store.job_result(job_id, user)
        if stored is None:
            raise ApiError(404, f"job {job_id} not found")
        status, result = stored
        if status not in FINAL_JOB_STATUSES:  # stored unfinished and not live: being re-run at start
            raise ApiError(409, f"job {job_id} has not finished; its results are not available yet")
        if status == CANCELLED:
            raise ApiError(409, f"job {job_id} was cancelled; it has no results")
        return status, result or ""

    async def cancel(self, job_id: str, user: str) -> None:
        """``POST /jobs/{id}/cancel``: 409 when the job already finished."""
        row = await self.row(job_id, user)
        live = self._jobs.get(job_id)
        if live is None or live.job.done():
            status = api_job_status(live.job.status()) if live is not None else row["status"]
            raise ApiError(409, f"job {job_id} is {status} and cannot be cancelled")
        live.job.cancel()

    async def delete(self, job_id: str, user: str) -> None:
        """``DELETE /jobs/{id}``: a finished job and its result; 409 while it runs."""
        live = self._jobs.get(job_id)
        if live is not None and live.user == user:
            raise ApiError(409, f"job {job_id} has not finished; cancel it first")
        if not await self._store.delete_job(job_id, user):
            raise ApiError(404, f"job {job_id} not found")

    async def set_tags(self, job_id: str, user: str, tags: Any) -> None:
        """``PUT /jobs/{id}/tags``: replace the job's tags."""
        tags = check_tags(tags)
        live = self._jobs.get(job_id)
        if live is not None and live.user == user:
            live.row["tags"] = list(tags)
        if not await self._store.set_tags(job_id, user, list(tags)):
            raise ApiError(404, f"job {job_id} not found")

    async def wait_stored_if_settled(self, job_id: str, user: str) -> None:
        """If ``user``'s job has settled but its final state is still being stored, wait for that."""
        live = self._jobs.get(job_id)
        if live is not None and live.user == user and live.job.done():
            await live.stored.wait()

    def cancel_all(self) -> list[Job]:
        """Cancel every live job (the server is stopping); returns their aqrt jobs."""
        jobs = [live.job for live in self._jobs.values()]
        for job in jobs:
            job.cancel()
        return jobs
