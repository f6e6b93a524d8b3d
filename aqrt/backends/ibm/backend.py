"""``IBMBackend``: aqrt's Backend protocol over the Runtime REST API.

``validate_pub`` checks PUBs synchronously against the configuration fetched when the backend
object was obtained. ``execute`` submits the job (idempotently), waits on the service's shared
poller and decodes the result; the job stays QUEUED until a poll sees it Running
(``reports_job_start``). If aqrt cancels the job (``job.cancel()``, a session cancel, a
``max_execution_time`` deadline) the cancellation is sent to the server. Sessions map to
``POST /sessions`` through the optional hooks ``open_session`` / ``close_session`` /
``cancel_session`` that :class:`aqrt.Session` calls.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import anyio

from ...errors import (
    CircuitTooLargeError,
    ConflictError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    RuntimeRequestError,
)
from ...job import JobRequest, Program
from ...options import Options
from ...wire import decode, pubs_to_wire
from ..base import BackendCapabilities, ExecutionContext
from .poller import JOB_POLL_INTERVAL, SESSION_POLL_INTERVAL, job_state
from .rest import IDEMPOTENCY_TAG_PREFIX

if TYPE_CHECKING:
    from .service import RuntimeService

__all__ = ["IBMBackend", "job_params"]

DEFAULT_MAX_SESSION_TIME = 8 * 3600
_RAN_TOO_LONG = 1305  # IBM's reason code: cancelled for exceeding max_execution_time
# Jobs of one session in flight on the server at once: it queues them, so aqrt does not wait.
_JOB_CONCURRENCY = 1000
_DECODE_INLINE_BYTES = 256 << 10


def _report_not_applied(result: Any, options: Options) -> None:
    """Name, in the metadata, the aqrt options the Runtime API has no field for (never silent)."""
    if options.optimization_level is None:
        return
    reason = (
        f"requested {options.optimization_level}, not sent: Runtime V2 primitives take ISA circuits "
        "and do not transpile; transpile for the backend's target first"
    )
    for holder in (result, *result):
        metadata = getattr(holder, "metadata", None)
        if isinstance(metadata, dict):
            metadata.setdefault("options_not_applied", {})["optimization_level"] = reason


async def decode_result(text: str) -> Any:
    """The decoded result; big ones are decoded on a worker thread, not on the loop."""
    if len(text) < _DECODE_INLINE_BYTES:
        return decode(text)
    return await asyncio.get_running_loop().run_in_executor(None, decode, text)


def job_params(program: Program, pubs: Any, options: Options) -> dict[str, Any]:
    """``params`` of ``POST /jobs`` as qiskit-ibm-runtime's V2 primitives build it."""
    wire_options: dict[str, Any] = {}
    if program == "estimator":
        wire_options["default_precision"] = options.default_precision
        if options.seed is not None:
            wire_options["seed_estimator"] = options.seed
    else:
        wire_options["default_shots"] = options.default_shots
        if options.seed is not None:
            wire_options["simulator"] = {"seed_simulator": options.seed}
    params: dict[str, Any] = {
        "pubs": pubs_to_wire(program, pubs),
        "options": wire_options,
        "version": 2,
        "support_qiskit": True,
    }
    if program == "estimator" and options.resilience_level is not None:
        params["resilience_level"] = options.resilience_level
    return params


