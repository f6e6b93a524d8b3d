"""The executor's circuits arrive as QPY 18 (the client writes Qiskit's newest QPY): they are walked
before loading as aqrt.wire.limits walks QPY 13..17, and declare the same sizes either way."""

from __future__ import annotations

import io

import pytest
from ibm_quantum_schemas.common.qpy import ANNOTATION_FACTORIES
from qiskit import AncillaRegister, ClassicalRegister, QuantumCircuit, QuantumRegister, qpy, transpile
from qiskit.circuit import Clbit, Parameter, ParameterVector, Qubit
from qiskit.circuit.classical import expr, types
from qiskit.circuit.library import PauliEvolutionGate, QFTGate, efficient_su2, real_amplitudes
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparseObservable, SparsePauliOp
from qiskit_ibm_runtime.fake_provider import FakeSherbrooke
from samplomatic import Twirl, build

from aqrt.wire import WireError
from aqrt.wire.limits import Admission, LimitExceeded, PayloadLimits, check_qpy_programs

LIMITS = PayloadLimits(max_qubits=200, max_clbits=200, max_circuit_ops=100_000, max_parameters=10**6)


def vectors_and_control_flow() -> QuantumCircuit:
    v, w = ParameterVector("v", 5), ParameterVector("w", 3)
    circuit = QuantumCircuit(3, 2)
    circuit.rx(v[0] + w[1], 0)
    circuit.ry(v[4], 1)
    circuit.global_phase = v[2] * 2  # read before the circuit's vector table
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.rz(w[2], 1)
    with circuit.if_test((circuit.cregs[0], 2)) as orelse:
        circuit.h(0)
    with orelse:
        circuit.rx(v[1], 2)
    with circuit.for_loop(range(3)):
        circuit.rz(v[3], 0)
    with circuit.while_loop((circuit.clbits[1], 0)):
        circuit.x(0)
        circuit.measure(0, 1)
    with circuit.switch(circuit.cregs[0]) as case:
        with case(0):
            circuit.x(1)
        with case(case.DEFAULT):
            circuit.y(1)
    return circuit


def custom_gates() -> QuantumCircuit:
    body = QuantumCircuit(2, name="mygate")
    body.cx(0, 1)
    body.rz(Parameter("a"), 1)
    gate = body.to_gate()
    circuit = QuantumCircuit(4)
    circuit.append(gate, [0, 1])
    circuit.append(gate.control(1), [2, 0, 1])
    return circuit


def registers() -> QuantumCircuit:
    qubits, ancillas, clbits = QuantumRegister(3, "q"), AncillaRegister(2, "anc"), ClassicalRegister(2, "c")
    loose = [Qubit(), Clbit()]
    circuit = QuantumCircuit(qubits, ancillas, clbits, loose)
    circuit.h(ancillas[0])
    circuit.measure(ancillas[1], clbits[1])
    circuit.measure(qubits[0], loose[1])
    circuit.add_register(ClassicalRegister(bits=[clbits[0], loose[1]], name="mixed"))
    return circuit


def evolutions() -> QuantumCircuit:
    circuit = QuantumCircuit(3)
    circuit.append(PauliEvolutionGate(SparsePauliOp(["XXI", "ZIZ"], [0.5, 0.2]), time=Parameter("t")), [0, 1, 2])
    observable = SparseObservable.from_sparse_list([("+-r", [0, 1, 2], 1.0)], 3)
    circuit.append(PauliEvolutionGate(observable, time=0.3), [0, 1, 2])
    return circuit


def classical_variables() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    a = circuit.add_input("a", types.Uint(4))
    b = circuit.add_var("b", expr.lift(True))
    with circuit.if_test(expr.logic_and(b, expr.equal(a, 3))):
        circuit.x(0)
    circuit.store(b, expr.logic_not(b))
    return circuit


def twirled_boxes() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    with circuit.box([Twirl()]):
        circuit.cx(0, 1)
    with circuit.box([Twirl()]):
        circuit.measure_all()
    return circuit


def corpus() -> dict[str, QuantumCircuit]:
    device = FakeSherbrooke()
    ansatz = efficient_su2(4, reps=1).measure_all(inplace=False)
    qft = real_amplitudes(4, reps=1)
    qft.append(QFTGate(4), range(4))
    return {
        "vectors-control-flow": vectors_and_control_flow(),
        "custom-gates": custom_gates(),
        "registers": registers(),
        "evolutions": evolutions(),
        "classical-variables": classical_variables(),
        "efficient-su2": efficient_su2(5, reps=2),
        "real-amplitudes-qft": qft,
        "random-conditional": random_circuit(5, 6, conditional=True, seed=3, measure=True),
        "transpiled-127-qubits": transpile(ansatz, device, optimization_level=1, seed_transpiler=1),
        "boxes": twirled_boxes(),
        "samplomatic-template": build(twirled_boxes())[0],
    }


def qpy_blob(circuits: list[QuantumCircuit], version: int) -> bytes:
    buffer = io.BytesIO()
    qpy.dump(circuits, buffer, version=version, annotation_factories=ANNOTATION_FACTORIES)
    return buffer.getvalue()


def declared(raw: bytes, programs: int, limits: PayloadLimits = LIMITS) -> tuple[int, int]:
    admission = Admission(limits)
    check_qpy_programs("QuantumProgram.circuits", raw, programs, admission)
    return admission.vector_parameters, admission.circuit_bits


@pytest.fixture(scope="module")
def circuits() -> dict[str, QuantumCircuit]:
    return corpus()


def test_every_circuit_declares_in_qpy_18_what_it_declares_in_qpy_17(circuits) -> None:
    for name, circuit in circuits.items():
        as_17 = declared(qpy_blob([circuit], 17), 1)
        assert declared(qpy_blob([circuit], 18), 1) == as_17, name
    assert declared(qpy_blob([circuits["efficient-su2"]], 18), 1)[0] == 30
    assert declared(qpy_blob([circuits["transpiled-127-qubits"]], 18), 1)[1] == 127 + 4
    # each nested block carries its own vector table: 8 elements at the top, 3 + 5 + 5 in blocks
    assert declared(qpy_blob([circuits["vectors-control-flow"]], 18), 1)[0] == 21
    together = qpy_blob(list(circuits.values()), 18)
    assert declared(together, len(circuits)) == declared(qpy_blob(list(circuits.values()), 17), len(circuits))


def test_qpy_18_vectors_count_against_max_parameters(circuits) -> None:
    raw = qpy_blob([circuits["efficient-su2"]], 18)
    with pytest.raises(LimitExceeded, match=r"ParameterVector elements: 30.*\(max_parameters\)"):
        declared(raw, 1, PayloadLimits(max_parameters=29))
    with pytest.raises(LimitExceeded, match="the circuit has 127 qubits"):
        declared(qpy_blob([circuits["transpiled-127-qubits"]], 18), 1, PayloadLimits(max_qubits=100))


@pytest.mark.parametrize("cut", [1, 40, 200])
def test_a_truncated_or_padded_qpy_18_blob_is_malformed(circuits, cut: int) -> None:
    raw = qpy_blob([circuits["vectors-control-flow"], circuits["registers"]], 18)
    with pytest.raises(WireError, match="malformed"):
        declared(raw[:-cut], 2)
    with pytest.raises(WireError, match="bytes follow the circuits"):
        declared(raw + bytes(cut), 2)
