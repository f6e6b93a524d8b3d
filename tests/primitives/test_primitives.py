"""Estimator and Sampler results checked against independent references: Qiskit's
StatevectorEstimator / StatevectorSampler, plain Statevector, and a chi-square test.

The references run off the event loop (``asyncio.to_thread``) so blockbuster only watches aqrt.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.circuit.random import random_circuit
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp, Statevector
from scipy.stats import chisquare

from aqrt import Estimator, InvalidPubError, LocalService, Options, Sampler, Session

pytestmark = pytest.mark.asyncio

_HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def _qiskit_estimate(pubs, **kwargs):
    return await asyncio.to_thread(lambda: StatevectorEstimator(**kwargs).run(pubs).result())


async def _qiskit_sample(pubs, **kwargs):
    return await asyncio.to_thread(lambda: StatevectorSampler(**kwargs).run(pubs).result())


def _random_observable(num_qubits: int, rng: np.random.Generator, num_terms: int) -> SparsePauliOp:
    """Random Paulis plus an identity term, with complex coefficients whose imaginary parts
    cancel on simplification (so the observable is Hermitian, as Qiskit requires)."""
    labels = ["".join(rng.choice(list("IXYZ"), num_qubits)) for _ in range(num_terms)]
    labels.append("I" * num_qubits)
    coeffs = list(rng.normal(size=len(labels)) + 0j)
    imaginary = float(rng.normal())
    labels += [labels[0], labels[0]]
    coeffs += [0.25 + 1j * imaginary, -0.25 - 1j * imaginary]
    coeffs[-1] += 1e-16j  # below Qiskit's real_if_close tolerance: the real part is reported
    return SparsePauliOp(labels, np.array(coeffs, dtype=complex))


def _ry_circuit() -> tuple[QuantumCircuit, float]:
    circuit = QuantumCircuit(1)
    angle = 0.7
    circuit.ry(angle, 0)
    return circuit, float(np.cos(angle))


def _two_parameter_circuit() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(3)
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.cx(0, 2)
    circuit.crz(a - 2 * b, 1, 2)
    circuit.h(1)
    circuit.rzz(b, 0, 1)
    circuit.rx(a + 0.3, 2)
    circuit.sx(0)
    circuit.cry(b, 2, 0)
    return circuit


# -- Estimator -----------------------------------------------------------------------------------


@_HYPOTHESIS
@given(
    num_qubits=st.integers(1, 6),
    depth=st.integers(0, 6),
    circuit_seed=st.integers(0, 2**32 - 1),
    observable_seed=st.integers(0, 2**32 - 1),
    num_terms=st.integers(1, 5),
)
async def test_estimator_matches_statevector_estimator_on_random_circuits(
    num_qubits: int, depth: int, circuit_seed: int, observable_seed: int, num_terms: int
) -> None:
    circuit = random_circuit(num_qubits, depth, seed=circuit_seed)
    rng = np.random.default_rng(observable_seed)
    observables = [_random_observable(num_qubits, rng, num_terms) for _ in range(3)]
    async with Session():
        result = await Estimator().run([(circuit, observables)])
    expected = await _qiskit_estimate([(circuit, observables)])
    assert result[0].data.evs.shape == (3,)
    assert result[0].data.evs.dtype == np.float64
    np.testing.assert_allclose(result[0].data.evs, expected[0].data.evs, rtol=0, atol=1e-10)
    # and against a plain Statevector, which Qiskit's estimator also uses: the real part
    direct = [Statevector(circuit).expectation_value(obs.simplify()).real for obs in observables]
    np.testing.assert_allclose(result[0].data.evs, direct, rtol=0, atol=1e-10)


async def test_estimator_identity_only_and_non_trivial_observables() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    observables = [
        SparsePauliOp("II", 2.5),
        SparsePauliOp(["ZZ", "XX", "YY", "II"], [1.0, 0.5, 0.25, -1.0]),
        {"ZI": 1.0, "IZ": 2.0},
        "YY",
    ]
    async with Session():
        result = await Estimator().run([(circuit, observables)])
    np.testing.assert_allclose(result[0].data.evs, [2.5, 1.0 + 0.5 - 0.25 - 1.0, 0.0, -1.0], atol=1e-12)
    expected = await _qiskit_estimate([(circuit, observables)])
    np.testing.assert_allclose(result[0].data.evs, expected[0].data.evs, atol=1e-10)


async def test_observables_with_pauli_phases_give_what_qiskit_gives() -> None:
    # run() caches coerced observables by content, the paulis' phase included; Qiskit's
    # ObservablesArray drops that phase, and so must every cached copy, in either order.
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    operators = []
    for label in ("ZZ", "YY", "XY"):
        plain = SparsePauliOp(label, 0.5)
        phased = plain.copy()
        phased.paulis.phase = [2]
        operators += [plain, phased, phased.copy(), plain.copy()]
    async with Session():
        estimator = Estimator()
        values = [float((await estimator.run([(circuit, op)]))[0].data.evs) for op in operators]
    expected = await _qiskit_estimate([(circuit, op) for op in operators])
    assert values == pytest.approx([float(r.data.evs) for r in expected], abs=1e-12)


async def test_estimator_rejects_non_hermitian_observable_like_qiskit() -> None:
    circuit = QuantumCircuit(1)
    observable = SparsePauliOp(["Z", "X"], [1.0, 0.5j])
    with pytest.raises(ValueError, match="Non-Hermitian"):
        await _qiskit_estimate([(circuit, observable)])
    async with Session() as session:
        with pytest.raises(InvalidPubError, match="PUB 0: Non-Hermitian"):
            Estimator().run([(circuit, observable)])
        assert session.statistics()["total"] == 0


async def test_estimator_broadcasts_bindings_against_observables() -> None:
    circuit = _two_parameter_circuit()
    values = np.random.default_rng(3).uniform(-np.pi, np.pi, size=(4, 1, 2))
    observables = [SparsePauliOp("ZZI"), SparsePauliOp(["XIZ", "IYI", "III"], [0.5, -1.0, 0.125]), "ZIX"]
    pub = (circuit, observables, values)
    async with Session():
        result = await Estimator().run([pub])
    expected = await _qiskit_estimate([pub])
    assert result[0].data.evs.shape == (4, 3)
    assert result[0].data.stds.shape == (4, 3)
    assert result[0].data.shape == (4, 3)
    np.testing.assert_array_equal(result[0].data.stds, 0.0)
    np.testing.assert_allclose(result[0].data.evs, expected[0].data.evs, atol=1e-10)
    # evs vary along both axes: the broadcasting is not degenerate
    assert np.ptp(result[0].data.evs, axis=0).min() > 1e-3
    assert np.ptp(result[0].data.evs, axis=1).min() > 1e-3


async def test_estimator_bindings_dict_form_with_tuple_keys() -> None:
    circuit = _two_parameter_circuit()
    rng = np.random.default_rng(4)
    ab = rng.uniform(-np.pi, np.pi, size=(5, 2))
    observables = [[SparsePauliOp("ZZZ")], [SparsePauliOp("XYI")]]  # shape (2, 1)
    forward = (circuit, SparsePauliOp(["ZZZ", "XYI"], [1.0, -0.5]), {("a", "b"): ab})
    reverse = (circuit, observables, {("b", "a"): ab[:, ::-1]})
    separate = (circuit, "IZZ", {"a": ab[:, 0], "b": ab[:, 1]})
    as_array = (circuit, "IZZ", ab)
    mismatched = (circuit, [SparsePauliOp("ZZZ")] * 5, ab)
    async with Session():
        result = await Estimator().run([forward, reverse, separate, as_array, mismatched])
    expected = await _qiskit_estimate([forward, reverse, separate])
    assert result[0].data.evs.shape == (5,)
    assert result[1].data.evs.shape == (2, 5)
    assert result[1].data.stds.shape == (2, 5)
    np.testing.assert_allclose(result[0].data.evs, expected[0].data.evs, atol=1e-10)
    np.testing.assert_allclose(result[1].data.evs, expected[1].data.evs, atol=1e-10)
    np.testing.assert_allclose(result[2].data.evs, expected[2].data.evs, atol=1e-10)
    # keys are matched by name, not position
    direct = [
        Statevector(circuit.assign_parameters({"a": a, "b": b})).expectation_value(SparsePauliOp("ZZZ")).real
        for a, b in ab
    ]
    np.testing.assert_allclose(result[1].data.evs[0], direct, atol=1e-10)
    np.testing.assert_allclose(result[4].data.evs, direct, atol=1e-10)
    np.testing.assert_allclose(result[2].data.evs, result[3].data.evs, atol=1e-12)


async def test_estimator_precision_noise_is_seeded_and_centred() -> None:
    circuit, exact = _ry_circuit()
    observables = ["Z"] * 4000
    precision = 0.02

    async def run(seed: int) -> np.ndarray:
        async with Session():
            result = await Estimator(options=Options(seed=seed)).run([(circuit, observables)], precision=precision)
        assert result[0].metadata["target_precision"] == precision
        np.testing.assert_array_equal(result[0].data.stds, precision)  # Qiskit would say 0
        return result[0].data.evs

    first, again, other = await run(11), await run(11), await run(12)
    assert first.shape == (4000,)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert np.all(first != exact)
    assert abs(first.mean() - exact) < 5 * precision / np.sqrt(first.size)
    assert abs(first.std() - precision) < 0.1 * precision


async def test_estimator_precision_on_scalar_pub_keeps_array_shape() -> None:
    circuit, exact = _ry_circuit()
    async with Session():
        result = await Estimator(options=Options(seed=1)).run([(circuit, "Z")], precision=0.1)
    evs, stds = result[0].data.evs, result[0].data.stds
    assert isinstance(evs, np.ndarray) and evs.shape == () and evs.dtype == np.float64
    assert stds.shape == () and float(stds) == 0.1
    assert float(evs) != exact and abs(float(evs) - exact) < 1.0


async def test_estimator_precision_sources_pub_over_run_over_options() -> None:
    circuit, exact = _ry_circuit()
    estimator = Estimator(options=Options(default_precision=0.3, seed=2))
    async with Session():
        from_options = await estimator.run([(circuit, "Z")])
        from_run = await estimator.run([(circuit, "Z")], precision=0.1)
        mixed = await estimator.run(
            [(circuit, "Z", None, 0.05), (circuit, "Z", None, 0.0), (circuit, "Z")], precision=0.1
        )
        exact_run = await Estimator(options={"seed": 2}).run([(circuit, "Z")])
    assert float(from_options[0].data.stds) == 0.3
    assert float(from_run[0].data.stds) == 0.1
    assert [float(r.data.stds) for r in mixed] == [0.05, 0.0, 0.1]
    assert float(mixed[1].data.evs) == pytest.approx(exact, abs=1e-12)
    assert float(exact_run[0].data.evs) == pytest.approx(exact, abs=1e-12)
    assert float(exact_run[0].data.stds) == 0.0


@pytest.mark.parametrize("level", [0, 1, 2, 3])
async def test_optimization_levels_do_not_change_estimator_values(level: int) -> None:
    theta = Parameter("theta")
    circuit = random_circuit(4, 5, seed=17)
    circuit.swap(0, 3)  # preset levels 2/3 elide swaps into a final layout
    circuit.ry(theta, 2)
    circuit.cx(2, 1)
    circuit.swap(1, 2)
    observables = [SparsePauliOp("IIIZ"), SparsePauliOp("ZIII"), SparsePauliOp(["XIYZ", "IZIX"], [0.3, -0.7])]
    values = np.array([[0.3], [1.9], [-2.2]])[:, :, None]  # bindings (3, 1) x observables (3,)
    async with Session():
        plain = await Estimator().run([(circuit, observables, values)])
        transpiled = await Estimator(options=Options(optimization_level=level)).run([(circuit, observables, values)])
    assert transpiled[0].data.evs.shape == (3, 3)
    np.testing.assert_allclose(transpiled[0].data.evs, plain[0].data.evs, rtol=0, atol=1e-10)
    expected = await _qiskit_estimate([(circuit, observables, values)])
    np.testing.assert_allclose(plain[0].data.evs, expected[0].data.evs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
async def test_optimization_levels_do_not_change_sampler_bits(level: int) -> None:
    circuit = QuantumCircuit(3, 3)
    circuit.x(0)
    circuit.swap(0, 2)
    circuit.cx(2, 1)
    circuit.measure([0, 1, 2], [0, 1, 2])
    async with Session():
        result = await Sampler(options=Options(optimization_level=level)).run([circuit], shots=5)
    assert result[0].data.c.get_counts() == {"110": 5}


@pytest.mark.parametrize("level", [None, 0, 1, 2])
async def test_resilience_level_not_applied_is_reported_only_when_asked(level: int | None) -> None:
    circuit, _ = _ry_circuit()
    async with Session():
        result = await Estimator(options=Options(resilience_level=level)).run([(circuit, "Z")])
    if level:
        assert f"requested {level}" in result[0].metadata["options_not_applied"]["resilience_level"]
        assert "resilience_level" in result.metadata["options_not_applied"]
    else:
        assert "options_not_applied" not in result[0].metadata
        assert "options_not_applied" not in result.metadata
    assert result.metadata["backend"] == "aqrt_statevector"


# -- Sampler -------------------------------------------------------------------------------------


def _layout_circuit() -> QuantumCircuit:
    """Deterministic outcomes, four registers: permuted clbits, a 10-bit register with a gap,
    a register never measured, and a one-bit register; qubits 4 and 6 are never measured."""
    qr = QuantumRegister(12, "q")
    alpha = ClassicalRegister(3, "alpha")
    wide = ClassicalRegister(10, "wide")
    never = ClassicalRegister(2, "never")
    last = ClassicalRegister(1, "last")
    circuit = QuantumCircuit(qr, alpha, wide, never, last)
    for qubit in (0, 2, 3, 4, 7, 8, 11):
        circuit.x(qubit)
    circuit.barrier()
    circuit.measure(qr[2], alpha[0])
    circuit.measure(qr[0], alpha[2])
    circuit.measure(qr[1], alpha[1])
    for clbit, qubit in zip([9, 0, 8, 1, 7, 2, 6, 3, 5], [3, 5, 7, 8, 9, 10, 11, 1, 0], strict=True):
        circuit.measure(qr[qubit], wide[clbit])  # wide[4] is never written
    circuit.measure(qr[11], last[0])
    return circuit


async def test_sampler_bit_layout_matches_statevector_sampler() -> None:
    circuit = _layout_circuit()
    async with Session():
        result = await Sampler(options=Options(seed=3)).run([circuit], shots=7)
    expected = await _qiskit_sample([circuit], seed=3, default_shots=7)
    data, reference = result[0].data, expected[0].data
    assert list(data.keys()) == list(reference.keys()) == ["alpha", "wide", "never", "last"]
    for name in reference:
        ours, theirs = data[name], reference[name]
        assert ours.num_bits == theirs.num_bits
        assert ours.shape == theirs.shape == ()
        assert ours.num_shots == theirs.num_shots == 7
        assert ours.array.dtype == np.uint8
        np.testing.assert_array_equal(ours.array, theirs.array)
    # hand-computed, register bit 0 rightmost
    assert data["alpha"].get_counts() == {"101": 7}
    wide_bits = {9: 1, 0: 0, 8: 1, 1: 1, 7: 0, 2: 0, 6: 1, 3: 0, 5: 1}
    assert data["wide"].get_counts() == {"".join(str(wide_bits.get(i, 0)) for i in reversed(range(10))): 7}
    assert data["wide"].array.shape == (7, 2)
    assert data["never"].get_counts() == {"00": 7}
    assert data["last"].get_counts() == {"1": 7}


async def test_sampler_register_measured_twice_and_measure_all_match_qiskit() -> None:
    circuit = QuantumCircuit(QuantumRegister(3, "q"), ClassicalRegister(2, "c"))
    circuit.x(1)
    circuit.measure(1, 0)
    circuit.measure(1, 1)  # the same qubit twice, both terminal
    circuit.measure_all()
    async with Session():
        result = await Sampler().run([circuit], shots=4)
    expected = await _qiskit_sample([circuit], default_shots=4)
    for name in ("c", "meas"):
        np.testing.assert_array_equal(result[0].data[name].array, expected[0].data[name].array)
    assert result[0].data.c.get_counts() == {"11": 4}
    assert result[0].data.meas.get_counts() == {"010": 4}


async def test_sampler_shape_follows_parameter_bindings() -> None:
    theta, phi = Parameter("theta"), Parameter("phi")
    circuit = QuantumCircuit(2, 2)
    circuit.rx(theta, 0)
    circuit.rx(phi, 1)
    circuit.measure([0, 1], [1, 0])
    values = np.array([[[0.0, np.pi], [np.pi, np.pi], [0.0, 0.0]], [[np.pi, 0.0], [0.0, 0.0], [np.pi, np.pi]]])
    async with Session():
        result = await Sampler(options={"seed": 9}).run([(circuit, values)], shots=6)
    expected = await _qiskit_sample([(circuit, values)], seed=9, default_shots=6)
    bits = result[0].data.c
    assert bits.shape == (2, 3) and result[0].data.shape == (2, 3)
    assert bits.num_shots == 6 and bits.array.shape == (2, 3, 6, 1)
    np.testing.assert_array_equal(bits.array, expected[0].data.c.array)
    # values are ordered as circuit.parameters, by name: (phi, theta); c[0] <- qubit 1 (phi),
    # c[1] <- qubit 0 (theta)
    assert bits.get_counts((0, 0)) == {"10": 6}
    assert bits.get_counts((1, 0)) == {"01": 6}
    assert bits.get_counts((1, 2)) == {"11": 6}


async def test_sampler_counts_pass_chi_square_against_exact_probabilities() -> None:
    unitary = random_circuit(4, 5, seed=32)
    probabilities = Statevector(unitary).probabilities()
    circuit = unitary.copy()
    circuit.measure_all()
    shots = 20000
    async with Session():
        result = await Sampler(options=Options(seed=2024)).run([circuit], shots=shots)
    counts = result[0].data.meas.get_int_counts()
    assert sum(counts.values()) == shots
    observed = np.array([counts.get(i, 0) for i in range(16)], dtype=float)
    expected = probabilities * shots
    assert observed[expected < 1e-9].sum() == 0  # impossible outcomes never occur
    large = expected >= 5
    observed_bins = np.append(observed[large], observed[~large].sum())
    expected_bins = np.append(expected[large], expected[~large].sum())
    assert large.sum() >= 10
    assert chisquare(observed_bins, expected_bins).pvalue > 1e-3
    # the test has power: the same counts are rejected against a uniform distribution
    assert chisquare(observed_bins, np.full(len(observed_bins), shots / len(observed_bins))).pvalue < 1e-6


async def test_sampler_seed_reproduces_bits_and_different_seeds_differ() -> None:
    circuit = QuantumCircuit(3, 3)
    circuit.h([0, 1, 2])
    circuit.measure([0, 1, 2], [0, 1, 2])

    async def bits(seed: int | None) -> np.ndarray:
        async with Session():
            result = await Sampler(options=Options(seed=seed)).run([circuit, circuit], shots=1000)
        return np.stack([result[0].data.c.array, result[1].data.c.array])

    first, again, other = await bits(5), await bits(5), await bits(6)
    unseeded_1, unseeded_2 = await bits(None), await bits(None)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[0], first[1])  # each PUB draws its own stream
    assert not np.array_equal(unseeded_1, unseeded_2)
    assert not np.array_equal(unseeded_1[0], unseeded_1[1])
    async with Session():
        sampler = Sampler()
        singles = [(await sampler.run([circuit], shots=1000))[0].data.c.array for _ in range(2)]
    assert not np.array_equal(singles[0], singles[1]), "one-PUB jobs without a seed draw fresh streams too"


async def test_unseeded_jobs_spawn_from_the_process_entropy_and_a_forked_process_draws_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aqrt.backends.local import seeding

    first, second = seeding._unseeded_sequence(), seeding._unseeded_sequence()
    assert first.entropy == second.entropy and first.spawn_key != second.spawn_key, "children of one root"
    shared = seeding._shared_generator()
    assert seeding._shared_generator() is shared, "jobs run whole share the process's generator"
    monkeypatch.setattr(seeding.os, "getpid", lambda: -1)  # what a forked child sees: another pid
    forked = seeding._unseeded_sequence()
    assert forked.entropy != first.entropy, "a forked process must not replay its parent's streams"
    forked_shared = seeding._shared_generator()
    assert forked_shared is not shared and forked_shared.bit_generator.state != shared.bit_generator.state


async def test_a_seeded_job_s_generators_are_its_seed_s_whether_run_whole_or_in_chunks() -> None:
    """``options.seed`` fixes every PUB's stream (SeedSequence(seed).spawn, as before); only jobs
    without a seed, run whole, share the process's generator; chunked runs never do (they copy
    a PUB generator's state to each chunk)."""
    from aqrt.backends.local import seeding
    from aqrt.job import JobRequest
    from aqrt.primitives._pubs import coerce_sampler_pubs

    circuit = QuantumCircuit(1, 1)
    circuit.h(0)
    circuit.measure(0, 0)
    pubs = coerce_sampler_pubs([circuit, circuit], 10)
    seeded = JobRequest("j1", "sampler", pubs, Options(seed=11).snapshot(), None)
    unseeded = JobRequest("j2", "sampler", pubs, Options().snapshot(), None)
    expected = [np.random.default_rng(child).random(4) for child in np.random.SeedSequence(11).spawn(2)]
    for shared in (False, True):
        drawn = [generator.random(4) for generator in seeding.pub_generators(seeded, shared=shared)]
        np.testing.assert_array_equal(drawn, expected)
    whole = seeding.pub_generators(unseeded, shared=True)
    assert whole[0] is whole[1] is seeding._shared_generator()
    chunked = seeding.pub_generators(unseeded)
    assert chunked[0] is not chunked[1] and seeding._shared_generator() not in chunked


