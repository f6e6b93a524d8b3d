"""The fake devices of ``qiskit_ibm_runtime.fake_provider``, found by name, loaded lazily.

qiskit-ibm-runtime is an optional dependency (``pip install 'aqrt[devices]'``): nothing here
imports it until a fake device is asked for. The first look-up imports it and builds
``FakeProviderForBackendV2`` once per process (about a second: the import, then each
device's configuration file); the devices are shared by every ``LocalService`` of the process,
which only reads them (name, configuration, target). A device's target is built on first use.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from ...errors import BackendNotFoundError

__all__ = ["DEVICES_EXTRA", "FAKE_PREFIX", "declared_width", "fake_device", "fake_device_names", "fake_devices"]

#: How to install the fake devices.
DEVICES_EXTRA = "pip install 'aqrt[devices]'"
#: Every fake device's name starts with it; other names never import qiskit-ibm-runtime.
FAKE_PREFIX = "fake_"

_lock = threading.Lock()
_devices: dict[str, Any] | None = None


def fake_devices() -> dict[str, Any]:
    """Every fake device of ``FakeProviderForBackendV2``, by name (built once per process).

    Raises:
        BackendNotFoundError: qiskit-ibm-runtime is not installed (the message says how).
    """
    global _devices
    with _lock:
        if _devices is None:
            try:
                from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2  # type: ignore[import-untyped]
            except ImportError as exc:
                raise BackendNotFoundError(
                    f"the fake devices of qiskit_ibm_runtime.fake_provider need qiskit-ibm-runtime: {DEVICES_EXTRA}"
                ) from exc
            with warnings.catch_warnings():
                # The provider builds every device; fake_nighthawk warns, once, that its error
                # figures are not typical. That concerns a device nobody asked for yet, and under
                # ``-W error`` it would make every look-up fail.
                warnings.filterwarnings("ignore", message="Properties of fake_nighthawk", category=UserWarning)
                provider = FakeProviderForBackendV2()
            _devices = {device.name: device for device in provider.backends()}
        return _devices


def fake_device_names() -> list[str]:
    """The fake devices' names, sorted (empty if qiskit-ibm-runtime is not installed)."""
    try:
        return sorted(fake_devices())
    except BackendNotFoundError:
        return []


def fake_device(name: str) -> Any | None:
    """The fake device called ``name``, or None if there is none.

    Raises:
        BackendNotFoundError: ``name`` looks like a fake device's and qiskit-ibm-runtime is not
            installed.
    """
    if not name.startswith(FAKE_PREFIX):
        return None
    return fake_devices().get(name)


def declared_width(device: Any) -> int:
    """The device's number of qubits without building its target where it can be read from
    its configuration (IBM's devices build their target from that very configuration, so the
    two agree); else ``device.num_qubits``. Listing with ``min_num_qubits`` uses it: building
    every fake device's target takes seconds."""
    configuration = getattr(device, "configuration", None)
    if callable(configuration):
        width = getattr(configuration(), "n_qubits", None)
        if isinstance(width, int):
            return width
    return int(device.num_qubits)
