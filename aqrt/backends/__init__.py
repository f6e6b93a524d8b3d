"""Backends: the protocol, and the local service."""

from .base import Backend, ExecutionContext
from .local import LocalBackend, LocalService

__all__ = ["Backend", "ExecutionContext", "LocalBackend", "LocalService"]