async def test_sampler_shots_pub_over_run_over_default_shots() -> None:
    circuit = QuantumCircuit(1, 1)
    circuit.x(0)
    circuit.measure(0, 0)
    sampler = Sampler(options=Options(default_shots=17))
    async with Session():
        from_options = await sampler.run([circuit])
        from_run = await sampler.run([circuit], shots=23)
        mixed = await sampler.run([(circuit, None, 31), circuit, (circuit,)], shots=23)
    assert from_options[0].data.c.num_shots == 17
    assert from_options[0].metadata["shots"] == 17
    assert from_run[0].data.c.num_shots == 23
    assert [r.data.c.num_shots for r in mixed] == [31, 23, 23]
    assert [r.metadata["shots"] for r in mixed] == [31, 23, 23]
    assert mixed[0].data.c.get_counts() == {"1": 31}


async def test_sampler_circuit_without_classical_registers_warns_like_qiskit() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    message = "no output classical registers"
    with pytest.warns(UserWarning, match=message):
        await _qiskit_sample([circuit], default_shots=3)
    async with Session():
        with pytest.warns(UserWarning, match=message):
            job = Sampler().run([circuit], shots=3)
        result = await job
    assert list(result[0].data.keys()) == []
    assert result[0].metadata["shots"] == 3


