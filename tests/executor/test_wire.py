"""The executor's wire format: params as the official client encodes them, decoded with admission;
results encoded as the service returns them, read back by the official client's decoder."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import zlib

import numpy as np
import pytest
from ibm_quantum_schemas.common import CompressedQpyDataModel
from qiskit_ibm_runtime.decoders.executor.decoder import ExecutorResultDecoder
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.results.quantum_program import Metadata, QuantumProgramResult
from samplomatic.quantum_program import ChunkPart, ChunkSpan, CircuitItem, SamplexItem

from aqrt.wire import WireError
from aqrt.wire.limits import LimitExceeded, PayloadLimits
from aqrt.wire.quantum_program import (
    EXECUTOR_SCHEMA_VERSION,
    decode_executor_params,
    decode_executor_result,
    encode_executor_params,
    encode_executor_result,
    executor_result_to_json,
)

from .conftest import small_program

BOUNDED = PayloadLimits(
    max_pubs=10,
    max_qubits=16,
    max_clbits=16,
    max_circuit_ops=1000,
    max_parameters=1000,
    max_shots=10_000,
    max_bindings=10_000,
    max_parameter_values=100_000,
    max_result_bits=10**7,
)


def wire_params(program) -> dict:
    """The params as they travel: the official encoder's output, through JSON text."""
    return json.loads(json.dumps(encode_executor_params(program)))


def with_qpy_version(params: dict, program, version: int) -> dict:
    """The same params with the circuits written in another QPY version."""
    params = copy.deepcopy(params)
    circuits = CompressedQpyDataModel.from_python([item.circuit for item in program.items], qpy_version=version)
    params["quantum_program"]["circuits"] = circuits.model_dump(mode="json")
    return params


def test_params_round_trip_through_the_official_encoder() -> None:
    program = small_program()
    params = wire_params(program)
    assert params["schema_version"] == EXECUTOR_SCHEMA_VERSION
    decoded = decode_executor_params(params, limits=BOUNDED)
    got = decoded.program
    assert got.shots == 200 and got.meas_level == "classified" and got._semantic_role == "custom-role"
    assert got.passthrough_data["note"] == "kept"
    np.testing.assert_array_equal(got.passthrough_data["values"], np.arange(3.0))
    assert [type(item) for item in got.items] == [CircuitItem, SamplexItem]
    circuit_item, samplex_item = got.items
    assert circuit_item.circuit == program.items[0].circuit
    np.testing.assert_array_equal(circuit_item.circuit_arguments, program.items[0].circuit_arguments)
    assert circuit_item.shape == (3,)
    assert samplex_item.shape == (4,)
    assert samplex_item.circuit == program.items[1].circuit
    assert decoded.options.execution.init_qubits is True


@pytest.mark.parametrize("version", [13, 15, 17, 18])
def test_circuits_are_admitted_by_what_they_declare(version: int) -> None:
    program = small_program()
    params = with_qpy_version(wire_params(program), program, version)
    assert decode_executor_params(params, limits=BOUNDED).program.items[0].circuit == program.items[0].circuit
    narrow = PayloadLimits(max_qubits=2)  # the sweep circuit has 3 qubits
    with pytest.raises(LimitExceeded, match=r"3 qubits.*\(max_qubits\)"):
        decode_executor_params(params, limits=narrow)
    few_ops = PayloadLimits(max_circuit_ops=5)
    with pytest.raises(LimitExceeded, match="max_circuit_ops"):
        decode_executor_params(params, limits=few_ops)


def test_qpy_blob_with_another_count_of_programs_is_refused() -> None:
    program = small_program()
    params = wire_params(program)
    circuits = CompressedQpyDataModel.from_python([program.items[0].circuit])
    params["quantum_program"]["circuits"] = circuits.model_dump(mode="json")
    with pytest.raises(WireError, match="1 circuits for 2 items"):
        decode_executor_params(params, limits=BOUNDED)


