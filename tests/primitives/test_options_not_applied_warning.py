"""An option a backend accepts but cannot honour is never silent: every result lists it in
``metadata["options_not_applied"]``, and reading the first such result warns, once per backend
and option path (``OptionsNotAppliedWarning``)."""

from __future__ import annotations

import warnings

import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

import aqrt.job
from aqrt import Estimator, OptionsNotAppliedWarning, Sampler

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aqrt.job, "_warned_options", set())


def _plus() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.h(0)
    return circuit


async def test_resilience_on_a_noiseless_backend_warns_once() -> None:
    estimator = Estimator(options={"resilience_level": 2})
    with pytest.warns(OptionsNotAppliedWarning, match="resilience_level: requested 2, applied 0") as caught:
        result = await estimator.run([(_plus(), SparsePauliOp("X"))])
    assert len(caught) == 1
    assert "resilience_level" in result.metadata["options_not_applied"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second job, the same option: no warning
        again = await estimator.run([(_plus(), SparsePauliOp("X"))])
    assert "resilience_level" in again.metadata["options_not_applied"]


async def test_a_new_option_warns_again_and_points_at_the_caller() -> None:
    sampler = Sampler()
    sampler.options.twirling.enable_gates = True
    circuit = _plus()
    circuit.measure_all()
    with pytest.warns(OptionsNotAppliedWarning, match="twirling.enable_gates") as caught:
        await sampler.run([circuit])
    assert caught[0].filename == __file__
    sampler.options.dynamical_decoupling.enable = True
    with pytest.warns(OptionsNotAppliedWarning, match="dynamical_decoupling.enable") as caught:
        await sampler.run([circuit])
    assert "twirling" not in str(caught[0].message)  # already said


async def test_honoured_options_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = await Estimator(options={"resilience_level": 0, "seed": 3}).run([(_plus(), SparsePauliOp("X"))])
    assert "options_not_applied" not in result.metadata
