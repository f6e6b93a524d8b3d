"""aqrt.wire against qiskit-ibm-runtime's own RuntimeEncoder/RuntimeDecoder, both ways.

Every supported type round-trips through aqrt's codec; aqrt's text decodes with RuntimeDecoder
to equal objects and RuntimeEncoder's text decodes with aqrt to equal objects (and where the
encoding is deterministic, the two encoders write the same text). PUB payloads come from
qiskit-ibm-runtime's EstimatorV2/SamplerV2 themselves, run against a mock session. Every
refusal is a WireError (a ValueError) that names the tag and the place.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import uuid
import warnings
import zlib
from datetime import date, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from qiskit import qpy
from qiskit.circuit import (
    ClassicalRegister,
    Instruction,
    Parameter,
    ParameterVector,
    QuantumCircuit,
    QuantumRegister,
)
from qiskit.circuit.library import RXGate, UnitaryGate
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
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder, Session
from qiskit_ibm_runtime import execution_span as ibm_spans

from aqrt.errors import InvalidInputError
from aqrt.wire import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    SERVICE_QPY_VERSION,
    ExecutionSpan,
    ExecutionSpans,
    WireError,
    decode,
    encode,
    from_jsonable,
    pubs_from_wire,
    pubs_to_wire,
    qpy_write_version,
    to_jsonable,
)

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def theirs_encode(obj: Any) -> str:
    return json.dumps(obj, cls=RuntimeEncoder)


def theirs_decode(text: str) -> Any:
    return json.loads(text, cls=RuntimeDecoder)


def assert_same(actual: Any, expected: Any, where: str = "$") -> None:
    """Same types, shapes, dtypes and values, all the way down."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{where}: {type(actual)}"
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), where
        np.testing.assert_array_equal(actual, expected, err_msg=where)
        return
    assert type(actual) is type(expected), f"{where}: {type(actual)} is not {type(expected)}"
    if isinstance(expected, BitArray):
        assert (actual.num_bits, actual.shape) == (expected.num_bits, expected.shape), where
        assert_same(actual.array, expected.array, f"{where}.array")
    elif isinstance(expected, DataBin):
        assert actual.shape == expected.shape, where
        assert list(actual) == list(expected), where
        for name in expected:
            assert_same(actual[name], expected[name], f"{where}.{name}")
    elif isinstance(expected, PubResult):
        assert_same(actual.data, expected.data, f"{where}.data")
        assert_same(actual.metadata, expected.metadata, f"{where}.metadata")
    elif isinstance(expected, PrimitiveResult):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]")
        assert_same(actual.metadata, expected.metadata, f"{where}.metadata")
    elif isinstance(expected, BindingsArray):
        assert actual.shape == expected.shape, where
        assert list(actual.data) == list(expected.data), where
        for key in expected.data:
            assert_same(actual.data[key], expected.data[key], f"{where}.data[{key}]")
    elif isinstance(expected, ObservablesArray):
        assert actual.shape == expected.shape, where
        assert actual.tolist() == expected.tolist(), where
    elif isinstance(expected, EstimatorPub):
        assert actual.circuit == expected.circuit, where
        assert_same(actual.observables, expected.observables, f"{where}.observables")
        assert_same(
            actual.parameter_values.as_array(actual.circuit.parameters),
            expected.parameter_values.as_array(expected.circuit.parameters),
            f"{where}.parameter_values",
        )
        assert actual.precision == expected.precision, where
    elif isinstance(expected, SamplerPub):
        assert actual.circuit == expected.circuit, where
        assert_same(
            actual.parameter_values.as_array(actual.circuit.parameters),
            expected.parameter_values.as_array(expected.circuit.parameters),
            f"{where}.parameter_values",
        )
        assert actual.shots == expected.shots, where
    elif isinstance(expected, QuantumCircuit):
        assert actual == expected, where
        assert_same(actual.metadata, expected.metadata, f"{where}.metadata")
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(actual), where
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def roundtrip(obj: Any) -> Any:
    return decode(encode(obj))


def make_circuit(seed: int, *, measure: bool = True) -> QuantumCircuit:
    """A random circuit over two quantum and two classical registers, with parameters (plain,
    vector elements, expressions), measurements, a conditional block and metadata."""
    rng = np.random.default_rng(seed)
    qa, qb = QuantumRegister(2, "qa"), QuantumRegister(3, "qb")
    ca, cb = ClassicalRegister(2, "ca"), ClassicalRegister(3, "cb")
    registers = (qa, qb, ca, cb) if measure else (qa, qb)
    circuit = QuantumCircuit(*registers, name=f"random_{seed}", metadata={"seed": seed})
    theta, phi = Parameter("θ"), Parameter("phi")
    vector = ParameterVector("v", 3)
    angles = [theta, phi, 2 * theta + phi, *vector, 0.25, -1.5]
    n = circuit.num_qubits
    for _ in range(12):
        q = [int(i) for i in rng.choice(n, size=3, replace=False)]
        match int(rng.integers(6)):
            case 0:
                circuit.h(q[0])
            case 1:
                circuit.rx(angles[int(rng.integers(len(angles)))], q[0])
            case 2:
                circuit.rzz(angles[int(rng.integers(len(angles)))], q[0], q[1])
            case 3:
                circuit.cx(q[0], q[1])
            case 4:
                circuit.ccx(q[0], q[1], q[2])
            case _:
                circuit.u(theta, phi, 0.5, q[0])
    if measure:
        circuit.barrier()
        circuit.measure(qa, ca)
        with circuit.if_test((ca, 1)):
            circuit.x(qb[0])
        circuit.measure(qb, cb)
    return circuit


