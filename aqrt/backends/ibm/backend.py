"""``IBMBackend``: aqrt's Backend protocol over the Runtime REST API.

``validate_pub`` checks PUBs synchronously against the configuration fetched when the backend
object was obtained. ``execute`` submits the job (idempotently), waits on the service's shared
poller and decodes the result (the Runtime vocabulary, params and outcomes, is
:mod:`aqrt.wire.runtime_api`'s); the job stays QUEUED until a poll sees it Running
(``reports_job_start``). If aqrt cancels the job (``job.cancel()``, a session cancel, a
``max_execution_time`` deadline) the cancellation is sent to the server. Sessions map to
``POST /sessions`` through the optional hooks ``open_session`` / ``close_session`` /
``cancel_session`` that :class:`aqrt.Session` calls. The server queues a dedicated session's
jobs in the order it creates them, so their ``POST /jobs`` go out one after another, in the
order aqrt submitted the jobs (the jobs themselves still wait on the server together), and
they settle here in that order too.

The backend reaches the server through the :class:`~.connection.Connection` its service hands
it, never through the service itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

import anyio
from qiskit.providers import BackendV2
from qiskit.providers import Options as QiskitOptions
from qiskit.transpiler import Target

from ...errors import (
    BackendError,
    CircuitTooLargeError,
    ConflictError,
    InvalidPubError,
    NotFoundError,
    RuntimeRequestError,
)
from ...job import JobRequest, Program
from ...options import Options
from ...wire import Program as PubProgram
from ...wire.runtime_api import DEDICATED, IDEMPOTENCY_TAG_PREFIX, JOB_TAG_PREFIX, job_params, options_not_sent
from ..base import BackendCapabilities, ExecutionContext, Service
from .connection import Connection
from .poller import poll_interval
from .results import decode_result, final_result
from .target import target_from_configuration

# job_params and decode_result live in aqrt.wire.runtime_api and .results; named here as well.
__all__ = ["IBMBackend", "decode_result", "job_params"]

DEFAULT_MAX_SESSION_TIME = 8 * 3600
# Jobs of one session in flight on the server at once: it queues them, so aqrt does not wait.
_JOB_CONCURRENCY = 1000


def _report_not_applied(result: Any, program: Program, options: Options) -> None:
    """Name, in the metadata, the options aqrt's client does not send (never silent)."""
    not_sent = options_not_sent(options, cast(PubProgram, program))  # validate_pub refuses executor jobs
    if not not_sent:
        return
    for holder in (result, *result):
        metadata = getattr(holder, "metadata", None)
        if isinstance(metadata, dict):
            metadata.setdefault("options_not_applied", {}).update(not_sent)


