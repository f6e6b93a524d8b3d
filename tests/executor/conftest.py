"""Fixtures of the executor tests: a fake device made off the event loop, its aqrt device
backends (with the device's noise and without), and small quantum programs built with the
official client's classes and samplomatic."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from samplomatic import Twirl, build

from aqrt.backends.local.device import DeviceBackend


@pytest.fixture(scope="session")
def noisy_manila(manila: FakeManilaV2) -> DeviceBackend:
    return DeviceBackend(manila)


@pytest.fixture(scope="session")
def exact_manila(manila: FakeManilaV2) -> DeviceBackend:
    return DeviceBackend(manila, noise=False)


def sweep_circuit() -> QuantumCircuit:
    """An ISA circuit for manila with one parameter: rz(theta) between two sx on qubit 0 (so
    P(1) = cos^2(theta/2)), an x on qubit 2; qubit 0 measured into clbit 2, qubit 2 into clbit 0."""
    theta = Parameter("theta")
    circuit = QuantumCircuit(3, 3)
    circuit.sx(0)
    circuit.rz(theta, 0)
    circuit.sx(0)
    circuit.x(2)
    circuit.measure(0, 2)
    circuit.measure(2, 0)
    return circuit


def twirled_bell() -> tuple[QuantumCircuit, object]:
    """A Bell pair with its entangler and its measurements in twirled boxes, built by samplomatic
    into a template circuit (basis rz/sx/cx, ISA for manila) and its samplex."""
    circuit = QuantumCircuit(2)
    circuit.rz(np.pi / 2, 0)
    circuit.sx(0)
    circuit.rz(np.pi / 2, 0)  # h on qubit 0 in manila's basis
    with circuit.box([Twirl()]):
        circuit.cx(0, 1)
    with circuit.box([Twirl()]):
        circuit.measure_all()
    return build(circuit)


def small_program(*, shots: int = 200, randomizations: int = 4) -> QuantumProgram:
    """A circuit item (sweep_circuit over 3 angles) and a samplex item (twirled_bell), with
    passthrough data and a semantic role, as a client would send them."""
    program = QuantumProgram(shots=shots, passthrough_data={"note": "kept", "values": np.arange(3.0)})
    program.append_circuit_item(sweep_circuit(), circuit_arguments=np.array([[0.0], [np.pi / 2], [np.pi]]))
    template, samplex = twirled_bell()
    program.append_samplex_item(template, samplex, shape=(randomizations,))
    program._semantic_role = "custom-role"
    return program
