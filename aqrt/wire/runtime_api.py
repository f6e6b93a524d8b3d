"""The IBM Quantum Runtime REST API's vocabulary, shared by aqrt's client and ``aqrt serve``.

Both sides of the API speak the same words: aqrt's HTTP client (:mod:`aqrt.backends.ibm`)
reads them, the server (:mod:`aqrt.server`) writes them. Each is defined here once, with no
HTTP, so the two cannot drift apart:

- job states (``"Queued"`` ... ``"Cancelled"``, and variants such as
  ``"Cancelled - Ran too long"``) to and from aqrt's :class:`~aqrt.job.JobStatus`
  (:class:`JobState`, :func:`api_job_status`);
- session states and modes, and the state that stands for each of aqrt's
  :class:`~aqrt.session.SessionState` values (:func:`api_session_state`);
- the numeric codes of errors and of ``state.reason_code`` (``CODE_*``, one constant each), and
  which aqrt error stands for which (:func:`reason_code`);
- the outcome of a final job: its result, or the typed aqrt error (:func:`final_error`);
- the JSON bodies of jobs, sessions and errors (:func:`job_body`, :func:`session_body`,
  :func:`error_body`);
- idempotent submission (:data:`IDEMPOTENCY_TAG_PREFIX`, :data:`IDEMPOTENCY_HEADER`);
- a job's ``params`` to and from PUBs and :class:`~aqrt.options.Options`, as
  qiskit-ibm-runtime's V2 primitives send them (:func:`job_params`, :func:`pubs_from_params`,
  :func:`options_from_params`).

Example:
    >>> from aqrt.wire.runtime_api import JobState
    >>> state = JobState.of({"state": {"status": "Cancelled", "reason_code": 1305}})
    >>> state.final, state.ran_too_long, state.aqrt_status.name
    (True, True, 'ERROR')
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast

from ..errors import (
    InvalidInputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    SessionCacheError,
    SessionClosedError,
    SessionExpiredError,
)
from ..job import JobStatus
from ..options import Options, option_fields, program_options_class
from ._codec import decode_within
from ._errors import WireError
from ._pubs import Program, pubs_to_wire, pubs_within
from .limits import Admission, LimitExceeded, PayloadLimits

__all__ = [
    "API_VERSION_HEADER",
    "BATCH",
    "CANCELLED",
    "CANCELLED_RAN_TOO_LONG",
    "CLOSED_BY_CANCEL",
    "CLOSED_BY_CLOSE",
    "CLOSED_MAX_TTL",
    "CLOSED_UNUSED",
    "CODE_API_KEY_NOT_FOUND",
    "CODE_BAD_REQUEST",
    "CODE_CONFLICT",
    "CODE_INTERNAL",
    "CODE_INTERRUPTED",
    "CODE_JOB_FAILED",
    "CODE_NON_ISA",
    "CODE_NOT_FOUND",
    "CODE_PENDING_JOBS_LIMIT",
    "CODE_RAN_TOO_LONG",
    "CODE_SESSION_CACHE",
    "CODE_SESSION_CLOSED",
    "CODE_SESSION_EXPIRED",
    "CODE_STORAGE_QUOTA",
    "CODE_TOO_LARGE",
    "CODE_TOO_MANY_FAILURES",
    "CODE_UNAUTHORIZED",
    "COMPLETED",
    "DEDICATED",
    "FAILED",
    "FINAL_JOB_STATUSES",
    "IAM_GRANT_TYPE",
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENCY_TAG_PREFIX",
    "INSTANCE_HEADER",
    "JOB_CANCELLED_REASON",
    "JOB_STATUSES",
    "JOB_TAG_PREFIX",
    "PARAMS_VERSION",
    "PROGRAMS",
    "QUEUED",
    "RUNNING",
    "SESSION_ACTIVE",
    "SESSION_CANCELLED_REASON",
    "SESSION_CLOSED",
    "SESSION_INACTIVE",
    "SESSION_MODES",
    "SESSION_OPEN",
    "JobState",
    "api_job_status",
    "api_session_state",
    "error_body",
    "final_error",
    "job_body",
    "job_created_body",
    "job_params",
    "options_from_params",
    "options_not_sent",
    "pubs_from_params",
    "reason_code",
    "session_body",
]

# -- job states ---------------------------------------------------------------------------------

QUEUED: Final = "Queued"
RUNNING: Final = "Running"
COMPLETED: Final = "Completed"
FAILED: Final = "Failed"
CANCELLED: Final = "Cancelled"
#: How the API may name a job it cancelled for exceeding its ``max_execution_time`` (IBM also
#: says it as ``"Cancelled"`` with reason code :data:`CODE_RAN_TOO_LONG`).
CANCELLED_RAN_TOO_LONG: Final = "Cancelled - Ran too long"
#: Every job status of the API, in the order a job goes through them.
JOB_STATUSES: Final = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
#: The job statuses that never change again.
FINAL_JOB_STATUSES: Final = frozenset({COMPLETED, FAILED, CANCELLED})

_RAN_TOO_LONG_VARIANT = "ran too long"
_BY_LOWER = {status.lower(): status for status in JOB_STATUSES}
_TO_API: Final = {
    JobStatus.QUEUED: QUEUED,
    JobStatus.RUNNING: RUNNING,
    JobStatus.DONE: COMPLETED,
    JobStatus.ERROR: FAILED,
    JobStatus.CANCELLED: CANCELLED,
}
_FROM_API: Final = {api: status for status, api in _TO_API.items()}


def api_job_status(status: JobStatus) -> str:
    """The API's name of an aqrt job status (``JobStatus.DONE`` -> ``"Completed"``)."""
    return _TO_API[status]


