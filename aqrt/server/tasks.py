"""The server's background tasks and whether it is stopping.

Storing a settled job's final state and closing a session run as tasks of their own, not inside
a request; :meth:`Tasks.wait` lets ``stop()`` wait for those already under way. Once ``stopping``
is set, settling jobs are left unfinished in the store (they are re-run on the next start).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["Tasks"]

T = TypeVar("T")


class Tasks:
    """A set of running tasks (each dropped when it ends) and the server's ``stopping`` flag."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task of the running loop, kept until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self) -> None:
        """Wait for every task running now (their errors are not raised here)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
