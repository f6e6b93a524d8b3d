"""Exact reference computations with ``qiskit.quantum_info.Statevector``.

This is the slow, obvious path behind ``LocalService(engine="reference")``, and the test
oracle of the numba engine. Bit order and result layout follow Qiskit's ``StatevectorEstimator`` /
``StatevectorSampler``: qubit 0 is the least significant bit; each classical register gets a
``BitArray`` whose last axis packs its bits big-endian (clbit 0 in the last byte's lowest bit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from qiskit.circuit import CONTROL_FLOW_OP_NAMES, ControlFlowOp, QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.primitives.containers import BitArray, DataBin, PubResult, SamplerPubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp, Statevector

from ..._concurrency import CancelFlag
from ...errors import JobCancelledError

__all__ = ["estimate_pub", "final_measurements", "opaque_instruction", "sample_pub", "unsupported_instruction"]

_NON_UNITARY = {"measure", "reset", "initialize", "save_statevector"} | set(CONTROL_FLOW_OP_NAMES)
_TRANSPARENT = {"barrier", "delay"}


def unsupported_instruction(
    circuit: QuantumCircuit, *, allow_final_measurements: bool, counts: Mapping[str, int] | None = None
) -> str | None:
    """Describe the first instruction the statevector path cannot run exactly, or None.

    ``counts``: the circuit's ``count_ops()``, if the caller has it (a PUB's check asks this and
    :func:`opaque_instruction` of the same circuit, one after the other: one count serves both).
    """
    if counts is None:
        counts = circuit.count_ops()
    if _NON_UNITARY.isdisjoint(counts):  # the common case, without a Python pass
        return None
    final = final_measurements(circuit)[1] if allow_final_measurements else set()
    if final and len(final) == counts.get("measure") and _NON_UNITARY.isdisjoint(counts.keys() - {"measure"}):
        return None  # a Sampler's common case: every non-unitary instruction is a final measurement
    for position, instruction in enumerate(circuit.data):
        name = instruction.name  # without building the operation's Python object
        if position in final:
            continue
        if name in _NON_UNITARY:
            qubits = [circuit.find_bit(q).index for q in instruction.qubits]
            kind = "a mid-circuit measurement" if name == "measure" and allow_final_measurements else repr(name)
            return f"instruction {position} ({name} on qubit(s) {qubits}) is {kind}, which this backend cannot run"
    return None


_STANDARD_GATES = frozenset(get_standard_gate_name_mapping())
_CONTROL_FLOW = frozenset(CONTROL_FLOW_OP_NAMES)
_NOT_GATES = frozenset({"measure", "reset", "barrier", "delay", "store", "box"} | _CONTROL_FLOW)
_KNOWN = _STANDARD_GATES | _NOT_GATES


def opaque_instruction(circuit: QuantumCircuit, *, counts: Mapping[str, int] | None = None) -> str | None:
    """Describe the first instruction with neither a matrix nor a definition (no one can simulate it), or None.

    ``counts``: the circuit's ``count_ops()``, if the caller has it (see :func:`unsupported_instruction`).
    """
    if counts is None:
        counts = circuit.count_ops()
    blocks = not _CONTROL_FLOW.isdisjoint(counts)
    if not blocks and _KNOWN.issuperset(counts):  # the common case: standard gates, measurements
        return None
    unknown = set(counts) - _KNOWN
    for position, instruction in enumerate(circuit.data):
        if instruction.name not in unknown and instruction.name not in _CONTROL_FLOW:
            continue
        operation = instruction.operation
        if operation.name in unknown and not _simulable(operation, set()):
            qubits = [circuit.find_bit(q).index for q in instruction.qubits]
            return (
                f"instruction {position} ({operation.name} on qubit(s) {qubits}) is opaque: it has neither a "
                "matrix nor a definition"
            )
        for block in operation.blocks if isinstance(operation, ControlFlowOp) else ():
            problem = opaque_instruction(block)
            if problem is not None:
                return f"inside instruction {position} ({operation.name}): {problem}"
    return None


def _simulable(operation: Any, seen: set[str]) -> bool:
    try:
        operation.to_matrix()
        return True
    except Exception:  # gates without a matrix raise various errors here
        pass
    definition = operation.definition
    if definition is None or operation.name in seen:
        return definition is not None
    seen.add(operation.name)
    return all(inner.operation.name in _KNOWN or _simulable(inner.operation, seen) for inner in definition.data)


def final_measurements(circuit: QuantumCircuit) -> tuple[dict[int, int], set[int]]:
    """Map clbit index -> qubit index for terminal measurements, and their instruction positions.

    A measurement is terminal if nothing but barriers/delays touches its qubit or clbit after it.
    The walk goes backwards and stops once every qubit and clbit is touched (nothing earlier
    can be terminal), so a long circuit costs its tail.
    """
    busy_qubits: set[int] = set()
    busy_clbits: set[int] = set()
    mapping: dict[int, int] = {}
    positions: set[int] = set()
    data = circuit.data
    find_bit = circuit.find_bit
    num_qubits, num_clbits = circuit.num_qubits, circuit.num_clbits
    for position in range(len(data) - 1, -1, -1):
        if len(busy_qubits) == num_qubits and len(busy_clbits) == num_clbits:
            break
        instruction = data[position]
        name = instruction.name
        if name in _TRANSPARENT:
            continue
        if name == "measure":
            qubit = find_bit(instruction.qubits[0]).index
            clbit = find_bit(instruction.clbits[0]).index
            if qubit not in busy_qubits and clbit not in busy_clbits:
                mapping[clbit] = qubit
                positions.add(position)
                # A terminal measurement leaves its qubit free for an earlier terminal measurement
                # (as StatevectorSampler: measuring twice in a row gives the same outcome).
                busy_clbits.add(clbit)
                continue
            busy_qubits.add(qubit)
            busy_clbits.add(clbit)
            continue
        for bit in instruction.qubits:
            busy_qubits.add(find_bit(bit).index)
        for bit in instruction.clbits:
            busy_clbits.add(find_bit(bit).index)
    return mapping, positions


def _flat_bindings(pub: Any, names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Parameter values as a (num_bindings, num_parameters) array, and the parameter names
    (``names``: the circuit's, in its order, when the caller knows them already)."""
    if names is None:
        names = [p.name for p in pub.circuit.parameters]
    bindings = pub.parameter_values
    size = math.prod(bindings.shape)
    if not names:
        return np.zeros((size, 0)), []
    arrays = bindings.data
    if len(arrays) == 1 and list(next(iter(arrays))) == names:  # one array in the circuit's order
        # Read in place, through a read-only view (as_array places columns one by one, and a copy
        # of 1000 x 64 values cost ~50 us a job): nothing downstream may write the caller's values.
        values = np.asarray(next(iter(arrays.values())), dtype=np.float64).view()
        values.flags.writeable = False
    else:
        values = bindings.as_array(names)
    return values.reshape(size, len(names)), names


