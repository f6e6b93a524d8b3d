"""A session's backend: found at construction when that needs no I/O, else when the session is
entered; and, for backends that keep sessions of their own, the server-side session."""

from __future__ import annotations

from qiskit.providers import BackendV2

from ..backends.base import Backend, RemoteSessionBackend, Service, remote_sessions


class BackendBinding:
    """The backend a session asked for, the one it got, and its remote session if any.

    Args:
        service: where the backend lives; ``None`` means ``LocalService()`` (or, for a backend
            object, the backend's own service).
        backend: a backend object, a name, or None for the service's default backend; a Qiskit
            ``BackendV2`` that is not an aqrt backend (``FakeSherbrooke()``) runs on the local
            service as its device backend.

    Raises:
        TypeError: ``service`` or ``backend`` does not implement its protocol, or a Qiskit
            backend is given with a service that is not a ``LocalService``.
        BackendNotFoundError: a local service has no such backend.
    """

    def __init__(self, service: Service | None, backend: Backend | BackendV2 | str | None) -> None:
        self.request = backend
        self.backend, self.service = _resolve_now(service, backend)
        self.remote: RemoteSessionBackend | None = None
        self.remote_id: str | None = None  # the server's session id, once opened
        self._remote_closed = False

    async def fetch(self) -> Backend:
        """Ask the (remote) service for the backend that could not be had at construction."""
        # _resolve_now returned no backend only for a name (or None) on a service that needs I/O.
        assert self.service is not None and not isinstance(self.request, Backend)
        return await self.service.fetch_backend(self.request)

    def bind(self, backend: Backend) -> None:
        """Fix the session's backend.

        Raises:
            TypeError: it declares ``remote_sessions`` without implementing them.
        """
        self.remote = remote_sessions(backend)
        self.backend = backend

    async def open_remote(self, session_id: str, *, mode: str, max_time: int) -> None:
        """Open the server-side session, once; nothing for backends without remote sessions."""
        if self.remote is not None and self.remote_id is None:
            self.remote_id = await self.remote.open_session(session_id, mode=mode, max_time=max_time)

    async def close_remote(self, session_id: str, *, cancel: bool) -> None:
        """Close (or cancel) the server-side session, once, if it was opened."""
        if self.remote is None or self.remote_id is None or self._remote_closed:
            return
        self._remote_closed = True
        if cancel:
            await self.remote.cancel_session(session_id)
        else:
            await self.remote.close_session(session_id)


def _resolve_now(
    service: Service | None, backend: Backend | BackendV2 | str | None
) -> tuple[Backend | None, Service | None]:
    """The backend now if it can be had without I/O, else None (looked up in ``__aenter__``)."""
    from ..backends.local import LocalService  # the default service

    if backend is not None and not isinstance(backend, str):
        if isinstance(backend, Backend):
            return backend, service if service is not None else backend.service
        if isinstance(backend, BackendV2):
            if service is None:
                service = LocalService()
            if not isinstance(service, LocalService):
                raise TypeError(
                    f"a Qiskit backend ({backend.name!r}) runs on a LocalService, not on {type(service).__name__}"
                )
            return service.device(backend), service
        raise TypeError(f"backend must be a name, an aqrt Backend or a Qiskit BackendV2, got {type(backend).__name__}")
    if service is None:
        service = LocalService()
    if not isinstance(service, Service):
        raise TypeError(f"service must implement aqrt.backends.Service, got {type(service).__name__}")
    return service.known_backend(backend), service
