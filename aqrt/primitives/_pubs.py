"""PUB coercion with errors that name the PUB, the parameter and the qubit at fault.

Qiskit's containers do the coercion and broadcasting; this module adds what they leave out
(the PUB index in every message, named missing/extra parameters, non-finite values).
"""

from __future__ import annotations

import collections
import math
import warnings
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives.containers import ObservablesArray
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp

from ..errors import InvalidInputError, InvalidPubError

__all__ = ["coerce_estimator_pubs", "coerce_sampler_pubs"]


def coerce_estimator_pubs(pubs: Iterable[Any], precision: float | None) -> list[EstimatorPub]:
    """Coerce every Estimator PUB, raising ``InvalidPubError`` for the first bad one."""
    _check_precision(precision)
    items = _pub_list(pubs, "Estimator", "estimator.run([(circuit, observables, parameter_values)])")
    coerced = []
    for index, pub in enumerate(items):
        pub = _with_cached_observables(pub)
        fast = _plain_estimator_pub(pub, precision)
        if fast is not None:
            coerced.append(fast)
            continue
        result, names_known = _estimator_pub_with_values(pub, precision)
        if result is None:
            try:
                result = EstimatorPub.coerce(pub, precision)
            except (ValueError, TypeError, KeyError) as exc:
                raise InvalidPubError(index, _explain(pub, exc, param_position=2)) from exc
        _check_finite(result.parameter_values, index)
        if not names_known:
            _check_names(result, index)
        if result.precision is not None and not math.isfinite(result.precision):
            raise InvalidPubError(index, f"precision must be finite, got {result.precision!r}")
        coerced.append(result)
    return coerced


def _plain_estimator_pub(pub: Any, precision: float | None) -> EstimatorPub | None:
    """The commonest PUB, ``(circuit without parameters, cached observables)``, built directly.

    Everything Qiskit's validation would check is checked here (the observables were validated
    when cached, the precision by ``_check_precision``), so the PUB is the one ``coerce`` makes.
    """
    if not (isinstance(pub, tuple) and len(pub) == 2 and precision is not None):
        return None
    circuit, observables = pub
    if not isinstance(circuit, QuantumCircuit) or not isinstance(observables, ObservablesArray):
        return None
    if circuit.num_parameters or observables.num_qubits != circuit.num_qubits:
        return None  # the general path reports the problem with the PUB index
    if not _PUB_STATE_KNOWN:
        return EstimatorPub(circuit, observables, _no_bindings(), float(precision), validate=False)
    # The state EstimatorPub(..., validate=False) sets, set directly: its __init__ broadcasts the
    # shapes with numpy's Python-level broadcast_shapes, half the cost of run() for a tiny job;
    # without bindings (shape ()) the PUB's shape is the observables' own.
    pub = EstimatorPub.__new__(EstimatorPub)
    pub._circuit = circuit
    pub._observables = observables
    pub._parameter_values = _no_bindings()
    pub._precision = float(precision)
    pub._shape = observables.shape
    return pub


def _estimator_pub_with_values(pub: Any, precision: float | None) -> tuple[EstimatorPub | None, bool]:
    """A ``(circuit, observables array[, values[, precision]])`` PUB as ``EstimatorPub.coerce``
    makes it, checked as its validation checks it, but for the observables' width read from the
    array (its validation converts every observable to a dict of Pauli strings to read it: ~0.1
    ms for 20 terms, every job). The array was validated when it was made (the observables
    cache makes one per content). Also whether the bindings name the circuit's parameters by
    construction (an array of values in the circuit's order). (None, False) where anything is
    off: the general path then raises Qiskit's error, explained."""
    if not (isinstance(pub, tuple) and 2 <= len(pub) <= 4):
        return None, False
    circuit, observables = pub[0], pub[1]
    if not isinstance(circuit, QuantumCircuit) or not isinstance(observables, ObservablesArray):
        return None, False
    if observables.num_qubits != circuit.num_qubits:
        return None, False
    if len(pub) == 4 and pub[3] is not None:
        precision = pub[3]
        if isinstance(precision, bool) or not isinstance(precision, Real) or precision < 0:
            return None, False
    values = pub[2] if len(pub) > 2 else None
    try:
        parameter_values = _bindings_in_circuit_order(circuit, values)
        names_known = parameter_values is not None
        if parameter_values is None:
            if values is None:
                parameter_values = BindingsArray()
            else:
                if not isinstance(values, (BindingsArray, Mapping)):
                    values = {tuple(circuit.parameters): values}
                parameter_values = BindingsArray.coerce(values)
            parameter_values.validate()
            if parameter_values.num_parameters != circuit.num_parameters:
                return None, False
        observables.validate()
        return EstimatorPub(circuit, observables, parameter_values, precision, validate=False), names_known
    except (ValueError, TypeError, KeyError):
        return None, False


