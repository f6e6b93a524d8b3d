"""The local backend: LocalService and the statevector backend on this machine."""

from .backend import LocalBackend, LocalService

__all__ = ["LocalBackend", "LocalService"]
