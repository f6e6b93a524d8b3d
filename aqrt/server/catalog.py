"""The backends one ``aqrt serve`` serves, and the documents the Runtime API describes them with.

Two kinds, chosen by name (``--backend NAME``, repeatable):

- ``aqrt_statevector``: aqrt's exact engine as a device of ``backend_qubits`` qubits with full
  connectivity and IBM's basis (:func:`statevector_configuration`), noiseless;
- any fake device of ``qiskit_ibm_runtime.fake_provider`` (``fake_sherbrooke``,
  ``fake_manila``, ...): its own configuration and properties, as IBM serves the real device's,
  so the official client builds the device's real ``Target`` and transpiles for it; jobs run on
  a :class:`~aqrt.backends.local.DeviceBackend` with the device's noise, idle qubits dropped.

Every backend says ``simulator: false``, as a device does: the official client then opens real
sessions and runs its ISA checks. The server checks ISA too, as IBM does (:func:`non_isa_failure`):
a job whose circuit is not ISA for its backend, or wider than it, fails with code 1517.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends.isa import non_isa_reason
from ..backends.local import LocalBackend, LocalService
from ..backends.local.device import DeviceBackend
from ..backends.local.devices import FAKE_PREFIX, fake_device, fake_device_names
from ..backends.local.executor_program import QuantumProgramPub
from ..errors import BackendNotFoundError

__all__ = [
    "BASIS_GATES",
    "NON_ISA_MESSAGE",
    "OTHER_INSTRUCTIONS",
    "STATEVECTOR",
    "ServedBackendInfo",
    "check_backend_names",
    "non_isa_failure",
    "served_backends",
    "statevector_configuration",
    "statevector_properties",
]

#: The name of aqrt's own exact backend.
STATEVECTOR = "aqrt_statevector"
#: aqrt_statevector's advertised basis (all native to the statevector engine).
BASIS_GATES = ["cx", "cz", "ecr", "id", "rz", "sx", "x"]
#: Everything else a circuit for aqrt_statevector may hold, as IBM's dynamic-circuit devices
#: list it: the local backend runs each (mid-circuit measurement, reset and control flow).
OTHER_INSTRUCTIONS = ["measure", "reset", "delay", "if_else", "while_loop", "for_loop", "switch_case"]
#: How IBM words a job failed for circuits that are not ISA (its code is 1517).
NON_ISA_MESSAGE = "Circuits do not match the target definition (non-ISA circuits)."

_TWO_QUBIT = {"cx", "cz", "ecr"}
_VERSION = "1.0.0"
_EPOCH = "2026-01-01T00:00:00+00:00"


@dataclasses.dataclass(frozen=True)
class ServedBackendInfo:
    """One served backend: what runs its jobs and what the API says about it.

    Attributes:
        name: the backend's name in the API.
        backend: the local backend that runs its jobs (a ``DeviceBackend`` for a fake device).
        configuration / properties: the JSON documents of ``GET /backends/{name}/configuration``
            and ``.../properties``.
        processor_type: the configuration's ``processor_type`` (also in the backend list).
    """

    name: str
    backend: LocalBackend
    configuration: dict[str, Any]
    properties: dict[str, Any]

    @property
    def num_qubits(self) -> int:
        return int(self.configuration["n_qubits"])

    @property
    def processor_type(self) -> dict[str, Any]:
        return dict(self.configuration.get("processor_type") or {})

    @functools.cached_property
    def configuration_json(self) -> str:
        """:attr:`configuration` as JSON text, made once (a 127-qubit device's is ~100 kB)."""
        return json.dumps(self.configuration)

    @functools.cached_property
    def properties_json(self) -> str:
        """:attr:`properties` as JSON text, made once."""
        return json.dumps(self.properties)

    @property
    def is_device(self) -> bool:
        """A fake device (noisy, its own target), not aqrt's exact engine."""
        return isinstance(self.backend, DeviceBackend)


def served_backends(
    names: Sequence[str],
    service: LocalService,
    *,
    statevector_qubits: int,
    max_shots: int,
    max_pubs: int,
) -> dict[str, ServedBackendInfo]:
    """The backends named, in order, from ``service`` (a ``LocalService(noise=True)``: devices
    run with their noise): ``aqrt_statevector`` (advertised ``statevector_qubits`` wide) and fake
    devices by name. ``max_shots`` / ``max_pubs`` are what aqrt_statevector advertises (a device
    advertises its own).

    Raises:
        ValueError: a name that is neither (the message lists the fake devices' names), a name
            given twice, or fake devices without qiskit-ibm-runtime installed.
    """
    if len(set(names)) != len(names):
        raise ValueError(f"a backend is named twice in {list(names)}")
    check_backend_names(names)
    served: dict[str, ServedBackendInfo] = {}
    for name in names:
        if name == STATEVECTOR:
            served[name] = ServedBackendInfo(
                name=name,
                backend=service.backend(),
                configuration=statevector_configuration(
                    name, statevector_qubits, max_shots=max_shots, max_experiments=max_pubs
                ),
                properties=statevector_properties(name, statevector_qubits),
            )
            continue
        try:
            backend = service.backend(name)
        except BackendNotFoundError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(backend, DeviceBackend):  # pragma: no cover - fake_ names are devices
            raise ValueError(f"{name!r} is not a fake device")
        backend.target  # noqa: B018 - built now (it reads the device's files), not on the event loop
        served[name] = ServedBackendInfo(
            name=name,
            backend=backend,
            configuration=_json_ready(backend.device.configuration().to_dict()),
            properties=_json_ready(backend.device.properties().to_dict()),
        )
    return served


def _checked_circuits(pubs: Sequence[Any]) -> Sequence[Any]:
    """What the ISA check walks, each with a ``circuit``: the PUBs, or an ``executor`` job's
    program's items (numbered as the service numbers them: PUB ``i`` is item ``i``)."""
    if len(pubs) == 1 and isinstance(pubs[0], QuantumProgramPub):
        return list(pubs[0].program.items)
    return pubs


def check_backend_names(names: Sequence[str]) -> None:
    """Refuse, before a server starts, a backend name that is neither ``aqrt_statevector`` nor a
    fake device (reads the fake devices' list only when a ``fake_`` name is given).

    Raises:
        ValueError: the first bad name, with the fix (the names of close fake devices, or the
            extra that installs them).
    """
    for name in names:
        if name == STATEVECTOR:
            continue
        if not name.startswith(FAKE_PREFIX):
            raise ValueError(
                f"unknown backend {name!r}: serve {STATEVECTOR!r} or a fake device such as fake_sherbrooke"
            )
        try:
            found = fake_device(name)
        except BackendNotFoundError as exc:  # qiskit-ibm-runtime is not installed
            raise ValueError(f"backend {name!r}: {exc}") from None
        if found is None:
            close = difflib.get_close_matches(name, fake_device_names(), n=3)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise ValueError(f"unknown fake device {name!r}{hint}")


def non_isa_failure(info: ServedBackendInfo, pubs: Sequence[Any]) -> str | None:
    """The reason a job on ``info``'s backend fails with code 1517 (IBM's words, then which
    PUB and instruction), or None when every PUB's circuit is ISA for it. An ``executor``
    job's PUB is its program: every item's circuit is checked."""
    target = info.backend.target if isinstance(info.backend, DeviceBackend) else None
    for index, pub in enumerate(_checked_circuits(pubs)):
        circuit = pub.circuit
        reason: str | None
        if target is not None:
            reason = non_isa_reason(circuit, target)
        elif circuit.num_qubits > info.num_qubits:  # aqrt_statevector: any instruction it runs, on its qubits
            reason = (
                f"The circuit has {circuit.num_qubits} qubits but the target system requires {info.num_qubits} qubits."
            )
        else:
            reason = None
        if reason is None:
            continue
        return (
            f"{NON_ISA_MESSAGE} PUB {index}: {reason} Transpile your circuits for the target before submitting "
            "a primitive query (generate_preset_pass_manager(target=backend.target)). -- https://ibm.biz/error_codes#1517"
        )
    return None


def statevector_configuration(
    name: str, n_qubits: int, max_shots: int = 100_000, max_experiments: int = 300
) -> dict[str, Any]:
    """aqrt_statevector's configuration document: IBM-like basis gates, every 1-qubit gate on
    every qubit and every 2-qubit gate on every ordered pair (full connectivity), so circuits
    transpiled against ``IBMBackend.target`` pass the official primitives' ISA checks."""
    pairs = [list(pair) for pair in itertools.permutations(range(n_qubits), 2)]
    singles = [[q] for q in range(n_qubits)]
    gates = [
        {
            "name": gate,
            "parameters": ["theta"] if gate == "rz" else [],
            "qasm_def": gate,
            "coupling_map": pairs if gate in _TWO_QUBIT else singles,
        }
        for gate in BASIS_GATES
    ]
    return {
        "backend_name": name,
        "backend_version": _VERSION,
        "n_qubits": n_qubits,
        "basis_gates": list(BASIS_GATES),
        "gates": gates,
        "supported_instructions": [*BASIS_GATES, *OTHER_INSTRUCTIONS],
        "coupling_map": pairs,
        "local": False,
        "simulator": False,
        "conditional": True,
        "open_pulse": False,
        "memory": True,
        "max_shots": max_shots,
        "max_experiments": max_experiments,
        "dt": 1e-9,
        "dtm": 1e-9,
        "meas_map": [list(range(n_qubits))],
        "processor_type": {"family": "aqrt", "revision": "1"},
        "description": "aqrt's exact statevector engine behind the Runtime REST API",
        "online_date": _EPOCH,
        "supported_features": ["qasm3"],
        "credits_required": False,
        "rep_times": [0.001],
        "default_rep_delay": 250.0,
        "rep_delay_range": [0.0, 500.0],
        "dynamic_reprate_enabled": True,
        "quantum_volume": None,
        "qv": None,
    }


def statevector_properties(name: str, n_qubits: int) -> dict[str, Any]:
    """aqrt_statevector's properties document: ideal qubits, no gate errors."""

    def nduv(prop: str, value: float, unit: str) -> dict[str, Any]:
        return {"date": _EPOCH, "name": prop, "unit": unit, "value": value}

    qubits = [
        [
            nduv("T1", 1.0e6, "us"),
            nduv("T2", 1.0e6, "us"),
            nduv("frequency", 5.0, "GHz"),
            nduv("readout_error", 0.0, ""),
            nduv("readout_length", 1000.0, "ns"),
        ]
        for _ in range(n_qubits)
    ]
    return {
        "backend_name": name,
        "backend_version": _VERSION,
        "last_update_date": _EPOCH,
        "qubits": qubits,
        "gates": [],
        "general": [],
    }


def _json_ready(document: dict[str, Any]) -> dict[str, Any]:
    """A Qiskit ``to_dict()`` document as JSON values (dates as ISO text, complex as [re, im])."""

    def value(item: Any) -> Any:
        if isinstance(item, dt.datetime):
            return item.isoformat()
        if isinstance(item, complex):
            return [item.real, item.imag]
        if isinstance(item, np.ndarray | np.generic):
            return item.tolist()
        raise TypeError(f"{type(item).__name__} in a backend document")

    loaded: dict[str, Any] = json.loads(json.dumps(document, default=value))
    return loaded
