"""The ``executor`` program's wire format: a ``QuantumProgram`` in a job's ``params``, and its
``QuantumProgramResult`` back.

qiskit-ibm-runtime 0.50+ runs its client-side primitives (``executor_estimator.Estimator``,
``executor_sampler.Sampler``) and its ``Executor`` on the Runtime program ``executor``: the job's
``params`` are a ``QuantumProgram`` in the ``ibm_quantum_schemas`` model of schema ``v2.0`` (what
0.51 sends; older versions are refused here), and the job's result is a ``QuantumProgramResult``
in the same schema's result model, which the client decodes with its ``ExecutorResultDecoder``
(then post-processes client-side by the program's ``semantic_role``)::

    params = {"schema_version": "v2.0",
              "quantum_program": {"shots": 128,
                                  "circuits": {"b64_data": base64(zlib(QPY of every item's circuit)),
                                               "qpy_version": 18, "num_programs": 2},
                                  "items": [{"item_type": "circuit", "circuit_arguments": tensor,
                                             "shape": [], "chunk_size": "auto"},
                                            {"item_type": "samplex", "samplex": {"ssv": 4,
                                             "samplex_json": "..."}, "samplex_arguments": {...},
                                             "shape": [32], "chunk_size": "auto"}],
                                  "meas_level": "classified", "passthrough_data": ...,
                                  "semantic_role": "estimator_v2"},
              "options": {"init_qubits": true, "rep_delay": null, ...}}

    result = {"schema_version": "v2.0",
              "data": [{"results": {"meas": tensor(bool, (*item.shape, shots, clbits))}, "metadata": {...}}],
              "metadata": {"chunk_timing": [...]}, "passthrough_data": ..., "semantic_role": ...}

A tensor is ``{"data": base64(zlib(little-endian bytes; bools bit-packed little)), "shape",
"dtype"}``. The models and converters are qiskit-ibm-runtime's own (``devices`` extra, imported
on first use); this module adds admission: everything a payload declares (shots, items, each
tensor's shape and inflated size, every circuit in the QPY blob, bindings, parameter values,
sampled bits) is checked against a :class:`~aqrt.wire.limits.PayloadLimits` before the part is
built, as :mod:`aqrt.wire.limits` does for PUBs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._blobs import text_to_bytes
from ._errors import WireError
from .limits import Admission, LimitExceeded, PayloadLimits, check_qpy_programs

__all__ = [
    "EXECUTOR_PROGRAM_ID",
    "EXECUTOR_SCHEMA_VERSION",
    "MEAS_LEVELS",
    "DecodedExecutorParams",
    "check_executor_params",
    "check_quantum_program",
    "decode_executor_params",
    "decode_executor_result",
    "encode_executor_params",
    "encode_executor_result",
    "executor_result_to_json",
]

#: The Runtime program that runs ``QuantumProgram`` payloads.
EXECUTOR_PROGRAM_ID = "executor"
#: The params/result schema read and written here: what qiskit-ibm-runtime 0.51's ``Executor`` sends.
EXECUTOR_SCHEMA_VERSION = "v2.0"
#: The ``meas_level`` values of the schema; a simulator produces only ``"classified"``.
MEAS_LEVELS = ("classified", "kerneled", "avg_kerneled", "both")

_DEVICES_EXTRA = "pip install -e '.[devices]'"
_TENSOR_DTYPE_BYTES = {
    "f16": 2, "f32": 4, "f64": 8, "i8": 1, "i16": 2, "i32": 4, "i64": 8,
    "u8": 1, "u16": 2, "u32": 4, "u64": 8, "c64": 8, "c128": 16,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DecodedExecutorParams:
    """An executor job's params, decoded: the ``QuantumProgram`` (qiskit-ibm-runtime's class, a
    samplomatic ``QuantumProgram``) and its ``ExecutorOptions`` (``init_qubits``, ``rep_delay``,
    ``experimental``; a simulator honours none of them)."""

    program: Any
    options: Any


def _runtime() -> Any:
    """qiskit-ibm-runtime, imported on first use (the ``devices`` extra)."""
    try:
        import qiskit_ibm_runtime  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(f"the executor program needs qiskit-ibm-runtime (and samplomatic): {_DEVICES_EXTRA}") from exc
    return qiskit_ibm_runtime


def _converter() -> Any:
    _runtime()
    from qiskit_ibm_runtime.quantum_program.params_converters import (  # type: ignore[import-untyped]
        QUANTUM_PROGRAM_PARAMS_CONVERTERS,
    )

    return QUANTUM_PROGRAM_PARAMS_CONVERTERS[EXECUTOR_SCHEMA_VERSION]


# --------------------------------------------------------------------------------------------
# Admission, before anything is built
# --------------------------------------------------------------------------------------------


def _int_list(value: Any, where: str) -> list[int]:
    if type(value) is not list or any(type(n) is not int or n < 0 for n in value):
        raise WireError(f"{where} must be a list of non-negative ints, got {value!r:.80}")
    return value


def _check_tensor(value: Any, where: str, admission: Admission) -> tuple[int, ...]:
    """A compressed tensor's declared shape and dtype against the bytes it inflates to (drawn on
    the decode's budget); returns its shape."""
    if type(value) is not dict or not {"data", "shape", "dtype"} <= value.keys():
        raise WireError(f"{where} must be a tensor {{data, shape, dtype}}")
    shape = tuple(_int_list(value["shape"], f"{where}.shape"))
    dtype = value["dtype"]
    size = math.prod(shape)
    if dtype == "bool":
        expected = math.ceil(size / 8)
    elif dtype in _TENSOR_DTYPE_BYTES:
        expected = size * _TENSOR_DTYPE_BYTES[dtype]
    else:
        raise WireError(f"{where}.dtype {dtype!r} is not a tensor dtype of the schema")
    if expected > admission.remaining:
        raise LimitExceeded(
            f"{where} declares {expected} bytes of shape {list(shape)}; more than the "
            f"{admission.remaining} left of max_decompressed_bytes={admission.limit}"
        )
    raw = text_to_bytes("tensor", value["data"], admission)
    if len(raw) != expected:
        raise WireError(f"{where} holds {len(raw)} bytes, its shape {list(shape)} and dtype {dtype} say {expected}")
    return shape