# ---------------------------------------------------------------------------------------------
# plain values and small tags
# ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6).filter(lambda k: k != "__type__"), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
@settings(max_examples=80, deadline=None)
def test_plain_json_is_unchanged_and_written_like_runtime_encoder(value: Any) -> None:
    assert encode(value) == theirs_encode(value)
    assert_same(roundtrip(value), value)
    assert_same(decode(theirs_encode(value)), value)
    assert_same(theirs_decode(encode(value)), value)


@pytest.mark.parametrize(
    "value",
    [
        1 + 2j,
        complex(-0.5, 1e-300),
        {1, 2, "three"},
        datetime(2024, 7, 26, 14, 29, 54, 123456),
        datetime(2024, 7, 26, 14, 29, 54, tzinfo=timezone(timedelta(hours=2))),
        {"nested": [1 + 1j, {3.5}, (1, 2)], "nan": float("nan"), "inf": float("inf")},
    ],
    ids=["complex", "tiny-complex", "set", "naive-datetime", "aware-datetime", "nested"],
)
def test_small_tags_both_ways(value: Any) -> None:
    expected = [1, 2] if isinstance(value, tuple) else value
    if isinstance(value, dict):
        expected = {**value, "nested": [1 + 1j, {3.5}, [1, 2]]}
    assert encode(value) == theirs_encode(value)
    assert_same(roundtrip(value), expected)
    assert_same(decode(theirs_encode(value)), expected)
    assert_same(theirs_decode(encode(value)), expected)


@pytest.mark.parametrize(
    "text",
    [
        "2024-07-26T14:29:54.123456Z",
        "2024-07-26T14:29:54Z",
        "2024-07-26T14:29:54.218829+00:00",
        "2024-07-26T14:29:54.218829",
        "2024-07-26 14:29:54",
        "2024-07-26",
    ],
)
def test_service_timestamps_read_like_runtime_decoder(text: str) -> None:
    payload = json.dumps(_tagged("datetime", text))
    assert decode(payload) == theirs_decode(payload)


def test_dates_read_back_as_datetimes_and_numpy_scalars_as_python_numbers() -> None:
    assert roundtrip(date(2024, 1, 2)) == datetime(2024, 1, 2)
    assert theirs_decode(encode(date(2024, 1, 2))) == datetime(2024, 1, 2)
    scalars = [np.int64(-3), np.uint8(7), np.float32(1.5), np.bool_(True), np.complex64(1 - 2j)]
    assert_same(roundtrip(scalars), [-3, 7, 1.5, True, 1 - 2j])
    assert encode(np.int64(5)) == theirs_encode(np.int64(5))


def test_int_keys_and_json_subclasses_are_written_as_json_dumps_does() -> None:
    from collections import OrderedDict
    from enum import IntEnum

    class Level(IntEnum):
        HIGH = 2

    value = OrderedDict([(1, "a"), ("b", Level.HIGH)])
    assert encode(value) == theirs_encode(value) == '{"1": "a", "b": 2}'


def test_ndarray_list_forms_and_extrapolator_names_read_like_runtime_decoder() -> None:
    for text in (
        '{"__type__": "ndarray", "__value__": [[1, 2], [3, 4]]}',
        '{"__type__": "ndarray", "__value__": 7}',
        '{"__type__": "ndarray", "__value__": ["a", "bc"]}',
    ):
        assert_same(decode(text), theirs_decode(text))
    text = '{"__type__": "ndarray", "__value__": "polynomial_degree_3"}'
    assert decode(text) == theirs_decode(text) == "polynomial_degree_3"


def test_extrapolator_names_match_qiskit_ibm_runtime() -> None:
    from typing import get_args

    from qiskit_ibm_runtime.options.zne_options import ExtrapolatorType

    from aqrt.wire._codec import _EXTRAPOLATORS

    assert set(get_args(ExtrapolatorType)) == _EXTRAPOLATORS


def test_to_json_tag_reads_its_value_as_is() -> None:
    text = '{"__type__": "to_json", "__value__": "{\\"a\\": 1}"}'
    assert decode(text) == theirs_decode(text) == '{"a": 1}'


# ---------------------------------------------------------------------------------------------
# arrays
# ---------------------------------------------------------------------------------------------

