"""The numba statevector engine end to end: lowering + fusion + kernels against Qiskit's
``Statevector`` on random circuits drawn from every standard gate, parameter sweeps against
``StatevectorEstimator``, the Sampler's bit layout and statistics, edge cases, the wide
(amplitude-parallel, cache-blocked) path, and the numba engine against the reference engine.

References run off the event loop (``asyncio.to_thread``) so blockbuster only watches aqrt.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import ControlledGate, Gate, Instruction, Parameter, ParameterVector
from qiskit.circuit.library import MCPhaseGate, MCXGate, UnitaryGate, get_standard_gate_name_mapping
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparseObservable, SparsePauliOp, Statevector, random_unitary
from scipy.stats import chisquare

from aqrt import Estimator, InvalidPubError, LocalService, Options, Sampler, Session
from aqrt.engine import lower_circuit, simulate, warmup
from aqrt.engine.observables import build_term_table, build_term_table_sparse

pytestmark = pytest.mark.asyncio

ATOL = 1e-10
WIDE = 18  # >= simulate.WIDE_QUBITS: one binding at a time, cache-blocked, amplitude-parallel


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    warmup()


# -- random circuits from every standard gate ---------------------------------------------------------

_NOT_GATES = {"global_phase", "delay", "reset", "measure"}
STANDARD_GATES = {
    name: gate for name, gate in sorted(get_standard_gate_name_mapping().items()) if name not in _NOT_GATES
}
A, B, C = Parameter("a"), Parameter("b"), Parameter("c")
V = ParameterVector("v", 2)
SYMBOLS: list[Any] = [A, B, C, V[0], V[1], 2 * A + B, A - 0.25, -C, A * B, B.sin() + 0.5 * V[1]]


def _angle(rng: np.random.Generator, symbolic: bool) -> Any:
    if symbolic and rng.random() < 0.5:
        return SYMBOLS[int(rng.integers(len(SYMBOLS)))]
    return float(rng.uniform(-2 * np.pi, 2 * np.pi))


def _random_gate(rng: np.random.Generator, n: int, symbolic: bool) -> Gate:
    """A standard gate (random parameters, random ctrl_state if controlled), a multi-controlled
    X or phase with 3-5 controls, or a random 1-3 qubit UnitaryGate; at most ``n`` qubits."""
    while True:
        roll = rng.random()
        if roll < 0.08 and n >= 4:
            controls = int(rng.integers(3, min(5, n - 1) + 1))
            return MCXGate(controls, ctrl_state=int(rng.integers(1 << controls)))
        if roll < 0.16 and n >= 4:
            controls = int(rng.integers(3, min(5, n - 1) + 1))
            return MCPhaseGate(_angle(rng, symbolic), controls, ctrl_state=int(rng.integers(1 << controls)))
        if roll < 0.24:
            k = int(rng.integers(1, min(3, n) + 1))
            return UnitaryGate(random_unitary(1 << k, seed=int(rng.integers(2**31))))
        names = list(STANDARD_GATES)
        template = STANDARD_GATES[names[int(rng.integers(len(names)))]]
        if template.num_qubits > n:
            continue
        params = [_angle(rng, symbolic) for _ in template.params]
        if isinstance(template, ControlledGate):
            ctrl_state = int(rng.integers(1 << template.num_ctrl_qubits))
            return template.base_class(*params, ctrl_state=ctrl_state)
        return template.base_class(*params) if params else template


def random_engine_circuit(n: int, num_gates: int, seed: int, *, symbolic: bool = True) -> QuantumCircuit:
    """``num_gates`` random gates on random qubit orders, and a non-zero global phase."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(n)
    for _ in range(num_gates):
        gate = _random_gate(rng, n, symbolic)
        qubits = [int(q) for q in rng.choice(n, size=gate.num_qubits, replace=False)]
        circuit.append(gate, qubits)
    circuit.global_phase = (A + 0.5) if symbolic and rng.random() < 0.3 else float(rng.uniform(0.1, 6.0))
    return circuit


def random_observable(n: int, rng: np.random.Generator, num_terms: int) -> SparsePauliOp:
    """Random Paulis with real coefficients, an identity term, and a complex pair whose imaginary
    parts cancel (so the observable is Hermitian)."""
    labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(num_terms)]
    labels.append("I" * n)
    coeffs = list(rng.normal(size=len(labels)) + 0j)
    imaginary = float(rng.normal())
    labels += [labels[0], labels[0]]
    coeffs += [0.25 + 1j * imaginary, -0.25 - 1j * imaginary]
    return SparsePauliOp(labels, np.array(coeffs, dtype=complex))


def _bound(circuit: QuantumCircuit, values: np.ndarray) -> QuantumCircuit:
    """``circuit`` with ``values`` (in ``circuit.parameters`` order) assigned."""
    if not circuit.parameters:
        return circuit
    return circuit.assign_parameters(dict(zip(circuit.parameters, values.tolist(), strict=True)))


