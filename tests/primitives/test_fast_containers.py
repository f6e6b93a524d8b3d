"""Two Qiskit containers a tiny job builds without their constructors (which cost as much as the
rest of their work): the commonest Estimator PUB, ``(circuit without parameters, observables)``,
must be the PUB Qiskit's ``EstimatorPub.coerce`` makes, field for field, and valid by Qiskit's own
check; a scalar PUB's ``DataBin`` must be the one ``DataBin(evs=..., stds=..., shape=())`` makes."""

from __future__ import annotations

import asyncio
import copy
import pickle

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.primitives import StatevectorEstimator
from qiskit.primitives.containers import BindingsArray, DataBin, ObservablesArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

from aqrt import Estimator, Session
from aqrt.backends.local import engine_pubs
from aqrt.errors import InvalidPubError
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
        "ZZ",
        ["ZZ", "XX", "IZ"],
        [SparsePauliOp("ZZ"), SparsePauliOp(["XX", "YY"], coeffs=[0.5, -1.0])],
    ],
    ids=["one-term", "three-terms", "shape-3", "shape-2x2", "label", "label-list", "operator-list"],
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


def test_pauli_labels_are_coerced_once_per_content_and_bad_ones_are_reported_with_their_pub() -> None:
    """A label or a list of labels is looked up by its text (two equal strings made apart share
    one ObservablesArray), a list of SparsePauliOps by their contents; a list and a str never
    share an entry; what Qiskit refuses (a bad label, a tuple of labels) is not cached and the
    PUB's error names it."""
    circuit = _bell()
    label = "".join(["Z", "Z"])  # not the interned literal
    first = _pubs._with_cached_observables((circuit, "ZZ"))[1]
    assert _pubs._with_cached_observables((circuit, label))[1] is first
    listed = _pubs._with_cached_observables((circuit, ["ZZ"]))[1]
    assert listed is not first and listed.shape == (1,) and first.shape == ()
    with pytest.raises(InvalidPubError, match="PUB 0: Invalid observable type"):  # as Qiskit, cached list or not
        coerce_estimator_pubs([(circuit, ("ZZ",))], 0.0)
    operators = _pubs._with_cached_observables((circuit, [SparsePauliOp("ZZ"), SparsePauliOp("XX")]))[1]
    again = _pubs._with_cached_observables((circuit, [SparsePauliOp(["ZZ"]), SparsePauliOp("XX")]))[1]
    other = _pubs._with_cached_observables((circuit, [SparsePauliOp("ZZ"), SparsePauliOp("XX", coeffs=[2.0])]))[1]
    assert again is operators and other is not operators and operators.shape == (2,)
    size = len(_pubs._OBSERVABLES_CACHE)
    with pytest.raises(InvalidPubError, match="PUB 1"):
        coerce_estimator_pubs([(circuit, "ZZ"), (circuit, "QZ")], 0.0)
    assert len(_pubs._OBSERVABLES_CACHE) == size and "QZ" not in _pubs._OBSERVABLES_CACHE
    with pytest.raises(InvalidPubError, match="PUB 0"):
        coerce_estimator_pubs([(circuit, ["ZZ", "ZZZ"])], 0.0)


def test_a_pub_the_fast_path_cannot_take_gets_qiskit_s_constructor() -> None:
    circuit = _bell()
    wrong_width = SparsePauliOp("ZZZ")
    with pytest.raises(Exception, match="PUB 0"):
        coerce_estimator_pubs([(circuit, wrong_width)], 0.0)
    (pub,) = coerce_estimator_pubs([(circuit, "ZZ")], None)  # no precision: Qiskit's path
    assert pub.precision is None and pub.shape == ()


def _ansatz() -> QuantumCircuit:
    theta = ParameterVector("t", 4)
    circuit = QuantumCircuit(2)
    circuit.ry(theta[0], 0)
    circuit.rz(theta[1], 1)
    circuit.cx(0, 1)
    circuit.rx(theta[2] + theta[3], 1)
    return circuit