array_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.unicode_string_dtypes(min_len=1, max_len=4),
    hnp.byte_string_dtypes(min_len=1, max_len=4),
)


@given(
    hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)),
    st.booleans(),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arrays_both_ways(array: np.ndarray, fortran: bool) -> None:
    if fortran:
        array = np.asfortranarray(array)
    assert encode(array) == theirs_encode(array)
    for decoded in (roundtrip(array), decode(theirs_encode(array)), theirs_decode(encode(array))):
        assert_same(decoded, array)
        assert decoded.flags.writeable
        assert decoded.flags.f_contiguous == np.load(_npy(array)).flags.f_contiguous


def test_structured_arrays_and_headers_np_load_would_refuse() -> None:
    structured = np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i4"), ("b", ">f8")])
    assert encode(structured) == theirs_encode(structured)
    assert_same(roundtrip(structured), structured)
    assert_same(decode(theirs_encode(structured)), structured)
    # np.load (so RuntimeDecoder) refuses .npy headers over 10000 bytes; aqrt refuses to write
    # them, and refuses to read them with the same limit.
    wide = np.zeros((1,), dtype=[(f"field_{i}", "<f4") for i in range(800)])
    with pytest.raises(WireError, match="too wide"):
        encode(wide)
    their_text = theirs_encode(wide)
    with pytest.raises(ValueError, match="max_header_size"):
        theirs_decode(their_text)
    _refused(their_text, "header is malformed", "large", tag="ndarray")
    with pytest.warns(UserWarning, match="format 2.0"):  # np.save's own warning, in theirs
        wider = theirs_encode(np.zeros((1,), dtype=[(f"f{i}", "<f4") for i in range(5000)]))
    _refused(wider, "format version (2, 0) is not accepted", tag="ndarray")
    with pytest.raises(WireError, match="too wide"):
        encode(np.zeros((1,), dtype=[(f"f{i}", "<f4") for i in range(5000)]))


def _npy(array: np.ndarray, *, allow_pickle: bool = False) -> io.BytesIO:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    buffer.seek(0)
    return buffer


# ---------------------------------------------------------------------------------------------
# circuits, parameters, instructions, operators
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_circuits_both_ways(seed: int) -> None:
    circuit = make_circuit(seed)
    text = encode(circuit)
    assert text == theirs_encode(circuit)
    assert_same(roundtrip(circuit), circuit)
    assert_same(decode(theirs_encode(circuit)), circuit)
    assert_same(theirs_decode(text), circuit)


def test_circuits_are_written_in_qpy_17_and_read_back_with_their_metadata_types() -> None:
    circuit = make_circuit(1)
    circuit.metadata = {"weights": np.arange(3.0), "label": "x", "phase": 1j}
    blob = zlib.decompress(base64.b64decode(json.loads(encode(circuit))["__value__"]))
    assert blob[:6] == b"QISKIT"
    assert blob[6] == min(SERVICE_QPY_VERSION, qpy.QPY_VERSION) == qpy_write_version() == 17
    assert_same(roundtrip(circuit).metadata, circuit.metadata)
    # RuntimeEncoder writes the same bytes (it also encodes metadata with its own encoder).
    assert encode(circuit) == theirs_encode(circuit)


def test_qpy_version_falls_back_to_what_qiskit_writes() -> None:
    assert qpy_write_version(18, 13) == 17
    assert qpy_write_version(15, 13) == 15  # an older Qiskit: its newest, as qiskit-ibm-runtime
    assert qpy_write_version(25, 20) == 20  # a Qiskit that no longer writes 17: its oldest


def test_parameters_instructions_and_operators_both_ways() -> None:
    theta = Parameter("θ_1")
    element = ParameterVector("v", 4)[2]
    unitary = UnitaryGate(np.array([[0, 1], [1, 0]]))
    sub = make_circuit(3, measure=False).to_gate()
    objects = [
        theta,
        RXGate(0.25),
        RXGate(theta),
        unitary,
        sub,
        Pauli("-iXYZ"),
        PauliList(["XX", "-YZ", "iZI"]),
        SparsePauliOp(["XY", "ZZ", "II"], [1.0, -2.5j, 0.5]),
        PauliLindbladMap.from_list([("XX", 0.1), ("ZI", 0.02)]),
    ]
    for obj in objects:
        text = encode(obj)
        if not isinstance(obj, Instruction):  # RuntimeEncoder names its register q<counter>
            assert text == theirs_encode(obj), type(obj)
        for decoded in (decode(text), decode(theirs_encode(obj)), theirs_decode(text)):
            assert type(decoded) is type(obj)
            if isinstance(obj, PauliLindbladMap):
                assert decoded.to_sparse_list() == obj.to_sparse_list()
            elif isinstance(obj, Parameter):
                assert (decoded, decoded.name, decoded.uuid) == (obj, obj.name, obj.uuid)
            elif obj is sub:
                assert decoded.definition == obj.definition
            else:
                assert decoded == obj, obj
    # A vector element travels as a plain Parameter of the same name and UUID (as RuntimeEncoder).
    back = roundtrip(element)
    assert (type(back), back.name, back.uuid) == (Parameter, element.name, element.uuid)
    assert encode(element) == theirs_encode(element)


