"""The Runtime service over aqrt's own runtime: jobs and sessions as the REST API sees them.

A Runtime job becomes an aqrt :class:`~aqrt.Estimator` / :class:`~aqrt.Sampler` job: in job
mode on the local backend, in a dedicated session on an :class:`aqrt.Session`, in a batch on an
:class:`aqrt.Batch`, so aqrt's session rules (FIFO, ``max_time`` from the first job's start,
interactive timeout, expiry, the first-job cache rule, close and cancel) hold on the server too.

The store is the record: a job row is written before its submission is answered, its final
state and encoded result when it settles; a job counts as live (status read from the aqrt job)
until its final state is stored. On start, jobs found unfinished (``Queued``; ``Running`` is
never stored, a job runs in memory) are re-run from their stored params, in their original
order, in their restored sessions: a restart loses no acknowledged job.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import functools
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from .. import Batch, Estimator, LocalService, Options, Sampler, Session
from ..errors import (
    AqrtError,
    InvalidInputError,
    JobTimeoutError,
    SessionCacheError,
    SessionClosedError,
    SessionError,
    SessionExpiredError,
)
from ..job import Job, JobStatus
from ..session import SessionState
from ..wire import WireError, encode, from_jsonable, pubs_from_wire
from .auth import SERVER_KEY, Authenticator
from .config import ServerConfig
from .errors import IBM_CODES, ApiError
from .idempotency import KeyLocks, idempotency_key, payload_digest
from .store import Store

__all__ = ["SERVER_KEY", "RuntimeServer", "job_state_name"]

logger = logging.getLogger("aqrt.server")

_API_STATUS = {
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Running",
    JobStatus.DONE: "Completed",
    JobStatus.ERROR: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}

_SESSION_STATE = {
    SessionState.PENDING: "open",
    SessionState.ACTIVE: "active",
    SessionState.INACTIVE: "inactive",
    SessionState.CLOSED: "closed",
    SessionState.EXPIRED: "closed",
}

# Runtime option names the V2 primitives send, and the aqrt option each one sets.
_OPTION_NAMES = {
    "default_shots": "default_shots",
    "default_precision": "default_precision",
    "seed_estimator": "seed",
    "resilience_level": "resilience_level",
}


def job_state_name(status: JobStatus) -> str:
    """The Runtime API's name of an aqrt job status."""
    return _API_STATUS[status]


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


@dataclasses.dataclass
class LiveJob:
    """A job the server runs now: its row's identity and its aqrt job."""

    id: str
    user: str
    row: dict[str, Any]
    job: Job
    stored: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@dataclasses.dataclass
class LiveSession:
    """A Runtime session and the aqrt Session/Batch that runs its jobs."""

    row: dict[str, Any]
    session: Session
    closing: asyncio.Task[None] | None = None