def _values_pubs(circuit: QuantumCircuit) -> dict[str, tuple[object, ...]]:
    rng = np.random.default_rng(3)
    names = [p.name for p in circuit.parameters]
    return {
        "one binding": (circuit, SparsePauliOp(["ZZ", "XI"]), rng.uniform(size=4)),
        "bindings 5": (circuit, SparsePauliOp("ZZ"), rng.uniform(size=(5, 4))),
        "broadcast 3x1 to 1x2": (circuit, ObservablesArray.coerce([["ZZ", "XX"]]), rng.uniform(size=(3, 1, 4))),
        "own precision": (circuit, "ZZ", rng.uniform(size=(2, 4)), 0.03),
        "none precision": (circuit, "ZZ", rng.uniform(size=4), None),
        "mapping": (circuit, "ZI", {tuple(names): rng.uniform(size=(2, 4))}),
        "mapping split": (circuit, "ZI", {names[0]: [0.1, 0.2], tuple(names[1:]): rng.uniform(size=(2, 3))}),
        "bindings array": (circuit, "IZ", BindingsArray({tuple(circuit.parameters): rng.uniform(size=(2, 4))})),
        "nested lists": (circuit, "ZZ", rng.uniform(size=(2, 3, 4)).tolist()),
        "no parameters": (_bell(), "ZZ", None),
        "one parameter": (_one_parameter(), "Z", [0.1, 0.2, 0.3]),
        "one parameter, trailing 1": (_one_parameter(), "Z", np.zeros((3, 1))),
    }


def _one_parameter() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.rx(Parameter("a"), 0)
    return circuit


@pytest.mark.parametrize("name", list(_values_pubs(_ansatz())))
def test_a_pub_with_values_is_the_pub_qiskit_coerces(name: str) -> None:
    """PUBs with parameter values skip Qiskit's validation of every observable (it converts each
    to a dict of Pauli strings to read its width): the same PUB, and Qiskit's checks pass."""
    pub = _values_pubs(_ansatz())[name]
    observables = _pubs._with_cached_observables(pub)[1]
    assert _pubs._estimator_pub_with_values((pub[0], ObservablesArray.coerce(observables), *pub[2:]), 0.5) is not None
    (fast,) = coerce_estimator_pubs([pub], 0.5)
    official = EstimatorPub.coerce(pub, 0.5)
    fast.validate()
    assert fast.circuit is official.circuit
    assert fast.shape == official.shape
    assert fast.precision == official.precision
    assert fast.observables.tolist() == official.observables.tolist()
    assert fast.parameter_values.shape == official.parameter_values.shape
    assert fast.parameter_values.num_parameters == official.parameter_values.num_parameters
    assert fast.parameter_values.data.keys() == official.parameter_values.data.keys()
    for key, values in official.parameter_values.data.items():
        np.testing.assert_array_equal(fast.parameter_values.data[key], values)
        assert fast.parameter_values.data[key].dtype == values.dtype == np.float64
    in_order = _pubs._bindings_in_circuit_order(pub[0], pub[2] if len(pub) > 2 else None)
    arrays = ("one binding", "bindings 5", "broadcast 3x1 to 1x2", "own precision", "none precision", "nested lists")
    assert (in_order is not None) == (name in arrays)


def test_values_in_the_circuit_s_order_are_checked_for_their_count_and_finiteness() -> None:
    assert _pubs._BINDINGS_STATE_KNOWN  # the direct construction is the one taken on this Qiskit
    circuit = _ansatz()
    with pytest.raises(InvalidPubError, match="PUB 1"):
        coerce_estimator_pubs([(circuit, "ZZ", np.zeros(4)), (circuit, "ZZ", np.zeros((2, 5)))], 0.0)
    with pytest.raises(InvalidPubError, match="t\\[2\\]"):
        coerce_estimator_pubs([(circuit, "ZZ", np.array([[0.0, 0.0, np.inf, 0.0]]))], 0.0)