def test_parameter_view_is_a_list_of_parameters() -> None:
    circuit = make_circuit(2)
    assert encode(circuit.parameters) == theirs_encode(circuit.parameters)
    # Vector elements come back as plain Parameters (the format has no tag for vectors).
    back = roundtrip(circuit.parameters)
    assert [(p.name, p.uuid) for p in back] == [(p.name, p.uuid) for p in circuit.parameters]
    assert all(type(p) is Parameter for p in back)


# ---------------------------------------------------------------------------------------------
# primitive containers and PUBs
# ---------------------------------------------------------------------------------------------


def test_observables_and_bindings_arrays_both_ways() -> None:
    observables = ObservablesArray([[SparsePauliOp(["XYZ", "ZZI"], [1, 2]), "IIZ"], [{"XXI": 0.5}, Pauli("YYY")]])
    bindings = BindingsArray(
        {("a", "b"): np.linspace(0, 1, 12).reshape(3, 2, 2), "c": np.arange(6.0).reshape(3, 2)},
        shape=(3, 2),
    )
    for obj in (observables, bindings, BindingsArray(shape=(4,)), BindingsArray()):
        text = encode(obj)
        assert text == theirs_encode(obj)
        for decoded in (decode(text), decode(theirs_encode(obj)), theirs_decode(text)):
            assert_same(decoded, obj)


def _estimator_result() -> PrimitiveResult:
    rng = np.random.default_rng(7)
    pubs = [
        PubResult(
            DataBin(evs=rng.normal(size=(2, 3)), stds=rng.random((2, 3)), shape=(2, 3)),
            metadata={"target_precision": 0.01, "shots": 10000, "circuit_metadata": {}},
        ),
        PubResult(DataBin(evs=np.array(0.25), stds=np.array(0.01), shape=()), metadata={}),
    ]
    metadata = {"dynamical_decoupling": {"enable": True, "sequence_type": "XX"}, "version": 2}
    return PrimitiveResult(pubs, metadata=metadata)


def _sampler_result(spans: Any) -> PrimitiveResult:
    rng = np.random.default_rng(11)
    meas = BitArray(rng.integers(0, 256, size=(3, 100, 1), dtype=np.uint8) & 0b11111, 5)
    flags = BitArray(rng.integers(0, 256, size=(3, 100, 2), dtype=np.uint8), 12)
    pubs = [
        SamplerPubResult(
            DataBin(meas=meas, flags=flags, shape=(3,)),
            metadata={"circuit_metadata": {"name": "bell"}},
        )
    ]
    metadata = {"execution": {"execution_spans": spans}, "version": 2}
    return PrimitiveResult(pubs, metadata=metadata)


T0 = datetime(2024, 7, 26, 14, 29, 54, 218829)
T1 = T0 + timedelta(seconds=3)


def _their_spans() -> Any:
    return ibm_spans.ExecutionSpans(
        [
            ibm_spans.SliceSpan(T0, T1, {0: ((3, 100), slice(0, 150))}),
            ibm_spans.DoubleSliceSpan(T0, T1, {0: ((3, 100), slice(1, 3), slice(50, 100))}),
            ibm_spans.TwirledSliceSpan(
                T0,
                T1,
                {
                    0: ((3, 5, 20), True, slice(0, 2), slice(0, 20)),
                    1: ((2,), False, slice(0, 1), slice(None, 4)),
                },
            ),
            ibm_spans.TwirledSliceSpanV2(T0, T1, {2: ((3, 5, 20), False, slice(0, 2), slice(0, 20), 100)}),
        ]
    )


def _our_spans() -> ExecutionSpans:
    return ExecutionSpans(
        (
            ExecutionSpan("ExecutionSpan", T0, T1, {0: ((3, 100), 0, 150)}),
            ExecutionSpan("DoubleSliceSpan", T0, T1, {0: ((3, 100), 1, 3, 50, 100)}),
            ExecutionSpan(
                "TwirledSliceSpan",
                T0,
                T1,
                {0: ((3, 5, 20), True, 0, 2, 0, 20), 1: ((2,), False, 0, 1, None, 4)},
            ),
            ExecutionSpan("TwirledSliceSpanV2", T0, T1, {2: ((3, 5, 20), False, 0, 2, 0, 20, 100)}),
        )
    )


def test_estimator_results_both_ways() -> None:
    result = _estimator_result()
    text = encode(result)
    assert text == theirs_encode(result)
    assert to_jsonable(result) == json.loads(text)
    for decoded in (decode(text), decode(theirs_encode(result)), theirs_decode(text)):
        assert_same(decoded, result)


