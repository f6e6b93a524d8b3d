"""Job lifecycle: Runtime jobs as aqrt :class:`~aqrt.primitives.Estimator` /
:class:`~aqrt.primitives.Sampler` / :class:`~aqrt.primitives.Executor` jobs (programs
``estimator``, ``sampler``, ``executor``), from submission to their stored final state.

A job runs in job mode on the served backend, or in its session's aqrt Session/Batch. The
served backend is a :class:`~aqrt.server.scheduling.ServedBackend`: a job is ``Queued`` until
the engine takes it and ``Running`` only while the engine runs it; its ``cost``
(``max_execution_time``) and its usage count from that start. Waiting jobs take the engine in
fair turns (:mod:`aqrt.server.scheduling`), so one user's backlog cannot starve another.

The store is the record, and every change of state is committed before it is acknowledged or
acted on: a job's row before its submission is answered; its start (``Running``) before the
engine touches it, so a process that dies while it runs leaves it ``Running`` for the
poison-job rule of :mod:`aqrt.server.recovery`; a cancel before its 204; its final state and
encoded result when it settles. Until it settles the job is live (in memory) and its status is
read from the aqrt job (a cancelled one shows ``Cancelled`` at once). A result is encoded on a
worker thread (it can take seconds) and only then handed to the store, whose single thread
reads and writes rows for every user.

Each user's unfinished jobs and stored bytes are held to the server's quotas
(:mod:`aqrt.server.quotas`): a submission beyond them is refused with 429 before it is stored.

What a failed job says is written for its user: public ids only (never aqrt's internal job or
session ids), and no raw exception text: an error the engine did not explain is named by what
it means (out of memory, an internal error) and logged in full on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..backends.base import Backend
from ..backends.local.executor_program import validate_quantum_program
from ..errors import AqrtError, JobFailedError, SessionError, SessionExpiredError
from ..job import Job, JobStatus, Program
from ..options import Options
from ..primitives import Estimator, Executor, Sampler
from ..wire import encode
from ..wire.runtime_api import (
    CANCELLED,
    CODE_JOB_FAILED,
    CODE_NON_ISA,
    DEDICATED,
    FAILED,
    FINAL_JOB_STATUSES,
    JOB_CANCELLED_REASON,
    RUNNING,
    SESSION_CANCELLED_REASON,
    api_job_status,
    job_created_body,
    reason_code,
)
from .catalog import ServedBackendInfo, non_isa_failure
from .config import ServerConfig
from .errors import ApiError
from .idempotency import repeated
from .quotas import PendingJobs, Reservation, storage_quota_error
from .records import iso, new_job_row, utc_now
from .scheduling import UNKNOWN_OWNER, JobOwner
from .session_lifecycle import LiveSession, SessionLifecycle
from .store import StorageQuotaExceeded, Store, text_bytes
from .tasks import Tasks
from .usage import UsageMeter
from .validation import JobListQuery, check_backend, check_cost, check_job_body, check_program, check_tags

__all__ = [
    "UNENCODABLE_REASON",
    "JobLifecycle",
    "LiveJob",
    "Submission",
    "public_text",
]

logger = logging.getLogger("aqrt.server")

#: ``state.reason`` of a job whose result could not be encoded (it is stored as failed, not lost).
UNENCODABLE_REASON = "the job ran, but its result could not be encoded for the Runtime API"

# aqrt's own ids, which a user of the server must never see: a job's (a per-process prefix and a
# server-wide counter) and a session's.
_AQRT_JOB_ID = re.compile(r"\bjob-[0-9a-f]{12}-[0-9a-f]{8}\b")
_AQRT_SESSION_ID = re.compile(r"\bsession-[0-9a-f]{20}\b")


def _encoded_result(job: Job, result: Any) -> str:
    """The text ``GET /jobs/{id}/results`` answers with: a V2 primitive's ``PrimitiveResult``
    in the Runtime API's JSON (:func:`aqrt.wire.encode`), an ``executor`` job's
    ``QuantumProgramResult`` in the service's schema v2.0, which qiskit-ibm-runtime's
    ``ExecutorResultDecoder`` reads (:func:`aqrt.wire.quantum_program.executor_result_to_json`)."""
    if job.program != "executor":
        return encode(result)
    from ..wire.quantum_program import executor_result_to_json

    (pub,) = job.request.pubs
    return executor_result_to_json(result, item_shapes=[tuple(item.shape) for item in pub.program.items])


async def _check_program(pubs: list[Any], info: ServedBackendInfo) -> None:
    """An ``executor`` job's items checked as the backend checks a Sampler PUB (width, memory,
    instructions), on a worker thread; 400 naming the item the backend refuses."""
    (pub,) = pubs
    try:
        await asyncio.to_thread(validate_quantum_program, pub.program, info.backend)
    except AqrtError as exc:
        raise ApiError(400, str(exc)) from None


def public_text(text: str, public_ids: Mapping[str, str]) -> str:
    """``text`` with aqrt's internal job and session ids replaced by their public ids
    (``public_ids``: internal id -> public id), or by "an earlier job" / "its session"."""
    text = _AQRT_JOB_ID.sub(lambda found: public_ids.get(found.group(), "an earlier job"), text)
    return _AQRT_SESSION_ID.sub(lambda found: public_ids.get(found.group(), "its session"), text)


@dataclasses.dataclass
class LiveJob:
    """A job the server runs now: its row's identity and its aqrt job.

    Attributes:
        stored: set once its final state is stored (or storing it failed).
        started: its start (``Running``) was sent to the store.
        cancelled: a cancel was accepted: it shows and is stored ``Cancelled``, whatever the
            engine still does with it.
        deleted: its row was deleted (after a cancel) while the engine still held it.
    """

    id: str
    user: str
    row: dict[str, Any]
    job: Job
    stored: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    started: bool = False
    cancelled: bool = False
    deleted: bool = False


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

    def new_row(self, user: str, instance: str | None) -> dict[str, Any]:
        """The store's row of a new job made from this submission (``Queued``)."""
        return new_job_row(
            user=user,
            instance=instance,
            program=self.program,
            backend=self.backend,
            session_id=self.session_id,
            tags=self.tags,
            cost=self.cost,
        )


