"""LocalService as qiskit-ibm-runtime's services: backends() with its filters, backend(name)
for fake devices (one backend per name), least_busy(), and clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit_ibm_runtime.fake_provider import FakeManilaV2, FakeProviderForBackendV2

from aqrt import BackendNotFoundError, InvalidInputError, LocalService
from aqrt.backends.local import DeviceBackend, LocalBackend
from aqrt.backends.local import devices as devices_module

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # fake_nighthawk's note on its properties
    FAKE_NAMES = sorted(device.name for device in FakeProviderForBackendV2().backends())


def test_backends_lists_the_statevector_backend_then_every_fake_device() -> None:
    service = LocalService()
    backends = service.backends()
    assert [backend.name for backend in backends] == ["aqrt_statevector", *FAKE_NAMES]
    assert len(FAKE_NAMES) > 50
    assert all(isinstance(backend, DeviceBackend) for backend in backends[1:])
    assert service.backends() == backends  # the same objects, kept by name
    assert service.backend("fake_manila") is backends[FAKE_NAMES.index("fake_manila") + 1]


def test_min_num_qubits_filters_by_width_without_building_every_target() -> None:
    service = LocalService(max_qubits=24)
    wide = service.backends(min_num_qubits=130)
    assert {backend.name for backend in wide} >= {"fake_fez", "fake_marrakesh", "fake_torino"}
    assert all(backend.num_qubits >= 130 for backend in wide)  # the targets' widths (built now)
    narrow = {backend.name for backend in service.backends(min_num_qubits=25)}
    everything = {backend.name for backend in service.backends()}
    small = {backend.name for backend in service.backends() if backend.name not in narrow}
    assert "aqrt_statevector" in small  # 24 qubits here
    assert narrow | small == everything
    for name in ("fake_manila", "fake_lima"):  # 5 qubits: their widths, from their targets
        assert name in small and service.backend(name).num_qubits == 5


def test_simulator_operational_name_and_filters() -> None:
    service = LocalService()
    assert [backend.name for backend in service.backends(simulator=True)] == ["aqrt_statevector"]
    devices = service.backends(simulator=False)
    assert [backend.name for backend in devices] == FAKE_NAMES
    assert service.backends(operational=False) == []
    assert len(service.backends(operational=True)) == len(FAKE_NAMES) + 1
    assert service.backends(name="fake_sherbrooke") == [service.backend("fake_sherbrooke")]
    assert service.backends(name="ibmq_qasm_simulator") == [service.backend()]
    assert service.backends(name="fake_nowhere") == []
    chosen = service.backends(filters=lambda backend: backend.name.endswith("a"))
    assert [backend.name for backend in chosen] == [name for name in FAKE_NAMES if name.endswith("a")]
    assert service.backends(name="fake_manila", simulator=True) == []


def test_least_busy() -> None:
    service = LocalService(max_qubits=24)
    assert service.least_busy() is service.backend()  # nothing is pending anywhere: the first listed
    wide = service.least_busy(min_num_qubits=127)
    assert isinstance(wide, DeviceBackend) and wide.num_qubits >= 127
    assert service.least_busy(simulator=False).name == FAKE_NAMES[0]
    assert service.least_busy(filters=lambda backend: backend.name == "fake_lima").name == "fake_lima"
    with pytest.raises(BackendNotFoundError, match="no operational backend"):
        service.least_busy(min_num_qubits=10_000)


def test_one_backend_per_device_name_in_a_service(manila) -> None:
    service = LocalService()
    by_name = service.backend("fake_manila")
    assert service.backend("fake_manila") is by_name
    assert service.device(manila) is by_name  # another FakeManilaV2 object: the same device
    assert service.device(FakeManilaV2()) is by_name
    assert LocalService().backend("fake_manila") is not by_name  # another service, another backend
    impostor = GenericBackendV2(num_qubits=5, seed=1)
    impostor.name = "fake_manila"
    with pytest.raises(InvalidInputError, match="already has a different backend named 'fake_manila'"):
        service.device(impostor)
    statevector_named = GenericBackendV2(num_qubits=2, seed=1)
    statevector_named.name = "aqrt_statevector"
    with pytest.raises(InvalidInputError, match="already has a different backend"):
        service.device(statevector_named)
    with pytest.raises(TypeError, match="is not an aqrt backend"):
        service.device(service.backend())
    with pytest.raises(TypeError, match="Qiskit BackendV2"):
        service.device("fake_manila")


def test_device_backends_take_the_services_settings() -> None:
    service = LocalService(engine="reference", max_qubits=12)
    backend = service.backend("fake_lima")
    assert backend.engine == "reference" and backend.service is service
    assert isinstance(backend, LocalBackend)
    assert repr(backend) == "<DeviceBackend fake_lima (noiseless) max_qubits=12>"  # the reference engine is exact
    assert repr(LocalService(max_qubits=12).backend("fake_lima")) == "<DeviceBackend fake_lima (noisy) max_qubits=12>"


def test_unknown_names_say_what_there_is() -> None:
    service = LocalService()
    with pytest.raises(BackendNotFoundError, match="did you mean 'fake_manila'") as caught:
        service.backend("fake_manilla")
    assert "aqrt_statevector" in str(caught.value)
    with pytest.raises(BackendNotFoundError, match="fake_provider by name") as caught:
        service.backend("sherbrooke")
    assert "aqrt[devices]" not in str(caught.value)  # it is installed here


def test_without_qiskit_ibm_runtime_a_fake_name_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(devices_module, "_devices", None)
    monkeypatch.setitem(sys.modules, "qiskit_ibm_runtime.fake_provider", None)  # import fails
    service = LocalService()
    with pytest.raises(BackendNotFoundError) as caught:
        service.backend("fake_sherbrooke")
    assert str(caught.value) == (
        "no backend 'fake_sherbrooke' on LocalService: the fake devices of qiskit_ibm_runtime.fake_provider "
        "need qiskit-ibm-runtime: pip install 'aqrt[devices]'"
    )
    assert [backend.name for backend in service.backends()] == ["aqrt_statevector"]
    assert service.backend().name == "aqrt_statevector"


def test_names_are_looked_up_lazily_and_quietly() -> None:
    """``import aqrt`` and the default backend do not import qiskit-ibm-runtime; a fake
    device's name does, without a warning (fake_nighthawk's, raised when the provider builds
    every device, would be an error under ``-W error``)."""
    script = textwrap.dedent(
        """
        import sys
        from aqrt import LocalService
        service = LocalService()
        service.backend()
        service.backends(simulator=True)
        assert "qiskit_ibm_runtime" not in sys.modules
        assert service.backend("fake_sherbrooke").num_qubits == 127
        assert "qiskit_ibm_runtime" in sys.modules
        """
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