@pytest.mark.parametrize(
    ("change", "limits", "message"),
    [
        (lambda p: p["quantum_program"].update(shots=20_000), BOUNDED, r"20000 shots.*\(max_shots\)"),
        (lambda p: None, PayloadLimits(max_pubs=1), r"2 quantum program items.*\(max_pubs\)"),
        (lambda p: p["quantum_program"]["items"][1].update(shape=[10**6]), BOUNDED, r"\(max_bindings\)"),
        (lambda p: None, PayloadLimits(max_result_bits=1000), r"sampled bits.*\(max_result_bits\)"),
        (lambda p: None, PayloadLimits(max_parameter_values=10), r"parameter values.*\(max_parameter_values\)"),
    ],
    ids=["shots", "items", "declared-shape", "result-bits", "parameter-values"],
)
def test_limits_name_what_they_refuse(change, limits: PayloadLimits, message: str) -> None:
    params = wire_params(small_program())
    change(params)
    with pytest.raises(LimitExceeded, match=message):
        decode_executor_params(params, limits=limits)


def test_a_tensor_that_inflates_past_its_shape_is_refused_before_pydantic_inflates_it() -> None:
    params = wire_params(small_program())
    bomb = base64.standard_b64encode(zlib.compress(bytes(50 * 2**20))).decode()
    params["quantum_program"]["items"][0]["circuit_arguments"]["data"] = bomb
    with pytest.raises(WireError, match="max_decompressed_bytes"):
        decode_executor_params(params, limits=PayloadLimits(max_decompressed_bytes=2**20))
    with pytest.raises(WireError, match=r"holds 52428800 bytes, its shape \[3, 1\] and dtype f64 say 24"):
        decode_executor_params(params, limits=BOUNDED)


def test_a_tensor_declaring_more_than_the_budget_is_refused_unread() -> None:
    params = wire_params(small_program())
    params["quantum_program"]["items"][0]["circuit_arguments"]["shape"] = [10**9, 1]
    with pytest.raises(LimitExceeded, match="declares 8000000000 bytes"):
        decode_executor_params(params, limits=BOUNDED)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(schema_version="v1.1"), "schema_version 'v1.1' are not read here"),
        (lambda p: p["quantum_program"].update(circuits={"data": ["OPENQASM 3.0;"]}), "OpenQASM 3"),
        (lambda p: p["quantum_program"]["items"][0].update(item_type="pulse"), "item_type must be"),
        (lambda p: p["quantum_program"].update(shots=0), "shots must be a positive int"),
        (lambda p: p["quantum_program"]["circuits"].update(b64_data="!!"), "not valid base64"),
        (lambda p: p["quantum_program"].update(meas_level="raw"), "do not match schema v2.0"),
        (lambda p: p["quantum_program"]["items"][1]["samplex"].update(samplex_json="{}"), "do not match schema"),
    ],
    ids=["version", "qasm", "item-type", "shots", "base64", "meas-level", "samplex"],
)
def test_malformed_params_are_wire_errors(change, message: str) -> None:
    params = wire_params(small_program())
    change(params)
    with pytest.raises(WireError, match=message):
        decode_executor_params(params, limits=BOUNDED)


def make_result() -> QuantumProgramResult:
    rng = np.random.default_rng(5)
    start = dt.datetime(2026, 12, 2, 22, 0, tzinfo=dt.UTC)
    result = QuantumProgramResult(
        [
            {"c": rng.random((3, 100, 3)) < 0.5},
            {
                "meas": rng.random((4, 100, 2)) < 0.5,
                "measurement_flips.meas": rng.random((4, 1, 2)) < 0.5,
                "parameter_values": rng.random((4, 12)).astype(np.float32),
            },
        ],
        Metadata(chunk_timing=[ChunkSpan(start, start + dt.timedelta(seconds=1), [ChunkPart(0, 3), ChunkPart(1, 4)])]),
        passthrough_data={"post_processor": {"version": "v0.1"}, "array": np.eye(2)},
    )
    result._semantic_role = "custom-role"
    return result