# -- codes --------------------------------------------------------------------------------------
# The numbers of error bodies and of a job's ``state.reason_code``: IBM Runtime's meanings where
# IBM has one, aqrt's own choice otherwise.

CODE_INTERNAL: Final = 1000
CODE_UNAUTHORIZED: Final = 1001
CODE_BAD_REQUEST: Final = 1200
CODE_TOO_LARGE: Final = 1202
CODE_NOT_FOUND: Final = 1211
CODE_CONFLICT: Final = 1213
CODE_SESSION_CLOSED: Final = 1217
CODE_SESSION_EXPIRED: Final = 1218
CODE_SESSION_CACHE: Final = 1219
#: The job was stopped for running longer than its ``max_execution_time`` (the ``cost`` sent).
CODE_RAN_TOO_LONG: Final = 1305
CODE_JOB_FAILED: Final = 1500
#: The job could not be re-run after the server restarted, or the server died under it too often
#: (IBM's 1010, "Error returned at backend level").
CODE_INTERRUPTED: Final = 1010
#: The job's circuits are not ISA for its backend, or wider than it (IBM's code and meaning).
CODE_NON_ISA: Final = 1517
#: What IBM IAM answers (400) for an unknown API key.
CODE_API_KEY_NOT_FOUND: Final = 2001
#: A 429 for too many failed API-key exchanges from one address or with one key (aqrt's choice).
CODE_TOO_MANY_FAILURES: Final = 1429
#: A submission refused because its user has reached the limit of pending (not yet finished)
#: jobs: IBM Runtime's code (its message: "You have reached the limit of N pending jobs. Please
#: wait for a job to complete or cancel one before submitting anything new.").
CODE_PENDING_JOBS_LIMIT: Final = 3458
#: A submission refused because its user's stored jobs (params and results) have reached the
#: server's quota of bytes: aqrt's own code (IBM Runtime has no storage quota; 1429 is aqrt serve's
#: code for too many failed key exchanges).
CODE_STORAGE_QUOTA: Final = 1430


def reason_code(error: BaseException | None) -> int:
    """The ``state.reason_code`` of a job that ended with aqrt error ``error``."""
    if isinstance(error, JobTimeoutError):
        return CODE_RAN_TOO_LONG
    if isinstance(error, SessionExpiredError):
        return CODE_SESSION_EXPIRED
    if isinstance(error, SessionCacheError):
        return CODE_SESSION_CACHE
    if isinstance(error, SessionClosedError):
        return CODE_SESSION_CLOSED
    return CODE_JOB_FAILED


