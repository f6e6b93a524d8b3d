"""Gate fusion (aqrt.engine.lowering._fuse) and the kernels it feeds, against qiskit's Statevector.

Production fuses by cost (:func:`aqrt.engine.fused_width`: 2 qubits on wide states, 1 on small
ones); an explicit ``max_fused_qubits`` fuses greedily up to that width, so every block size is
exercised here whatever the cost model picks.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp, Statevector

from aqrt.engine import fused_width, lower_circuit, simulate
from aqrt.engine.kernels.apply import VECTOR_QUBIT, apply_diag
from aqrt.engine.observables import build_term_table
from aqrt.engine.ops import CTRL, CX, DENSE, DIAG, SEL, WIDE_QUBITS

TOLERANCE = {"complex128": 1e-10, "complex64": 2e-5}
DTYPES = tuple(TOLERANCE)


def _random_circuit(n: int, depth: int, seed: int) -> QuantumCircuit:
    """1-qubit rotations, diagonal and dense 2-qubit gates, swaps and a Toffoli on random qubits,
    with the lowest and highest qubit always among them."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(n)
    for layer in range(depth):
        for q in range(n):
            circuit.u(*rng.uniform(0, 2 * np.pi, 3), q)
        pairs = rng.permutation(n)
        for a, b in zip(pairs[0::2], pairs[1::2], strict=False):
            gate = rng.integers(6)
            a, b = int(a), int(b)
            if gate == 0:
                circuit.cx(a, b)
            elif gate == 1:
                circuit.cz(a, b)
            elif gate == 2:
                circuit.rzz(float(rng.uniform(0, 6)), a, b)
            elif gate == 3:
                circuit.crx(float(rng.uniform(0, 6)), a, b)
            elif gate == 4:
                circuit.swap(a, b)
            else:
                circuit.cp(float(rng.uniform(0, 6)), a, b)
        circuit.cx(0, n - 1) if layer % 2 else circuit.cx(n - 1, 0)
        circuit.rz(float(rng.uniform(0, 6)), 0)
        circuit.p(float(rng.uniform(0, 6)), n - 1)
        if n >= 3:
            circuit.ccx(0, n // 2, n - 1)
    return circuit


def _assert_state(program, expected: np.ndarray, dtype: str, parallel: bool | None = None) -> None:
    state = simulate.final_state(program, 0, parallel=parallel)
    assert state.dtype == np.dtype(dtype)
    np.testing.assert_allclose(state, expected, rtol=0, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [None, 1, 2, 3, 4])
def test_fused_blocks_of_every_width_match_statevector_on_a_small_state(width: int | None, dtype: str) -> None:
    circuit = _random_circuit(6, 4, seed=3)
    expected = Statevector(circuit).data
    program = lower_circuit(circuit).bind(np.zeros((1, 0)), max_fused_qubits=width, dtype=dtype)
    if width is not None and width >= 2:
        fused = program.ops.kinds != CTRL  # the Toffoli stays a controlled op
        assert int(program.ops.widths[fused].max()) == width  # blocks as wide as allowed were built
    _assert_state(program, expected, dtype, parallel=False)
    _assert_state(program, expected, dtype, parallel=True)  # the cache-blocked path on the same program


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [None, 2, 4])
def test_fused_blocks_match_statevector_on_a_wide_state(width: int | None, dtype: str) -> None:
    n = WIDE_QUBITS
    circuit = _random_circuit(n, 2, seed=5)
    expected = Statevector(circuit).data
    program = lower_circuit(circuit).bind(np.zeros((1, 0)), max_fused_qubits=width, dtype=dtype)
    _assert_state(program, expected, dtype)


def test_production_fuses_runs_of_one_qubit_gates_at_every_width() -> None:
    """The cost model's 2-qubit blocks did not pay on the wide workload and cost ~4x the binding
    time (lowering.fused_width): production merges 1-qubit runs only."""
    assert fused_width(WIDE_QUBITS - 1) == 1
    assert fused_width(WIDE_QUBITS) == 1
    assert fused_width(30) == 1


