"""The backends ``aqrt serve`` serves (issue #13): aqrt_statevector and fake devices, their
documents as the official client reads them, and IBM's ISA rule (code 1517)."""

from __future__ import annotations

import json

import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime.models import BackendProperties
from qiskit_ibm_runtime.utils.backend_converter import convert_to_target
from qiskit_ibm_runtime.utils.backend_decoder import configuration_from_server_data

from aqrt.backends.local import LocalService
from aqrt.backends.local.device import DeviceBackend
from aqrt.backends.local.devices import fake_device
from aqrt.server.catalog import NON_ISA_MESSAGE, STATEVECTOR, non_isa_failure, served_backends


def _served(*names: str):  # type: ignore[no-untyped-def]
    service = LocalService(max_qubits=20, noise=True)
    return served_backends(list(names), service, statevector_qubits=5, max_shots=1000, max_pubs=10)


def _target_from_documents(configuration: dict, properties: dict):  # type: ignore[no-untyped-def]
    """What the official client builds from GET .../configuration and .../properties."""
    wire_configuration = json.loads(json.dumps(configuration))
    wire_properties = json.loads(json.dumps(properties))
    return convert_to_target(
        configuration_from_server_data(wire_configuration), BackendProperties.from_dict(wire_properties)
    )


def test_a_fake_device_is_served_with_its_own_documents_and_noise() -> None:
    served = _served(STATEVECTOR, "fake_manila")
    assert list(served) == [STATEVECTOR, "fake_manila"]
    device = served["fake_manila"]
    assert isinstance(device.backend, DeviceBackend) and device.is_device and device.backend.noise is True
    assert device.num_qubits == 5 and device.configuration["simulator"] is False
    target = _target_from_documents(device.configuration, device.properties)
    reference = fake_device("fake_manila").target
    assert set(target.operation_names) >= {"cx", "rz", "sx", "x", "measure"}
    for name in ("cx", "sx", "measure"):
        assert set(target.qargs_for_operation_name(name)) == set(reference.qargs_for_operation_name(name))
        for qargs in reference.qargs_for_operation_name(name):
            ours, theirs = target[name][qargs], reference[name][qargs]
            assert ours.error == pytest.approx(theirs.error) and ours.duration == pytest.approx(theirs.duration)
    exact = served[STATEVECTOR]
    assert not exact.is_device and exact.num_qubits == 5 and exact.configuration["max_shots"] == 1000


def test_unknown_and_repeated_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend 'ibm_nowhere'"):
        _served("ibm_nowhere")
    with pytest.raises(ValueError, match="fake_nowhere"):
        _served("fake_nowhere")
    with pytest.raises(ValueError, match="named twice"):
        _served("fake_manila", "fake_manila")


def test_non_isa_and_too_wide_circuits_fail_with_ibm_s_words() -> None:
    served = _served(STATEVECTOR, "fake_manila")
    device = served["fake_manila"]
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    failure = non_isa_failure(device, [SamplerPub.coerce(bell)])
    assert failure is not None and failure.startswith(NON_ISA_MESSAGE)
    assert "PUB 0" in failure and "The instruction h on qubits (0,)" in failure and "#1517" in failure
    isa = generate_preset_pass_manager(optimization_level=1, target=device.backend.target, seed_transpiler=1).run(bell)
    assert non_isa_failure(device, [SamplerPub.coerce(isa)]) is None
    wide = QuantumCircuit(7)
    wide.x(6)
    assert "The circuit has 7 qubits but the target system requires 5 qubits" in (
        non_isa_failure(device, [SamplerPub.coerce(isa), EstimatorPub.coerce((wide, "Z" * 7))]) or ""
    )
    exact = served[STATEVECTOR]
    assert non_isa_failure(exact, [SamplerPub.coerce(bell)]) is None  # any instruction it runs
    assert "7 qubits" in (non_isa_failure(exact, [EstimatorPub.coerce((wide, "Z" * 7))]) or "")
