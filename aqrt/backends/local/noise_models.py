"""Noise models on the local backend: channels placed in circuits, readout errors on bits and observables.

The local backend runs a noisy PUB in three steps this module serves:

1. :func:`noisy_circuit` puts a :class:`ChannelInstruction` wherever the :class:`~aqrt.noise.NoiseModel`
   says noise acts (where qiskit-aer applies it), on the prepared circuit (transpiled, idle qubits
   dropped: circuit qubit i is device qubit ``physical_qubits[i]``);
2. the noisy simulators (density matrix, trajectories) run the channels;
3. readout errors are not channels: the Sampler flips measured bits (:func:`apply_readout`), the
   Estimator measures the exactly transformed observable (:func:`readout_observable`).

A device's model is built once per device object (:func:`device_noise_model`), a user's Aer model
once per model (:func:`as_noise_model`); never per job.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import CircuitInstruction, ControlFlowOp, Gate, Instruction, QuantumCircuit
from qiskit.quantum_info import PauliList, SparseObservable, SparsePauliOp

from ...engine.noise import CHANNEL_INSTRUCTION, Channel
from ...errors import InvalidInputError
from ...noise import NoiseModel

__all__ = [
    "DICT_MODELS_KEPT",
    "MAX_EXACT_READOUT_WEIGHT",
    "MAX_WIDE_READOUT_TERMS",
    "ChannelInstruction",
    "apply_readout",
    "as_noise_model",
    "device_noise_model",
    "noisy_circuit",
    "readout_matrices",
    "readout_observable",
]

#: Pauli terms up to this weight expand exactly under readout errors (2^weight terms each).
MAX_EXACT_READOUT_WEIGHT = 16
#: Wider terms keep at most this many of their largest expansion terms.
MAX_WIDE_READOUT_TERMS = 1 << 16
_RELATIVE_CUTOFF = 1e-12

_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12}


class ChannelInstruction(Instruction):
    """A noise channel in a circuit (named :data:`aqrt.engine.noise.CHANNEL_INSTRUCTION`; ``.channel`` holds it).

    Only aqrt's noisy simulators run it. Two are equal when they hold the same channel.
    """

    def __init__(self, channel: Channel) -> None:
        super().__init__(CHANNEL_INSTRUCTION, channel.num_qubits, 0, [])
        self.channel = channel

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChannelInstruction):
            return False
        return other.channel is self.channel or (
            other.channel.num_qubits == self.channel.num_qubits
            and bool(np.allclose(other.channel.superoperator(), self.channel.superoperator(), atol=1e-12))
        )

    __hash__ = Instruction.__hash__

    def __repr__(self) -> str:
        kind = "mixture" if self.channel.is_unitary_mixture else "kraus"
        return f"ChannelInstruction({self.channel.num_qubits} qubits, {kind} of {len(self.channel.kraus)})"


def noisy_circuit(circuit: QuantumCircuit, model: NoiseModel, physical_qubits: Sequence[int]) -> QuantumCircuit:
    """``circuit`` with a :class:`ChannelInstruction` wherever ``model`` puts noise, as qiskit-aer places it.

    Circuit qubit i is device qubit ``physical_qubits[i]``: the model is looked up by device
    qubits. Placement follows Aer's noise model:

    - an instruction's quantum error comes right after it, on its qubits (an error on fewer qubits
      than the instruction acts on its first ones, as Aer samples it); a ``measure``'s comes right
      BEFORE the measure;
    - a gate is looked up by its label when it has one, else by its name (Aer's table key);
    - control flow (``if_else``, ``while_loop``, ``for_loop``, ``switch_case``, ``box``): the
      blocks get their instructions' noise, on the qubits the blocks are bound to;
    - barriers get none; a delay gets the model's error for ``delay`` (if any), then its thermal
      relaxation (:meth:`~aqrt.noise.NoiseModel.delay_error`) over its duration on each qubit,
      inside control-flow blocks too (as Aer's simulator does: checked against its density
      matrices for ``if_else`` and ``for_loop`` bodies).

    An ideal model returns ``circuit`` itself; otherwise a new circuit (the input is not changed).

    Raises:
        InvalidInputError: ``physical_qubits`` does not match the circuit's width, an error wider
            than its instruction, or a delay whose duration cannot be converted to seconds.
    """
    physical = [int(q) for q in physical_qubits]
    if len(physical) != circuit.num_qubits:
        raise InvalidInputError(
            f"noisy_circuit: {len(physical)} physical qubits given for a circuit of {circuit.num_qubits} qubits"
        )
    if model.is_ideal:
        return circuit
    return _noisy(circuit, model, physical)


def _noisy(circuit: QuantumCircuit, model: NoiseModel, physical: list[int]) -> QuantumCircuit:
    result = circuit.copy_empty_like()
    index = {bit: i for i, bit in enumerate(circuit.qubits)}
    for instruction in circuit.data:
        operation = instruction.operation
        device_qubits = tuple(physical[index[q]] for q in instruction.qubits)
        if isinstance(operation, ControlFlowOp):
            blocks = [_noisy(block, model, list(device_qubits)) for block in operation.blocks]
            result._append(instruction.replace(operation=operation.replace_blocks(blocks)))
            continue
        name = operation.name
        if name == "barrier" or not instruction.qubits:
            result._append(instruction)
            continue
        label = operation.label if isinstance(operation, Gate) else None
        channel = model.quantum_error(label or name, device_qubits)
        placed = None if channel is None else _placed(channel, instruction, name)
        if name == "measure":
            if placed is not None:
                result._append(placed)
            result._append(instruction)
            continue
        result._append(instruction)
        if placed is not None:
            result._append(placed)
        if name == "delay" and model.has_delay_relaxation:
            seconds = _delay_seconds(operation, model)
            if seconds > 0:
                for bit, qubit in zip(instruction.qubits, device_qubits, strict=True):
                    relaxation = model.delay_error(qubit, seconds)
                    if relaxation is not None:
                        result._append(CircuitInstruction(ChannelInstruction(relaxation), (bit,), ()))
    return result


def _placed(channel: Channel, instruction: CircuitInstruction, name: str) -> CircuitInstruction:
    width = channel.num_qubits
    if width > len(instruction.qubits):
        raise InvalidInputError(
            f"noisy_circuit: a {width}-qubit error cannot act on the {len(instruction.qubits)}-qubit "
            f"instruction {name!r}"
        )
    return CircuitInstruction(ChannelInstruction(channel), instruction.qubits[:width], ())


def _delay_seconds(operation: Any, model: NoiseModel) -> float:
    unit = operation.unit
    duration = operation.duration
    if not isinstance(duration, int | float | np.integer | np.floating):
        raise InvalidInputError(f"noisy_circuit: a delay of duration {duration!r} ({unit}) has no fixed length")
    if unit == "dt":
        if model.dt is None:
            raise InvalidInputError("noisy_circuit: a delay in 'dt' units needs the noise model's dt (none is set)")
        return float(duration) * model.dt
    scale = _TIME_UNITS.get(unit)
    if scale is None:
        raise InvalidInputError(f"noisy_circuit: a delay in unit {unit!r} cannot be converted to seconds")
    return float(duration) * scale


def readout_matrices(model: NoiseModel, physical_qubits: Sequence[int]) -> list[np.ndarray | None]:
    """Per circuit qubit i, the readout error of device qubit ``physical_qubits[i]`` (``p[true][measured]``) or None."""
    return [model.readout_error(int(q)) for q in physical_qubits]


def apply_readout(
    outcomes: np.ndarray,
    measured_qubits: Sequence[int],
    matrices: Sequence[np.ndarray | None],
    rng: np.random.Generator,
) -> np.ndarray:
    """Sampled outcomes with each measured bit misread as its readout error says.

    ``outcomes`` are integer basis-state indices over the circuit's qubits (bit q = qubit q; any
    shape); bit q of each, for q in ``measured_qubits``, flips with probability
    ``P(measured != true | true)`` from ``matrices[q]`` (None: read exactly); independently per
    qubit and per outcome, as Aer samples readout errors. Returns new indices of the same shape and dtype.
    """
    result = np.array(outcomes, copy=True)
    if not np.issubdtype(result.dtype, np.integer):
        raise InvalidInputError(f"apply_readout: outcomes must be integers, got dtype {result.dtype}")
    for qubit in measured_qubits:
        matrix = matrices[qubit]
        if matrix is None:
            continue
        bits = (result >> qubit) & 1
        flip_probability = np.where(bits == 1, matrix[1, 0], matrix[0, 1])
        flips = rng.random(result.shape) < flip_probability
        result ^= flips.astype(result.dtype) << qubit
    return result


def readout_observable(
    observable: SparsePauliOp | SparseObservable,
    matrices: Sequence[np.ndarray | None],
    twirl_signs: Sequence[float] | np.ndarray | None = None,
) -> SparsePauliOp:
    """The observable whose exact expectation is what ``observable`` reads under independent readout errors.

    Each Pauli term ``P_S`` (support S) is measured in its eigenbasis; qubit i's bit is misread
    with ``p(1|0)_i = matrices[i][0, 1]`` and ``p(0|1)_i = matrices[i][1, 0]``, so its sign reads
    ``a_i + b_i z_i`` on average, with ``a_i = p(0|1)_i - p(1|0)_i`` and
    ``b_i = 1 - p(0|1)_i - p(1|0)_i``; the errors being independent,

        observed <P_S> = sum over T subset of S of  prod_{i in S\\T} a_i  prod_{i in T} b_i  <P_T>

    (``P_T`` is ``P_S`` restricted to T). ``twirl_signs[i]`` (in [-1, 1], default 1) multiplies
    ``a_i``: measurement twirling that flips qubit i's basis half the time makes it 0, leaving
    ``prod b_i <P_S>``.

    Terms with ``|coefficient| < 1e-12 * max`` are dropped. A term of weight ``w`` expands into
    ``2^w`` terms: up to :data:`MAX_EXACT_READOUT_WEIGHT` all of them; a wider term keeps only its
    largest ones, in decreasing order, until they fall under the cut-off or
    :data:`MAX_WIDE_READOUT_TERMS` are kept. That is exact when the ``a_i`` vanish (twirled, or
    symmetric errors) and otherwise drops the higher orders in the ``a_i``, whose total weight is at
    most ``|c| (prod_i (|a_i| + |b_i|) - sum of the kept |coefficients| / |c|)`` for a term of coefficient ``c``.

    Raises:
        InvalidInputError: the observable's width differs from ``len(matrices)``, or bad twirl signs.
    """
    operator = (
        SparsePauliOp.from_sparse_observable(observable) if isinstance(observable, SparseObservable) else observable
    )
    if not isinstance(operator, SparsePauliOp):
        raise InvalidInputError(
            f"readout_observable: expected a SparsePauliOp or SparseObservable, got {type(observable)}"
        )
    num_qubits = operator.num_qubits
    if len(matrices) != num_qubits:
        raise InvalidInputError(
            f"readout_observable: {len(matrices)} readout matrices for an observable on {num_qubits} qubits"
        )
    a = np.zeros(num_qubits)
    b = np.ones(num_qubits)
    for i, matrix in enumerate(matrices):
        if matrix is not None:
            a[i] = matrix[1, 0] - matrix[0, 1]
            b[i] = 1 - matrix[1, 0] - matrix[0, 1]
    if twirl_signs is not None:
        signs = np.asarray(twirl_signs, dtype=np.float64)
        if signs.shape != (num_qubits,) or (np.abs(signs) > 1 + 1e-12).any():
            raise InvalidInputError(
                f"readout_observable: twirl_signs must be {num_qubits} numbers in [-1, 1], got {signs.tolist()}"
            )
        a = a * signs
    coefficients = np.asarray(operator.coeffs, dtype=np.complex128) * (-1j) ** operator.paulis.phase
    zs: list[np.ndarray] = []
    xs: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for z, x, coefficient in zip(operator.paulis.z, operator.paulis.x, coefficients, strict=True):
        support = np.flatnonzero(z | x)
        if coefficient == 0:
            continue
        if support.size <= MAX_EXACT_READOUT_WEIGHT:
            members, weights = _all_subsets(a[support], b[support])
        else:
            members, weights = _largest_subsets(a[support], b[support])
        keep = weights != 0
        members, weights = members[keep], weights[keep]
        chosen = np.zeros((members.shape[0], num_qubits), dtype=bool)
        chosen[:, support] = members
        zs.append(chosen & z)
        xs.append(chosen & x)
        values.append(coefficient * weights)
    all_values = np.concatenate(values) if values else np.zeros(0, dtype=np.complex128)
    if all_values.size == 0:  # every term reads as 0 (e.g. on a qubit whose readout is a coin toss)
        identity = np.zeros((1, num_qubits), dtype=bool)
        return SparsePauliOp(PauliList.from_symplectic(identity, identity), [0])
    paulis = PauliList.from_symplectic(np.concatenate(zs), np.concatenate(xs))
    cutoff = _RELATIVE_CUTOFF * float(np.abs(all_values).max())
    return SparsePauliOp(paulis, all_values).simplify(atol=cutoff, rtol=0)


def _all_subsets(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every subset T of the support (row k: bit j of k says j in T) and its weight prod_{not T} a prod_T b."""
    weights = np.ones(1)
    for a_j, b_j in zip(a, b, strict=True):
        weights = np.multiply.outer(np.array([a_j, b_j]), weights).reshape(-1)  # bit j becomes the highest so far
    index = np.arange(weights.size)
    members = ((index[:, None] >> np.arange(a.size)) & 1).astype(bool)
    return members, weights


