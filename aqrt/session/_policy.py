"""How a scheduler runs its jobs, as one frozen record made once, when the backend is known.

A :class:`Mode` is what the user picked (``Session`` or ``Batch``) before any backend is known;
:func:`session_policy` combines it with the user's arguments and the backend's capabilities
into a :class:`Policy`. Job mode (a primitive bound to a backend, no session) is the fixed
:data:`JOB_MODE` policy. The scheduler reads the policy's fields; no class flag or ``mode``
string decides behaviour anywhere else.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

from ..backends.base import Backend
from ..errors import InvalidOptionsError, InvalidTimeSpecError
from ..options import parse_duration

DEFAULT_INTERACTIVE_TIMEOUT: Final = 300


@dataclasses.dataclass(frozen=True)
class Mode:
    """A kind of session, before its backend is known.

    Attributes:
        name: IBM's execution mode, ``"dedicated"`` or ``"batch"``.
        interactive: whether it has an interactive timeout (``Session``) or refuses one (``Batch``).
        default_concurrency: jobs in flight at once when neither the user nor the backend says.
    """

    name: Literal["dedicated", "batch"]
    interactive: bool
    default_concurrency: int


DEDICATED: Final = Mode("dedicated", interactive=True, default_concurrency=1)
BATCH: Final = Mode("batch", interactive=False, default_concurrency=4)


@dataclasses.dataclass(frozen=True)
class Policy:
    """Everything a :class:`~aqrt.session._scheduler.Scheduler` needs to know about its rules.

    Attributes:
        mode: ``"dedicated"``, ``"batch"`` or ``"job"`` (no session).
        max_time: the session's ``max_time`` in seconds; None in job mode.
        expires_locally: run the ``max_time`` clock here; False when the backend's server
            expires sessions itself (``enforces_max_time``), and in job mode.
        interactive_timeout: seconds with nothing queued or running before the session turns
            inactive; None for a batch and in job mode.
        concurrency: how many jobs may run at once; None means no bound (job mode).
        first_job_rule: the first job fills a shared cache, and its cancellation fails every
            later job (the IBM rule).
        shared_cache: jobs share one :class:`~aqrt.session._scheduler.SessionCache`; without
            it each job gets a fresh dict.
        supervised: jobs go through a queue; a supervisor task owns the runners that take
            them (at most ``concurrency`` at once), runs the clocks, and ends when the session
            closes. Without one (job mode) nothing needs watching or closing: each job runs at
            once on a runtime-owned task of its own.
    """

    mode: Literal["dedicated", "batch", "job"]
    max_time: int | None
    expires_locally: bool
    interactive_timeout: float | None
    concurrency: int | None
    first_job_rule: bool
    shared_cache: bool
    supervised: bool


JOB_MODE: Final = Policy(
    mode="job",
    max_time=None,
    expires_locally=False,
    interactive_timeout=None,
    concurrency=None,
    first_job_rule=False,
    shared_cache=False,
    supervised=False,
)


def session_policy(
    mode: Mode,
    backend: Backend,
    *,
    max_time: int | str | None,
    interactive_timeout: int | str | None,
    max_concurrency: int | None,
) -> Policy:
    """The policy of a session of kind ``mode`` on ``backend``.

    Args:
        mode: :data:`DEDICATED` or :data:`BATCH`.
        backend: the session's backend; its capabilities bound and complete the arguments.
        max_time: as given to the session (int seconds, a duration string or None).
        interactive_timeout: as given to the session.
        max_concurrency: a batch's explicit bound (already checked by :func:`check_concurrency`),
            else None.

    Returns:
        The session's :class:`Policy`.

    Raises:
        InvalidTimeSpecError: ``max_time`` exceeds the backend's system maximum, or an
            interactive timeout was given to a batch or to a backend whose timeout is fixed.
    """
    capabilities = backend.capabilities
    system_max = capabilities.max_session_time
    if max_time is None:
        seconds = system_max
    else:
        seconds = parse_duration(max_time, what="max_time")
        if seconds > system_max:
            raise InvalidTimeSpecError(
                f"max_time={max_time!r} ({seconds} s) exceeds the system maximum of "
                f"backend {backend.name!r}, {system_max} s"
            )
    # The user's bound wins; a remote backend queues jobs on its server and declares how many
    # may be in flight; else the kind of session decides.
    concurrency = max_concurrency or capabilities.job_concurrency or mode.default_concurrency
    return Policy(
        mode=mode.name,
        max_time=seconds,
        # Only the server knows when a queued remote job starts, so it alone expires the session.
        expires_locally=not capabilities.enforces_max_time,
        interactive_timeout=_interactive_timeout(mode, backend, interactive_timeout),
        concurrency=concurrency,
        first_job_rule=True,
        shared_cache=True,
        supervised=True,
    )


def _interactive_timeout(mode: Mode, backend: Backend, value: int | str | None) -> float | None:
    if not mode.interactive:
        if value is not None:
            raise InvalidTimeSpecError("a Batch has no interactive timeout; do not pass interactive_timeout")
        return None
    if value is None:
        return DEFAULT_INTERACTIVE_TIMEOUT
    if not backend.capabilities.interactive_timeout_configurable:
        raise InvalidTimeSpecError(
            f"backend {backend.name!r} has a fixed interactive timeout; do not pass interactive_timeout"
        )
    return parse_duration(value, what="interactive_timeout")


def check_concurrency(max_concurrency: int | None) -> int | None:
    """``max_concurrency`` if it is None or an int >= 1.

    Raises:
        InvalidOptionsError: anything else.
    """
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        raise InvalidOptionsError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
    return max_concurrency