def test_results_read_back_with_the_official_decoder() -> None:
    result = make_result()
    text = executor_result_to_json(result, item_shapes=[(3,), (4,)])
    decoded = ExecutorResultDecoder.decode(text)
    assert isinstance(decoded, QuantumProgramResult)
    assert decoded._semantic_role == "custom-role" and len(decoded) == 2
    for sent, got in zip(result, decoded, strict=True):
        assert sent.keys() == got.keys()
        for name in sent:
            assert got[name].dtype == sent[name].dtype
            np.testing.assert_array_equal(got[name], sent[name])
    assert decoded.passthrough_data["post_processor"] == {"version": "v0.1"}
    np.testing.assert_array_equal(decoded.passthrough_data["array"], np.eye(2))
    (span,) = decoded.metadata.chunk_timing
    assert span.start == result.metadata.chunk_timing[0].start and span.stop - span.start == dt.timedelta(seconds=1)
    assert [(part.idx_item, part.size) for part in span.parts] == [(0, 3), (1, 4)]
    # aqrt's own decoder is the official one, behind aqrt's error type
    again = decode_executor_result(encode_executor_result(result))
    np.testing.assert_array_equal(again[0]["c"], result[0]["c"])
    with pytest.raises(WireError, match="does not match schema"):
        decode_executor_result({"schema_version": "v2.0", "data": "nope"})


def test_a_result_array_of_a_dtype_the_schema_cannot_name_is_refused() -> None:
    result = QuantumProgramResult([{"c": np.array(["a"])}])
    with pytest.raises(WireError, match="result item 0, 'c'"):
        encode_executor_result(result)


def test_a_tensor_in_passthrough_data_is_admitted_like_the_items_tensors() -> None:
    params = wire_params(small_program())
    tensor = params["quantum_program"]["passthrough_data"]["values"]
    assert tensor["shape"] == [3]
    tensor["data"] = base64.standard_b64encode(zlib.compress(bytes(50 * 2**20))).decode()
    with pytest.raises(WireError, match="max_decompressed_bytes"):
        decode_executor_params(params, limits=PayloadLimits(max_decompressed_bytes=2**20))
    deep: list = []
    params["quantum_program"]["passthrough_data"] = {"deep": deep}
    for _ in range(100):
        deep.append([])
        deep = deep[0]
    with pytest.raises(WireError, match="nests more than 64 deep"):
        decode_executor_params(params, limits=BOUNDED)


def test_without_qiskit_ibm_runtime_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    params = wire_params(small_program())
    monkeypatch.setitem(sys.modules, "qiskit_ibm_runtime", None)  # an import of it fails
    with pytest.raises(ImportError, match=r"pip install -e '\.\[devices\]'"):
        decode_executor_params(params)


def test_a_samplex_that_does_not_fit_its_circuit_is_refused() -> None:
    from .conftest import sweep_circuit, twirled_bell

    _, samplex = twirled_bell()  # draws 12 parameter values
    program = QuantumProgram(shots=10)
    program.append_samplex_item(sweep_circuit(), samplex, shape=(2,))  # a circuit of 1 parameter
    with pytest.raises(WireError, match=r"draws \[12\] parameter values, its circuit has 1 parameters"):
        decode_executor_params(wire_params(program), limits=BOUNDED)


def test_samplex_outputs_count_as_sampled_bits() -> None:
    params = wire_params(small_program(shots=1, randomizations=4))
    # registers: 3 x 1 x 8 + 4 x 1 x 8 bits; the flips: 4 x 2 bools of 8 bits
    decode_executor_params(params, limits=PayloadLimits(max_result_bits=56 + 64))
    with pytest.raises(LimitExceeded, match=r"samplex output 'measurement_flips.meas'.*\(max_result_bits\)"):
        decode_executor_params(params, limits=PayloadLimits(max_result_bits=56 + 63))
