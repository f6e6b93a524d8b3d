"""Wide runs whose state is read and dropped reuse the last state of their size: a run never
sees what an earlier run (another circuit, a cancelled one) left in it."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from aqrt.engine import lower_circuit, simulate
from aqrt.engine.simulate import EngineCancelled

N = simulate.WIDE_QUBITS  # the wide path: one binding at a time, cache-blocked


def _circuit(seed: int) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(N)
    for _ in range(2):
        for q in range(N):
            circuit.ry(rng.uniform(0, np.pi), q)
        for q in range(N - 1):
            circuit.cx(q, q + 1)
    return circuit


class _CancelAfter:
    """A cancel flag that is set from its ``calls``-th check on (mid-run)."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    def is_set(self) -> bool:
        self.calls -= 1
        return self.calls < 0


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["complex128", "complex64"])
def test_values_and_probabilities_do_not_depend_on_earlier_runs(dtype: type) -> None:
    tolerance = 1e-10 if dtype is np.complex128 else 1e-4
    x = np.array([0, 3, 0], dtype=np.int64)
    z = np.array([1, 0, (1 << N) - 1], dtype=np.int64)
    programs = [lower_circuit(_circuit(seed)).bind(np.zeros((1, 0)), dtype=dtype) for seed in (1, 2)]
    expected = []
    for seed in (1, 2):
        psi = Statevector(_circuit(seed)).data
        indices = np.arange(1 << N)
        signs = [(-1.0) ** np.array([bin(int(i) & int(mask)).count("1") for i in indices]) for mask in z]
        values = [np.vdot(psi[indices ^ int(flip)], signs[t] * psi) for t, flip in enumerate(x)]
        expected.append((np.array(values), np.abs(psi) ** 2))
    with pytest.raises(EngineCancelled):  # leaves a half-run state behind for the next run to reuse
        simulate.term_values(programs[0], x, z, _CancelAfter(1))
    for _ in range(2):
        for program, (values, probabilities) in zip(programs, expected, strict=True):
            np.testing.assert_allclose(simulate.term_values(program, x, z)[0], values, atol=tolerance)
            np.testing.assert_allclose(simulate.probabilities(program, 0, 1)[0], probabilities, atol=tolerance)
    assert len(simulate._scratch_states) == 1  # one kept, of the last run's size


def test_a_state_over_the_limit_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulate, "SCRATCH_STATE_BYTES", 1 << 10)
    simulate._scratch_states.clear()
    program = lower_circuit(_circuit(3)).bind(np.zeros((1, 0)))
    simulate.probabilities(program, 0, 1)
    assert simulate._scratch_states == {}
