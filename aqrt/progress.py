"""Progress of a job: bindings done out of the job's total.

A :class:`Progress` exists only for jobs whose progress was asked for (``job.progress()`` or
``job.add_progress_callback``), so a job nobody watches pays nothing. Backends report from any
thread (the engine worker, a Dask gather loop); readers see updates on the event loop, through
callbacks or ``async for update in job.progress()``.

Example:
    >>> job = estimator.run([(circuit, observable, grid)])           # doctest: +SKIP
    >>> async for update in job.progress():                           # doctest: +SKIP
    ...     print(f"{update.done}/{update.total}")
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, NamedTuple

import anyio
import sniffio

__all__ = ["Progress", "ProgressUpdate", "count_bindings"]


class ProgressUpdate(NamedTuple):
    """A snapshot: ``done`` of ``total`` bindings; ``final`` once the job has finished."""

    done: int
    total: int
    final: bool = False

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else self.done / self.total


def count_bindings(pubs: Sequence[Any]) -> int:
    """Bindings of every PUB of a job (a PUB without parameters counts as one)."""
    return sum(math.prod(pub.parameter_values.shape) for pub in pubs)


class Progress:
    """Bindings done / total of one job; written from any thread, read on the event loop."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._done = 0  # as reported by the backend (any thread)
        self._published = ProgressUpdate(0, total)
        self._callbacks: list[Callable[[ProgressUpdate], None]] = []
        self._loop_thread = threading.get_ident()
        self._changed = anyio.Event()
        if sniffio.current_async_library() == "asyncio":
            self._call_soon: Callable[[Callable[[], None]], Any] = asyncio.get_running_loop().call_soon_threadsafe
        else:
            import trio

            self._call_soon = trio.lowlevel.current_trio_token().run_sync_soon

    @property
    def total(self) -> int:
        return self._total

    def snapshot(self) -> ProgressUpdate:
        """The latest update published on the loop."""
        return self._published

    def add_callback(self, callback: Callable[[ProgressUpdate], None]) -> None:
        """Call ``callback(update)`` on the event loop after every update (and at once with the
        current one)."""
        self._callbacks.append(callback)
        callback(self._published)

    def advance(self, bindings: int) -> None:
        """Record ``bindings`` more done; callable from any one thread at a time."""
        # One writer per job (the engine worker or the loop), so no lock is needed.
        done = self._done = min(self._total, self._done + bindings)
        if threading.get_ident() == self._loop_thread:
            self._publish(done, False)
        else:
            try:
                self._call_soon(lambda: self._publish(done, False))
            except RuntimeError:  # the loop is closed: nobody is left to tell
                pass

    def _finish(self, completed: bool) -> None:
        """On the loop, when the job is final: all done if it succeeded, else where it stopped."""
        self._publish(self._total if completed else self._published.done, True)

    def _publish(self, done: int, final: bool) -> None:
        current = self._published
        if current.final or (done <= current.done and not final):
            return
        self._published = ProgressUpdate(max(done, current.done), self._total, final)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        for callback in list(self._callbacks):
            callback(self._published)

    async def __aiter__(self) -> AsyncIterator[ProgressUpdate]:
        """Yield the current update, then each newer one (coalesced), ending with the final one."""
        last: ProgressUpdate | None = None
        while True:
            update = self._published
            if update != last:
                yield update
                last = update
                if update.final:
                    return
            await self._changed.wait()