def _brickwork(n: int, first: int) -> QuantumCircuit:
    rng = np.random.default_rng(11)
    circuit = QuantumCircuit(n)
    for q in range(n):
        circuit.u(*rng.uniform(0, 2 * np.pi, 3), q)
    for q in range(first, n - 1, 2):
        circuit.cx(q, q + 1)
    return circuit


def test_the_cost_model_fuses_u_u_cx_on_high_qubits_and_leaves_u_cx_apart() -> None:
    n = WIDE_QUBITS
    circuit = _brickwork(n, first=VECTOR_QUBIT)  # pairs (4, 5), (6, 7), ...: u (x) u then cx
    program = lower_circuit(circuit).bind(np.zeros((1, 0)), max_fused_qubits=2, fuse_by_cost=True)
    pairs = [(int(program.ops.qubits[j, 0]), int(program.ops.qubits[j, 1])) for j in range(program.num_ops)]
    dense_pairs = {
        tuple(sorted(p)) for j, p in enumerate(pairs) if program.ops.kinds[j] == DENSE and program.ops.widths[j] == 2
    }
    assert dense_pairs == {(q, q + 1) for q in range(VECTOR_QUBIT, n - 1, 2)}
    assert not (program.ops.kinds == CX).any()
    _assert_state(program, Statevector(circuit).data, "complex128")

    # a cx ladder after the rotations: u then cx costs less apart than as one 4x4 (and then
    # each cx goes into a select with the rotation on its target)
    ladder = QuantumCircuit(n)
    for q in range(n):
        ladder.ry(0.1 * (q + 1), q)
    for q in range(n - 1):
        ladder.cx(q, q + 1)
    program = lower_circuit(ladder).bind(np.zeros((1, 0)), max_fused_qubits=2, fuse_by_cost=True)
    assert int((program.ops.kinds == SEL).sum()) == n - 1
    assert not ((program.ops.kinds == DENSE) & (program.ops.widths == 2)).any()
    _assert_state(program, Statevector(ladder).data, "complex128")