@dataclasses.dataclass(frozen=True)
class JobState:
    """The ``state`` of a job body, read leniently (the API's spellings vary).

    Attributes:
        status: one of :data:`JOB_STATUSES`, or None when the body names no status this module
            knows (a state the API added later, e.g. ``"Initializing"``: neither started nor final).
        reason: ``state.reason`` (``""`` when absent).
        reason_code: ``state.reason_code`` (or ``reasonCode``) when it is a number, else None.
        variant: what follows ``" - "`` in a status such as ``"Cancelled - Ran too long"``.
    """

    status: str | None
    reason: str = ""
    reason_code: int | None = None
    variant: str = ""

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> JobState:
        """The state of a job body (``GET /jobs/{id}``); also reads a top-level ``status``."""
        state = body.get("state")
        info: Mapping[str, Any] = state if isinstance(state, Mapping) else {}
        text = str((info.get("status") if isinstance(state, Mapping) else body.get("status")) or "")
        base, _, variant = text.partition(" - ")
        code = info.get("reason_code", info.get("reasonCode"))
        if isinstance(code, str) and code.strip().isdigit():
            code = int(code)
        return cls(
            status=_BY_LOWER.get(base.strip().lower()),
            reason=str(info.get("reason") or ""),
            reason_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            variant=variant.strip(),
        )

    @property
    def final(self) -> bool:
        """The job is Completed, Failed or Cancelled."""
        return self.status in FINAL_JOB_STATUSES

    @property
    def started(self) -> bool:
        """The job has started: it is Running or final."""
        return self.status == RUNNING or self.final

    @property
    def ran_too_long(self) -> bool:
        """The server cancelled the job for exceeding its ``max_execution_time``."""
        return self.status == CANCELLED and (
            self.reason_code == CODE_RAN_TOO_LONG or self.variant.lower() == _RAN_TOO_LONG_VARIANT
        )

    @property
    def aqrt_status(self) -> JobStatus:
        """The aqrt status: an unknown state is QUEUED; a job that ran too long is ERROR (it
        failed with :class:`~aqrt.errors.JobTimeoutError`, as a local job would)."""
        if self.status is None:
            return JobStatus.QUEUED
        if self.ran_too_long:
            return JobStatus.ERROR
        return _FROM_API[self.status]


def final_error(body: Mapping[str, Any], *, where: str, job_id: str | None = None) -> JobError | None:
    """The outcome of a final job body: None when it completed (its result can be fetched),
    else the aqrt error to raise.

    Args:
        body: the job body (``GET /jobs/{id}``), in a final state.
        where: how messages name the job, e.g. ``"job 3f2a (server job d0c1)"``.
        job_id: the ``job_id`` the error carries.

    Returns:
        None for Completed; :class:`~aqrt.errors.JobTimeoutError` for a job cancelled for running
        too long; :class:`~aqrt.errors.JobCancelledError` for another cancelled job;
        :class:`~aqrt.errors.JobFailedError` otherwise (its message shows the reason code).
    """
    state = JobState.of(body)
    if state.status == COMPLETED:
        return None
    if state.ran_too_long:
        return JobTimeoutError(f"{where} exceeded its max_execution_time: {state.reason}", job_id=job_id)
    if state.status == CANCELLED:
        suffix = f": {state.reason}" if state.reason else ""
        return JobCancelledError(f"{where} was cancelled on the server{suffix}", job_id=job_id)
    code = state.reason_code
    detail = f"Error code {code}; {state.reason}" if code else state.reason or "no reason given"
    return JobFailedError(f"{where} failed on the server: {detail}", job_id=job_id)


# -- sessions -----------------------------------------------------------------------------------

DEDICATED: Final = "dedicated"
BATCH: Final = "batch"
#: The session modes of ``POST /sessions``.
SESSION_MODES: Final = (DEDICATED, BATCH)

