"""Where a job runs: only tiny jobs run on the event loop, and shots count (a million shots of a
2-qubit circuit is tens of milliseconds of sampling, which would freeze the loop)."""

from __future__ import annotations

import asyncio

import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt import LocalService, Sampler
from aqrt._concurrency import CancelFlag
from aqrt.backends.base import NOT_INLINE, ExecutionContext
from aqrt.backends.local.cost import BINDING_COST, INLINE_BUDGET, SHOT_COST, inline_cost, pub_cost
from aqrt.engine import warmup
from aqrt.job import JobRequest
from aqrt.options import Options

from ..sweeps import ansatz, grid


def _bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def test_shots_count_in_a_sampler_pub_cost() -> None:
    few = SamplerPub.coerce(_bell(), shots=100)
    many = SamplerPub.coerce(_bell(), shots=1_000_000)
    assert pub_cost(few) <= INLINE_BUDGET < pub_cost(many)
    assert pub_cost(many) - pub_cost(few) == (1_000_000 - 100) * SHOT_COST


@pytest.mark.asyncio
async def test_many_shots_do_not_block_the_loop() -> None:
    sampler = Sampler()
    await sampler.run([_bell()], shots=100)  # compiled and warm: small jobs would run inline now
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    job = sampler.run([_bell()], shots=4_000_000)
    while not job.done():
        before = loop.time()
        await asyncio.sleep(0.005)
        lags.append(loop.time() - before - 0.005)
    result = await job
    assert result[0].data.meas.num_shots == 4_000_000
    assert lags, "the job finished before the loop ran again: it ran inline"
    assert max(lags) < 0.25  # what the other responsiveness tests allow (GIL hand-offs)


def test_a_half_imported_engine_is_not_warm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop asks whether the engine is warm while the worker may still be importing it: a
    module in sys.modules without its functions yet is "not warm", never an AttributeError."""
    import sys
    import types

    from aqrt.backends.local.warmup import engine_is_warm

    monkeypatch.setitem(sys.modules, "aqrt.engine._warmup", types.ModuleType("aqrt.engine._warmup"))
    assert engine_is_warm() is False


def test_a_variational_loop_job_runs_inline_and_a_sweep_of_it_does_not() -> None:
    """One binding of an 8-qubit, 4-layer ansatz (a variational loop's job: ~0.4 ms inline, a
    trip to the worker adds 0.4-0.5 ms) runs on the loop once the kernels are loaded, with the
    exact value; 50 bindings of it go to the worker (serially each binding costs its own kernel
    calls, where the worker's sweep kernel runs them together); so does one binding of a
    14-qubit, 4-layer ansatz (~2 ms: it would hold the loop too long)."""
    warmup("complex128", ["small"])
    backend = LocalService().backend()
    context = ExecutionContext({}, CancelFlag())
    circuit = ansatz(8, 4)
    observable = SparsePauliOp.from_sparse_list([("ZZ", [q, q + 1], 1.0) for q in range(7)], num_qubits=8)
    values = grid(50, circuit.num_parameters)
    one = EstimatorPub.coerce((circuit, observable, values[0]))
    many = EstimatorPub.coerce((circuit, observable, values))
    wide_circuit = ansatz(14, 4)
    wide = EstimatorPub.coerce((wide_circuit, "Z" * 14, grid(1, wide_circuit.num_parameters)[0]))
    assert inline_cost([one]) == pub_cost(one) + BINDING_COST <= INLINE_BUDGET
    assert inline_cost([many]) > INLINE_BUDGET and inline_cost([wide]) > INLINE_BUDGET

    def request(pub: EstimatorPub) -> JobRequest:
        return JobRequest("job", "estimator", [pub], Options(), None)

    result = backend.run_inline(request(one), context)
    assert result is not NOT_INLINE
    exact = Statevector(circuit.assign_parameters(values[0])).expectation_value(observable).real
    assert float(result[0].data.evs) == pytest.approx(exact, abs=1e-12)
    assert backend.run_inline(request(many), context) is NOT_INLINE
    assert backend.run_inline(request(wide), context) is NOT_INLINE
