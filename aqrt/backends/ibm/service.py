"""``RuntimeService``: IBM Quantum Runtime over HTTP, for aqrt's sessions and primitives.

Example:
    >>> async with RuntimeService(channel="ibm_cloud") as service:      # doctest: +SKIP
    ...     backend = await service.least_busy()
    ...     async with Session(service=service, backend=backend.name) as session:
    ...         result = await Estimator().run([(circuit, observable)])

Nothing touches the network or the disk in the constructor: credentials are resolved (the
accounts file read in a worker thread) and the aiohttp session made on first use or in
``async with``. ``await service.close()`` (or leaving the block) closes it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
from typing import Any, NoReturn, Self

from ...errors import BackendNotFoundError, InvalidInputError, NotFoundError
from ...job import JobStatus
from ...wire.runtime_api import JOB_TAG_PREFIX, JobState
from .accounts import CHANNELS, Account, resolve_account
from .auth import IAMAuth
from .backend import IBMBackend
from .connection import Connection
from .poller import JobPoller, poll_interval
from .rest import RuntimeAPI
from .results import final_result
from .transport import RetryPolicy, Transport

__all__ = ["RemoteJob", "RuntimeService"]


class RuntimeService:
    """The IBM Quantum Runtime service (channels ``ibm_quantum_platform`` and ``ibm_cloud``).

    Args:
        channel: ``"ibm_quantum_platform"`` (default) or ``"ibm_cloud"``; also ``QISKIT_IBM_CHANNEL``.
        token: the IBM Cloud API key; else ``QISKIT_IBM_TOKEN`` or the saved account.
        instance: the instance CRN; else ``QISKIT_IBM_INSTANCE`` or the saved account.
        url: ``https://cloud.ibm.com`` (default; the regional API URL is derived from the CRN)
            or an API base URL with a path, taken as is.
        iam_url: the IAM base (default ``IAM_URL``, else ``https://iam.<cloud host>``).
        name: a saved account's name; filename: the accounts file (``~/.qiskit/qiskit-ibm.json``).
        request_timeout: seconds per HTTP attempt; deadline: seconds per call, retries included.
        retry: the :class:`~aqrt.backends.ibm.transport.RetryPolicy`; seed: jitter seed.

    Raises:
        InvalidInputError: an unknown channel (at once); bad credentials surface on first use.
    """

    def __init__(
        self,
        channel: str | None = None,
        token: str | None = None,
        instance: str | None = None,
        url: str | None = None,
        iam_url: str | None = None,
        *,
        name: str | None = None,
        filename: str | os.PathLike[str] | None = None,
        request_timeout: float = 60.0,
        deadline: float = 600.0,
        retry: RetryPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        if channel is not None and channel not in CHANNELS:
            raise InvalidInputError(f"channel must be one of {list(CHANNELS)}, got {channel!r}")
        self._account_args: dict[str, Any] = {
            "channel": channel,
            "token": token,
            "instance": instance,
            "url": url,
            "iam_url": iam_url,
            "name": name,
            "filename": filename,
        }
        self._transport = Transport(
            retry=retry, request_timeout=request_timeout, deadline=deadline, rng=random.Random(seed)
        )
        self._account: Account | None = None
        self._auth: IAMAuth | None = None
        self._connection: Connection | None = None
        self._backends: dict[str, IBMBackend] = {}
        self._open_lock: asyncio.Lock | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __enter__(self) -> NoReturn:
        """Refuse a plain ``with``: the service is entered with ``async with`` (or use aqrt.sync).

        Raises:
            TypeError: always, naming both fixes.
        """
        raise TypeError(
            'RuntimeService is asynchronous and does not support a plain `with`: use "async with", '
            "or aqrt.sync.RuntimeService in synchronous code (`with aqrt.sync.RuntimeService(...) as service:`)"
        )

    def __exit__(self, *exc_info: object) -> None:
        """Never reached (``__enter__`` raises); defined so ``with`` reaches ``__enter__``."""

    async def _open(self) -> Connection:
        if self._closed:
            raise RuntimeError("this RuntimeService is closed; make a new one")
        if self._connection is not None:
            return self._connection
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._connection is None:
                resolve = functools.partial(resolve_account, **self._account_args)
                if self._account_args["token"] is None:  # may read the accounts file: off the loop
                    account = await asyncio.get_running_loop().run_in_executor(None, resolve)
                else:
                    account = resolve()
                self._account = account
                self._auth = IAMAuth(account.token, account.iam_url, account.instance)
                api = RuntimeAPI(self._transport, self._auth, account.api_url)
                self._connection = Connection(api=api, poller=JobPoller(api), instance=account.instance)
        assert self._connection is not None
        return self._connection

    async def close(self) -> None:
        """Stop the poller and close the HTTP session (idempotent)."""
        self._closed = True
        if self._connection is not None:
            await self._connection.poller.close()
        await self._transport.close()

    def _api_checked(self) -> RuntimeAPI:
        if self._connection is None:
            raise RuntimeError("the RuntimeService is not open (use it after an awaited call)")
        return self._connection.api

    # -- facts -------------------------------------------------------------------------------

    @property
    def account(self) -> Account | None:
        """The resolved account (None before first use)."""
        return self._account

    @property
    def channel(self) -> str | None:
        """The account's channel (None before first use)."""
        return self._account.channel if self._account else None

    @property
    def instance(self) -> str | None:
        """The instance CRN (None before first use)."""
        return self._account.instance if self._account else None

    @property
    def poller(self) -> JobPoller | None:
        """The one job poller of this service (None before first use)."""
        return self._connection.poller if self._connection else None

    @property
    def auth(self) -> IAMAuth | None:
        """The IAM token source (None before first use)."""
        return self._auth

    @property
    def transport(self) -> Transport:
        """The HTTP transport every request of this service goes through."""
        return self._transport

    # -- backends ------------------------------------------------------------------------------

    async def backends(self) -> list[IBMBackend]:
        """Every backend of the instance, configurations fetched."""
        api = (await self._open()).api
        devices = await api.backends()
        names = [str(d["name"]) for d in devices if d.get("name")]
        return list(await asyncio.gather(*(self.backend(n) for n in names)))

    async def backend(self, name: str | None = None) -> IBMBackend:
        """The backend ``name``, its configuration fetched (cached per name).

        ``None``: the least busy backend on ``ibm_cloud``; on ``ibm_quantum_platform`` a backend
        must be named.

        Raises:
            BackendNotFoundError: no such backend.
            InvalidInputError: no name on ``ibm_quantum_platform``.
        """
        connection = await self._open()
        if name is None:
            if self.channel == "ibm_cloud":
                return await self.least_busy()
            raise InvalidInputError(
                "a backend is required on the ibm_quantum_platform channel: pass backend='<name>' "
                "(await service.least_busy() picks one)"
            )
        if name in self._backends:
            return self._backends[name]
        try:
            configuration = await connection.api.backend_configuration(name)
        except NotFoundError as exc:
            raise BackendNotFoundError(f"no backend {name!r} on this IBM Quantum instance") from exc
        backend = self._backends.setdefault(name, IBMBackend(self, name, configuration, connection))
        return backend

    def known_backend(self, name: str | None = None) -> IBMBackend | None:
        """The backend ``name`` if it was fetched already (no request is made), else None."""
        return self._backends.get(name) if name is not None else None

    async def fetch_backend(self, name: str | None = None) -> IBMBackend:
        """The same as :meth:`backend` (the :class:`~aqrt.backends.Service` protocol's name)."""
        return await self.backend(name)

    async def least_busy(self, min_num_qubits: int | None = None) -> IBMBackend:
        """The online backend with the shortest queue (and at least ``min_num_qubits``)."""
        api = (await self._open()).api
        candidates = [
            d
            for d in await api.backends()
            if (d.get("status") or {}).get("name") == "online"
            and d.get("class") != "mock"
            and (min_num_qubits is None or int(d.get("qubits", 0)) >= min_num_qubits)
        ]
        if not candidates:
            raise BackendNotFoundError(f"no online backend matches (min_num_qubits={min_num_qubits})")
        best = min(candidates, key=lambda d: int(d.get("queue_length", 0)))
        return await self.backend(str(best["name"]))

    # -- jobs --------------------------------------------------------------------------------

    async def job(self, job_id: str) -> RemoteJob:
        """A job of this instance by its server id, or by the id aqrt gave the job that
        submitted it (``job.job_id`` of a primitive's job: found by the tag
        ``aqrt-job-<id>`` every submission carries), so ``service.job(job.job_id())`` finds the
        job as it does with qiskit-ibm-runtime.

        Raises:
            NotFoundError: no such job.
        """
        connection = await self._open()
        try:
            return RemoteJob(connection, await connection.api.get_job(job_id))
        except NotFoundError:
            replies = await connection.api.list_jobs(limit=1, tags=[JOB_TAG_PREFIX + job_id])
            if not replies:
                raise
            return RemoteJob(connection, replies[0])

    async def jobs(
        self,
        *,
        limit: int = 10,
        skip: int = 0,
        backend: str | None = None,
        pending: bool | None = None,
        program: str | None = None,
        session_id: str | None = None,
        tags: list[str] | None = None,
    ) -> list[RemoteJob]:
        """Jobs of this instance, newest first, filtered as ``GET /jobs`` allows."""
        connection = await self._open()
        replies = await connection.api.list_jobs(
            limit=limit, skip=skip, backend=backend, pending=pending, program=program, session_id=session_id, tags=tags
        )
        return [RemoteJob(connection, reply) for reply in replies]

    def __repr__(self) -> str:
        where = self._account.api_url if self._account else "not opened"
        return f"<RuntimeService {where}>"


class RemoteJob:
    """A job on the server, as listed or retrieved (for jobs submitted by primitives, use the
    :class:`aqrt.Job` they return).

    Args:
        connection: the open connection of the service that listed or retrieved it.
        raw: its ``GET /jobs/{id}`` (or listing) body.

    Attributes:
        job_id: the server's job id; raw: the last ``GET /jobs/{id}`` reply.
    """

    def __init__(self, connection: Connection, raw: dict[str, Any]) -> None:
        self._connection = connection
        self.raw = raw
        self.job_id = str(raw["id"])

    @property
    def backend_name(self) -> str | None:
        """The backend the job runs on."""
        return self.raw.get("backend")

    @property
    def session_id(self) -> str | None:
        """The server's id of the job's session, if it runs in one."""
        return self.raw.get("session_id")

    @property
    def tags(self) -> list[str]:
        """The job's tags."""
        return list(self.raw.get("tags") or [])

    async def status(self) -> JobStatus:
        """The job's status now (one ``GET``); a job the server stopped for running too long is
        ``ERROR``, as :meth:`result` raises ``JobTimeoutError`` for it."""
        self.raw = await self._connection.api.get_job(self.job_id)
        return JobState.of(self.raw).aqrt_status

    async def result(self) -> Any:
        """Wait (on the shared poller) and return the decoded ``PrimitiveResult``.

        Raises:
            JobFailedError / JobCancelledError / JobTimeoutError: the job did not complete.
            RuntimeRequestError: HTTP failed.
        """
        if not JobState.of(self.raw).final:
            interval = poll_interval(bool(self.session_id))
            self.raw = await self._connection.poller.wait_final(self.job_id, interval=interval)
        where = f"server job {self.job_id}"
        return await final_result(self._connection.api, self.job_id, self.raw, where=where, job_id=self.job_id)

    async def cancel(self) -> None:
        """``POST /jobs/{id}/cancel``."""
        await self._connection.api.cancel_job(self.job_id)

    def __repr__(self) -> str:
        return f"<RemoteJob {self.job_id} {JobState.of(self.raw).status or '?'}>"