SESSION_OPEN: Final = "open"
SESSION_ACTIVE: Final = "active"
SESSION_INACTIVE: Final = "inactive"
SESSION_CLOSED: Final = "closed"

#: ``closed_reason`` of a session whose ``max_ttl`` ran out.
CLOSED_MAX_TTL: Final = "max_ttl reached"
#: ``closed_reason`` of a session cancelled (``DELETE /sessions/{id}/close``).
CLOSED_BY_CANCEL: Final = "cancelled"
#: ``closed_reason`` of a session closed (``PATCH`` ``accepting_jobs: false``) and drained.
CLOSED_BY_CLOSE: Final = "closed"
#: ``closed_reason`` of a dedicated session no job was submitted to within its interactive timeout.
CLOSED_UNUSED: Final = "interactive_ttl reached with no job submitted"
#: ``state.reason`` of a job cancelled by its user.
JOB_CANCELLED_REASON: Final = "cancelled by its user"
#: ``state.reason`` of a job cancelled with its session.
SESSION_CANCELLED_REASON: Final = "cancelled with its session"

# aqrt's SessionState member -> the API's state. Keyed by member name: the wire layer sits below
# the session layer and does not import it (tests check that every member is here).
_SESSION_STATE: Final = {
    "PENDING": SESSION_OPEN,
    "ACTIVE": SESSION_ACTIVE,
    "INACTIVE": SESSION_INACTIVE,
    "CLOSED": SESSION_CLOSED,
    "EXPIRED": SESSION_CLOSED,
}


def api_session_state(state: enum.Enum) -> str:
    """The API's name of an aqrt :class:`~aqrt.session.SessionState` (``PENDING`` is ``"open"``;
    an expired session is ``"closed"``).

    Raises:
        KeyError: ``state`` is not a ``SessionState`` member this module knows.
    """
    return _SESSION_STATE[state.name]


# -- bodies -------------------------------------------------------------------------------------


def job_created_body(job_id: str, backend: str, session_id: str | None) -> dict[str, Any]:
    """The reply to ``POST /jobs``."""
    return {"id": job_id, "backend": backend, "session_id": session_id}


def job_body(
    *,
    job_id: str,
    backend: str,
    program: str,
    status: str,
    created: str,
    user_id: str,
    ended: str | None = None,
    reason: str | None = None,
    reason_code: int | None = None,
    session_id: str | None = None,
    tags: Iterable[str] = (),
    cost: int | None = None,
    usage_seconds: float | None = None,
    params: Any = None,
) -> dict[str, Any]:
    """A job as ``GET /jobs/{id}`` and ``GET /jobs`` show it (``params`` only when given, and
    last: ``aqrt serve`` writes a job's stored params text there as it is)."""
    state: dict[str, Any] = {"status": status}
    if reason:
        state["reason"] = reason
    if reason_code:
        state["reason_code"] = reason_code
    usage = usage_seconds or 0.0
    body: dict[str, Any] = {
        "id": job_id,
        "backend": backend,
        "state": state,
        "status": status,
        "program": {"id": program},
        "created": created,
        "ended": ended,
        "session_id": session_id,
        "tags": list(tags),
        "cost": cost,
        "runtime": "",
        "private": False,
        "user_id": user_id,
        "usage": {"seconds": usage, "quantum_seconds": usage},
    }
    if params is not None:
        body["params"] = params
    return body


def session_body(
    *,
    session_id: str,
    backend: str,
    mode: str,
    state: str,
    accepting_jobs: bool,
    max_ttl: int,
    interactive_ttl: int | None,
    active_ttl: int,
    elapsed_time: float,
    created_at: str,
    user_id: str,
    instance: str | None,
    started_at: str | None = None,
    closed_at: str | None = None,
    closed_reason: str | None = None,
) -> dict[str, Any]:
    """A session as ``POST /sessions`` and ``GET /sessions/{id}`` show it (``active_ttl``:
    seconds left of ``max_ttl``; ``closed_reason`` only when given)."""
    body: dict[str, Any] = {
        "id": session_id,
        "backend_name": backend,
        "mode": mode,
        "state": state,
        "accepting_jobs": accepting_jobs,
        "max_ttl": max_ttl,
        "interactive_ttl": interactive_ttl,
        "active_ttl": active_ttl,
        "elapsed_time": elapsed_time,
        "started_at": started_at,
        "created_at": created_at,
        "closed_at": closed_at,
        "last_job_started": None,
        "last_job_completed": None,
        "activated_at": None,
        "user_id": user_id,
        "instance": instance,
        "timestamps": [{"status": SESSION_OPEN, "timestamp": created_at}],
    }
    if closed_reason is not None:
        body["closed_reason"] = closed_reason
    return body