class RuntimeServer:
    """The state behind one app: config, store, engine, live jobs and sessions."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._store: Store | None = None
        self._authenticator: Authenticator | None = None
        self.service = LocalService(engine=config.engine, max_qubits=config.max_qubits)
        self._backend = self.service.backend()
        self._jobs: dict[str, LiveJob] = {}
        self._sessions: dict[str, LiveSession] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._usage: dict[str, float] = {}  # user -> seconds of running jobs, loaded once per user
        self._stopping = False
        self._key_locks = KeyLocks()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the server is not started")
        return self._store

    @property
    def authenticator(self) -> Authenticator:
        if self._authenticator is None:
            raise RuntimeError("the server is not started")
        return self._authenticator

    async def start(self) -> None:
        """Open the store, load the signing secret, then recover what a previous run left."""
        self._store = await Store.open(self.config.db_path)
        secret = await self._store.signing_secret()
        self._authenticator = Authenticator(
            self.config.api_keys, secret, ttl=self.config.token_ttl, clock=self.config.clock
        )
        await self.recover()

    async def recover(self) -> None:
        """Restore open sessions and re-run every job the store holds unfinished."""
        for row in await self.store.open_sessions():
            self._sessions[row["id"]] = LiveSession(row=row, session=self._new_aqrt_session(row))
        for row in await self.store.unfinished_jobs():
            params_json = row.pop("params")
            try:
                params = json.loads(params_json)
                pubs, options = await self._decode_params(row["program"], params, row.get("cost"))
                live_session = self._sessions.get(row["session_id"]) if row["session_id"] else None
                job = self._run(row["program"], pubs, options, live_session)
            except (AqrtError, ApiError, ValueError) as exc:
                await self.store.update_job(
                    row["id"],
                    status="Failed",
                    finished=utc_now(),
                    reason=f"could not be re-run after a server restart: {exc}",
                    reason_code=IBM_CODES["interrupted"],
                )
                continue
            self._track(LiveJob(id=row["id"], user=row["user"], row=row, job=job))
        for live in list(self._sessions.values()):
            if not live.row["accepting_jobs"]:
                self._close_later(live, cancel=False)

    async def stop(self) -> None:
        """Stop every live job without recording it (unfinished jobs are re-run on the next
        start), then wait for the stores already under way."""
        self._stopping = True
        for live in list(self._sessions.values()):
            if live.closing is not None:
                live.closing.cancel()
        jobs = [live.job for live in self._jobs.values()]
        for job in jobs:
            job.cancel()
        for live in list(self._sessions.values()):
            await live.session.cancel()
        for job in jobs:
            await job.wait()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            await self._store.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- backends --------------------------------------------------------------------------------

    def resolve_backend(self, name: str | None) -> str | None:
        """The served backend's name if ``name`` names it, else None."""
        return self.config.backend_name if name == self.config.backend_name else None

    def queue_length(self) -> int:
        return sum(1 for live in self._jobs.values() if not live.job.done())

    # -- jobs ------------------------------------------------------------------------------------

    async def submit(
        self, user: str, instance: str | None, body: Any, *, idempotency_header: str | None = None
    ) -> dict[str, Any]:
        """``POST /jobs``: validate, start, store; returns the response body.

        A submission with an idempotency key (``Idempotency-Key`` header or ``aqrt-idem-`` tag)
        that ``user`` already used returns that job instead (409 if its request differed).
        """
        if not isinstance(body, dict):
            raise ApiError(400, f"the request body must be a JSON object, not {type(body).__name__}")
        program = body.get("program_id")
        if program not in ("estimator", "sampler"):
            raise ApiError(404, f"program {program!r} not found; this service runs 'estimator' and 'sampler'")
        session_id = body.get("session_id")
        live_session = None
        if session_id is not None:
            live_session = await self._user_session(session_id, user)
        backend = body.get("backend")
        if backend is None and live_session is not None:
            backend = live_session.row["backend"]
        if self.resolve_backend(backend) is None:
            raise ApiError(
                400 if backend is None else 404,
                f"backend {backend!r} not found; available: [{self.config.backend_name!r}]",
            )
        if live_session is not None and live_session.row["backend"] != backend:
            raise ApiError(
                400, f"session {session_id} runs on backend {live_session.row['backend']!r}, not {backend!r}"
            )
        tags = body.get("tags") or []
        _check_tags(tags)
        cost = body.get("cost")
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0):
            raise ApiError(400, f"cost (the max execution time, in seconds) must be a positive int, got {cost!r}")
        params = body.get("params")
        key = idempotency_key(tags, idempotency_header)
        if key is None:
            return await self._submit(user, instance, program, backend, session_id, live_session, tags, cost, params)
        digest = await asyncio.to_thread(payload_digest, program, backend, session_id, params)
        async with self._key_locks.hold(user, key):
            earlier = await self.store.idempotent_job(user, key)
            if earlier is None:
                return await self._submit(
                    user, instance, program, backend, session_id, live_session, tags, cost, params, (key, digest)
                )
        return _repeated(earlier, key, digest)

    async def _submit(
        self,
        user: str,
        instance: str | None,
        program: str,
        backend: str,
        session_id: str | None,
        live_session: LiveSession | None,
        tags: list[str],
        cost: int | None,
        params: Any,
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        pubs, options = await self._decode_params(program, params, cost)
        params_json = await asyncio.to_thread(json.dumps, params)  # stored as sent, for a re-run
        job = self._run(program, pubs, options, live_session)
        row = {
            "id": _new_id(),
            "user": user,
            "instance": instance,
            "program": program,
            "backend": backend,
            "session_id": session_id,
            "status": "Queued",
            "tags": tags,
            "cost": cost,
            "created": utc_now(),
        }
        # The store's single thread runs this insert before any later update of the same job.
        self._track(LiveJob(id=row["id"], user=user, row=row, job=job))
        earlier = await self.store.insert_job(row, params_json, idempotency)
        if earlier is not None:
            # Another process on this database took the key first (in this one, KeyLocks
            # serialises the key): nothing was stored, so this job must not run.
            self._jobs.pop(row["id"], None)
            job.cancel()
            assert idempotency is not None
            return _repeated(earlier, *idempotency)
        return {"id": row["id"], "backend": backend, "session_id": session_id}

    async def _decode_params(self, program: str, params: Any, cost: int | None) -> tuple[list[Any], Options]:
        # Off the loop: reading QPY touches files (lazy imports) and costs CPU for big payloads.
        return await asyncio.to_thread(self._decode_params_sync, program, params, cost)

    def _decode_params_sync(self, program: str, params: Any, cost: int | None) -> tuple[list[Any], Options]:
        if not isinstance(params, dict):
            raise ApiError(400, "params must be a JSON object with 'pubs'")
        if params.get("version", 2) != 2:
            raise ApiError(400, f"only version 2 primitives are served, got version {params.get('version')!r}")
        raw_pubs = params.get("pubs")
        if not isinstance(raw_pubs, list) or not raw_pubs:
            raise ApiError(400, "params['pubs'] must be a non-empty list of PUBs")
        if len(raw_pubs) > self.config.max_pubs:
            raise ApiError(400, f"a job may hold at most {self.config.max_pubs} PUBs, got {len(raw_pubs)}")
        try:
            rest = from_jsonable(
                {k: v for k, v in params.items() if k != "pubs"},
                max_decompressed_bytes=self.config.max_decompressed_bytes,
            )
            pubs = pubs_from_wire(program, raw_pubs, max_decompressed_bytes=self.config.max_decompressed_bytes)  # type: ignore[arg-type]
        except WireError as exc:
            raise ApiError(400, f"invalid params: {exc}") from None
        for index, pub in enumerate(pubs):
            circuit = pub.circuit
            if circuit.num_qubits > self.config.max_qubits:
                raise ApiError(
                    400,
                    f"PUB {index}: the circuit has {circuit.num_qubits} qubits; this server takes at most {self.config.max_qubits}",
                )
            if circuit.size() > self.config.max_circuit_ops:
                raise ApiError(
                    400,
                    f"PUB {index}: the circuit has {circuit.size()} operations; this server takes at most {self.config.max_circuit_ops}",
                )
        return pubs, self._options(rest, cost)

    @staticmethod
    def _options(params: dict[str, Any], cost: int | None) -> Options:
        given = params.get("options") or {}
        if not isinstance(given, dict):
            raise ApiError(400, "params['options'] must be an object")
        values: dict[str, Any] = {}
        for name, target in _OPTION_NAMES.items():
            if given.get(name) is not None:
                values[target] = given[name]
        if params.get("resilience_level") is not None:
            values["resilience_level"] = params["resilience_level"]
        simulator = given.get("simulator")
        if isinstance(simulator, dict) and simulator.get("seed_simulator") is not None:
            values["seed"] = simulator["seed_simulator"]
        if cost is not None:
            values["max_execution_time"] = cost
        try:
            return Options.from_mapping(values)
        except InvalidInputError as exc:
            raise ApiError(400, f"invalid options: {exc}") from None

    def _run(self, program: str, pubs: list[Any], options: Options, live_session: LiveSession | None) -> Job:
        mode: Any = live_session.session if live_session is not None else self._backend
        primitive_class = Estimator if program == "estimator" else Sampler
        try:
            return primitive_class(mode=mode, options=options).run(pubs)
        except SessionError as exc:
            if isinstance(exc, SessionExpiredError) and live_session is not None:
                self._note_expired(live_session)
            raise ApiError(409, str(exc), code=_reason_code(exc)) from None
        except AqrtError as exc:  # a PUB this backend cannot run; the message names it
            raise ApiError(400, str(exc)) from None

    def _track(self, live: LiveJob) -> None:
        self._jobs[live.id] = live
        live.job.add_done_callback(lambda job: self._on_final(live))

    def _on_final(self, live: LiveJob) -> None:
        if self._stopping:  # shutting down: leave it unfinished in the store, to be re-run
            return
        self._spawn(self._store_final(live))

    async def _store_final(self, live: LiveJob) -> None:
        try:
            fields, make_result = await self._final_fields(live)
            await self.store.finish_job(live.id, fields, make_result)
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
            "status": _API_STATUS[status],
            "running": _iso(metrics.running),
            "finished": _iso(metrics.finished),
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
            fields["reason_code"] = _reason_code(error)
            fields["result"] = f"Job {live.id} has failed: {error}"
        elif status is JobStatus.CANCELLED:
            fields["reason"] = "cancelled"
        if metrics.usage_seconds and live.user in self._usage:
            self._usage[live.user] += metrics.usage_seconds
        return fields, make_result

    async def usage_seconds(self, user: str) -> float:
        """Seconds ``user``'s jobs have run (read from the store once, then kept up to date)."""
        if user not in self._usage:
            stored = await self.store.usage_seconds(user)
            self._usage.setdefault(user, stored)
        return self._usage[user]

    def live_status(self, job_id: str, user: str) -> str | None:
        """The status of a live job of ``user``; ``Running`` for one settled but not yet stored."""
        live = self._jobs.get(job_id)
        if live is None or live.user != user:
            return None
        status = live.job.status()
        return "Running" if status.is_final else _API_STATUS[status]

    async def job(self, job_id: str, user: str, *, with_params: bool = False) -> dict[str, Any]:
        """The job's stored row with its live status; 404 for another user's or an unknown id."""
        live = self._jobs.get(job_id)
        if live is not None and live.user == user and not with_params:  # no store round trip
            return {**live.row, "status": self.live_status(job_id, user)}
        row = await self.store.job(job_id, user, with_params=with_params)
        if row is None:
            raise ApiError(404, f"job {job_id} not found")
        live = self.live_status(job_id, user)
        if live is not None:
            row["status"] = live
        return row

    async def cancel_job(self, job_id: str, user: str) -> None:
        """``POST /jobs/{id}/cancel``: 409 when the job already finished."""
        row = await self.job(job_id, user)
        live = self._jobs.get(job_id)
        if live is None or live.job.done():
            status = _API_STATUS[live.job.status()] if live is not None else row["status"]
            raise ApiError(409, f"job {job_id} is {status} and cannot be cancelled")
        live.job.cancel()

    async def delete_job(self, job_id: str, user: str) -> None:
        """``DELETE /jobs/{id}``: a finished job and its result; 409 while it runs."""
        live = self._jobs.get(job_id)
        if live is not None and live.user == user:
            raise ApiError(409, f"job {job_id} has not finished; cancel it first")
        if not await self.store.delete_job(job_id, user):
            raise ApiError(404, f"job {job_id} not found")

    async def set_tags(self, job_id: str, user: str, tags: Any) -> None:
        """``PUT /jobs/{id}/tags``: replace the job's tags."""
        _check_tags(tags)
        live = self._jobs.get(job_id)
        if live is not None and live.user == user:
            live.row["tags"] = list(tags)
        if not await self.store.set_tags(job_id, user, list(tags)):
            raise ApiError(404, f"job {job_id} not found")

    async def wait_stored_if_settled(self, job_id: str, user: str) -> None:
        """If ``user``'s job has settled but its final state is still being stored, wait for that."""
        live = self._jobs.get(job_id)
        if live is not None and live.user == user and live.job.done():
            await live.stored.wait()

    # -- sessions --------------------------------------------------------------------------------

    async def create_session(self, user: str, instance: str | None, body: Any) -> dict[str, Any]:
        """``POST /sessions``: a dedicated session or a batch on the served backend."""
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        mode = body.get("mode", "dedicated")
        if mode not in ("dedicated", "batch"):
            raise ApiError(400, f"mode must be 'dedicated' or 'batch', got {mode!r}")
        backend = body.get("backend")
        if self.resolve_backend(backend) is None:
            raise ApiError(
                400 if backend is None else 404,
                f"backend {backend!r} not found; available: [{self.config.backend_name!r}]",
            )
        max_ttl = body.get("max_ttl")
        if max_ttl is None:
            max_ttl = self.config.max_ttl
        if isinstance(max_ttl, bool) or not isinstance(max_ttl, int) or not 0 < max_ttl <= self.config.max_ttl:
            raise ApiError(400, f"max_ttl must be an int of seconds in 1..{self.config.max_ttl}, got {max_ttl!r}")
        row = {
            "id": _new_id(),
            "user": user,
            "instance": instance or body.get("instance"),
            "mode": mode,
            "backend": backend,
            "max_ttl": max_ttl,
            "interactive_ttl": self.config.interactive_ttl if mode == "dedicated" else None,
            "state": "open",
            "accepting_jobs": True,
            "created": utc_now(),
            "started_at": None,
            "closed_at": None,
        }
        live = LiveSession(row=row, session=self._new_aqrt_session(row))
        await self.store.insert_session(row)
        self._sessions[row["id"]] = live
        return await self.session_details(live)

    def _new_aqrt_session(self, row: dict[str, Any]) -> Session:
        if row["mode"] == "batch":
            return Batch(
                self.service, self._backend, max_time=row["max_ttl"], max_concurrency=self.config.batch_concurrency
            )
        return Session(self.service, self._backend, max_time=row["max_ttl"], interactive_timeout=row["interactive_ttl"])

    async def _user_session(self, session_id: str, user: str) -> LiveSession:
        live = self._sessions.get(session_id)
        if live is not None and live.row["user"] == user:
            return live
        row = await self.store.session(session_id, user)
        if row is None:
            raise ApiError(404, f"session {session_id} not found")
        if row.get("closed_reason") == "max_ttl reached":
            raise ApiError(
                409,
                f"session {session_id} expired (its max_ttl of {row['max_ttl']} s ran out) and accepts no new jobs",
                code=IBM_CODES["session_expired"],
            )
        raise ApiError(409, f"session {session_id} is closed and accepts no new jobs", code=IBM_CODES["session_closed"])

    async def session(self, session_id: str, user: str) -> dict[str, Any]:
        """``GET /sessions/{id}``."""
        live = self._sessions.get(session_id)
        if live is not None and live.row["user"] == user:
            return await self.session_details(live)
        row = await self.store.session(session_id, user)
        if row is None:
            raise ApiError(404, f"session {session_id} not found")
        return _session_body(
            row,
            state=row["state"],
            accepting=row["accepting_jobs"],
            elapsed=0.0,
            closed_reason=row.get("closed_reason"),
        )

    async def session_details(self, live: LiveSession) -> dict[str, Any]:
        session = live.session
        details = await session.details()  # aqrt's own view: state, clocks, job counts
        state = session.status()
        if state is SessionState.EXPIRED:
            self._note_expired(live)
        started_at = None
        if details["started_at"] is not None:  # loop time of the first job's start, shown as wall time
            ago = asyncio.get_running_loop().time() - details["started_at"]
            started_at = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ago)).isoformat(
                timespec="microseconds"
            )
        return _session_body(
            live.row,
            state=_SESSION_STATE[state],
            accepting=session.accepting_jobs,
            elapsed=details["usage_seconds"],
            remaining=details["remaining_time"],
            started_at=started_at,
            closed_reason="max_ttl reached" if state is SessionState.EXPIRED else None,
        )

    async def close_session(self, session_id: str, user: str, *, cancel: bool) -> None:
        """``PATCH /sessions/{id}`` (close: no new jobs, submitted ones finish) or
        ``DELETE /sessions/{id}/close`` (cancel: every unfinished job is cancelled)."""
        live = self._sessions.get(session_id)
        if live is None or live.row["user"] != user:
            if await self.store.session(session_id, user) is None:
                raise ApiError(404, f"session {session_id} not found")
            return  # already closed
        live.row["accepting_jobs"] = False
        await self.store.update_session(session_id, accepting_jobs=0)
        self._close_later(live, cancel=cancel)

    def _note_expired(self, live: LiveSession) -> None:
        """An expired session is closed for good: record it so a restart does not reopen it."""
        if live.closing is None:
            live.closing = self._spawn(self._finish_session(live, False))

    def _close_later(self, live: LiveSession, *, cancel: bool) -> None:
        if cancel or live.closing is None:
            live.closing = self._spawn(self._finish_session(live, cancel))

    async def _finish_session(self, live: LiveSession, cancel: bool) -> None:
        if cancel:
            await live.session.cancel()
        else:
            await live.session.close()
        if self._stopping:
            return
        reason = (
            "max_ttl reached"
            if live.session.status() is SessionState.EXPIRED
            else ("cancelled" if cancel else "closed")
        )
        live.row.update(state="closed", accepting_jobs=False, closed_at=utc_now(), closed_reason=reason)
        await self.store.update_session(
            live.row["id"], state="closed", accepting_jobs=0, closed_at=live.row["closed_at"], closed_reason=reason
        )
        self._sessions.pop(live.row["id"], None)