# -- what the exact path refuses ------------------------------------------------------------------


def _mid_circuit_measurement() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.x(0)
    circuit.measure([0, 1], [0, 1])
    return circuit


def _reset_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.reset(1)
    circuit.measure([0, 1], [0, 1])
    return circuit


async def test_sampler_runs_mid_circuit_measurement_and_reset() -> None:
    """Once refused at run(); now the dynamic route runs them (see test_routes.py)."""
    async with Session():
        sampler = Sampler(options=Options(seed=3))
        measured, reset = await sampler.run([_mid_circuit_measurement(), _reset_circuit()], shots=2000)
    for result in (measured, reset):
        assert result.metadata["simulator_metadata"]["method"] == "dynamic"
        counts = result.data.c.get_counts()
        assert set(counts) == {"00", "01"} and abs(counts["01"] - 1000) < 150


@pytest.mark.parametrize("operation", ["measure", "reset"])
async def test_estimator_runs_circuits_with_measurement_or_reset(operation: str) -> None:
    """The value is the average over the measured outcomes (exact)."""
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    if operation == "measure":
        circuit.measure(1, 0)  # even a final one
    else:
        circuit.reset(0)
        circuit.h(0)
    async with Session():
        result = await Estimator().run([(circuit, ["IX", "ZI"])])
    np.testing.assert_allclose(result[0].data.evs, [1.0, 1.0], atol=1e-12)


