"""``LocalService``: the embedded service, its backends by name, no network, no account.

Its backends are the statevector simulator ``aqrt_statevector`` and device backends: any
Qiskit ``BackendV2`` with a target, wrapped by :meth:`LocalService.device`, and the fake devices
of ``qiskit_ibm_runtime.fake_provider`` by name (``"fake_sherbrooke"``; needs
``aqrt[devices]``), made on first use. One service holds one backend per name, so a session and
the primitives inside it agree on "the same backend" by name, as they do for remote backends.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from collections.abc import Callable
from typing import Self

from qiskit.providers import BackendV2

from ...errors import BackendNotFoundError, InvalidInputError
from .backend import LocalBackend
from .device import DeviceBackend
from .devices import DEVICES_EXTRA, FAKE_PREFIX, declared_width, fake_device, fake_devices
from .executors import JobExecutor
from .recipes import BackendRecipe

__all__ = ["DEFAULT_BACKEND", "LocalService", "backend_from_recipe"]

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
        noise: whether device backends run with their device's noise model (default, as
            qiskit-ibm-runtime's local mode runs fake devices; needs the ``noise`` extra) or
            exactly (False). ``aqrt_statevector`` is noiseless unless a job's
            ``simulator.noise_model`` option gives a model.

    The settings apply to every backend of the service, device backends included.

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
        noise: bool = True,
    ) -> None:
        self._noise = noise
        self._engine = engine
        self._dtype = dtype
        self._max_qubits = max_qubits
        self._executor = executor
        self._chunk_bindings = chunk_bindings
        self._backends: dict[str, LocalBackend] = {
            DEFAULT_BACKEND: LocalBackend(
                DEFAULT_BACKEND,
                service=self,
                engine=engine,
                dtype=dtype,
                max_qubits=max_qubits,
                executor=executor,
                chunk_bindings=chunk_bindings,
                recipe=self._recipe(DEFAULT_BACKEND),
            )
        }

    async def aclose(self) -> None:
        """Close what the executor opened (a Dask client made from an address)."""
        if self._executor is not None:
            await self._executor.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def backend(self, name: str | None = None) -> LocalBackend:
        """The backend called ``name`` (aliases accepted); the default one if ``name`` is None.

        A fake device's name (``"fake_manila"``) gives its device backend, made on first use.

        Raises:
            BackendNotFoundError: no such backend, or a fake device's name without
                qiskit-ibm-runtime installed; the message says what there is, or how to install it.
        """
        key = DEFAULT_BACKEND if name is None else _ALIASES.get(name, name)
        known = self._backends.get(key)
        if known is not None:
            return known
        try:
            device = fake_device(key)
        except BackendNotFoundError as exc:
            raise BackendNotFoundError(f"no backend {key!r} on LocalService: {exc}") from exc.__cause__
        if device is None:
            raise BackendNotFoundError(self._not_found(key))
        return self.device(device)

    def device(self, device: BackendV2) -> DeviceBackend:
        """The device backend of ``device`` (a Qiskit ``BackendV2`` with a target), made on
        first use and then kept under the device's name.

        A device is known by its name and class: ``FakeManilaV2()`` made twice gives one backend.

        Raises:
            TypeError: ``device`` is not a Qiskit ``BackendV2``, or is an aqrt backend already.
            InvalidInputError: this service already has a different backend of that name.
        """
        if not isinstance(device, BackendV2) or isinstance(device, LocalBackend):
            raise TypeError(
                f"LocalService.device takes a Qiskit BackendV2 that is not an aqrt backend, got {type(device).__name__}"
            )
        name = _ALIASES.get(device.name, device.name)
        known = self._backends.get(name)
        if known is None:
            made = DeviceBackend(
                device,
                service=self,
                engine=self._engine,
                dtype=self._dtype,
                max_qubits=self._max_qubits,
                executor=self._executor,
                chunk_bindings=self._chunk_bindings,
                noise=self._noise and self._engine == "numba",  # the reference engine is exact
                recipe=self._recipe(name) if _is_fake_device(device) else None,
            )
            known = self._backends.setdefault(name, made)  # another thread may have been first
        if not isinstance(known, DeviceBackend) or (
            known.device is not device and type(known.device) is not type(device)
        ):
            raise InvalidInputError(
                f"this LocalService already has a different backend named {name!r} ({known!r}); "
                "use another LocalService for this one"
            )
        return known

    def backends(
        self,
        name: str | None = None,
        min_num_qubits: int | None = None,
        simulator: bool | None = None,
        operational: bool | None = None,
        filters: Callable[[LocalBackend], bool] | None = None,
    ) -> list[LocalBackend]:
        """The backends that match every filter given: the statevector backend first, then the
        device backends by name, the fake devices of qiskit-ibm-runtime included (if installed).

        Listing the fake devices makes a backend of each (the first time in a process this
        imports qiskit-ibm-runtime, about a second); their targets are not built for it.
        ``simulator=True`` lists without them.

        Args:
            name: only the backend of this name (aliases accepted); none if there is none.
            min_num_qubits: at least this many qubits (``num_qubits``; for the statevector
                backend, what this machine holds).
            simulator: True: only simulators (the statevector backend); False: only devices.
            operational: only backends whose ``status().operational`` is this.
            filters: only backends for which this returns True.
        """
        if name is not None:
            try:
                candidates = [self.backend(name)]
            except BackendNotFoundError:
                return []
        else:
            if simulator is not True:
                self._add_fake_devices()
            default = self._backends[DEFAULT_BACKEND]
            candidates = [default, *sorted((b for b in self._backends.values() if b is not default), key=_by_name)]
        return [
            backend
            for backend in candidates
            if (min_num_qubits is None or _width(backend) >= min_num_qubits)
            and (simulator is None or backend.simulator == simulator)
            and (operational is None or backend.status().operational == operational)
            and (filters is None or filters(backend))
        ]

    def least_busy(
        self,
        min_num_qubits: int | None = None,
        filters: Callable[[LocalBackend], bool] | None = None,
        *,
        simulator: bool | None = None,
    ) -> LocalBackend:
        """The operational backend with the fewest pending jobs among :meth:`backends` that
        match (the first listed on a tie; local backends keep no queue, so it is the first).

        Raises:
            BackendNotFoundError: no operational backend matches.
        """
        candidates = self.backends(
            min_num_qubits=min_num_qubits, simulator=simulator, operational=True, filters=filters
        )
        if not candidates:
            raise BackendNotFoundError(
                f"no operational backend on LocalService matches (min_num_qubits={min_num_qubits}, "
                f"simulator={simulator}, filters={'given' if filters is not None else None})"
            )
        return min(candidates, key=lambda backend: backend.status().pending_jobs)

    def known_backend(self, name: str | None = None) -> LocalBackend:
        """:meth:`backend`: a local service always knows its backends (the Service protocol)."""
        return self.backend(name)

    async def fetch_backend(self, name: str | None = None) -> LocalBackend:
        """:meth:`backend` (the Service protocol)."""
        return self.backend(name)

    def _recipe(self, name: str) -> BackendRecipe:
        """How another process makes this service's backend ``name`` (:mod:`.recipes`)."""
        return BackendRecipe(
            name=name,
            engine=self._engine,
            dtype=self._dtype,
            max_qubits=self._max_qubits,
            noise=self._noise,
            chunk_bindings=self._chunk_bindings,
        )

    def _add_fake_devices(self) -> None:
        try:
            devices = fake_devices()
        except BackendNotFoundError:
            return  # qiskit-ibm-runtime is not installed: no fake devices to list
        for device in devices.values():
            if device.name not in self._backends:
                self.device(device)

    def _not_found(self, name: str) -> str:
        known = sorted([*(n for n in self._backends if not n.startswith(FAKE_PREFIX)), *_ALIASES])
        message = f"no backend {name!r} on LocalService; available: {known}, and the fake devices of "
        if name.startswith(FAKE_PREFIX):  # they are loaded: the look-up found no such name among them
            devices = fake_devices()
            close = difflib.get_close_matches(name, devices, n=3)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "service.backends() lists them"
            return f"{message}qiskit_ibm_runtime.fake_provider, {len(devices)} of them ({hint})"
        install = "" if importlib.util.find_spec("qiskit_ibm_runtime") is not None else f"; {DEVICES_EXTRA}"
        return f"{message}qiskit_ibm_runtime.fake_provider by name ('fake_sherbrooke', ...{install})"

    def __repr__(self) -> str:
        return f"<LocalService backends={list(self._backends)}>"


@functools.lru_cache(maxsize=32)
def backend_from_recipe(recipe: BackendRecipe) -> LocalBackend:
    """The backend ``recipe`` describes, made on first use in this process and then kept (a
    device's target and noise model are built once per process): what a worker that runs whole
    jobs does with the recipe each job comes with."""
    service = LocalService(
        engine=recipe.engine,
        dtype=recipe.dtype,
        max_qubits=recipe.max_qubits,
        noise=recipe.noise,
        chunk_bindings=recipe.chunk_bindings,
    )
    return service.backend(recipe.name)


def _is_fake_device(device: BackendV2) -> bool:
    """Whether ``device`` is one of qiskit-ibm-runtime's fake devices, which another process
    finds by name (read from its class, without loading the fake devices)."""
    return type(device).__module__.startswith("qiskit_ibm_runtime.fake_provider") and device.name.startswith(
        FAKE_PREFIX
    )


def _by_name(backend: LocalBackend) -> str:
    return backend.name


def _width(backend: LocalBackend) -> int:
    """``num_qubits``, read from a device's configuration where it has one (no target built)."""
    return declared_width(backend.device) if isinstance(backend, DeviceBackend) else backend.num_qubits
