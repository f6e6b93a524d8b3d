"""Sweeps whose gate entries are made inside the kernel from angles (aqrt.engine.kernels.sweeps,
lowering's SweepPlan), and the dot-product Pauli-term kernel, against the per-binding path,
Qiskit's Statevector and a numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import U2Gate
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt.engine import lower_circuit, numpy_interpreter, simulate, warmup
from aqrt.engine.kernels.lanes import LANES
from aqrt.engine.kernels.sweeps import (
    GATE_CODES,
    LANE_BINDINGS,
    binding_row,
    diagonal_values,
    fill_binding_row,
    fill_lane_rows,
    lane_term_values,
    sincos_row,
)
from aqrt.engine.lowering import SWEEP_GATES
from aqrt.engine.observables import build_term_table
from aqrt.engine.ops import DIAG, SEL
from aqrt.engine.sampling import draw_outcomes

TOLERANCE = {"complex128": 1e-12, "complex64": 2e-5}
DTYPES = list(TOLERANCE)


def _oracle(state: np.ndarray, x: int, z: int) -> complex:
    psi = state.astype(np.complex128)
    index = np.arange(psi.shape[0])
    signs = 1 - 2 * (np.bitwise_count(index & z).astype(np.int64) & 1)
    return complex(np.sum(signs * np.conj(psi[index ^ x]) * psi))


def _per_binding(lowered, values, dtype):  # type: ignore[no-untyped-def]
    """The per-binding path (matrices of every binding in numpy): fuse_by_cost at width 1 fuses
    as the default does, without the sweep plan."""
    program = lowered.bind(values, max_fused_qubits=1, fuse_by_cost=True, dtype=dtype)
    assert program.angles is None
    return program


def every_gate_circuit(n: int, seed: int) -> QuantumCircuit:
    """Random layers of every gate the sweep kernels make from angles, static gates between
    them (1-qubit runs, CX, CZ, SWAP, CCX), shared parameters and expressions of parameters."""
    rng = np.random.default_rng(seed)
    theta = ParameterVector("t", 6)
    phi = Parameter("phi")
    circuit = QuantumCircuit(n)
    one_qubit = [
        lambda q, a: circuit.rx(a, q),
        lambda q, a: circuit.ry(a, q),
        lambda q, a: circuit.rz(a, q),
        lambda q, a: circuit.p(a, q),
        lambda q, a: circuit.u(a, 0.3 * a, phi, q),
        lambda q, a: circuit.r(a, phi, q),
        lambda q, a: circuit.append(U2Gate(a, phi), [q]),
        lambda q, a: circuit.h(q),
        lambda q, a: circuit.s(q),
        lambda q, a: circuit.sx(q),
        lambda q, a: circuit.t(q),
        lambda q, a: circuit.rz(0.7, q),
    ]
    for _ in range(3):
        for q in range(n):
            for _ in range(2):
                angle = theta[int(rng.integers(6))]
                if rng.random() < 0.3:
                    angle = 2 * angle + 0.5
                one_qubit[int(rng.integers(len(one_qubit)))](q, angle)
        for q in range(n - 1):
            kind = int(rng.integers(6))
            a, b = (q, q + 1) if rng.random() < 0.5 else (q + 1, q)
            if kind == 0:
                circuit.cx(a, b)
            elif kind == 1:
                circuit.rzz(theta[int(rng.integers(6))], a, b)
            elif kind == 2:
                circuit.cp(phi, a, b)
            elif kind == 3:
                circuit.crz(theta[int(rng.integers(6))], a, b)
            elif kind == 4:
                circuit.cz(a, b)
            else:
                circuit.swap(a, b)
        if n >= 3:
            circuit.ccx(0, 1, 2)
    return circuit


def _random_observable(n: int, terms: int, seed: int) -> SparsePauliOp:
    rng = np.random.default_rng(seed)
    labels = ["".join(rng.choice(list("IXYZ"), n)) for _ in range(terms)]
    labels += ["I" * (n - 1 - q) + "Z" + "I" * q for q in range(n)]  # diagonal terms: the transform
    return SparsePauliOp(labels, rng.normal(size=len(labels))).simplify()


def _table(observable: SparsePauliOp, n: int):  # type: ignore[no-untyped-def]
    return build_term_table([dict(zip(observable.paulis.to_labels(), observable.coeffs, strict=True))], n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 5, 8])
def test_sweep_from_angles_matches_the_per_binding_path_and_qiskit(n: int, dtype: str) -> None:
    circuit = every_gate_circuit(n, seed=n)
    values = np.random.default_rng(n).uniform(-np.pi, np.pi, (7, circuit.num_parameters))
    lowered = lower_circuit(circuit)
    program = lowered.bind(values, dtype=dtype)
    assert program.angles is not None
    observable = _random_observable(n, 12, seed=n)
    table = _table(observable, n)
    found = table.combine(simulate.term_values(program, table.x_masks, table.z_masks))
    reference = _per_binding(lowered, values, dtype)
    expected = table.combine(simulate.term_values(reference, table.x_masks, table.z_masks))
    np.testing.assert_allclose(found, expected, rtol=0, atol=TOLERANCE[dtype])
    names = [p.name for p in circuit.parameters]
    for b in (0, 6):
        bound = circuit.assign_parameters(dict(zip(names, values[b], strict=True)))
        value = Statevector(bound).expectation_value(observable)
        assert abs(found[b, 0] - value.real) < 10 * TOLERANCE[dtype]
    probabilities = simulate.probabilities(program, 2, 7)
    np.testing.assert_allclose(probabilities, simulate.probabilities(reference, 2, 7), rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_binding_buffers_made_from_angles_run_as_the_kernels_make_them(dtype: str) -> None:
    """Paths that read binding buffers (serial, wide, numpy) get them made in numpy from the
    angles: the same amplitudes as the sweep kernel's."""
    warmup(dtype, ["small", "ops"])
    circuit = every_gate_circuit(5, seed=11)
    values = np.random.default_rng(3).uniform(-4, 4, (4, circuit.num_parameters))
    lowered = lower_circuit(circuit)
    table = _table(_random_observable(5, 10, seed=2), 5)
    swept = simulate.term_values(lowered.bind(values, dtype=dtype), table.x_masks, table.z_masks)
    program = lowered.bind(values, dtype=dtype)
    serial = simulate.run_serial(program, table.x_masks, table.z_masks)
    np.testing.assert_allclose(serial, swept, rtol=0, atol=TOLERANCE[dtype])
    for b in range(4):
        state = simulate.final_state(program, b, parallel=True)  # the wide path's kernels
        np.testing.assert_allclose(state, simulate.final_state(_per_binding(lowered, values, dtype), b), atol=1e-5)
    assert program.binding_buffers.dtype == np.dtype(dtype)
    assert program.num_bindings == 4


