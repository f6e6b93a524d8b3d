"""aqrt: an asyncio-native runtime for quantum primitives.

``import aqrt`` loads Qiskit but never numba or aiohttp; those load when a part that needs
them is used (``aqrt.RuntimeService`` imports the aiohttp client on first access).

The API is asynchronous (``async with Session(...)``, ``await job``); :mod:`aqrt.sync` has the
same names, blocking, for scripts and notebooks (``from aqrt.sync import Session, Estimator``).
"""

from typing import Any

from .backends import Backend, BackendCapabilities, ExecutionContext, LocalBackend, LocalService, Service
from .errors import (
    AccountNotFoundError,
    AqrtError,
    AuthenticationError,
    BackendError,
    BackendMismatchError,
    BackendNotFoundError,
    CircuitTooLargeError,
    ConflictError,
    InvalidInputError,
    InvalidOptionsError,
    InvalidPubError,
    InvalidRequestError,
    InvalidTimeSpecError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    OptionsNotAppliedWarning,
    RateLimitedError,
    RequestTimeoutError,
    ResultTimeoutError,
    RuntimeConnectionError,
    RuntimeRequestError,
    ServerError,
    SessionCacheError,
    SessionClosedError,
    SessionError,
    SessionExpiredError,
    SessionFullError,
    SessionStateError,
    UnsupportedCircuitError,
)
from .job import Job, JobMetrics, JobRequest, JobStatus, Program
from .options import EstimatorOptions, Options, SamplerOptions, parse_duration
from .primitives import Estimator, Executor, Sampler
from .session import Batch, Session, SessionState, current_session

# qiskit-ibm-runtime's names for the same classes, so ported code changes only its imports.
EstimatorV2 = Estimator
SamplerV2 = Sampler

__version__ = "0.1.0"

__all__ = [
    "AccountNotFoundError",
    "AqrtError",
    "AuthenticationError",
    "Backend",
    "BackendCapabilities",
    "BackendError",
    "BackendMismatchError",
    "BackendNotFoundError",
    "Batch",
    "CircuitTooLargeError",
    "ConflictError",
    "Estimator",
    "EstimatorOptions",
    "EstimatorV2",
    "ExecutionContext",
    "Executor",
    "InvalidInputError",
    "InvalidOptionsError",
    "InvalidPubError",
    "InvalidRequestError",
    "InvalidTimeSpecError",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobMetrics",
    "JobRequest",
    "JobStatus",
    "JobTimeoutError",
    "LocalBackend",
    "LocalService",
    "NotFoundError",
    "Options",
    "OptionsNotAppliedWarning",
    "Program",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResultTimeoutError",
    "RuntimeConnectionError",
    "RuntimeRequestError",
    "RuntimeService",
    "Sampler",
    "SamplerOptions",
    "SamplerV2",
    "ServerError",
    "Service",
    "Session",
    "SessionCacheError",
    "SessionClosedError",
    "SessionError",
    "SessionExpiredError",
    "SessionFullError",
    "SessionState",
    "SessionStateError",
    "UnsupportedCircuitError",
    "current_session",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    # RuntimeService lives with the aiohttp client; load it only when asked for.
    if name == "RuntimeService":
        from .backends.ibm import RuntimeService

        globals()[name] = RuntimeService
        return RuntimeService
    raise AttributeError(f"module 'aqrt' has no attribute {name!r}")
