"""The Backend contract: everything a session, a primitive or a job runner may ask of a backend.

A backend is any object with the members of :class:`Backend`. What it can do beyond running
jobs is declared once, in its frozen :class:`BackendCapabilities`; the runtime reads that record
and never probes a backend for optional attributes. Two capabilities come with methods of
their own, written down as protocols too:

- ``runs_inline``: the backend also implements :class:`InlineBackend` (``run_inline``), which
  finishes jobs too small to be worth a thread hop synchronously, on the event loop.
- ``remote_sessions``: the backend also implements :class:`RemoteSessionBackend`, and a
  :class:`~aqrt.Session` opens, closes and cancels a session on the backend's server.

A :class:`Service` is where backends live (``LocalService``, ``RuntimeService``).

Example:
    A minimal backend (``aqrt.testing.FakeBackend`` is a fuller one)::

        class EchoBackend:
            name = "echo"
            num_qubits = 8
            capabilities = BackendCapabilities(max_session_time=3600)
            service = None

            def validate_pub(self, program, pub, index): ...

            async def execute(self, request, context):
                return PrimitiveResult([...], metadata={"version": 2})
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from .._concurrency import CancelFlag
from ..job import JobRequest, Program

if TYPE_CHECKING:
    from ..progress import Progress

__all__ = [
    "NOT_INLINE",
    "Backend",
    "BackendCapabilities",
    "ExecutionContext",
    "InlineBackend",
    "RemoteSessionBackend",
    "Service",
    "inline_runner",
    "remote_sessions",
]


class _NotInline(enum.Enum):
    """The type of :data:`NOT_INLINE` (an enum, so type checkers can narrow on it)."""

    NOT_INLINE = "NOT_INLINE"


NOT_INLINE: Final = _NotInline.NOT_INLINE
"""Returned by :meth:`InlineBackend.run_inline` for a job it does not finish synchronously;
the runtime then awaits :meth:`Backend.execute` instead."""


@dataclasses.dataclass(frozen=True)
class BackendCapabilities:
    """What a backend declares about itself; read by sessions and job runners, never guessed.

    Attributes:
        max_session_time: the system maximum (and default) of a session's ``max_time``, in seconds.
        interactive_timeout_configurable: whether sessions may set their own interactive timeout
            (local backends); IBM's is fixed.
        job_concurrency: how many jobs of one session may be in flight at once, because a server
            queues them; ``None`` lets the session decide (1 for a Session, ``max_concurrency``
            for a Batch).
        enforces_max_time: the server expires sessions itself (from the first job's start); no
            local ``max_time`` clock runs.
        enforces_max_execution_time: the server stops over-long jobs and counts execution time
            itself (queueing excluded); no local deadline runs.
        reports_job_start: a job stays QUEUED until the backend calls
            ``context.mark_running()`` (a server's queue); otherwise it turns RUNNING when the
            runtime hands it to the backend.
        runs_inline: the backend implements :class:`InlineBackend`.
        remote_sessions: the backend implements :class:`RemoteSessionBackend`.
    """

    max_session_time: int
    interactive_timeout_configurable: bool = True
    job_concurrency: int | None = None
    enforces_max_time: bool = False
    enforces_max_execution_time: bool = False
    reports_job_start: bool = False
    runs_inline: bool = False
    remote_sessions: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_session_time, bool) or not isinstance(self.max_session_time, int):
            raise TypeError(f"max_session_time must be an int of seconds, got {self.max_session_time!r}")
        if self.max_session_time < 1:
            raise ValueError(f"max_session_time must be >= 1 s, got {self.max_session_time}")
        if self.job_concurrency is not None and (
            isinstance(self.job_concurrency, bool)
            or not isinstance(self.job_concurrency, int)
            or self.job_concurrency < 1
        ):
            raise ValueError(f"job_concurrency must be None or an int >= 1, got {self.job_concurrency!r}")


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
    progress: Progress | None = None
    mark_running: Callable[[], None] | None = None


@runtime_checkable
class Backend(Protocol):
    """What the runtime needs from every backend.

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
    def capabilities(self) -> BackendCapabilities:
        """What this backend declares about itself (constant for its life)."""
        ...

    @property
    def service(self) -> Service | None:
        """The service this backend belongs to, if any."""
        ...

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Raise ``InvalidPubError`` / ``CircuitTooLargeError`` if ``pub`` cannot run here."""
        ...

    async def execute(self, request: JobRequest, context: ExecutionContext) -> Any:
        """Run the job and return its ``PrimitiveResult``."""
        ...


@runtime_checkable
class InlineBackend(Backend, Protocol):
    """A backend that finishes tiny jobs synchronously (``capabilities.runs_inline``)."""

    def run_inline(self, request: JobRequest, context: ExecutionContext) -> Any:
        """The job's ``PrimitiveResult`` if it is cheap enough to compute right now, on the
        event loop, else :data:`NOT_INLINE`."""
        ...


@runtime_checkable
class RemoteSessionBackend(Backend, Protocol):
    """A backend whose server keeps sessions of its own (``capabilities.remote_sessions``)."""

    async def open_session(self, session_id: str, *, mode: str, max_time: int) -> str:
        """Open a server-side session for aqrt session ``session_id``; returns the server's id."""
        ...

    async def close_session(self, session_id: str) -> None:
        """Let the server-side session finish its jobs and accept no more."""
        ...

    async def cancel_session(self, session_id: str) -> None:
        """Cancel the server-side session and its unfinished jobs."""
        ...


@runtime_checkable
class Service(Protocol):
    """Where backends live: a local service answers at once, a remote one may need a request."""

    def known_backend(self, name: str | None = None) -> Backend | None:
        """The backend called ``name`` (``None``: the default one) if it can be had without I/O,
        else None. A local service always answers, raising ``BackendNotFoundError`` for an
        unknown name; a remote service answers only for backends it has fetched already."""
        ...

    async def fetch_backend(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (``None``: the default one), asking a server if need be.

        Raises:
            BackendNotFoundError: there is no such backend.
        """
        ...


def inline_runner(backend: Backend) -> Callable[[JobRequest, ExecutionContext], Any] | None:
    """The backend's ``run_inline`` if it declares ``runs_inline``, else None.

    Raises:
        TypeError: the backend declares ``runs_inline`` but has no ``run_inline`` method.
    """
    if not backend.capabilities.runs_inline:
        return None
    if not isinstance(backend, InlineBackend):
        raise TypeError(f"backend {backend.name!r} declares runs_inline but does not implement InlineBackend")
    return backend.run_inline


def remote_sessions(backend: Backend) -> RemoteSessionBackend | None:
    """The backend as a :class:`RemoteSessionBackend` if it declares ``remote_sessions``, else None.

    Raises:
        TypeError: the backend declares ``remote_sessions`` but lacks the session methods.
    """
    if not backend.capabilities.remote_sessions:
        return None
    if not isinstance(backend, RemoteSessionBackend):
        raise TypeError(
            f"backend {backend.name!r} declares remote_sessions but does not implement RemoteSessionBackend"
        )
    return backend