class IBMBackend:
    """One backend of a :class:`RuntimeService`; obtained with ``await service.backend(name)``.

    Attributes:
        configuration: the ``GET /backends/{name}/configuration`` reply.
        remote_job_ids: aqrt job id -> server job id, for jobs this backend submitted.
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

    def __init__(self, service: RuntimeService, name: str, configuration: dict[str, Any]) -> None:
        self.service = service
        self._name = name
        self.configuration = configuration
        n_qubits = configuration.get("n_qubits", configuration.get("num_qubits"))
        if not isinstance(n_qubits, int) or n_qubits < 1:
            raise RuntimeRequestError(f"backend {name!r}: the configuration has no valid n_qubits ({n_qubits!r})")
        self._num_qubits = n_qubits
        self._remote_sessions: dict[str, str] = {}
        self.remote_job_ids: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_qubits(self) -> int:
        return self._num_qubits

    @property
    def basis_gates(self) -> list[str]:
        return list(self.configuration.get("basis_gates") or [])

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Refuse circuits wider than the backend (at ``run()``, before any request)."""
        width = pub.circuit.num_qubits
        if width > self._num_qubits:
            raise CircuitTooLargeError(
                f"PUB {index}: the circuit has {width} qubits; backend {self.name!r} has {self._num_qubits}"
            )

    # -- sessions (hooks called by aqrt.Session) -----------------------------------------------

    async def open_session(self, session_id: str, *, mode: str, max_time: int) -> str:
        """``POST /sessions``; returns the server's session id, used by this session's jobs."""
        reply = await self.service._api_checked().create_session(
            mode=mode, backend=self.name, instance=self.service.instance, max_ttl=max_time
        )
        remote = str(reply["id"])
        self._remote_sessions[session_id] = remote
        return remote

    async def close_session(self, session_id: str) -> None:
        """``PATCH /sessions/{id}`` ``{"accepting_jobs": false}``."""
        remote = self._remote_sessions.get(session_id)
        if remote is not None:
            await self.service._api_checked().close_session(remote)

    async def cancel_session(self, session_id: str) -> None:
        """``DELETE /sessions/{id}/close``: the server cancels the session's unfinished jobs."""
        remote = self._remote_sessions.get(session_id)
        if remote is not None:
            await self.service._api_checked().cancel_session(remote)

    async def session_details(self, session_id: str) -> dict[str, Any]:
        """``GET /sessions/{id}`` of an aqrt session opened on this backend (the server's view)."""
        remote = self._remote_sessions.get(session_id)
        if remote is None:
            raise NotFoundError(f"session {session_id} was not opened on backend {self.name!r}")
        return await self.service._api_checked().get_session(remote)

    # -- jobs ------------------------------------------------------------------------------------

    async def execute(self, request: JobRequest, context: ExecutionContext) -> Any:
        """Submit, wait on the shared poller, return the decoded ``PrimitiveResult``."""
        api = self.service._api_checked()
        remote_session = self._remote_sessions.get(request.session_id) if request.session_id else None
        params = job_params(request.program, request.pubs, request.options)
        key = request.job_id.replace("-", "")
        submitted: dict[str, Any] | None = None
        try:
            submitted = await api.create_job(
                program_id=request.program,
                backend=self.name,
                params=params,
                session_id=remote_session,
                tags=[f"aqrt-job-{request.job_id}"],
                max_execution_time=request.options.max_execution_time,
                idempotency_key=key,
            )
            remote_id = str(submitted["id"])
            self.remote_job_ids[request.job_id] = remote_id
            interval = SESSION_POLL_INTERVAL if remote_session else JOB_POLL_INTERVAL
            final = await self.service._poller_checked().wait_final(
                remote_id, interval=interval, on_start=context.mark_running
            )
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):  # the cancellation must reach the server
                await self._cancel_remote(submitted, IDEMPOTENCY_TAG_PREFIX + key)
            raise
        return await self._outcome(request, remote_id, final)

    async def _cancel_remote(self, submitted: dict[str, Any] | None, tag: str) -> None:
        api = self.service._api_checked()
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
        state = job_state(final)
        raw_state = final.get("state")
        info: dict[str, Any] = raw_state if isinstance(raw_state, dict) else {}
        reason = info.get("reason") or ""
        code = info.get("reason_code", info.get("reasonCode"))
        where = f"job {request.job_id} (server job {remote_id})"
        if state == "completed":
            result = await decode_result(await self.service._api_checked().job_results(remote_id))
            _report_not_applied(result, request.options)
            return result
        if state == "cancelled" and code == _RAN_TOO_LONG:
            raise JobTimeoutError(f"{where} exceeded its max_execution_time: {reason}", job_id=request.job_id)
        if state == "cancelled":
            suffix = f": {reason}" if reason else ""
            raise JobCancelledError(f"{where} was cancelled on the server{suffix}", job_id=request.job_id)
        detail = f"Error code {code}; {reason}" if code else reason or "no reason given"
        raise JobFailedError(f"{where} failed on the server: {detail}", job_id=request.job_id)

    def __repr__(self) -> str:
        return f"<IBMBackend {self.name} ({self._num_qubits} qubits)>"
