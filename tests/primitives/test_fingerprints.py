"""Circuit fingerprints (the session cache's key) tell apart every circuit that simulates
differently, and a circuit changed between two jobs gets the second job's answer: a fingerprint
remembered by a circuit's identity is served only while the circuit still equals what was
digested."""

from __future__ import annotations

import gc
import math
from typing import Any

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Delay, Gate, Measure, Parameter
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import SparsePauliOp

from aqrt import Estimator, LocalService, Sampler, Session
from aqrt.backends.local import fingerprint
from aqrt.backends.local.fingerprint import circuit_fingerprint


def _bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


class _NamedLikeMeasure(Measure):
    """A custom instruction that shares Qiskit's measurement's name."""


def _variants() -> dict[str, QuantumCircuit]:
    """Circuits that differ in one thing each (all must fingerprint differently)."""
    theta = Parameter("theta")
    variants: dict[str, QuantumCircuit] = {"bell": _bell()}
    swapped = QuantumCircuit(2)
    swapped.h(1)
    swapped.cx(1, 0)
    variants["other qubits"] = swapped
    variants["wider"] = QuantumCircuit(3).compose(_bell(), [0, 1])
    phased = _bell()
    phased.global_phase = 0.25
    variants["global phase"] = phased
    for value in (0.5, 0.5000000000000001, -0.0, 0.0):
        rotated = QuantumCircuit(1)
        rotated.rx(value, 0)
        variants[f"rx({value!r})"] = rotated
    symbolic = QuantumCircuit(1)
    symbolic.rx(theta, 0)
    variants["rx(theta)"] = symbolic
    doubled = QuantumCircuit(1)
    doubled.rx(2 * theta, 0)
    variants["rx(2*theta)"] = doubled
    custom_h = QuantumCircuit(1)
    custom_h.append(UnitaryGate(np.array([[0, 1], [1, 0]]), label="h"), [0])
    variants["unitary"] = custom_h
    named_h = QuantumCircuit(1)
    named_h.append(Gate("h", 1, []), [0])  # opaque, named like a standard gate
    variants["opaque named h"] = named_h
    plain_h = QuantumCircuit(1)
    plain_h.h(0)
    variants["h"] = plain_h
    for clbit in (0, 1):
        measured = QuantumCircuit(2, 2)
        measured.h(0)
        measured.measure(0, clbit)
        variants[f"measure into {clbit}"] = measured
    lookalike = QuantumCircuit(2, 2)
    lookalike.h(0)
    lookalike.append(_NamedLikeMeasure(), [0], [0])
    variants["custom measure"] = lookalike
    reset = QuantumCircuit(2, 2)
    reset.h(0)
    reset.reset(0)
    variants["reset"] = reset
    for unit in ("dt", "s"):
        delayed = QuantumCircuit(1)
        delayed.append(Delay(10, unit), [0])
        variants[f"delay 10 {unit}"] = delayed
    registers = QuantumCircuit(QuantumRegister(2, "a"))
    registers.h(0)
    registers.cx(0, 1)
    registers.add_register(*QuantumCircuit(0, 1).cregs)
    variants["with a creg"] = registers
    for value in (0, 1):
        dynamic = QuantumCircuit(2, 2)
        dynamic.h(0)
        dynamic.measure(0, 0)
        with dynamic.if_test((dynamic.clbits[0], value)):
            dynamic.x(1)
        variants[f"if clbit == {value}"] = dynamic
    return variants


def test_circuits_that_differ_in_one_thing_have_different_fingerprints() -> None:
    variants = _variants()
    fingerprints = {name: circuit_fingerprint(circuit) for name, circuit in variants.items()}
    by_value: dict[str, list[str]] = {}
    for name, value in fingerprints.items():
        by_value.setdefault(value, []).append(name)
    assert [names for names in by_value.values() if len(names) > 1] == []


def test_equal_circuits_built_apart_have_equal_fingerprints() -> None:
    first, second = _variants(), _variants()
    for name in first:
        assert circuit_fingerprint(first[name]) == circuit_fingerprint(second[name]), name
    renamed = _bell()
    renamed.name = "circuit-47"
    assert circuit_fingerprint(renamed) == circuit_fingerprint(_bell())


