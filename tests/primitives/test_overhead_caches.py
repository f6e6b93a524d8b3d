"""What a tiny job's path looks up instead of recomputing stays exact: the warm check still asks
which kernel tiers are loaded on every call, and the cost model still tells Sampler PUBs (shots
cost) from Estimator PUBs, subclasses included."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from aqrt.backends.local import warmup as local_warmup
from aqrt.backends.local.cost import SHOT_COST, job_cost, pub_cost
from aqrt.engine import _warmup, kernels


@pytest.fixture
def nothing_loaded(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """A process in which no tier is loaded yet (the kernels themselves stay compiled)."""
    loaded: set[tuple[str, str]] = set()
    monkeypatch.setattr(kernels, "_loaded", loaded)
    return loaded


def test_is_warm_asks_the_loaded_tiers_on_every_call(nothing_loaded: set[tuple[str, str]]) -> None:
    for _ in range(2):  # the second round runs on the looked-up names and tier lists
        assert not _warmup.is_warm("complex128", ("small",))
        assert not local_warmup.engine_is_warm("complex128")
        kernels.mark_loaded("small", "complex128")
        assert _warmup.is_warm("complex128", ("small",))
        assert _warmup.is_warm(np.complex128, ("small",)) and _warmup.is_warm(np.dtype("complex128"), ["small"])
        assert local_warmup.engine_is_warm("complex128")
        assert not _warmup.is_warm("complex64", ("small",))
        assert not _warmup.is_warm("complex128", ("sweep",))  # sweep requires ops as well
        kernels.mark_loaded("sweep", "complex128")
        assert not _warmup.is_warm("complex128", ("sweep",))
        kernels.mark_loaded("ops", "complex128")
        assert _warmup.is_warm("complex128", ("sweep",)) and _warmup.is_warm("complex128", ["ops", "small"])
        nothing_loaded.clear()  # an answer is never remembered


def test_is_warm_refuses_an_unknown_tier_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="unknown kernel tier 'tiny'"):
            _warmup.is_warm("complex128", ("tiny",))
        with pytest.raises(TypeError):
            _warmup.is_warm("not-a-dtype", ("small",))


class _MySamplerPub(SamplerPub):
    """A SamplerPub subclass: still a Sampler PUB to the cost model."""


def test_the_cost_model_counts_shots_of_sampler_pubs_only() -> None:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    base = 1 * (1 << 2) * (len(circuit) + 1)
    estimator_pub = EstimatorPub.coerce((circuit, "ZZ"))
    sampler_pub = SamplerPub.coerce(circuit, 1000)
    subclassed = _MySamplerPub(circuit, sampler_pub.parameter_values, 1000)
    assert pub_cost(estimator_pub) == base
    assert pub_cost(sampler_pub) == base + 1000 * SHOT_COST
    assert pub_cost(subclassed) == base + 1000 * SHOT_COST
    assert job_cost([estimator_pub, sampler_pub]) == 2 * base + 1000 * SHOT_COST
    assert job_cost(pub for pub in (estimator_pub, subclassed)) == 2 * base + 1000 * SHOT_COST
    assert job_cost(()) == 0


def test_a_one_term_table_combines_to_the_general_formula_s_values() -> None:
    """TermTable.combine's one-real-term case (a tiny job's) gives what the two real products
    give, and a complex weight, a complex64 state's values or more terms take the general way."""
    from aqrt.engine.observables import TermTable, build_term_table

    rng = np.random.default_rng(7)
    values = rng.normal(size=(5, 1)) + 1j * rng.normal(size=(5, 1))

    def general(table: TermTable, term_values: np.ndarray) -> np.ndarray:
        return term_values.real @ table.weights.real.T - term_values.imag @ table.weights.imag.T

    for coefficient in (1.0, -0.375, 2.5e-300, 0.0):
        table = build_term_table([{"Z": coefficient}], 1)
        combined = table.combine(values)
        assert combined.dtype == np.float64 and combined.shape == (5, 1)
        np.testing.assert_array_equal(combined, general(table, values))
    complex_weight = TermTable(np.array([0]), np.array([1]), np.array([[0.5 + 0.25j]]))
    np.testing.assert_array_equal(complex_weight.combine(values), general(complex_weight, values))
    assert complex_weight.combine(values)[0, 0] != (values.real * 0.5)[0, 0]
    single = build_term_table([{"Z": 0.5}], 1)
    as_complex64 = values.astype(np.complex64)
    assert single.combine(as_complex64).dtype == general(single, as_complex64).dtype
    two_terms = build_term_table([{"Z": 0.5, "X": 0.25}], 1)
    pairs = rng.normal(size=(3, 2)) + 0j
    np.testing.assert_array_equal(two_terms.combine(pairs), general(two_terms, pairs))