def _bind(circuit: QuantumCircuit, names: list[str], values: np.ndarray) -> QuantumCircuit:
    if not names:
        return circuit
    return circuit.assign_parameters(dict(zip(names, values.tolist(), strict=True)), inplace=False, strict=False)


def _check_cancel(cancel_requested: CancelFlag | None) -> None:
    if cancel_requested is not None and cancel_requested.is_set():
        raise JobCancelledError("cancelled")


def estimate_pub(
    circuit: QuantumCircuit,
    pub: EstimatorPub,
    rng: np.random.Generator | None,
    cancel_requested: CancelFlag | None = None,
) -> PubResult:
    """Exact expectation values of one Estimator PUB, with Gaussian noise if it has a precision.

    ``circuit`` is the circuit to simulate (``pub.circuit`` or its transpiled form).
    """
    flat_values, names = _flat_bindings(pub)
    binding_shape = pub.parameter_values.shape
    shape = np.broadcast_shapes(binding_shape, pub.observables.shape)
    binding_index = np.broadcast_to(np.arange(int(np.prod(binding_shape))).reshape(binding_shape), shape)
    observable_index = np.broadcast_to(
        np.arange(int(np.prod(pub.observables.shape))).reshape(pub.observables.shape), shape
    )
    # The observables act on pub.circuit's qubits; a transpiled form may have permuted them.
    layout = circuit.layout if circuit is not pub.circuit else None
    states: dict[int, Statevector] = {}
    operators: dict[int, SparsePauliOp] = {}
    evs = np.zeros(shape, dtype=np.float64)
    for index in np.ndindex(*shape):
        b = int(binding_index[index])
        if b not in states:
            _check_cancel(cancel_requested)
            states[b] = Statevector(_bind(circuit, names, flat_values[b]))
        o = int(observable_index[index])
        if o not in operators:
            # From the SparseObservable, so projector terms (0 1 + - r l) expand into Paulis.
            position = tuple(int(i) for i in np.unravel_index(o, pub.observables.shape))
            operators[o] = SparsePauliOp.from_sparse_observable(pub.observables.slice(position))
            if not operators[o].paulis.size:
                operators[o] = SparsePauliOp("I" * circuit.num_qubits, 0.0)
            if layout is not None:
                operators[o] = operators[o].apply_layout(layout)
        evs[index] = np.real(states[b].expectation_value(operators[o]))
    precision = float(pub.precision or 0.0)
    if precision > 0:
        assert rng is not None  # a PUB with a precision always gets a generator
        evs = np.asarray(rng.normal(evs, precision), dtype=np.float64)  # stays an array for shape ()
    stds = np.full(shape, precision, dtype=np.float64)
    data = DataBin(evs=evs, stds=stds, shape=shape)
    return PubResult(data, metadata={"target_precision": precision, "circuit_metadata": pub.circuit.metadata})


