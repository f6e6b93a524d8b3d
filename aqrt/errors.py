"""The whole aqrt exception tree, in one place.

Every error aqrt raises on purpose is an :class:`AqrtError`. Where a stdlib meaning fits, the
error also subclasses it, so ``except ValueError`` / ``except TimeoutError`` keep working::

    AqrtError
    ├── InvalidInputError (ValueError)          bad arguments, caught at the call
    │   ├── InvalidPubError                     names the PUB index (and parameter/qubit) at fault
    │   │   └── UnsupportedCircuitError (QiskitError)  an instruction this backend cannot run
    │   ├── InvalidOptionsError                 unknown option, or a value out of range
    │   └── InvalidTimeSpecError                a malformed max_time / timeout string
    ├── BackendError
    │   ├── BackendNotFoundError (LookupError)  no backend of that name on the service
    │   ├── BackendMismatchError                a primitive bound to another backend than its session's
    │   └── CircuitTooLargeError (MemoryError)  the state would not fit this machine / backend
    ├── SessionError
    │   ├── SessionClosedError                  submitting to a closed (or cancelled) session
    │   ├── SessionExpiredError                 the session's max_time ran out
    │   ├── SessionCacheError                   the session's first job was cancelled (IBM rule)
    │   ├── SessionStateError (RuntimeError)    lifecycle misuse: entered twice, used after exit, ...
    │   └── SessionFullError                    max_pending jobs are unfinished; wait or retry later
    ├── JobError
    │   ├── JobFailedError                      the job ran and failed; ``__cause__`` has the reason
    │   ├── JobCancelledError                   the job was cancelled (never a bare CancelledError)
    │   ├── JobTimeoutError (TimeoutError)      the job exceeded its max_execution_time
    │   └── ResultTimeoutError (TimeoutError)   ``result(timeout=...)`` elapsed; the job goes on
    ├── AccountNotFoundError (LookupError)      no IBM credentials in arguments, environment or file
    └── RuntimeRequestError                     an IBM Runtime HTTP call failed; ``status`` is the real
        │                                       HTTP status (None when no response came)
        ├── AuthenticationError                 401 / 403 (after one token refresh)
        ├── InvalidRequestError (ValueError)    400, 413, 422 and other 4xx not listed here
        ├── NotFoundError (LookupError)         404: no such job / session / backend
        ├── ConflictError                       409: e.g. the session no longer accepts jobs
        ├── RateLimitedError                    429, still limited after the retries
        ├── ServerError                         5xx, still failing after the retries
        ├── RequestTimeoutError (TimeoutError)  no complete response within the request timeout
        └── RuntimeConnectionError (ConnectionError)  refused, reset, or a truncated body

HTTP statuses are mapped to these once, in :func:`aqrt.backends.ibm.transport.error_for_status`.

One warning: :class:`OptionsNotAppliedWarning` (a ``UserWarning``), once per backend and option,
when a job's result says an option was accepted but not honoured (``options_not_applied``).
"""

from __future__ import annotations

from typing import Any

from qiskit.exceptions import QiskitError

__all__ = [
    "AccountNotFoundError",
    "AqrtError",
    "AuthenticationError",
    "BackendError",
    "BackendMismatchError",
    "BackendNotFoundError",
    "CircuitTooLargeError",
    "ConflictError",
    "InvalidInputError",
    "InvalidOptionsError",
    "InvalidPubError",
    "InvalidRequestError",
    "InvalidTimeSpecError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "OptionsNotAppliedWarning",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResultTimeoutError",
    "RuntimeConnectionError",
    "RuntimeRequestError",
    "ServerError",
    "SessionCacheError",
    "SessionClosedError",
    "SessionError",
    "SessionExpiredError",
    "SessionFullError",
    "SessionStateError",
    "UnsupportedCircuitError",
]


class AqrtError(Exception):
    """Base class of every error aqrt raises on purpose."""


class InvalidInputError(AqrtError, ValueError):
    """An argument is malformed or out of range; raised at the call, before any job exists."""


