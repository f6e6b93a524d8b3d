"""A device backend refuses, at ``run()``, a circuit that is not ISA for the device's target,
with IBM's words (checked against qiskit-ibm-runtime's own check); ISA circuits pass."""

from __future__ import annotations

import math

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.exceptions import QiskitError
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime.exceptions import IBMInputValueError
from qiskit_ibm_runtime.utils.utils import is_isa_circuit
from qiskit_ibm_runtime.utils.validations import validate_isa_circuits

from aqrt import CircuitTooLargeError, Estimator, InvalidPubError, LocalService, Sampler, UnsupportedCircuitError
from aqrt.backends.isa import non_isa_reason

from .support import bell, isa_for

SHERBROOKE_ECR = (14, 0)  # FakeSherbrooke has ecr on (14, 0), not on (0, 14): ecr is directed


def _uncoupled_cx() -> QuantumCircuit:
    circuit = QuantumCircuit(5)
    circuit.cx(0, 4)  # FakeManilaV2 is a line 0-1-2-3-4
    circuit.measure_all()
    return circuit


def _block_with_h() -> QuantumCircuit:
    """An ISA-looking circuit whose if-block (on qubits 2, 3) holds an ``h`` on its qubit 1."""
    circuit = QuantumCircuit(5, 1)
    circuit.x(2)
    circuit.measure(2, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(2)
        circuit.h(3)
    return circuit


@pytest.fixture(scope="module")
def manila_bell(manila) -> QuantumCircuit:
    """A measured Bell circuit, ISA for FakeManilaV2 (transpiled off the event loop: the
    transpiler reads Qiskit's user configuration file)."""
    return isa_for(manila, bell())


def _ibm_message(circuit: QuantumCircuit, target) -> str:
    with pytest.raises(IBMInputValueError) as caught:
        validate_isa_circuits([circuit], target)
    return caught.value.message


@pytest.mark.asyncio
async def test_an_h_on_sherbrooke_is_refused_at_run_with_ibms_message(sherbrooke) -> None:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    circuit.measure_all()
    sampler = Sampler(mode=sherbrooke)
    with pytest.raises(UnsupportedCircuitError) as caught:
        sampler.run([circuit])  # synchronously, before any job
    error = caught.value
    assert isinstance(error, InvalidPubError) and isinstance(error, QiskitError)
    assert error.pub_index == 0
    assert str(error) == f"PUB 0: {_ibm_message(circuit, sherbrooke.target)}"
    assert str(error).startswith("PUB 0: The instruction h on qubits (0,) is not supported by the target system.")
    assert "transpil" in str(error)


@pytest.mark.asyncio
async def test_a_cx_on_uncoupled_qubits_is_refused_and_names_its_pub(manila) -> None:
    coupled = QuantumCircuit(5)
    coupled.cx(0, 1)
    coupled.measure_all()
    sampler = Sampler(mode=manila)
    with pytest.raises(UnsupportedCircuitError) as caught:
        sampler.run([coupled, _uncoupled_cx()])
    assert caught.value.pub_index == 1
    assert str(caught.value) == f"PUB 1: {_ibm_message(_uncoupled_cx(), manila.target)}"
    assert "The instruction cx on qubits (0, 4) is not supported by the target system." in str(caught.value)


@pytest.mark.asyncio
async def test_the_estimator_refuses_non_isa_circuits_too(manila) -> None:
    with pytest.raises(UnsupportedCircuitError, match=r"^PUB 0: The instruction h on qubits \(0,\)"):
        Estimator(mode=manila).run([(bell(measure=False), SparsePauliOp("ZZ"))])


@pytest.mark.asyncio
async def test_control_flow_blocks_are_checked_with_their_qubits_mapped_out(manila) -> None:
    circuit = _block_with_h()
    with pytest.raises(UnsupportedCircuitError) as caught:
        Sampler(mode=manila).run([circuit])
    assert "The instruction h on qubits (3,) is not supported" in str(caught.value)
    assert str(caught.value) == f"PUB 0: {_ibm_message(circuit, manila.target)}"


@pytest.mark.asyncio
async def test_a_circuit_wider_than_the_device_is_too_large(manila) -> None:
    circuit = QuantumCircuit(6)
    circuit.x(5)
    circuit.measure_all()
    with pytest.raises(CircuitTooLargeError) as caught:
        Sampler(mode=manila).run([circuit])
    assert str(caught.value) == f"PUB 0: {_ibm_message(circuit, manila.target)}"
    assert "The circuit has 6 qubits but the target system requires 5 qubits." in str(caught.value)


@pytest.mark.asyncio
async def test_isa_circuits_are_accepted_and_run(manila, manila_bell) -> None:
    isa = manila_bell
    block = QuantumCircuit(5, 1)
    block.x(2)
    block.measure(2, 0)
    with block.if_test((block.clbits[0], 1)):
        block.x(3)  # x is in the basis on every qubit
        block.barrier()
    assert non_isa_reason(isa, manila.target) is None
    assert non_isa_reason(block, manila.target) is None  # if_else is global; x is on every qubit
    result = await Sampler(mode=LocalService(noise=False).device(manila)).run([isa], shots=64)
    counts = result[0].data.meas.get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 64


def test_the_reason_is_ibms_for_many_circuits(manila, sherbrooke) -> None:
    """Our check and qiskit-ibm-runtime's ``is_isa_circuit`` agree, word for word."""
    rzz_device = LocalService().backend("fake_fractional")  # a device whose target has rzz
    rzz = rzz_device.target
    assert "rzz" in rzz.operation_names
    edge = next(iter(rzz.build_coupling_map().get_edges()))
    cases = [(bell(), manila.target), (_uncoupled_cx(), manila.target), (_block_with_h(), manila.target)]
    cases.append((isa_for(manila, bell()), manila.target))
    cases.append((isa_for(sherbrooke, bell()), sherbrooke.target))
    for qubits in (SHERBROOKE_ECR, SHERBROOKE_ECR[::-1]):
        ecr = QuantumCircuit(127)
        ecr.ecr(*qubits)
        cases.append((ecr, sherbrooke.target))
    for angle in (0.5, -0.1, math.pi / 2 + 1e-12, 2.0, Parameter("theta")):
        circuit = QuantumCircuit(rzz.num_qubits)
        circuit.rzz(angle, *edge)
        cases.append((circuit, rzz))
    reasons = []
    for circuit, target in cases:
        ours = non_isa_reason(circuit, target)
        assert (ours or "") == is_isa_circuit(circuit, target)
        reasons.append(ours)
    isa = [reason is None for reason in reasons]
    assert isa == [False, False, False, True, True, True, False, True, False, True, False, True]


@pytest.mark.asyncio
async def test_the_devices_shot_and_pub_limits(manila, manila_bell) -> None:
    backend = LocalService().device(manila)
    assert (backend.max_shots, backend.max_experiments) == (100_000, 300)
    sampler = Sampler(mode=backend, options={"seed": 1})
    with pytest.raises(InvalidPubError, match=r"^PUB 0: 100001 shots requested; device 'fake_manila' takes at most"):
        sampler.run([manila_bell], shots=100_001)
    with pytest.raises(InvalidPubError, match=r"^PUB 300: device 'fake_manila' takes at most 300 PUBs per job"):
        sampler.run([manila_bell] * 301, shots=10)
    result = await sampler.run([manila_bell] * 299 + [(manila_bell, None, 100_000)], shots=10)
    assert len(result) == 300 and result[-1].data.meas.num_shots == 100_000
    no_limits = await Sampler(mode="aqrt_statevector").run([bell()] * 300 + [(bell(), None, 100_001)], shots=10)
    assert len(no_limits) == 301 and no_limits[-1].data.meas.num_shots == 100_001
