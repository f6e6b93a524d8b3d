"""The stabilizer route (aqrt.backends.local.stabilizer) against Qiskit's own simulators.

Gate by gate against Qiskit's matrices; random Clifford circuits (2-8 qubits, several gate sets)
against ``Statevector``; wide ones (100-200 qubits) against ``StabilizerState``; result layout
against ``StatevectorSampler``. Samples are checked with fixed seeds and bounds a wrong mapping
fails: exact support, and every outcome's frequency within 5 standard errors.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
import stim
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit import Parameter
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.primitives import BitArray, StatevectorSampler
from qiskit.quantum_info import (
    Clifford,
    Operator,
    Pauli,
    SparseObservable,
    SparsePauliOp,
    StabilizerState,
    Statevector,
    random_clifford,
)

from aqrt.backends.local.stabilizer import expectation_values, is_clifford, sample, to_stim

FIXED_GATES = ["id", "x", "y", "z", "h", "s", "sdg", "sx", "sxdg", "cx", "cy", "cz", "swap", "iswap", "ecr", "dcx"]
ROTATIONS = ["rz", "p", "u1", "rx", "ry", "r", "u", "u2", "u3", "rzz", "rxx", "ryy", "rzx"]
CONTROLLED_ROTATIONS = ["cp", "cu1", "crz", "crx", "cry"]  # Clifford at multiples of pi, not pi/2
STANDARD = get_standard_gate_name_mapping()
QUARTER = math.pi / 2
Z_LIMIT = 5.0


# --- helpers ---------------------------------------------------------------------------------


def gate(name: str, angles: list[float]) -> QuantumCircuit:
    """One standard gate on qubits 0..k-1 of a k-qubit circuit."""
    template = STANDARD[name]
    circuit = QuantumCircuit(template.num_qubits)
    circuit.append(type(template)(*angles) if template.params else template, range(template.num_qubits))
    return circuit


def stim_unitary(circuit: QuantumCircuit) -> np.ndarray:
    stim_circuit, _ = to_stim(circuit)
    tableau = stim_circuit.to_tableau()
    # Qubits no op touches (an identity gate) are absent from the stim circuit: pad the tableau.
    padding = stim.Tableau(circuit.num_qubits - len(tableau))
    return (tableau + padding).to_unitary_matrix(endian="little")


def equal_up_to_phase(actual: np.ndarray, expected: np.ndarray, atol: float = 1e-5) -> bool:
    pivot = np.unravel_index(np.argmax(np.abs(expected)), expected.shape)
    phase = actual[pivot] / expected[pivot]
    return bool(abs(abs(phase) - 1) < atol and np.allclose(actual, phase * expected, atol=atol))


def random_gate_circuit(num_qubits: int, num_gates: int, seed: int, *, jitter: float = 0.0) -> QuantumCircuit:
    """Gates drawn from the whole supported list, rotations at random multiples of pi/2 (of pi for
    the controlled ones), each angle moved by ±``jitter`` or not (transpiled angles are a hair off
    the grid). The same seed gives the same gates whatever the jitter."""
    rng = np.random.default_rng(seed)
    names = [name for name in FIXED_GATES + ROTATIONS + CONTROLLED_ROTATIONS if STANDARD[name].num_qubits <= num_qubits]
    circuit = QuantumCircuit(num_qubits)
    for _ in range(num_gates):
        name = str(rng.choice(names))
        template = STANDARD[name]
        step = 2 * QUARTER if name in CONTROLLED_ROTATIONS else QUARTER
        angles = [int(rng.integers(-4, 8)) * step + int(rng.integers(-1, 2)) * jitter for _ in template.params]
        qubits = rng.choice(num_qubits, size=template.num_qubits, replace=False).tolist()
        circuit.append(type(template)(*angles) if template.params else template, qubits)
    return circuit


BASES = {
    "ibm-ecr": ["rz", "sx", "x", "ecr"],
    "ibm-cz": ["rz", "sx", "x", "cz"],
    "u-cx": ["u", "cx"],
    "rotations-rzz": ["rx", "ry", "rz", "rzz"],
    "u2-u1-cx": ["u2", "u1", "cx"],
    "rzx": ["rzx", "rz", "sx"],
}


def clifford_circuit(kind: str, num_qubits: int, seed: int, *, jitter: float = 0.0) -> QuantumCircuit:
    """A random Clifford circuit: Qiskit's synthesis (h, s, cx, swap, paulis), the same
    transpiled to a gate set of BASES, or one built from the whole gate list ("gates", where
    ``jitter`` moves angles off the grid)."""
    if kind == "gates":
        return random_gate_circuit(num_qubits, 12 * num_qubits, seed, jitter=jitter)
    circuit = random_clifford(num_qubits, seed=seed).to_circuit()
    if kind == "synthesis":
        return circuit
    return transpile(circuit, basis_gates=BASES[kind], optimization_level=1, seed_transpiler=seed)


KINDS = ["synthesis", "gates", *BASES]


def random_observable(num_qubits: int, rng: np.random.Generator, alphabet: str, num_terms: int) -> SparseObservable:
    terms = [
        ("".join(rng.choice(list(alphabet), size=num_qubits)), complex(rng.normal(), rng.normal()))
        for _ in range(num_terms)
    ]
    return SparseObservable.from_list(terms)


def stabilizer_products(clifford: Clifford, rng: np.random.Generator, count: int) -> list[Pauli]:
    """Products of random subsets of the state's stabilizer generators: expectation ±1."""
    generators = [Pauli(label) for label in clifford.to_labels(mode="S")]
    products = []
    for _ in range(count):
        product = Pauli("I" * clifford.num_qubits)
        for generator in generators:
            if rng.random() < 0.5:
                product = product.compose(generator)
        products.append(product)
    return products