def _session_body(
    row: dict[str, Any],
    *,
    state: str,
    accepting: bool,
    elapsed: float,
    remaining: float | None = None,
    started_at: str | None = None,
    closed_reason: str | None = None,
) -> dict[str, Any]:
    """A session as the Runtime API shows it (``active_ttl``: seconds left of ``max_ttl``)."""
    body = {
        "id": row["id"],
        "backend_name": row["backend"],
        "mode": row["mode"],
        "state": state,
        "accepting_jobs": accepting,
        "max_ttl": row["max_ttl"],
        "interactive_ttl": row["interactive_ttl"],
        "active_ttl": round(remaining) if remaining is not None else 0,
        "elapsed_time": elapsed,
        "started_at": started_at,
        "created_at": row["created"],
        "closed_at": row.get("closed_at"),
        "last_job_started": None,
        "last_job_completed": None,
        "activated_at": None,
        "user_id": row["user"],
        "instance": row.get("instance"),
        "timestamps": [{"status": "open", "timestamp": row["created"]}],
    }
    if closed_reason is not None:
        body["closed_reason"] = closed_reason
    return body


def _repeated(earlier: dict[str, Any], key: str, digest: str) -> dict[str, Any]:
    """The answer to a repeated submission: the earlier job, or 409 if the request differs."""
    if earlier["digest"] != digest:
        raise ApiError(
            409,
            f"idempotency key {key!r} was already used for job {earlier['job_id']} with a different request "
            "(program, backend, session or params differ); use a new key for a new job",
        )
    return {"id": earlier["job_id"], "backend": earlier["backend"], "session_id": earlier["session_id"]}


def _check_tags(tags: Any) -> None:
    if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
        raise ApiError(400, f"tags must be a list of non-empty strings, got {tags!r}")


def _reason_code(error: BaseException | None) -> int:
    if isinstance(error, JobTimeoutError):
        return IBM_CODES["ran_too_long"]
    if isinstance(error, SessionExpiredError):
        return IBM_CODES["session_expired"]
    if isinstance(error, SessionCacheError):
        return IBM_CODES["session_cache"]
    if isinstance(error, SessionClosedError):
        return IBM_CODES["session_closed"]
    return IBM_CODES["job_failed"]


def _new_id() -> str:
    """A Runtime-style id: 20 lowercase letters and digits (100 random bits)."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()[:20]
