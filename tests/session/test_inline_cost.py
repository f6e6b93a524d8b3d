"""Where a job runs: only tiny jobs run on the event loop, and shots count (a million shots of a
2-qubit circuit is tens of milliseconds of sampling, which would freeze the loop)."""

from __future__ import annotations

import asyncio

import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers.sampler_pub import SamplerPub

from aqrt import Sampler
from aqrt.backends.local.cost import INLINE_BUDGET, SHOT_COST, pub_cost


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