class InvalidPubError(InvalidInputError):
    """A PUB cannot be run; ``pub_index`` says which one."""

    def __init__(self, pub_index: int, message: str) -> None:
        self.pub_index = pub_index
        self.problem = message
        super().__init__(f"PUB {pub_index}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Made again from its own arguments when unpickled (a job run in another process).
        return (type(self), (self.pub_index, self.problem), self.__dict__)


class UnsupportedCircuitError(InvalidPubError, QiskitError):
    """A PUB's circuit holds an instruction this backend cannot run (named in the message).

    Also a ``QiskitError``, which Qiskit's own primitives raise for circuits they cannot
    simulate, so code written against them keeps catching it.
    """

    def __init__(self, pub_index: int, message: str) -> None:
        super().__init__(pub_index, message)
        self.message = str(self.args[0])  # QiskitError's attribute

    def __str__(self) -> str:
        return self.message  # plain text (QiskitError would quote it)


class InvalidOptionsError(InvalidInputError):
    """An unknown option, or an option value out of range."""


class InvalidTimeSpecError(InvalidInputError):
    """A duration string that does not follow the ``"2h 30m 40s"`` grammar."""


class BackendError(AqrtError):
    """A backend cannot be found, used, or run the request."""


class BackendNotFoundError(BackendError, LookupError):
    """No backend of that name on the service."""


class BackendMismatchError(BackendError):
    """A primitive was bound to a different backend than the session it runs in."""


class CircuitTooLargeError(BackendError, MemoryError):
    """The circuit is wider than the backend or this machine's memory allows."""


class SessionError(AqrtError):
    """A job cannot be accepted or run because of its session's state."""


class SessionClosedError(SessionError):
    """The session was closed or cancelled and accepts no new jobs."""


class SessionExpiredError(SessionError):
    """The session's ``max_time`` ran out; queued jobs fail and new ones are refused."""


class SessionCacheError(SessionError):
    """The session's first job was cancelled, so the session cache never filled.

    As on IBM Quantum, every later job of that session fails; open a new session.
    """


class SessionStateError(SessionError, RuntimeError):
    """A session was used against its lifecycle (entered twice, reopened after closing, ...)."""


class JobError(AqrtError):
    """A job did not produce a result."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message)


class JobFailedError(JobError):
    """The job ran and failed; the underlying exception is chained as ``__cause__``."""


class JobCancelledError(JobError):
    """The job was cancelled (by ``job.cancel()``, ``session.cancel()`` or an exiting block)."""


class JobTimeoutError(JobError, TimeoutError):
    """The job ran longer than its ``max_execution_time`` and was stopped."""


class ResultTimeoutError(JobError, TimeoutError):
    """Waiting for a result timed out; the job itself is unaffected and keeps going."""


class SessionFullError(SessionError):
    """The session already holds ``max_pending`` unfinished jobs (``run()`` cannot wait;
    ``await primitive.submit(...)`` can)."""


class AccountNotFoundError(AqrtError, LookupError):
    """No IBM Quantum credentials: none passed, none in ``QISKIT_IBM_*``, none saved on disk."""


class RuntimeRequestError(AqrtError):
    """An IBM Runtime API call failed.

    Attributes:
        status: the HTTP status of the last response, ``None`` if no response arrived.
        method, url: the request.
        body: the start of the response body (the server's explanation), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        body: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.body = body
        super().__init__(message)


class AuthenticationError(RuntimeRequestError):
    """401 / 403: the API key or token was refused, or it has no access to the instance."""


class InvalidRequestError(RuntimeRequestError, ValueError):
    """A 4xx the server gives for a request it will never accept as sent (400, 413, 422, ...)."""


class NotFoundError(RuntimeRequestError, LookupError):
    """404: no such job, session or backend."""


class ConflictError(RuntimeRequestError):
    """409: the resource is in a state that forbids the request (e.g. a closed session)."""


class RateLimitedError(RuntimeRequestError):
    """429 after the retry budget ran out; ``retry_after`` is the server's last advice (s)."""

    retry_after: float | None = None


class ServerError(RuntimeRequestError):
    """A 5xx that persisted through the retries; ``status`` is the last one received."""


class RequestTimeoutError(RuntimeRequestError, TimeoutError):
    """No complete response within the per-request timeout, or the call's overall deadline passed."""


class RuntimeConnectionError(RuntimeRequestError, ConnectionError):
    """The connection was refused or reset, or the response body was cut short."""


class OptionsNotAppliedWarning(UserWarning):
    """A backend accepted an option it could not honour (e.g. ``resilience_level=2`` on a
    noiseless backend). Emitted once per backend and option path per process, when the job's
    result is first read; every result also lists them in ``metadata["options_not_applied"]``."""
