"""The Runtime service over aqrt's own runtime: the state behind one ``aqrt serve`` app.

:class:`RuntimeServer` coordinates the rooms that do the work, each a module of its own:

- :mod:`.validation`: what requests and bodies must look like;
- :mod:`.params`: a job's params decoded into PUBs and Options (the format is
  :mod:`aqrt.wire.runtime_api`'s);
- :mod:`.job_lifecycle` and :mod:`.session_lifecycle`: Runtime jobs and sessions on aqrt's
  Estimator/Sampler and Session/Batch, from creation to their stored final state;
- :mod:`.recovery`: what a previous run left unfinished, taken up at start;
- :mod:`.responses`: the bodies the API answers with;
- :mod:`.idempotency`: one job per (user, idempotency key);
- :mod:`.quotas`: each user's pending jobs and stored bytes, held to the server's limits;
- :mod:`.retention`: finished jobs deleted once older than ``job_retention``;
- :mod:`.usage`: the seconds each user's jobs have run;
- :mod:`.store` (SQLite, off the loop) and :mod:`.tokens` (access tokens).

The store is the record: a job row is written before its submission is answered, so a restart
loses no acknowledged job. Jobs run on a :class:`~.job_lifecycle.ServedBackend` (the local
backend behind one engine slot: ``Queued`` until the engine takes a job, ``Running`` while it
runs it); waiting jobs take the slot in turns by user, a dedicated session's first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..backends.local import LocalService
from ..distributed import ClusterJobs, LocalProcessCluster
from ..options import Options
from .catalog import ServedBackendInfo, served_backends
from .config import ServerConfig
from .idempotency import IdempotentSubmissions, idempotency_key, payload_digest, repeated
from .job_lifecycle import JobLifecycle, Submission
from .params import decode_params
from .recovery import recover
from .retention import RetentionSweeper
from .scheduling import FairSlot, ServedBackend
from .session_lifecycle import SessionLifecycle
from .store import Store
from .tasks import Tasks
from .tokens import Authenticator, ExchangeThrottle
from .usage import UsageMeter
from .validation import check_backend, check_job_body, check_program, check_tags

__all__ = ["RuntimeServer"]


class RuntimeServer:
    """The state behind one app: config, store, engine, live jobs and sessions.

    Made by :func:`aqrt.server.create_app`; :meth:`start` (when the app starts) opens the store
    and recovers, :meth:`stop` (when it stops) leaves unfinished jobs for the next start.

    Attributes:
        config: the server's settings; service: the local service whose backends are served
            (devices with their noise); catalog: the served backends by name, with the documents
            the API describes them with (:mod:`.catalog`).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._service: LocalService | None = None
        self._local_cluster: LocalProcessCluster | None = None
        self._catalog: dict[str, ServedBackendInfo] | None = None
        self._widest = 0
        self._tasks = Tasks()
        self._store: Store | None = None
        self._authenticator: Authenticator | None = None
        self._sessions: SessionLifecycle | None = None
        self._jobs: JobLifecycle | None = None
        self._usage: UsageMeter | None = None
        self._idempotency: IdempotentSubmissions | None = None
        self._retention: RetentionSweeper | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def service(self) -> LocalService:
        """The local service whose backends are served (devices with their noise), on the
        cluster's workers when there is one."""
        if self._service is None:
            raise RuntimeError("the server is not started")
        return self._service

    @property
    def store(self) -> Store:
        """The open store."""
        if self._store is None:
            raise RuntimeError("the server is not started")
        return self._store

    @property
    def catalog(self) -> dict[str, ServedBackendInfo]:
        """The served backends by name, with the documents the API describes them with."""
        if self._catalog is None:
            raise RuntimeError("the server is not started")
        return self._catalog

    @property
    def authenticator(self) -> Authenticator:
        """Issues and checks access tokens."""
        if self._authenticator is None:
            raise RuntimeError("the server is not started")
        return self._authenticator

    @property
    def jobs(self) -> JobLifecycle:
        """The jobs: submitted, live, stored."""
        if self._jobs is None:
            raise RuntimeError("the server is not started")
        return self._jobs

    @property
    def sessions(self) -> SessionLifecycle:
        """The sessions: live and stored."""
        if self._sessions is None:
            raise RuntimeError("the server is not started")
        return self._sessions

    @property
    def retention(self) -> RetentionSweeper:
        """Deletes finished jobs older than ``job_retention`` (running only when it is not 0)."""
        if self._retention is None:
            raise RuntimeError("the server is not started")
        return self._retention

    async def start(self) -> None:
        """Start the cluster (if any), open the store, load the signing secret, recover what a
        previous run left, then start the retention sweep (which runs once at once)."""
        cluster, slots = await self._open_cluster()
        self._service = LocalService(
            engine=self.config.engine, max_qubits=self.config.max_qubits, noise=True, executor=cluster
        )
        # Loading fake devices reads files and takes a second: off the loop.
        self._catalog = await asyncio.to_thread(
            served_backends,
            self.config.backends,
            self.service,
            statevector_qubits=self.config.backend_qubits,
            max_shots=self.config.max_shots,
            max_pubs=self.config.max_pubs,
        )
        self._widest = max(info.num_qubits for info in self._catalog.values())
        store = self._store = await Store.open(self.config.db_path, max_stored_bytes=self.config.max_stored_bytes)
        secret = await store.signing_secret()
        self._authenticator = Authenticator(
            self.config.api_keys,
            secret,
            ttl=self.config.token_ttl,
            clock=self.config.clock,
            throttle=ExchangeThrottle(max_failures=self.config.max_failed_exchanges, window=self.config.failure_window),
        )
        self._usage = UsageMeter(store)
        self._idempotency = IdempotentSubmissions(store)
        # One engine (or cluster): every backend's jobs take turns for its slots.
        slot = FairSlot(slots, max_per_user=self.config.max_running_per_user, weights=self.config.user_weights)
        served = {
            name: ServedBackend(
                info.backend,
                on_start=lambda job_id: self.jobs.started(job_id),
                owner_of=lambda job_id: self.jobs.owner_of(job_id),
                slot=slot,
            )
            for name, info in self.catalog.items()
        }
        self._sessions = SessionLifecycle(self.config, store, self.service, served, self._tasks)
        self._jobs = JobLifecycle(
            self.config, store, served, self._sessions, self._usage, self._tasks, catalog=self.catalog
        )
        await self.recover()
        self._retention = RetentionSweeper(
            store, self._jobs, retention=self.config.job_retention, clock=self.config.clock
        )
        self._retention.start()

    async def _open_cluster(self) -> tuple[ClusterJobs | None, int]:
        """The cluster jobs run on (started here for ``workers``), or None, and how many jobs run
        at once (``engine_slots``; by default the cluster's workers as it is now, else 1)."""
        config = self.config
        address = config.dask_scheduler
        if config.workers:
            self._local_cluster = LocalProcessCluster(n_workers=config.workers)
            address = await asyncio.to_thread(self._local_cluster.__enter__)
        if address is None:
            return None, config.engine_slots or 1
        cluster = ClusterJobs(address)
        try:
            workers = await cluster.workers()  # connects now: an unreachable scheduler stops the start
        except BaseException:
            await cluster.aclose()
            if self._local_cluster is not None:
                local, self._local_cluster = self._local_cluster, None
                await asyncio.to_thread(local.__exit__, None, None, None)
            raise
        return cluster, config.engine_slots or max(1, workers)

    async def recover(self) -> None:
        """Restore open sessions and re-run every job the store holds unfinished."""
        await recover(
            self.store, self.sessions, self.jobs, self._decode_params, max_crash_reruns=self.config.max_crash_reruns
        )

    async def stop(self) -> None:
        """Stop every live job without recording it (unfinished jobs are re-run on the next
        start; those it interrupted while they ran are put back to ``Queued``: a clean stop is
        not a crash), then wait for the stores already under way."""
        self._tasks.stopping = True
        if self._retention is not None:
            await self._retention.stop()
        if self._sessions is not None:
            self._sessions.stop_closing()
        jobs = self._jobs.cancel_all() if self._jobs is not None else []
        if self._sessions is not None:
            await self._sessions.cancel_all()
        for job in jobs:
            await job.wait()
        await self._tasks.wait()
        if self._store is not None:
            try:
                if self._jobs is not None:
                    await self._jobs.requeue_interrupted()
            finally:
                await self._store.close()
        if self._service is not None:
            await self._service.aclose()  # the cluster's client
        if self._local_cluster is not None:
            cluster, self._local_cluster = self._local_cluster, None
            await asyncio.to_thread(cluster.__exit__, None, None, None)

    # -- backends --------------------------------------------------------------------------------

    def queue_length(self) -> int:
        """How many jobs have not settled."""
        return self.jobs.queue_length()

    # -- jobs ------------------------------------------------------------------------------------

    async def submit(
        self, user: str, instance: str | None, body: Any, *, idempotency_header: str | None = None
    ) -> dict[str, Any]:
        """``POST /jobs``: validate, start, store; returns the response body.

        A submission with an idempotency key (``Idempotency-Key`` header or ``aqrt-idem-`` tag)
        that ``user`` already used returns that job instead (409 if its request differed), even
        after the job finished and its session or batch closed: a retry is answered as the
        first post was.
        """
        if self._idempotency is None:
            raise RuntimeError("the server is not started")
        checked = check_job_body(body)
        key = idempotency_key(check_tags(checked.get("tags") or []), idempotency_header)
        if key is not None:
            earlier = await self.store.idempotent_job(user, key)
            if earlier is not None:
                return await self._repeat(checked, key, earlier)
        submission = await self.jobs.check(user, body)
        if key is None:
            return await self._submit(user, instance, submission)
        digest = await asyncio.to_thread(
            payload_digest, submission.program, submission.backend, submission.session_id, submission.params
        )
        return await self._idempotency.submit_once(
            user, key, digest, lambda claim: self._submit(user, instance, submission, claim)
        )

    async def _repeat(self, body: dict[str, Any], key: str, earlier: dict[str, Any]) -> dict[str, Any]:
        """The answer to a retry of ``earlier``'s submission, checked against its request
        without its session (which may have closed since). A retry that names no backend
        meant the session's, which is the earlier job's if it names the same session."""
        program = check_program(body.get("program_id"))
        named = body.get("backend")
        backend = check_backend(self.config, named if named is not None else earlier["backend"])
        digest = await asyncio.to_thread(payload_digest, program, backend, body.get("session_id"), body.get("params"))
        return repeated(earlier, key, digest)

    async def _submit(
        self, user: str, instance: str | None, submission: Submission, idempotency: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Admit (429 beyond the user's pending jobs or stored bytes), decode, start, store."""
        with self.jobs.admit(user) as reservation:
            params_json = await asyncio.to_thread(json.dumps, submission.params)
            await self.jobs.check_storage(user, params_json)
            pubs, options = await self._decode_params(submission.program, submission.params, submission.cost)
            return await self.jobs.start(
                user, instance, submission, pubs, options, params_json, idempotency, reservation
            )

    async def _decode_params(self, program: str, params: Any, cost: int | None) -> tuple[list[Any], Options]:
        return await decode_params(program, params, cost, self.config, widest_backend=self._widest)

    # -- usage -----------------------------------------------------------------------------------

    async def usage_seconds(self, user: str) -> float:
        """Seconds ``user``'s jobs have run."""
        if self._usage is None:
            raise RuntimeError("the server is not started")
        return await self._usage.seconds(user)