def error_body(status: int, message: str, code: int) -> dict[str, Any]:
    """An error as the API answers it: ``{"errors": [{"code", "message", "more_info"}], ...}``."""
    return {"errors": [{"code": code, "message": message, "more_info": ""}], "trace": "", "status_code": status}


# -- idempotent submission ----------------------------------------------------------------------

#: The tag ``aqrt-job-<id>`` aqrt's client adds to each job it submits: the id of the aqrt job
#: (``job.job_id``) that submitted it, by which ``RuntimeService.job()`` also finds it.
JOB_TAG_PREFIX: Final = "aqrt-job-"
#: The tag ``aqrt-idem-<key>`` that makes a ``POST /jobs`` idempotent: aqrt's client adds one to
#: every submission and looks the job up by it; ``aqrt serve`` makes one job per key and user.
IDEMPOTENCY_TAG_PREFIX: Final = "aqrt-idem-"
#: The header naming the same key (``aqrt serve`` dedupes by it as by the tag).
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"

# -- authentication and headers -----------------------------------------------------------------

#: The ``grant_type`` of IBM IAM's API-key exchange (``POST /identity/token``).
IAM_GRANT_TYPE: Final = "urn:ibm:params:oauth:grant-type:apikey"
#: The header naming the service instance (its CRN) on every API call.
INSTANCE_HEADER: Final = "Service-CRN"
#: The header naming the API version a client speaks.
API_VERSION_HEADER: Final = "IBM-API-Version"

# -- params <-> (PUBs, Options) -----------------------------------------------------------------

#: The programs served: the V2 primitives.
PROGRAMS: Final = ("estimator", "sampler")
#: The primitive version a job's ``params`` carry.
PARAMS_VERSION: Final = 2

# The top-level names qiskit-ibm-runtime's OptionsV2._get_program_inputs copies into
# params["options"] (experimental keys among them are merged in, the others stay experimental).
_PARAMS_OPTION_NAMES: Final = (
    "default_precision",
    "default_shots",
    "seed_estimator",
    "dynamical_decoupling",
    "resilience",
    "twirling",
    "simulator",
    "execution",
)
_PROGRAM_NAMES: Final = {"estimator": "Estimator", "sampler": "Sampler"}


def job_params(program: Program, pubs: Any, options: Options) -> dict[str, Any]:
    """The ``params`` of ``POST /jobs`` as qiskit-ibm-runtime's V2 primitives build them: the
    set options only, nested, ``resilience_level`` beside them, ``experimental`` merged as the
    official client merges it. ``max_execution_time`` and ``environment`` travel in the job's
    body (``cost``, ``tags``, ...), not here.

    aqrt's ``seed`` is sent under IBM's name for the program (``seed_estimator``, or
    ``simulator.seed_simulator`` for the Sampler) when the set IBM seeds would not give the same
    seed; ``optimization_level`` and options the program does not have are left out
    (:func:`options_not_sent` names them).

    Raises:
        WireError: a PUB that cannot be encoded.
    """
    wire_options, resilience_level, _ = _wire_options(program, options)
    params: dict[str, Any] = {
        "pubs": pubs_to_wire(program, pubs),
        "options": wire_options,
        "version": PARAMS_VERSION,
        "support_qiskit": True,
    }
    if resilience_level is not None:
        params["resilience_level"] = resilience_level
    return params


@functools.cache
def _program_fields(program: str) -> dict[str, bool]:
    return option_fields(program_options_class(program))