class JobLifecycle:
    """The live jobs of one server, and its jobs' rows in the store.

    Args:
        backends: the backends jobs run on, by name (the server's
            :class:`~aqrt.server.scheduling.ServedBackend` s); their ``on_start`` should be
            :meth:`started`.
        catalog: what each backend is (:mod:`aqrt.server.catalog`): a job whose circuits are
            not ISA for its backend fails with code 1517, as on IBM (without it, none is checked).
    """

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        backends: Mapping[str, Backend],
        sessions: SessionLifecycle,
        usage: UsageMeter,
        tasks: Tasks,
        *,
        catalog: Mapping[str, ServedBackendInfo] | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._backends = backends
        self._catalog = catalog or {}
        self._sessions = sessions
        self._usage = usage
        self._tasks = tasks
        self._jobs: dict[str, LiveJob] = {}
        self._by_aqrt_id: dict[str, LiveJob] = {}
        self._pending = PendingJobs(config.max_pending_jobs)

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

    @contextlib.contextmanager
    def admit(self, user: str) -> Iterator[Reservation]:
        """Hold a place among ``user``'s pending jobs for one submission (give it to
        :meth:`start`).

        Raises:
            ApiError: 429 when ``user`` already has ``max_pending_jobs`` jobs not finished.
        """
        with self._pending.admit(user) as reservation:
            yield reservation

    def pending_jobs(self, user: str) -> int:
        """How many of ``user``'s jobs have not finished (and submissions on their way in)."""
        return self._pending.count(user)

    async def check_storage(self, user: str, params_json: str) -> None:
        """429 when a job with these params would take ``user``'s stored bytes over
        ``max_stored_bytes`` (checked again, atomically, when the job is stored)."""
        size = text_bytes(params_json)
        stored = await self._store.stored_bytes(user)
        if stored + size > self._config.max_stored_bytes:
            raise storage_quota_error(stored, size, self._config.max_stored_bytes, self._config.job_retention)

    async def start(
        self,
        user: str,
        instance: str | None,
        submission: Submission,
        pubs: list[Any],
        options: Options,
        params_json: str,
        idempotency: tuple[str, str] | None = None,
        reservation: Reservation | None = None,
    ) -> dict[str, Any]:
        """Start the job, store its row (``params_json``: its params as sent, for a re-run);
        returns the ``POST /jobs`` answer. With ``idempotency=(key, digest)`` the key is stored
        with it; if another process took the key first, this job is cancelled and the earlier
        one answered. The job takes ``reservation``'s place among its user's pending jobs.

        Raises:
            ApiError: 429 when the params would take ``user`` over ``max_stored_bytes``
                (nothing is stored, the job never runs).
        """
        info = self._catalog.get(submission.backend)
        if info is None:
            failure = None
        elif info.is_device:  # the ISA check walks every instruction: off the loop
            failure = await asyncio.to_thread(non_isa_failure, info, pubs)
        else:  # aqrt_statevector: a width check per PUB, no thread hop on every job
            failure = non_isa_failure(info, pubs)
        if failure is not None:
            return await self._store_non_isa(user, instance, submission, params_json, idempotency, failure)
        if submission.program == "executor" and info is not None:
            await _check_program(pubs, info)
        job = self.run(submission.backend, submission.program, pubs, options, submission.live_session)
        row = submission.new_row(user, instance)
        live = LiveJob(id=row["id"], user=user, row=row, job=job)
        # The store's single thread runs this insert before any later update of the same job
        # (its start is written from a task that runs after this one yields).
        self.track(live, reservation)
        try:
            earlier = await self._store.insert_job(row, params_json, idempotency)
        except StorageQuotaExceeded as exc:
            self._forget(live)
            job.cancel()
            raise storage_quota_error(exc.stored, exc.size, exc.limit, self._config.job_retention) from None
        if earlier is not None:
            # Another process on this database took the key first (in this one, KeyLocks
            # serialises the key): nothing was stored, so this job must not run.
            self._forget(live)
            job.cancel()
            assert idempotency is not None
            return repeated(earlier, *idempotency)
        return job_created_body(live.id, submission.backend, submission.session_id)

    async def _store_non_isa(
        self,
        user: str,
        instance: str | None,
        submission: Submission,
        params_json: str,
        idempotency: tuple[str, str] | None,
        failure: str,
    ) -> dict[str, Any]:
        """Record a job whose circuits are not ISA for its backend as IBM does: accepted, then
        ``Failed`` with code 1517 and IBM's reason, without running."""
        row = submission.new_row(user, instance)
        try:
            earlier = await self._store.insert_job(row, params_json, idempotency)
        except StorageQuotaExceeded as exc:
            raise storage_quota_error(exc.stored, exc.size, exc.limit, self._config.job_retention) from None
        if earlier is not None:
            assert idempotency is not None
            return repeated(earlier, *idempotency)
        await self._store.finish_job(
            row["id"],
            {
                "status": FAILED,
                "finished": utc_now(),
                "reason": failure,
                "reason_code": CODE_NON_ISA,
                "result": f"Job {row['id']} has failed: {failure}",
            },
        )
        return job_created_body(row["id"], submission.backend, submission.session_id)

    def serves(self, backend: str) -> bool:
        """Whether ``backend`` is served (a restart may serve other backends than before)."""
        return backend in self._backends

    def run(
        self, backend: str, program: str, pubs: list[Any], options: Options, live_session: LiveSession | None
    ) -> Job:
        """Start the aqrt job: in ``live_session``, else in job mode on ``backend``.

        Raises:
            ApiError: 409 when the session accepts no jobs (an expired one is recorded as
                closed), 400 for a PUB the backend cannot run.
        """
        mode: Any = live_session.session if live_session is not None else self._backends[backend]
        ids = {live_session.session.session_id: live_session.row["id"]} if live_session is not None else {}
        try:
            if program == "executor":  # its one PUB is the QuantumProgram (server.params)
                job = Executor(mode=mode, options=options).run(pubs[0].program)
            else:
                primitive_class = Estimator if program == "estimator" else Sampler
                job = primitive_class(mode=mode, options=options).run(pubs)
        except SessionError as exc:
            if isinstance(exc, SessionExpiredError) and live_session is not None:
                self._sessions.note_expired(live_session)
            raise ApiError(409, public_text(str(exc), ids), code=reason_code(exc)) from None
        except AqrtError as exc:  # a PUB this backend cannot run; the message names it
            raise ApiError(400, public_text(str(exc), ids)) from None
        if live_session is not None:
            self._sessions.note_used(live_session)
        return job

    def track(self, live: LiveJob, reservation: Reservation | None = None) -> None:
        """Keep ``live`` until its final state is stored; it counts among its user's pending
        jobs (in ``reservation``'s place) until it settles or is cancelled."""
        self._jobs[live.id] = live
        self._by_aqrt_id[live.job.job_id] = live
        self._pending.add(live.user, live.id, reservation)
        live.job.add_done_callback(lambda job: self._on_final(live))

    def _forget(self, live: LiveJob) -> None:
        self._pending.discard(live.user, live.id)
        self._jobs.pop(live.id, None)
        self._by_aqrt_id.pop(live.job.job_id, None)

    async def started(self, aqrt_job_id: str) -> bool:
        """The engine is about to run the job: commit its start (``Running``) first; False when
        it must not run (cancelled in the store meanwhile, e.g. with its session, or not
        tracked: a submission that lost an idempotency race).

        Given to :class:`~aqrt.server.scheduling.ServedBackend` as its ``on_start``.
        """
        live = self._by_aqrt_id.get(aqrt_job_id)
        if live is None or live.cancelled:
            return False
        live.started = True
        return await self._store.mark_running(live.id, utc_now())

    def owner_of(self, aqrt_job_id: str) -> JobOwner:
        """Whose turn the job takes for the engine: its user's, ahead of others if it runs in
        a dedicated session. Given to :class:`~aqrt.server.scheduling.ServedBackend` as its ``owner_of``."""
        live = self._by_aqrt_id.get(aqrt_job_id)
        if live is None:
            return UNKNOWN_OWNER
        session_id = live.row.get("session_id")
        live_session = self._sessions.get(session_id) if session_id else None
        dedicated = live_session is not None and live_session.row["mode"] == DEDICATED
        return JobOwner(user=live.user, dedicated=dedicated)

    def _on_final(self, live: LiveJob) -> None:
        self._pending.discard(live.user, live.id)
        if self._tasks.stopping:  # shutting down: leave it unfinished in the store, to be re-run
            return
        self._tasks.spawn(self._store_final(live))

    async def _store_final(self, live: LiveJob) -> None:
        try:
            fields, result = await self._final_fields(live)
            if result is not None:
                fields = await self._with_encoded_result(live, fields, result)
            await self._store.finish_job(live.id, fields)
        except Exception:  # the job stays unfinished in the store and is re-run on the next start
            logger.exception("could not store the final state of job %s", live.id)
        finally:
            self._forget(live)
            live.stored.set()

    async def _with_encoded_result(self, live: LiveJob, fields: dict[str, Any], result: Any) -> dict[str, Any]:
        """``fields`` with the encoded result, encoded on a worker thread (seconds for a big
        result: never on the loop, nor on the store's thread, which serves every user); a
        result that cannot be encoded makes the job failed, with a reason that says so."""
        try:
            return {**fields, "result": await asyncio.to_thread(_encoded_result, live.job, result)}
        except Exception:  # an unencodable result is a failed job, not a lost one
            logger.exception("the result of job %s could not be encoded", live.id)
            return {
                **fields,
                "status": FAILED,
                "reason": UNENCODABLE_REASON,
                "reason_code": CODE_JOB_FAILED,
                "result": f"Job {live.id} has failed: {UNENCODABLE_REASON}",
            }

    async def _final_fields(self, live: LiveJob) -> tuple[dict[str, Any], Any]:
        job = live.job
        status = job.status()
        metrics = job.metrics()
        fields: dict[str, Any] = {
            "status": CANCELLED if live.cancelled else api_job_status(status),
            "running": iso(metrics.running),
            "finished": iso(metrics.finished),
            "usage_seconds": metrics.usage_seconds,
        }
        result = None
        if live.cancelled:  # acknowledged as cancelled: so it stays, even if the engine finished it
            fields["reason"] = JOB_CANCELLED_REASON
        elif status is JobStatus.DONE:
            result = await job.result()  # settled: returns at once
            if job.program != "executor":  # a QuantumProgramResult's metadata is the service's timing only
                result.metadata.update(job_id=live.id, session_id=live.row.get("session_id"))  # the Runtime ids
        elif status is JobStatus.ERROR:
            error = job.exception()
            reason = self.failure_reason(live, error)
            fields["reason"] = reason
            fields["reason_code"] = reason_code(error)
            fields["result"] = f"Job {live.id} has failed: {reason}"
        elif status is JobStatus.CANCELLED:  # not by its own cancel: with its session
            fields["reason"] = SESSION_CANCELLED_REASON
        self._usage.add(live.user, metrics.usage_seconds)
        return fields, result

    def failure_reason(self, live: LiveJob, error: BaseException | None) -> str:
        """What a failed job says to its user: aqrt's explained errors with public ids, and a
        plain name for an error the engine did not explain (its details go to the log)."""
        if isinstance(error, AqrtError) and not isinstance(error, JobFailedError):
            text = str(error)
            ids = {live.job.job_id: live.id}
            for aqrt_id in _AQRT_JOB_ID.findall(text):  # e.g. a session's first job, if still live
                other = self._by_aqrt_id.get(aqrt_id)
                if other is not None:
                    ids[aqrt_id] = other.id
            session = live.row.get("session_id")
            live_session = self._sessions.get(session) if session else None
            if live_session is not None:
                ids[live_session.session.session_id] = live_session.row["id"]
            return public_text(text, ids)
        cause = error.__cause__ if error is not None and error.__cause__ is not None else error
        logger.error("job %s failed", live.id, exc_info=cause)
        if isinstance(cause, MemoryError):
            return (
                "the job needs more memory than this server has: run fewer qubits, parameter bindings or shots per job"
            )
        return "the job failed with an internal error of the simulator (the server's log has the details)"

    # -- reading and changing jobs ---------------------------------------------------------------

    def _live(self, job_id: str, user: str) -> LiveJob | None:
        live = self._jobs.get(job_id)
        if live is None or live.user != user or live.deleted:
            return None
        return live

    def queue_length(self) -> int:
        """How many jobs have not settled."""
        return sum(1 for live in self._jobs.values() if not live.job.done() and not live.cancelled)

    def live_status(self, job_id: str, user: str) -> str | None:
        """The status of a live job of ``user``: ``Queued`` until the engine takes it,
        ``Running`` while it runs (and once settled, until its final state is stored),
        ``Cancelled`` as soon as a cancel is accepted."""
        live = self._live(job_id, user)
        if live is None:
            return None
        status = live.job.status()
        if live.cancelled or status is JobStatus.CANCELLED:
            return CANCELLED
        return RUNNING if status.is_final else api_job_status(status)

    async def row(self, job_id: str, user: str, *, with_params: bool = False) -> dict[str, Any]:
        """The job's row with its live status; 404 for another user's or an unknown id."""
        live = self._live(job_id, user)
        if live is not None and not with_params:  # no store round trip
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
        live_status = self.live_status(job_id, user)
        if live_status == CANCELLED:
            raise ApiError(409, f"job {job_id} was cancelled; it has no results")
        if live_status is not None:
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
        """``POST /jobs/{id}/cancel``: the job is cancelled (a queued one never runs, a running
        one stops at its next checkpoint) and committed ``Cancelled`` before this returns, so
        the cancel survives a crash; 409 when the job already finished or was cancelled."""
        row = await self.row(job_id, user)
        live = self._live(job_id, user)
        if live is None or live.cancelled or live.job.done():
            status = row["status"] if live is None or live.cancelled else api_job_status(live.job.status())
            raise ApiError(409, f"job {job_id} is {status} and cannot be cancelled")
        live.cancelled = True
        self._pending.discard(live.user, live.id)
        live.job.cancel()
        await self._store.cancel_job(live.id, utc_now(), JOB_CANCELLED_REASON)

    async def delete(self, job_id: str, user: str) -> None:
        """``DELETE /jobs/{id}``: a finished (or cancelled) job and its result; 409 while it runs."""
        live = self._live(job_id, user)
        if live is not None and not live.cancelled:
            raise ApiError(409, f"job {job_id} has not finished; cancel it first")
        if not await self._store.delete_job(job_id, user):
            raise ApiError(404, f"job {job_id} not found")
        if live is not None:  # cancelled, and the engine has not let go of it yet
            live.deleted = True

    def note_deleted(self, job_ids: Iterable[str]) -> None:
        """The store deleted these jobs (expired): any still held by the engine (cancelled,
        not yet let go) are no longer shown."""
        for job_id in job_ids:
            live = self._jobs.get(job_id)
            if live is not None:
                live.deleted = True

    async def set_tags(self, job_id: str, user: str, tags: Any) -> None:
        """``PUT /jobs/{id}/tags``: replace the job's tags."""
        tags = check_tags(tags)
        live = self._live(job_id, user)
        if live is not None:
            live.row["tags"] = list(tags)
        if not await self._store.set_tags(job_id, user, list(tags)):
            raise ApiError(404, f"job {job_id} not found")

    async def wait_stored_if_settled(self, job_id: str, user: str) -> None:
        """If ``user``'s job has settled but its final state is still being stored, wait for that."""
        live = self._live(job_id, user)
        if live is not None and live.job.done():
            await live.stored.wait()

    def cancel_all(self) -> list[Job]:
        """Cancel every live job (the server is stopping); returns their aqrt jobs."""
        jobs = [live.job for live in self._jobs.values()]
        for job in jobs:
            job.cancel()
        return jobs

    async def requeue_interrupted(self) -> None:
        """Put the jobs a clean stop interrupted while they ran back to ``Queued`` in the store
        (re-run at the next start, and not counted as crashes by the poison-job rule)."""
        started = [live.id for live in self._jobs.values() if live.started and not live.cancelled]
        if started:
            await self._store.requeue_jobs(started)