def test_sampler_results_with_execution_spans_both_ways() -> None:
    theirs, ours = _sampler_result(_their_spans()), _sampler_result(_our_spans())
    assert encode(ours) == theirs_encode(theirs)
    assert_same(decode(theirs_encode(theirs)), ours)
    assert_same(roundtrip(ours), ours)
    back = theirs_decode(encode(ours))
    assert back.metadata["execution"]["execution_spans"] == _their_spans()
    back.metadata["execution"]["execution_spans"] = ours.metadata["execution"]["execution_spans"]
    assert_same(back, ours)
    span = ours.metadata["execution"]["execution_spans"][2]
    assert span.pub_idxs == [0, 1] and len(ours.metadata["execution"]["execution_spans"]) == 4


def test_estimator_pub_result_and_old_span_collection_names_are_read() -> None:
    data_bin = json.loads(encode(DataBin(evs=np.ones(2), shape=(2,))))
    data = _tagged("EstimatorPubResult", {"data": data_bin, "metadata": {}})
    result = from_jsonable(data)
    assert type(result) is PubResult and result.data.evs.tolist() == [1.0, 1.0]
    spans = json.loads(encode(_our_spans()))
    spans["__type__"] = "ExecutionSpanCollection"
    assert from_jsonable(spans) == _our_spans()


def _capture_params(program: str, pubs: list[Any], **run_options: Any) -> dict[str, Any]:
    """``params`` as qiskit-ibm-runtime's EstimatorV2/SamplerV2 submit them (before JSON)."""
    from qiskit_ibm_runtime import EstimatorV2, SamplerV2

    session = mock.MagicMock(spec=Session)
    session._backend = None  # no backend checks: no network, no target
    cls = EstimatorV2 if program == "estimator" else SamplerV2
    with warnings.catch_warnings():
        # 0.50 deprecated these classes in favour of client-side ones; the wire format is the
        # one they send, which is what is being checked here.
        warnings.filterwarnings("ignore", rf"The {cls.__name__} class is deprecated", DeprecationWarning)
        primitive = cls(mode=session)
    primitive.run(pubs, **run_options)
    call = session._run.call_args
    assert call.kwargs["program_id"] == program
    return call.kwargs["inputs"]


def _estimator_pubs(precision: float | None = None) -> list[Any]:
    c0, c1 = make_circuit(0, measure=False), make_circuit(4, measure=False)
    c2 = QuantumCircuit(2)
    c2.h(0)
    c2.cx(0, 1)
    n0, n1 = c0.num_parameters, c1.num_parameters
    return [
        (c0, SparsePauliOp(["ZZIII", "XIIIX"], [1, -1]), np.linspace(0, 1, 3 * n0).reshape(3, n0)),
        (c1, [["ZIIII", "IZIII"], [{"XXIII": 2.0}, "YYIII"]], np.ones((2, 1, n1)), precision),
        (c2, ["ZZ", "XX", SparsePauliOp("YY", -1)]),
        (c0, "IIIIZ", {tuple(c0.parameters): np.zeros(n0)}),
    ]


def _sampler_pubs(shots: int | None = None) -> list[Any]:
    c0, c1 = make_circuit(0), make_circuit(5)
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    return [
        (c0, np.linspace(0, 1, 4 * c0.num_parameters).reshape(4, c0.num_parameters)),
        (c1, np.ones(c1.num_parameters), shots),
        bell,
        (bell, None, shots),
    ]


@pytest.mark.parametrize(
    ("program", "pubs", "options"),
    [
        ("estimator", lambda: _estimator_pubs(0.01), {"precision": 0.01}),
        ("estimator", _estimator_pubs, {}),
        ("sampler", lambda: _sampler_pubs(300), {"shots": 300}),
        ("sampler", _sampler_pubs, {}),
    ],
    ids=["estimator-precision", "estimator", "sampler-shots", "sampler"],
)
def test_pub_payloads_match_qiskit_ibm_runtime(program: str, pubs: Any, options: dict) -> None:
    pub_likes = pubs()
    params = _capture_params(program, pub_likes, **options)
    their_pubs = params["pubs"]
    their_data = json.loads(theirs_encode(params))

    # What they put in params["pubs"] reads back as the PUBs they coerced.
    ours = pubs_from_wire(program, their_data["pubs"])
    assert_same(ours, their_pubs)

    # Our payload is theirs, byte for byte, whether from coerced PUBs or from PUB-likes.
    assert pubs_to_wire(program, their_pubs) == their_data["pubs"]
    if not options:
        assert pubs_to_wire(program, pub_likes) == their_data["pubs"]

    # ... and what their decoder makes of ours coerces to the same PUBs.
    coerce = EstimatorPub.coerce if program == "estimator" else SamplerPub.coerce
    back = theirs_decode(json.dumps({"pubs": pubs_to_wire(program, their_pubs)}))["pubs"]
    assert_same([coerce(tuple(item)) for item in back], their_pubs)

    # The whole params dict goes through encode/decode too.
    assert encode(params) == theirs_encode(params)


