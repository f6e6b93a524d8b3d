"""The dynamic-circuit route against Aer's ``SamplerV2`` in distribution: hand-written dynamic
circuits and random ones (mid-circuit measurement, reset, nested if_else/switch/for/while with
break/continue, expressions), compared with a two-sample chi-square test at fixed seeds.

Only what Aer runs is drawn: no standalone variables or stores (Aer 0.18 aborts the process on
some of them) and only the expression operators Aer implements. The rest is checked against the
exact oracle in ``test_dynamic_route``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit_aer.primitives import SamplerV2 as AerSampler
from scipy.stats import chi2_contingency

from aqrt.backends.local import dynamic
from aqrt.engine import warmup

from .test_dynamic_route import NO_VALUES, bindings_of, dynamic_circuits, hand_written_circuits, joined_counts

SHOTS = 4096


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    warmup()


def aer_counts(circuit: QuantumCircuit, values: np.ndarray, seed: int) -> list[dict[str, int]]:
    """Aer's counts of the joint register bitstring, per binding."""
    pub = (circuit, values if values.shape[1] else None, SHOTS)
    data = AerSampler(seed=seed).run([pub]).result()[0].data
    out = []
    for binding in range(values.shape[0]):
        index = (binding,) if values.shape[1] else ()
        columns = [data[creg.name][index].get_bitstrings() for creg in reversed(circuit.cregs)]
        counts: dict[str, int] = {}
        for labels in zip(*columns, strict=True):
            label = " ".join(labels)
            counts[label] = counts.get(label, 0) + 1
        out.append(counts)
    return out


def homogeneity(first: dict[str, int], second: dict[str, int]) -> float:
    """Two-sample chi-square p-value that both counts come from one distribution (outcomes seen
    fewer than 10 times in both samples together are pooled into one category)."""
    labels = sorted(set(first) | set(second))
    common = [label for label in labels if first.get(label, 0) + second.get(label, 0) >= 10]
    rare = [label for label in labels if label not in common]
    rows = [
        [counts.get(label, 0) for label in common] + [sum(counts.get(label, 0) for label in rare)]
        for counts in (first, second)
    ]
    table = np.array(rows)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(table).pvalue)


def test_homogeneity_can_fail() -> None:
    rng = np.random.default_rng(0)
    fair = {"0": int(rng.binomial(SHOTS, 0.5))}
    fair["1"] = SHOTS - fair["0"]
    biased = {"0": int(rng.binomial(SHOTS, 0.45))}
    biased["1"] = SHOTS - biased["0"]
    assert homogeneity(fair, biased) < 1e-4
    assert homogeneity({"00": SHOTS}, {"00": SHOTS - 40, "11": 40}) < 1e-4


@pytest.mark.parametrize(("name", "circuit"), list(hand_written_circuits()))
def test_hand_written_circuits_match_aer(name: str, circuit: QuantumCircuit) -> None:
    ours = joined_counts(circuit, dynamic.sample(circuit, NO_VALUES, [], SHOTS, np.random.default_rng(21)))
    assert homogeneity(ours, aer_counts(circuit, NO_VALUES, seed=22)[0]) > 1e-4


@settings(max_examples=30, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(circuit=dynamic_circuits(aer_safe=True), seed=st.integers(0, 2**31 - 1))
def test_random_dynamic_circuits_match_aer(circuit: QuantumCircuit, seed: int) -> None:
    values, names = bindings_of(circuit)
    arrays = dynamic.sample(circuit, values, names, SHOTS, np.random.default_rng(seed))
    theirs = aer_counts(circuit, values, seed=seed + 1)
    for binding in range(values.shape[0]):
        p_value = homogeneity(joined_counts(circuit, arrays, binding), theirs[binding])
        assert p_value > 1e-4, (binding, str(circuit.draw(output="text", fold=-1)))
