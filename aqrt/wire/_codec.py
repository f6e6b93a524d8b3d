"""The Runtime JSON codec: a closed registry of ``__type__`` tags, read and written.

Encoding walks an object: JSON values stay, tuples become lists, and every other value is
looked up by its class (and that class's bases) in ``_ENCODERS``, which turns it into plain
JSON or a tagged ``{"__type__": tag, "__value__": ...}``. Decoding walks parsed JSON bottom-up,
as ``RuntimeDecoder``'s object hook does, and hands each tagged object to ``_DECODERS[tag]``.
A tag missing from that dict is an error, and a class path in a payload (``"settings"`` objects
carry ``__module__``/``__class__``) only selects among the few classes listed here: nothing is
ever imported by a name read from a payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

import numpy as np
from qiskit.circuit import Instruction, Parameter, QuantumCircuit, QuantumRegister
from qiskit.circuit.parametertable import ParameterView
from qiskit.primitives.containers import (
    BindingsArray,
    BitArray,
    DataBin,
    EstimatorPub,
    ObservablesArray,
    PrimitiveResult,
    PubResult,
    SamplerPub,
    SamplerPubResult,
)
from qiskit.quantum_info import Pauli, PauliLindbladMap, PauliList, SparsePauliOp

from ._blobs import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    Budget,
    array_from_bytes,
    array_to_text,
    circuit_to_text,
    circuits_from_bytes,
    clean_message,
    parameter_from_bytes,
    parameter_to_text,
    text_to_bytes,
)
from ._errors import WireError
from ._spans import SPAN_KINDS, ExecutionSpan, ExecutionSpans
from .limits import Admission, check_qpy

__all__ = ["decode", "decode_within", "encode", "from_jsonable", "to_jsonable"]

# The names qiskit-ibm-runtime's decoder passes through as strings when they come tagged as
# "ndarray" (its ZNE ``ExtrapolatorType``).
_EXTRAPOLATORS = frozenset(
    ["linear", "exponential", "double_exponential", "fallback"] + [f"polynomial_degree_{k}" for k in range(1, 8)]
)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


class _Tagged(NamedTuple):
    """What an encoder returns for a tagged value; the walker encodes ``value`` in turn."""

    tag: str
    value: Any
    module: str | None = None  # "settings" objects only
    cls: str | None = None


def encode(obj: Any) -> str:
    """Encode ``obj`` as Runtime JSON text, as ``json.dumps(obj, cls=RuntimeEncoder)`` would.

    Raises:
        WireError: ``obj`` holds something the format cannot carry (an object array, a
            ``ParameterExpression``, a non-string key, a class outside the registry, ...).
    """
    return json.dumps(to_jsonable(obj))


def to_jsonable(obj: Any) -> Any:
    """``obj`` as JSON data (dicts, lists, str, numbers, bool, None) in the Runtime encoding.

    Raises:
        WireError: as :func:`encode`.
    """
    try:
        return _encode(obj)
    except RecursionError as exc:
        raise WireError("the object is nested too deeply, or contains itself") from exc


def _encode(obj: Any) -> Any:
    kind = type(obj)
    if kind is str or kind is int or kind is float or kind is bool or obj is None:
        return obj
    if kind is list or kind is tuple:
        out: list[Any] = []
        try:
            for item in obj:
                out.append(_encode(item))
        except WireError as exc:
            exc.at(len(out))
            raise
        return out
    if kind is dict:
        return _encode_dict(obj)
    if kind is _Tagged:
        tagged = {"__type__": obj.tag}
        if obj.module is not None:
            tagged["__module__"] = obj.module
            tagged["__class__"] = obj.cls
        tagged["__value__"] = _encode(obj.value)
        return tagged
    encoder = _encoder_for(kind)
    if encoder is None:
        raise WireError(
            f"cannot encode an object of type {kind.__module__}.{kind.__qualname__}: "
            "the Runtime JSON format has no tag for it"
        )
    return _encode(encoder(obj))


def _encode_dict(obj: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(key, str):
            key = str.__str__(key)
            if key == "__type__":
                raise WireError("a dict key '__type__' is reserved by the wire format for tagged values")
        elif isinstance(key, int) and not isinstance(key, bool):
            key = str(int(key))  # as json.dumps does
        else:
            raise WireError(f"dict keys must be str or int, not {type(key).__name__} ({key!r})")
        try:
            out[key] = _encode(value)
        except WireError as exc:
            exc.at(key)
            raise
    return out


def _encoder_for(kind: type) -> Callable[[Any], Any] | None:
    """The encoder of ``kind``'s nearest registered class (subclasses share it), cached."""
    try:
        return _ENCODER_CACHE[kind]
    except KeyError:
        pass
    encoder = next((_ENCODERS[base] for base in kind.__mro__ if base in _ENCODERS), None)
    if encoder is None and kind.__name__ == "NoiseModel" and kind.__module__.startswith("qiskit_aer."):
        encoder = _encode_aer_noise_model  # known by name: qiskit-aer is optional, never imported here
    _ENCODER_CACHE[kind] = encoder
    return encoder


