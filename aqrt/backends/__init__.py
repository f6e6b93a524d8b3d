"""Backends: the protocol, and the local service. ``aqrt.backends.ibm`` (IBM Quantum over HTTP,
imports aiohttp) is imported only when used."""

from .base import Backend, ExecutionContext
from .local import LocalBackend, LocalService

__all__ = ["Backend", "ExecutionContext", "LocalBackend", "LocalService"]