def _bindings_in_circuit_order(circuit: QuantumCircuit, values: Any) -> BindingsArray | None:
    """``BindingsArray.coerce({tuple(circuit.parameters): values})`` for an array of values whose
    last axis runs over the circuit's (two or more) parameters, its state set as the constructor
    sets it (which formats each parameter's name again: ~0.7 µs a parameter, a 96-parameter
    ansatz's job 70 µs). None for any other values (a mapping, a BindingsArray, one parameter,
    a shape to infer), which Qiskit's coercion takes."""
    if values is None or isinstance(values, (BindingsArray, Mapping)) or not _BINDINGS_STATE_KNOWN:
        return None
    array = np.asarray(values, dtype=float)
    names = tuple(parameter.name for parameter in circuit.parameters)
    if len(names) < 2 or array.ndim == 0 or array.shape[-1] != len(names):
        return None
    return _bindings_made(names, array)


def _bindings_made(names: tuple[str, ...], array: np.ndarray) -> BindingsArray:
    bindings = _bare(BindingsArray)
    bindings.__dict__.update(_data={names: array}, _shape=array.shape[:-1], _num_parameters=None)
    return bindings


# Whether EstimatorPub's whole state is the five slots _plain_estimator_pub sets (Qiskit 1.x-2.x);
# a Qiskit that changes them gets its own constructor.
_PUB_STATE_KNOWN = EstimatorPub.__slots__ == ("_circuit", "_observables", "_parameter_values", "_precision", "_shape")


def _no_bindings() -> BindingsArray:
    """``BindingsArray()``, its state set as its constructor sets it: the constructor runs
    typing.Protocol's __init__ machinery (BindingsArray is a Shaped protocol's subclass), half a
    microsecond per PUB for an empty dict and a shape. Each PUB gets its own (they are mutable)."""
    if not _EMPTY_BINDINGS_STATE_KNOWN:
        return BindingsArray()
    bindings = _bare(BindingsArray)
    bindings.__dict__.update(_data={}, _shape=(), _num_parameters=None)
    return bindings


_bare = object.__new__  # an instance without its constructor (state set by the caller)


def _same_empty_bindings() -> bool:
    """Whether :func:`_no_bindings`'s shortcut makes what ``BindingsArray()`` makes here."""
    made = BindingsArray()
    bare = _bare(BindingsArray)
    bare.__dict__.update(_data={}, _shape=(), _num_parameters=None)
    return vars(made) == vars(bare) and list(vars(made)) == list(vars(bare)) and not BindingsArray.__slots__


_EMPTY_BINDINGS_STATE_KNOWN = _same_empty_bindings()


def _same_bindings() -> bool:
    """Whether :func:`_bindings_made` makes what ``BindingsArray({names: array})`` makes here."""
    array = np.arange(6.0).reshape(3, 2)
    made = BindingsArray({("a", "b"): array})
    bare = _bindings_made(("a", "b"), array)
    return (
        list(vars(made)) == list(vars(bare))
        and list(made.data) == list(bare.data) == [("a", "b")]
        and made.data[("a", "b")] is array
        and made.shape == bare.shape
        and made.num_parameters == bare.num_parameters
        and not BindingsArray.__slots__
    )


_BINDINGS_STATE_KNOWN = _same_bindings()


_OBSERVABLES_CACHE: collections.OrderedDict[tuple[Any, ...], ObservablesArray] = collections.OrderedDict()
_OBSERVABLES_CACHE_SIZE = 1024


def _with_cached_observables(pub: Any) -> Any:
    """Replace a SparsePauliOp, a list of them, a Pauli label or a list of labels in a PUB by its
    ObservablesArray, coerced once per content.

    Coercing observables is most of the cost of ``run()`` for small jobs (a label like ``"ZZ"``:
    ~0.15 ms, more than the rest of a tiny job), and services submit the same observable again
    and again; the key is the observable's content, never its identity.
    """
    if not isinstance(pub, tuple) or len(pub) < 2:
        return pub
    operator = pub[1]
    if isinstance(operator, str) or (
        type(operator) is list and operator and all(isinstance(label, str) for label in operator)
    ):
        # A str's key is itself; a list's, its labels in a tuple marked apart from a str (Qiskit
        # refuses a tuple of labels, which therefore never reaches the cache).
        return _cached_coercion(pub, operator if isinstance(operator, str) else ("labels", *operator))
    if type(operator) is list and operator and all(isinstance(term, SparsePauliOp) for term in operator):
        return _cached_coercion(pub, ("operators", *(_operator_key(term) for term in operator)))
    if not isinstance(operator, SparsePauliOp):
        return pub
    return _cached_coercion(pub, _operator_key(operator))