def _encode_aer_noise_model(model: Any) -> _Tagged:
    """An Aer ``NoiseModel`` as qiskit-ibm-runtime's encoder writes it (its serializable dict)."""
    return _Tagged("NoiseModel", model.to_dict(serializable=True))


class _MetadataEncoder(json.JSONEncoder):
    """Circuit metadata inside QPY, written with the same encoding (as RuntimeEncoder does)."""

    def encode(self, o: Any) -> str:
        return super().encode(to_jsonable(o))


def _encode_instruction(operation: Instruction) -> _Tagged:
    # The format carries a lone instruction as the only operation of a QPY circuit (the
    # register's name is free: RuntimeEncoder takes an auto-numbered one, this a fixed one).
    register = QuantumRegister(operation.num_qubits, "q")
    circuit = QuantumCircuit(register)
    circuit.append(operation, register)
    return _Tagged("Instruction", circuit_to_text(circuit, None))


def _encode_bindings(bindings: BindingsArray) -> _Tagged:
    # Keys are tuples of parameter names, written as the JSON text of a list.
    data = {json.dumps(list(names)): values for names, values in bindings.data.items()}
    return _Tagged("BindingsArray", {"shape": bindings.shape, "data": data})


def _settings(cls: type) -> Callable[[Any], _Tagged]:
    def encoder(obj: Any) -> _Tagged:
        return _Tagged("settings", obj.settings, module=cls.__module__, cls=cls.__name__)

    return encoder


def _encode_span(span: ExecutionSpan) -> _Tagged:
    slices = {index: list(data) for index, data in span.data_slices.items()}
    return _Tagged(span.kind, {"start": span.start, "stop": span.stop, "data_slices": slices})


def _encode_pub_result(tag: str) -> Callable[[PubResult], _Tagged]:
    def encoder(result: PubResult) -> _Tagged:
        return _Tagged(tag, {"data": result.data, "metadata": result.metadata})

    return encoder


def _encode_complex(value: complex) -> _Tagged:
    value = complex(value)
    return _Tagged("complex", [value.real, value.imag])