def test_two_qubit_blocks_are_not_fused_where_the_kernel_falls_back_to_scalar_code() -> None:
    circuit = _brickwork(WIDE_QUBITS, first=0)  # pairs (0, 1), (2, 3) are below VECTOR_QUBIT
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    for j in range(program.num_ops):
        if program.ops.kinds[j] == DENSE and program.ops.widths[j] == 2:
            assert min(program.ops.qubits[j, :2]) >= VECTOR_QUBIT


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_diagonal_run_becomes_one_diagonal(dtype: str) -> None:
    n = WIDE_QUBITS
    high, highest = n - 2, n - 1
    circuit = QuantumCircuit(n)
    circuit.h(range(n))
    circuit.ccx(0, high, highest)  # a controlled op: never fused, so the run below starts fresh
    circuit.rz(0.3, high)
    circuit.cz(high, highest)
    circuit.p(0.7, highest)
    circuit.rzz(0.4, high, highest)
    circuit.t(high)
    program = lower_circuit(circuit).bind(np.zeros((1, 0)), max_fused_qubits=2, fuse_by_cost=True, dtype=dtype)
    diagonal = [j for j in range(program.num_ops) if program.ops.kinds[j] == DIAG]
    assert len(diagonal) == 1
    assert sorted(program.ops.qubits[diagonal[0], : program.ops.widths[diagonal[0]]]) == [high, highest]
    _assert_state(program, Statevector(circuit).data, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("qubits", [[VECTOR_QUBIT], [9], [9, VECTOR_QUBIT], [5, 11, 7], [0], [2, 10], [11, 0]])
def test_apply_diag_runs_match_the_elementwise_product(qubits: list[int], dtype: str) -> None:
    rng = np.random.default_rng(len(qubits) * 100 + qubits[0])
    n = 12
    state = (rng.normal(size=1 << n) + 1j * rng.normal(size=1 << n)).astype(dtype)
    diagonal = (rng.normal(size=1 << len(qubits)) + 1j * rng.normal(size=1 << len(qubits))).astype(dtype)
    index = np.arange(1 << n)
    sub = sum(((index >> q) & 1) << b for b, q in enumerate(qubits))
    expected = state.astype(np.complex128) * diagonal.astype(np.complex128)[sub]
    apply_diag(state, np.array(qubits, dtype=np.int64), diagonal)
    np.testing.assert_allclose(state, expected, rtol=0, atol=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [6, WIDE_QUBITS])
def test_parameterised_sweeps_through_fused_blocks(n: int, dtype: str) -> None:
    theta = ParameterVector("t", 3 * n)
    circuit = QuantumCircuit(n)
    for q in range(n):
        circuit.ry(theta[q], q)
        circuit.rz(theta[n + q], q)
    for q in range(0, n - 1, 2):
        circuit.cx(q, q + 1)
    for q in range(n):
        circuit.rx(theta[2 * n + q], q)
    for q in range(1, n - 1, 2):
        circuit.rzz(theta[q], q, q + 1)
    values = np.random.default_rng(n).uniform(0, 2 * np.pi, (2, circuit.num_parameters))
    observables = [SparsePauliOp("Z" * n), SparsePauliOp("X" + "I" * (n - 2) + "Y"), SparsePauliOp("I" * (n - 1) + "X")]
    labels = [{label: complex(c) for label, c in zip(o.paulis.to_labels(), o.coeffs, strict=True)} for o in observables]
    table = build_term_table(labels, n)
    states = [Statevector(circuit.assign_parameters(row)) for row in values]
    expected = np.array([[state.expectation_value(o).real for o in observables] for state in states])
    lowered = lower_circuit(circuit)
    for width in (None, 2, 3):
        program = lowered.bind(values, max_fused_qubits=width, dtype=dtype)
        values_found = table.combine(simulate.term_values(program, table.x_masks, table.z_masks))
        np.testing.assert_allclose(values_found, expected, rtol=0, atol=TOLERANCE[dtype] * 10, err_msg=f"{width}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bulk_matrices_of_every_formula_gate_match_statevector(dtype: str) -> None:
    """Gates sharing a formula get their matrices in one call over all bindings (bind's bulk path)."""
    a, b, c = ParameterVector("a", 3)
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    for gate in ("rx", "ry", "rz", "p"):
        getattr(circuit, gate)(a, 0)
        getattr(circuit, gate)(2 * b + 0.1, 1)
        getattr(circuit, gate)(c, 2)
    circuit.u(a, b, c, 0)
    circuit.u(c, a, 0.3, 2)
    circuit.r(a, b, 1)
    for gate in ("rzz", "rxx", "ryy", "rzx", "crx", "cry", "crz", "cp"):
        getattr(circuit, gate)(a - c, 0, 1)
        getattr(circuit, gate)(b, 2, 1)
    values = np.random.default_rng(4).uniform(-4, 4, (3, 3))
    lowered = lower_circuit(circuit)
    program = lowered.bind(values, max_fused_qubits=1, dtype=dtype)
    for row, binding in enumerate(values):
        expected = Statevector(circuit.assign_parameters(binding)).data
        state = simulate.final_state(program, row, parallel=False)
        np.testing.assert_allclose(state, expected, rtol=0, atol=TOLERANCE[dtype])


# -- a 1-qubit gate then a CX or CZ on its qubit: one select ---------------------------------------


def _ansatz(n: int, layers: int) -> QuantumCircuit:
    """ry, rz on every qubit, then a cx ladder, per layer (the engine benchmark's wide workload)."""
    theta = ParameterVector("t", 2 * n * layers)
    circuit = QuantumCircuit(n)
    k = 0
    for _ in range(layers):
        for q in range(n):
            circuit.ry(theta[k], q)
            circuit.rz(theta[k + 1], q)
            k += 2
        for q in range(n - 1):
            circuit.cx(q, q + 1)
    return circuit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 6, WIDE_QUBITS])
