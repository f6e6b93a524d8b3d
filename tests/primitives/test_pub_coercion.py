"""The commonest Estimator PUB, ``(circuit without parameters, observables)``, is built without
Qiskit's constructor (it costs half of a tiny job's ``run()``): it must be the PUB Qiskit's
``EstimatorPub.coerce`` makes, field for field, and valid by Qiskit's own check."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers import ObservablesArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

from aqrt.primitives import _pubs
from aqrt.primitives._pubs import coerce_estimator_pubs


def _bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


@pytest.mark.parametrize(
    "observables",
    [
        SparsePauliOp("ZZ"),
        SparsePauliOp(["XX", "YY", "ZI"], coeffs=[0.5, -1.0, 2.0]),
        ObservablesArray.coerce(["ZZ", "XX", "IZ"]),
        ObservablesArray.coerce([["ZZ", "XX"], ["YY", "II"]]),
    ],
    ids=["one-term", "three-terms", "shape-3", "shape-2x2"],
)
@pytest.mark.parametrize("precision", [0.0, 0.125])
def test_the_fast_pub_is_the_pub_qiskit_coerces(observables: object, precision: float) -> None:
    circuit = _bell()
    assert _pubs._PUB_STATE_KNOWN  # the fast path is the one taken on this Qiskit
    (fast,) = coerce_estimator_pubs([(circuit, observables)], precision)
    official = EstimatorPub.coerce((circuit, observables), precision)
    assert type(fast) is EstimatorPub
    fast.validate()  # Qiskit's own checks pass
    assert fast.circuit is circuit
    assert fast.shape == official.shape and type(fast.shape) is tuple
    assert fast.precision == official.precision and type(fast.precision) is float
    assert fast.parameter_values.shape == official.parameter_values.shape == ()
    assert fast.parameter_values.num_parameters == 0
    assert fast.observables.shape == official.observables.shape
    assert fast.observables.tolist() == official.observables.tolist()
    for index in np.ndindex(*fast.shape):
        assert fast.observables[index] == official.observables[index]


def test_a_pub_the_fast_path_cannot_take_gets_qiskit_s_constructor() -> None:
    circuit = _bell()
    wrong_width = SparsePauliOp("ZZZ")
    with pytest.raises(Exception, match="PUB 0"):
        coerce_estimator_pubs([(circuit, wrong_width)], 0.0)
    (pub,) = coerce_estimator_pubs([(circuit, "ZZ")], None)  # no precision: Qiskit's path
    assert pub.precision is None and pub.shape == ()