def test_a_bell_circuit_on_a_wide_register_names_only_its_qubits() -> None:
    wide = QuantumCircuit(127)
    wide.h(0)
    wide.cx(0, 1)
    moved = QuantumCircuit(127)
    moved.h(0)
    moved.cx(0, 2)
    assert circuit_fingerprint(wide) != circuit_fingerprint(moved)
    assert circuit_fingerprint(wide) == circuit_fingerprint(wide.copy())
    assert circuit_fingerprint(wide) != circuit_fingerprint(QuantumCircuit(126).compose(_bell(), [0, 1]))


def test_a_mutated_circuit_gets_a_new_fingerprint() -> None:
    circuit = _bell()
    before = circuit_fingerprint(circuit)
    circuit.data[1] = circuit.data[1].replace(qubits=(circuit.qubits[1], circuit.qubits[0]))
    assert circuit_fingerprint(circuit) != before
    again = circuit_fingerprint(circuit)
    circuit.global_phase = math.pi
    assert circuit_fingerprint(circuit) not in (before, again)


def _in_place_changes() -> list[tuple[str, Any]]:
    """Changes made to a circuit object in place, each to something that simulates differently
    (or, for the registers and widths, is described differently)."""

    def replace_gate(circuit: QuantumCircuit) -> None:
        circuit.data[0] = circuit.data[0].replace(operation=QuantumCircuit(1).x(0)[0].operation)

    def nudge_angle(circuit: QuantumCircuit) -> None:
        circuit.data[2] = circuit.data[2].replace(params=[np.nextafter(0.5, 1.0)])

    def move_qubits(circuit: QuantumCircuit) -> None:
        circuit.data[1] = circuit.data[1].replace(qubits=(circuit.qubits[1], circuit.qubits[0]))

    def rebind(circuit: QuantumCircuit) -> None:
        circuit.data[3] = circuit.data[3].replace(params=[Parameter("phi")])

    def phase(circuit: QuantumCircuit) -> None:
        circuit.global_phase = 0.125

    def creg(circuit: QuantumCircuit) -> None:
        circuit.add_register(ClassicalRegister(2, "extra"))  # no instruction changes

    def qubit(circuit: QuantumCircuit) -> None:
        circuit.add_register(QuantumRegister(1, "idle"))  # a wider state, no instruction changes

    return [
        ("gate replaced", replace_gate),
        ("angle nudged by one ulp", nudge_angle),
        ("qubits swapped", move_qubits),
        ("parameter renamed", rebind),
        ("global phase", phase),
        ("classical register added", creg),
        ("qubit added", qubit),
        ("gate appended", lambda circuit: circuit.h(1)),
    ]


def _standard_circuit() -> QuantumCircuit:
    circuit = _bell()
    circuit.rx(0.5, 0)
    circuit.rz(Parameter("theta"), 1)
    return circuit


@pytest.mark.parametrize(("change", "apply"), _in_place_changes(), ids=[name for name, _ in _in_place_changes()])
def test_a_circuit_changed_in_place_gets_the_fingerprint_of_what_it_is_now(change: str, apply: Any) -> None:
    circuit = _standard_circuit()
    before = circuit_fingerprint(circuit)
    assert circuit_fingerprint(circuit) == before  # remembered, and served while unchanged
    apply(circuit)
    after = circuit_fingerprint(circuit)
    assert after != before, change
    assert after == circuit_fingerprint(circuit.copy()), change  # a copy is digested afresh
    assert circuit_fingerprint(circuit) == after


@pytest.mark.parametrize("length", [8, fingerprint.KEPT_AS_OBJECTS + 8], ids=["short", "long"])
@pytest.mark.parametrize(("change", "apply"), _in_place_changes(), ids=[name for name, _ in _in_place_changes()])
def test_a_remembered_copy_of_either_kind_notices_each_change(length: int, change: str, apply: Any) -> None:
    """A short circuit's copy is kept as instruction objects, a long one's as Qiskit's packed
    data: each notices every change in place."""
    circuit = _standard_circuit()
    for k in range(length - len(circuit.data)):
        circuit.rz(0.001 * k, k % 2)
    before = circuit_fingerprint(circuit)
    known = fingerprint._remembered(circuit)
    assert known is not None and known.describes(circuit, circuit._data)
    assert isinstance(known._instructions, list) == (length <= fingerprint.KEPT_AS_OBJECTS)
    apply(circuit)
    assert not known.describes(circuit, circuit._data), change
    assert circuit_fingerprint(circuit) != before, change


