"""The Backend protocol: the whole contract between sessions and whatever runs the circuits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .._concurrency import CancelFlag
from ..job import JobRequest, Program

__all__ = ["NOT_INLINE", "Backend", "ExecutionContext"]

# Optional backend attributes and methods, read with getattr:
#   run_inline(request, context)          finish tiny jobs synchronously (else NOT_INLINE)
#   job_concurrency: int                  jobs of one session in flight at once (a server queues them)
#   enforces_max_execution_time: bool     the server stops over-long jobs; no local deadline
#   enforces_max_time: bool               the server expires sessions; no local max_time clock
#   reports_job_start: bool               a job stays QUEUED until the backend calls
#                                         context.mark_running() (a server's queue); else it
#                                         turns RUNNING when aqrt hands it to the backend
#   open_session / close_session / cancel_session   remote sessions (see aqrt.Session)

NOT_INLINE = object()
"""Returned by an optional ``run_inline(request, context)`` of a backend for jobs it does not
finish synchronously; the session then awaits ``execute`` instead."""


@dataclasses.dataclass
class ExecutionContext:
    """Per-job facts a backend may use while running a job.

    Attributes:
        cache: the session's cache (transpiled circuits, lowered programs); a fresh dict in
            job mode. Filled by the session's first job and reused by the later ones.
        cancel_requested: set when the job should stop; blocking code polls it between items.
        progress: the job's :class:`~aqrt.progress.Progress` if someone watches it (backends
            call ``progress.advance(bindings)`` as they go), else None.
        mark_running: for a backend with ``reports_job_start``, call it when the job really
            starts (e.g. the server reports it Running); idempotent. None for other backends.
    """

    cache: dict[Any, Any]
    cancel_requested: CancelFlag
    progress: Any = None
    mark_running: Callable[[], None] | None = None


@runtime_checkable
class Backend(Protocol):
    """What a session needs from a backend.

    ``validate_pub`` runs synchronously inside ``run()`` so bad input raises at the call;
    ``execute`` runs the job and must not block the event loop.
    """

    @property
    def name(self) -> str: ...

    @property
    def num_qubits(self) -> int:
        """The widest circuit this backend accepts."""
        ...

    @property
    def max_session_time(self) -> int:
        """The system maximum (and default) of a session's ``max_time``, in seconds."""
        ...

    @property
    def interactive_timeout_configurable(self) -> bool:
        """Whether sessions may set their own interactive timeout on this backend."""
        ...

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Raise ``InvalidPubError`` / ``CircuitTooLargeError`` if ``pub`` cannot run here."""
        ...

    async def execute(self, request: JobRequest, context: ExecutionContext) -> Any:
        """Run the job and return its ``PrimitiveResult``."""
        ...