class _Turn:
    """One place in an :class:`_InOrder` queue: :meth:`wait` until every earlier one ended."""

    def __init__(self, previous: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        self._previous = previous
        self._mine = mine

    async def wait(self) -> None:
        """Wait until the turns taken before this one have ended."""
        if self._previous is not None and not self._previous.done():
            await asyncio.shield(self._previous)

    def end(self) -> None:
        """End this turn (idempotent); one ended before its time is handed on only once the
        turn before it ends, so later turns never overtake an earlier one."""
        previous, mine = self._previous, self._mine
        if previous is not None and not previous.done():
            previous.add_done_callback(lambda _: _finish(mine))
        else:
            _finish(mine)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _InOrder:
    """Turns in the order they are taken (:meth:`take` is synchronous, so the order is the
    order of the calls, not of the first awaits)."""

    def __init__(self) -> None:
        self._tail: asyncio.Future[None] | None = None

    def take(self) -> _Turn:
        """The next turn."""
        previous, self._tail = self._tail, asyncio.get_running_loop().create_future()
        return _Turn(previous, self._tail)


@dataclasses.dataclass
class _SessionOrder:
    """A dedicated session's jobs in aqrt's order: created on the server in that order (its
    queue is FIFO), and settled here in that order (one job's poll can see it final before an
    earlier job's poll does)."""

    submissions: _InOrder = dataclasses.field(default_factory=_InOrder)
    settlements: _InOrder = dataclasses.field(default_factory=_InOrder)


class IBMBackend(BackendV2):
    """One backend of a :class:`RuntimeService`; obtained with ``await service.backend(name)``.

    A Qiskit ``BackendV2``: its ``target`` is built from the configuration (the device's gates
    on their qubits), so ``generate_preset_pass_manager(backend=...)`` gives ISA circuits for it.
    ``run()`` checks widths only; a circuit that is not ISA is refused by the server (IBM's ISA
    check at ``run()``, as qiskit-ibm-runtime does it client-side, is not done yet).

    Args:
        service: the service it belongs to (the :class:`~aqrt.backends.Service` protocol's
            ``backend.service``).
        name: its name; configuration: its ``GET /backends/{name}/configuration`` reply.
        connection: the service's open connection, through which every request goes.

    Attributes:
        configuration: the ``GET /backends/{name}/configuration`` reply.
        remote_job_ids: aqrt job id -> server job id, for jobs this backend submitted.

    Raises:
        RuntimeRequestError: the configuration has no valid ``n_qubits``.
    """

    capabilities = BackendCapabilities(
        max_session_time=DEFAULT_MAX_SESSION_TIME,
        interactive_timeout_configurable=False,
        job_concurrency=_JOB_CONCURRENCY,
        # The server counts max_execution_time (sent as ``cost``) from the job's start, not from
        # its submission: a job waiting in IBM's queue must not time out here.
        enforces_max_execution_time=True,
        # Likewise a session's max_time: IBM starts it when the first job starts running.
        enforces_max_time=True,
        # A job is QUEUED while IBM queues it; the poller calls context.mark_running at Running.
        reports_job_start=True,
        remote_sessions=True,
    )

    def __init__(self, service: Service, name: str, configuration: dict[str, Any], connection: Connection) -> None:
        super().__init__(name=name, backend_version=str(configuration.get("backend_version") or ""))
        self.service = service
        self._connection = connection
        self.configuration = configuration
        self._target: Target | None = None
        n_qubits = configuration.get("n_qubits", configuration.get("num_qubits"))
        if not isinstance(n_qubits, int) or n_qubits < 1:
            raise RuntimeRequestError(f"backend {name!r}: the configuration has no valid n_qubits ({n_qubits!r})")
        self._num_qubits = n_qubits
        self._remote_sessions: dict[str, str] = {}
        self._orders: dict[str, _SessionOrder] = {}  # per dedicated aqrt session
        self.remote_job_ids: dict[str, str] = {}

    @property
    def target(self) -> Target:
        """The device's target, from its configuration (built on first use)."""
        if self._target is None:
            self._target = target_from_configuration(self.configuration)
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> QiskitOptions:
        return QiskitOptions()

    @property
    def simulator(self) -> bool:
        """The configuration's ``simulator`` flag (IBM checks ISA circuits on devices only)."""
        return bool(self.configuration.get("simulator", False))

    def run(self, run_input: Any, **options: Any) -> Any:
        """Refused, as qiskit-ibm-runtime refuses it: circuits run through the primitives.

        Raises:
            BackendError: always.
        """
        raise BackendError(
            f"backend.run() is not supported on {self.name!r}: IBM Quantum removed it; run circuits through the "
            "primitives, e.g. `await aqrt.Sampler(mode=backend).run([circuit])` (or aqrt.Estimator)."
        )

    @property
    def num_qubits(self) -> int:
        """The backend's width (``n_qubits`` of its configuration)."""
        return self._num_qubits

    @property
    def basis_gates(self) -> list[str]:
        """The configuration's ``basis_gates``."""
        return list(self.configuration.get("basis_gates") or [])

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Refuse circuits wider than the backend (at ``run()``, before any request), and
        ``executor`` jobs: aqrt's client does not send QuantumPrograms (qiskit-ibm-runtime's
        executor-based primitives do)."""
        if program == "executor":
            raise InvalidPubError(
                index,
                "aqrt's Runtime client does not submit executor programs; run them with qiskit-ibm-runtime's "
                "executor-based primitives (qiskit_ibm_runtime.executor_sampler / executor_estimator)",
            )
        width = pub.circuit.num_qubits
        if width > self._num_qubits:
            raise CircuitTooLargeError(
                f"PUB {index}: the circuit has {width} qubits; backend {self.name!r} has {self._num_qubits}"
            )

    # -- sessions (hooks called by aqrt.Session) -----------------------------------------------

    async def open_session(self, session_id: str, *, mode: str, max_time: int) -> str:
        """``POST /sessions``; returns the server's session id, used by this session's jobs."""
        reply = await self._connection.api.create_session(
            mode=mode, backend=self.name, instance=self._connection.instance, max_ttl=max_time
        )
        remote = str(reply["id"])
        self._remote_sessions[session_id] = remote
        if mode == DEDICATED:
            self._orders[session_id] = _SessionOrder()
        return remote

    async def close_session(self, session_id: str) -> None:
        """``PATCH /sessions/{id}`` ``{"accepting_jobs": false}``."""
        self._orders.pop(session_id, None)  # its jobs have all ended: aqrt closes a session after them
        remote = self._remote_sessions.get(session_id)
        if remote is not None:
            await self._connection.api.close_session(remote)

    async def cancel_session(self, session_id: str) -> None:
        """``DELETE /sessions/{id}/close``: the server cancels the session's unfinished jobs."""
        self._orders.pop(session_id, None)  # running jobs hold their own turns
        remote = self._remote_sessions.get(session_id)
        if remote is not None:
            await self._connection.api.cancel_session(remote)

    async def session_details(self, session_id: str) -> dict[str, Any]:
        """``GET /sessions/{id}`` of an aqrt session opened on this backend (the server's view)."""
        remote = self._remote_sessions.get(session_id)
        if remote is None:
            raise NotFoundError(f"session {session_id} was not opened on backend {self.name!r}")
        return await self._connection.api.get_session(remote)

    # -- jobs ------------------------------------------------------------------------------------

    async def execute(self, request: JobRequest, context: ExecutionContext) -> Any:
        """Submit, wait on the shared poller, return the decoded ``PrimitiveResult``."""
        order = self._orders.get(request.session_id) if request.session_id else None
        # Both turns are taken now, before the first await: in the order aqrt submitted the jobs.
        submission = order.submissions.take() if order is not None else None
        settlement = order.settlements.take() if order is not None else None
        try:
            remote_id, final = await self._run_remote(request, context, submission)
            if settlement is not None:
                await settlement.wait()
            return await self._outcome(request, remote_id, final)
        finally:
            if settlement is not None:
                settlement.end()

    async def _run_remote(
        self, request: JobRequest, context: ExecutionContext, submission: _Turn | None
    ) -> tuple[str, dict[str, Any]]:
        """Create the job on the server (in ``submission``'s turn) and wait until it is final;
        returns its server id and final body. A cancellation is sent to the server."""
        api = self._connection.api
        remote_session = self._remote_sessions.get(request.session_id) if request.session_id else None
        params = job_params(cast(PubProgram, request.program), request.pubs, request.options)
        key = request.job_id.replace("-", "")
        submitted: dict[str, Any] | None = None
        try:
            try:
                if submission is not None:
                    await submission.wait()
                submitted = await api.create_job(
                    program_id=request.program,
                    backend=self.name,
                    params=params,
                    session_id=remote_session,
                    tags=[*(request.options.environment.job_tags or ()), JOB_TAG_PREFIX + request.job_id],
                    max_execution_time=request.options.max_execution_time,
                    idempotency_key=key,
                )
            finally:
                if submission is not None:
                    submission.end()
            remote_id = str(submitted["id"])
            self.remote_job_ids[request.job_id] = remote_id
            final = await self._connection.poller.wait_final(
                remote_id, interval=poll_interval(remote_session is not None), on_start=context.mark_running
            )
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):  # the cancellation must reach the server
                await self._cancel_remote(submitted, IDEMPOTENCY_TAG_PREFIX + key)
            raise
        return remote_id, final

    async def _cancel_remote(self, submitted: dict[str, Any] | None, tag: str) -> None:
        api = self._connection.api
        try:
            if submitted is None:  # cancelled mid-POST: the job may exist all the same
                submitted = await api.find_job_by_tag(tag)
            if submitted is not None:
                await api.cancel_job(str(submitted["id"]))
        except (NotFoundError, ConflictError):
            pass  # already final or gone: nothing to cancel
        except RuntimeRequestError:
            pass  # best effort; the job's own max execution time still bounds it

    async def _outcome(self, request: JobRequest, remote_id: str, final: dict[str, Any]) -> Any:
        where = f"job {request.job_id} (server job {remote_id})"
        result = await final_result(self._connection.api, remote_id, final, where=where, job_id=request.job_id)
        _report_not_applied(result, request.program, request.options)
        return result

    def __repr__(self) -> str:
        return f"<IBMBackend {self.name} ({self._num_qubits} qubits)>"
