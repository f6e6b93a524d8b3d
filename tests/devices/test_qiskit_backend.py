"""Local backends are Qiskit BackendV2s: the statevector backend's "anything goes" target, a
device backend's target taken from its device, preset pass managers built from both, and
``run()`` refused as IBM refuses it."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.providers import BackendV2
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.quantum_info import Operator
from qiskit.transpiler import generate_preset_pass_manager

from aqrt import Backend, BackendError, LocalService
from aqrt.backends.isa import non_isa_reason
from aqrt.backends.local import BackendStatus, DeviceBackend

from .support import bell, isa_for

CONTROL_FLOW = {"if_else", "while_loop", "for_loop", "switch_case", "break_loop", "continue_loop"}


def test_the_statevector_backend_is_a_backend_v2_with_an_anything_goes_target() -> None:
    backend = LocalService(max_qubits=20).backend()
    assert isinstance(backend, BackendV2)
    assert isinstance(backend, Backend)
    target = backend.target
    assert target.num_qubits is None  # any width ...
    assert backend.num_qubits == 20  # ... while aqrt's num_qubits is what this machine holds
    assert backend.coupling_map is None
    assert backend.max_circuits is None
    standard = set(get_standard_gate_name_mapping()) - {"global_phase"}
    assert set(backend.operation_names) == standard | CONTROL_FLOW
    assert {"measure", "reset", "delay"} <= standard
    # Every instruction is global: supported on any qubits.
    assert target.instruction_supported("ccx", (7, 3, 11))
    assert target.instruction_supported("if_else", (0, 1, 2, 3))
    assert "measure" not in backend.basis_gates and "ccx" in backend.basis_gates
    assert backend.target is target  # built once


def test_a_preset_pass_manager_from_the_statevector_backend_keeps_standard_gates() -> None:
    backend = LocalService().backend()
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.ccx(0, 1, 2)
    circuit.rzz(0.3, 0, 2)
    circuit.unitary(Operator.from_label("XY"), [1, 2])  # not a standard gate: translated
    transpiled = generate_preset_pass_manager(backend=backend, optimization_level=1).run(circuit)
    assert transpiled.num_qubits == 3  # no device to lay out on
    assert "unitary" not in transpiled.count_ops()
    assert set(transpiled.count_ops()) <= set(backend.operation_names)
    assert Operator(transpiled).equiv(Operator(circuit))


def test_a_device_backend_has_the_devices_target_width_coupling_and_basis(sherbrooke) -> None:
    backend = LocalService().device(sherbrooke)
    assert isinstance(backend, DeviceBackend) and isinstance(backend, BackendV2)
    assert backend.name == "fake_sherbrooke"
    assert backend.target is sherbrooke.target
    assert backend.num_qubits == sherbrooke.num_qubits == 127
    assert sorted(backend.coupling_map.get_edges()) == sorted(sherbrooke.coupling_map.get_edges())
    assert sorted(backend.operation_names) == sorted(sherbrooke.operation_names)
    assert backend.basis_gates == sorted(sherbrooke.configuration().basis_gates) == ["ecr", "id", "rz", "sx", "x"]
    assert backend.backend_version == sherbrooke.backend_version
    assert backend.dt == sherbrooke.dt
    assert backend.max_circuits is None
    assert backend.simulator is False
    assert backend.max_shots == sherbrooke.configuration().max_shots
    assert backend.max_experiments == sherbrooke.configuration().max_experiments


def test_a_preset_pass_manager_from_a_device_backend_gives_the_devices_isa_circuits(sherbrooke) -> None:
    backend = LocalService().device(sherbrooke)
    circuit = bell()
    ours = isa_for(backend, circuit)
    theirs = isa_for(sherbrooke, circuit)
    assert ours == theirs  # the same target, the same seed: the same circuit
    assert ours.num_qubits == 127
    assert non_isa_reason(ours, sherbrooke.target) is None
    assert set(ours.count_ops()) <= {"ecr", "rz", "sx", "x", "measure", "barrier"}


def test_any_backend_v2_with_a_target_becomes_a_device_backend() -> None:
    generic = GenericBackendV2(num_qubits=4, basis_gates=["cx", "rz", "sx", "x"], seed=3)
    backend = LocalService().device(generic)
    assert backend.name == generic.name
    assert backend.target is generic.target
    assert backend.num_qubits == 4
    assert backend.max_shots is None and backend.max_experiments is None  # no configuration: no limits
    transpiled = generate_preset_pass_manager(backend=backend, optimization_level=1, seed_transpiler=1).run(bell())
    assert non_isa_reason(transpiled, generic.target) is None


def test_run_is_refused_and_points_to_the_primitives(manila) -> None:
    for backend in (LocalService().backend(), LocalService().device(manila)):
        with pytest.raises(BackendError, match=r"backend.run\(\) is not supported") as caught:
            backend.run(bell())
        assert "Sampler(mode=backend)" in str(caught.value)
        assert "primitives" in str(caught.value)


def test_status_has_the_five_fields_of_qiskits_backend_status(manila) -> None:
    service = LocalService()
    status = service.backend().status()
    assert isinstance(status, BackendStatus)
    assert status.to_dict() == {
        "backend_name": "aqrt_statevector",
        "backend_version": service.backend().backend_version,
        "operational": True,
        "pending_jobs": 0,
        "status_msg": "active",
    }
    device_status = service.device(manila).status()
    assert (device_status.backend_name, device_status.backend_version) == ("fake_manila", manila.backend_version)
    assert device_status.to_dict() == {**manila.status().to_dict(), "backend_version": manila.backend_version}
    with pytest.raises(ValueError, match="pending_jobs"):
        BackendStatus("x", "1", True, -1, "active")


def test_optimization_level_transpiles_for_the_device_target(manila) -> None:
    """aqrt's optimization_level transpiles for a device backend's target, not aqrt's basis."""
    from qiskit.primitives.containers.estimator_pub import EstimatorPub

    from aqrt.job import JobRequest
    from aqrt.options import Options

    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 2)
    circuit.t(2)
    request = JobRequest(
        "job", "estimator", [EstimatorPub.coerce((circuit, "ZIZ"))], Options(optimization_level=1), None
    )
    for_device = LocalService().device(manila).runner.prepare(circuit, "key", request, {})
    assert set(for_device.circuit.count_ops()) <= set(manila.target.operation_names)
    for_statevector = LocalService().backend().runner.prepare(circuit, "key", request, {})
    assert "h" in for_statevector.circuit.count_ops()