@pytest.mark.parametrize(
    ("pub", "message"),
    [
        ((_ansatz(), "ZZ", np.zeros(3)), "PUB 0"),  # 3 values for 4 parameters
        ((_ansatz(), "ZZ", np.zeros((2, 4)), -0.1), "PUB 0"),  # negative precision
        ((_ansatz(), ["ZZ", "XX", "YY"], np.zeros((2, 4))), "PUB 0"),  # shapes (3,) and (2,) do not broadcast
        ((_ansatz(), "ZZZ", np.zeros(4)), "PUB 0"),  # an observable of another width
        ((_ansatz(), "ZZ", {"t[0]": 0.1, "t[1]": 0.2, "t[2]": 0.3, "s": 0.4}), "unknown parameter"),
        ((_ansatz(), "ZZ", np.array([0.1, np.nan, 0.2, 0.3])), "non-finite"),
    ],
)
def test_a_bad_pub_with_values_is_refused_with_its_index(pub: tuple[object, ...], message: str) -> None:
    with pytest.raises(InvalidPubError, match=message):
        coerce_estimator_pubs([pub], 0.0)


def _assert_same_data_bin(ours: DataBin, theirs: DataBin) -> None:
    assert type(ours) is DataBin
    assert ours.shape == theirs.shape == () and ours.ndim == 0 and ours.size == 1
    assert list(ours) == list(theirs) == ["evs", "stds"] and len(ours) == 2
    assert list(ours.keys()) == list(theirs.keys())
    for name in ("evs", "stds"):
        assert ours[name] is getattr(ours, name)
        assert getattr(ours, name).dtype == getattr(theirs, name).dtype == np.float64
        assert getattr(ours, name).shape == () and float(getattr(ours, name)) == float(getattr(theirs, name))
    assert repr(ours) == repr(theirs)
    assert vars(ours).keys() == vars(theirs).keys()


@pytest.mark.parametrize("precision", [0.0, 0.25])
def test_a_scalar_pub_s_data_bin_is_the_one_qiskit_s_constructor_makes(precision: float) -> None:
    assert engine_pubs._DATA_BIN_STATE_KNOWN  # the fast path is the one taken on this Qiskit
    (pub,) = coerce_estimator_pubs([(_bell(), SparsePauliOp("ZZ"))], precision)
    result = engine_pubs.finish_estimate(pub, np.array([[0.75]]), np.random.default_rng(1))
    evs = result.data.evs
    theirs = DataBin(evs=evs, stds=np.full((), precision, dtype=np.float64), shape=())
    _assert_same_data_bin(result.data, theirs)
    assert result.metadata == {"target_precision": precision, "circuit_metadata": {}}
    for clone in (copy.deepcopy(result.data), pickle.loads(pickle.dumps(result.data))):
        _assert_same_data_bin(clone, theirs)