def test_every_cx_of_a_ladder_after_rotations_goes_into_a_select(n: int, dtype: str) -> None:
    circuit = _ansatz(n, 3)
    values = np.random.default_rng(n).uniform(0, 2 * np.pi, (1, circuit.num_parameters))
    program = lower_circuit(circuit).bind(values, dtype=dtype)
    assert int((program.ops.kinds == SEL).sum()) == 3 * (n - 1)
    assert not (program.ops.kinds == CX).any()
    assert program.num_ops == 3 * n  # the first qubit's rotations per layer, and a select per other qubit
    targets_controls = {
        (int(program.ops.qubits[j, 0]), int(program.ops.qubits[j, 1]))
        for j in range(program.num_ops)
        if program.ops.kinds[j] == SEL
    }
    assert targets_controls == {(q + 1, q) for q in range(n - 1)}
    _assert_state(program, Statevector(circuit.assign_parameters(values[0])).data, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_sweep_plan_makes_the_same_selects_as_binding_each_values(dtype: str) -> None:
    n = 6
    circuit = _ansatz(n, 2)
    values = np.random.default_rng(5).uniform(0, 2 * np.pi, (7, circuit.num_parameters))
    lowered = lower_circuit(circuit)
    swept = lowered.bind(values, dtype=dtype)
    assert swept.angles is not None  # the sweep plan, entries made from angles
    assert int((swept.ops.kinds == SEL).sum()) == 2 * (n - 1)
    for b in range(values.shape[0]):
        one = lowered.bind(values[b : b + 1], dtype=dtype)
        np.testing.assert_array_equal(one.ops.kinds, swept.ops.kinds)
        np.testing.assert_allclose(swept.binding_buffers[b], one.binding_buffers[0], rtol=0, atol=TOLERANCE[dtype])
        expected = Statevector(circuit.assign_parameters(values[b])).data
        _assert_state(one, expected, dtype)
        np.testing.assert_allclose(
            simulate.probabilities(swept, b, b + 1)[0], np.abs(expected) ** 2, rtol=0, atol=TOLERANCE[dtype]
        )
    labels = ["ZZIIXY", "IIZIII", "XXXXXX"]
    table = build_term_table([{label: 1.0} for label in labels], n)
    found = table.combine(simulate.term_values(swept, table.x_masks, table.z_masks))
    for b in range(values.shape[0]):
        expected = Statevector(circuit.assign_parameters(values[b]))
        exact = [expected.expectation_value(SparsePauliOp(label)).real for label in labels]
        np.testing.assert_allclose(found[b].real, exact, rtol=0, atol=50 * TOLERANCE[dtype])


def test_cz_goes_into_a_select_on_either_qubit_and_a_cx_without_a_gate_before_stays() -> None:
    circuit = QuantumCircuit(5)
    circuit.h(0)
    circuit.cx(0, 1)  # nothing on qubit 1 before: stays a CX
    circuit.ry(0.3, 3)
    circuit.cz(3, 2)  # nothing on 2 before, a rotation on 3: a select on target 3, control 2
    circuit.rx(0.7, 4)
    circuit.rz(0.2, 1)
    circuit.cx(1, 4)  # rx on 4 before: a select on target 4, control 1 (after the rz on 1)
    circuit.s(2)
    circuit.cx(2, 3)  # the select on 3 is closed: stays a CX
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    kinds = program.ops.kinds.tolist()
    selects = [
        (int(program.ops.qubits[j, 0]), int(program.ops.qubits[j, 1]))
        for j in range(program.num_ops)
        if kinds[j] == SEL
    ]
    assert sorted(selects) == [(3, 2), (4, 1)]
    assert kinds.count(CX) == 2
    for dtype in DTYPES:
        _assert_state(
            program if dtype == "complex128" else lower_circuit(circuit).bind(np.zeros((1, 0)), dtype=dtype),
            Statevector(circuit).data,
            dtype,
        )


def test_a_select_reads_its_control_where_the_cx_stood() -> None:
    """The rotation moves forward to the CX; a gate on the control between them must act first."""
    circuit = QuantumCircuit(2)
    circuit.ry(0.4, 1)
    circuit.h(0)  # on the control, after the target's rotation and before the CX
    circuit.cx(0, 1)
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    assert program.ops.kinds.tolist() == [DENSE, SEL]
    _assert_state(program, Statevector(circuit).data, "complex128")