def _basic_ansatz(n: int, layers: int) -> QuantumCircuit:
    """ry, rz on every qubit, then a CX ladder, per layer: a program ``run_basic_program`` runs."""
    theta = ParameterVector("t", 2 * n * layers)
    circuit = QuantumCircuit(n)
    for layer in range(layers):
        for q in range(n):
            circuit.ry(theta[2 * (layer * n + q)], q)
            circuit.rz(theta[2 * (layer * n + q) + 1], q)
        for q in range(n - 1):
            circuit.cx(q, q + 1)
    return circuit


@pytest.mark.parametrize("basic", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_binding_is_bound_from_the_plan_and_its_row_made_by_the_kernel(dtype: str, basic: bool) -> None:
    """A single binding of a small state comes from the sweep plan too (its gates' matrices are
    not fused afresh per job): the serial kernels get its row from ``binding_row``, the numpy
    interpreter from numpy; both run as the per-binding path and Qiskit do."""
    warmup(dtype, ["small", "ops"])
    circuit = _basic_ansatz(5, 3) if basic else every_gate_circuit(5, seed=4)
    assert simulate.is_basic(lower_circuit(circuit).bind(np.zeros((1, circuit.num_parameters))).ops) == basic
    values = np.random.default_rng(8).uniform(-4, 4, (3, circuit.num_parameters))
    lowered = lower_circuit(circuit)
    observable = _random_observable(5, 10, seed=6)
    table = _table(observable, 5)
    tolerance = TOLERANCE[dtype]
    for b in range(3):
        program = lowered.bind(values[b : b + 1], dtype=dtype)
        assert program.angles is not None and program.num_bindings == 1
        reference = _per_binding(lowered, values[b : b + 1], dtype)
        expected = simulate.run_serial(reference, table.x_masks, table.z_masks)
        found = simulate.run_serial(program, table.x_masks, table.z_masks)
        state = simulate.final_state(program, 0, parallel=False)
        assert not program.materialized  # the rows came from the kernel
        np.testing.assert_allclose(found, expected, rtol=0, atol=tolerance)
        np.testing.assert_allclose(state, simulate.final_state(reference, 0, parallel=False), rtol=0, atol=tolerance)
        swept = simulate.term_values(program, table.x_masks, table.z_masks)
        np.testing.assert_allclose(swept, expected, rtol=0, atol=tolerance)
        on_numpy = numpy_interpreter.term_values(program, table.x_masks, table.z_masks)
        np.testing.assert_allclose(on_numpy, expected, rtol=0, atol=tolerance)
        bound = circuit.assign_parameters(dict(zip([p.name for p in circuit.parameters], values[b], strict=True)))
        assert abs(table.combine(found)[0, 0] - Statevector(bound).expectation_value(observable).real) < 10 * tolerance


def test_one_bindings_entries_in_numpy_are_the_kernels_and_the_sweeps() -> None:
    """``binding_buffers`` of one binding (Python floats) and of many (numpy arrays over the
    bindings) hold the entries ``binding_row`` makes, for every gate code."""
    circuit = every_gate_circuit(4, seed=12)
    values = np.random.default_rng(5).uniform(-4, 4, (5, circuit.num_parameters))
    lowered = lower_circuit(circuit)
    many = lowered.bind(values).binding_buffers
    codes = set()
    for b in range(5):
        program = lowered.bind(values[b : b + 1])
        angles = program.angles
        assert angles is not None
        codes |= {int(code) for code in angles.factors[:, 0]}
        row = np.empty(angles.row_width, dtype=np.complex128)
        binding_row(angles.angles[0], angles.recipes, angles.factors, angles.constants, row)
        one = program.binding_buffers
        assert one.shape == (1, angles.row_width) and one.dtype == np.complex128
        np.testing.assert_allclose(one[0], row, rtol=0, atol=1e-14)
        np.testing.assert_allclose(one[0], many[b], rtol=0, atol=1e-14)
    assert codes >= set(range(11)), f"gate codes not exercised: {set(range(11)) - codes}"


def test_gates_without_an_in_kernel_formula_take_the_per_binding_path() -> None:
    theta = Parameter("t")
    circuit = QuantumCircuit(5)
    circuit.rxx(theta, 0, 1)
    circuit.ry(theta, 2)
    values = np.linspace(0, 1, 3)[:, None]
    lowered = lower_circuit(circuit)
    program = lowered.bind(values)
    assert program.angles is None
    assert lowered.bind(values[:1]).angles is None  # no plan: one binding takes the per-binding path too
    table = _table(SparsePauliOp(["ZZIII", "IIXXI"]), 5)
    found = simulate.term_values(program, table.x_masks, table.z_masks)
    for b, t in enumerate(values[:, 0]):
        bound = circuit.assign_parameters({theta: t})
        expected = [Statevector(bound).expectation_value(SparsePauliOp(label)) for label in ("ZZIII", "IIXXI")]
        np.testing.assert_allclose(found[b], expected, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seeded_samples_of_a_sweep_are_the_per_binding_paths(dtype: str) -> None:
    circuit = every_gate_circuit(6, seed=5)
    values = np.random.default_rng(9).uniform(-np.pi, np.pi, (5, circuit.num_parameters))
    lowered = lower_circuit(circuit)
    swept = simulate.probabilities(lowered.bind(values, dtype=dtype), 0, 5)
    reference = simulate.probabilities(_per_binding(lowered, values, dtype), 0, 5)
    np.testing.assert_allclose(swept, reference, rtol=0, atol=1e-14 if dtype == "complex128" else 1e-6)
    if dtype == "complex128":
        for b in range(5):
            first = draw_outcomes(swept[b], np.random.default_rng(b), 2000)
            again = draw_outcomes(reference[b], np.random.default_rng(b), 2000)
            assert np.array_equal(first, again)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_lane_term_values_match_the_oracle(n: int) -> None:
    """Several states side by side (as the sweep kernel holds its bindings' final states), every
    kind of term: diagonal, imaginary, sharing an x mask, the highest qubit flipped; and the
    diagonal terms from one Walsh-Hadamard transform."""
    rng = np.random.default_rng(n)
    lanes = 5
    states = rng.normal(size=(lanes, 1 << n)) + 1j * rng.normal(size=(lanes, 1 << n))
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    x = rng.integers(0, 1 << n, 40).astype(np.int64)
    z = rng.integers(0, 1 << n, 40).astype(np.int64)
    x[:6] = 0  # diagonal terms
    x[7:9] = x[9]
    x[10] = (1 << n) - 1
    x[11] = 1 << (n - 1)
    z[12] = 0
    imaginary = (np.bitwise_count(x & z) & 1).astype(np.int64)
    reals = np.zeros((1 << n, LANE_BINDINGS))
    imags = np.zeros((1 << n, LANE_BINDINGS))
    reals[:, :lanes] = states.real.T
    imags[:, :lanes] = states.imag.T
    out = np.zeros((LANE_BINDINGS, 40), dtype=np.complex128)
    lane_term_values(reals, imags, lanes, x, z, imaginary, False, out)
    for lane in range(lanes):
        expected = np.array([_oracle(states[lane], int(a), int(b)) for a, b in zip(x, z, strict=True)])
        np.testing.assert_allclose(out[lane], expected, rtol=0, atol=1e-12)
        diagonal = np.zeros(40, dtype=np.complex128)
        diagonal_values(states[lane], np.empty(1 << n), x, z, diagonal)
        np.testing.assert_allclose(diagonal[x == 0], expected[x == 0], rtol=0, atol=1e-12)
    assert not np.any(out[lanes:])  # lanes beyond the states' are left alone


def test_plans_are_shared_by_content_only() -> None:
    """Sweep plans are kept by what they depend on: the same circuit lowered twice shares one;
    a static angle or a parameter's name that differs gives another, with its own values."""
    theta = ParameterVector("t", 2)

    def circuit(static: float, second: Parameter) -> QuantumCircuit:
        qc = QuantumCircuit(5)
        qc.ry(theta[0], 0)
        qc.rz(static, 0)
        qc.rx(second, 1)
        qc.cx(0, 1)
        return qc

    values = np.random.default_rng(1).uniform(-2, 2, (3, 2))
    first = lower_circuit(circuit(0.7, theta[1]))
    again = lower_circuit(circuit(0.7, theta[1]))
    assert first is not again and first.sweep_plan(np.dtype("complex128")) is again.sweep_plan(np.dtype("complex128"))
    other = lower_circuit(circuit(0.8, theta[1]))
    assert other.sweep_plan(np.dtype("complex128")) is not first.sweep_plan(np.dtype("complex128"))
    renamed = lower_circuit(circuit(0.7, Parameter("u")))
    assert renamed.sweep_plan(np.dtype("complex128")) is not first.sweep_plan(np.dtype("complex128"))
    table = _table(SparsePauliOp(["IIIXZ", "IIIZX"]), 5)
    for lowered, qc in ((first, circuit(0.7, theta[1])), (other, circuit(0.8, theta[1]))):
        found = simulate.term_values(lowered.bind(values), table.x_masks, table.z_masks)
        names = [p.name for p in qc.parameters]
        for b in range(3):
            state = Statevector(qc.assign_parameters(dict(zip(names, values[b], strict=True))))
            expected = [state.expectation_value(SparsePauliOp(label)) for label in ("IIIXZ", "IIIZX")]
            np.testing.assert_allclose(found[b], expected, atol=1e-12)


def test_gate_codes_agree_and_sines_are_libms_to_an_ulp() -> None:
    """lowering (numpy only) and the kernels share the gate codes; the kernel's sin/cos agree with
    numpy's within about an ulp, past the polynomial's range (libm's) too."""
    assert {name: code for name, (code, _, _) in SWEEP_GATES.items()} == GATE_CODES
    rng = np.random.default_rng(0)
    for angles in (rng.uniform(-40, 40, 4097), np.array([0.0, np.pi, -np.pi / 2, 1e-300, 3e5, -2e6])):
        cosines, sines = np.empty_like(angles), np.empty_like(angles)
        sincos_row(angles, cosines, sines)
        np.testing.assert_allclose(cosines, np.cos(angles), rtol=0, atol=4e-16)
        np.testing.assert_allclose(sines, np.sin(angles), rtol=0, atol=4e-16)


def _rephased_ops(plan) -> list[tuple[int, int, int, int]]:  # type: ignore[no-untyped-def]
    """(offset, entries, ry's angle column, rz's angle column) of each op fused from ry then rz
    (alone, or as a select's first matrix before a CX): the lanes hold its matrix without rz's
    global phase."""
    ry, rz = GATE_CODES["ry"], GATE_CODES["rz"]
    found = []
    for kind, offset, first, count, _ in plan.recipes:
        own = count - 1 if kind == SEL else count
        if kind == DIAG or own != 2 or (kind == SEL and plan.factors[first + 2, 0] != 0):
            continue
        if plan.factors[first, 0] == ry and plan.factors[first + 1, 0] == rz:
            found.append((offset, 8 if kind == SEL else 4, plan.factors[first, 1], plan.factors[first + 1, 1]))
    return found


def _assert_lanes_hold_own_rows(plan, rows_re, rows_im, cosines, sines, dtype: str) -> None:  # type: ignore[no-untyped-def]
    """Lane by lane, fill_lane_rows' entries are fill_binding_row's, bit for bit, except the
    ry-then-rz ops': those are the binding's own entries times conj(rz's first entry) = cos +
    i sin of rz's half angle (its global phase dropped), to rounding; their matrix's row 0 is
    then exactly ry's (real: its imaginary parts exact zeros, which the lane kernels read), and
    a select's second matrix is X times the first (its row 1 that real row)."""
    rephased = _rephased_ops(plan)
    exact = np.ones(plan.row_width, dtype=bool)
    for offset, entries, _, _ in rephased:
        exact[offset : offset + entries] = False
    for lane in range(LANES):
        row = np.zeros(plan.row_width, dtype=dtype)
        own_angles = cosines[:, lane].copy(), sines[:, lane].copy()
        fill_binding_row(row, *own_angles, plan.recipes, plan.factors, plan.constants)
        np.testing.assert_array_equal(rows_re[exact, lane], row.real[exact])
        np.testing.assert_array_equal(rows_im[exact, lane], row.imag[exact])
        for offset, entries, ry_column, rz_column in rephased:
            phase = complex(cosines[rz_column, lane], sines[rz_column, lane])
            own = row[offset : offset + entries].astype(np.complex128) * phase
            held = rows_re[offset : offset + entries, lane] + 1j * rows_im[offset : offset + entries, lane]
            np.testing.assert_allclose(held, own, rtol=0, atol=4e-16 if dtype == "complex128" else 2e-7)
            real_row = [cosines[ry_column, lane], -sines[ry_column, lane]]
            np.testing.assert_array_equal(rows_re[offset : offset + 2, lane], np.array(real_row, dtype=rows_re.dtype))
            assert not rows_im[offset : offset + 2, lane].any()
            if entries == 8:  # the select's second matrix: X times the first
                held_re = rows_re[offset : offset + 8, lane]
                np.testing.assert_array_equal(held_re[4:6], held_re[2:4])
                np.testing.assert_array_equal(held_re[6:8], held_re[0:2])
                assert not rows_im[offset + 6 : offset + 8, lane].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_lane_rows_are_each_bindings_own_row(dtype: str) -> None:
    """fill_lane_rows makes, lane by lane, the entries fill_binding_row makes for one binding:
    every gate code (the every-gate circuits, u2 included), SEL and 1- and 2-qubit diagonals;
    ops fused from ry then rz without rz's global phase."""
    codes: set[int] = set()
    rephased = 0
    for n in (5, 8):
        circuit = every_gate_circuit(n, seed=n)
        values = np.random.default_rng(n + 1).uniform(-np.pi, np.pi, (LANES, circuit.num_parameters))
        plan = lower_circuit(circuit).bind(values, dtype=dtype).angles
        assert plan is not None
        codes |= set(plan.factors[:, 0].tolist())
        rephased += len(_rephased_ops(plan))
        real = np.float64 if dtype == "complex128" else np.float32
        rows_re = np.full((plan.row_width, LANES), np.nan, dtype=real)
        rows_im = np.full((plan.row_width, LANES), np.nan, dtype=real)
        cosines = np.cos(plan.angles.T).copy()
        sines = np.sin(plan.angles.T).copy()
        fill_lane_rows(cosines, sines, plan.recipes, plan.factors, plan.constants, rows_re, rows_im)
        _assert_lanes_hold_own_rows(plan, rows_re, rows_im, cosines, sines, dtype)
    assert codes == {0, *GATE_CODES.values()}
    assert rephased, "the every-gate circuits fuse ry then rz somewhere"


ONE_ANGLE_GATES = ("rx", "ry", "rz", "p")


@pytest.mark.parametrize("then", ONE_ANGLE_GATES)
@pytest.mark.parametrize("first", ONE_ANGLE_GATES)
def test_two_one_angle_gates_on_a_qubit_make_the_entries_a_binding_s_own_row_gets(first: str, then: str) -> None:
    """A 1-qubit op fused from two one-angle gates (an ansatz's ry then rz) has its lanes'
    entries made in one pass of vectors: bit for bit those fill_binding_row makes (ry then rz:
    without rz's global phase), alone and as the first matrix of a select (the gate before a CX
    on its target), in a sweep's program."""
    theta = ParameterVector("t", 4)
    circuit = QuantumCircuit(2)
    getattr(circuit, first)(theta[0], 0)
    getattr(circuit, then)(theta[1], 0)
    getattr(circuit, first)(theta[2], 1)
    getattr(circuit, then)(theta[3], 1)
    circuit.cx(0, 1)
    values = np.random.default_rng(5).uniform(-4 * np.pi, 4 * np.pi, (LANES, 4))
    values[0] = [0.0, -0.0, np.pi, -np.pi / 2]  # exact zeros and quadrant edges
    plan = lower_circuit(circuit).bind(values).angles
    assert plan is not None
    fused = [r for r in range(plan.recipes.shape[0]) if plan.recipes[r, 3] - (plan.recipes[r, 0] == SEL) == 2]
    assert fused, "both qubits' pairs fuse into one op each"
    rows_re = np.full((plan.row_width, LANES), np.nan)
    rows_im = np.full((plan.row_width, LANES), np.nan)
    cosines, sines = np.cos(plan.angles.T).copy(), np.sin(plan.angles.T).copy()
    fill_lane_rows(cosines, sines, plan.recipes, plan.factors, plan.constants, rows_re, rows_im)
    _assert_lanes_hold_own_rows(plan, rows_re, rows_im, cosines, sines, "complex128")
    assert len(_rephased_ops(plan)) == (2 if (first, then) == ("ry", "rz") else 0)
    program = lower_circuit(circuit).bind(values)
    expected = [Statevector(circuit.assign_parameters(v)).data for v in values]
    for lane in range(LANES):
        np.testing.assert_allclose(simulate.final_state(program, lane), expected[lane], rtol=0, atol=1e-12)
