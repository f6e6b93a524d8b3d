"""``DeviceBackend``: a device (any Qiskit ``BackendV2`` with a ``Target``) run by the local engine.

A device backend is a :class:`~.backend.LocalBackend` that takes its name, target, width,
coupling map and basis from the device it stands for (``FakeSherbrooke()``, a
``GenericBackendV2``): circuits are transpiled against it exactly as against the device, and
at ``run()`` it refuses, as Qiskit Runtime does, a circuit that is not ISA for the device's
target (:mod:`.isa`). It runs on the same runner and engine as the statevector backend, **with
the device's noise** by default, as qiskit-ibm-runtime's local mode runs fake devices: the model
qiskit-aer's ``NoiseModel.from_backend`` builds from the device's properties (gate errors as
depolarizing channels, T1/T2 relaxation over gate durations, read-out errors), built once per
device object on the first noisy job and kept (:func:`~.noise_models.device_noise_model`).
``noise=False`` runs it exactly; an :class:`aqrt.noise.NoiseModel` runs that model instead.
:attr:`DeviceBackend.result_metadata` says which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qiskit.providers import BackendV2
from qiskit.transpiler import CouplingMap, Target

from ...errors import BackendError, InvalidPubError
from ...job import Program
from ...noise import NoiseModel
from ..base import Service
from ..isa import check_isa
from .backend import LocalBackend
from .executors import JobExecutor
from .noise_models import device_noise_model
from .recipes import BackendRecipe

__all__ = ["DEVICE_NOISE", "NOISELESS", "DeviceBackend"]

#: What a noiseless device backend's results say about noise (``result_metadata``).
NOISELESS = {
    "noise": "none",
    "simulator": "noiseless statevector; the device's noise model is not applied",
}
#: What a device backend with its device's noise says.
DEVICE_NOISE = {
    "noise": "device",
    "noise_model": "qiskit_aer.noise.NoiseModel.from_backend(device), run on aqrt's engine",
}


class DeviceBackend(LocalBackend):
    """A device simulated on this machine, with its noise (by default) or exactly.

    ``name``, ``target``, ``coupling_map``, ``num_qubits``, ``basis_gates`` and
    ``operation_names`` are the device's. ``simulator`` is False, as for the device (and as
    qiskit-ibm-runtime's fake devices say): code that checks ISA circuits only on devices
    checks them here. The device's configuration, where it has one, limits shots per PUB
    (``max_shots``) and PUBs per job (``max_experiments``).

    Args:
        device: a Qiskit ``BackendV2`` whose ``target`` describes the device; only read.
        service: the :class:`~aqrt.LocalService` it belongs to, if any.
        engine, dtype, max_qubits, executor, chunk_bindings: as for
            :class:`~.backend.LocalBackend`; ``max_qubits`` bounds the state this machine
            builds (of the circuit's active qubits).
        noise: True (default): the device's noise model (needs qiskit-aer, the ``noise``
            extra); False: exact, noiseless; an :class:`aqrt.noise.NoiseModel`: that one.
            A job's ``simulator.noise_model`` option overrides it.
        recipe: how another process makes this backend (:mod:`.recipes`), if it can.

    Raises:
        TypeError: ``device`` is not a Qiskit ``BackendV2``, or is an aqrt backend already.
    """

    def __init__(
        self,
        device: BackendV2,
        *,
        service: Service | None = None,
        engine: str = "numba",
        dtype: str = "complex128",
        max_qubits: int | None = None,
        executor: JobExecutor | None = None,
        chunk_bindings: int | None = None,
        noise: bool | NoiseModel = True,
        recipe: BackendRecipe | None = None,
    ) -> None:
        if not isinstance(noise, bool | NoiseModel):
            raise TypeError(f"noise must be True, False or an aqrt.noise.NoiseModel, got {type(noise).__name__}")
        if noise is not False and engine != "numba":
            raise ValueError(f"noise needs the numba engine; the {engine!r} engine is exact (pass noise=False)")
        self._noise = noise
        if not isinstance(device, BackendV2):
            raise TypeError(f"device must be a Qiskit BackendV2, got {type(device).__name__}")
        if isinstance(device, LocalBackend):
            raise TypeError(f"{device.name!r} is an aqrt backend already; use it as it is")
        super().__init__(
            device.name,
            service=service,
            engine=engine,
            dtype=dtype,
            max_qubits=max_qubits,
            executor=executor,
            chunk_bindings=chunk_bindings,
            description=f"{device.name} simulated by aqrt's engine, "
            + ("without noise" if noise is False else "with noise"),
            backend_version=str(device.backend_version or ""),
            recipe=recipe,
        )
        self._device = device
        configuration = _configuration(device)
        self.max_shots: int | None = _positive_int(configuration, "max_shots")
        """Shots per PUB the device takes, from its configuration (None: no limit)."""
        self.max_experiments: int | None = _positive_int(configuration, "max_experiments")
        """PUBs per job the device takes, from its configuration (None: no limit)."""

    @property
    def device(self) -> BackendV2:
        """The Qiskit backend this backend stands for."""
        return self._device

    @property
    def target(self) -> Target:
        """The device's target (built by the device on first use)."""
        target = self._device.target
        if not isinstance(target, Target):
            raise BackendError(f"device {self.name!r} has no Target; a device backend needs one")
        return target

    def _transpile_target(self) -> Target:
        """``optimization_level`` transpiles for the device, as IBM's would."""
        return self.target

    @property
    def coupling_map(self) -> CouplingMap | None:
        """The device's coupling map."""
        return self._device.coupling_map

    @property
    def num_qubits(self) -> int:
        """The device's number of qubits (its target's)."""
        return int(self.target.num_qubits)

    @property
    def dtm(self) -> float | None:
        """The device's measurement time resolution, where it says."""
        return self._device.dtm

    @property
    def simulator(self) -> bool:
        """False: this backend stands for a device (its circuits must be ISA)."""
        return False

    @property
    def noise(self) -> bool | NoiseModel:
        """True: the device's noise model; False: noiseless; or the aqrt NoiseModel it runs."""
        return self._noise

    def _noise_source(self) -> Callable[[], NoiseModel | None] | None:
        if self._noise is False:
            return None
        if isinstance(self._noise, NoiseModel):
            model = self._noise
            return lambda: model
        return lambda: device_noise_model(self._device)

    @property
    def result_metadata(self) -> dict[str, str]:
        """:data:`DEVICE_NOISE`, :data:`NOISELESS`, or ``{"noise": "custom"}`` for a given model."""
        if self._noise is False:
            return dict(NOISELESS)
        if isinstance(self._noise, NoiseModel):
            return {"noise": "custom", "noise_model": repr(self._noise)}
        return dict(DEVICE_NOISE)

    def validate_pub(self, program: Program, pub: Any, index: int) -> None:
        """Refuse what the device would refuse, then what this machine cannot run.

        Raises:
            InvalidPubError: more PUBs than the device's ``max_experiments``, or more shots
                than its ``max_shots``.
            CircuitTooLargeError: the circuit is wider than the device, or its state does not
                fit this machine.
            UnsupportedCircuitError: the circuit is not ISA for the device's target (IBM's
                message: which instruction, on which qubits; transpile first), or holds an
                instruction the engine cannot run.
        """
        if self.max_experiments is not None and index >= self.max_experiments:
            raise InvalidPubError(
                index,
                f"device {self.name!r} takes at most {self.max_experiments} PUBs per job (its configuration's "
                "max_experiments)",
            )
        check_isa(index, pub.circuit, self.target)
        if program == "sampler" and self.max_shots is not None and pub.shots > self.max_shots:
            raise InvalidPubError(
                index,
                f"{pub.shots} shots requested; device {self.name!r} takes at most {self.max_shots} per PUB (its "
                "configuration's max_shots)",
            )
        super().validate_pub(program, pub, index)

    def __repr__(self) -> str:
        noise = "noiseless" if self._noise is False else "noisy"
        return f"<DeviceBackend {self.name} ({noise}) max_qubits={self._max_qubits}>"


def _configuration(device: BackendV2) -> Any | None:
    """The device's configuration (IBM's devices keep one beside their target), or None."""
    configuration = getattr(device, "configuration", None)
    return configuration() if callable(configuration) else None


def _positive_int(configuration: Any | None, field: str) -> int | None:
    value = getattr(configuration, field, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