# Class -> encoder; a subclass uses its nearest registered base. The result is JSON data or a
# _Tagged (its value encoded in turn); tuples and lists are handled before this is consulted.
_ENCODERS: dict[type, Callable[[Any], Any]] = {
    # Subclasses of the JSON types (IntEnum, StrEnum, OrderedDict, namedtuple, ...): as json does.
    int: int,
    float: float,
    str: str.__str__,
    dict: dict,
    list: list,
    tuple: list,
    np.bool_: bool,
    np.integer: int,
    np.floating: float,
    complex: _encode_complex,
    np.complexfloating: _encode_complex,
    set: lambda s: _Tagged("set", list(s)),
    frozenset: lambda s: _Tagged("set", list(s)),
    date: lambda d: _Tagged("datetime", d.isoformat()),  # datetime too
    np.ndarray: lambda a: _Tagged("ndarray", array_to_text(a)),
    QuantumCircuit: lambda c: _Tagged("QuantumCircuit", circuit_to_text(c, _MetadataEncoder)),
    Instruction: _encode_instruction,
    Parameter: lambda p: _Tagged("Parameter", parameter_to_text(p)),
    ParameterView: list,
    ObservablesArray: lambda o: _Tagged("ObservablesArray", o.tolist()),
    BindingsArray: _encode_bindings,
    BitArray: lambda b: _Tagged("BitArray", {"array": b.array, "num_bits": b.num_bits}),
    DataBin: lambda d: _Tagged("DataBin", {"field_names": list(d), "shape": d.shape, "fields": dict(d.items())}),
    PubResult: _encode_pub_result("PubResult"),
    SamplerPubResult: _encode_pub_result("SamplerPubResult"),
    PrimitiveResult: lambda r: _Tagged("PrimitiveResult", {"pub_results": list(r), "metadata": r.metadata}),
    # PUBs travel untagged, as the tuple qiskit-ibm-runtime builds: parameter values as one
    # array over circuit.parameters (last axis), observables as {label: coeff} dicts.
    EstimatorPub: lambda p: [
        p.circuit,
        p.observables.tolist(),
        p.parameter_values.as_array(p.circuit.parameters),
        p.precision,
    ],
    SamplerPub: lambda p: [
        p.circuit,
        p.parameter_values.as_array(p.circuit.parameters),
        p.shots,
    ],
    Pauli: _settings(Pauli),
    PauliList: _settings(PauliList),
    SparsePauliOp: _settings(SparsePauliOp),
    PauliLindbladMap: lambda m: _Tagged("PauliLindbladMap", {"paulis": m.to_sparse_list(), "num_qubits": m.num_qubits}),
    ExecutionSpan: _encode_span,
    ExecutionSpans: lambda s: _Tagged("ExecutionSpans", {"spans": list(s)}),
}
_ENCODER_CACHE: dict[type, Callable[[Any], Any] | None] = {}


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def decode(text: str | bytes, *, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> Any:
    """Parse Runtime JSON text into objects, as ``json.loads(text, cls=RuntimeDecoder)`` would.

    Args:
        text: the JSON document (``bytes`` in UTF-8, -16 or -32).
        max_decompressed_bytes: the most bytes all the document's compressed arrays and
            circuits may inflate to, together; checked while decompressing.

    Raises:
        WireError: the text is not JSON, or holds an unknown tag, a malformed value, an object
            array, a blob over the limit, ...; the message names the tag and the place.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise WireError(f"expected JSON text (str or bytes), not {type(text).__name__}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not valid JSON ({clean_message(exc)})") from exc
    return from_jsonable(data, max_decompressed_bytes=max_decompressed_bytes)


def from_jsonable(data: Any, *, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> Any:
    """Turn parsed JSON data (``json.loads`` output) into objects; see :func:`decode`.

    Raises:
        WireError: as :func:`decode`, or ``data`` is not JSON data.
    """
    return decode_within(data, Budget(max_decompressed_bytes))


def decode_within(data: Any, budget: Budget) -> Any:
    """:func:`from_jsonable` drawing on ``budget``, which several decodes of one document share;
    an :class:`~aqrt.wire.limits.Admission` also has every QPY blob checked before it is read.

    Raises:
        WireError: as :func:`decode`; :class:`~aqrt.wire.limits.LimitExceeded` for a declared
            size over the admission's limits.
    """
    try:
        return _decode(data, budget)
    except RecursionError as exc:
        raise WireError("the document is nested too deeply") from exc


def _decode(data: Any, budget: Budget) -> Any:
    kind = type(data)
    if kind is str or kind is int or kind is float or kind is bool or data is None:
        return data
    if kind is list:
        out: list[Any] = []
        try:
            for item in data:
                out.append(_decode(item, budget))
        except WireError as exc:
            exc.at(len(out))
            raise
        return out
    if kind is dict:
        if "__type__" in data:
            return _decode_tagged(data, budget)
        result: dict[str, Any] = {}
        for key, value in data.items():
            if type(key) is not str:
                raise WireError(f"JSON object keys are strings, not {type(key).__name__}")
            try:
                result[key] = _decode(value, budget)
            except WireError as exc:
                exc.at(key)
                raise
        return result
    raise WireError(f"not JSON data: {kind.__name__}")


def _decode_tagged(node: dict[str, Any], budget: Budget) -> Any:
    tag = node["__type__"]
    if type(tag) is not str:
        raise WireError(f"__type__ must be a string, not {type(tag).__name__}")
    if tag == "settings":
        return _decode_settings(node, budget)
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise WireError("not a type this codec reads (it reads " + ", ".join(_ACCEPTED) + ")", tag=tag)
    if "__value__" not in node:
        raise WireError("the object has no __value__", tag=tag)
    if len(node) != 2:
        extra = sorted(set(node) - {"__type__", "__value__"})
        raise WireError(f"unexpected keys {extra} next to __type__/__value__", tag=tag)
    value = _decode(node["__value__"], budget)  # bottom-up, as RuntimeDecoder's object hook
    try:
        return decoder(tag, value, budget)
    except WireError as exc:
        if exc.tag is None:
            exc.tag = tag
        raise
    except Exception as exc:  # a constructor refusing the value: report it as a wire error
        raise WireError(f"invalid value ({clean_message(exc)})", tag=tag) from exc


# ---- value checks ------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_real(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _fields(tag: str, value: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``value`` as a dict with all ``required`` keys and no keys beyond ``optional``."""
    if type(value) is not dict:
        keys = ", ".join(required + optional)
        raise WireError(f"__value__ must be an object with keys {keys}, not a {_kind(value)}", tag=tag)
    missing = [key for key in required if key not in value]
    unknown = sorted(set(value) - set(required) - set(optional))
    if missing or unknown:
        raise WireError(f"__value__ lacks keys {missing} / has unknown keys {unknown}", tag=tag)
    return value


def _want(tag: str, ok: bool, problem: str) -> None:
    if not ok:
        raise WireError(problem, tag=tag)


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _shape(tag: str, value: Any, what: str = "shape") -> tuple[int, ...]:
    _want(
        tag,
        type(value) is list and all(_is_int(n) and n >= 0 for n in value),
        f"{what} must be a list of non-negative integers, not {value!r:.80}",
    )
    return tuple(value)


def _optional_shape(tag: str, value: Any) -> tuple[int, ...] | None:
    return None if value is None else _shape(tag, value)


def _metadata(tag: str, value: Any) -> dict[str, Any] | None:
    _want(
        tag,
        value is None or type(value) is dict,
        f"metadata must be an object, not a {_kind(value)}",
    )
    return value


# ---- decoders: (tag, decoded __value__, budget) -> object --------------------------------


def _decode_datetime(tag: str, value: Any, budget: Budget) -> datetime:
    _want(tag, type(value) is str, f"__value__ must be an ISO 8601 string, not a {_kind(value)}")
    return datetime.fromisoformat(value)


def _decode_complex(tag: str, value: Any, budget: Budget) -> complex:
    _want(
        tag,
        type(value) is list and len(value) == 2 and all(map(_is_real, value)),
        f"__value__ must be [real, imag], not {value!r:.80}",
    )
    return complex(value[0], value[1])


def _decode_set(tag: str, value: Any, budget: Budget) -> set[Any]:
    _want(tag, type(value) is list, f"__value__ must be a list, not a {_kind(value)}")
    return set(value)


def _decode_ndarray(tag: str, value: Any, budget: Budget) -> Any:
    if type(value) is str:
        if value in _EXTRAPOLATORS:
            return value
        return array_from_bytes(tag, text_to_bytes(tag, value, budget))
    # Also accepted, as qiskit-ibm-runtime does: the array as a JSON number or nested list.
    _want(
        tag,
        type(value) in (int, bool, list),
        f"__value__ must be base64 .npy data or a list, not a {_kind(value)}",
    )
    array = np.array(value)
    _want(tag, not array.dtype.hasobject, "the list does not form an array of numbers or strings")
    return array


def _qpy_programs(tag: str, value: Any, budget: Budget) -> list[Any]:
    raw = text_to_bytes(tag, value, budget)
    if isinstance(budget, Admission) and budget.limits.bound_circuits:  # checked before QPY builds it
        check_qpy(tag, raw, budget)
    return circuits_from_bytes(tag, raw)


def _decode_circuit(tag: str, value: Any, budget: Budget) -> QuantumCircuit:
    programs = _qpy_programs(tag, value, budget)
    _want(
        tag,
        len(programs) == 1 and isinstance(programs[0], QuantumCircuit),
        f"the QPY data must hold one circuit, it holds {len(programs)} programs",
    )
    circuit = programs[0]
    if circuit.metadata:
        # Written with this encoding (RuntimeEncoder too); read it back the same way.
        circuit.metadata = _decode(circuit.metadata, budget)
    return circuit


def _decode_instruction(tag: str, value: Any, budget: Budget) -> Instruction:
    programs = _qpy_programs(tag, value, budget)
    _want(
        tag,
        len(programs) == 1 and isinstance(programs[0], QuantumCircuit) and len(programs[0].data) == 1,
        "the QPY data must hold one circuit of one instruction",
    )
    return programs[0].data[0].operation


def _decode_parameter(tag: str, value: Any, budget: Budget) -> Parameter:
    return parameter_from_bytes(tag, text_to_bytes(tag, value, budget, compressed=False))


def _decode_observables(tag: str, value: Any, budget: Budget) -> ObservablesArray:
    _want(
        tag,
        type(value) in (list, dict),
        f"__value__ must be a (nested) list of {{label: coeff}} objects, not a {_kind(value)}",
    )
    return ObservablesArray(value)


def _decode_bindings(tag: str, value: Any, budget: Budget) -> BindingsArray:
    value = _fields(tag, value, (), ("shape", "data"))
    data = value.get("data")
    _want(tag, data is None or type(data) is dict, f"data must be an object, not a {_kind(data)}")
    bindings = {}
    for key, values in (data or {}).items():
        try:
            names = json.loads(key)
        except ValueError:
            names = None
        _want(
            tag,
            type(names) is list and all(type(name) is str for name in names),
            f"a data key must be the JSON text of a list of parameter names, not {key!r:.80}",
        )
        bindings[tuple(names)] = values
    return BindingsArray(bindings or None, shape=_optional_shape(tag, value.get("shape")))


def _decode_bit_array(tag: str, value: Any, budget: Budget) -> BitArray:
    value = _fields(tag, value, ("array", "num_bits"))
    _want(tag, isinstance(value["array"], np.ndarray), "array must be an ndarray")
    _want(tag, _is_int(value["num_bits"]), "num_bits must be an integer")
    return BitArray(value["array"], value["num_bits"])


def _decode_data_bin(tag: str, value: Any, budget: Budget) -> DataBin:
    value = _fields(tag, value, ("fields", "shape"), ("field_names",))
    fields = value["fields"]
    _want(tag, type(fields) is dict, f"fields must be an object, not a {_kind(fields)}")
    names = value.get("field_names", list(fields))
    _want(
        tag,
        type(names) is list and sorted(names) == sorted(fields),
        "field_names must list the keys of fields",
    )
    # Fields become attributes: no dunder names (__dict__, __class__, ...) from a payload.
    _want(tag, not any(n.startswith("__") for n in names), "field names may not start with '__'")
    return DataBin(shape=_optional_shape(tag, value["shape"]), **{n: fields[n] for n in names})


def _decode_pub_result(tag: str, value: Any, budget: Budget) -> PubResult:
    value = _fields(tag, value, ("data",), ("metadata",))
    _want(tag, isinstance(value["data"], DataBin), "data must be a DataBin")
    # EstimatorPubResult (qiskit-ibm-runtime's PubResult plus plotting) reads as a PubResult.
    cls = SamplerPubResult if tag == "SamplerPubResult" else PubResult
    return cls(value["data"], _metadata(tag, value.get("metadata")))


def _decode_primitive_result(tag: str, value: Any, budget: Budget) -> PrimitiveResult:
    value = _fields(tag, value, ("pub_results",), ("metadata",))
    results = value["pub_results"]
    _want(
        tag,
        type(results) is list and all(isinstance(r, PubResult) for r in results),
        "pub_results must be a list of PubResult",
    )
    return PrimitiveResult(results, _metadata(tag, value.get("metadata")))


def _decode_span(tag: str, value: Any, budget: Budget) -> ExecutionSpan:
    value = _fields(tag, value, ("start", "stop", "data_slices"))
    _want(
        tag,
        isinstance(value["start"], datetime) and isinstance(value["stop"], datetime),
        "start and stop must be datetimes",
    )
    slices = value["data_slices"]
    _want(tag, type(slices) is dict, f"data_slices must be an object, not a {_kind(slices)}")
    size = SPAN_KINDS[tag]
    data_slices = {}
    for key, item in slices.items():
        _want(
            tag,
            key.isascii() and key.isdigit(),
            f"data_slices keys are PUB indices, not {key!r:.40}",
        )
        _want(
            tag,
            type(item) is list
            and len(item) == size
            and all(x is None or _is_int(x) or type(x) is bool for x in item[1:]),
            f"data_slices[{key}] must be a list of {size}: a shape, then integers",
        )
        data_slices[int(key)] = (_shape(tag, item[0]), *item[1:])
    return ExecutionSpan(tag, value["start"], value["stop"], data_slices)


def _decode_spans(tag: str, value: Any, budget: Budget) -> ExecutionSpans:
    spans = _fields(tag, value, ("spans",))["spans"]
    _want(
        tag,
        type(spans) is list and all(isinstance(s, ExecutionSpan) for s in spans),
        "spans must be a list of execution spans",
    )
    return ExecutionSpans(tuple(spans))


def _decode_lindblad(tag: str, value: Any, budget: Budget) -> PauliLindbladMap:
    value = _fields(tag, value, ("paulis", "num_qubits"))
    paulis, num_qubits = value["paulis"], value["num_qubits"]
    _want(tag, _is_int(num_qubits), "num_qubits must be an integer")
    _want(
        tag,
        type(paulis) is list
        and all(
            type(p) is list
            and len(p) == 3
            and type(p[0]) is str
            and type(p[1]) is list
            and all(map(_is_int, p[1]))
            and _is_real(p[2])
            for p in paulis
        ),
        "paulis must be a list of [label, qubit indices, rate]",
    )
    return PauliLindbladMap.from_sparse_list([tuple(p) for p in paulis], num_qubits=num_qubits)


def _decode_noise_model(tag: str, value: Any, budget: Budget) -> dict[str, Any]:
    """An Aer ``NoiseModel`` as qiskit-ibm-runtime sends it (``to_dict(serializable=True)``): kept
    as that dict, which the backend reads (``aqrt.noise.NoiseModel.from_dict``) without qiskit-aer."""
    _want(tag, type(value) is dict and type(value.get("errors", [])) is list, "__value__ must be a NoiseModel dict")
    return {"__type__": "NoiseModel", "__value__": value}


_Decoder = Callable[[str, Any, Budget], Any]

# Tag -> decoder. This is the whole of what a payload can turn into.
_DECODERS: dict[str, _Decoder] = {
    "datetime": _decode_datetime,
    "complex": _decode_complex,
    "set": _decode_set,
    "ndarray": _decode_ndarray,
    "QuantumCircuit": _decode_circuit,
    "Instruction": _decode_instruction,
    "Parameter": _decode_parameter,
    "ObservablesArray": _decode_observables,
    "BindingsArray": _decode_bindings,
    "BitArray": _decode_bit_array,
    "DataBin": _decode_data_bin,
    "PubResult": _decode_pub_result,
    "SamplerPubResult": _decode_pub_result,
    "EstimatorPubResult": _decode_pub_result,
    "PrimitiveResult": _decode_primitive_result,
    **dict.fromkeys(SPAN_KINDS, _decode_span),
    "ExecutionSpans": _decode_spans,
    "ExecutionSpanCollection": _decode_spans,  # the old name of ExecutionSpans
    "PauliLindbladMap": _decode_lindblad,
    "NoiseModel": _decode_noise_model,
    "to_json": lambda tag, value, budget: value,  # an object's own to_json() output, as is
}

# "settings" objects name a class; these are the only ones built, and only from these keys.
_SETTINGS: dict[str, tuple[type, tuple[str, ...], tuple[str, ...]]] = {
    "Pauli": (Pauli, ("data",), ()),
    "PauliList": (PauliList, ("data",), ()),
    "SparsePauliOp": (SparsePauliOp, ("data",), ("coeffs", "ignore_pauli_phase", "copy")),
}
_SETTINGS_MODULE = "qiskit.quantum_info."

_ACCEPTED = sorted([*_DECODERS, *(f"settings of {name}" for name in _SETTINGS)])


def _decode_settings(node: dict[str, Any], budget: Budget) -> Any:
    tag = "settings"
    module, name = node.get("__module__"), node.get("__class__")
    if type(module) is not str or type(name) is not str:
        raise WireError("a settings object needs __module__ and __class__ strings", tag=tag)
    if name not in _SETTINGS or not module.startswith(_SETTINGS_MODULE):
        raise WireError(
            f"{module}.{name} is not a class this codec builds "
            f"(it builds {', '.join(_SETTINGS)} from {_SETTINGS_MODULE}*; "
            "no class is imported by a name from a payload)",
            tag=tag,
        )
    extra = sorted(set(node) - {"__type__", "__module__", "__class__", "__value__"})
    _want(
        tag,
        "__value__" in node and not extra,
        "a settings object has exactly __type__, __module__, __class__ and __value__",
    )
    cls, required, optional = _SETTINGS[name]
    settings = _fields(tag, _decode(node["__value__"], budget), required, optional)
    data = settings["data"]
    if cls is Pauli:
        _want(tag, type(data) is str, "Pauli data must be a label string")
    else:
        _want(
            tag,
            isinstance(data, PauliList) or (type(data) is list and all(type(label) is str for label in data)),
            f"{name} data must be a PauliList or a list of labels",
        )
    try:
        return cls(**settings)
    except Exception as exc:  # the constructor's own validation
        raise WireError(f"invalid {name} settings ({clean_message(exc)})", tag=tag) from exc
