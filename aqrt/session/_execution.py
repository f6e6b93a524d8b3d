"""Runs one job on one backend and settles it exactly once.

A scheduler's runner first offers a job to :func:`settle_inline` (for ``runs_inline`` backends)
and awaits :func:`run_job` only if the backend did not take it (or if the job's PUBs are still
to be validated: :func:`run_job` does that first, on the engine worker).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .._concurrency import run_in_worker
from ..backends.base import NOT_INLINE, Backend, ExecutionContext
from ..errors import AqrtError, JobCancelledError, JobFailedError, JobTimeoutError
from ..job import Job, Program


def validate_pubs(backend: Backend, program: Program, pubs: Sequence[Any]) -> None:
    """Have ``backend`` validate every PUB (a job's check deferred to the engine worker).

    Raises:
        What ``backend.validate_pub`` raises for the first PUB it refuses.
    """
    for index, pub in enumerate(pubs):
        backend.validate_pub(program, pub, index)


def settle_inline(job: Job, run_inline: Callable[..., Any], cache: dict[Any, Any]) -> bool:
    """Run ``job`` through the backend's synchronous ``run_inline`` and settle it, if the backend
    takes it (True); jobs finished in microseconds need no scopes: nothing in them can be
    interrupted by a cancellation or a deadline."""
    if job.cancel_requested.is_set():
        return False
    job._mark_running()
    try:
        result = run_inline(job.request, ExecutionContext(cache, job.cancel_requested, job._progress))
    except Exception as exc:
        _settle_failure(job, exc)
        return True
    if result is NOT_INLINE:
        return False
    job._settle_result(result)
    return True


async def run_job(
    job: Job, backend: Backend, cache: dict[Any, Any], *, on_start: Callable[[], None] | None = None
) -> None:
    """Await ``backend.execute`` for ``job`` and settle it; never raises (except cancellation of
    the caller's scope, after settling the job cancelled).

    ``job.cancel()`` cancels the scope made here; ``max_execution_time`` is a nested deadline
    on the event loop clock. ``on_start`` is called when the job starts running: at once, or,
    for a backend that ``reports_job_start``, when the backend says so.
    """
    try:
        await _execute(job, backend, cache, on_start)
    finally:
        if not job.done():  # cancelled, by job.cancel() or by an enclosing scope
            job._settle_cancelled()


async def _execute(job: Job, backend: Backend, cache: dict[Any, Any], on_start: Callable[[], None] | None) -> None:
    capabilities = backend.capabilities
    limit = job.options.max_execution_time
    if capabilities.enforces_max_execution_time:
        limit = None  # a remote server counts execution time itself (queueing excluded)
    with anyio.CancelScope() as job_scope:
        job._cancel_scope = job_scope
        if job.cancel_requested.is_set():
            job_scope.cancel()
        check = job._pending_check
        if check is not None:  # the PUBs' validation, off the loop; the job stays QUEUED meanwhile
            job._pending_check = None
            try:
                await run_in_worker(check, job.cancel_requested)
            except Exception as exc:
                _settle_failure(job, exc)
                return
        if capabilities.reports_job_start:  # RUNNING when the server says so

            def mark_running() -> None:
                job._mark_running()
                if on_start is not None:
                    on_start()

            context = ExecutionContext(cache, job.cancel_requested, job._progress, mark_running)
        else:
            job._mark_running()
            if on_start is not None:
                on_start()
            context = ExecutionContext(cache, job.cancel_requested, job._progress)
        try:
            if limit is None:
                result = await backend.execute(job.request, context)
            else:
                with anyio.move_on_after(limit) as deadline:
                    result = await backend.execute(job.request, context)
                if deadline.cancelled_caught:
                    job.cancel_requested.set()
                    job._settle_error(
                        JobTimeoutError(
                            f"job {job.job_id} exceeded its max_execution_time of {limit} s and was stopped",
                            job_id=job.job_id,
                        )
                    )
                    return
            job._settle_result(result)
        except Exception as exc:
            _settle_failure(job, exc)


def _settle_failure(job: Job, exc: Exception) -> None:
    if isinstance(exc, JobCancelledError):  # e.g. cancelled on a remote server: the job is CANCELLED
        job._settle_cancelled()
        return
    if isinstance(exc, AqrtError):  # already a typed, explained error
        job._settle_error(exc)
        return
    error = JobFailedError(f"job {job.job_id} failed: {type(exc).__name__}: {exc}", job_id=job.job_id)
    error.__cause__ = exc
    job._settle_error(error)