# -- job mode --------------------------------------------------------------------------------------


async def test_job_mode_gives_the_same_results_as_a_session() -> None:
    circuit = _two_parameter_circuit()
    values = np.random.default_rng(8).uniform(-np.pi, np.pi, size=(3, 2))
    estimator_pub = (circuit, ["ZZZ", "XIX"], values.reshape(3, 1, 2))
    sampled = circuit.copy()
    sampled.measure_all()
    backend = LocalService().backend()

    job = Estimator(mode=backend).run([estimator_pub])
    default_job = Estimator().run([estimator_pub])  # no session: job mode on the default backend
    sampler_job = Sampler(mode=backend, options=Options(seed=4)).run([(sampled, values)], shots=50)
    assert job.session_id is None
    in_job_mode, by_default, sampled_job_mode = await job, await default_job, await sampler_job
    assert in_job_mode.metadata["session_id"] is None

    async with Session() as session:
        in_session = await Estimator().run([estimator_pub])
        sampled_in_session = await Sampler(options=Options(seed=4)).run([(sampled, values)], shots=50)
    assert in_session.metadata["session_id"] == session.session_id
    expected = await _qiskit_estimate([estimator_pub])
    assert in_job_mode[0].data.evs.shape == (3, 2)
    np.testing.assert_allclose(in_job_mode[0].data.evs, expected[0].data.evs, atol=1e-10)
    np.testing.assert_array_equal(in_job_mode[0].data.evs, in_session[0].data.evs)
    np.testing.assert_array_equal(by_default[0].data.evs, in_session[0].data.evs)
    np.testing.assert_array_equal(sampled_job_mode[0].data.meas.array, sampled_in_session[0].data.meas.array)
    assert sampled_job_mode[0].data.meas.shape == (3,)
