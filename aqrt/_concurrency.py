"""Small async plumbing shared by sessions and backends.

- :func:`spawn_detached` starts a task owned by the runtime rather than by the caller, for
  supervisors and job-mode jobs (which outlive the task that created them).
- :func:`run_in_worker` runs blocking compute on the single engine worker thread. Kernels are
  serialised there because numba's threading layers are not re-entrant across threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import sniffio

T = TypeVar("T")

_detached_asyncio_tasks: set[asyncio.Task[Any]] = set()


class CancelFlag:
    """A one-way flag a worker thread polls between work items.

    Lighter than ``threading.Event`` (no lock, no condition: one per job adds up), which is all
    polling needs: setting and reading an attribute is atomic in CPython.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


_worker_lock = threading.Lock()
_worker: concurrent.futures.ThreadPoolExecutor | None = None


def spawn_detached(func: Callable[[], Awaitable[None]], *, name: str) -> None:
    """Start ``func()`` as a runtime-owned task on the running event loop (asyncio or trio).

    ``func`` must never raise: it is nobody's child, so an escaping error would be lost
    (asyncio) or crash the run (trio).
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        task = asyncio.get_running_loop().create_task(_as_coroutine(func), name=name)
        _detached_asyncio_tasks.add(task)  # the loop keeps only weak references
        task.add_done_callback(_detached_asyncio_tasks.discard)
    elif library == "trio":
        import trio

        trio.lowlevel.spawn_system_task(func, name=name)
    else:  # pragma: no cover - anyio supports only these two
        raise RuntimeError(f"unsupported async library {library!r}")


async def _as_coroutine(func: Callable[[], Awaitable[None]]) -> None:
    await func()


def event_factory() -> Callable[[], asyncio.Event | anyio.Event]:
    """What makes the running library's own events (cheaper than anyio's wrapper; the same
    ``set``/``is_set``/``wait``), looked up once for a caller that makes one per wake-up."""
    if sniffio.current_async_library() == "asyncio":
        return asyncio.Event
    return anyio.Event


async def wait_until(event: asyncio.Event | anyio.Event, deadline: float) -> None:
    """Wait until ``event`` is set or the loop clock reaches ``deadline`` (``math.inf``: no
    deadline); returns after one checkpoint if it is set already.

    Under asyncio the deadline is a timer that sets the event, not a cancel scope: anyio's scope
    (made, entered, left) is most of what a session's supervisor spends per wake-up, and a session
    whose jobs are awaited one by one wakes it once a job.
    """
    if isinstance(event, asyncio.Event):
        if event.is_set():
            await asyncio.sleep(0)  # yield, as anyio's wait does: a waker that keeps setting it starves nobody
            return
        timer = asyncio.get_running_loop().call_at(deadline, event.set) if deadline < math.inf else None
        try:
            await event.wait()
        finally:
            if timer is not None:
                timer.cancel()
        return
    with anyio.CancelScope(deadline=deadline):
        await event.wait()


def loop_clock() -> Callable[[], float]:
    """The running event loop's clock as a plain callable (cheaper than ``anyio.current_time``)."""
    if sniffio.current_async_library() == "asyncio":
        return asyncio.get_running_loop().time
    import trio

    return trio.current_time


def engine_executor() -> concurrent.futures.ThreadPoolExecutor:
    """The one worker thread every engine kernel runs on (created on first use)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="aqrt-engine", initializer=_note_engine_thread
            )
        return _worker


_engine_thread: int | None = None


def _note_engine_thread() -> None:
    global _engine_thread
    _engine_thread = threading.get_ident()


def on_engine_thread() -> bool:
    """Whether the calling thread is the engine worker thread (a runtime-owned thread, unlike
    any thread of the user's, so the engine may pin it to a CPU)."""
    return _engine_thread is not None and threading.get_ident() == _engine_thread


async def run_in_worker(func: Callable[[], T], cancel_requested: CancelFlag | None = None) -> T:
    """Run ``func()`` on the engine worker and wait for it without blocking the loop.

    If the awaiting task is cancelled, ``cancel_requested`` is set (``func`` is expected to
    poll it) and the call still waits, shielded, until the worker is free again, so no work is
    left running behind a cancelled job.
    """
    executor = engine_executor()
    if sniffio.current_async_library() == "asyncio":
        # run_in_executor (rather than anyio's own threads) lets virtual-time loops (looptime)
        # see that real work is pending and not jump their clock past it.
        future: asyncio.Future[T] = asyncio.get_running_loop().run_in_executor(executor, func)
        try:
            return await asyncio.shield(future)
        except BaseException:
            if cancel_requested is not None:
                cancel_requested.set()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([future])
            if not future.cancelled():
                future.exception()  # retrieved: the caller's own exception wins
            raise
    return await _run_in_worker_trio(executor, func, cancel_requested)


async def _run_in_worker_trio(
    executor: concurrent.futures.ThreadPoolExecutor,
    func: Callable[[], T],
    cancel_requested: CancelFlag | None,
) -> T:
    import trio

    finished = trio.Event()
    trio_token = trio.lowlevel.current_trio_token()

    def wake_loop(_: concurrent.futures.Future[T]) -> None:
        try:
            trio_token.run_sync_soon(finished.set)
        except trio.RunFinishedError:
            pass

    cf_future = executor.submit(func)
    cf_future.add_done_callback(wake_loop)
    try:
        await finished.wait()
    except BaseException:
        if cancel_requested is not None:
            cancel_requested.set()
        with anyio.CancelScope(shield=True):
            await finished.wait()
        raise
    return cf_future.result()
