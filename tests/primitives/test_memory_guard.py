"""Circuits too wide for this machine are refused before anything is allocated."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import aqrt.backends.local.runner as local
from aqrt import CircuitTooLargeError, Estimator, LocalService, Session
from aqrt.backends.local.memory import qubits_that_fit, total_memory


@pytest.mark.asyncio
async def test_a_circuit_needing_more_than_available_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "available_memory", lambda: 100 << 20)  # pretend 100 MiB are free
    wide = QuantumCircuit(23)  # 2**23 amplitudes * 32 B = 256 MiB at peak on the numba engine
    wide.ry(0.3, range(23))  # not Clifford: a Clifford circuit this wide runs on stim
    async with Session(service=LocalService()) as session:
        with pytest.raises(CircuitTooLargeError, match=r"23-qubit state needs 256\.0 MiB.*100\.0 MiB") as info:
            Estimator().run([(wide, SparsePauliOp("Z" * 23))])
        assert isinstance(info.value, MemoryError)
        assert session.statistics()["total"] == 0
        small = QuantumCircuit(2)
        small.h(0)
        assert float((await Estimator().run([(small, SparsePauliOp("ZZ"))]))[0].data.evs) == pytest.approx(0.0)


def test_the_default_width_limit_follows_total_memory() -> None:
    assert qubits_that_fit(24 << 30, 32) == 29
    assert qubits_that_fit((24 << 30) - 1, 48) == 28
    assert LocalService().backend().num_qubits == qubits_that_fit(total_memory(), 32)
