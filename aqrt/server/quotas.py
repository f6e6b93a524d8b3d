"""Per-user quotas of ``aqrt serve``: pending jobs and stored bytes.

- Pending jobs (``ServerConfig.max_pending_jobs``): a user may have that many jobs not yet
  finished (queued or running, including jobs re-run after a restart); a submission beyond is
  refused with 429 and IBM Runtime's code :data:`~aqrt.wire.runtime_api.CODE_PENDING_JOBS_LIMIT`,
  before anything is decoded or stored. Counted in memory (:class:`PendingJobs`): every
  unfinished job is live in this process.
- Stored bytes (``ServerConfig.max_stored_bytes``): the params (as stored) and results (as
  encoded) of a user's jobs; a submission that would take the user over is refused with 429
  (:data:`~aqrt.wire.runtime_api.CODE_STORAGE_QUOTA`) before it is stored. The total is kept by
  the store (:class:`~aqrt.server.store.StorageQuotaExceeded`). A result is always stored, even
  one that takes its user over the quota (the job was acknowledged); further submissions are
  refused until jobs are deleted or expire.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from ..wire.runtime_api import CODE_PENDING_JOBS_LIMIT, CODE_STORAGE_QUOTA
from .errors import ApiError

__all__ = ["PendingJobs", "Reservation", "pending_limit_error", "storage_quota_error"]


def pending_limit_error(limit: int) -> ApiError:
    """The 429 of a submission beyond ``limit`` pending jobs (IBM Runtime's code and words)."""
    return ApiError(
        429,
        f"You have reached the limit of {limit} pending jobs. Please wait for a job to complete or cancel one "
        "before submitting anything new.",
        code=CODE_PENDING_JOBS_LIMIT,
    )


def storage_quota_error(stored: int, size: int, limit: int, retention: float) -> ApiError:
    """The 429 of a submission whose params (``size`` bytes) would take its user's stored jobs
    (``stored`` bytes now) over ``limit``; ``retention`` (seconds, 0: none) says when finished
    jobs go by themselves."""
    expire = f" or wait for them to expire ({_duration(retention)} after they finish)" if retention else ""
    return ApiError(
        429,
        f"You have reached the limit of {limit} bytes of stored jobs (params and results): your jobs keep "
        f"{stored} bytes and this job's params take {size}. Delete finished jobs{expire} before submitting "
        "anything new.",
        code=CODE_STORAGE_QUOTA,
    )


def _duration(seconds: float) -> str:
    for unit, length in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= length:
            return f"{seconds / length:g} {unit}"
    return f"{seconds:g} seconds"


class Reservation:
    """A place among a user's pending jobs, held by a submission from its admission until its
    job is tracked (:meth:`PendingJobs.add`) or the submission ends."""

    __slots__ = ("held", "user")

    def __init__(self, user: str) -> None:
        self.user = user
        self.held = True


class PendingJobs:
    """Each user's unfinished jobs, by id, and the submissions on their way in.

    A submission holds a :class:`Reservation` from :meth:`admit` until its job is added, so
    concurrent submissions cannot together pass the limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._jobs: dict[str, set[str]] = {}
        self._arriving: Counter[str] = Counter()

    def count(self, user: str) -> int:
        """``user``'s unfinished jobs, and submissions admitted but not yet tracked."""
        return len(self._jobs.get(user, ())) + self._arriving[user]

    @contextlib.contextmanager
    def admit(self, user: str) -> Iterator[Reservation]:
        """Hold a place for one more job of ``user`` while the body runs.

        Raises:
            ApiError: 429 (:func:`pending_limit_error`) when ``user`` has no place left.
        """
        if self.count(user) >= self.limit:
            raise pending_limit_error(self.limit)
        reservation = Reservation(user)
        self._arriving[user] += 1
        try:
            yield reservation
        finally:
            self._release(reservation)

    def add(self, user: str, job_id: str, reservation: Reservation | None = None) -> None:
        """Count ``job_id`` as unfinished (taking over ``reservation``'s place)."""
        if reservation is not None:
            self._release(reservation)
        self._jobs.setdefault(user, set()).add(job_id)

    def discard(self, user: str, job_id: str) -> None:
        """``job_id`` finished, was cancelled or was dropped: it no longer counts."""
        jobs = self._jobs.get(user)
        if jobs is not None:
            jobs.discard(job_id)
            if not jobs:
                del self._jobs[user]

    def _release(self, reservation: Reservation) -> None:
        if reservation.held:
            reservation.held = False
            self._arriving[reservation.user] -= 1
            if self._arriving[reservation.user] <= 0:
                del self._arriving[reservation.user]