def test_an_unchanged_circuit_of_standard_gates_is_compared_not_digested_again(monkeypatch: Any) -> None:
    standard = _standard_circuit()
    custom = QuantumCircuit(1)
    custom.append(UnitaryGate(np.array([[0, 1], [1, 0]])), [0])
    digested: list[QuantumCircuit] = []
    digest = fingerprint._digest_circuit

    def counted(circuit: QuantumCircuit, *args: Any, **kwargs: Any) -> str:
        digested.append(circuit)
        return digest(circuit, *args, **kwargs)

    monkeypatch.setattr(fingerprint, "_digest_circuit", counted)
    for _ in range(3):
        circuit_fingerprint(standard)
        circuit_fingerprint(custom)  # a custom gate's equality has a tolerance: digested each time
    assert digested.count(standard) == 1
    assert digested.count(custom) == 3


def test_a_remembered_fingerprint_serves_only_the_circuit_it_was_digested_from() -> None:
    """The cache is keyed by id(), which a new circuit may reuse: an equal circuit at another
    identity is never served another circuit's entry."""
    first = _standard_circuit()
    second = first.copy()  # equal data, the same parameter objects
    assert second._data == first._data
    known = fingerprint._Known(first, first._data, circuit_fingerprint(first))
    assert known.describes(first, first._data)
    assert not known.describes(second, second._data)


def test_a_collected_circuit_leaves_no_copy_behind() -> None:
    """The copy of a circuit's data is held while the circuit lives: once it is collected, the
    next lookup drops its entry."""
    circuit, other = _standard_circuit(), _bell()
    key = id(circuit)
    circuit_fingerprint(circuit)
    assert fingerprint._KNOWN.get(key) is not None
    del circuit
    gc.collect()
    circuit_fingerprint(other)
    assert fingerprint._KNOWN.get(key) is None


@pytest.mark.asyncio
async def test_a_circuit_changed_between_two_jobs_gives_the_second_job_its_own_value() -> None:
    """Tiny jobs run inline with the session's cache: the same circuit object, changed in place
    (a gate replaced, same length; a gate appended; a parameter value bound in place), must be
    simulated as it is at each job."""
    circuit = QuantumCircuit(1)
    circuit.h(0)
    observable = SparsePauliOp("Z")
    async with Session(service=LocalService()):
        estimator = Estimator()
        first = await estimator.run([(circuit, observable)])
        circuit.data[0] = circuit.data[0].replace(operation=QuantumCircuit(1).x(0)[0].operation)
        second = await estimator.run([(circuit, observable)])
        circuit.x(0)
        third = await estimator.run([(circuit, observable)])
        circuit.ry(0.5, 0)
        fourth = await estimator.run([(circuit, observable)])
        circuit.data[-1] = circuit.data[-1].replace(params=[1.5])
        fifth = await estimator.run([(circuit, observable)])
    assert float(first[0].data.evs) == pytest.approx(0.0, abs=1e-12)
    assert float(second[0].data.evs) == pytest.approx(-1.0, abs=1e-12)
    assert float(third[0].data.evs) == pytest.approx(1.0, abs=1e-12)
    assert float(fourth[0].data.evs) == pytest.approx(math.cos(0.5), abs=1e-12)
    assert float(fifth[0].data.evs) == pytest.approx(math.cos(1.5), abs=1e-12)


@pytest.mark.asyncio
async def test_a_sampler_circuit_whose_measurement_moves_between_jobs_samples_the_new_one() -> None:
    circuit = QuantumCircuit(2, 2)
    circuit.x(0)
    circuit.measure(0, 0)
    async with Session(service=LocalService()):
        sampler = Sampler()
        first = (await sampler.run([circuit], shots=20))[0].data.c.get_counts()
        circuit.data[1] = circuit.data[1].replace(clbits=(circuit.clbits[1],))
        second = (await sampler.run([circuit], shots=20))[0].data.c.get_counts()
    assert first == {"01": 20}
    assert second == {"10": 20}
