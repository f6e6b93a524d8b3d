"""A process-wide, thread-safe LRU of things made from content: what a new session would
otherwise make again (lowered circuits, term tables, prepared circuits), keyed by content (a
circuit's fingerprint, observables' terms) or by the identity of an object the entry holds."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["ByContent"]


class ByContent:
    """A process-wide, thread-safe LRU of things made from content (a new session would otherwise
    make them again); what it holds is read, never changed. Made outside the lock: two threads
    may make the same entry once each, and the last one made is kept."""

    def __init__(self, limit: int) -> None:
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The entry under ``key``, or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            if len(self._entries) > self._limit:
                self._entries.popitem(last=False)

    def drop_if(self, key: Any, stale: Callable[[Any], bool]) -> None:
        """Drop the entry under ``key`` if there is one and ``stale(entry)`` says so."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None and stale(value):
                del self._entries[key]

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value