_MAX_PASSTHROUGH_DEPTH = 64


def _check_passthrough(tree: Any, admission: Admission) -> None:
    """Passthrough data: every tensor in it (an object with ``data``, ``shape`` and ``dtype``,
    which the schema reads as a compressed tensor and inflates) checked as the items' tensors are;
    nesting bounded."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_PASSTHROUGH_DEPTH:
            raise WireError(f"quantum_program.passthrough_data nests more than {_MAX_PASSTHROUGH_DEPTH} deep")
        if type(node) is dict:
            if {"data", "shape", "dtype"} <= node.keys():
                _check_tensor(node, "quantum_program.passthrough_data", admission)
            else:
                stack.extend((value, depth + 1) for value in node.values())
        elif type(node) is list:
            stack.extend((value, depth + 1) for value in node)


def check_executor_params(params: Any, admission: Admission) -> None:
    """Check an executor job's params as they stand in the JSON, before any of it is built:
    the schema version, ``shots``, the number of items, each item's declared ``shape``, every
    tensor's shape against the bytes it inflates to (passthrough data's too), and every circuit in the QPY blob (as
    :func:`~aqrt.wire.limits.check_qpy` does) when the limits bound circuits.

    Raises:
        LimitExceeded: a declared size over a limit (the message names the limit).
        WireError: a malformed payload, another schema version, circuits not as QPY.
    """
    limits = admission.limits
    if type(params) is not dict:
        raise WireError(f"the executor's params must be a JSON object, got {type(params).__name__}")
    version = params.get("schema_version")
    if version != EXECUTOR_SCHEMA_VERSION:
        raise WireError(
            f"executor params of schema_version {version!r} are not read here; this server reads "
            f"{EXECUTOR_SCHEMA_VERSION!r} (what qiskit-ibm-runtime 0.51 sends)"
        )
    program = params.get("quantum_program")
    if type(program) is not dict:
        raise WireError("the executor's params need a 'quantum_program' object")
    shots = program.get("shots")
    if type(shots) is not int or shots < 1:
        raise WireError(f"quantum_program.shots must be a positive int, got {shots!r:.40}")
    if limits.max_shots is not None and shots > limits.max_shots:
        raise LimitExceeded(f"{shots} shots; this server takes at most {limits.max_shots} (max_shots)")
    items = program.get("items")
    if type(items) is not list or not items:
        raise WireError("quantum_program.items must be a non-empty list")
    if limits.max_pubs is not None and len(items) > limits.max_pubs:
        raise LimitExceeded(
            f"{len(items)} quantum program items; this server takes at most {limits.max_pubs} per job (max_pubs)"
        )
    for index, item in enumerate(items):
        where = f"quantum_program.items[{index}]"
        if type(item) is not dict:
            raise WireError(f"{where} must be an object")
        declared = math.prod(_int_list(item.get("shape", []), f"{where}.shape"))
        if limits.max_bindings is not None and declared > limits.max_bindings:
            raise LimitExceeded(
                f"{where} declares shape {item.get('shape')} ({declared} elements); this server takes "
                f"at most {limits.max_bindings} per job (max_bindings)"
            )
        if item.get("item_type") == "circuit":
            _check_tensor(item.get("circuit_arguments"), f"{where}.circuit_arguments", admission)
        elif item.get("item_type") == "samplex":
            arguments = item.get("samplex_arguments", {})
            if type(arguments) is not dict:
                raise WireError(f"{where}.samplex_arguments must be an object")
            for name, value in arguments.items():
                if type(value) is dict and "sparse_terms" in value:  # a PauliLindbladMap
                    qubits = value.get("num_qubits")
                    if limits.max_qubits is not None and isinstance(qubits, int) and qubits > limits.max_qubits:
                        raise LimitExceeded(
                            f"{where}.samplex_arguments[{name!r}] acts on {qubits} qubits; this server takes "
                            f"at most {limits.max_qubits} (max_qubits)"
                        )
                elif type(value) is dict:
                    _check_tensor(value, f"{where}.samplex_arguments[{name!r}]", admission)
        else:
            raise WireError(f"{where}.item_type must be 'circuit' or 'samplex', got {item.get('item_type')!r:.40}")
    _check_passthrough(program.get("passthrough_data"), admission)
    circuits = program.get("circuits")
    if type(circuits) is not dict or "b64_data" not in circuits:
        raise WireError(
            "quantum_program.circuits must be QPY ({b64_data, qpy_version, num_programs}); circuits as "
            "OpenQASM 3 are not read here"
        )
    if circuits.get("num_programs") != len(items):
        raise WireError(
            f"quantum_program.circuits declares {circuits.get('num_programs')!r:.20} circuits for {len(items)} items"
        )
    raw = text_to_bytes("QuantumProgram.circuits", circuits["b64_data"], admission)
    if limits.bound_circuits:
        check_qpy_programs("QuantumProgram.circuits", raw, len(items), admission)


def check_quantum_program(program: Any, admission: Admission) -> None:
    """Check a decoded ``QuantumProgram`` before it runs (decoding allocated nothing it declares
    beyond its bytes): each item's elements (its shape after broadcasting), the parameter values
    bound per element, and the bits sampled (elements x shots x clbits, registers rounded up to
    whole bytes), summed over the items; each circuit's width; and what each samplex will draw
    (its outputs' declared sizes, counted as sampled bits; its ``parameter_values`` must fit the
    circuit's parameters).

    Raises:
        LimitExceeded: over ``max_bindings``, ``max_parameter_values``, ``max_result_bits`` or
            ``max_qubits``.
        WireError: a samplex whose outputs do not fit its circuit.
    """
    from samplomatic.quantum_program import SamplexItem  # type: ignore[import-untyped]
    from samplomatic.tensor_interface import TensorSpecification  # type: ignore[import-untyped]

    limits = admission.limits
    for index, item in enumerate(program.items):
        where = f"quantum program item {index}"
        circuit = item.circuit
        if limits.max_qubits is not None and circuit.num_qubits > limits.max_qubits:
            raise LimitExceeded(
                f"{where}: its circuit has {circuit.num_qubits} qubits; this server takes at most "
                f"{limits.max_qubits} (max_qubits)"
            )
        elements = math.prod(item.shape)
        admission.add("bindings", elements, limits.max_bindings, "max_bindings", f"{where}: {item.shape} elements")
        admission.add(
            "parameter_values",
            elements * circuit.num_parameters,
            limits.max_parameter_values,
            "max_parameter_values",
            f"{where}: parameter values",
        )
        register_bits = sum(8 * math.ceil(register.size / 8) for register in circuit.cregs)
        admission.add(
            "result_bits",
            elements * program.shots * register_bits,
            limits.max_result_bits,
            "max_result_bits",
            f"{where}: sampled bits",
        )
        if not isinstance(item, SamplexItem):
            continue
        draws_parameters = False
        for spec in item.samplex.outputs().specs:
            if not isinstance(spec, TensorSpecification):
                continue
            intrinsic = [size for size in spec.shape if size != "num_randomizations"]
            if any(type(size) is not int or size < 0 for size in intrinsic):
                raise WireError(f"{where}: its samplex output {spec.name!r} has shape {spec.shape}")
            if spec.name == "parameter_values":
                draws_parameters = True
                if intrinsic != [circuit.num_parameters]:
                    raise WireError(
                        f"{where}: its samplex draws {intrinsic} parameter values, its circuit has "
                        f"{circuit.num_parameters} parameters"
                    )
                continue
            admission.add(
                "result_bits",
                elements * math.prod(intrinsic) * 8 * np.dtype(spec.dtype).itemsize,
                limits.max_result_bits,
                "max_result_bits",
                f"{where}: samplex output {spec.name!r}",
            )
        if circuit.num_parameters and not draws_parameters:
            raise WireError(f"{where}: its circuit has parameters, its samplex draws no parameter_values")


def decode_executor_params(params: Any, *, limits: PayloadLimits | None = None) -> DecodedExecutorParams:
    """An executor job's params (the JSON object qiskit-ibm-runtime posts) as a ``QuantumProgram``
    and its ``ExecutorOptions``, admitted against ``limits`` first (:func:`check_executor_params`,
    then :func:`check_quantum_program`).

    Raises:
        LimitExceeded: a declared size over a limit.
        WireError: a malformed payload; another schema version; circuits or a samplex that do
            not load.
        ImportError: qiskit-ibm-runtime is not installed (the message says how to install it).
    """
    admission = Admission(limits or PayloadLimits())
    converter = _converter()
    check_executor_params(params, admission)
    from pydantic import ValidationError

    try:
        # JSON mode, as the service reads the posted text: in Python mode pydantic's union keeps a
        # tensor inside passthrough data as a plain dict instead of reading it as a tensor.
        model = converter.model.model_validate_json(json.dumps(params))
        program, options = converter.decoder(model)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:3]
        )
        raise WireError(f"the executor's params do not match schema {EXECUTOR_SCHEMA_VERSION}: {problems}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise WireError(f"the quantum program does not load: {exc}") from exc
    check_quantum_program(program, admission)
    return DecodedExecutorParams(program, options)


def encode_executor_params(program: Any, options: Any = None) -> dict[str, Any]:
    """The params qiskit-ibm-runtime's ``Executor`` posts for ``program`` (its own encoder, schema
    :data:`EXECUTOR_SCHEMA_VERSION`), as a JSON-ready dict: for aqrt's client and for tests.

    ``program``: a qiskit-ibm-runtime or samplomatic ``QuantumProgram``; ``options``: its
    ``ExecutorOptions`` (default: the defaults).
    """
    runtime = _runtime()
    from qiskit_ibm_runtime.options_models.executor import ExecutorOptions  # type: ignore[import-untyped]

    if not isinstance(program, runtime.QuantumProgram):
        program = runtime.QuantumProgram.from_(program)
    model = _converter().encoder(program, options if options is not None else ExecutorOptions())
    encoded: dict[str, Any] = model.model_dump(mode="json")
    return encoded


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _chunk_span(span: Any, shapes: list[tuple[int, ...]]) -> dict[str, Any]:
    """A samplomatic ``ChunkSpan`` as the schema's: each part names its item, a size, the
    identity permutation of the item's axes and the range of elements it ran."""
    parts = []
    for part in span.parts:
        ndim = len(shapes[part.idx_item]) if part.idx_item < len(shapes) else 0
        parts.append(
            {
                "idx_item": part.idx_item,
                "size": part.size,
                "permutation": list(range(ndim)),
                "element_range": [0, part.size, 1],
            }
        )
    return {"start": _utc(span.start), "stop": _utc(span.stop), "parts": parts}


