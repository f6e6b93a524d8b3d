"""Noisy PUBs: a noise model's channels in the prepared circuit, run exactly as a density matrix
(small widths) or as trajectories, read-out errors on the Sampler's bits and on the Estimator's
observables, and the Estimator's error mitigation on top.

Which simulation runs (named in each PUB's ``simulator_metadata``):

- ``"density_matrix"``: circuits of at most :data:`~aqrt.engine.density.DENSITY_MAX_QUBITS` active
  qubits whose measurements end the circuit. Exact: Estimator values are exact noisy expectation
  values (the PUB's precision then adds Gaussian noise of that size, as on the noiseless route);
  the Sampler draws its shots from the exact noisy distribution.
- ``"trajectories"``: wider Estimator circuits: the mean over Monte Carlo trajectories,
  ``ceil(1 / precision**2)`` of them (:data:`DEFAULT_TRAJECTORIES` when the precision is 0), with the
  standard error of the mean as ``stds``.
- ``"dynamic"``: wider Sampler circuits, and circuits with mid-circuit measurements, resets or
  control flow: the branching interpreter (:mod:`.dynamic`), where each shot is one exact
  trajectory and shots with one history share a state; its Estimator is Monte Carlo as above.

Read-out errors: the Sampler misreads measured bits (mid-circuit ones before control flow reads
them); the Estimator measures every qubit at the end, as hardware does, so each observable is
replaced by what a measurement with those read-out errors reports
(:func:`~.noise_models.readout_observable`), and the device's errors on ``measure`` (relaxation
during read-out) act before it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import ClassicalRegister, QuantumCircuit
from qiskit.primitives.containers import DataBin, PubResult
from qiskit.quantum_info import SparseObservable, SparsePauliOp

from ..._concurrency import CancelFlag
from ...noise import NoiseModel
from . import dynamic
from .engine_pubs import finish_estimate, finish_sample, sampler_setup
from .noise_models import apply_readout, noisy_circuit, readout_matrices, readout_observable
from .preparation import PreparedCircuit
from .reference import _flat_bindings, _pack
from .routes import STATEVECTOR

__all__ = [
    "DEFAULT_TRAJECTORIES",
    "DENSITY_MATRIX",
    "TRAJECTORIES",
    "NoisyEvaluator",
    "estimate_noisy_pub",
    "sample_noisy_pub",
    "trajectory_count",
]

DENSITY_MATRIX = "density_matrix"
TRAJECTORIES = "trajectories"
DYNAMIC = "dynamic"

#: Estimator trajectories for a PUB whose precision is 0: what IBM's default precision (1/64) costs in shots.
DEFAULT_TRAJECTORIES = 4096
_MAX_TRAJECTORIES = 1 << 22


def trajectory_count(precision: float) -> int:
    """Trajectories for a target standard error ``precision`` (an observable of norm 1 needs at most
    ``1 / precision**2``); :data:`DEFAULT_TRAJECTORIES` for 0."""
    if precision <= 0:
        return DEFAULT_TRAJECTORIES
    return max(2, min(_MAX_TRAJECTORIES, math.ceil(1.0 / precision**2)))  # two, for a standard error


def _density_max_qubits() -> int:
    from ...engine.density import DENSITY_MAX_QUBITS

    return int(DENSITY_MAX_QUBITS)


def _without_clbits(circuit: QuantumCircuit) -> bool:
    return circuit.num_clbits == 0 and not circuit.num_vars


@dataclasses.dataclass
class NoisyEvaluator:
    """Noisy expectation values of circuits on one PUB's qubits: what the mitigation calls.

    ``circuit`` is on the prepared circuit's qubits (circuit qubit ``i`` is device qubit
    ``physical[i]``); ``readout_twirl_signs`` is the measurement twirl's mean sign per qubit
    (None: no twirling). Returns (bindings, observables) values and their standard errors.
    """

    model: NoiseModel
    physical: tuple[int, ...]
    dtype: Any
    cancel: CancelFlag | None
    rng: np.random.Generator
    trajectories: int
    method: str = ""  # the simulation the last call ran

    def __call__(
        self,
        circuit: QuantumCircuit,
        observables: Sequence[SparsePauliOp | SparseObservable],
        values: np.ndarray,
        names: Sequence[str],
        readout_twirl_signs: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from ...engine import lower_circuit
        from ...engine.observables import build_term_table_sparse

        matrices = readout_matrices(self.model, self.physical)
        measured = [
            _as_sparse(readout_observable(observable, matrices, readout_twirl_signs)) for observable in observables
        ]
        if not _without_clbits(circuit) or dynamic.needs_branching(circuit):
            noisy = noisy_circuit(circuit, self.model, self.physical)
            self.method = DYNAMIC
            return dynamic.noisy_expectation_values(
                noisy,
                values,
                list(names),
                measured,
                self.trajectories,
                self.rng,
                self.cancel,
                dtype=self.dtype,
                readout=matrices,
            )
        noisy = _measured_at_the_end(circuit, self.model, self.physical)
        table = build_term_table_sparse(measured)
        lowered = lower_circuit(noisy, list(names))
        if circuit.num_qubits <= _density_max_qubits():
            from ...engine.density import density_term_values

            self.method = DENSITY_MATRIX
            term_values = density_term_values(
                lowered, values, table.x_masks, table.z_masks, dtype=self.dtype, cancel=self.cancel
            )
            means = table.combine(term_values)
            return means, np.zeros_like(means)
        from ...engine.trajectories import trajectory_term_values

        self.method = TRAJECTORIES
        means, errors = trajectory_term_values(
            lowered,
            values,
            table.x_masks,
            table.z_masks,
            self.trajectories,
            self.rng,
            dtype=self.dtype,
            cancel=self.cancel,
            weights=table.weights,  # per observable, from each trajectory's value: correlations included
        )
        return np.real(means), errors


def _as_sparse(observable: SparsePauliOp | SparseObservable) -> SparseObservable:
    if isinstance(observable, SparseObservable):
        return observable
    return SparseObservable.from_sparse_pauli_op(observable)


def _measured_at_the_end(circuit: QuantumCircuit, model: NoiseModel, physical: Sequence[int]) -> QuantumCircuit:
    """``circuit`` with the model's channels, including those a final measurement of every qubit
    brings (they act before the read-out), and without the measurements themselves."""
    measured = circuit.copy()
    register = ClassicalRegister(circuit.num_qubits, "aqrt_readout")
    measured.add_register(register)
    for qubit in range(circuit.num_qubits):
        measured.measure(qubit, register[qubit])
    noisy = noisy_circuit(measured, model, physical)
    out = QuantumCircuit(noisy.num_qubits, global_phase=noisy.global_phase)
    for instruction in noisy.data:
        if instruction.operation.name == "measure":
            continue
        out.append(instruction.operation, [noisy.find_bit(q).index for q in instruction.qubits], [], copy=False)
    return out


def estimate_noisy_pub(
    prepared: PreparedCircuit,
    pub: Any,
    rng: np.random.Generator | None,
    cancel: CancelFlag | None,
    model: NoiseModel,
    dtype: Any,
    mitigate: Callable[[NoisyEvaluator, np.ndarray, list[str], list[SparseObservable], float], Any] | None = None,
) -> PubResult:
    """One Estimator PUB with noise (and, when ``mitigate`` is given, error mitigation)."""
    values, names = _flat_bindings(pub)
    observables = prepared.pub_observables(pub)
    precision = float(pub.precision or 0.0)
    generator = rng if rng is not None else np.random.default_rng()
    evaluator = NoisyEvaluator(
        model, tuple(prepared.active), np.dtype(dtype), cancel, generator, trajectory_count(precision)
    )
    if mitigate is not None:
        mitigated = mitigate(evaluator, values, names, observables, precision)
        result = _broadcast_result(pub, mitigated.evs, mitigated.stds, mitigated.data, precision)
        result.metadata.update(mitigated.metadata)  # per value: the extrapolator ZNE chose
    else:
        means, errors = evaluator(prepared.circuit, observables, values, names)
        if evaluator.method == DENSITY_MATRIX:
            result = finish_estimate(pub, means, rng)
        else:  # Monte Carlo: the trajectories' own spread is the PUB's noise
            result = _broadcast_result(pub, means, errors, {}, precision)
    result.metadata["simulator_metadata"] = _simulator_metadata(prepared, evaluator)
    return result


def _simulator_metadata(prepared: PreparedCircuit, evaluator: NoisyEvaluator) -> dict[str, Any]:
    metadata = {**prepared.metadata(), "method": evaluator.method or DENSITY_MATRIX, "noise": True}
    if evaluator.method in (TRAJECTORIES, DYNAMIC):
        metadata["trajectories"] = evaluator.trajectories
    return metadata


def _broadcast_result(
    pub: Any, evs: np.ndarray, stds: np.ndarray, extra: dict[str, np.ndarray], precision: float
) -> PubResult:
    """A PUB result from (bindings, observables) arrays (and extras with those leading axes)."""
    binding_shape = pub.parameter_values.shape
    observable_shape = pub.observables.shape
    shape = np.broadcast_shapes(binding_shape, observable_shape)
    binding_index = np.broadcast_to(np.arange(int(np.prod(binding_shape))).reshape(binding_shape), shape)
    observable_index = np.broadcast_to(np.arange(int(np.prod(observable_shape))).reshape(observable_shape), shape)
    fields = {
        "evs": np.asarray(evs[binding_index, observable_index], dtype=np.float64),
        "stds": np.asarray(stds[binding_index, observable_index], dtype=np.float64),
    }
    for name, array in extra.items():
        fields[name] = np.asarray(array)[binding_index, observable_index]
    return PubResult(
        DataBin(**fields, shape=shape),
        metadata={"target_precision": precision, "circuit_metadata": pub.circuit.metadata},
    )


def sample_noisy_pub(
    prepared: PreparedCircuit,
    pub: Any,
    rng: np.random.Generator,
    cancel: CancelFlag | None,
    model: NoiseModel,
    dtype: Any,
    cache: dict[Any, Any],
    key: Any,
) -> Any:
    """One Sampler PUB with noise: shots from the exact noisy distribution (small widths) or one
    exact trajectory per shot (the branching interpreter); read-out errors misread the bits."""
    circuit = prepared.circuit
    physical = tuple(prepared.active)
    values, names = _flat_bindings(pub)
    shots = int(pub.shots)
    matrices = readout_matrices(model, physical)
    noisy = cache.get(("noisy", key, id(model)))
    if noisy is None or noisy[0] is not model:
        noisy = cache[("noisy", key, id(model))] = (model, noisy_circuit(circuit, model, physical))
    noisy_circ = noisy[1]
    registers = prepared.registers()
    if prepared.method == STATEVECTOR and circuit.num_qubits <= _density_max_qubits():
        from ...engine import lower_circuit
        from ...engine.density import density_probabilities

        method = DENSITY_MATRIX
        _, unitary, measured = sampler_setup(noisy_circ, cache, ("noisy", key, id(model)))
        probabilities = density_probabilities(lower_circuit(unitary, names), values, dtype=dtype, cancel=cancel)
        measured_qubits = sorted({q for _, columns in measured for q in columns if q >= 0})
        arrays = {
            name: np.zeros((values.shape[0], shots, (len(columns) + 7) // 8), dtype=np.uint8)
            for name, columns in measured
        }
        for binding in range(values.shape[0]):
            cdf = np.cumsum(probabilities[binding])
            draws = rng.random(shots) * cdf[-1]
            outcomes = np.minimum(np.searchsorted(cdf, draws, side="right"), cdf.shape[0] - 1)
            outcomes = apply_readout(outcomes, measured_qubits, matrices, rng)
            for name, columns in measured:
                arrays[name][binding] = _pack(outcomes, columns)
        result = finish_sample(pub, arrays, measured)
    else:
        method = DYNAMIC
        arrays = dynamic.sample(noisy_circ, values, names, shots, rng, cancel, dtype=dtype, readout=matrices)
        result = finish_sample(pub, arrays, registers)
    result.metadata["simulator_metadata"] = {**prepared.metadata(), "method": method, "noise": True}
    return result