def _largest_subsets(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subsets of largest |weight|, in decreasing order, down to the cut-off or the term cap."""
    large = np.maximum(np.abs(a), np.abs(b))
    if (large == 0).any():
        return np.zeros((0, a.size), dtype=bool), np.zeros(0)
    prefers_b = np.abs(b) >= np.abs(a)
    ratio = np.minimum(np.abs(a), np.abs(b)) / large
    order = np.argsort(-ratio, kind="stable")  # swapping order[0] costs least
    sorted_ratio = ratio[order]
    top = float(np.prod(large))
    cutoff = _RELATIVE_CUTOFF * top
    # Best-first over "swap" sets (indices into ``order``): from a set ending at L, its successors
    # add L + 1, or replace L by L + 1; every set is reached once, in decreasing weight.
    heap: list[tuple[float, tuple[int, ...]]] = [(-top, ())]
    found: list[tuple[int, ...]] = []
    while heap and len(found) < MAX_WIDE_READOUT_TERMS:
        negative, swaps = heapq.heappop(heap)
        if -negative < cutoff:
            break
        found.append(swaps)
        last = swaps[-1] if swaps else -1
        if last + 1 < a.size:
            value = -negative * sorted_ratio[last + 1]
            heapq.heappush(heap, (-value, (*swaps, last + 1)))
            if swaps and sorted_ratio[last] > 0:
                heapq.heappush(heap, (-value / sorted_ratio[last], (*swaps[:-1], last + 1)))
    members = np.tile(prefers_b, (len(found), 1))
    for row, swaps in enumerate(found):
        swapped = order[list(swaps)]
        members[row, swapped] = ~members[row, swapped]
    weights = np.prod(np.where(members, b, a), axis=1)
    return members, weights


# --------------------------------------------------------------------------------------------
# Built once: a device's model per device object, a user's Aer model per model
# --------------------------------------------------------------------------------------------

_device_lock = threading.Lock()
_device_models: weakref.WeakKeyDictionary[Any, NoiseModel] = weakref.WeakKeyDictionary()
_device_build_locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()


def device_noise_model(backend: Any) -> NoiseModel:
    """``NoiseModel.from_backend(backend)``, built once per backend object and shared after.

    Held by a weak reference to the backend: dropping the device drops its model. Concurrent
    first calls for one device build it once (the others wait); different devices build in parallel.

    Raises:
        ImportError: qiskit-aer is not installed (the message says how to install it).
    """
    with _device_lock:
        model = _device_models.get(backend)
        if model is not None:
            return model
        build_lock = _device_build_locks.setdefault(backend, threading.Lock())
    with build_lock:
        with _device_lock:
            model = _device_models.get(backend)
        if model is None:
            model = NoiseModel.from_backend(backend)
            with _device_lock:
                _device_models[backend] = model
        return model


_aer_lock = threading.Lock()
_aer_models: dict[int, tuple[weakref.ref[Any], tuple[Any, ...], NoiseModel]] = {}


def as_noise_model(model: Any) -> NoiseModel:
    """An aqrt :class:`~aqrt.noise.NoiseModel` for ``model``: one, an Aer ``NoiseModel``, or its dict form.

    A dict (what ``NoiseModel.to_dict()`` gives, as qiskit-ibm-runtime sends the option) is
    converted by :meth:`~aqrt.noise.NoiseModel.from_dict` (no qiskit-aer needed) once per
    content: the last :data:`DICT_MODELS_KEPT` conversions are kept by a digest of the dict, so
    the same model sent with every job of a server's users is converted once. The model returned
    may be shared: do not change it.

    An Aer model is converted once and the conversion reused while the model is alive and
    unchanged: its entries (instruction, qubits, error object) are compared on each call, so
    adding or replacing an error through Aer's API converts it again.

    Raises:
        InvalidInputError: none of these kinds of model (or a malformed dict).
        ImportError: an Aer model, and qiskit-aer cannot be imported (cannot happen in practice).
    """
    if isinstance(model, NoiseModel):
        return model
    if isinstance(model, Mapping):
        return _from_dict_once(model)
    module = type(model).__module__
    if not module.startswith("qiskit_aer."):
        raise InvalidInputError(
            "noise_model must be an aqrt.noise.NoiseModel, a qiskit_aer.noise.NoiseModel or its to_dict() form, "
            f"got {type(model).__name__}"
        )
    fingerprint = _aer_fingerprint(model)
    with _aer_lock:
        entry = _aer_models.get(id(model))
        if entry is not None and entry[0]() is model and entry[1] == fingerprint:
            return entry[2]
    converted = NoiseModel.from_aer(model)
    key = id(model)
    with _aer_lock:
        _aer_models[key] = (weakref.ref(model, lambda _: _forget(key)), fingerprint, converted)
    return converted


#: How many dict-form models :func:`as_noise_model` keeps converted.
DICT_MODELS_KEPT = 8

_dict_lock = threading.Lock()
_dict_models: collections.OrderedDict[str, NoiseModel] = collections.OrderedDict()


def _from_dict_once(model: Mapping[str, Any]) -> NoiseModel:
    digest = _content_digest(model)
    if digest is None:  # holds something JSON cannot say exactly: convert it every time
        return NoiseModel.from_dict(model)
    with _dict_lock:
        converted = _dict_models.get(digest)
        if converted is not None:
            _dict_models.move_to_end(digest)
            return converted
    converted = NoiseModel.from_dict(model)
    with _dict_lock:
        _dict_models[digest] = converted
        while len(_dict_models) > DICT_MODELS_KEPT:
            _dict_models.popitem(last=False)
    return converted


class _NotJson(Exception):
    pass


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.dtype.str, "shape": value.shape, "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, complex):
        return {"__complex__": [value.real, value.imag]}
    raise _NotJson


def _content_digest(model: Mapping[str, Any]) -> str | None:
    """A digest of the dict's content (sha-256 of its canonical JSON, arrays written in full,
    without the random ``id`` Aer gives each error), or None when it holds objects JSON cannot
    write exactly."""
    value = model.get("__value__", model) if model.get("__type__") == "NoiseModel" else model
    if isinstance(value, Mapping) and isinstance(value.get("errors"), list):
        errors = [
            {key: item for key, item in error.items() if key != "id"} if isinstance(error, Mapping) else error
            for error in value["errors"]
        ]
        value = {**value, "errors": errors}
    try:
        text = json.dumps(value, sort_keys=True, default=_json_value, allow_nan=True)
    except (_NotJson, TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _forget(key: int) -> None:
    with _aer_lock:
        entry = _aer_models.get(key)
        if entry is not None and entry[0]() is None:
            del _aer_models[key]


def _aer_fingerprint(model: Any) -> tuple[Any, ...]:
    """What identifies an Aer model's content (its private tables' entries and error objects)."""
    quantum = tuple((name, id(error)) for name, error in model._default_quantum_errors.items())
    local = tuple(
        (name, qubits, id(error))
        for name, table in model._local_quantum_errors.items()
        for qubits, error in table.items()
    )
    local_readout = tuple((qubits, id(error)) for qubits, error in model._local_readout_errors.items())
    readout = (id(model._default_readout_error), *local_readout)
    passes = tuple(id(p) for p in model._custom_noise_passes)
    return (quantum, local, readout, passes)