@pytest.mark.parametrize(
    ("binding_shape", "observables"),
    [
        ((4,), SparsePauliOp("ZZ")),  # a sweep's PUB: one observable, many bindings
        ((), ObservablesArray.coerce(["ZZ", "XX", "IZ"])),  # one binding, several observables
        ((2, 1), ObservablesArray.coerce(["ZZ", "XX", "IZ"])),  # broadcast to (2, 3)
        ((3,), ObservablesArray.coerce(["ZZ", "XX", "IZ"])),  # zipped
    ],
)
def test_a_shaped_pub_s_data_bin_is_the_one_qiskit_s_constructor_makes(
    binding_shape: tuple[int, ...], observables: object
) -> None:
    """The values of (bindings, observables) pairs land where Qiskit's broadcasting puts them,
    in the DataBin its constructor makes, whichever of the shapes is empty."""
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.rx(theta, 0)
    values = np.arange(int(np.prod(binding_shape)), dtype=float).reshape(*binding_shape, 1)
    (pub,) = coerce_estimator_pubs([(circuit, observables, values)], 0.0)
    bindings, count = int(np.prod(binding_shape)), int(np.prod(pub.observables.shape))
    per_pair = np.arange(bindings * count, dtype=float).reshape(bindings, count) / 8
    result = engine_pubs.finish_estimate(pub, per_pair, None)
    shape = np.broadcast_shapes(binding_shape, pub.observables.shape)

    def flat(index: tuple[int, ...], own: tuple[int, ...]) -> int:  # numpy's broadcasting rule
        trailing = index[len(index) - len(own) :]
        return (
            int(np.ravel_multi_index([i if n > 1 else 0 for i, n in zip(trailing, own, strict=True)], own))
            if own
            else 0
        )

    expected = np.empty(shape)
    for index in np.ndindex(*shape):
        expected[index] = per_pair[flat(index, binding_shape), flat(index, pub.observables.shape)]
    theirs = DataBin(evs=expected, stds=np.zeros(shape), shape=shape)
    ours = result.data
    assert type(ours) is DataBin and ours.shape == theirs.shape == shape
    assert list(ours) == list(theirs) == ["evs", "stds"] and vars(ours).keys() == vars(theirs).keys()
    for name in ("evs", "stds"):
        assert ours[name] is getattr(ours, name) and getattr(ours, name).flags.c_contiguous
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))
    assert repr(ours) == repr(theirs)
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert clone.shape == shape
        np.testing.assert_array_equal(clone.evs, expected)


@pytest.mark.asyncio
async def test_a_tiny_job_s_result_matches_qiskit_s_containers() -> None:
    circuit = _bell()
    async with Session():
        ours = await Estimator().run([(circuit, SparsePauliOp("ZZ"))])
    # Qiskit's job waits on a thread: off the loop (blockbuster)
    theirs = await asyncio.to_thread(lambda: StatevectorEstimator().run([(circuit, SparsePauliOp("ZZ"))]).result())
    _assert_same_data_bin(ours[0].data, theirs[0].data)
    assert float(ours[0].data.evs) == pytest.approx(1.0, abs=1e-12)
    assert ours[0].metadata["target_precision"] == theirs[0].metadata["target_precision"] == 0.0


def test_the_fast_pub_s_empty_bindings_are_the_ones_qiskit_makes_and_its_own() -> None:
    assert _pubs._EMPTY_BINDINGS_STATE_KNOWN  # the shortcut is the one taken on this Qiskit
    first, second = coerce_estimator_pubs([(_bell(), SparsePauliOp("ZZ")), (_bell(), SparsePauliOp("XX"))], 0.0)
    for bindings in (first.parameter_values, second.parameter_values):
        assert type(bindings) is BindingsArray
        official = BindingsArray()  # fresh: reading num_parameters fills a lazy field
        assert vars(bindings) == vars(official) and list(vars(bindings)) == list(vars(official))
        for clone in (copy.deepcopy(bindings), pickle.loads(pickle.dumps(bindings))):
            assert vars(clone) == vars(official)
        bindings.validate()
        assert bindings.shape == () and bindings.num_parameters == 0 and bindings.data == {}
        assert bindings.as_array().shape == official.as_array().shape == (0,)
    assert first.parameter_values is not second.parameter_values  # mutable: one per PUB
    assert first.parameter_values.data is not second.parameter_values.data


@pytest.mark.asyncio
async def test_an_observable_changed_in_place_between_jobs_gives_the_new_value() -> None:
    """The observables cache is keyed by content: an operator whose coefficients or Paulis
    change in place after a job is coerced again."""
    circuit = _bell()
    observable = SparsePauliOp(["ZZ", "XX"], coeffs=[1.0, 0.0])
    async with Session():
        estimator = Estimator()
        first = await estimator.run([(circuit, observable)])
        observable.coeffs[1] = 2.0
        second = await estimator.run([(circuit, observable)])
        observable.paulis.z[1] = [True, True]  # XX -> YY (x and z set): <YY> = -1 on a Bell state
        third = await estimator.run([(circuit, observable)])
        big_endian = SparsePauliOp(["ZZ", "XX"], coeffs=np.array([1.0, 2.0], dtype=">c16"))
        fourth = await estimator.run([(circuit, big_endian)])
    assert float(first[0].data.evs) == pytest.approx(1.0, abs=1e-12)
    assert float(second[0].data.evs) == pytest.approx(3.0, abs=1e-12)
    assert float(third[0].data.evs) == pytest.approx(-1.0, abs=1e-12)
    assert float(fourth[0].data.evs) == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize("keys", [("a", "b", "c"), ("c", "a", "b"), (("a",), ("c", "b"))])
