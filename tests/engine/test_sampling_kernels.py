"""The sampling kernels give what numpy's cumsum + searchsorted and Qiskit's bit packing give,
bit for bit (seeded samples must not change with the kernels that draw them)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.primitives.containers import BitArray

from aqrt.backends.local.reference import _pack
from aqrt.engine.kernels.sampling import pack_outcomes, probability_total, sort_draws, sorted_outcomes


def _numpy_outcomes(probs: np.ndarray, draws: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(probs)
    return np.minimum(np.searchsorted(cdf, draws, side="right"), cdf.shape[0] - 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [1, 2, 8, 1 << 12])
def test_outcomes_equal_cumsum_and_searchsorted(dtype: type, size: int) -> None:
    rng = np.random.default_rng(size)
    probs = rng.random(size).astype(dtype) ** 4
    probs[rng.random(size) < 0.3] = 0  # outcomes of probability zero are never drawn
    probs /= probs.sum()
    total = probability_total(probs)
    assert total == np.cumsum(probs)[-1]
    draws = rng.random(5000) * total
    cdf = np.cumsum(probs)
    draws[:20] = cdf[rng.integers(0, size, 20)]  # draws exactly on a boundary
    draws[20:25] = total  # at the very top (clamped to the last outcome)
    out = np.empty(draws.shape[0], dtype=np.int64)
    sorted_outcomes(probs, draws, np.argsort(draws), out)
    np.testing.assert_array_equal(out, _numpy_outcomes(probs, draws))
    assert np.all(probs[out[25:]] > 0)  # random draws never land on an outcome of probability zero


@pytest.mark.parametrize(
    "columns",
    [
        [0, 1, 2],
        [2, 0, -1, 1],
        list(range(8)),
        list(range(9)),
        list(range(13)),
        list(range(62)),
        list(range(63)),
        [5, -1, -1, 0, 9, 3, 8, 1, 2],
        [i % 40 for i in range(70)],
    ],
    ids=["3", "4-with-unmeasured", "8", "9", "13", "62", "63", "9-scattered", "70-wider-than-an-int"],
)
def test_packing_equals_qiskit_bit_order(columns: list[int]) -> None:
    """Clbit c of every shot is bit ``columns[c]`` of its outcome (0 for -1), in Qiskit's byte
    order, whether packed by numpy (``_pack``: clbits in the outcome's own order take a shortcut)
    or by the kernel."""
    outcomes = np.random.default_rng(1).integers(0, 1 << 62, 300)
    expected = _pack(outcomes, columns)
    assert expected.dtype == np.uint8 and expected.shape == (300, (len(columns) + 7) // 8)
    assert expected.flags.c_contiguous
    out = np.zeros_like(expected)
    pack_outcomes(outcomes, np.asarray(columns, dtype=np.int64), out)
    np.testing.assert_array_equal(out, expected)
    bitstrings = BitArray(out, len(columns)).get_bitstrings()
    for shot in (0, 1, 150, 299):
        for clbit, column in enumerate(columns):  # clbit c is the c-th character from the right
            wanted = str((int(outcomes[shot]) >> column) & 1) if column >= 0 else "0"
            assert bitstrings[shot][-1 - clbit] == wanted, (shot, clbit)


def test_draw_outcomes_keeps_the_seeded_draws() -> None:
    """The engine's draws equal the cumsum + searchsorted ones for the same generator: seeded
    samples are the same as before these kernels."""
    from aqrt.engine.sampling import draw_outcomes

    probs = np.random.default_rng(5).random(1 << 10) ** 3
    expected = _numpy_outcomes(probs, np.random.default_rng(9).random(20_000) * np.cumsum(probs)[-1])
    np.testing.assert_array_equal(draw_outcomes(probs, np.random.default_rng(9), 20_000), expected)


@pytest.mark.parametrize("count", [0, 1, 2, 7, 1000, 50_000])
def test_sort_draws_orders_like_argsort(count: int) -> None:
    """The bucket sort gives an order under which the draws increase, for uniform draws, for
    repeated values and for draws at the very top of the range (clamped into the last bucket)."""
    rng = np.random.default_rng(count)
    total = 0.73
    draws = rng.random(count) * total
    if count >= 7:
        draws[:3] = draws[3]  # ties
        draws[4] = total  # the top
        draws[5] = 0.0
    order = np.empty(count, dtype=np.int64)
    sort_draws(draws, total, order)
    assert sorted(order.tolist()) == list(range(count))  # a permutation
    np.testing.assert_array_equal(draws[order], np.sort(draws))


def test_sort_draws_handles_clustered_draws() -> None:
    """Draws that all fall in a few buckets (not what a uniform generator gives, but legal) are
    still sorted (by the insertion sort inside each bucket)."""
    draws = np.concatenate([np.full(300, 0.5), np.linspace(0.5, 0.5000001, 700)[::-1]])
    order = np.empty(draws.shape[0], dtype=np.int64)
    sort_draws(draws, 1.0, order)
    np.testing.assert_array_equal(draws[order], np.sort(draws))


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_a_tiny_jobs_draws_from_the_small_tier_equal_the_probabilities_and_searchsorted(dtype: str) -> None:
    """``simulate.serial_outcomes`` (a tiny Sampler job's run and draws, two small-tier calls)
    gives the outcomes of ``serial_probabilities`` + cumsum + searchsorted, bit for bit, for
    random circuits of both precisions and for several bindings; draws exactly on a boundary
    and at the very top included."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    from aqrt.engine import lower_circuit, simulate, warmup

    warmup(dtype, ("small",))
    rng = np.random.default_rng(3)
    for seed in range(12):
        num_qubits = 1 + seed % 5
        circuit = QuantumCircuit(num_qubits)
        for _ in range(12):  # one-qubit gates, CX and CZ: the ops the small tier runs
            qubit = int(rng.integers(num_qubits))
            kind = rng.integers(4) if num_qubits > 1 else rng.integers(2)
            if kind == 0:
                circuit.u(*rng.uniform(-3, 3, 3), qubit)
            elif kind == 1:
                circuit.h(qubit)
            else:
                other = (qubit + 1 + int(rng.integers(num_qubits - 1))) % num_qubits
                (circuit.cx if kind == 2 else circuit.cz)(qubit, other)
        theta = ParameterVector("t", 2)
        circuit.ry(theta[0], 0)
        circuit.rz(theta[1], num_qubits - 1)
        program = lower_circuit(circuit).bind(rng.uniform(-3, 3, (3, 2)), dtype=np.dtype(dtype))
        assert simulate.serial_tier(program) == "small"
        probabilities = simulate.serial_probabilities(program, 0, program.num_bindings)
        for binding in range(program.num_bindings):
            cdf = np.cumsum(probabilities[binding])
            uniforms = rng.random(400)
            uniforms[:8] = cdf[rng.integers(0, cdf.shape[0], 8)] / cdf[-1]  # on (or next to) a boundary
            uniforms[8] = np.nextafter(1.0, 0.0)
            expected = _numpy_outcomes(probabilities[binding], uniforms * cdf[-1])
            np.testing.assert_array_equal(simulate.serial_outcomes(program, binding, uniforms), expected)


def test_serial_outcomes_refuses_a_program_the_small_tier_does_not_run() -> None:
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import UnitaryGate

    from aqrt.engine import lower_circuit, simulate

    circuit = QuantumCircuit(2)
    circuit.append(UnitaryGate(np.eye(4)[[1, 0, 3, 2]] * 1j), [0, 1])  # a dense two-qubit op
    program = lower_circuit(circuit).bind(np.zeros((1, 0)))
    assert simulate.serial_tier(program) == "ops"  # a dense two-qubit op: not the small tier's
    with pytest.raises(ValueError, match="small tier"):
        simulate.serial_outcomes(program, 0, np.array([0.5]))