def _utc(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat()


def encode_executor_result(result: Any, *, item_shapes: list[tuple[int, ...]] | None = None) -> dict[str, Any]:
    """A ``QuantumProgramResult`` as the JSON object the service returns for an executor job
    (schema :data:`EXECUTOR_SCHEMA_VERSION`), which the client's ``ExecutorResultDecoder`` reads.

    Every item's results become compressed tensors; the per-item metadata is the schema's
    (``scheduler_timing``/``stretch_values``, null: a simulator schedules nothing); the job's
    ``chunk_timing`` is kept from ``result.metadata`` when it has one. ``item_shapes`` (each
    item's shape) fills the chunk parts' permutations.

    Raises:
        WireError: a result array of a dtype the schema has no name for.
    """
    _runtime()
    from ibm_quantum_schemas.common import CompressedTensorModel  # type: ignore[import-untyped]
    from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import (  # type: ignore[import-untyped]
        passthrough_data_to_2_0,
    )

    data = []
    for index, item in enumerate(result):
        tensors = {}
        for name, array in item.items():
            try:
                tensors[name] = CompressedTensorModel.from_numpy(array).model_dump(mode="json")
            except ValueError as exc:
                raise WireError(f"result item {index}, {name!r}: {exc}") from None
        data.append({"results": tensors, "metadata": {"scheduler_timing": None, "stretch_values": None}})
    spans = getattr(result.metadata, "chunk_timing", None) or []
    shapes = item_shapes or []
    passthrough = passthrough_data_to_2_0(result.passthrough_data)
    return {
        "schema_version": EXECUTOR_SCHEMA_VERSION,
        "data": data,
        "metadata": {"chunk_timing": [_chunk_span(span, shapes) for span in spans]},
        "passthrough_data": _jsonable(passthrough),
        "semantic_role": getattr(result, "_semantic_role", None),
    }


def _jsonable(tree: Any) -> Any:
    """Passthrough data (lists, dicts, scalars, tensor models) as plain JSON values."""
    if isinstance(tree, Mapping):
        return {str(key): _jsonable(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return [_jsonable(value) for value in tree]
    from pydantic import BaseModel

    if isinstance(tree, BaseModel):  # a CompressedTensorModel
        return tree.model_dump(mode="json")
    return tree


def executor_result_to_json(result: Any, *, item_shapes: list[tuple[int, ...]] | None = None) -> str:
    """:func:`encode_executor_result` as JSON text (what a job's ``results`` endpoint returns)."""
    return json.dumps(encode_executor_result(result, item_shapes=item_shapes))


def decode_executor_result(raw: str | Mapping[str, Any]) -> Any:
    """An executor job's result JSON as the ``QuantumProgramResult`` the official client makes of
    it (its own ``ExecutorResultDecoder``); the client-side primitives' post-processing is left
    to their decoders.

    Raises:
        WireError: not a result of schema :data:`EXECUTOR_SCHEMA_VERSION`.
    """
    _runtime()
    from pydantic import ValidationError
    from qiskit_ibm_runtime.decoders.executor.decoder import ExecutorResultDecoder  # type: ignore[import-untyped]

    text = raw if isinstance(raw, str) else json.dumps(raw)
    try:
        return ExecutorResultDecoder.decode(text)
    except ValidationError as exc:
        raise WireError(f"the executor result does not match schema {EXECUTOR_SCHEMA_VERSION}: {exc}") from None
    except ValueError as exc:
        raise WireError(f"the executor result does not decode: {exc}") from None
