"""complex64 states: half the memory, single-precision accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt import Estimator, LocalService, Sampler, Session


@pytest.mark.asyncio
@pytest.mark.parametrize("width", [4, 18])
async def test_complex64_engine_is_accurate_to_single_precision(width: int) -> None:
    circuit = random_circuit(width, 6, seed=width, max_operands=2)
    observables = [SparsePauliOp("Z" * width), SparsePauliOp("X" * width), SparsePauliOp("I" * (width - 1) + "Y")]
    exact = [Statevector(circuit).expectation_value(o).real for o in observables]
    async with Session(service=LocalService(dtype="complex64")):
        result = await Estimator().run([(circuit, observables)])
    assert result.metadata["dtype"] == "complex64"
    np.testing.assert_allclose(result[0].data.evs, exact, atol=1e-5)
    assert result[0].data.evs.dtype == np.float64


@pytest.mark.asyncio
async def test_complex64_sampler_matches_complex128_bits_on_a_deterministic_circuit() -> None:
    circuit = random_circuit(3, 3, seed=1, max_operands=1).copy()
    circuit.x(0)
    circuit.measure_all()
    async with Session(service=LocalService(dtype="complex64")):
        single = await Sampler(options={"seed": 5}).run([circuit], shots=300)
    async with Session(service=LocalService()):
        double = await Sampler(options={"seed": 5}).run([circuit], shots=300)
    single_counts = single[0].data.meas.get_counts()
    double_counts = double[0].data.meas.get_counts()
    assert set(single_counts) == set(double_counts)
    assert sum(single_counts.values()) == 300


def test_complex64_halves_the_memory_estimate_and_needs_the_numba_engine() -> None:
    double = LocalService().backend()
    single = LocalService(dtype="complex64").backend()
    assert single.num_qubits == double.num_qubits + 1
    with pytest.raises(ValueError, match="complex64"):
        LocalService(engine="reference", dtype="complex64")
    with pytest.raises(ValueError, match="dtype"):
        LocalService(dtype="float32")