def test_term_values_read_as_interleaved_floats_combine_to_the_general_formula_s_values() -> None:
    """Contiguous complex128 term values go through one real product of their interleaved
    floats; strided or complex64 values through the two products of real and imaginary parts:
    both give the general formula's values, for any leading shape and several observables."""
    from aqrt.engine.observables import TermTable

    rng = np.random.default_rng(11)
    weights = rng.normal(size=(3, 5)) + 1j * rng.normal(size=(3, 5))
    table = TermTable(np.arange(5), np.arange(5), weights)

    def general(term_values: np.ndarray) -> np.ndarray:
        return term_values.real @ weights.real.T - term_values.imag @ weights.imag.T

    for shape in ((5,), (7, 5), (2, 4, 5)):
        values = rng.normal(size=shape) + 1j * rng.normal(size=shape)
        combined = table.combine(values)
        assert combined.dtype == np.float64 and combined.shape == (*shape[:-1], 3)
        np.testing.assert_allclose(combined, general(values), rtol=1e-13, atol=1e-13)
        # by definition: sum_t Re(w_t v_t)
        np.testing.assert_allclose(combined, np.real(values @ weights.T), rtol=1e-13, atol=1e-13)
    wide = rng.normal(size=(6, 10)) + 1j * rng.normal(size=(6, 10))
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_allclose(table.combine(strided), general(strided), rtol=1e-13, atol=1e-13)
    as_complex64 = wide[:, :5].astype(np.complex64)
    assert table.combine(as_complex64).dtype == general(as_complex64).dtype


@pytest.mark.asyncio
async def test_a_new_session_finds_an_observable_s_terms_by_its_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """run() makes one ObservablesArray per distinct observable for the process, so a second
    session's job finds its term table by that object, without keying its terms by content; an
    observable of other content is still tabled afresh, and both give exact values."""
    from qiskit.quantum_info import SparsePauliOp

    from aqrt import Estimator, Session
    from aqrt.backends.local import engine_pubs

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    # contents no other test uses: run()'s observables and these tables are the process's
    observable = SparsePauliOp(["ZZ", "XX", "ZI"], coeffs=[1.0, 0.5, 0.2421875])
    async with Session():
        first = await Estimator().run([(circuit, observable)])
    keyed: list[object] = []
    by_content = engine_pubs._TABLES_BY_CONTENT
    original = by_content.get_or_make

    def counted(key: object, make: object) -> object:
        keyed.append(key)
        return original(key, make)  # type: ignore[arg-type]

    monkeypatch.setattr(by_content, "get_or_make", counted)
    async with Session():
        again = await Estimator().run([(circuit, SparsePauliOp(["ZZ", "XX", "ZI"], coeffs=[1.0, 0.5, 0.2421875]))])
    assert keyed == [], "the second session's job found the table by the observables' identity"
    async with Session():
        other = await Estimator().run([(circuit, SparsePauliOp(["ZZ", "XX"], coeffs=[1.0, -0.8125]))])
    assert len(keyed) == 1
    assert float(first[0].data.evs) == float(again[0].data.evs) == pytest.approx(1.5, abs=1e-12), (
        "ZZ + XX / 2 on a Bell state"
    )
    assert float(other[0].data.evs) == pytest.approx(0.1875, abs=1e-12)


def test_a_circuit_run_as_given_is_prepared_once_per_content_and_never_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new session's circuit of known content gets what preparing it found (route, active
    qubits; the compact circuit when qubits are idle) without preparing it again; a circuit
    whose qubits are all active is prepared as the caller's circuit itself, never an earlier one."""
    from aqrt.backends.local import preparation
    from aqrt.backends.local.fingerprint import circuit_fingerprint
    from aqrt.backends.local.preparation import shared_preparation

    def bell(width: int) -> QuantumCircuit:  # content no other test runs (the cache is the process's)
        circuit = QuantumCircuit(width)
        circuit.h(0)
        circuit.cx(0, 1)
        circuit.rz(0.987654321 + width, 1)
        return circuit

    prepared_afresh: list[QuantumCircuit] = []
    original = preparation.prepare_circuit

    def counted(given: QuantumCircuit, transpiled: QuantumCircuit, program: str, **kwargs: bool) -> object:
        prepared_afresh.append(given)
        return original(given, transpiled, program, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(preparation, "prepare_circuit", counted)
    for width, active in ((2, (0, 1)), (5, (0, 1))):
        first, second = bell(width), bell(width)
        key = circuit_fingerprint(first)
        assert circuit_fingerprint(second) == key
        made = shared_preparation(first, key, "estimator")
        found = shared_preparation(second, key, "estimator")
        assert prepared_afresh == [first]
        prepared_afresh.clear()
        assert found.active == made.active == active and found.method == made.method
        assert found.num_qubits == width and found.layout is None
        if width == 2:
            assert made.circuit is first and found.circuit is second
        else:  # the compact circuit made from the content, the same for both
            assert found.circuit is made.circuit and found.circuit.num_qubits == 2
        assert shared_preparation(second, key, "sampler").method == made.method
        assert prepared_afresh == [second], "the program is part of the key"
        prepared_afresh.clear()