def sample_pub(
    circuit: QuantumCircuit,
    pub: SamplerPub,
    rng: np.random.Generator,
    cancel_requested: CancelFlag | None = None,
) -> SamplerPubResult:
    """``pub.shots`` samples of every binding of one Sampler PUB, one BitArray per register."""
    mapping, positions = final_measurements(circuit)
    unitary = circuit.copy_empty_like()
    for position, instruction in enumerate(circuit.data):
        if position not in positions:
            unitary.append(instruction)
    measured = sorted(set(mapping.values()))
    column = {qubit: j for j, qubit in enumerate(measured)}
    flat_values, names = _flat_bindings(pub)
    shape = pub.parameter_values.shape
    shots = int(pub.shots)
    registers = []
    for creg in circuit.cregs:
        clbits = [circuit.find_bit(bit).index for bit in creg]
        registers.append((creg.name, [column.get(mapping[c], -1) if c in mapping else -1 for c in clbits]))
    arrays = {name: np.zeros((*shape, shots, (len(cols) + 7) // 8), dtype=np.uint8) for name, cols in registers}
    for flat, index in enumerate(np.ndindex(*shape)):
        _check_cancel(cancel_requested)
        if measured:
            state = Statevector(_bind(unitary, names, flat_values[flat]))
            probabilities = np.clip(state.probabilities(measured), 0.0, None)
            outcomes = rng.choice(len(probabilities), size=shots, p=probabilities / probabilities.sum())
        else:
            outcomes = np.zeros(shots, dtype=np.int64)
        for name, cols in registers:
            arrays[name][index] = _pack(outcomes, cols)
    meas = {name: BitArray(arrays[name], len(cols)) for name, cols in registers}
    return SamplerPubResult(
        DataBin(**meas, shape=shape),
        metadata={"shots": shots, "circuit_metadata": pub.circuit.metadata},
    )


def _pack(outcomes: np.ndarray, columns: list[int]) -> np.ndarray:
    """Pack outcome bits into Qiskit's BitArray bytes: clbit i <- bit ``columns[i]`` of the outcome.

    BitArray's bytes are big-endian: clbit i is bit ``i % 8`` of byte ``num_bytes - 1 - i // 8``.
    Each clbit is shifted into its byte directly (a bit matrix padded and packed with numpy cost
    ~0.2 ms for 1024 shots, most of a small Sampler job's time)."""
    num_bytes = (len(columns) + 7) // 8
    if len(columns) < 63 and columns == list(range(len(columns))):
        # clbit i <- bit i (measure_all's layout): the outcomes' low bits, as big-endian bytes
        # (a few numpy calls instead of five per clbit)
        low = (outcomes.astype(np.int64, copy=False) & ((1 << len(columns)) - 1)).astype(">u8")
        return np.ascontiguousarray(low.view(np.uint8).reshape(outcomes.shape[0], 8)[:, 8 - num_bytes :])
    packed = np.zeros((outcomes.shape[0], num_bytes), dtype=np.uint8)
    for clbit, col in enumerate(columns):
        if col >= 0:
            byte = packed[:, num_bytes - 1 - clbit // 8]
            byte |= (((outcomes >> col) & 1) << (clbit % 8)).astype(np.uint8)
    return packed
