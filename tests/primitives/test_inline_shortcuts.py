"""The inline path's shortcuts (#14): a short circuit of standard instructions is keyed by its
description rather than a digest of it, and an inline run takes the prepared circuits of the
check just before it only for that same request and cache."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Measure
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import SparsePauliOp

from aqrt import LocalService
from aqrt.backends.base import ExecutionContext
from aqrt.backends.local.fingerprint import TEXT_KEY_MAX, circuit_fingerprint
from aqrt.job import JobRequest, new_job_id
from aqrt.options import Options
from aqrt.primitives._pubs import coerce_estimator_pubs

_HEX_DIGEST = frozenset("0123456789abcdef")


def _is_digest(key: str) -> bool:
    return len(key) == 32 and set(key) <= _HEX_DIGEST


def test_a_short_standard_circuit_is_keyed_by_its_description() -> None:
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    key = circuit_fingerprint(bell)
    assert not _is_digest(key) and "|" in key and len(key) <= TEXT_KEY_MAX
    assert key == circuit_fingerprint(bell.copy())
    moved = QuantumCircuit(2)
    moved.h(1)
    moved.cx(1, 0)
    assert circuit_fingerprint(moved) != key


def test_a_long_standard_circuit_gets_the_digest_of_that_description() -> None:
    circuit = QuantumCircuit(4)
    for layer in range(40):
        circuit.rx(0.1 * layer, layer % 4)
        circuit.cx(layer % 4, (layer + 1) % 4)
    key = circuit_fingerprint(circuit)
    assert _is_digest(key)
    short = QuantumCircuit(4)
    short.rx(0.0, 0)
    description = circuit_fingerprint(short)
    assert not _is_digest(description)
    # The same text a short circuit is keyed by is what a long one's digest hashes.
    grown = short.copy()
    for _ in range(40):
        grown.rx(0.0, 0)
    text_of_grown = description.replace("rx:0.0,[0][]", "rx:0.0,[0][]" * 41)
    assert len(text_of_grown) > TEXT_KEY_MAX
    assert circuit_fingerprint(grown) == hashlib.blake2b(text_of_grown.encode(), digest_size=16).hexdigest()


@pytest.mark.parametrize(
    "operation",
    [UnitaryGate(np.array([[0, 1], [1, 0]])), Gate("h", 1, [])],
    ids=["unitary", "opaque named h"],
)
def test_a_short_circuit_with_a_non_standard_operation_is_still_digested(operation: Gate) -> None:
    circuit = QuantumCircuit(1)
    circuit.append(operation, [0])
    assert _is_digest(circuit_fingerprint(circuit))


class _OwnMeasure(Measure):
    """A custom instruction that shares Qiskit's measurement's name."""


def test_measurements_and_resets_are_described_like_standard_gates_but_a_lookalike_is_not() -> None:
    measured = QuantumCircuit(2, 2)
    measured.h(0)
    measured.reset(1)
    measured.measure([0, 1], [0, 1])
    key = circuit_fingerprint(measured)
    assert not _is_digest(key) and "measure" in key and "reset" in key  # Qiskit's singletons
    lookalike = QuantumCircuit(2, 2)
    lookalike.h(0)
    lookalike.reset(1)
    lookalike.measure(0, 0)
    lookalike.append(_OwnMeasure(), [1], [1])
    assert _is_digest(circuit_fingerprint(lookalike))


def _request(circuit: QuantumCircuit) -> JobRequest:
    pubs = tuple(coerce_estimator_pubs([(circuit, SparsePauliOp("Z"))], 0.0))
    return JobRequest._new(new_job_id(), "estimator", pubs, Options().snapshot(), None)


def test_an_inline_run_takes_the_check_s_prepared_circuits_only_for_its_own_cache() -> None:
    runner = LocalService().backend().runner
    circuit = QuantumCircuit(1)
    circuit.x(0)
    request = _request(circuit)
    checked: dict[object, object] = {}
    assert runner.statevector_only(request, checked)
    elsewhere: dict[object, object] = {}
    result = runner.run(request, ExecutionContext(elsewhere, threading.Event()), serial=True)
    assert float(result[0].data.evs) == -1.0
    assert any(isinstance(key, tuple) and key[0] == "prepared" for key in elsewhere)  # prepared there, not taken


def test_an_inline_run_of_another_request_prepares_its_own_circuit() -> None:
    runner = LocalService().backend().runner
    cache: dict[object, object] = {}
    flipped = QuantumCircuit(1)
    flipped.x(0)
    assert runner.statevector_only(_request(flipped), cache)
    plain = _request(QuantumCircuit(1))  # not the checked request: its circuit is its own
    result = runner.run(plain, ExecutionContext(cache, threading.Event()), serial=True)
    assert float(result[0].data.evs) == 1.0
