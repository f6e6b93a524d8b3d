"""Usage: the seconds each user's jobs have run (``GET /api/v1/instances/usage``).

Read from the store once per user, then kept up to date in memory as jobs finish.
"""

from __future__ import annotations

from .store import Store

__all__ = ["UsageMeter"]


class UsageMeter:
    """Per-user running seconds over one store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seconds: dict[str, float] = {}

    async def seconds(self, user: str) -> float:
        """Seconds ``user``'s jobs have run (read from the store once, then kept up to date)."""
        if user not in self._seconds:
            stored = await self._store.usage_seconds(user)
            self._seconds.setdefault(user, stored)
        return self._seconds[user]

    def add(self, user: str, seconds: float | None) -> None:
        """Count a finished job's ``seconds`` (once ``user``'s total has been read)."""
        if seconds and user in self._seconds:
            self._seconds[user] += seconds