def _assert_same_state_up_to_phase(state: np.ndarray, expected: np.ndarray, atol: float = ATOL) -> None:
    overlap = np.vdot(expected, state)
    assert abs(abs(overlap) - 1) < atol, f"|<expected|state>| = {abs(overlap)}"
    np.testing.assert_allclose(state, expected * overlap / abs(overlap), rtol=0, atol=atol)


def _label_dict(observable: SparsePauliOp) -> dict[str, complex]:
    """Label -> coefficient, repeated labels summed (a dict cannot repeat them)."""
    out: dict[str, complex] = {}
    for label, coeff in observable.to_list():
        out[label] = out.get(label, 0) + coeff
    return out


async def _in_thread(function: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(function)


# -- property test: random circuits, every standard gate, fused widths 1-3 --------------------------


def _check_direct_paths(circuit: QuantumCircuit, observables: list[SparsePauliOp], values: np.ndarray) -> np.ndarray:
    """Engine (every fused width, every entry point) vs Statevector; returns the expected evs."""
    n = circuit.num_qubits
    states = [Statevector(_bound(circuit, row)) for row in values]
    expected = np.array([[sv.expectation_value(obs).real for obs in observables] for sv in states])
    lowered = lower_circuit(circuit)
    assert lowered.parameter_names == tuple(p.name for p in circuit.parameters)
    label_table = build_term_table([_label_dict(obs) for obs in observables], n)
    sparse_table = build_term_table_sparse([SparseObservable.from_sparse_pauli_op(obs) for obs in observables])
    for width in (1, 2, 3):
        program = lowered.bind(values, max_fused_qubits=width)
        assert program.num_bindings == values.shape[0]
        for table in (label_table, sparse_table):
            swept = simulate.term_values(program, table.x_masks, table.z_masks)
            serial = simulate.run_serial(program, table.x_masks, table.z_masks)
            np.testing.assert_allclose(table.combine(swept), expected, rtol=0, atol=ATOL, err_msg=f"width {width}")
            np.testing.assert_allclose(table.combine(serial), expected, rtol=0, atol=ATOL, err_msg=f"width {width}")
        for b, sv in enumerate(states):
            _assert_same_state_up_to_phase(simulate.final_state(program, b, parallel=False), sv.data)
            _assert_same_state_up_to_phase(simulate.final_state(program, b, parallel=True), sv.data)
        probabilities = simulate.probabilities(program, 0, program.num_bindings)
        np.testing.assert_allclose(probabilities, [sv.probabilities() for sv in states], rtol=0, atol=ATOL)
    return expected


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    num_qubits=st.integers(1, 12),
    num_gates=st.integers(0, 40),
    num_bindings=st.integers(1, 3),
    circuit_seed=st.integers(0, 2**32 - 1),
    observable_seed=st.integers(0, 2**32 - 1),
    num_terms=st.integers(1, 6),
)
@example(num_qubits=12, num_gates=40, num_bindings=3, circuit_seed=1, observable_seed=2, num_terms=6)
@example(num_qubits=6, num_gates=40, num_bindings=2, circuit_seed=3, observable_seed=4, num_terms=4)
@example(num_qubits=4, num_gates=40, num_bindings=3, circuit_seed=5, observable_seed=6, num_terms=3)
async def test_random_circuits_of_every_standard_gate_match_statevector(
    num_qubits: int, num_gates: int, num_bindings: int, circuit_seed: int, observable_seed: int, num_terms: int
) -> None:
    circuit = random_engine_circuit(num_qubits, num_gates, circuit_seed)
    rng = np.random.default_rng(observable_seed)
    observables = [random_observable(num_qubits, rng, num_terms) for _ in range(2)]
    values = rng.uniform(-2 * np.pi, 2 * np.pi, size=(num_bindings, circuit.num_parameters))
    expected = await _in_thread(lambda: _check_direct_paths(circuit, observables, values))
    async with Session(service=LocalService()):
        result = await Estimator().run([(circuit, observables, values[:, None, :])])
    assert result.metadata["engine"] == "numba"
    assert result[0].data.evs.shape == (num_bindings, 2)
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", [*STANDARD_GATES, "mcx", "mcphase", "unitary"])
async def test_every_gate_alone_in_every_qubit_order(name: str) -> None:
    """Each standard gate (numeric and symbolic parameters, every ctrl_state) on a random state,
    on qubit orders ascending, descending and random, through every entry point."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n = 6
    prep = QuantumCircuit(n)
    for q in range(n):
        prep.u(*rng.uniform(-np.pi, np.pi, 3), q)
    prep.cx(0, 5)
    prep.cx(3, 1)
    observables = [random_observable(n, rng, 8) for _ in range(2)]
    circuits = []
    for trial in range(6):
        symbolic = trial % 2 == 1
        controls = 3 + trial % 3
        if name == "mcx":
            gate: Gate = MCXGate(controls, ctrl_state=int(rng.integers(1 << controls)))
        elif name == "mcphase":
            gate = MCPhaseGate(_angle(rng, symbolic), controls, ctrl_state=int(rng.integers(1 << controls)))
        elif name == "unitary":
            gate = UnitaryGate(random_unitary(1 << (1 + trial % 3), seed=trial))
        else:
            template = STANDARD_GATES[name]
            params = [_angle(rng, symbolic) for _ in template.params]
            if isinstance(template, ControlledGate):
                gate = template.base_class(*params, ctrl_state=trial % (1 << template.num_ctrl_qubits))
            else:
                gate = template.base_class(*params) if params else template
        qubits = sorted(int(q) for q in rng.choice(n, size=gate.num_qubits, replace=False))
        order = [qubits, qubits[::-1], [int(q) for q in rng.permutation(qubits)]][trial % 3]
        circuit = prep.copy()
        circuit.append(gate, order)
        circuits.append(circuit)
    for circuit in circuits:
        values = rng.uniform(-2 * np.pi, 2 * np.pi, size=(2, circuit.num_parameters))
        await _in_thread(lambda: _check_direct_paths(circuit, observables, values))


# -- parameter sweeps --------------------------------------------------------------------------------


def _sweep_circuit() -> QuantumCircuit:
    """6 qubits; theta in many gates (formula, fallback, controlled-wide and fused paths), the
    expression 2*theta + phi in two gates, and theta in the global phase."""
    theta, phi, gamma = Parameter("theta"), Parameter("phi"), Parameter("gamma")
    circuit = QuantumCircuit(6)
    circuit.h(range(6))
    circuit.rx(theta, 0)
    circuit.ry(2 * theta + phi, 1)
    circuit.crz(theta, 1, 2)
    circuit.rzz(phi - theta, 2, 3)
    circuit.cu(theta, phi, 0.3, gamma, 3, 4)  # no vectorised formula: per-binding fallback
    circuit.append(MCPhaseGate(2 * theta + phi, 3, ctrl_state=5), [0, 2, 4, 5])  # multi-controlled
    circuit.rxx(gamma, 5, 0)
    circuit.u(theta, phi, gamma, 5)
    circuit.cx(5, 3)
    circuit.ry(theta, 3)
    circuit.append(UnitaryGate(random_unitary(4, seed=6)), [4, 1])
    circuit.rzx(theta * phi, 0, 4)
    circuit.global_phase = theta
    return circuit


async def test_sweep_of_1000_bindings_broadcast_against_observables_matches_statevector_estimator() -> None:
    circuit = _sweep_circuit()
    rng = np.random.default_rng(1000)
    values = rng.uniform(-np.pi, np.pi, size=(10, 100, 3))
    observables = [[random_observable(6, rng, 4)] for _ in range(10)]  # shape (10, 1)
    pub = (circuit, observables, values)
    async with Session(service=LocalService()):
        result = await Estimator().run([pub])
    expected = await _in_thread(lambda: StatevectorEstimator().run([pub]).result())
    evs = result[0].data.evs
    assert evs.shape == expected[0].data.evs.shape == (10, 100)
    assert result[0].data.stds.shape == (10, 100)
    np.testing.assert_allclose(evs, expected[0].data.evs, rtol=0, atol=ATOL)
    assert np.ptp(evs, axis=1).min() > 1e-3  # the bindings matter
    # spot-check the parameter order (circuit.parameters is sorted by name: gamma, phi, theta)
    assert [p.name for p in circuit.parameters] == ["gamma", "phi", "theta"]
    for i, j in [(0, 0), (3, 57), (9, 99)]:
        direct = Statevector(_bound(circuit, values[i, j])).expectation_value(observables[i][0]).real
        assert abs(evs[i, j] - direct) < ATOL


async def test_parameter_expression_and_shared_parameter_by_name_and_by_value() -> None:
    """A parameter in several gates and an expression of two parameters agree with binding the
    circuit explicitly, whichever form the bindings take."""
    theta, phi = Parameter("theta"), Parameter("phi")
    circuit = QuantumCircuit(3)
    circuit.ry(theta, 0)
    circuit.rx(2 * theta + phi, 1)
    circuit.cry(theta, 0, 2)
    circuit.rzz(2 * theta + phi, 1, 2)
    circuit.p(theta, 2)
    circuit.append(MCXGate(2), [0, 1, 2])
    circuit.rx(theta, 1)
    observable = SparsePauliOp(["ZZI", "IXY", "ZIZ"], [1.0, -0.5, 0.75])
    rng = np.random.default_rng(21)
    thetas, phis = rng.uniform(-3, 3, 7), rng.uniform(-3, 3, 7)
    by_name = (circuit, observable, {"theta": thetas, "phi": phis})
    by_array = (circuit, observable, np.stack([phis, thetas], axis=-1))  # sorted by name: phi, theta
    async with Session(service=LocalService()):
        result = await Estimator().run([by_name, by_array])
    expected = [
        Statevector(circuit.assign_parameters({theta: t, phi: p})).expectation_value(observable).real
        for t, p in zip(thetas, phis, strict=True)
    ]
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(result[1].data.evs, expected, rtol=0, atol=ATOL)
    assert np.ptp(expected) > 0.1


# -- Sampler on the engine ------------------------------------------------------------------------------


def _deterministic_sampler_circuit() -> tuple[QuantumCircuit, np.ndarray]:
    """Three registers, permuted clbits, a subset of qubits measured (qubit 2 and 6 never),
    outcomes fixed by the binding (rx(0) or rx(pi)) and by X gates."""
    qr = QuantumRegister(7, "q")
    first, second, third = ClassicalRegister(3, "first"), ClassicalRegister(4, "second"), ClassicalRegister(2, "third")
    circuit = QuantumCircuit(qr, first, second, third)
    alpha, beta = Parameter("alpha"), Parameter("beta")
    circuit.rx(alpha, 0)
    circuit.rx(beta, 5)
    circuit.x([1, 4])
    circuit.cx(4, 3)  # 3 = 1
    circuit.append(MCXGate(3, ctrl_state=0b010), [0, 1, 5, 6])  # flips 6 when q0=0, q1=1, q5=0
    circuit.barrier()
    circuit.measure(qr[5], first[0])
    circuit.measure(qr[0], first[2])
    circuit.measure(qr[1], first[1])
    circuit.measure(qr[3], second[3])
    circuit.measure(qr[4], second[0])  # second[1], second[2] never written
    circuit.measure(qr[0], third[1])
    circuit.measure(qr[6], third[0])
    values = np.array([[[0.0, 0.0], [np.pi, 0.0], [0.0, np.pi]], [[np.pi, np.pi], [0.0, 0.0], [np.pi, 0.0]]])
    return circuit, values


async def test_sampler_bit_layout_equals_statevector_sampler_on_deterministic_circuits() -> None:
    circuit, values = _deterministic_sampler_circuit()
    pubs = [(circuit, values), circuit.assign_parameters([0, 0])]
    async with Session(service=LocalService()):
        result = await Sampler(options=Options(seed=1)).run(pubs, shots=9)
    expected = await _in_thread(lambda: StatevectorSampler(seed=1, default_shots=9).run(pubs).result())
    assert result.metadata["engine"] == "numba"
    for ours, theirs in zip(result, expected, strict=True):
        assert list(ours.data.keys()) == list(theirs.data.keys()) == ["first", "second", "third"]
        assert ours.data.shape == theirs.data.shape
        for name in theirs.data:
            mine, qiskit_bits = ours.data[name], theirs.data[name]
            assert mine.num_bits == qiskit_bits.num_bits
            assert mine.shape == qiskit_bits.shape
            assert mine.array.dtype == np.uint8
            np.testing.assert_array_equal(mine.array, qiskit_bits.array, err_msg=name)
    data = result[0].data
    assert data.first.shape == (2, 3)
    # hand-computed for binding (0, 1): alpha = pi, beta = 0 -> q0 = 1, q6 untouched (q0 = 1)
    assert data.first.get_counts((0, 1)) == {"110": 9}  # first[2..0] = q0 q1 q5
    assert data.second.get_counts((0, 1)) == {"1001": 9}
    assert data.third.get_counts((0, 1)) == {"10": 9}
    # binding (0, 0): q0 = 0, q1 = 1, q5 = 0 -> the open-controlled X flips q6
    assert data.third.get_counts((0, 0)) == {"01": 9}


async def test_sampler_counts_of_a_random_circuit_pass_chi_square() -> None:
    unitary = random_engine_circuit(5, 30, seed=6, symbolic=False)
    unitary.global_phase = 0.0
    probabilities = Statevector(unitary).probabilities()
    circuit = unitary.copy()
    circuit.measure_all()
    shots = 20_000
    async with Session(service=LocalService()):
        result = await Sampler(options=Options(seed=2025)).run([circuit], shots=shots)
    counts = result[0].data.meas.get_int_counts()
    assert sum(counts.values()) == shots
    observed = np.array([counts.get(i, 0) for i in range(32)], dtype=float)
    expected = probabilities * shots
    assert observed[expected < 1e-9].sum() == 0
    large = expected >= 5
    observed_bins = np.append(observed[large], observed[~large].sum())
    expected_bins = np.append(expected[large], expected[~large].sum())
    assert large.sum() >= 12
    assert chisquare(observed_bins, expected_bins).pvalue > 1e-3
    # the test has power: uniform probabilities are rejected
    assert chisquare(observed_bins, np.full(len(observed_bins), shots / len(observed_bins))).pvalue < 1e-6


async def test_sampler_wide_ghz_gives_only_all_zeros_and_all_ones() -> None:
    circuit = QuantumCircuit(WIDE)
    circuit.h(0)
    for q in range(WIDE - 1):
        circuit.cx(q, q + 1)
    circuit.measure_all()
    shots = 2000
    async with Session(service=LocalService()):
        result = await Sampler(options=Options(seed=18)).run([circuit], shots=shots)
    counts = result[0].data.meas.get_int_counts()
    assert set(counts) <= {0, (1 << WIDE) - 1}
    assert sum(counts.values()) == shots
    assert abs(counts.get(0, 0) - shots / 2) < 5 * np.sqrt(shots / 4)  # 5 sigma


# -- edge cases --------------------------------------------------------------------------------------


async def _estimate(pubs: list[Any], **service: Any) -> Any:
    async with Session(service=LocalService(**service)):
        return await Estimator().run(pubs)


async def test_one_qubit_circuit() -> None:
    circuit = QuantumCircuit(1)
    circuit.u(0.3, 1.1, -0.4, 0)
    circuit.sx(0)
    circuit.rz(0.9, 0)
    circuit.global_phase = 1.2
    observables = ["X", "Y", "Z", SparsePauliOp(["X", "Z", "I"], [0.5, -2.0, 0.25])]
    result = await _estimate([(circuit, observables)])
    sv = Statevector(circuit)
    expected = [sv.expectation_value(SparsePauliOp(o) if isinstance(o, str) else o).real for o in observables]
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)
    assert abs(expected[0]) > 0.05 and abs(expected[1]) > 0.05


@pytest.mark.parametrize("num_qubits", [1, 3, 7])
async def test_empty_circuit(num_qubits: int) -> None:
    circuit = QuantumCircuit(num_qubits)
    observables = [
        "Z" * num_qubits,
        "X" + "I" * (num_qubits - 1),
        "I" * num_qubits,
        SparsePauliOp("Z" * num_qubits, -3.0),
    ]
    result = await _estimate([(circuit, observables)])
    np.testing.assert_allclose(result[0].data.evs, [1.0, 0.0, 1.0, -3.0], rtol=0, atol=1e-12)
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    assert program.num_ops == 0
    state = simulate.final_state(program)
    np.testing.assert_array_equal(state, np.eye(1 << num_qubits)[0])


async def test_barrier_delay_and_identity_are_transparent() -> None:
    plain = QuantumCircuit(3)
    plain.h(0)
    plain.cx(0, 2)
    plain.ry(0.4, 1)
    padded = QuantumCircuit(3)
    padded.id(1)
    padded.h(0)
    padded.barrier()
    padded.delay(100, 2, unit="dt")
    padded.cx(0, 2)
    padded.id(0)
    padded.delay(1e-6, 1, unit="s")
    padded.barrier([0, 1])
    padded.ry(0.4, 1)
    padded.id(2)
    observables = ["ZIZ", "XIX", "IZI", "IXI"]
    result = await _estimate([(padded, observables), (plain, observables)])
    np.testing.assert_allclose(result[0].data.evs, result[1].data.evs, rtol=0, atol=1e-12)
    expected = [Statevector(plain).expectation_value(SparsePauliOp(o)).real for o in observables]
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)
    assert lower_circuit(padded).bind(np.zeros((1, 0))).num_ops == lower_circuit(plain).bind(np.zeros((1, 0))).num_ops


async def test_identity_observables() -> None:
    circuit = random_engine_circuit(4, 12, seed=3, symbolic=False)
    observables = [SparsePauliOp("IIII", 2.5), SparsePauliOp(["IIII", "IIII"], [1.0, -0.25]), "IIII", {"IIII": -1.5}]
    result = await _estimate([(circuit, observables)])
    np.testing.assert_allclose(result[0].data.evs, [2.5, 0.75, 1.0, -1.5], rtol=0, atol=1e-12)


async def test_complex_coefficients_whose_imaginary_parts_cancel() -> None:
    circuit = random_engine_circuit(3, 15, seed=0, symbolic=False)
    observable = SparsePauliOp(["XYZ", "ZZI", "XYZ", "ZZI", "IIY"], [0.5 + 2j, 0.3 - 1j, -0.1 - 2j, 0.2 + 1j, 0.7])
    assert np.allclose(observable.simplify().coeffs.imag, 0)
    result = await _estimate([(circuit, observable)])
    expected = Statevector(circuit).expectation_value(observable.simplify()).real
    assert abs(float(result[0].data.evs) - expected) < ATOL
    assert abs(expected) > 0.05


@pytest.mark.parametrize("optimization_level", [None, 2, 3])
async def test_projector_observables(optimization_level: int | None) -> None:
    """ObservablesArray accepts SparseObservable projector labels (0 1 + - r l); the engine
    expands them into Paulis (and maps them through the transpiler's layout). StatevectorEstimator
    does not take them, so the reference is Statevector with SparseObservable.as_paulis()."""
    circuit = random_engine_circuit(3, 15, seed=8, symbolic=False)
    circuit.swap(0, 2)  # levels 2 and 3 elide swaps into a final layout
    circuit.cx(2, 1)
    labels = ["0+I", "1-r", "lZ0", "+XY", "rl1"]
    observables = [SparseObservable(label) for label in labels]
    observables.append(SparseObservable.from_list([("0+I", 0.5), ("IZr", -2.0)]))
    async with Session(service=LocalService()):
        result = await Estimator(options=Options(optimization_level=optimization_level)).run([(circuit, observables)])
    sv = Statevector(circuit)
    expected = [
        sv.expectation_value(SparsePauliOp.from_sparse_list(obs.as_paulis().to_sparse_list(), 3)).real
        for obs in observables
    ]
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)
    assert min(abs(e) for e in expected) > 1e-3
    # and the label-string path of build_term_table
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    table = build_term_table([{label: 1.0} for label in labels], 3)
    values = table.combine(simulate.term_values(program, table.x_masks, table.z_masks))[0]
    np.testing.assert_allclose(values, expected[: len(labels)], rtol=0, atol=ATOL)


async def test_parameter_free_circuit_with_a_bindings_shape() -> None:
    from qiskit.primitives.containers import BindingsArray

    circuit = random_engine_circuit(3, 12, seed=9, symbolic=False)
    pub = (circuit, ["ZZI", "XIY", "IIZ"], BindingsArray(shape=(2, 1)))
    result = await _estimate([pub])
    expected = await _in_thread(lambda: StatevectorEstimator().run([pub]).result())
    assert result[0].data.evs.shape == expected[0].data.evs.shape == (2, 3)
    np.testing.assert_allclose(result[0].data.evs, expected[0].data.evs, rtol=0, atol=ATOL)


async def test_sweeps_larger_than_one_kernel_batch() -> None:
    """15 qubits, 300 bindings: the small-state path runs bindings in several kernel calls
    (simulate._batches); every binding must land in its own row, for the Estimator and the Sampler."""
    n, count = 15, 300
    assert len(simulate.binding_batches(lower_circuit(QuantumCircuit(n)).bind(np.zeros((count, 0))))) > 1
    angles = [Parameter(f"t{q:02d}") for q in range(9)]
    circuit = QuantumCircuit(n)
    for q, angle in enumerate(angles):
        circuit.rx(angle, q)  # 0 or pi: qubit q holds bit q of the binding index
    circuit.cx(0, 12)
    circuit.append(MCXGate(3), [1, 2, 3, 14])
    index = np.arange(count)
    values = np.pi * ((index[:, None] >> np.arange(9)[None, :]) & 1).astype(float)
    expected_outcomes = index | ((index & 1) << 12) | (((index >> 1) & 7 == 7).astype(int) << 14)
    sampled = circuit.copy()
    sampled.measure_all()
    async with Session(service=LocalService()):
        estimate = await Estimator().run([(circuit, ["I" * (n - 13) + "Z" + "I" * 12, "Z" * n], values[:, None, :])])
        sample = await Sampler(options=Options(seed=0)).run([(sampled, values)], shots=3)
    z12 = 1 - 2 * ((expected_outcomes >> 12) & 1)
    parity = 1 - 2 * np.array([bin(int(o)).count("1") % 2 for o in expected_outcomes])
    assert estimate[0].data.evs.shape == (count, 2)
    np.testing.assert_allclose(estimate[0].data.evs[:, 0], z12, rtol=0, atol=ATOL)
    np.testing.assert_allclose(estimate[0].data.evs[:, 1], parity, rtol=0, atol=ATOL)
    bits = sample[0].data.meas
    assert bits.shape == (count,)
    for b in range(count):
        assert bits.get_int_counts(b) == {int(expected_outcomes[b]): 3}, b


# -- numba engine vs reference engine -------------------------------------------------------------------


@pytest.mark.parametrize("optimization_level", [None, 2])
@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_numba_engine_equals_reference_engine(seed: int, optimization_level: int | None) -> None:
    rng = np.random.default_rng(seed)
    pubs = []
    for n in (2, 4, 6):
        circuit = random_engine_circuit(n, 25, seed=int(rng.integers(2**31)))
        observables = [random_observable(n, rng, 3) for _ in range(3)]
        values = rng.uniform(-np.pi, np.pi, size=(2, 1, circuit.num_parameters))
        pubs.append((circuit, observables, values))
    options = Options(optimization_level=optimization_level)
    results = {}
    for engine in ("numba", "reference"):
        async with Session(service=LocalService(engine=engine)):
            results[engine] = await Estimator(options=options).run(pubs)
        assert results[engine].metadata["engine"] == engine
    for ours, reference in zip(results["numba"], results["reference"], strict=True):
        assert ours.data.evs.shape == reference.data.evs.shape == (2, 3)
        np.testing.assert_allclose(ours.data.evs, reference.data.evs, rtol=0, atol=ATOL)


async def test_numba_engine_equals_reference_engine_on_sampler_bits() -> None:
    circuit, values = _deterministic_sampler_circuit()
    results = {}
    for engine in ("numba", "reference"):
        async with Session(service=LocalService(engine=engine)):
            sampler = Sampler(options=Options(seed=3, optimization_level=2))
            results[engine] = await sampler.run([(circuit, values)], shots=5)
    for name in ("first", "second", "third"):
        np.testing.assert_array_equal(results["numba"][0].data[name].array, results["reference"][0].data[name].array)


def _custom_gate_circuits() -> tuple[QuantumCircuit, QuantumCircuit]:
    x_block, h_block = QuantumCircuit(1, name="block"), QuantumCircuit(1, name="block")
    x_block.x(0)
    h_block.h(0)
    first, second = QuantumCircuit(1), QuantumCircuit(1)
    first.append(x_block.to_gate(), [0])
    second.append(h_block.to_gate(), [0])
    return first, second


def _annotated_circuits() -> tuple[QuantumCircuit, QuantumCircuit]:
    from qiskit.circuit import AnnotatedOperation, InverseModifier
    from qiskit.circuit.library import SGate, TGate

    first, second = QuantumCircuit(1), QuantumCircuit(1)
    first.h(0)
    second.h(0)
    first.append(AnnotatedOperation(SGate(), InverseModifier()), [0])  # |-i>: <Y> = -1
    second.append(AnnotatedOperation(TGate(), InverseModifier()), [0])  # <Y> = -1/sqrt(2)
    return first, second


@pytest.mark.parametrize("make", [_custom_gate_circuits, _annotated_circuits], ids=["custom-gates", "annotated"])
async def test_different_operations_with_the_same_name_in_one_session(make: Callable[[], Any]) -> None:
    first, second = make()
    observables = ["Z", "X", "Y"]
    expected = [[Statevector(c).expectation_value(SparsePauliOp(o)).real for o in observables] for c in (first, second)]
    assert np.abs(np.subtract(*expected)).max() > 0.2
    async with Session(service=LocalService()):  # alone in a fresh session
        alone = await Estimator().run([(second, observables)])
    np.testing.assert_allclose(alone[0].data.evs, expected[1], rtol=0, atol=ATOL)
    async with Session(service=LocalService()):  # after the other one in the same session (shared cache)
        estimator = Estimator()
        a = await estimator.run([(first, observables)])
        b = await estimator.run([(second, observables)])
    np.testing.assert_allclose(a[0].data.evs, expected[0], rtol=0, atol=ATOL)
    np.testing.assert_allclose(b[0].data.evs, expected[1], rtol=0, atol=ATOL)


async def test_reference_engine_equals_numba_engine_on_projector_observables() -> None:
    circuit = random_engine_circuit(3, 15, seed=8, symbolic=False)
    observables = [SparseObservable("0+I"), SparseObservable("1-r")]
    numba = await _estimate([(circuit, observables)])
    reference = await _estimate([(circuit, observables)], engine="reference")
    np.testing.assert_allclose(numba[0].data.evs, reference[0].data.evs, rtol=0, atol=ATOL)


# -- the wide path ------------------------------------------------------------------------------------------


async def test_wide_random_circuit_through_estimator_matches_statevector() -> None:
    """18 qubits (the amplitude-parallel, cache-blocked path), two bindings, gates on the high
    qubits, and ops on more high qubits than a cache block holds (a multi-controlled X on six,
    a 6-qubit unitary) which run alone with the amplitude-parallel kernels."""
    circuit = random_engine_circuit(WIDE, 6 * WIDE // 2, seed=18)
    circuit.append(MCXGate(5, ctrl_state=0b10110), [12, 17, 14, 16, 11, 15])
    circuit.append(UnitaryGate(random_unitary(16, seed=4)), [17, 11, 13, 0])
    circuit.h(range(WIDE))
    circuit.append(MCPhaseGate(A, 4), [17, 16, 15, 14, 13])
    circuit.append(UnitaryGate(random_unitary(64, seed=6)), [16, 12, 14, 11, 17, 13])  # 6 high qubits
    rng = np.random.default_rng(180)
    observables = [random_observable(WIDE, rng, 6) for _ in range(3)]
    values = rng.uniform(-np.pi, np.pi, size=(2, 1, circuit.num_parameters))
    async with Session(service=LocalService()):
        result = await Estimator().run([(circuit, observables, values)])

    def reference() -> np.ndarray:
        states = [Statevector(_bound(circuit, row)) for row in values[:, 0]]
        return np.array([[sv.expectation_value(obs).real for obs in observables] for sv in states])

    expected = await _in_thread(reference)
    assert result[0].data.evs.shape == (2, 3)
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)
    assert np.abs(expected).max() > 1e-3


@pytest.mark.parametrize("n", [12, 13, 14, 17])
async def test_cache_blocked_path_on_every_op_kind_and_high_qubit(n: int) -> None:
    """final_state(parallel=True) schedules ops into cache blocks of 11 low + a few high qubits;
    just above 11 qubits few high qubits fit, so ops on them run alone. Every op kind (dense,
    diagonal, permutation, CX both ways, multi-controlled) on low, high and mixed qubits."""
    top = n - 1
    other = 11 if n > 12 else 10  # a second high qubit where there is one
    circuit = QuantumCircuit(n)
    rng = np.random.default_rng(n)
    for q in range(n):
        circuit.u(*rng.uniform(-np.pi, np.pi, 3), q)
    circuit.cx(top, 0)
    circuit.cx(0, top)
    circuit.cx(other, top)
    circuit.rzz(0.7, other, 3)
    circuit.swap(top, 5)
    circuit.append(UnitaryGate(random_unitary(4, seed=n)), [top, other])
    circuit.append(UnitaryGate(random_unitary(8, seed=n + 1)), [2, top, other])
    circuit.append(MCXGate(3, ctrl_state=0b011), [top, other, 0, 6])
    circuit.append(MCPhaseGate(1.1, 2), [0, top, other])
    circuit.ccx(top, 1, other)
    circuit.append(UnitaryGate(np.diag(np.exp(1j * rng.uniform(-3, 3, 4)))), [other, top])
    for q in range(n):
        circuit.ry(rng.uniform(-np.pi, np.pi), q)
    expected = Statevector(circuit).data
    lowered = lower_circuit(circuit)
    for width in (1, 2, 3):
        program = lowered.bind(np.zeros((1, 0)), max_fused_qubits=width)
        kinds = set(program.ops.kinds.tolist())
        _assert_same_state_up_to_phase(simulate.final_state(program, parallel=True), expected)
        _assert_same_state_up_to_phase(simulate.final_state(program, parallel=False), expected)
        if width == 1:
            assert len(kinds) >= 4, kinds  # several op kinds really were exercised


# -- what the engine cannot run ------------------------------------------------------------------------------


@pytest.mark.parametrize("program", ["estimator", "sampler"])
async def test_instruction_without_definition_or_matrix_is_refused_at_run(program: str) -> None:
    opaque = QuantumCircuit(2, 2)
    opaque.h(0)
    opaque.append(Instruction("mystery_box", 1, 0, []), [1])
    opaque_gate = QuantumCircuit(2, 2)
    opaque_gate.append(Gate("mystery_gate", 2, []), [1, 0])
    good = QuantumCircuit(2, 2)
    good.x(0)
    if program == "sampler":
        for circuit in (opaque, opaque_gate, good):
            circuit.measure([0, 1], [0, 1])
    async with Session(service=LocalService()) as session:
        primitive = Estimator() if program == "estimator" else Sampler()
        pubs = [(c, "ZZ") if program == "estimator" else c for c in (good, opaque)]
        with pytest.raises(InvalidPubError, match=r"PUB 1: instruction 1 \(mystery_box on qubit\(s\) \[1\]\)") as info:
            primitive.run(pubs)
        assert info.value.pub_index == 1
        assert "neither a matrix nor a definition" in str(info.value)
        pubs = [(opaque_gate, "ZZ") if program == "estimator" else opaque_gate]
        with pytest.raises(InvalidPubError, match=r"PUB 0: instruction 0 \(mystery_gate on qubit\(s\) \[1, 0\]\)"):
            primitive.run(pubs)
        assert session.statistics()["total"] == 0  # refused before a job existed
        pubs = [(good, "ZZ") if program == "estimator" else good]
        assert (await primitive.run(pubs))[0].metadata is not None


# -- regressions: bugs found while writing these tests, fixed since --------------------------------------


async def test_gate_parameter_that_is_a_trivial_expression_of_one_parameter() -> None:
    from qiskit.circuit.library import RXGate

    a = Parameter("a")
    circuit = QuantumCircuit(4)
    circuit.h(range(4))
    circuit.append(RXGate(1 * a), [0])
    circuit.append(MCPhaseGate(a + 0, 3), [0, 1, 2, 3])
    assert circuit.data[-1].operation.base_gate.params[0].is_symbol()
    values = np.array([[0.5], [1.7]])
    observable = SparsePauliOp("XXXY")
    expected = [Statevector(circuit.assign_parameters(row)).expectation_value(observable).real for row in values]
    result = await _estimate([(circuit, "XXXY", values)])
    np.testing.assert_allclose(result[0].data.evs, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("program", ["estimator", "sampler"])
async def test_pub_with_zero_bindings(program: str) -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.rx(theta, 0)
    circuit.cx(0, 1)
    async with Session(service=LocalService()):
        if program == "estimator":
            result = await Estimator().run([(circuit, ["ZZ", "XX"], np.zeros((0, 1, 1)))])
            assert result[0].data.evs.shape == (0, 2)
        else:
            circuit.measure_all()
            result = await Sampler().run([(circuit, np.zeros((0, 1)))], shots=3)
            assert result[0].data.meas.array.shape == (0, 3, 1)


@pytest.mark.parametrize("parameterised", [False, True], ids=["static", "parameterised"])
async def test_multi_controlled_custom_one_qubit_gate(parameterised: bool) -> None:
    a = Parameter("a")
    inner = QuantumCircuit(1, name="custom")
    inner.rx(a if parameterised else 0.7, 0)
    inner.h(0)
    inner.t(0)
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.append(inner.to_gate().control(2, ctrl_state=1), [2, 0, 1])
    values = [[0.7]] if parameterised else None
    bound = circuit.assign_parameters(values[0]) if parameterised else circuit
    expected = Statevector(bound).expectation_value(SparsePauliOp(["XZY", "IIX"])).real
    pub = (circuit, SparsePauliOp(["XZY", "IIX"])) + ((values,) if parameterised else ())
    reference = await _estimate([pub], engine="reference")
    np.testing.assert_allclose(reference[0].data.evs, [expected], rtol=0, atol=ATOL)
    result = await _estimate([pub])
    np.testing.assert_allclose(result[0].data.evs, [expected], rtol=0, atol=ATOL)
