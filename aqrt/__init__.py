"""aqrt: an asyncio-native runtime for quantum primitives.

``import aqrt`` loads Qiskit but never numba or aiohttp; those load when a part that needs
them is used.
"""

from .backends import Backend, LocalBackend, LocalService
from .errors import (
    AqrtError,
    BackendError,
    BackendMismatchError,
    BackendNotFoundError,
    CircuitTooLargeError,
    InvalidInputError,
    InvalidOptionsError,
    InvalidPubError,
    InvalidTimeSpecError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    ResultTimeoutError,
    SessionCacheError,
    SessionClosedError,
    SessionError,
    SessionExpiredError,
    SessionFullError,
    SessionStateError,
)
from .job import Job, JobMetrics, JobStatus
from .options import Options, parse_duration
from .primitives import Estimator, Sampler
from .session import Batch, Session, SessionState, current_session

__version__ = "0.1.0"

__all__ = [
    "AqrtError",
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "BackendNotFoundError",
    "Batch",
    "CircuitTooLargeError",
    "Estimator",
    "InvalidInputError",
    "InvalidOptionsError",
    "InvalidPubError",
    "InvalidTimeSpecError",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobMetrics",
    "JobStatus",
    "JobTimeoutError",
    "LocalBackend",
    "LocalService",
    "Options",
    "ResultTimeoutError",
    "Sampler",
    "Session",
    "SessionCacheError",
    "SessionClosedError",
    "SessionError",
    "SessionExpiredError",
    "SessionFullError",
    "SessionState",
    "SessionStateError",
    "current_session",
    "parse_duration",
]