def _wire_options(program: str, options: Options) -> tuple[dict[str, Any], int | None, dict[str, str]]:
    """``(params["options"], resilience_level, not sent: path -> why)``."""
    values = options.to_dict(only_set=True)
    not_sent: dict[str, str] = {}
    program_name = _PROGRAM_NAMES.get(program, program)
    values.pop("max_execution_time", None)
    environment = values.pop("environment", {})
    level = values.pop("optimization_level", None)
    if level is not None:
        not_sent["optimization_level"] = (
            f"requested {level}, not sent: Runtime V2 primitives take ISA circuits "
            "and do not transpile; transpile for the backend's target first"
        )
    values.pop("seed", None)
    experimental = values.pop("experimental", None)
    resilience_level = values.pop("resilience_level", None)
    fields = _program_fields(program)
    if resilience_level is not None and "resilience_level" not in fields:
        not_sent["resilience_level"] = f"requested {resilience_level}, not sent: not an option of the {program_name}"
        resilience_level = None
    kept = _known_only(values, fields, "", not_sent, program_name)
    seed = options.seed
    if seed is not None:
        simulator = kept.get("simulator", {})
        if program == "estimator":
            if not (kept.get("seed_estimator") is None and simulator.get("seed_simulator") == seed):
                kept["seed_estimator"] = seed
        else:
            kept["simulator"] = {**simulator, "seed_simulator": seed}
    coupling_map = kept.get("simulator", {}).get("coupling_map")
    if coupling_map is not None and not isinstance(coupling_map, list):
        kept["simulator"]["coupling_map"] = [list(edge) for edge in coupling_map.get_edges()]
    if experimental:
        merged_names = [name for name in _PARAMS_OPTION_NAMES if name in fields]
        extra = {key: value for key, value in experimental.items() if key not in merged_names}
        _merge_options(kept, {key: value for key, value in experimental.items() if key in merged_names})
        extra.pop("image", None)
        if extra:
            kept["experimental"] = extra
    for name, value in environment.items():
        if name != "job_tags":  # sent as the job's tags
            not_sent[f"environment.{name}"] = (
                f"requested {value!r}, not sent: aqrt's Runtime client does not send this field of the job yet"
            )
    _drop_empty(kept)
    return kept, resilience_level, not_sent


def _known_only(
    values: dict[str, Any], fields: Mapping[str, bool], prefix: str, not_sent: dict[str, str], program_name: str
) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in values.items():
        path = prefix + name
        if path not in fields:
            not_sent[path] = f"requested {value!r}, not sent: not an option of the {program_name}"
        elif fields[path] and isinstance(value, dict):
            kept[name] = _known_only(value, fields, path + ".", not_sent, program_name)
        else:
            kept[name] = value
    return kept