def _operator_key(operator: SparsePauliOp) -> tuple[Any, ...]:
    """A SparsePauliOp's content, as a key."""
    paulis = operator.paulis
    # The stored group phase with x and z determines ``paulis.phase`` (which costs a few µs to
    # compute), so it keys the same content.
    group_phase = getattr(paulis, "_phase", None)
    x = paulis.x
    coeffs = operator.coeffs
    return (
        x.shape,  # (terms, qubits)
        x.tobytes(),
        paulis.z.tobytes(),
        (group_phase if group_phase is not None else paulis.phase).tobytes(),
        coeffs.tobytes(),
        coeffs.dtype,  # hashed and compared as itself, byte order included (cheaper than .str)
    )


def _cached_coercion(pub: tuple[Any, ...], key: Any) -> tuple[Any, ...]:
    """``pub`` with its observables (``pub[1]``) coerced, looked up under ``key`` first."""
    operator = pub[1]
    observables = _OBSERVABLES_CACHE.get(key)
    if observables is None:
        try:
            observables = ObservablesArray.coerce(operator)
        except (ValueError, TypeError):
            return pub  # let the PUB coercion report it with the PUB index
        _OBSERVABLES_CACHE[key] = observables
        if len(_OBSERVABLES_CACHE) > _OBSERVABLES_CACHE_SIZE:
            _OBSERVABLES_CACHE.popitem(last=False)
    else:
        _OBSERVABLES_CACHE.move_to_end(key)
    return (pub[0], observables, *pub[2:])


def coerce_sampler_pubs(pubs: Iterable[Any], shots: int | None) -> list[SamplerPub]:
    """Coerce every Sampler PUB, raising ``InvalidPubError`` for the first bad one."""
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1):
        raise InvalidInputError(f"shots must be a positive int, got {shots!r}")
    items = _pub_list(pubs, "Sampler", "sampler.run([(circuit, parameter_values)])")
    coerced = []
    for index, pub in enumerate(items):
        fast = _plain_sampler_pub(pub, shots)
        if fast is not None:
            coerced.append(fast)
            continue
        try:
            result = SamplerPub.coerce(pub, shots)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidPubError(index, _explain(pub, exc, param_position=1)) from exc
        _check_finite(result.parameter_values, index)
        _check_names(result, index)
        coerced.append(result)
    if any(not pub.circuit.cregs for pub in coerced):
        warnings.warn(
            "One of your circuits has no output classical registers and so the result "
            "will be empty. Did you mean to add measurement instructions?",
            UserWarning,
            stacklevel=3,
        )
    return coerced


def _plain_sampler_pub(pub: Any, shots: int | None) -> SamplerPub | None:
    """The commonest Sampler PUB, a circuit without parameters (alone, or ``(circuit,)``,
    ``(circuit, None)``, ``(circuit, None, shots)``), built directly: Qiskit's constructor makes
    an empty ``BindingsArray`` through typing's protocol machinery and validates what is known
    here already (``shots`` was checked by the caller; a PUB's own shots are checked here).
    None for anything else, which Qiskit's coercion takes."""
    if type(pub) is QuantumCircuit:
        circuit = pub
    elif type(pub) is tuple and 1 <= len(pub) <= 3 and type(pub[0]) is QuantumCircuit:
        circuit = pub[0]
        if len(pub) > 1 and pub[1] is not None:
            return None
        if len(pub) == 3 and pub[2] is not None:
            shots = pub[2]
            if type(shots) is not int or shots <= 0:
                return None  # Qiskit's validation explains it
    else:
        return None
    if circuit.num_parameters or not _SAMPLER_PUB_STATE_KNOWN:
        return None
    made = _bare(SamplerPub)
    made.__dict__.update(_circuit=circuit, _parameter_values=_no_bindings(), _shots=shots, _shape=())
    return made


