"""Backends: the written contract (:mod:`.base`), and the local service.

``aqrt.backends.ibm`` (IBM Quantum over HTTP, imports aiohttp) is imported only when used.
"""

from .base import (
    NOT_INLINE,
    Backend,
    BackendCapabilities,
    ExecutionContext,
    InlineBackend,
    RemoteSessionBackend,
    Service,
)
from .local import JobExecutor, LocalBackend, LocalJobRunner, LocalService

__all__ = [
    "NOT_INLINE",
    "Backend",
    "BackendCapabilities",
    "ExecutionContext",
    "InlineBackend",
    "JobExecutor",
    "LocalBackend",
    "LocalJobRunner",
    "LocalService",
    "RemoteSessionBackend",
    "Service",
]