def counts(arrays: dict[str, np.ndarray], circuit: QuantumCircuit) -> dict[str, int]:
    bits = BitArray.concatenate_bits([BitArray(arrays[r.name], r.size) for r in circuit.cregs])
    return bits.get_counts()


def ghz(num_qubits: int, measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    if measure:
        circuit.measure_all()
    return circuit


# --- gates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXED_GATES + ROTATIONS + CONTROLLED_ROTATIONS)
def test_each_gate_matches_qiskit_matrix_up_to_phase(name: str) -> None:
    """On a grid of pi/4 multiples: every angle set is taken exactly when the gate is Clifford
    there (stim decides from Qiskit's matrix), and what is taken is Qiskit's matrix up to phase."""
    num_angles = len(STANDARD[name].params)
    step = 2 * QUARTER if name in CONTROLLED_ROTATIONS else QUARTER
    taken = 0
    for eighths in itertools.product(range(-3, 9), repeat=num_angles):
        angles = [k * math.pi / 4 for k in eighths]
        circuit = gate(name, angles)
        expected = Operator(circuit).data
        if all(k % round(step / (math.pi / 4)) == 0 for k in eighths):
            assert is_clifford(circuit), (name, angles)
        if is_clifford(circuit):
            taken += 1
            assert equal_up_to_phase(stim_unitary(circuit), expected), (name, angles)
        else:
            with pytest.raises(ValueError):  # not a Clifford matrix
                stim.Tableau.from_unitary_matrix(expected, endian="little")
    assert taken


def test_angles_within_tolerance_of_a_quarter_turn() -> None:
    for angle, expected in [
        (QUARTER, True),
        (-math.pi, True),
        (QUARTER + 1e-11, True),
        (7 * QUARTER - 5e-10, True),
        (QUARTER + 1e-6, False),
        (0.3, False),
        (math.pi / 4, False),
    ]:
        assert is_clifford(gate("rz", [angle])) is expected, angle


# --- expectation values ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_qubits", [2, 3, 5, 8])
def test_expectation_values_match_statevector(kind: str, num_qubits: int) -> None:
    seed = 100 * num_qubits + KINDS.index(kind)
    rng = np.random.default_rng(seed)
    circuit = clifford_circuit(kind, num_qubits, seed, jitter=1e-11)  # what the route runs
    exact = clifford_circuit(kind, num_qubits, seed)  # the same gates on the grid: the oracle's
    assert is_clifford(circuit)
    observables = [
        random_observable(num_qubits, rng, "IXYZ", num_terms=6),
        random_observable(num_qubits, rng, "IXYZ+-rl01", num_terms=6),
        random_observable(num_qubits, rng, "I+-rl01", num_terms=3),
        *(SparseObservable.from_pauli(p) for p in stabilizer_products(Clifford(exact), rng, 4)),
    ]
    state = Statevector(exact)
    expected = [state.expectation_value(SparsePauliOp.from_sparse_observable(o)).real for o in observables]
    actual = expectation_values(circuit, observables)
    assert actual.dtype == np.float64 and actual.shape == (len(observables),)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
    assert np.all(np.abs(actual[3:]) == 1.0)  # the stabilizer products: exactly ±1


def test_expectation_value_takes_the_real_part_of_coefficients() -> None:
    circuit = QuantumCircuit(2)
    circuit.x(1)  # |10>: <Z_0> = 1, <Z_1> = -1, <1 on qubit 1> = 1
    observable = SparseObservable.from_sparse_list([("Z", [0], 2 + 5j), ("Z", [1], -0.5j), ("1", [1], 0.25)], 2)
    observables = [observable, SparseObservable.zero(2), SparseObservable.identity(2)]
    assert expectation_values(circuit, observables).tolist() == [2.25, 0.0, 1.0]


@pytest.mark.parametrize("num_qubits", [50, 100, 200])
def test_ghz_expectation_values_exact(num_qubits: int) -> None:
    circuit = ghz(num_qubits, measure=False)
    rng = np.random.default_rng(num_qubits)
    pairs = [rng.choice(num_qubits, size=2, replace=False).tolist() for _ in range(5)]
    observables = [
        *(SparseObservable.from_sparse_list([("ZZ", pair, 1.0)], num_qubits) for pair in pairs),
        SparseObservable.from_label("X" * num_qubits),
        SparseObservable.from_sparse_list([("Z", [num_qubits // 2], 1.0)], num_qubits),
        # Projectors on every qubit: 2**n Pauli terms if expanded, exact here.
        SparseObservable.from_label("0" * num_qubits),
        SparseObservable.from_label("1" * num_qubits),
        SparseObservable.from_label("0" * (num_qubits - 1) + "1"),
        SparseObservable.from_label("+" * num_qubits),  # |<+...+|GHZ>|^2 = 2**(1 - n)
        SparseObservable.from_label("Y" + "0" * (num_qubits - 1)),  # one qubit Pauli, the rest projected
    ]
    expected = [1.0] * 5 + [1.0, 0.0, 0.5, 0.5, 0.0, 2.0 ** (1 - num_qubits), 0.0]
    assert expectation_values(circuit, observables).tolist() == expected


@pytest.mark.parametrize(
    ("num_qubits", "kind"),
    [(120, "ibm-ecr"), (200, "gates")],
)
def test_wide_random_clifford_matches_stabilizer_state(num_qubits: int, kind: str) -> None:
    seed = num_qubits
    rng = np.random.default_rng(seed)
    if kind == "gates":
        circuit = random_gate_circuit(num_qubits, 3000, seed)
    else:
        circuit = clifford_circuit(kind, num_qubits, seed)
    clifford = Clifford(circuit)
    state = StabilizerState(clifford)
    paulis = [
        *stabilizer_products(clifford, rng, 4),
        *(Pauli("".join(rng.choice(list("IXYZ"), size=num_qubits))) for _ in range(3)),
        Pauli("I" * num_qubits),
    ]
    low_weight = SparsePauliOp.from_sparse_list(
        [(str(rng.choice(list("XYZ"))), [int(rng.integers(num_qubits))], float(rng.normal())) for _ in range(3)],
        num_qubits,
    )
    observables = [SparseObservable.from_pauli(p) for p in paulis] + [SparseObservable.from_sparse_pauli_op(low_weight)]
    expected = [state.expectation_value(p) for p in paulis]
    terms = zip(low_weight.paulis, low_weight.coeffs, strict=True)
    expected.append(sum(coeff.real * state.expectation_value(pauli) for pauli, coeff in terms))
    actual = expectation_values(circuit, observables)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
    assert np.all(np.abs(actual[:4]) == 1.0)


def test_expectation_values_refuse_measurements_resets_and_wrong_widths() -> None:
    measured = ghz(3)
    with pytest.raises(ValueError, match="measure"):
        expectation_values(measured, [SparseObservable.identity(3)])
    reset = QuantumCircuit(2)
    reset.h(0)
    reset.reset(0)
    with pytest.raises(ValueError, match="reset"):
        expectation_values(reset, [SparseObservable.identity(2)])
    with pytest.raises(ValueError, match="3 qubits"):
        expectation_values(ghz(2, measure=False), [SparseObservable.identity(3)])


# --- sampling --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["synthesis", "gates", "ibm-ecr", "u-cx"])
@pytest.mark.parametrize("num_qubits", [2, 4, 6, 8])
def test_sample_distribution_matches_statevector(kind: str, num_qubits: int) -> None:
    seed = 1000 + 10 * num_qubits + KINDS.index(kind)
    probabilities = Statevector(clifford_circuit(kind, num_qubits, seed)).probabilities_dict()
    exact = {outcome: p for outcome, p in probabilities.items() if p > 1e-12}  # rounding leaves ~1e-33
    circuit = clifford_circuit(kind, num_qubits, seed, jitter=1e-11).measure_all(inplace=False)
    shots = 20_000
    arrays = sample(circuit, shots, np.random.default_rng(seed))
    assert arrays["meas"].shape == (shots, (num_qubits + 7) // 8) and arrays["meas"].dtype == np.uint8
    observed = counts(arrays, circuit)
    assert set(observed) == set(exact)
    for outcome, probability in exact.items():
        bound = Z_LIMIT * math.sqrt(probability * (1 - probability) / shots)
        assert abs(observed[outcome] / shots - probability) <= bound, (outcome, observed[outcome], probability)


def permuted_layout_circuit(*, random: bool) -> QuantumCircuit:
    """6 qubits measured into three registers in a scrambled order, across a byte boundary, with
    clbits left unmeasured; ``random`` adds a Bell pair (qubits 1, 4) to the X gates."""
    qubits = QuantumRegister(6, "q")
    a, b, c = ClassicalRegister(3, "a"), ClassicalRegister(10, "b"), ClassicalRegister(2, "c")
    circuit = QuantumCircuit(qubits, a, b, c)
    circuit.x([0, 2, 3, 5])
    if random:
        circuit.h(1)
        circuit.cx(1, 4)
    for qubit, clbit in [(0, b[7]), (1, a[0]), (2, a[2]), (3, b[0]), (4, b[9]), (5, c[1])]:
        circuit.measure(qubit, clbit)
    return circuit


def test_bit_layout_matches_statevector_sampler() -> None:
    circuit = permuted_layout_circuit(random=False)
    reference = StatevectorSampler(seed=1).run([circuit], shots=7).result()[0].data
    arrays = sample(circuit, 7, np.random.default_rng(1))
    assert list(arrays) == ["a", "b", "c"]
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], getattr(reference, name).array)
    assert arrays["b"].shape == (7, 2)
    # Sanity of the layout itself: b = clbits 7 and 0 set -> 0b10000001 in the last byte.
    assert arrays["b"][0].tolist() == [0, 0b10000001]


def test_bit_layout_with_random_outcomes_matches_statevector_sampler() -> None:
    circuit = permuted_layout_circuit(random=True)
    shots = 400  # both outcomes of the Bell pair appear with probability 1 - 2**-399
    reference = StatevectorSampler(seed=2).run([circuit], shots=shots).result()[0].data
    arrays = sample(circuit, shots, np.random.default_rng(2))

    def rows(by_register: dict[str, np.ndarray]) -> set[bytes]:
        return {row.tobytes() for row in np.concatenate([by_register[n] for n in ("a", "b", "c")], axis=1)}

    expected = rows({name: getattr(reference, name).array for name in ("a", "b", "c")})
    assert len(expected) == 2
    assert rows(arrays) == expected


@pytest.mark.parametrize("num_qubits", [50, 100, 200])
def test_ghz_samples_all_zeros_or_all_ones(num_qubits: int) -> None:
    shots = 4000
    circuit = ghz(num_qubits)
    observed = counts(sample(circuit, shots, np.random.default_rng(num_qubits)), circuit)
    assert set(observed) == {"0" * num_qubits, "1" * num_qubits}
    ones = observed["1" * num_qubits]
    assert abs(ones - shots / 2) <= Z_LIMIT * math.sqrt(shots / 4)


def test_ghz_100_with_10000_shots_well_under_a_second() -> None:
    circuit = ghz(100)
    start = time.perf_counter()
    arrays = sample(circuit, 10_000, np.random.default_rng(0))
    elapsed = time.perf_counter() - start
    assert arrays["meas"].shape == (10_000, 13)
    assert elapsed < 2.0, f"GHZ-100, 10 000 shots took {elapsed:.2f} s"


def test_mid_circuit_measurement_reset_and_repeated_measurement() -> None:
    """Per shot, with r the random outcome of qubit 1's first measurement:
    c0 = 1 (X then measure), c3 = 0 (measured after a reset), c2 = r (copied onto qubit 2),
    c1 = 1 - r (qubit 1 measured again after an X: the last write wins), c4 = 0 (never measured)."""
    circuit = QuantumCircuit(3, 5)
    circuit.x(0)
    circuit.measure(0, 0)
    circuit.reset(0)
    circuit.measure(0, 3)
    circuit.h(1)
    circuit.measure(1, 1)
    circuit.cx(1, 2)
    circuit.measure(2, 2)
    circuit.x(1)
    circuit.measure(1, 1)
    assert is_clifford(circuit)
    assert to_stim(circuit)[1] == [0, 3, 1, 2, 1]
    shots = 4000
    observed = counts(sample(circuit, shots, np.random.default_rng(3)), circuit)
    # Bitstrings read c4 c3 c2 c1 c0.
    assert set(observed) == {"00101", "00011"}
    assert abs(observed["00101"] - shots / 2) <= Z_LIMIT * math.sqrt(shots / 4)


def test_unmeasured_registers_read_zero() -> None:
    circuit = QuantumCircuit(QuantumRegister(2), ClassicalRegister(3, "never"), ClassicalRegister(0, "empty"))
    circuit.x(0)
    arrays = sample(circuit, 5, np.random.default_rng(0))
    assert arrays["never"].tolist() == [[0]] * 5
    assert arrays["empty"].shape == (5, 0)


def test_same_seed_same_samples() -> None:
    circuit = clifford_circuit("gates", 8, 5).measure_all(inplace=False)
    first = sample(circuit, 1000, np.random.default_rng(42))
    again = sample(circuit, 1000, np.random.default_rng(42))
    other = sample(circuit, 1000, np.random.default_rng(43))
    np.testing.assert_array_equal(first["meas"], again["meas"])
    assert not np.array_equal(first["meas"], other["meas"])  # 8 random bits: never equal by chance


# --- is_clifford and the ISA form ------------------------------------------------------------


def test_is_clifford_refuses_non_clifford_constructs() -> None:
    t_gate = QuantumCircuit(1)
    t_gate.t(0)
    small_angle = gate("rz", [0.3])
    controlled_s = gate("cp", [QUARTER])
    free = QuantumCircuit(1)
    free.rz(Parameter("theta"), 0)
    free_phase = QuantumCircuit(1, global_phase=Parameter("phi"))
    free_phase.h(0)
    flow = QuantumCircuit(1, 1)
    flow.h(0)
    flow.measure(0, 0)
    with flow.if_test((flow.clbits[0], 1)):
        flow.x(0)
    loop = QuantumCircuit(1)
    with loop.for_loop(range(2)):
        loop.h(0)
    unitary = QuantumCircuit(1)
    unitary.unitary(np.eye(2), [0])
    for circuit in [t_gate, small_angle, controlled_s, free, flow, loop, unitary]:
        assert not is_clifford(circuit)
        with pytest.raises(ValueError, match="not a Clifford operation"):
            to_stim(circuit)
        with pytest.raises(ValueError, match="not a Clifford operation"):
            sample(circuit, 1, np.random.default_rng(0))
    # Free parameters: refused while free (a route needs bound circuits), whatever they multiply.
    assert not is_clifford(free_phase)
    assert is_clifford(free_phase.assign_parameters([0.3]))
    assert not is_clifford(free.assign_parameters([0.3]))


def test_is_clifford_takes_bound_quarter_turns() -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.rz(theta, 0)
    circuit.rz(-math.pi, 1)
    circuit.rzz(2 * theta, 0, 1)
    circuit.barrier()
    circuit.delay(100, 0)
    circuit.reset(1)
    circuit.measure_all()
    assert is_clifford(circuit.assign_parameters([QUARTER]))
    assert not is_clifford(circuit.assign_parameters([0.1]))


def test_isa_ghz_on_fake_sherbrooke() -> None:
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

    manager = generate_preset_pass_manager(backend=FakeSherbrooke(), optimization_level=1)
    isa = manager.run(ghz(20))
    assert isa.num_qubits == 127
    assert set(isa.count_ops()) <= {"rz", "sx", "x", "ecr", "measure", "barrier"}
    assert is_clifford(isa)
    shots = 2000
    observed = counts(sample(isa, shots, np.random.default_rng(7)), isa)
    assert set(observed) == {"0" * 20, "1" * 20}
    assert abs(observed["1" * 20] - shots / 2) <= Z_LIMIT * math.sqrt(shots / 4)