def test_pubs_are_also_encoded_anywhere_in_a_document() -> None:
    pub = EstimatorPub.coerce(_estimator_pubs(0.05)[1])
    assert encode({"pubs": [pub]}) == theirs_encode({"pubs": [pub]})
    assert_same(pubs_from_wire("estimator", json.loads(encode([pub]))), [pub])


# ---------------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------------


def _b64(data: bytes, *, compress: bool = True) -> str:
    return base64.b64encode(zlib.compress(data) if compress else data).decode()


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {"__type__": tag, "__value__": value}


def _refused(data: Any, *fragments: str, tag: str | None = None, **kwargs: Any) -> WireError:
    with pytest.raises(WireError) as info:
        if isinstance(data, (str, bytes)):
            decode(data, **kwargs)
        else:
            from_jsonable(data, **kwargs)
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, InvalidInputError)
    for fragment in fragments:
        assert fragment in str(error), str(error)
    if tag is not None:
        assert error.tag == tag and str(error).startswith(f"{tag}: "), str(error)
    return error


NPY = _npy(np.arange(10.0)).getvalue()
QPY = io.BytesIO()
qpy.dump(QuantumCircuit(1), QPY)


_NOW = _tagged("datetime", "2024-01-01")
_ARRAY = _tagged("ndarray", _b64(NPY))
_MALFORMED = [
    # base64, zlib and .npy
    ("ndarray", "@@not base64@@", "not valid base64"),
    ("ndarray", _b64(b"plain bytes, not zlib", compress=False), "not valid zlib"),
    ("ndarray", base64.b64encode(zlib.compress(NPY)[:-6]).decode(), "truncated"),
    ("ndarray", base64.b64encode(zlib.compress(NPY) + b"junk").decode(), "4 bytes follow"),
    ("ndarray", _b64(b"\x93NUMPY\x09\x00garbage"), "version"),
    ("ndarray", _b64(NPY[:-8]), "announces 80 data bytes"),
    ("ndarray", _b64(NPY + b"\x00" * 8), "the blob holds 88"),
    ("ndarray", _b64(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'}\n"), "header is malformed"),
    ("ndarray", _b64(QPY.getvalue()), "not a .npy array"),
    ("ndarray", {"a": 1}, "must be base64 .npy data or a list"),
    ("ndarray", [1, None], "does not form an array"),
    ("ndarray", [[1], [1, 2]], "invalid value"),
    # QPY and parameters
    ("QuantumCircuit", _b64(NPY), "not a QPY blob"),
    ("QuantumCircuit", _b64(QPY.getvalue()[:-10]), "cannot be read"),
    ("QuantumCircuit", _b64(b"QISKIT\x63rest"), "QPY version 99 is newer"),
    ("QuantumCircuit", 12, "expected a base64 string"),
    ("Instruction", _b64(QPY.getvalue()), "one circuit of one instruction"),
    ("Parameter", _b64(b"\x00\x05" + bytes(16) + b"abc", compress=False), "name is 3 bytes"),
    ("Parameter", _b64(b"\x00", compress=False), "too short"),
    # value shapes
    ("complex", [1, 2, 3], "[real, imag]"),
    ("complex", [1, True], "[real, imag]"),
    ("datetime", "yesterday", "Invalid isoformat"),
    ("datetime", 5, "ISO 8601 string"),
    ("set", {"a": 1}, "must be a list"),
    ("set", [[1]], "unhashable"),
    ("BitArray", {"array": _ARRAY}, "lacks keys ['num_bits']"),
    ("BitArray", {"array": _ARRAY, "num_bits": 3}, "uint8"),
    ("BitArray", [1, 2], "must be an object with keys array, num_bits"),
    ("DataBin", {"field_names": [], "shape": [], "fields": []}, "fields must be an object"),
    ("DataBin", {"field_names": ["a"], "shape": [], "fields": {"b": 1}}, "field_names"),
    ("DataBin", {"field_names": [], "shape": [-1], "fields": {}}, "non-negative"),
    ("DataBin", {"shape": [], "fields": {"__dict__": {}}}, "may not start with '__'"),
    ("DataBin", {"shape": [], "fields": {"keys": 1}}, "invalid value"),
    ("DataBin", {"shape": [], "fields": {}, "x": 1}, "unknown keys ['x']"),
    ("PubResult", {"data": {"evs": 1}}, "data must be a DataBin"),
    ("PrimitiveResult", {"pub_results": {}}, "list of PubResult"),
    ("BindingsArray", {"data": {"a": [1.0]}}, "JSON text of a list of parameter names"),
    ("BindingsArray", {"data": {'["a"]': [1.0, 2.0]}, "shape": [3]}, "invalid value"),
    ("ObservablesArray", 5, "label: coeff"),
    ("ObservablesArray", [{"XQ": 1}], "invalid value"),
    ("ExecutionSpan", {"start": 1, "stop": 2, "data_slices": {}}, "datetimes"),
    ("ExecutionSpan", {"start": _NOW, "stop": _NOW, "data_slices": {"0": [[2], 0]}}, "list of 3"),
    ("ExecutionSpan", {"start": _NOW, "stop": _NOW, "data_slices": {"x": [[2], 0, 1]}}, "PUB ind"),
    ("ExecutionSpans", {"spans": [1]}, "list of execution spans"),
    ("PauliLindbladMap", {"paulis": [["XX", [0], 0.1]], "num_qubits": 2}, "invalid value"),
    ("PauliLindbladMap", {"paulis": [["XX"]], "num_qubits": 2}, "[label, qubit indices, rate]"),
    ("NoiseModel", [1, 2], "must be a NoiseModel dict"),  # read (the simulator.noise_model option), but only as a dict
    ("NoiseModel", {"errors": 3}, "must be a NoiseModel dict"),
]


@pytest.mark.parametrize(("tag", "value", "fragment"), _MALFORMED)
def test_malformed_values_are_refused(tag: str, value: Any, fragment: str) -> None:
    _refused({"params": [0, _tagged(tag, value)]}, fragment, "(at $.params[1])", tag=tag)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (_tagged("Result", {}), "not a type this codec reads"),
        (_tagged("spmatrix", "eJw="), "not a type this codec reads"),
        (_tagged("Target", {}), "not a type this codec reads"),
        (_tagged("NoiseLearnerResult", {}), "not a type this codec reads"),
        (_tagged("__builtins__.eval", "1"), "not a type this codec reads"),
        ({"__type__": 3, "__value__": 1}, "__type__ must be a string"),
        ({"__type__": "complex"}, "has no __value__"),
        ({**_tagged("complex", [1, 2]), "__module__": "x"}, "unexpected keys ['__module__']"),
    ],
)
def test_unknown_and_malformed_tags_are_refused(data: Any, fragment: str) -> None:
    error = _refused([data], fragment, "(at $[0])")
    if "not a type" in fragment:
        assert "QuantumCircuit" in str(error) and "settings of SparsePauliOp" in str(error)


