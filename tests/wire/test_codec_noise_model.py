"""An Aer NoiseModel in the options travels as qiskit-ibm-runtime writes it (its serializable
dict, tagged ``NoiseModel``), and the server reads it back without qiskit-aer."""

from __future__ import annotations

import json

import numpy as np
from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, thermal_relaxation_error

from aqrt.backends.local.noise_models import as_noise_model
from aqrt.wire import decode, encode


def _model() -> NoiseModel:
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.01, 2), ["cx"])
    model.add_quantum_error(thermal_relaxation_error(50e3, 40e3, 100), ["sx"], [1])
    model.add_all_qubit_readout_error(ReadoutError([[0.97, 0.03], [0.06, 0.94]]))
    return model


def test_an_aer_noise_model_round_trips_through_the_wire() -> None:
    model = _model()
    text = encode({"simulator": {"noise_model": model}})
    tagged = json.loads(text)["simulator"]["noise_model"]
    assert tagged["__type__"] == "NoiseModel" and "errors" in tagged["__value__"]
    received = as_noise_model(decode(text)["simulator"]["noise_model"])
    direct = as_noise_model(model)
    assert received.noise_instructions == direct.noise_instructions
    for instruction, qubits in (("cx", (0, 1)), ("sx", (1,))):
        ours, theirs = received.quantum_error(instruction, qubits), direct.quantum_error(instruction, qubits)
        assert ours is not None and theirs is not None
        assert np.allclose(ours.superoperator(), theirs.superoperator(), atol=1e-12)
    assert np.allclose(received.readout_error(0), [[0.97, 0.03], [0.06, 0.94]])
