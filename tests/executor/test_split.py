"""Items whose circuits fall into independent groups of qubits run group by group, with the same
outcome distribution as the whole circuit (and the device's noise on the same qubits)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from scipy.stats import chi2

import aqrt.backends.local.executor_program as executor_program
from aqrt.backends.local.device import DeviceBackend
from aqrt.backends.local.executor_program import run_quantum_program
from aqrt.backends.local.executor_split import split_circuit


def product_circuit() -> QuantumCircuit:
    """Manila ISA: a Bell pair on qubits 0-1, a rotation on 2, an x on 3 and a rotation on 4, each
    measured (qubit 4 into clbit 0, the others into clbit index + 1)."""
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(5, 5)
    circuit.rz(np.pi / 2, 0)
    circuit.sx(0)
    circuit.rz(np.pi / 2, 0)
    circuit.cx(0, 1)
    circuit.sx(2)
    circuit.rz(a, 2)
    circuit.sx(2)
    circuit.x(3)
    circuit.sx(4)
    circuit.rz(b, 4)
    circuit.sx(4)
    circuit.barrier()
    circuit.measure([0, 1, 2, 3], [1, 2, 3, 4])
    circuit.measure(4, 0)
    return circuit


def test_the_circuit_falls_into_its_independent_groups() -> None:
    circuit = product_circuit()
    parts = split_circuit(circuit, max_part_qubits=2)
    assert parts is not None
    assert sorted(part.qubits for part in parts) == [(0, 1), (2, 3), (4,)]
    for part in parts:
        assert part.circuit.num_qubits == 5 and part.circuit.num_clbits == 5  # device qubits, clbit positions kept
        names = [circuit.parameters[column].name for column in part.parameter_columns]
        assert names == [parameter.name for parameter in part.circuit.parameters]
    assert sum(len(part.circuit.data) for part in parts) == len(circuit.data) - 1  # all but the barrier
    assert split_circuit(circuit, max_part_qubits=5) is None  # it fits whole


def test_circuits_that_cannot_be_cut_stay_whole() -> None:
    entangled = QuantumCircuit(4, 4)
    entangled.cx(0, 1)
    entangled.cx(2, 3)
    entangled.measure([0, 2], [0, 0])  # one clbit written by both groups joins them
    entangled.measure([1, 3], [1, 3])
    assert split_circuit(entangled, max_part_qubits=2) is None
    feedforward = QuantumCircuit(4, 2)
    feedforward.measure(0, 0)
    with feedforward.if_test((feedforward.clbits[0], 1)):
        feedforward.x(3)
    feedforward.x(2)
    assert split_circuit(feedforward, max_part_qubits=1) is None


def counts(bits: np.ndarray) -> dict[int, int]:
    values = bits.astype(np.int64) @ (1 << np.arange(bits.shape[-1]))
    unique, number = np.unique(values, return_counts=True)
    return dict(zip(unique.tolist(), number.tolist(), strict=True))


def chi_square(first: dict[int, int], second: dict[int, int]) -> tuple[float, int]:
    outcomes = sorted(set(first) | set(second))
    rows = np.array([[first.get(o, 0), second.get(o, 0)] for o in outcomes], dtype=float)
    small = rows.sum(axis=1) < 10
    rows = np.vstack([rows[~small], rows[small].sum(axis=0, keepdims=True)]) if small.any() else rows
    rows = rows[rows.sum(axis=1) > 0]
    expected = rows.sum(axis=1, keepdims=True) * rows.sum(axis=0, keepdims=True) / rows.sum()
    return float(((rows - expected) ** 2 / expected).sum()), len(rows) - 1


@pytest.mark.parametrize("noisy", [False, True], ids=["exact", "noisy"])
def test_parts_sample_what_the_whole_samples(
    monkeypatch: pytest.MonkeyPatch, noisy_manila: DeviceBackend, exact_manila: DeviceBackend, noisy: bool
) -> None:
    backend = noisy_manila if noisy else exact_manila
    program = QuantumProgram(shots=5000)
    program.append_circuit_item(product_circuit(), circuit_arguments=np.array([[0.4, 2.0]]))  # a = 0.4, b = 2.0
    whole = run_quantum_program(program, backend, seed=1)[0]["c"][0]
    monkeypatch.setattr(executor_program, "MAX_PART_QUBITS", 2)
    cut = run_quantum_program(program, backend, seed=2)[0]["c"][0]
    assert whole.shape == cut.shape == (5000, 5)
    if not noisy:
        assert (cut[:, 1] == cut[:, 2]).all() and cut[:, 4].all()  # the Bell pair agrees, x reads 1
        # P(1) = cos^2(angle / 2) for sx rz(angle) sx
        for clbit, angle in ((3, 0.4), (0, 2.0)):
            assert abs(cut[:, clbit].mean() - np.cos(angle / 2) ** 2) < 5 * 0.5 / np.sqrt(5000)
    statistic, freedom = chi_square(counts(whole), counts(cut))
    assert statistic < chi2.ppf(0.999, freedom), (statistic, freedom)