def test_class_paths_in_a_payload_are_never_imported(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = tmp_path / "aqrt_wire_canary.py"
    canary.write_text("raise SystemExit('imported from a payload')\nclass Pauli: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module, cls in [
        ("aqrt_wire_canary", "Pauli"),  # an allowed class name under a foreign module
        ("os", "system"),
        ("subprocess", "Popen"),
        ("qiskit.quantum_info.operators.operator", "Operator"),  # real, but not in the registry
        ("qiskit.quantum_info.aqrt_wire_canary", "Evil"),
    ]:
        path = {"__module__": module, "__class__": cls}
        payload = {**_tagged("settings", {"data": "X"}), **path}
        _refused(payload, f"{module}.{cls} is not a class this codec builds", tag="settings")
        _refused({**_tagged("_json", {}), **path}, "not a type")
    assert "aqrt_wire_canary" not in sys.modules
    _refused({**_tagged("settings", {"data": "X"}), "__class__": "Pauli"}, "needs __module__")
    pauli = json.loads(encode(Pauli("X")))
    _refused({**pauli, "__value__": {"data": ["X"]}}, "label string", tag="settings")
    _refused({**pauli, "__value__": {"data": "X", "copy": 1}}, "unknown keys", tag="settings")
    _refused({**pauli, "__value__": {"data": "Q"}}, "invalid Pauli settings", tag="settings")


def test_pickled_and_object_arrays_are_refused() -> None:
    pickled = _npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True).getvalue()
    _refused(_tagged("ndarray", _b64(pickled)), "object arrays need pickle", tag="ndarray")
    structured = _npy(np.zeros(2, dtype=[("a", "O")]), allow_pickle=True).getvalue()
    _refused(_tagged("ndarray", _b64(structured)), "object arrays need pickle", tag="ndarray")
    with pytest.raises(WireError, match="object arrays need pickle"):
        encode({"x": np.array([1, "a", None], dtype=object)})


def test_decompression_is_bounded_per_document() -> None:
    text = encode(np.arange(10.0))
    assert_same(decode(text, max_decompressed_bytes=len(NPY)), np.arange(10.0))
    limit = len(NPY) - 1
    _refused(text, f"limit of {limit} bytes", tag="ndarray", max_decompressed_bytes=limit)
    # The limit is for the whole document, not per blob.
    two = encode([np.arange(10.0), np.arange(10.0)])
    _refused(two, "exceeds the limit", "(at $[1])", max_decompressed_bytes=2 * len(NPY) - 1)
    assert len(decode(two, max_decompressed_bytes=2 * len(NPY))) == 2
    # A zip bomb stops at the limit: 64 MiB of zeros in 64 KiB of zlib, read with a 1 MiB limit.
    bomb = zlib.compressobj()
    chunks = [bomb.compress(bytes(2**20)) for _ in range(64)] + [bomb.flush()]
    payload = json.dumps(_tagged("ndarray", base64.b64encode(b"".join(chunks)).decode()))
    assert len(payload) < 2**18
    _refused(payload, "exceeds the limit of 1048576 bytes", max_decompressed_bytes=2**20)
    assert DEFAULT_MAX_DECOMPRESSED_BYTES == 256 * 2**20
    for bad in (-1, 1.5, True):
        with pytest.raises(WireError, match="max_decompressed_bytes"):
            decode("1", max_decompressed_bytes=bad)