def test_bindings_are_read_by_parameter_name_in_any_order_or_split(keys: tuple[object, ...]) -> None:
    """One array in the circuit's parameter order is read as it is; any other keys (another order,
    several arrays) are placed by name as Qiskit's ``as_array`` places them: the same values."""
    from qiskit.circuit import Parameter

    from aqrt.backends.local.reference import _flat_bindings

    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    circuit = QuantumCircuit(1)
    circuit.rx(a, 0)
    circuit.ry(b, 0)
    circuit.rz(c, 0)
    by_name = {"a": np.arange(4.0), "b": 10 + np.arange(4.0), "c": 100 + np.arange(4.0)}
    if isinstance(keys[0], str):
        data = {keys: np.stack([by_name[name] for name in keys], axis=-1)}
    else:
        data = {key: np.stack([by_name[name] for name in key], axis=-1) for key in keys}
    pub = EstimatorPub.coerce((circuit, SparsePauliOp("Z"), BindingsArray(data)))
    values, names = _flat_bindings(pub)
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(values, np.stack([by_name["a"], by_name["b"], by_name["c"]], axis=-1))


def _measured_bell() -> QuantumCircuit:
    circuit = _bell()
    circuit.measure_all()
    return circuit


@pytest.mark.parametrize("form", ["circuit", "1-tuple", "no values", "own shots", "no values, no shots"])
@pytest.mark.parametrize("shots", [None, 5])
def test_the_fast_sampler_pub_is_the_pub_qiskit_coerces(form: str, shots: int | None) -> None:
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    from aqrt.primitives._pubs import coerce_sampler_pubs

    circuit = _measured_bell()
    pub = {
        "circuit": circuit,
        "1-tuple": (circuit,),
        "no values": (circuit, None),
        "own shots": (circuit, None, 7),
        "no values, no shots": (circuit, None, None),
    }[form]
    assert _pubs._SAMPLER_PUB_STATE_KNOWN  # the fast path is the one taken on this Qiskit
    assert _pubs._plain_sampler_pub(pub, shots) is not None
    (fast,) = coerce_sampler_pubs([pub], shots)
    official = SamplerPub.coerce(pub, shots)
    assert type(fast) is SamplerPub
    fast.validate()  # Qiskit's own checks pass
    assert fast.circuit is circuit and fast.shots == official.shots and fast.shape == official.shape == ()
    assert fast.parameter_values.shape == () and fast.parameter_values.num_parameters == 0
    assert list(vars(fast)) == list(vars(official))


def test_sampler_pubs_the_fast_path_cannot_take_get_qiskit_s_coercion_and_its_errors() -> None:
    from aqrt.primitives._pubs import coerce_sampler_pubs

    circuit = _measured_bell()
    theta = Parameter("t")
    parameterised = QuantumCircuit(1, 1)
    parameterised.rx(theta, 0)
    parameterised.measure(0, 0)
    for pub in [(circuit, None, np.int64(3)), (parameterised, [0.5]), (circuit, {}), (circuit, None, True)]:
        assert _pubs._plain_sampler_pub(pub, None) is None
    (numpy_shots,) = coerce_sampler_pubs([(circuit, None, np.int64(3))], None)
    assert numpy_shots.shots == 3
    for bad, message in [((circuit, None, 0), "PUB 1: shots must be positive"), ((parameterised,), "PUB 1")]:
        with pytest.raises(InvalidPubError, match=message):
            coerce_sampler_pubs([circuit, bad], 4)
