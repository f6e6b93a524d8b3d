"""Which path one binding of a state below ``WIDE_QUBITS`` takes: the serial kernels up to
``ONE_BINDING_WIDE_QUBITS`` qubits, the wide path (cache-blocked, parallel over amplitudes)
from there on; the same values and probabilities either way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import SparsePauliOp, Statevector, random_unitary

from aqrt.engine import lower_circuit, simulate, warmup
from aqrt.engine.observables import build_term_table

from ..sweeps import ansatz

ATOL = 1e-10


@pytest.mark.parametrize("n", [simulate.ONE_BINDING_WIDE_QUBITS - 1, simulate.ONE_BINDING_WIDE_QUBITS, 15])
def test_one_binding_runs_cache_blocked_from_its_width_on(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single binding below WIDE_QUBITS runs serially up to ONE_BINDING_WIDE_QUBITS and on the
    wide path (cache-blocked, parallel over amplitudes) from there on: the same values and
    probabilities as the serial kernels and Qiskit; several bindings still take the sweep."""
    warmup("complex128", ["small", "wide", "sweep"])
    rng = np.random.default_rng(n)
    circuit = ansatz(n, 1)
    circuit.append(UnitaryGate(random_unitary(4, seed=n)), [0, n - 1])
    values = rng.uniform(0, 2 * np.pi, (3, 2 * n))
    observable = SparsePauliOp(["Z" * n, "X" + "I" * (n - 2) + "Y", "I" * (n - 1) + "X"], coeffs=[1.0, 0.5, -2.0])
    table = build_term_table([dict(zip(observable.paulis.to_labels(), observable.coeffs, strict=True))], n)
    wide_runs: list[int] = []
    real_run_wide = simulate._run_wide

    def counting_run_wide(*args: Any, **kwargs: Any) -> None:
        wide_runs.append(n)
        real_run_wide(*args, **kwargs)

    monkeypatch.setattr(simulate, "_run_wide", counting_run_wide)
    lowered = lower_circuit(circuit)
    one = lowered.bind(values[:1])
    values_one = table.combine(simulate.term_values(one, table.x_masks, table.z_masks))
    probabilities = simulate.probabilities(one, 0, 1)
    assert len(wide_runs) == (2 if n >= simulate.ONE_BINDING_WIDE_QUBITS else 0)
    serial = table.combine(simulate.run_serial(one, table.x_masks, table.z_masks))
    np.testing.assert_allclose(values_one, serial, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probabilities, simulate.serial_probabilities(one, 0, 1), rtol=0, atol=1e-14)
    state = Statevector(circuit.assign_parameters(values[0]))
    assert values_one[0, 0] == pytest.approx(float(state.expectation_value(observable).real), abs=ATOL)
    np.testing.assert_allclose(probabilities[0], state.probabilities(), rtol=0, atol=1e-12)
    wide_runs.clear()
    several = table.combine(simulate.term_values(lowered.bind(values), table.x_masks, table.z_masks))
    assert wide_runs == []  # a sweep: the sweep kernels, parallel over bindings
    np.testing.assert_allclose(several[:1], values_one, rtol=0, atol=1e-12)