def test_qpy_blobs_hold_exactly_one_circuit() -> None:
    buffer = io.BytesIO()
    qpy.dump([QuantumCircuit(1), QuantumCircuit(2)], buffer)
    payload = _tagged("QuantumCircuit", _b64(buffer.getvalue()))
    _refused(payload, "holds 2 programs", tag="QuantumCircuit")


def test_text_that_is_not_json_is_refused() -> None:
    _refused("{'single': 'quotes'}", "not valid JSON")
    _refused(b"\xff\xfe\x00", "not valid JSON")
    _refused("[" * 100_000 + "]" * 100_000, "JSON")
    with pytest.raises(WireError, match="expected JSON text"):
        decode(42)  # type: ignore[arg-type]
    _refused({1: "int key"}, "keys are strings")
    _refused([object()], "not JSON data: object", "(at $[0])")


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        (_Opaque(), "no tag for it"),
        ({"a": [1, _Opaque()]}, "(at $.a[1])"),
        (2 * Parameter("a") + 1, "ParameterExpression"),
        (np.datetime64("2024-01-01"), "numpy.datetime64"),
        ({(1, 2): 3}, "dict keys must be str or int"),
        ({True: 3}, "dict keys must be str or int"),
        ({"__type__": "ndarray", "__value__": "e30="}, "'__type__' is reserved"),
        (Parameter("x" * 70_000), "65535 bytes"),
    ],
)
def test_unencodable_objects_are_refused(obj: Any, fragment: str) -> None:
    with pytest.raises(WireError) as info:
        encode(obj)
    assert fragment in str(info.value)


def test_circular_and_circuit_metadata_errors_are_wire_errors() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(WireError, match="contains itself"):
        encode(loop)
    circuit = QuantumCircuit(1, metadata={"bad": [_Opaque()]})
    with pytest.raises(WireError, match=r"no tag for it \(at \$\[1\]\.metadata\.bad\[0\]\)"):
        encode([0, circuit])
    with pytest.raises(WireError, match="dict keys must be str or int"):
        encode(QuantumCircuit(1, metadata={(1, 2): 3}))


def test_pub_helpers_refuse_bad_programs_and_pubs() -> None:
    circuit = QuantumCircuit(1)
    with pytest.raises(WireError, match="'estimator' or 'sampler'"):
        pubs_to_wire("runner", [circuit])  # type: ignore[arg-type]
    with pytest.raises(WireError, match=r"PUB 1: .*wrap it with"):
        pubs_to_wire("estimator", [(circuit, "Z"), circuit])
    with pytest.raises(WireError, match="must be a list"):
        pubs_from_wire("sampler", {"pubs": []})
    good = pubs_to_wire("estimator", [(circuit, "Z")])[0]
    with pytest.raises(WireError, match=r"PUB 0: expected \[circuit, observables"):
        pubs_from_wire("estimator", [good[0]])
    with pytest.raises(WireError, match="PUB 1: expected"):
        pubs_from_wire("sampler", [good[0], [1, 2]])
    with pytest.raises(WireError, match=r"PUB 0: .*precision"):
        pubs_from_wire("estimator", [[good[0], good[1], None, -1.0]])
    with pytest.raises(WireError, match=r"PUB 0: .*shots"):
        pubs_from_wire("sampler", [[good[0], None, 2.5]])
    with pytest.raises(WireError, match=r"\(at \$\[0\]\[0\]\)"):
        pubs_from_wire("sampler", [[_tagged("QuantumCircuit", "AAAA")]])


# ---------------------------------------------------------------------------------------------
# packaging
# ---------------------------------------------------------------------------------------------


def test_importing_aqrt_does_not_load_the_wire_codec_and_the_codec_needs_no_http() -> None:
    code = (
        "import sys, aqrt\n"
        "assert 'aqrt.wire' not in sys.modules\n"
        "import aqrt.wire\n"
        "bad = {'aiohttp', 'numba', 'qiskit_ibm_runtime'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=120)


def test_uuid_of_decoded_parameters_is_kept_for_binding() -> None:
    theta = Parameter("t")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    decoded_circuit, decoded_theta = roundtrip([circuit, theta])
    assert decoded_theta == theta and decoded_theta.uuid == uuid.UUID(bytes=theta.uuid.bytes)
    bound = decoded_circuit.assign_parameters({decoded_theta: 0.5})
    assert bound == circuit.assign_parameters({theta: 0.5})