def _same_sampler_pub_state() -> bool:
    """Whether :func:`_plain_sampler_pub`'s shortcut makes what ``SamplerPub.coerce`` makes here."""
    circuit = QuantumCircuit(1, 1)
    made = SamplerPub.coerce(circuit, 3)
    bare = _bare(SamplerPub)
    bare.__dict__.update(_circuit=circuit, _parameter_values=_no_bindings(), _shots=3, _shape=())
    return (
        not SamplerPub.__slots__
        and list(vars(made)) == list(vars(bare))
        and made.circuit is circuit
        and made.shots == 3
        and made.shape == ()
        and list(vars(made.parameter_values)) == list(vars(bare.parameter_values))
        and made.parameter_values.data == bare.parameter_values.data == {}
        and made.parameter_values.shape == bare.parameter_values.shape == ()
        and made.parameter_values.num_parameters == bare.parameter_values.num_parameters == 0
    )


_SAMPLER_PUB_STATE_KNOWN = _same_sampler_pub_state()


def _pub_list(pubs: Iterable[Any], kind: str, example: str) -> list[Any]:
    if isinstance(pubs, QuantumCircuit) or (isinstance(pubs, tuple) and pubs and isinstance(pubs[0], QuantumCircuit)):
        # Qiskit's reference primitives open their message with the same words.
        raise InvalidInputError(
            f"An invalid {kind} pub-like was given ({type(pubs).__name__}): run() takes a list of PUBs; "
            f"wrap a single PUB in [] like `{example}`"
        )
    try:
        return list(pubs)
    except TypeError:
        raise InvalidInputError(f"run() takes a list of PUBs, got {type(pubs).__name__}; e.g. `{example}`") from None


def _check_precision(precision: float | None) -> None:
    if precision is None:
        return
    if isinstance(precision, bool) or not isinstance(precision, (int, float, np.floating, np.integer)):
        raise InvalidInputError(f"precision must be a real number, got {precision!r}")
    if not math.isfinite(precision) or precision < 0:
        raise InvalidInputError(f"precision must be finite and >= 0, got {precision!r}")


def _check_finite(bindings: Any, index: int) -> None:
    for names, values in bindings.data.items():
        values = np.asarray(values)
        if values.dtype.kind not in "fc" or np.isfinite(values).all():
            continue
        bad = np.argwhere(~np.isfinite(values))[0]
        *position, column = (int(i) for i in bad)
        name = _name(names[column])
        raise InvalidPubError(
            index,
            f"parameter {name!r} has a non-finite value ({values[tuple(bad)]!r}) at binding index {tuple(position)}",
        )


def _check_names(pub: EstimatorPub | SamplerPub, index: int) -> None:
    """Qiskit checks only the number of values; a mapping may still name the wrong parameters."""
    given = {name for names in pub.parameter_values.data for name in names}
    expected = [parameter.name for parameter in pub.circuit.parameters]
    if given == set(expected):
        return
    parts = []
    missing = [name for name in expected if name not in given]
    extra = sorted(given - set(expected))
    if missing:
        parts.append(f"missing values for parameter(s) {missing}")
    if extra:
        parts.append(f"values for unknown parameter(s) {extra}")
    raise InvalidPubError(index, "; ".join(parts) + f" (the circuit's parameters are {expected})")


def _explain(pub: Any, exc: Exception, *, param_position: int) -> str:
    """Turn Qiskit's coercion error into one that names the parameters at fault, if it can."""
    message = str(exc)
    if isinstance(pub, QuantumCircuit):  # a bare circuit is a PUB without parameter values
        pub = (pub,)
    if not isinstance(pub, (tuple, list)) or not pub or not isinstance(pub[0], QuantumCircuit):
        return message
    circuit: QuantumCircuit = pub[0]
    values = pub[param_position] if len(pub) > param_position else None
    expected = [parameter.name for parameter in circuit.parameters]
    if isinstance(values, Mapping):
        given: list[str] = []
        for key in values:
            keys = key if isinstance(key, tuple) else (key,)
            given.extend(_name(k) for k in keys)
        missing = [name for name in expected if name not in given]
        extra = [name for name in given if name not in expected]
        parts = []
        if missing:
            parts.append(f"missing values for parameter(s) {missing}")
        if extra:
            parts.append(f"values for unknown parameter(s) {extra}")
        if parts:
            return "; ".join(parts) + f" (the circuit's parameters are {expected})"
    elif values is not None and not isinstance(values, BindingsArray):
        try:
            array = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            return f"parameter values must be numbers: {message}"
        given_count = 1 if array.ndim == 0 else array.shape[-1]
        if given_count != len(expected):
            return (
                f"the circuit has {len(expected)} parameter(s) {expected} but each binding gives "
                f"{given_count} value(s) (parameter_values of shape {array.shape})"
            )
    elif values is None and expected:
        return f"the circuit has parameter(s) {expected} but no parameter values were given"
    return message


def _name(parameter: Any) -> str:
    return parameter.name if isinstance(parameter, Parameter) else str(parameter)
