"""Bad input raises a typed error that names the problem, synchronously at the call (before any
job exists), and the session it happened in keeps working."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter
from qiskit.quantum_info import SparsePauliOp

from aqrt import (
    AqrtError,
    BackendNotFoundError,
    CircuitTooLargeError,
    Estimator,
    InvalidInputError,
    InvalidOptionsError,
    InvalidPubError,
    InvalidTimeSpecError,
    LocalService,
    Options,
    Sampler,
    Session,
    SessionClosedError,
    UnsupportedCircuitError,
    parse_duration,
)

pytestmark = pytest.mark.asyncio

GRAMMAR = "units d/h/m/s in that order, each at most once, e.g. '2h 30m 40s', '25m', '1d'"


def _bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return circuit


def _measured_bell() -> QuantumCircuit:
    circuit = _bell()
    circuit.measure_all()
    return circuit


def _parametric() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.ry(Parameter("alpha"), 0)
    circuit.rx(Parameter("beta"), 1)
    return circuit


def _parametric_measured() -> QuantumCircuit:
    circuit = _parametric()
    circuit.measure_all()
    return circuit


async def _assert_session_works(session: Session) -> None:
    """A good Estimator and a good Sampler job both run in ``session`` and give exact answers."""
    before = session.statistics()
    circuit = QuantumCircuit(2)
    circuit.ry(0.4, 0)
    circuit.cx(0, 1)
    evs = (await Estimator().run([(circuit, SparsePauliOp(["ZI", "XX"], [1.0, 2.0]))]))[0].data.evs
    assert float(evs) == pytest.approx(np.cos(0.4) + 2 * np.sin(0.4), abs=1e-12)
    measured = QuantumCircuit(2)
    measured.x(0)
    measured.measure_all()
    counts = (await Sampler().run([measured], shots=8))[0].data.meas.get_counts()
    assert counts == {"01": 8}
    after = session.statistics()
    assert after["total"] == before["total"] + 2
    assert after["done"] == before["done"] + 2


def _bindings_with(i: int, j: int, parameter: int, value: float) -> np.ndarray:
    """Bindings of shape (2, 3) for ``_parametric()`` with one bad value."""
    values = np.full((2, 3, 2), 0.5)
    values[i, j, parameter] = value
    return values


Call = Callable[[Estimator, Sampler], Any]

BAD_RUN_CALLS: list[Any] = [
    # -- the PUB list itself
    pytest.param(
        lambda e, s: e.run((_bell(), "ZZ")),
        InvalidInputError,
        r"takes a list of PUBs; wrap a single PUB in \[\]",
        id="estimator-single-pub-tuple",
    ),
    pytest.param(
        lambda e, s: e.run(_bell()),
        InvalidInputError,
        r"takes a list of PUBs; wrap a single PUB in \[\]",
        id="estimator-bare-circuit",
    ),
    pytest.param(
        lambda e, s: s.run(_measured_bell()),
        InvalidInputError,
        r"wrap a single PUB in \[\] like `sampler.run",
        id="sampler-bare-circuit",
    ),
    pytest.param(
        lambda e, s: s.run((_measured_bell(), None, 10)),
        InvalidInputError,
        r"wrap a single PUB in \[\]",
        id="sampler-single-pub-tuple",
    ),
    pytest.param(lambda e, s: e.run(5), InvalidInputError, "takes a list of PUBs, got int", id="pubs-not-iterable"),
    pytest.param(
        lambda e, s: e.run([(_bell(),)]),
        InvalidPubError,
        "PUB 0: The length of pub must be 2, 3 or 4, but length 1",
        id="estimator-pub-too-short",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ", None, 0.1, 7)]),
        InvalidPubError,
        "PUB 0: The length of pub must be 2, 3 or 4, but length 5",
        id="estimator-pub-too-long",
    ),
    pytest.param(
        lambda e, s: s.run([(_measured_bell(), None, 10, 1)]),
        InvalidPubError,
        "PUB 0: The length of pub must be 1, 2 or 3, but length 4",
        id="sampler-pub-too-long",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ"), ("not a circuit", "ZZ")]),
        InvalidPubError,
        "PUB 1: circuit must be QuantumCircuit",
        id="estimator-non-circuit",
    ),
    pytest.param(
        lambda e, s: s.run([(None,)]),
        InvalidPubError,
        "PUB 0: circuit must be QuantumCircuit",
        id="sampler-non-circuit",
    ),
    # -- observables
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ"), (_bell(), "ZZZ")]),
        InvalidPubError,
        r"PUB 1: The number of qubits of the circuit \(2\) does not match .* observable \(3\)",
        id="observable-too-wide",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), SparsePauliOp("Z"))]),
        InvalidPubError,
        r"PUB 0: .*circuit \(2\).*observable \(1\)",
        id="observable-too-narrow",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), SparsePauliOp(["ZZ", "XX"], [1.0, 1j]))]),
        InvalidPubError,
        "PUB 0: Non-Hermitian",
        id="observable-non-hermitian",
    ),
    # -- parameter values
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ")]),
        InvalidPubError,
        r"PUB 0: the circuit has parameter\(s\) \['alpha', 'beta'\] but no parameter values were given",
        id="estimator-missing-values",
    ),
    pytest.param(
        lambda e, s: s.run([_measured_bell(), _parametric_measured()]),
        InvalidPubError,
        r"PUB 1: the circuit has parameter\(s\) \['alpha', 'beta'\] but no parameter values",
        id="sampler-missing-values",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", [0.1, 0.2, 0.3])]),
        InvalidPubError,
        r"has 2 parameter\(s\) \['alpha', 'beta'\] but each binding gives 3 value\(s\)",
        id="too-many-values",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", np.zeros((4, 1)))]),
        InvalidPubError,
        r"has 2 parameter\(s\) \['alpha', 'beta'\] but each binding gives 1 value\(s\) "
        r"\(parameter_values of shape \(4, 1\)\)",
        id="too-few-values-ndarray",
    ),
    pytest.param(
        lambda e, s: s.run([(_parametric_measured(), [0.5])]),
        InvalidPubError,
        r"PUB 0: the circuit has 2 parameter\(s\) .* gives 1 value",
        id="sampler-too-few-values",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", {"alpha": 0.1})]),
        InvalidPubError,
        r"missing values for parameter\(s\) \['beta'\]",
        id="mapping-missing-name",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", {"alpha": 0.1, "beta": 0.2, "gamma": 1.0})]),
        InvalidPubError,
        r"values for unknown parameter\(s\) \['gamma'\]",
        id="mapping-unknown-name",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", {"alpha": 0.1, "gamma": 1.0})]),
        InvalidPubError,
        r"missing values for parameter\(s\) \['beta'\]; values for unknown parameter\(s\) \['gamma'\]",
        id="mapping-missing-and-unknown-same-count",
    ),
    pytest.param(
        lambda e, s: s.run([(_parametric_measured(), {("beta", "delta"): [0.1, 0.2]})]),
        InvalidPubError,
        r"PUB 0: missing values for parameter\(s\) \['alpha'\]; values for unknown parameter\(s\) \['delta'\]",
        id="sampler-mapping-wrong-names",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", ["x", "y"])]),
        InvalidPubError,
        "parameter values must be numbers",
        id="non-numeric-values",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", [[0.1, 0.2], [0.3, np.nan]])]),
        InvalidPubError,
        r"PUB 0: parameter 'beta' has a non-finite value \(.*nan.*\) at binding index \(1,\)",
        id="nan-value",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", {"alpha": [0.0, 1.0, np.inf], "beta": [1.0, 2.0, 3.0]})]),
        InvalidPubError,
        r"parameter 'alpha' has a non-finite value \(.*inf.*\) at binding index \(2,\)",
        id="inf-value-mapping",
    ),
    pytest.param(
        lambda e, s: e.run([(_parametric(), "ZZ", _bindings_with(1, 2, 0, -np.inf))]),
        InvalidPubError,
        r"parameter 'alpha' has a non-finite value \(.*-inf.*\) at binding index \(1, 2\)",
        id="inf-value-2d-bindings",
    ),
    pytest.param(
        lambda e, s: s.run([(_measured_bell(),), (_parametric_measured(), [-np.inf, 1.0])]),
        InvalidPubError,
        r"PUB 1: parameter 'alpha' has a non-finite value .* at binding index \(\)",
        id="sampler-inf-value",
    ),
    # -- precision
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ")], precision=-0.1),
        InvalidInputError,
        r"precision must be finite and >= 0, got -0.1",
        id="precision-negative",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ")], precision=float("nan")),
        InvalidInputError,
        r"precision must be finite and >= 0, got nan",
        id="precision-nan",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ")], precision=float("inf")),
        InvalidInputError,
        r"precision must be finite and >= 0, got inf",
        id="precision-inf",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ")], precision="0.1"),
        InvalidInputError,
        r"precision must be a real number, got '0.1'",
        id="precision-string",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ", None, -0.1)]),
        InvalidPubError,
        "PUB 0: precision must be non-negative",
        id="pub-precision-negative",
    ),
    pytest.param(
        lambda e, s: e.run([(_bell(), "ZZ"), (_bell(), "ZZ", None, float("nan"))]),
        InvalidPubError,
        "PUB 1: precision must be finite, got nan",
        id="pub-precision-nan",
    ),
    # -- shots
    pytest.param(
        lambda e, s: s.run([_measured_bell()], shots=0),
        InvalidInputError,
        "shots must be a positive int, got 0",
        id="shots-zero",
    ),
    pytest.param(
        lambda e, s: s.run([_measured_bell()], shots=-1),
        InvalidInputError,
        "shots must be a positive int, got -1",
        id="shots-negative",
    ),
    pytest.param(
        lambda e, s: s.run([_measured_bell()], shots=1.5),
        InvalidInputError,
        "shots must be a positive int, got 1.5",
        id="shots-float",
    ),
    pytest.param(
        lambda e, s: s.run([_measured_bell()], shots=True),
        InvalidInputError,
        "shots must be a positive int, got True",
        id="shots-bool",
    ),
    pytest.param(
        lambda e, s: s.run([(_measured_bell(), None, 0)]),
        InvalidPubError,
        "PUB 0: shots must be positive",
        id="pub-shots-zero",
    ),
    pytest.param(
        lambda e, s: s.run([(_measured_bell(), None, -1)]),
        InvalidPubError,
        "PUB 0: shots must be positive",
        id="pub-shots-negative",
    ),
    pytest.param(
        lambda e, s: s.run([(_measured_bell(), None, 1.5)]),
        InvalidPubError,
        "PUB 0: shots must be an integer",
        id="pub-shots-float",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_RUN_CALLS)
async def test_bad_run_call_raises_at_run_and_the_session_keeps_working(
    call: Call, error: type[Exception], match: str
) -> None:
    async with Session() as session:
        estimator, sampler = Estimator(), Sampler()
        with pytest.raises(AqrtError, match=match) as info:
            call(estimator, sampler)
        assert type(info.value) is error
        assert isinstance(info.value, ValueError)
        if isinstance(info.value, InvalidPubError):
            assert str(info.value).startswith(f"PUB {info.value.pub_index}: ")
        assert session.statistics()["total"] == 0  # raised before any job existed
        await _assert_session_works(session)
        # the same primitives are still usable
        assert float((await estimator.run([(_bell(), "ZZ")]))[0].data.evs) == pytest.approx(1.0)
        assert (await sampler.run([_measured_bell()], shots=4))[0].data.meas.num_shots == 4


async def test_many_bad_calls_in_a_row_leave_one_session_usable() -> None:
    async with Session() as session:
        estimator, sampler = Estimator(), Sampler()
        for param in BAD_RUN_CALLS:
            call, error, _ = param.values
            with pytest.raises(error):
                call(estimator, sampler)
            await _assert_session_works(session)
        assert session.statistics()["error"] == 0


# -- options ----------------------------------------------------------------------------------------

BAD_OPTIONS: list[Any] = [
    pytest.param(
        lambda: Estimator(options={"optimisation_level": 1}),
        r"unknown option\(s\) \['optimisation_level'\]; known options are \[.*'optimization_level'",
        id="estimator-dict-unknown",
    ),
    pytest.param(
        lambda: Sampler(options={"shots": 10, "seed": 1}),
        r"unknown option\(s\) \['shots'\]",
        id="sampler-dict-unknown",
    ),
    pytest.param(
        lambda: setattr(Estimator(), "options", {"nope": 1}),
        r"unknown option\(s\) \['nope'\]",
        id="options-setter-unknown",
    ),
    pytest.param(
        lambda: Options.from_mapping({"seed": 1, "bogus": 2, "also_bogus": 3}),
        r"unknown option\(s\) \['also_bogus', 'bogus'\]",
        id="from-mapping-unknown",
    ),
    pytest.param(lambda: Options().replace(bogus=1), r"unknown option\(s\) \['bogus'\]", id="replace-unknown"),
    pytest.param(lambda: Estimator(options=5), "options must be Options or a dict, got int", id="options-wrong-type"),
    pytest.param(
        lambda: Options(optimization_level=4),
        r"optimization_level must be in 0\.\.3, got 4",
        id="optimization-level-4",
    ),
    pytest.param(
        lambda: Estimator(options={"optimization_level": -1}),
        r"optimization_level must be in 0\.\.3, got -1",
        id="optimization-level-negative",
    ),
    pytest.param(
        lambda: Options(optimization_level=1.0),
        "optimization_level must be an int, got 1.0",
        id="optimization-level-float",
    ),
    pytest.param(
        lambda: Options(resilience_level=3),
        r"resilience_level must be in 0\.\.2, got 3",
        id="resilience-level-3",
    ),
    pytest.param(
        lambda: Estimator(options={"resilience_level": -1}),
        r"resilience_level must be in 0\.\.2, got -1",
        id="resilience-level-negative",
    ),
    pytest.param(
        lambda: Sampler(options={"resilience_level": 1}),
        r"unknown option\(s\) \['resilience_level'\]; known options are .*\(SamplerOptions\)",
        id="sampler-has-no-resilience-level",
    ),
    pytest.param(lambda: Options(default_shots=0), "default_shots must be in >= 1, got 0", id="default-shots-zero"),
    pytest.param(
        lambda: Sampler(options={"default_shots": -5}),
        "default_shots must be in >= 1, got -5",
        id="default-shots-negative",
    ),
    pytest.param(lambda: Options(default_shots=2.5), "default_shots must be an int, got 2.5", id="default-shots-float"),
    pytest.param(
        lambda: Options(default_precision=-0.5),
        "default_precision must be finite and >= 0, got -0.5",
        id="default-precision-negative",
    ),
    pytest.param(
        lambda: Options(default_precision=float("nan")),
        "default_precision must be finite and >= 0, got nan",
        id="default-precision-nan",
    ),
    pytest.param(lambda: Options(seed=-1), "seed must be in >= 0, got -1", id="seed-negative"),
    pytest.param(
        lambda: Options(max_execution_time="10 m"),
        "max_execution_time='10 m'.*" + re.escape(GRAMMAR),
        id="max-execution-time-malformed",
    ),
]


@pytest.mark.parametrize(("make", "match"), BAD_OPTIONS)
async def test_bad_options_raise_invalid_options_error_and_the_session_keeps_working(
    make: Callable[[], Any], match: str
) -> None:
    async with Session() as session:
        with pytest.raises(InvalidOptionsError, match=match) as info:
            make()
        assert isinstance(info.value, ValueError)
        assert session.statistics()["total"] == 0
        await _assert_session_works(session)


async def test_primitive_keeps_its_old_options_after_a_rejected_assignment() -> None:
    estimator = Estimator(options={"default_precision": 0.25, "seed": 3})
    with pytest.raises(InvalidOptionsError):
        estimator.options = {"default_precision": -1.0}
    assert estimator.options == Options(default_precision=0.25, seed=3)
    async with Session():
        circuit = QuantumCircuit(1)
        result = await Estimator(options=estimator.options).run([(circuit, "Z")])
    assert float(result[0].data.stds) == 0.25


# -- session time specs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_time",
    ["10 m", "1.5h", "abc", "0s", "", "-5m", -5, 0, "5m 2h", "1m 1m", True, " 5m", "5m ", "5M", "5m  2s", 1.5],
)
async def test_malformed_max_time_raises_time_spec_error_showing_the_grammar(max_time: Any) -> None:
    with pytest.raises(InvalidTimeSpecError) as info:
        Session(max_time=max_time)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert GRAMMAR in message
    assert f"max_time={max_time!r}" in message
    with pytest.raises(InvalidTimeSpecError, match=re.escape(GRAMMAR)):
        parse_duration(max_time)


async def test_malformed_interactive_timeout_raises_time_spec_error() -> None:
    with pytest.raises(InvalidTimeSpecError, match=r"interactive_timeout='10 m'.*" + re.escape(GRAMMAR)):
        Session(interactive_timeout="10 m")


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [
        ("2h 30m 40s", 9040),
        ("25m", 1500),
        ("1d", 86400),
        ("1d 2h 3m 4s", 93784),
        (90, 90),
        ("45s", 45),
        ("1h 5s", 3605),
    ],
)
async def test_valid_durations_parse(spec: int | str, seconds: int) -> None:
    assert parse_duration(spec) == seconds


@pytest.mark.parametrize(("spec", "seconds"), [("2h 30m 40s", 9040), ("25m", 1500), (90, 90), ("8h", 8 * 3600)])
async def test_valid_max_time_is_accepted_and_the_session_runs(spec: int | str, seconds: int) -> None:
    session = Session(max_time=spec)
    assert session.max_time == seconds
    async with session:
        await _assert_session_works(session)


@pytest.mark.parametrize("max_time", ["9h", 8 * 3600 + 1, "1d", "1d 2h 3m 4s"])
async def test_max_time_above_the_backend_maximum_raises(max_time: int | str) -> None:
    match = r"exceeds the system maximum of backend 'aqrt_statevector', 28800 s"
    with pytest.raises(InvalidTimeSpecError, match=match):
        Session(max_time=max_time)


# -- closed sessions, wide circuits, unknown backends ------------------------------------------------


@pytest.mark.parametrize("how", ["exit", "close", "cancel"])
async def test_submitting_to_a_closed_session_raises_session_closed_error(how: str) -> None:
    async with Session() as session:
        estimator, sampler = Estimator(), Sampler()
        await _assert_session_works(session)
        if how == "close":
            await session.close()
        elif how == "cancel":
            await session.cancel()
    with pytest.raises(SessionClosedError, match=f"session {session.session_id} is closed"):
        estimator.run([(_bell(), "ZZ")])
    with pytest.raises(SessionClosedError):
        sampler.run([_measured_bell()])
    with pytest.raises(SessionClosedError):
        Estimator(mode=session).run([(_bell(), "ZZ")])
    assert session.statistics()["total"] == 2
    async with Session() as fresh:  # a new session is unaffected
        await _assert_session_works(fresh)


async def test_circuit_wider_than_the_backend_raises_circuit_too_large() -> None:
    wide = QuantumCircuit(6)
    wide.ry(0.3, range(6))  # not Clifford: a Clifford circuit this wide runs on stim
    wide_measured = wide.copy()
    wide_measured.measure_all()
    async with Session(service=LocalService(max_qubits=5)) as session:
        match = r"PUB 1: the circuit acts on 6 qubits; backend 'aqrt_statevector' simulates at most 5"
        with pytest.raises(CircuitTooLargeError, match=match) as info:
            Estimator().run([(_bell(), "ZZ"), (wide, "Z" * 6)])
        assert isinstance(info.value, MemoryError)
        with pytest.raises(CircuitTooLargeError, match="PUB 0: the circuit acts on 6 qubits"):
            Sampler().run([wide_measured])
        assert session.statistics()["total"] == 0
        await _assert_session_works(session)
        five = QuantumCircuit(5)
        five.x(4)
        assert float((await Estimator().run([(five, "ZIIII")]))[0].data.evs) == pytest.approx(-1.0)
    with pytest.raises(CircuitTooLargeError, match="6 qubits"):
        Estimator(mode=LocalService(max_qubits=5).backend()).run([(wide, "Z" * 6)])


async def test_unknown_backend_name_raises_backend_not_found() -> None:
    match = r"no backend 'no_such_backend' on LocalService; available: \[.*'aqrt_statevector'"
    with pytest.raises(BackendNotFoundError, match=match) as info:
        Estimator(mode="no_such_backend")
    assert isinstance(info.value, LookupError)
    with pytest.raises(BackendNotFoundError, match="no_such_backend"):
        Sampler(mode="no_such_backend")
    with pytest.raises(BackendNotFoundError, match="no_such_backend"):
        Session(backend="no_such_backend")
    async with Session() as session:
        with pytest.raises(BackendNotFoundError, match="no_such_backend"):
            Estimator(mode="no_such_backend")
        await _assert_session_works(session)


async def test_unknown_option_keyword_raises_the_typed_error() -> None:
    from aqrt import InvalidOptionsError, Options

    with pytest.raises(InvalidOptionsError, match=r"unknown option\(s\) \['bogus'\]"):
        Options(bogus=1)
    with pytest.raises(InvalidOptionsError, match="keyword-only"):
        Options(2)  # type: ignore[misc]
    assert Options(seed=3).seed == 3


async def test_an_opaque_instruction_is_refused_at_run() -> None:
    """An instruction with neither a matrix nor a definition fails at run(), not when the job runs."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.append(Gate("mystery", 2, []), [0, 1])
    match = r"PUB 0: instruction 1 \(mystery on qubit\(s\) \[0, 1\]\) is opaque"
    with pytest.raises(UnsupportedCircuitError, match=match):
        Estimator(mode=LocalService().backend()).run([(circuit, "ZZ")])
    wrapper = QuantumCircuit(2)
    wrapper.append(circuit.to_gate(label="outer"), [1, 0])  # opaque inside a definition
    wrapper.measure_all()
    with pytest.raises(UnsupportedCircuitError, match="opaque"):
        Sampler(mode=LocalService().backend()).run([wrapper])
    defined = QuantumCircuit(2, name="bell_maker")
    defined.h(0)
    defined.cx(0, 1)
    fine = QuantumCircuit(2)
    fine.append(defined.to_gate(), [0, 1])  # a custom gate with a definition runs
    result = await Estimator(mode=LocalService().backend()).run([(fine, "ZZ")])
    assert float(result[0].data.evs) == pytest.approx(1.0)