def _merge_options(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """qiskit-ibm-runtime's ``merge_options_v2``: dicts merge key by key, anything else replaces."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge_options(into[key], value)
        else:
            into[key] = _copied(value)


def _copied(value: Any) -> Any:
    return {key: _copied(item) for key, item in value.items()} if isinstance(value, Mapping) else value


def _drop_empty(values: dict[str, Any]) -> None:
    for key in list(values):
        if isinstance(values[key], dict):
            _drop_empty(values[key])
            if not values[key]:
                del values[key]


def options_not_sent(options: Options, program: Program | None = None) -> dict[str, str]:
    """The options :func:`job_params` and aqrt's client cannot send (path -> why), to report
    them, never drop them silently: ``optimization_level``, options ``program`` does not have,
    and ``environment`` fields other than ``job_tags``."""
    _, _, not_sent = _wire_options(program or "estimator", options)
    if program is None:
        not_sent = {
            path: why
            for path, why in not_sent.items()
            if path == "optimization_level" or path.startswith("environment.")
        }
    return not_sent


def pubs_from_params(
    program: str,
    params: Any,
    *,
    max_pubs: int | None = None,
    max_decompressed_bytes: int | None = None,
    limits: PayloadLimits | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """The PUBs of a job's ``params`` for ``program`` and the rest of the params, decoded (read
    the options from the rest with :func:`options_from_params`). Reading QPY costs CPU: call it
    off the event loop.

    ``limits`` (:class:`~aqrt.wire.limits.PayloadLimits`) bound what the params may declare,
    checked before anything is built from them; ``max_pubs`` and ``max_decompressed_bytes``,
    when given, replace those two of ``limits``. One decompression budget covers the whole
    params. The rest is decoded first, so that ``options.default_shots`` is known when the
    sampler PUBs' output is checked.

    Raises:
        LimitExceeded: the params declare more than ``limits`` allow (``"PUB 3: ..."``).
        WireError: params that are not an object of ``version`` 2 with a non-empty list of
            ``pubs``, or that do not decode, or a program other than ``"estimator"`` and
            ``"sampler"`` (``"invalid params: ..."``).
    """
    limits = limits if limits is not None else PayloadLimits()
    if max_pubs is not None:
        limits = dataclasses.replace(limits, max_pubs=max_pubs)
    if max_decompressed_bytes is not None:
        limits = dataclasses.replace(limits, max_decompressed_bytes=max_decompressed_bytes)
    if not isinstance(params, dict):
        raise WireError("params must be a JSON object with 'pubs'")
    if params.get("version", PARAMS_VERSION) != PARAMS_VERSION:
        raise WireError(f"only version {PARAMS_VERSION} primitives are served, got version {params.get('version')!r}")
    raw_pubs = params.get("pubs")
    if not isinstance(raw_pubs, list) or not raw_pubs:
        raise WireError("params['pubs'] must be a non-empty list of PUBs")
    if limits.max_pubs is not None and len(raw_pubs) > limits.max_pubs:
        raise LimitExceeded(f"a job may hold at most {limits.max_pubs} PUBs, got {len(raw_pubs)} (max_pubs)")
    admission = Admission(limits)
    try:
        rest = decode_within({k: v for k, v in params.items() if k != "pubs"}, admission)
        default_shots = _default_shots(rest, limits)
        # pubs_within refuses any other program with a WireError.
        pubs = pubs_within(cast(Program, program), raw_pubs, admission, default_shots=default_shots)
    except LimitExceeded:
        raise
    except WireError as exc:
        raise WireError(f"invalid params: {exc}") from None
    return list(pubs), rest


def _default_shots(rest: Mapping[str, Any], limits: PayloadLimits) -> int | None:
    """``options.default_shots`` when it is an int (else None: the options check says why)."""
    options = rest.get("options")
    shots = options.get("default_shots") if isinstance(options, dict) else None
    if type(shots) is not int:
        return None
    if limits.max_shots is not None and shots > limits.max_shots:
        raise LimitExceeded(f"default_shots is {shots}; this server takes at most {limits.max_shots} shots (max_shots)")
    return shots


def options_from_params(
    params: Mapping[str, Any], *, max_execution_time: int | None = None, program: str | None = None
) -> Options:
    """The options of (decoded) ``params``: ``params["options"]`` with ``resilience_level``
    beside it, as qiskit-ibm-runtime sends them; ``max_execution_time`` is the job's ``cost``.
    For a ``program``, its IBM class (:class:`~aqrt.options.EstimatorOptions` /
    :class:`~aqrt.options.SamplerOptions`) checks the names; else aqrt's :class:`Options`.

    Raises:
        WireError: ``params["options"]`` is not an object, or names an unknown option, or a value
            out of range (``"invalid options: ..."``).
    """
    given = params.get("options") or {}
    if not isinstance(given, dict):
        raise WireError("params['options'] must be an object")
    values: dict[str, Any] = dict(given)
    if params.get("resilience_level") is not None:
        values["resilience_level"] = params["resilience_level"]
    if max_execution_time is not None:
        values["max_execution_time"] = max_execution_time
    kind = program_options_class(program) if program is not None else Options
    try:
        return kind.from_mapping(values)
    except InvalidInputError as exc:
        raise WireError(f"invalid options: {exc}") from None
