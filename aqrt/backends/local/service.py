"""``LocalService``: the embedded service, its backends by name, no network, no account."""

from __future__ import annotations

from typing import Self

from ...errors import BackendNotFoundError
from .backend import LocalBackend
from .executors import JobExecutor

__all__ = ["DEFAULT_BACKEND", "LocalService"]

DEFAULT_BACKEND = "aqrt_statevector"
_ALIASES = {"ibmq_qasm_simulator": DEFAULT_BACKEND}


class LocalService:
    """The embedded service: local backends, no network, no account.

    Args:
        engine: ``"numba"`` (default) or ``"reference"`` (Qiskit's ``Statevector``; slow, exact).
        dtype: ``"complex128"`` (default) or ``"complex64"`` (numba engine only): half the memory
            and traffic for about 1e-6 relative accuracy instead of 1e-15.
        max_qubits: refuse circuits wider than this (default: what this machine's memory holds).
        executor: where large jobs run instead of the engine worker thread, e.g.
            ``aqrt.distributed.DaskExecutor(client)`` to run sweeps on a Dask cluster (needs
            ``aqrt[dask]``); closed by ``await service.aclose()``.
        chunk_bindings: bindings per chunk of a sweep (default: about 50 ms of work each on Dask,
            250 ms in-process, where a job is chunked only when its progress is watched).

    Example:
        >>> LocalService().backend("ibmq_qasm_simulator").name
        'aqrt_statevector'
    """

    def __init__(
        self,
        *,
        engine: str = "numba",
        dtype: str = "complex128",
        max_qubits: int | None = None,
        executor: JobExecutor | None = None,
        chunk_bindings: int | None = None,
    ) -> None:
        self._backends = {
            DEFAULT_BACKEND: LocalBackend(
                DEFAULT_BACKEND,
                service=self,
                engine=engine,
                dtype=dtype,
                max_qubits=max_qubits,
                executor=executor,
                chunk_bindings=chunk_bindings,
            )
        }

    async def aclose(self) -> None:
        """Close what the backends' executors opened (a Dask client made from an address)."""
        for backend in self._backends.values():
            await backend.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def backends(self) -> list[LocalBackend]:
        """Every backend of this service."""
        return list(self._backends.values())

    def backend(self, name: str | None = None) -> LocalBackend:
        """The backend called ``name`` (aliases accepted); the default one if ``name`` is None.

        Raises:
            BackendNotFoundError: no such backend; the message lists the known names.
        """
        key = DEFAULT_BACKEND if name is None else _ALIASES.get(name, name)
        try:
            return self._backends[key]
        except KeyError:
            known = sorted([*self._backends, *_ALIASES])
            raise BackendNotFoundError(f"no backend {name!r} on LocalService; available: {known}") from None

    def known_backend(self, name: str | None = None) -> LocalBackend:
        """:meth:`backend`: a local service always knows its backends (the Service protocol)."""
        return self.backend(name)

    async def fetch_backend(self, name: str | None = None) -> LocalBackend:
        """:meth:`backend` (the Service protocol)."""
        return self.backend(name)

    def __repr__(self) -> str:
        return f"<LocalService backends={list(self._backends)}>"