def _terminal_measurements_by_full_walk(circuit: QuantumCircuit) -> tuple[dict[int, int], set[int]]:
    """The definition of terminal measurements, walking every instruction (the oracle)."""
    busy_qubits: set[int] = set()
    busy_clbits: set[int] = set()
    mapping: dict[int, int] = {}
    positions: set[int] = set()
    for position in reversed(range(len(circuit.data))):
        instruction = circuit.data[position]
        if instruction.operation.name in ("barrier", "delay"):
            continue
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        clbits = [circuit.find_bit(c).index for c in instruction.clbits]
        if instruction.operation.name == "measure" and qubits[0] not in busy_qubits and clbits[0] not in busy_clbits:
            mapping[clbits[0]] = qubits[0]
            positions.add(position)
            busy_clbits.update(clbits)
            continue
        busy_qubits.update(qubits)
        busy_clbits.update(clbits)
    return mapping, positions


async def test_terminal_measurements_stop_early_and_agree_with_the_full_walk() -> None:
    from aqrt.backends.local.reference import final_measurements

    rng = np.random.default_rng(5)
    for _ in range(200):
        num_qubits, num_clbits = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        circuit = QuantumCircuit(num_qubits, num_clbits)
        for _ in range(int(rng.integers(0, 12))):
            kind = rng.integers(0, 4)
            q = int(rng.integers(num_qubits))
            if kind == 0:
                circuit.measure(q, int(rng.integers(num_clbits)))
            elif kind == 1:
                circuit.h(q)
            elif kind == 2:
                circuit.barrier()
            elif num_qubits > 1:
                circuit.cx(q, (q + 1) % num_qubits)
        assert final_measurements(circuit) == _terminal_measurements_by_full_walk(circuit)


async def test_a_long_sampler_circuit_is_validated_without_walking_it_in_python() -> None:
    """validate_pub runs on the event loop: a 100k-gate circuit with measure_all took 0.5 s
    (every instruction's Python object built three times); now the walk costs the tail."""
    import time

    from qiskit.primitives.containers.sampler_pub import SamplerPub

    circuit = QuantumCircuit(16)
    for i in range(50_000):
        circuit.rx(0.1, i % 16)
        circuit.cx(i % 16, (i + 1) % 16)
    circuit.measure_all()
    backend = LocalService(max_qubits=24).backend()
    pub = SamplerPub.coerce((circuit,), shots=10)
    start = time.perf_counter()
    backend.validate_pub("sampler", pub, 0)
    assert time.perf_counter() - start < 0.3  # ~0.04 s here; generous for a loaded machine
